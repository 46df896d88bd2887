#!/usr/bin/env bash
# Line and branch coverage of lib/ from the unit, sqlite, pg and mariadb tiers and the diagnose tests
# (gcov via gcovr). The pg tiers use POOLBENCH_PG_URL and POOLBENCH_PGBOUNCER_URL (pg_replica also
# POOLBENCH_PG_STANDBY_URL/_DIR), the mariadb tiers POOLBENCH_MARIADB_URL (and _DIR, _ADMIN_URL, ...);
# a throwaway server (or PgBouncer) is started (and stopped) for what is not set.
# Prints the summary; exits 1 when line coverage is below POOLBENCH_COVERAGE_FLOOR (95).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/bootstrap.sh
floor=${POOLBENCH_COVERAGE_FLOOR:-95}
started_pg= started_pgbouncer= started_mariadb= started_standby=
stop_started() {
  if [[ -n $started_standby ]]; then scripts/pg_sandbox.sh stop "$started_standby" || true; fi
  if [[ -n $started_mariadb ]]; then scripts/mariadb_sandbox.sh stop "$started_mariadb" || true; fi
  if [[ -n $started_pgbouncer ]]; then scripts/pgbouncer_sandbox.sh stop "$started_pgbouncer" || true; fi
  if [[ -n $started_pg ]]; then scripts/pg_sandbox.sh stop "$started_pg" || true; fi
}
trap stop_started EXIT
if [[ -z ${POOLBENCH_PG_URL:-} ]]; then
  exports=$(scripts/pg_sandbox.sh start)
  eval "$exports"
  started_pg=$POOLBENCH_PG_DIR
fi
if [[ -z ${POOLBENCH_PG_STANDBY_URL:-} ]]; then  # the pg_replica tier's standby
  exports=$(scripts/pg_sandbox.sh start-standby "${POOLBENCH_PG_DIR:-}")
  eval "$exports"
  started_standby=$POOLBENCH_PG_STANDBY_DIR
fi
if [[ -z ${POOLBENCH_PGBOUNCER_URL:-} ]]; then
  exports=$(scripts/pgbouncer_sandbox.sh start "$POOLBENCH_PG_URL")
  eval "$exports"
  started_pgbouncer=$POOLBENCH_PGBOUNCER_DIR
fi
if [[ -z ${POOLBENCH_MARIADB_URL:-} ]]; then
  exports=$(scripts/mariadb_sandbox.sh start)
  eval "$exports"
  started_mariadb=$POOLBENCH_MARIADB_DIR
fi
dir=$(scripts/build.sh coverage)
find "$dir" -name '*.gcda' -delete
ctest --test-dir "$dir" -j "${POOLBENCH_JOBS:-2}" --timeout 900 -R '^(unit_tests|sqlite_tests|pg_tests|pg_fault_tests|pg_replica_tests|mariadb_tests|mariadb_fault_tests):' >/dev/null \
  || { echo "coverage: tests failed in the coverage build" >&2; ctest --test-dir "$dir" --rerun-failed --output-on-failure | tail -50; exit 1; }
# diagnose() is lib/ code that its end-to-end tests drive through the CLI (sessions left
# idle in transaction, lock chains, a write lock held by another process).
# A failure shows the run that failed (its failed cases), not a second run that may pass.
(cd "$dir/tests" && ./cli_tests '[diagnose]' >"$dir/diagnose.log" 2>&1) \
  || { echo "coverage: the diagnose tests failed in the coverage build" >&2; grep -B2 -A25 'FAILED' "$dir/diagnose.log" | head -120; tail -3 "$dir/diagnose.log"; exit 1; }
# MariaDB's diagnose while the server is read-only, a replica, or full (changes the whole
# server: run alone, after the rest).
(cd "$dir/tests" && ./cli_fault_tests '[diagnose]' >"$dir/diagnose-server.log" 2>&1) \
  || { echo "coverage: the diagnose tests failed in the coverage build" >&2; grep -B2 -A25 'FAILED' "$dir/diagnose-server.log" | head -120; tail -3 "$dir/diagnose-server.log"; exit 1; }
gcovr --root "$root" --filter "$root/lib/" --object-directory "$dir" \
  --exclude-unreachable-branches --exclude-throw-branches --print-summary \
  --txt "$dir/coverage.txt" --json-summary "$dir/coverage.json" | tail -3
line=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['line_percent'])" "$dir/coverage.json")
echo "lib/ line coverage ${line}% (floor ${floor}%)"
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)" "$line" "$floor" \
  || { echo "coverage: lib/ line coverage ${line}% is below the ${floor}% floor; see $dir/coverage.txt" >&2; exit 1; }
