#!/usr/bin/env bash
# Figures for the scenario engine that the README quotes, measured in one run:
#   scripts/bench_scenario.sh [--quick]
# 1. The load tool's own cost: `poolbench stress --db null://` (the scenario engine: workers,
#    sampler, histograms, report) against bench/pool_bench (the pool alone, HikariCP's
#    method), alternating, at 1, 2, 8 and 100 threads; median ratio and per-round range.
# 2. Recovery after a fault, repeated: lock-recovery-sqlite (another process holds the
#    write lock) and connection-storm on SQLite (connections dropped and refused under
#    100 threads), shortened; median and range of recovery_ms, outage_ms and stalled_ms.
# Absolute figures on a shared 2-core machine drift by tens of percent: read the ratios.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
quick=0
for a in "$@"; do
  case $a in
    --quick) quick=1 ;;
    *) echo "bench_scenario.sh: unknown option '$a' (use --quick)" >&2; exit 2 ;;
  esac
done
scripts/bootstrap.sh
dir=$(scripts/build.sh release)
pb=$dir/src/poolbench
if ((quick)); then rounds=2; secs=2; repeats=2; else rounds=5; secs=4; repeats=5; fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

echo "== 1. the load tool's cost: stress --db null:// vs the pool alone (pool of 10, ${secs}s, $rounds rounds, alternating) =="
for ((r = 1; r <= rounds; ++r)); do
  for t in 1 2 8 100; do
    pool=$("$dir/bench/pool_bench" 1 "$secs" 1 "$t" 10 | awk -F'\t' -v t="$t" '$2==t{print $4}')
    tool=$("$pb" stress --db null:// --threads "$t" --duration "${secs}s" --no-progress --json - 2>/dev/null |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["throughput_ops_s"])')
    printf '%s\t%s\t%s\t%s\n' "$r" "$t" "$pool" "$tool" >>"$tmp/cost.tsv"
  done
done
python3 - "$tmp/cost.tsv" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
print("threads\tpool_alone_ops_s\tstress_ops_s\tratio (median)\tper-round range")
for t in sorted({int(r[1]) for r in rows}):
    mine = [(float(r[2]), float(r[3])) for r in rows if int(r[1]) == t]
    ratios = [b / a for a, b in mine]
    print(f"{t}\t{statistics.median(a for a, _ in mine)/1e6:.2f} M\t{statistics.median(b for _, b in mine)/1e6:.2f} M"
          f"\t{statistics.median(ratios):.2f}x\t{min(ratios):.2f}-{max(ratios):.2f}")
PY

echo
echo "== 2. recovery after a fault ($repeats runs each, SQLite in a temporary directory) =="
for ((i = 1; i <= repeats; ++i)); do
  "$pb" run lock-recovery-sqlite --no-progress --json "$tmp/lock-$i.json" \
    --set phase.load.duration=6s --set phase.load.fault.1.at=2s --set phase.load.fault.1.for=2s >/dev/null || true
  "$pb" run connection-storm --no-progress --json "$tmp/storm-$i.json" \
    --set phase.storm.duration=6s --set phase.storm.fault.1.at=2s --set phase.storm.fault.1.for=2s >/dev/null || true
done
python3 - "$tmp" "$repeats" <<'PY'
import json, statistics, sys
tmp, n = sys.argv[1], int(sys.argv[2])
print("scenario\tfault\trecovery_ms (median, range)\toutage_ms\tstalled_ms\tfailed during\tverdicts")
for name, label in (("lock", "lock-recovery-sqlite (write lock 2 s)"), ("storm", "connection-storm (2 s)")):
    faults, verdicts = [], []
    for i in range(1, n + 1):
        j = json.load(open(f"{tmp}/{name}-{i}.json"))
        faults.append(j["faults"][0])
        verdicts.append(j["verdict"])
    def col(key):
        v = [f[key] for f in faults if f[key] is not None]
        if not v:
            return "none"
        return f"{statistics.median(v):.0f} ({min(v):.0f}-{max(v):.0f})"
    print(f"{label}\t{faults[0]['kind']}\t{col('recovery_ms')}\t{col('outage_ms')}\t{col('stalled_ms')}"
          f"\t{col('failed')}\t{','.join(verdicts)}")
PY
