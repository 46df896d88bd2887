#!/usr/bin/env bash
# PostgreSQL side by side, on one throwaway server in one run:
#   pgbench (SELECT 1, prepared mode; no pool: one connection per client) vs
#   poolbench stress --workload select1 with the same number of connections,
#   at 8 clients (8 threads, pool 8) and at 100 threads on a pool of 10 (pgbench: 10 clients);
#   poolbench pooled vs --baseline (a new connection per operation), next to pgbench -C;
#   optionally HikariCP with the PostgreSQL JDBC driver (../shared/peers/hikaricp).
#   scripts/bench_pg.sh [--quick] [--no-hikari]
# Absolute figures on a shared 2-core machine drift by tens of percent: compare the ratios.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
quick=0; hikari=1
for a in "$@"; do
  case $a in
    --quick) quick=1 ;;
    --no-hikari) hikari=0 ;;
    *) echo "bench_pg.sh: unknown option '$a' (use --quick, --no-hikari)" >&2; exit 2 ;;
  esac
done
scripts/bootstrap.sh
dir=$(scripts/build.sh release)
pb=$dir/src/poolbench
secs=$((quick ? 5 : 15))
eval "$(scripts/pg_sandbox.sh start)"
tmp=$(mktemp -d)
trap 'scripts/pg_sandbox.sh stop "$POOLBENCH_PG_DIR" || true; rm -rf "$tmp"' EXIT
printf 'SELECT 1;\n' > "$tmp/select1.sql"

pgbench_tps() {  # clients, extra args...
  local c=$1; shift
  "$POOLBENCH_PG_BIN/pgbench" -n -f "$tmp/select1.sql" -c "$c" -j "$c" "$@" "$POOLBENCH_PG_URL" 2>/dev/null |
    sed -nE 's/^tps = ([0-9.]+) .*/\1/p' | head -n 1
}
poolbench_ops() {  # threads, pool, extra args...
  local t=$1 p=$2; shift 2
  "$pb" stress --db "$POOLBENCH_PG_URL" --workload select1 --threads "$t" --pool-size "$p" --min-idle "$p" \
    --no-progress --json "$tmp/pb.json" "$@" >/dev/null
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%.0f" % r["throughput_ops_s"])' "$tmp/pb.json"
}
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}x')" "$1" "$2"; }

echo "== PostgreSQL 15 sandbox, SELECT 1, ${secs}s per point =="
printf 'case\tpgbench_tps\tpoolbench_ops_s\tratio\n'
pg8=$(pgbench_tps 8 -M prepared -T "$secs")
pb8=$(poolbench_ops 8 8 --duration "${secs}s")
printf '8 clients / 8 threads, pool 8\t%.0f\t%s\t%s\n' "$pg8" "$pb8" "$(ratio "$pb8" "$pg8")"
pg10=$(pgbench_tps 10 -M prepared -T "$secs")
pb100=$(poolbench_ops 100 10 --duration "${secs}s")
printf '10 clients / 100 threads, pool 10\t%.0f\t%s\t%s\n' "$pg10" "$pb100" "$(ratio "$pb100" "$pg10")"
pb100f=$(poolbench_ops 100 10 --duration "${secs}s" --starvation-threshold 100ms)
printf '10 clients / 100 threads, pool 10, --starvation-threshold 100ms\t%.0f\t%s\t%s\n' "$pg10" "$pb100f" "$(ratio "$pb100f" "$pg10")"

echo
echo "== pooled vs a new connection per operation (8 threads) =="
"$pb" stress --db "$POOLBENCH_PG_URL" --workload select1 --threads 8 --pool-size 8 --duration "${secs}s" \
  --baseline --no-progress --json "$tmp/base.json" >/dev/null
pgc=$(pgbench_tps 8 -C -T "$((quick ? 3 : 5))")
python3 - "$tmp/base.json" "$pgc" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); b = r["baseline"]
print("pooled_ops_s\tbaseline_ops_s\tspeedup\tpgbench_-C_tps")
print(f'{r["throughput_ops_s"]:.0f}\t{b["throughput_ops_s"]:.0f}\t{b["speedup"]:.0f}x\t{float(sys.argv[2]):.0f}')
PY

peer=$root/../shared/peers/hikaricp/run.sh
if ((hikari)) && [[ -x $peer ]]; then
  echo
  echo "== HikariCP 2.7.9 + PostgreSQL JDBC, same server (SELECT 1 prepared) =="
  user_pw_host=${POOLBENCH_PG_URL#postgresql://}
  user=${user_pw_host%%:*}; rest=${user_pw_host#*:}; pw=${rest%%@*}; hostdb=${rest#*@}
  PEER_JDBC_URL="jdbc:postgresql://$hostdb" PEER_PG_USER=$user PEER_PG_PASSWORD=$pw \
    "$peer" pg "$((quick ? 1 : 3))" "$((quick ? 3 : 5))" 2 2>/dev/null || echo "(HikariCP harness failed)"
fi
