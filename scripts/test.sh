#!/usr/bin/env bash
# The whole test suite: installs what is missing, starts a throwaway PostgreSQL 15, a
# throwaway PgBouncer (transaction pooling) in front of it and a throwaway MariaDB 10.11 on
# 127.0.0.1 (all stopped on exit), then
#   0. checks lib/'s locking with Clang's thread-safety analysis (scripts/thread_safety.sh);
#   1. builds with warnings as errors and runs every CTest test (unit, sqlite, pg, cli, install);
#   2. builds with ThreadSanitizer and runs the library tiers again (unit, sqlite, pg, mariadb);
#   3. measures lib/ line and branch coverage and fails below the floor.
# Exits non-zero on the first failing step. A missing PostgreSQL, PgBouncer or MariaDB is a failure, never a skip.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/bootstrap.sh

step() { printf '\n==== %s ====\n' "$*"; }

unset POOLBENCH_PG_DIR POOLBENCH_PG_STANDBY_DIR POOLBENCH_PGBOUNCER_DIR POOLBENCH_MARIADB_DIR  # the trap stops only the sandboxes started here
stop_sandboxes() {
  if [[ -n "${POOLBENCH_PG_STANDBY_DIR:-}" ]]; then scripts/pg_sandbox.sh stop "$POOLBENCH_PG_STANDBY_DIR" || true; fi
  if [[ -n "${POOLBENCH_MARIADB_DIR:-}" ]]; then scripts/mariadb_sandbox.sh stop "$POOLBENCH_MARIADB_DIR" || true; fi
  if [[ -n "${POOLBENCH_PGBOUNCER_DIR:-}" ]]; then scripts/pgbouncer_sandbox.sh stop "$POOLBENCH_PGBOUNCER_DIR" || true; fi
  if [[ -n "${POOLBENCH_PG_DIR:-}" ]]; then scripts/pg_sandbox.sh stop "$POOLBENCH_PG_DIR" || true; fi
}
trap stop_sandboxes EXIT
hide_password() { printf '%s' "$1" | sed -E 's#//([^:/@]+):[^@]*@#//\1:***@#'; }

step "throwaway PostgreSQL"
exports=$(scripts/pg_sandbox.sh start)  # not eval "$(...)": that would hide a failed start from set -e
eval "$exports"
echo "PostgreSQL sandbox at $(hide_password "$POOLBENCH_PG_URL")"
# Its streaming-replication standby (the pg_replica tier): POOLBENCH_PG_STANDBY_URL/_DIR.
exports=$(scripts/pg_sandbox.sh start-standby "$POOLBENCH_PG_DIR")
eval "$exports"
echo "PostgreSQL standby at $(hide_password "$POOLBENCH_PG_STANDBY_URL")"

step "throwaway PgBouncer (transaction pooling, in front of that PostgreSQL)"
exports=$(scripts/pgbouncer_sandbox.sh start "$POOLBENCH_PG_URL")
eval "$exports"
echo "PgBouncer sandbox at $(hide_password "$POOLBENCH_PGBOUNCER_URL")"

step "throwaway MariaDB"
exports=$(scripts/mariadb_sandbox.sh start)
eval "$exports"
echo "MariaDB sandbox at $(hide_password "$POOLBENCH_MARIADB_URL")"

jobs=${POOLBENCH_JOBS:-2}
step "thread-safety analysis (Clang -Wthread-safety over lib/)"
scripts/thread_safety.sh

step "build (release, -Werror)"
dir=$(scripts/build.sh release)
step "ctest (release)"
ctest --test-dir "$dir" --output-on-failure -j "$jobs" --timeout 600

step "build (ThreadSanitizer)"
tsan=$(scripts/build.sh tsan)
step "ctest (ThreadSanitizer: unit, sqlite, pg, pg_replica and mariadb tiers, the scenario engine end to end, the metrics endpoint, replicas and shards)"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  ctest --test-dir "$tsan" --output-on-failure -j "$jobs" --timeout 900 -R '^(unit_tests|sqlite_tests|pg_tests|pg_replica_tests|mariadb_tests):|^cli_tests:(run|metrics|topology): |^cli_fault_tests:topology: '

step "coverage of lib/"
scripts/coverage.sh
