#!/usr/bin/env bash
# PostgreSQL side by side, on one throwaway server in one run:
#   pgbench (SELECT 1, prepared mode; no pool: one connection per client) vs
#   poolbench stress --workload select1 with the same number of connections,
#   at 8 clients (8 threads, pool 8) and at 100 threads on a pool of 10, against pgbench
#   with 10 clients (the same connections, no waiting) and with 100 clients (the same
#   threads, a connection each), the latter both with -j 100 (a thread per client, as
#   poolbench has) and -j 2 (two threads multiplexing 50 connections each);
#   the fairness trade-off at 100 threads (starvation_threshold vs throughput and waits);
#   what a queued acquire costs the client (perf stat: CPU and context switches per op);
#   poolbench pooled vs --baseline (a new connection per operation), next to pgbench -C;
#   optionally HikariCP with the PostgreSQL JDBC driver (../shared/peers/hikaricp).
#   scripts/bench_pg.sh [--quick] [--no-hikari] [--rounds N]
# The comparisons run in interleaved rounds (pgbench, poolbench, pgbench, ...) and report
# medians: on a shared 2-core machine where client and server compete for the CPUs, one
# run of either swings by 5-10% with where the scheduler happens to place the threads.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
quick=0; hikari=1; rounds=
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    --no-hikari) hikari=0 ;;
    --rounds) shift; rounds=${1:-}; [[ $rounds =~ ^[1-9][0-9]?$ ]] || { echo "bench_pg.sh: --rounds takes 1-99" >&2; exit 2; } ;;
    *) echo "bench_pg.sh: unknown option '$1' (use --quick, --no-hikari, --rounds N)" >&2; exit 2 ;;
  esac
  shift
done
scripts/bootstrap.sh
dir=$(scripts/build.sh release)
pb=$dir/src/poolbench
secs=$((quick ? 3 : 6))
rounds=${rounds:-$((quick ? 2 : 5))}
eval "$(scripts/pg_sandbox.sh start)"
tmp=$(mktemp -d)
trap 'scripts/pg_sandbox.sh stop "$POOLBENCH_PG_DIR" || true; rm -rf "$tmp"' EXIT
printf 'SELECT 1;\n' > "$tmp/select1.sql"

pgbench_tps() {  # clients, extra args... (-j defaults to the clients; a later -j wins)
  local c=$1; shift
  "$POOLBENCH_PG_BIN/pgbench" -n -f "$tmp/select1.sql" -c "$c" -j "$c" "$@" "$POOLBENCH_PG_URL" 2>/dev/null |
    sed -nE 's/^tps = ([0-9.]+) .*/\1/p' | head -n 1
}
poolbench_run() {  # json, threads, pool, extra args...
  local json=$1 t=$2 p=$3; shift 3
  "$pb" stress --db "$POOLBENCH_PG_URL" --workload select1 --threads "$t" --pool-size "$p" --min-idle "$p" \
    --no-progress --json "$json" "$@" >/dev/null
}
ops_of() { python3 -c 'import json,sys; print("%.0f" % json.load(open(sys.argv[1]))["throughput_ops_s"])' "$1"; }

echo "== PostgreSQL 15 sandbox, SELECT 1: $rounds interleaved rounds of ${secs}s per point =="
: > "$tmp/rounds.tsv"
for ((r = 1; r <= rounds; r++)); do
  pg8=$(pgbench_tps 8 -M prepared -T "$secs")
  poolbench_run "$tmp/r.json" 8 8 --duration "${secs}s"; pb8=$(ops_of "$tmp/r.json")
  pg10=$(pgbench_tps 10 -M prepared -T "$secs")
  poolbench_run "$tmp/r.json" 100 10 --duration "${secs}s"; pb100=$(ops_of "$tmp/r.json")
  max100=$(python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["latency_us"]["acquire"]["max"] / 1000))' "$tmp/r.json")
  pg100=$(pgbench_tps 100 -M prepared -T "$secs")
  pg100j2=$(pgbench_tps 100 -j 2 -M prepared -T "$secs")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$pg8" "$pb8" "$pg10" "$pb100" "$pg100" "$pg100j2" "$max100" >> "$tmp/rounds.tsv"
  printf 'round %d: pgbench 8 clients %.0f, poolbench 8/8 %s; pgbench 10 clients %.0f, poolbench 100/10 %s (longest acquire %s ms), pgbench 100 clients -j 100 %.0f, -j 2 %.0f\n' \
    "$r" "$pg8" "$pb8" "$pg10" "$pb100" "$max100" "$pg100" "$pg100j2"
done
python3 - "$tmp/rounds.tsv" <<'PY'
import statistics as st, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
print("case\tpgbench_tps(median)\tpoolbench_ops_s(median)\tratio_of_medians\tper-round ratios (min-max)")
for name, a, b in (("8 clients / 8 threads, pool 8", 0, 1), ("pgbench 10 clients / 100 threads, pool 10", 2, 3),
                   ("pgbench 100 clients -j 100 / 100 threads, pool 10", 4, 3),
                   ("pgbench 100 clients -j 2 / 100 threads, pool 10", 5, 3)):
    pg = st.median(r[a] for r in rows); pb = st.median(r[b] for r in rows)
    ratios = [r[b] / r[a] for r in rows]
    print(f"{name}\t{pg:.0f}\t{pb:.0f}\t{pb / pg:.2f}x\t{min(ratios):.2f}-{max(ratios):.2f}")
print(f"longest acquire at 100 threads / pool 10, per round (ms): {', '.join('%.1f' % r[6] for r in rows)}")
PY

echo
echo "== fairness vs throughput: 100 threads on a pool of 10 =="
printf 'starvation_threshold\tops_s\tqueued_acquires\tacquire_p99_ms\tacquire_max_ms\n'
for th in 0ms 10ms 100ms 1s; do
  poolbench_run "$tmp/f.json" 100 10 --duration "${secs}s" --starvation-threshold "$th"
  python3 - "$tmp/f.json" "$th" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); a = r["latency_us"]["acquire"]
label = sys.argv[2] + (" (strict FIFO)" if sys.argv[2] == "0ms" else " (default)" if sys.argv[2] == "10ms" else "")
print(f'{label}\t{r["throughput_ops_s"]:.0f}\t{r["pool"]["waits"] / max(1, r["ops"]["total"]):.1%}\t{a["p99"] / 1000:.1f}\t{a["max"] / 1000:.1f}')
PY
done

echo
echo "== what a queued acquire costs the client: CPU and context switches per operation (perf stat) =="
if command -v perf >/dev/null && perf stat -e task-clock true >/dev/null 2>&1; then
  printf 'case\tops_s\tqueued_acquires\tclient_cpu_us_per_op\tcontext_switches_per_op\n'
  for c in "10 10 10ms" "100 10 1s" "100 10 10ms" "100 10 0ms"; do
    read -r t p th <<< "$c"
    perf stat -x, -e task-clock,context-switches -o "$tmp/perf.txt" \
      "$pb" stress --db "$POOLBENCH_PG_URL" --workload select1 --threads "$t" --pool-size "$p" --min-idle "$p" \
      --duration "${secs}s" --starvation-threshold "$th" --no-progress --json "$tmp/p.json" >/dev/null
    python3 - "$tmp/p.json" "$tmp/perf.txt" "$t threads, pool $p, threshold $th" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); ops = r["ops"]["total"]
d = {}
for line in open(sys.argv[2]):
    f = line.split(",")
    if len(f) > 3 and f[0].replace(".", "", 1).isdigit(): d[f[2]] = float(f[0])
print(f'{sys.argv[3]}\t{r["throughput_ops_s"]:.0f}\t{r["pool"]["waits"] / max(1, ops):.1%}\t'
      f'{d.get("task-clock", 0) * 1000 / max(1, ops):.1f}\t{d.get("context-switches", 0) / max(1, ops):.2f}')
PY
  done
else
  echo "(perf is not installed or not permitted here: apt-get install linux-perf)"
fi

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
