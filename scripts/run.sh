#!/usr/bin/env bash
# The main job: installs what is missing, builds if needed, runs poolbench.
#   scripts/run.sh                         → poolbench stress --threads 100 (embedded SQLite)
#   scripts/run.sh stress --db null:// …   → any poolbench command line
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/bootstrap.sh"
dir=$("$root/scripts/build.sh" release)
if (($# == 0)); then
  set -- stress --threads 100
fi
exec "$dir/src/poolbench" "$@"
