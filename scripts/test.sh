#!/usr/bin/env bash
# The whole test suite: installs what is missing, then
#   1. builds with warnings as errors and runs every CTest test (unit, sqlite, cli, install);
#   2. builds with ThreadSanitizer and runs the concurrency tests again;
#   3. measures lib/ line and branch coverage and fails below the floor.
# Exits non-zero on the first failing step.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/bootstrap.sh

step() { printf '\n==== %s ====\n' "$*"; }

step "build (release, -Werror)"
dir=$(scripts/build.sh release)
step "ctest (release)"
ctest --test-dir "$dir" --output-on-failure -j "${POOLBENCH_JOBS:-2}" --timeout 600

step "build (ThreadSanitizer)"
tsan=$(scripts/build.sh tsan)
step "ctest (ThreadSanitizer: unit and sqlite tiers)"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  ctest --test-dir "$tsan" --output-on-failure -j "${POOLBENCH_JOBS:-2}" --timeout 900 -R '^(unit_tests|sqlite_tests):'

step "coverage of lib/"
scripts/coverage.sh
