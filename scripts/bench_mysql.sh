#!/usr/bin/env bash
# MariaDB side by side, on one throwaway MariaDB 10.11 server (scripts/mariadb_sandbox.sh)
# in one run:
#   sysbench (one connection per thread, no pool) running the very statement poolbench's
#   read workload runs — SELECT balance FROM poolbench_accounts WHERE id = ? (prepared, a
#   random id of the seeded rows) — through a 10-line Lua script, vs
#   poolbench stress --workload read, at 8 threads (pool 8) and at 100 threads on a pool of
#   10 (sysbench then with 10 and with 100 threads/connections);
#   sysbench's own oltp_point_select (SELECT c FROM sbtest1 WHERE id=?, CHAR(120)) for
#   reference, at 8 threads;
#   poolbench pooled vs --baseline (a new connection per operation).
#   scripts/bench_mysql.sh [--quick] [--rounds N]
# Rounds interleave the tools (sysbench, poolbench, sysbench, ...) and the tables report
# medians and the per-round ratio range: client and server share 2 cores here.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
quick=0; rounds=
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    --rounds) shift; rounds=${1:-}; [[ $rounds =~ ^[1-9][0-9]?$ ]] || { echo "bench_mysql.sh: --rounds takes 1-99" >&2; exit 2; } ;;
    *) echo "bench_mysql.sh: unknown option '$1' (use --quick, --rounds N)" >&2; exit 2 ;;
  esac
  shift
done
scripts/bootstrap.sh
dir=$(scripts/build.sh release)
pb=$dir/src/poolbench
secs=$((quick ? 3 : 6))
rounds=${rounds:-$((quick ? 2 : 5))}
rows=10000
eval "$(scripts/mariadb_sandbox.sh start)"
tmp=$(mktemp -d)
trap 'scripts/mariadb_sandbox.sh stop "$POOLBENCH_MARIADB_DIR" || true; rm -rf "$tmp"' EXIT

# The URL's parts for sysbench.
rest=${POOLBENCH_MARIADB_URL#mariadb://}
user=${rest%%:*}; rest=${rest#*:}; pw=${rest%%@*}; rest=${rest#*@}
host=${rest%%:*}; rest=${rest#*:}; port=${rest%%/*}; db=${rest#*/}
sb=(--db-driver=mysql --mysql-host="$host" --mysql-port="$port" --mysql-user="$user" --mysql-password="$pw"
    --mysql-db="$db" --mysql-ssl=off)

cat > "$tmp/pb_read.lua" <<LUA
-- poolbench's read workload, as sysbench runs it: one prepared point select per event.
function thread_init()
  drv = sysbench.sql.driver()
  con = drv:connect()
  stmt = con:prepare("SELECT balance FROM poolbench_accounts WHERE id = ?")
  param = stmt:bind_create(sysbench.sql.type.INT)
  stmt:bind_param(param)
end
function event()
  param:set(sysbench.rand.uniform(1, $rows))
  local rs = stmt:execute()
  rs:free()
end
function thread_done()
  stmt:close()
  con:disconnect()
end
LUA

sysbench_tps() {  # threads, script... ; prints events/s
  local t=$1; shift
  sysbench "$@" "${sb[@]}" --threads="$t" --time="$secs" --report-interval=0 run 2>/dev/null |
    sed -nE 's/^ +transactions: +[0-9]+ +\(([0-9.]+) per sec.*/\1/p' | head -n 1
}
poolbench_run() {  # json, threads, pool, extra args...
  local json=$1 t=$2 p=$3; shift 3
  "$pb" stress --db "$POOLBENCH_MARIADB_URL?ssl_mode=disabled" --workload read --rows "$rows" --threads "$t" \
    --pool-size "$p" --min-idle "$p" --no-progress --json "$json" "$@" >/dev/null
}
ops_of() { python3 -c 'import json,sys; print("%.0f" % json.load(open(sys.argv[1]))["throughput_ops_s"])' "$1"; }

# Seed poolbench_accounts (poolbench's own setup) and sysbench's sbtest1.
poolbench_run "$tmp/seed.json" 1 1 --ops 10
sysbench oltp_point_select "${sb[@]}" --tables=1 --table-size="$rows" prepare >/dev/null

echo "== MariaDB $(mariadb --version | sed -nE 's/.*(Distrib|from) ([0-9.]+).*/\2/p' | head -n1) sandbox, point select on $rows rows: $rounds interleaved rounds of ${secs}s per point =="
: > "$tmp/rounds.tsv"
for ((r = 1; r <= rounds; r++)); do
  s8=$(sysbench_tps 8 "$tmp/pb_read.lua")
  poolbench_run "$tmp/r.json" 8 8 --duration "${secs}s"; p8=$(ops_of "$tmp/r.json")
  s10=$(sysbench_tps 10 "$tmp/pb_read.lua")
  poolbench_run "$tmp/r.json" 100 10 --duration "${secs}s"; p100=$(ops_of "$tmp/r.json")
  max100=$(python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["latency_us"]["acquire"]["max"] / 1000))' "$tmp/r.json")
  s100=$(sysbench_tps 100 "$tmp/pb_read.lua")
  ps8=$(sysbench_tps 8 oltp_point_select --tables=1 --table-size="$rows")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s8" "$p8" "$s10" "$p100" "$s100" "$ps8" "$max100" >> "$tmp/rounds.tsv"
  printf 'round %d: sysbench 8 threads %.0f, poolbench 8/8 %s; sysbench 10 threads %.0f, poolbench 100/10 %s (longest acquire %s ms), sysbench 100 threads %.0f; oltp_point_select 8 threads %.0f\n' \
    "$r" "$s8" "$p8" "$s10" "$p100" "$max100" "$s100" "$ps8"
done
python3 - "$tmp/rounds.tsv" <<'PY'
import statistics as st, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
print("case\tsysbench_events_s(median)\tpoolbench_ops_s(median)\tratio_of_medians\tper-round ratios (min-max)")
for name, a, b in (("8 threads, 8 connections (poolbench pool 8)", 0, 1),
                   ("sysbench 10 threads / poolbench 100 threads, pool 10", 2, 3),
                   ("sysbench 100 threads / poolbench 100 threads, pool 10", 4, 3),
                   ("sysbench oltp_point_select 8 threads / poolbench 8/8", 5, 1)):
    s = st.median(r[a] for r in rows); p = st.median(r[b] for r in rows)
    ratios = [r[b] / r[a] for r in rows]
    print(f"{name}\t{s:.0f}\t{p:.0f}\t{p / s:.2f}x\t{min(ratios):.2f}-{max(ratios):.2f}")
print(f"longest acquire at 100 threads / pool 10, per round (ms): {', '.join('%.1f' % r[6] for r in rows)}")
PY

echo
echo "== client CPU per operation at 8 threads (perf stat: task-clock and context switches of the load tool) =="
if command -v perf >/dev/null && perf stat -e task-clock true >/dev/null 2>&1; then
  printf 'tool\tops_s\tclient_cpu_us_per_op\tcontext_switches_per_op\n'
  perf stat -x, -e task-clock,context-switches -o "$tmp/perf_sb.txt" \
    sysbench "$tmp/pb_read.lua" "${sb[@]}" --threads=8 --time="$secs" --report-interval=0 run > "$tmp/sb.txt" 2>/dev/null
  perf stat -x, -e task-clock,context-switches -o "$tmp/perf_pb.txt" \
    "$pb" stress --db "$POOLBENCH_MARIADB_URL?ssl_mode=disabled" --workload read --rows "$rows" --threads 8 \
    --pool-size 8 --min-idle 8 --duration "${secs}s" --no-progress --json "$tmp/p.json" >/dev/null
  python3 - "$tmp/sb.txt" "$tmp/perf_sb.txt" "$tmp/p.json" "$tmp/perf_pb.txt" <<'PY'
import json, re, sys
def perf(path):
    d = {}
    for line in open(path):
        f = line.split(",")
        if len(f) > 3 and f[0].replace(".", "", 1).isdigit(): d[f[2]] = float(f[0])
    return d
m = re.search(r"transactions:\s+(\d+)\s+\(([0-9.]+) per sec", open(sys.argv[1]).read())
sb_ops, sb_rate = (int(m.group(1)), float(m.group(2))) if m else (1, 0.0)
r = json.load(open(sys.argv[3])); pb_ops = r["ops"]["total"]
for name, ops, rate, d in (("sysbench", sb_ops, sb_rate, perf(sys.argv[2])),
                           ("poolbench", pb_ops, r["throughput_ops_s"], perf(sys.argv[4]))):
    print(f'{name}\t{rate:.0f}\t{d.get("task-clock", 0) * 1000 / max(1, ops):.1f}\t{d.get("context-switches", 0) / max(1, ops):.2f}')
PY
else
  echo "(perf is not installed or not permitted here: apt-get install linux-perf)"
fi

echo
echo "== pooled vs a new connection per operation (8 threads) =="
"$pb" stress --db "$POOLBENCH_MARIADB_URL?ssl_mode=disabled" --workload read --rows "$rows" --threads 8 --pool-size 8 \
  --duration "${secs}s" --baseline --no-progress --json "$tmp/base.json" >/dev/null
python3 - "$tmp/base.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); b = r["baseline"]
print("pooled_ops_s\tbaseline_ops_s\tspeedup")
print(f'{r["throughput_ops_s"]:.0f}\t{b["throughput_ops_s"]:.0f}\t{b["speedup"]:.1f}x')
PY
