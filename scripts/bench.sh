#!/usr/bin/env bash
# Benchmarks that the README quotes, with peers measured in the same run.
#   scripts/bench.sh [--quick] [--no-hikari]
# 1. The pool alone: acquire+release cycles/s on null:// at 1, 2, 8, 100 threads (pool of 10),
#    next to HikariCP 2.7.9 with a do-nothing connection (../shared/peers/hikaricp).
# 2. SQLite point select by primary key: pooled vs --baseline (open, pragmas, select, close
#    per operation) at 1 and 8 threads.
# 3. 100 threads x 10,000 operations on the embedded SQLite default: failures and leaks.
# Absolute figures on a shared 2-core machine drift by tens of percent: compare the ratios.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
quick=0; hikari=1
for a in "$@"; do
  case $a in
    --quick) quick=1 ;;
    --no-hikari) hikari=0 ;;
    *) echo "bench.sh: unknown option '$a' (use --quick, --no-hikari)" >&2; exit 2 ;;
  esac
done
scripts/bootstrap.sh
dir=$(scripts/build.sh release)
pb=$dir/src/poolbench
if ((quick)); then runs=1; secs=2; warm=1; big_ops=200000; else runs=3; secs=5; warm=3; big_ops=1000000; fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

echo "== 1. pool alone: null:// acquire+release, pool of 10 (runs=$runs, ${secs}s each, median) =="
"$dir/bench/pool_bench" "$runs" "$secs" "$warm" 1,2,8,100 10 | tee "$tmp/pool.tsv"
peer=$root/../shared/peers/hikaricp/run.sh
if ((hikari)) && [[ -x $peer ]]; then
  echo "-- HikariCP, same machine, same run --"
  "$peer" stub "$runs" "$secs" "$warm" 1,2,8,100 2>/dev/null | tee "$tmp/hikari.tsv" || echo "(HikariCP harness failed)"
  echo "-- ratio poolbench / HikariCP --"
  python3 - "$tmp/pool.tsv" "$tmp/hikari.tsv" <<'PY'
import sys
def load(p):
    out = {}
    for line in open(p):
        f = line.rstrip("\n").split("\t")
        if len(f) >= 4 and f[1].isdigit():
            out[int(f[1])] = float(f[3])
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
print("threads\tpoolbench_ops_s\thikari_ops_s\tratio")
for t in sorted(a):
    if t in b:
        print(f"{t}\t{a[t]:.0f}\t{b[t]:.0f}\t{a[t]/b[t]:.2f}x")
PY
fi

echo
echo "-- leak tracking cost, 1 thread (off / stack on every acquire / stack on 1 in 100) --"
off=$("$dir/bench/pool_bench" "$runs" "$secs" "$warm" 1 10 off | awk -F'\t' '$2=="1"{print $4}')
on=$("$dir/bench/pool_bench" "$runs" "$secs" "$warm" 1 10 on | awk -F'\t' '$2=="1"{print $4}')
sampled=$("$dir/bench/pool_bench" "$runs" "$secs" "$warm" 1 10 100 | awk -F'\t' '$2=="1"{print $4}')
python3 - "$off" "$on" "$sampled" <<'PY'
import sys
off, on, sampled = (float(x) for x in sys.argv[1:])
print("tracking\tops_per_s\tns_per_acquire_release\textra_ns_per_acquire")
for name, v in (("off", off), ("on (every acquire traced)", on), ("sampled (1 in 100 traced)", sampled)):
    print(f"{name}\t{v:.0f}\t{1e9/v:.0f}\t{1e9/v - 1e9/off:.0f}")
PY

echo
echo "-- bounded barging: the longest acquire at 100 threads on a pool of 10, against starvation_threshold --"
echo "   (running threads may take a returned connection until the longest waiter has waited the threshold;"
echo "    then hand-offs are strict: the bound a waiter sees is about the threshold plus one queue turn)"
echo -e "threshold_us\tops_per_s\tacquire_p99_us\tacquire_max_us\tmax/threshold"
for st in 1000 10000 100000; do
  out=$(POOLBENCH_STARVATION_US=$st "$dir/bench/pool_bench" 1 "$secs" 0 100 10)
  ops=$(awk -F'\t' '$2=="100"{print $4}' <<<"$out")
  python3 - "$st" "$ops" "$out" <<'PY'
import re, sys
st, ops, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
p99 = int(re.search(r"acquire p99 (\d+) ns", out).group(1)) / 1000
mx = int(re.search(r"acquire max (\d+) ns", out).group(1)) / 1000
print(f"{st}\t{ops:.0f}\t{p99:.1f}\t{mx:.0f}\t{mx / st:.2f}x")
PY
done

echo
echo "== 2. SQLite point select: pooled vs connect-per-operation baseline =="
printf "threads\tpooled_ops_s\tbaseline_ops_s\tspeedup\tpooled_p99_us\tbaseline_p99_us\n"
for t in 1 8; do
  db=$tmp/read-$t.db
  "$pb" stress --db "sqlite://$db" --workload read --threads "$t" --pool-size 10 --ops $((quick ? 20000 : 100000)) \
    --baseline --no-progress --json "$tmp/read-$t.json" >/dev/null
  python3 - "$tmp/read-$t.json" "$t" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
b = r["baseline"]
print(f'{sys.argv[2]}\t{r["throughput_ops_s"]:.0f}\t{b["throughput_ops_s"]:.0f}\t{b["speedup"]:.1f}x\t'
      f'{r["latency_us"]["op"]["p99"]:.1f}\t{b["latency_us"]["op"]["p99"]:.1f}')
PY
done

echo
echo "== 3. 100 threads x $((big_ops / 100)) ops on the embedded SQLite default (select1, pool of 10) =="
"$pb" stress --threads 100 --ops "$big_ops" --no-progress --json "$tmp/big.json" >/dev/null || true
python3 - "$tmp/big.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
o, p = r["ops"], r["pool"]
print(f'ops {o["total"]}, ok {o["ok"]}, failed {o["failed"]}, timed out {o["timed_out"]}, leaks {len(r["leaks"])}, '
      f'throughput {r["throughput_ops_s"]:.0f} ops/s, op p99 {r["latency_us"]["op"]["p99"]:.1f} us, '
      f'peak_total {p["peak_total"]}/{p["max_size"]}, hit ratio {p["hit_ratio"]:.4f}, verdict {r["verdict"]}')
PY
