#!/usr/bin/env bash
# The WriterGate's worst write: bounded barging (the default starvation_threshold) against
# the strict first-come-first-served gate (threshold 0: every turn handed to the writer that
# queued first, the gate as issue 13 found it), in interleaved rounds on one machine.
#   scripts/bench_gate_tail.sh [--threads LIST] [--rounds N] [--secs S] [--threshold-us US]
# Each round runs, per workload (insert, rmw: see bench_writes.sh) and thread count, the
# strict gate and the barging one back to back, the order flipping from round to round
# (bench/write_bench with WRITE_BENCH_ONLY=gated, a fresh WAL file each). The summary gives
# per case the median ops/s of each side and their ratio, the median p99, and the max
# latency: median over rounds, worst round, and the range of the per-round max ratios.
# Defaults: --threads 8,100 --rounds 5 --secs 2; --threshold-us is the barging side's
# threshold (default: WriterGateOptions' default, 10 ms).
# POOLBENCH_BUILD_DIR / POOLBENCH_WRITE_BENCH as in bench_writes.sh.
# Absolute figures on a shared 2-core machine drift by tens of percent: compare the ratios.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
secs=2; threads=8,100; rounds=5; threshold=10000
while (($#)); do
  case $1 in
    --threads) threads=${2:?--threads needs a list such as 8,100}; shift ;;
    --rounds) rounds=${2:-}; [[ $rounds =~ ^[1-9][0-9]?$ ]] || { echo "bench_gate_tail.sh: --rounds takes 1-99" >&2; exit 2; }; shift ;;
    --secs) secs=${2:-}; [[ $secs =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "bench_gate_tail.sh: --secs takes a number of seconds" >&2; exit 2; }; shift ;;
    --threshold-us) threshold=${2:-}; [[ $threshold =~ ^[1-9][0-9]*$ ]] || { echo "bench_gate_tail.sh: --threshold-us takes microseconds > 0 (0 is the strict side)" >&2; exit 2; }; shift ;;
    *) echo "bench_gate_tail.sh: unknown option '$1' (use --threads LIST, --rounds N, --secs S, --threshold-us US)" >&2; exit 2 ;;
  esac
  shift
done
. scripts/lib/write_bench.sh bench_gate_tail.sh
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

status=0
echo "== WriterGate worst write: strict (threshold 0) vs barging (threshold ${threshold} us), $rounds interleaved rounds of ${secs}s, threads $threads =="
for ((r = 1; r <= rounds; r++)); do
  sides=$([[ $((r % 2)) == 1 ]] && echo "0 $threshold" || echo "$threshold 0")
  for workload in insert rmw; do
    for t in $sides; do
      WRITE_BENCH_ONLY=gated "$bench" "$secs" "$threads" "$workload" 16 5000 ungated-first "$t" > "$tmp/out.tsv" || status=1
      side=$([[ $t == 0 ]] && echo strict || echo barging)
      tail -n +2 "$tmp/out.tsv" | sed "s/^/$r\t$side\t/" >> "$tmp/rounds.tsv"
      tail -n +2 "$tmp/out.tsv" | awk -F'\t' -v r="$r" -v s="$side" \
        '{printf "round %d: %s %s threads %s: %s ops/s, p99 %s us, max %s us, lost %s\n", r, $1, $2, s, $5, $11, $12, $9}'
    done
  done
done
echo
python3 - "$tmp/rounds.tsv" <<'PY' || status=1
import collections, statistics as st, sys
# round side workload threads gate ops ops_s busy other retries lost p50_us p99_us max_us
pts = collections.defaultdict(lambda: collections.defaultdict(dict))
lost = 0
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if len(f) < 14: continue
    rnd, side, wl, th = int(f[0]), f[1], f[2], int(f[3])
    pts[(wl, th)][side][rnd] = dict(ops_s=float(f[6]), busy=int(f[7]), lost=int(f[10]), p99=float(f[12]), max=float(f[13]))
    lost += int(f[10])
def ms(us): return f"{us / 1000:.1f}"
cols = ["workload", "threads", "strict_ops_s", "barging_ops_s", "barging/strict", "p99_ms(strict/barging)",
        "max_ms_median(strict/barging)", "max_ms_worst(strict/barging)", "max_ratio_per_round(min-max)", "busy", "lost"]
print("\t".join(cols))
for (wl, th), sides in sorted(pts.items(), key=lambda kv: (kv[0][0] != "insert", kv[0][1])):
    a, b = sides.get("strict", {}), sides.get("barging", {})
    both = sorted(set(a) & set(b))
    if not both: continue
    med = lambda s, k: st.median(s[r][k] for r in both)
    worst = lambda s, k: max(s[r][k] for r in both)
    mr = [b[r]["max"] / a[r]["max"] for r in both if a[r]["max"] > 0]
    print("\t".join([wl, str(th), f"{med(a, 'ops_s'):.0f}", f"{med(b, 'ops_s'):.0f}",
                     f"{med(b, 'ops_s') / med(a, 'ops_s'):.2f}x", f"{ms(med(a, 'p99'))}/{ms(med(b, 'p99'))}",
                     f"{ms(med(a, 'max'))}/{ms(med(b, 'max'))}", f"{ms(worst(a, 'max'))}/{ms(worst(b, 'max'))}",
                     f"{min(mr):.2f}-{max(mr):.2f}", str(sum(a[r]['busy'] + b[r]['busy'] for r in both)),
                     str(sum(a[r]['lost'] + b[r]['lost'] for r in both))]))
sys.exit(1 if lost else 0)
PY
exit $status
