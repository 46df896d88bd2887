# Sourced by bench_writes.sh and bench_gate_tail.sh: sets $bench to the write_bench binary.
#   POOLBENCH_WRITE_BENCH=FILE  that binary (e.g. one built from an older commit)
#   POOLBENCH_BUILD_DIR=DIR     build it in an existing build directory
#   otherwise                   scripts/build.sh release
# Exits 3 when it was not built. $1: the calling script's name, for the message.
if [[ -n ${POOLBENCH_WRITE_BENCH:-} ]]; then
  bench=$POOLBENCH_WRITE_BENCH
elif [[ -n ${POOLBENCH_BUILD_DIR:-} ]]; then
  cmake --build "$POOLBENCH_BUILD_DIR" -j "${POOLBENCH_JOBS:-$(nproc)}" --target write_bench >&2
  bench=$POOLBENCH_BUILD_DIR/bench/write_bench
else
  bench=$(scripts/build.sh release)/bench/write_bench
fi
[[ -x $bench ]] || { echo "$1: $bench was not built (POOLBENCH_BUILD_BENCH=ON?)" >&2; exit 3; }
