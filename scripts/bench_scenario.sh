#!/usr/bin/env bash
# Figures for the scenario engine that the README quotes, measured in one run:
#   scripts/bench_scenario.sh [--quick] [--cost-only] [--no-hikari] [--rounds N] [--seconds S] [--before BIN]
# 1. The load tool's own cost: `poolbench stress --db null://` (the scenario engine: workers,
#    sampler, histograms, report) against bench/pool_bench (the pool alone, HikariCP's
#    method), alternating within each round at 1, 2, 8 and 100 threads, with HikariCP's bare
#    loop (../shared/peers/hikaricp/run.sh stub) in the same rounds; median ratio
#    stress/pool_bench and its per-round range. Also CPU time per operation of each (user +
#    system of the whole process over its operations): less disturbed by other load on the
#    machine than ops/s. --cost-only stops after this part.
#    --before BIN: also `BIN stress` (a poolbench built from an earlier commit) in the same
#    rounds, for a before/after ratio measured together.
# 2. Recovery after a fault, repeated: lock-recovery-sqlite (another process holds the
#    write lock) and connection-storm on SQLite (connections dropped and refused under
#    100 threads), shortened; median and range of recovery_ms, outage_ms and stalled_ms.
# Absolute figures on a shared 2-core machine drift by tens of percent: read the ratios.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
quick=0; cost_only=0; hikari=1; rounds=; secs=; before=
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    --cost-only) cost_only=1 ;;
    --no-hikari) hikari=0 ;;
    --rounds) rounds=${2:?--rounds needs a number}; shift ;;
    --seconds) secs=${2:?--seconds needs a number}; shift ;;
    --before) before=${2:?--before needs a poolbench binary}; shift ;;
    *) echo "bench_scenario.sh: unknown option '$1' (use --quick, --cost-only, --no-hikari, --rounds N, --seconds S, --before BIN)" >&2; exit 2 ;;
  esac
  shift
done
scripts/bootstrap.sh
dir=$(scripts/build.sh release)
pb=$dir/src/poolbench
if ((quick)); then : "${rounds:=2}" "${secs:=2}"; repeats=2; else : "${rounds:=5}" "${secs:=4}"; repeats=5; fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
peer=$root/../shared/peers/hikaricp/run.sh
if ((hikari)) && [[ ! -x $peer ]]; then
  echo "(no HikariCP harness at $peer: its column is left out)" >&2
  hikari=0
fi

# CMD...: runs it, prints its stdout and, on fd 3, the CPU seconds (user + system) it used.
with_cpu() {
  python3 -c 'import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
sys.stdout.buffer.write(r.stdout)
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(u.ru_utime + u.ru_stime, file=open(3, "w", closefd=False))' "$@"
}
stress_ops_s() {  # BIN THREADS: `BIN stress --db null://`'s throughput, and its CPU ns per operation
  with_cpu "$1" stress --db null:// --threads "$2" --duration "${secs}s" --no-progress --json - 3>"$tmp/cpu" |
    python3 -c 'import json,sys; j = json.load(sys.stdin); cpu = float(open(sys.argv[1]).read())
print(j["throughput_ops_s"], 1e9 * cpu / max(j["ops"]["total"], 1))' "$tmp/cpu"
}

echo "== 1. the load tool's cost: stress --db null:// vs the pool alone (pool of 10, ${secs}s, $rounds rounds, alternating) =="
# In each round and thread count: the pool alone, the pool under the runner, HikariCP's bare
# loop, one after the other, so a ratio compares figures taken seconds apart.
for ((r = 1; r <= rounds; ++r)); do
  for t in 1 2 8 100; do
    # pool_bench's CPU covers its warm-up too, and so do the acquires its last line counts.
    with_cpu "$dir/bench/pool_bench" 1 "$secs" 1 "$t" 10 >"$tmp/pool.out" 3>"$tmp/cpu"
    pool=$(awk -F'\t' -v t="$t" '$2==t{print $4}' "$tmp/pool.out")
    pool_cpu=$(sed -n 's/.*acquires \([0-9]*\),.*/\1/p' "$tmp/pool.out" | awk -v c="$(cat "$tmp/cpu")" '{print 1e9 * c / $1}')
    read -r tool tool_cpu < <(stress_ops_s "$pb" "$t")
    old=nan; old_cpu=nan
    [[ -z $before ]] || read -r old old_cpu < <(stress_ops_s "$before" "$t")
    hk=nan
    if ((hikari)); then
      hk=$("$peer" stub 1 "$secs" 1 "$t" 2>/dev/null | awk -F'\t' -v t="$t" '$2==t{print $4}') || hk=nan
      [[ -n $hk ]] || hk=nan
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$t" "$pool" "$tool" "$hk" "$old" "$pool_cpu" "$tool_cpu" "$old_cpu" >>"$tmp/cost.tsv"
    awk -v r="$r" -v t="$t" -v p="$pool" -v s="$tool" -v h="$hk" -v o="$old" -v pc="$pool_cpu" -v sc="$tool_cpu" -v oc="$old_cpu" 'BEGIN {
      printf "round %s, %s threads: pool alone %.2f M/s, stress %.2f M/s (%.2fx), HikariCP %s, before %s; CPU ns/op: pool %.0f, stress %s, before %s\n",
        r, t, p / 1e6, s / 1e6, s / p, h, o, pc, sc, oc }' >&2
  done
done
python3 - "$tmp/cost.tsv" <<'PY'
import math, statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
def rng(v):
    return f"{min(v):.2f}-{max(v):.2f}"
before = any(not math.isnan(float(r[5])) for r in rows)
print("threads\tpool_alone_ops_s\tstress_ops_s\tstress/pool (median)\tper-round range\thikari_stub_ops_s\tpool/hikari (median, range)"
      "\tCPU ns/op: pool, stress" + (", before" if before else "") + ("\tbefore: stress/pool (median, range)" if before else ""))
for t in sorted({int(r[1]) for r in rows}):
    mine = [[float(x) for x in r[2:]] for r in rows if int(r[1]) == t]
    med = lambda i: statistics.median(m[i] for m in mine)
    ratios = [m[1] / m[0] for m in mine]
    hk = [(m[0], m[2]) for m in mine if not math.isnan(m[2])]
    hcol = (f"{statistics.median(h for _, h in hk)/1e6:.2f} M\t{statistics.median(a / h for a, h in hk):.2f}x ({rng([a / h for a, h in hk])})"
            if hk else "-\t-")
    cpu = f"{med(4):.0f}, {med(5):.0f}" + (f", {med(6):.0f}" if before else "")
    old = [m[3] / m[0] for m in mine if not math.isnan(m[3])]
    ocol = f"\t{statistics.median(old):.2f}x ({rng(old)})" if old else ""
    print(f"{t}\t{med(0)/1e6:.2f} M\t{med(1)/1e6:.2f} M\t{statistics.median(ratios):.2f}x\t{rng(ratios)}\t{hcol}\t{cpu}{ocol}")
PY
((cost_only)) && exit 0

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
