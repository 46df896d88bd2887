#!/usr/bin/env bash
# SQLite writers on one file: throughput, errors, retries, lost writes and p99 latency at
# 1, 8 and 100 threads, with and without a WriterGate (bench/write_bench.cpp).
#   scripts/bench_writes.sh [--quick] [--threads LIST]
# Two workloads per thread count:
#   insert  BEGIN IMMEDIATE; INSERT; COMMIT           (writers wait in BEGIN)
#   rmw     BEGIN DEFERRED; SELECT; INSERT; COMMIT    (the lock upgrade fails busy under
#                                                      contention: retried by run_in_transaction)
# Each point runs for a fixed time (3 s; 1 s with --quick) on a fresh WAL file and verifies
# its rows afterwards; the script exits 1 if any point lost a write.
# POOLBENCH_BUILD_DIR=DIR uses an existing build directory instead of scripts/build.sh release.
# Absolute figures on a shared 2-core machine drift by tens of percent: compare the ratios.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
secs=3; threads=1,8,100
while (($#)); do
  case $1 in
    --quick) secs=1 ;;
    --threads) threads=${2:?--threads needs a list such as 1,8,100}; shift ;;
    *) echo "bench_writes.sh: unknown option '$1' (use --quick, --threads LIST)" >&2; exit 2 ;;
  esac
  shift
done
if [[ -n ${POOLBENCH_BUILD_DIR:-} ]]; then
  dir=$POOLBENCH_BUILD_DIR
  cmake --build "$dir" -j "${POOLBENCH_JOBS:-$(nproc)}" --target write_bench >&2
else
  dir=$(scripts/build.sh release)
fi
bench=$dir/bench/write_bench
[[ -x $bench ]] || { echo "bench_writes.sh: $bench was not built (POOLBENCH_BUILD_BENCH=ON?)" >&2; exit 3; }

status=0
for workload in insert rmw; do
  echo "== SQLite writers, workload $workload, ${secs}s per point =="
  "$bench" "$secs" "$threads" "$workload" 16 5000 | column -t -s $'\t' || status=1
  echo
done
exit $status
