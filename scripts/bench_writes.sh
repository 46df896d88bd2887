#!/usr/bin/env bash
# SQLite writers on one file, with and without a WriterGate (bench/write_bench.cpp):
# throughput, busy errors, retries, lost writes and latency, in interleaved rounds.
#   scripts/bench_writes.sh [--quick] [--threads LIST] [--rounds N] [--secs S] [--threshold-us US]
# Two workloads per thread count:
#   insert  BEGIN IMMEDIATE; INSERT; COMMIT           (writers wait in BEGIN)
#   rmw     BEGIN DEFERRED; SELECT; INSERT; COMMIT    (the lock upgrade fails busy under
#                                                      contention: retried by run_in_transaction)
# Each point runs for a fixed time (3 s; 1 s with --quick) on a fresh WAL file and verifies
# its rows afterwards; the script exits 1 if any point lost a write. Every round runs each
# (workload, threads) ungated and gated back to back, the order flipping from round to
# round; the summary gives per case the median ops/s of each side, the gated/ungated ratio
# of the medians and the range of the per-round ratios, the busy errors, retries and lost
# writes summed over the rounds, the median p99 and the worst max latency of any round.
# --threshold-us sets the gate's starvation_threshold (default: WriterGateOptions' default).
# POOLBENCH_BUILD_DIR=DIR uses an existing build directory instead of scripts/build.sh release;
# POOLBENCH_WRITE_BENCH=FILE runs that write_bench binary instead (e.g. one built from an
# older commit, for a before/after).
# Absolute figures on a shared 2-core machine drift by tens of percent: compare the ratios.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
secs=3; threads=1,8,100; rounds=3; threshold=
while (($#)); do
  case $1 in
    --quick) secs=1; rounds=2 ;;
    --threads) threads=${2:?--threads needs a list such as 1,8,100}; shift ;;
    --rounds) rounds=${2:-}; [[ $rounds =~ ^[1-9][0-9]?$ ]] || { echo "bench_writes.sh: --rounds takes 1-99" >&2; exit 2; }; shift ;;
    --secs) secs=${2:-}; [[ $secs =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "bench_writes.sh: --secs takes a number of seconds" >&2; exit 2; }; shift ;;
    --threshold-us) threshold=${2:-}; [[ $threshold =~ ^[0-9]+$ ]] || { echo "bench_writes.sh: --threshold-us takes microseconds >= 0" >&2; exit 2; }; shift ;;
    *) echo "bench_writes.sh: unknown option '$1' (use --quick, --threads LIST, --rounds N, --secs S, --threshold-us US)" >&2; exit 2 ;;
  esac
  shift
done
. scripts/lib/write_bench.sh bench_writes.sh
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

status=0
echo "== SQLite writers on one WAL file: $rounds interleaved rounds of ${secs}s per point, threads $threads =="
for ((r = 1; r <= rounds; r++)); do
  order=$([[ $((r % 2)) == 1 ]] && echo ungated-first || echo gated-first)
  for workload in insert rmw; do
    "$bench" "$secs" "$threads" "$workload" 16 5000 "$order" $threshold > "$tmp/out.tsv" || status=1
    tail -n +2 "$tmp/out.tsv" | sed "s/^/$r\t/" >> "$tmp/rounds.tsv"
    tail -n +2 "$tmp/out.tsv" | awk -F'\t' -v r="$r" '{printf "round %d: %s %s threads gate=%s %s ops/s, busy %s, max %s us\n", r, $1, $2, $3, $5, $6, $12}'
  done
done
echo
python3 - "$tmp/rounds.tsv" <<'PY'
import collections, statistics as st, sys
# round workload threads gate ops ops_s busy_errors other_errors retries lost p50_us p99_us max_us
pts = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if len(f) < 13: continue
    rnd, wl, th, gate = int(f[0]), f[1], int(f[2]), f[3]
    pts[(wl, th)].setdefault(gate, {})[rnd] = dict(ops_s=float(f[5]), busy=int(f[6]), other=int(f[7]),
        retries=int(f[8]), lost=int(f[9]), p99=float(f[11]), max=float(f[12]))
def ms(us): return f"{us / 1000:.1f}" if us >= 1000 else f"{us / 1000:.2f}"
cols = ["workload", "threads", "ungated_ops_s", "gated_ops_s", "gated/ungated", "per-round(min-max)",
        "busy_errors(no/yes)", "retries(no/yes)", "lost(no/yes)", "p99_ms(no/yes)", "max_ms(no/yes, worst round)"]
print("\t".join(cols))
for (wl, th), sides in sorted(pts.items(), key=lambda kv: (kv[0][0] != "insert", kv[0][1])):
    no, yes = sides.get("no", {}), sides.get("yes", {})
    both = sorted(set(no) & set(yes))
    if not both: continue
    ratios = [yes[r]["ops_s"] / no[r]["ops_s"] for r in both if no[r]["ops_s"] > 0]
    med = lambda side, k: st.median(side[r][k] for r in both)
    tot = lambda side, k: sum(side[r][k] for r in both)
    worst = lambda side, k: max(side[r][k] for r in both)
    print("\t".join([wl, str(th), f"{med(no, 'ops_s'):.0f}", f"{med(yes, 'ops_s'):.0f}",
                     f"{med(yes, 'ops_s') / med(no, 'ops_s'):.2f}x", f"{min(ratios):.2f}-{max(ratios):.2f}",
                     f"{tot(no, 'busy')}/{tot(yes, 'busy')}", f"{tot(no, 'retries')}/{tot(yes, 'retries')}",
                     f"{tot(no, 'lost')}/{tot(yes, 'lost')}", f"{ms(med(no, 'p99'))}/{ms(med(yes, 'p99'))}",
                     f"{ms(worst(no, 'max'))}/{ms(worst(yes, 'max'))}"]))
PY
exit $status
