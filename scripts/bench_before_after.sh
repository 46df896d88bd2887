#!/usr/bin/env bash
# Did a change make the pool slower? Builds REV (default: the commit before the pool core
# split) beside the working tree and measures both in one run, alternating, with HikariCP
# in the same rounds:
#   1. the pool alone (bench/pool_bench, null://, pool of 10) at 1, 2, 8 and 100 threads;
#   2. with --pg: `poolbench stress --workload select1` on a throwaway PostgreSQL at
#      8 threads (pool 8) and 100 threads (pool 10).
#   scripts/bench_before_after.sh [--rev REV] [--rounds N] [--secs S] [--pg] [--no-hikari]
# Prints, per case, the median ops/s of each and the ratios new/old and new/HikariCP with
# their range over the rounds. Ratios measured together are the figure to quote on a shared
# 2-core machine; absolute numbers drift by tens of percent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rev=1728a2f; rounds=5; secs=3; pg=0; hikari=1
while (($#)); do
  case $1 in
    --rev) shift; rev=${1:?--rev takes a commit} ;;
    --rounds) shift; rounds=${1:?}; [[ $rounds =~ ^[1-9][0-9]?$ ]] || { echo "bench_before_after.sh: --rounds takes 1-99" >&2; exit 2; } ;;
    --secs) shift; secs=${1:?}; [[ $secs =~ ^[1-9][0-9]?$ ]] || { echo "bench_before_after.sh: --secs takes 1-99" >&2; exit 2; } ;;
    --pg) pg=1 ;;
    --no-hikari) hikari=0 ;;
    *) echo "bench_before_after.sh: unknown option '$1' (use --rev REV, --rounds N, --secs S, --pg, --no-hikari)" >&2; exit 2 ;;
  esac
  shift
done
scripts/bootstrap.sh
new=$(scripts/build.sh release)
sha=$(git rev-parse --short "$rev^{commit}")
old_src=$root/build/rev-$sha-src; old=$root/build/rev-$sha
if [[ ! -x $old/bench/pool_bench || ! -x $old/src/poolbench ]]; then
  rm -rf "$old_src"; git worktree prune
  git worktree add -f --detach "$old_src" "$sha" >/dev/null
  cmake -S "$old_src" -B "$old" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$old" -j "${POOLBENCH_JOBS:-$(nproc)}" --target pool_bench poolbench >/dev/null
  git worktree remove --force "$old_src"
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
peer=$root/../shared/peers/hikaricp/run.sh
[[ -x $peer ]] || hikari=0

echo "== pool alone: null:// acquire+release, pool of 10; $rounds rounds of ${secs}s, order old, new, HikariCP =="
for ((r = 1; r <= rounds; r++)); do
  "$old/bench/pool_bench" 1 "$secs" 1 1,2,8,100 10 | awk -v r="$r" -F'\t' '$2 ~ /^[0-9]+$/ {print "old\t" $2 "\t" $4}' >>"$tmp/pool"
  "$new/bench/pool_bench" 1 "$secs" 1 1,2,8,100 10 | awk -v r="$r" -F'\t' '$2 ~ /^[0-9]+$/ {print "new\t" $2 "\t" $4}' >>"$tmp/pool"
  if ((hikari)); then
    "$peer" stub 1 "$secs" 1 1,2,8,100 2>/dev/null | awk -F'\t' '$2 ~ /^[0-9]+$/ {print "hikari\t" $2 "\t" $4}' >>"$tmp/pool" || true
  fi
done

if ((pg)); then
  eval "$(scripts/pg_sandbox.sh start)"
  trap 'scripts/pg_sandbox.sh stop "$POOLBENCH_PG_DIR" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
  echo "== PostgreSQL: stress --workload select1, ${secs}s; $rounds rounds, order old, new =="
  for ((r = 1; r <= rounds; r++)); do
    for who in old new; do
      bin=$old/src/poolbench; [[ $who == new ]] && bin=$new/src/poolbench
      for tp in 8:8 100:10; do
        t=${tp%%:*}; p=${tp##*:}
        "$bin" stress --db "$POOLBENCH_PG_URL" --workload select1 --threads "$t" --pool-size "$p" --duration "${secs}s" \
          --json "$tmp/r.json" >/dev/null 2>&1 || true
        python3 -c 'import json,sys; print(sys.argv[1] + "\tpg-" + sys.argv[2] + "\t" + str(json.load(open(sys.argv[3]))["throughput_ops_s"]))' \
          "$who" "$t" "$tmp/r.json" >>"$tmp/pool" 2>/dev/null || true
      done
    done
  done
fi

python3 - "$tmp/pool" <<'PY'
import sys, statistics
from collections import defaultdict
runs = defaultdict(lambda: defaultdict(list))
for line in open(sys.argv[1]):
    who, case, v = line.rstrip("\n").split("\t")
    runs[case][who].append(float(v))
def key(c):
    return (c.startswith("pg-"), int(c.split("-")[-1]))
print("case\told_ops_s\tnew_ops_s\tnew/old (range)\thikari_ops_s\tnew/hikari (range)")
for case in sorted(runs, key=key):
    r = runs[case]
    med = lambda xs: statistics.median(xs) if xs else float("nan")
    def ratio(a, b):
        pairs = [x / y for x, y in zip(r[a], r[b]) if y]
        if not pairs: return "-"
        return f"{statistics.median(pairs):.2f}x ({min(pairs):.2f}-{max(pairs):.2f})"
    name = case if case.startswith("pg-") else f"{case} threads"
    print(f"{name}\t{med(r['old']):.0f}\t{med(r['new']):.0f}\t{ratio('new','old')}\t"
          f"{med(r['hikari']):.0f}\t{ratio('new','hikari')}")
PY
