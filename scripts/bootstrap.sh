#!/usr/bin/env bash
# Installs the Debian packages poolbench needs to build, test and benchmark.
# Idempotent: asks apt only for what is missing, and does nothing when all is there.
#   scripts/bootstrap.sh            build + test dependencies
#   scripts/bootstrap.sh --bench    also pgbench peers' extras (none beyond postgresql today)
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config clang
  libcli11-dev libfmt-dev libsqlite3-dev libpq-dev
  catch2 libtomlplusplus-dev nlohmann-json3-dev libboost-stacktrace-dev
  libcpp-httplib-dev
  chromium libpng-dev  # the HTML report's render test: a headless screenshot, decoded, pixels checked per chart
  postgresql postgresql-contrib
  pgbouncer  # scripts/pgbouncer_sandbox.sh: transaction pooling in front of the throwaway PostgreSQL
  mariadb-server libmariadb-dev sysbench  # the MariaDB driver, its throwaway server (scripts/mariadb_sandbox.sh), the sysbench peer
  gcovr
  python3 python3-yaml   # cli_tests parses deploy/k8s/poolbench-agents.yaml (Debian 12's kubectl predates Indexed Jobs)
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "bootstrap: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "bootstrap: need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "bootstrap: done" >&2
