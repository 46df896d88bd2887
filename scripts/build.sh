#!/usr/bin/env bash
# Configures and builds one flavour of the project into build/<flavour>.
#   scripts/build.sh [release|tsan|asan|coverage]   (default release)
# Prints the build directory on stdout. Reuses an existing configuration.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
flavour=${1:-release}
dir=$root/build/$flavour
args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOOLBENCH_WERROR=ON)
case $flavour in
  release) ;;
  tsan) args+=(-DPOOLBENCH_SANITIZE=thread -DPOOLBENCH_BUILD_BENCH=OFF) ;;
  asan) args+=(-DPOOLBENCH_SANITIZE=address -DPOOLBENCH_BUILD_BENCH=OFF) ;;
  coverage) args=(-DCMAKE_BUILD_TYPE=Debug -DPOOLBENCH_COVERAGE=ON -DPOOLBENCH_BUILD_BENCH=OFF) ;;
  *) echo "build.sh: unknown flavour '$flavour' (use release, tsan, asan or coverage)" >&2; exit 2 ;;
esac
jobs=${POOLBENCH_JOBS:-$(nproc)}
if [[ ! -f $dir/CMakeCache.txt ]]; then
  cmake -S "$root" -B "$dir" "${args[@]}" >&2
fi
cmake --build "$dir" -j "$jobs" >&2
echo "$dir"
