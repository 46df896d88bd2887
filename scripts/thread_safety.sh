#!/usr/bin/env bash
# Clang's thread-safety analysis over lib/: every field marked POOLBENCH_GUARDED_BY is
# only touched with its mutex held, every POOLBENCH_REQUIRES function only called so.
# Syntax only (no second build): about 15 s of CPU. Exits non-zero on the first finding.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
flags=(-std=c++20 -fsyntax-only -Wthread-safety -Werror
       -DBOOST_STACKTRACE_LINK -DBOOST_STACKTRACE_USE_BACKTRACE
       $(pkg-config --cflags libpq sqlite3 libmariadb) -Ilib/include -Ilib/src)
status=0
for f in lib/src/*.cpp lib/src/pool/*.cpp; do
  clang++ "${flags[@]}" "$f" || { echo "thread_safety: $f has findings (above)" >&2; status=1; }
done
exit $status
