#!/usr/bin/env bash
# pg_sandbox.sh — a throwaway PostgreSQL server for tests and benchmarks.
#
#   eval "$(scripts/pg_sandbox.sh start)"   start one; prints the two export lines:
#        export POOLBENCH_PG_URL=postgresql://poolbench:<pw>@127.0.0.1:<port>/poolbench
#        export POOLBENCH_PG_LIMITED_URL=...  (poolbench_limited: a role with CONNECT only)
#        export POOLBENCH_PG_DIR=<dir>
#   scripts/pg_sandbox.sh stop [DIR]        stop it and remove DIR (default $POOLBENCH_PG_DIR)
#   scripts/pg_sandbox.sh restart [DIR]     pg_ctl restart -m fast (same port, same data)
#   scripts/pg_sandbox.sh restart-command [DIR]
#                                           prints the command that restarts it, for
#                                           poolbench run --restart-command "$(...)"
#   scripts/pg_sandbox.sh halt [DIR]        stop the server, keep DIR (for outage tests)
#   scripts/pg_sandbox.sh resume [DIR]      start a halted server again (same port, same data)
#   scripts/pg_sandbox.sh run CMD [ARG...]  start, run CMD with the variables exported, stop
#                                           on exit (even when CMD fails); exits with CMD's status
#   eval "$(scripts/pg_sandbox.sh start-standby [PRIMARY_DIR])"
#                                           a streaming-replication hot standby of a running
#                                           sandbox (default $POOLBENCH_PG_DIR): pg_basebackup
#                                           into its own DIR, started on its own port, streaming
#                                           before this returns; prints
#        export POOLBENCH_PG_STANDBY_URL=postgresql://poolbench:<pw>@127.0.0.1:<port>/poolbench
#        export POOLBENCH_PG_STANDBY_DIR=<dir>
#                                           stop/halt/resume/restart take its DIR like any other
#   scripts/pg_sandbox.sh promote DIR       pg_ctl promote a standby: it becomes a primary
#
# The server listens on 127.0.0.1 only (scram-sha-256 password auth) on a port the kernel
# picked, plus a Unix socket inside DIR; fsync and synchronous_commit are off (data is
# thrown away), max_connections=300. The user `poolbench` owns the database `poolbench`.
# pgbench works against it: "$POOLBENCH_PG_BIN/pgbench" -i "$POOLBENCH_PG_URL".
# Every sandbox can be a replication primary: wal_level=replica, max_wal_senders=10,
# wal_keep_size=256MB (a halted standby catches up), and the role poolbench_replicator
# (REPLICATION, same password as poolbench) may open replication connections over
# 127.0.0.1. DIR/password (mode 600) keeps that password for start-standby. poolbench may
# run pg_promote() (granted on the primary, so its standbys have it too).
#
# Quiet on success; on failure one line on stderr plus the tail of the server log.
# Works as root (server commands run as the `postgres` OS user through runuser) or as an
# ordinary user (the server then runs as that user). No TTY needed.
# POOLBENCH_PG_BIN overrides where initdb/pg_ctl/psql are found.
set -euo pipefail

prog=pg_sandbox
marker=.poolbench-pg-sandbox

die() {
    printf '%s: %s\n' "$prog" "$1" >&2
    if [[ -n "${2:-}" && -f "$2" ]]; then
        printf '%s: last lines of %s:\n' "$prog" "$2" >&2
        tail -n 20 "$2" | sed 's/^/    /' >&2
    fi
    exit 1
}

find_bin() {
    if [[ -n "${POOLBENCH_PG_BIN:-}" ]]; then
        [[ -x "$POOLBENCH_PG_BIN/pg_ctl" ]] || die "POOLBENCH_PG_BIN=$POOLBENCH_PG_BIN has no pg_ctl"
        printf '%s\n' "$POOLBENCH_PG_BIN"
        return 0  # not a bare return: in an EXIT trap that would return the script's exit status
    fi
    local d best=""
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/pg_ctl" ]] && best=$d  # the glob sorts; the last is the newest major... mostly
    done
    if [[ -z "$best" ]] && command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir)
        [[ -x "$d/pg_ctl" ]] && best=$d
    fi
    [[ -n "$best" ]] || die "no PostgreSQL server binaries found (install postgresql, or set POOLBENCH_PG_BIN)"
    printf '%s\n' "$best"
}

# Runs a server command as the sandbox owner, from inside the sandbox directory (the
# postgres user cannot read root's working directory).
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        (cd "$dir" && runuser -u postgres -- "$@")
    else
        (cd "$dir" && "$@")
    fi
}

free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
    else
        echo $((20000 + RANDOM % 40000))
    fi
}

random_password() {
    od -An -N18 -tx1 /dev/urandom | tr -d ' \n'
}

cmd_start() {
    local bin base
    bin=$(find_bin)
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' OS user to run the server"
    fi
    base=${TMPDIR:-/tmp}
    # The server user must be able to reach the directory; a private TMPDIR may not allow it.
    [[ $(id -u) -eq 0 && "$base" != /tmp ]] && base=/tmp
    dir=$(mktemp -d "$base/poolbench-pg.XXXXXX") || die "cannot create a temp directory under $base"
    touch "$dir/$marker"
    local data=$dir/data log=$dir/server.log pw
    pw=$(random_password)
    chmod 700 "$dir"
    [[ $(id -u) -eq 0 ]] && chown -R postgres: "$dir"

    # If anything below fails, take the half-made sandbox down.
    trap 'cleanup_failed_start' EXIT

    printf '%s\n' "$pw" >"$dir/pwfile"
    chmod 600 "$dir/pwfile"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$dir/pwfile"
    if ! as_owner "$bin/initdb" -D "$data" -U postgres -E UTF8 --locale=C --auth-local=trust \
        --auth-host=scram-sha-256 --pwfile="$dir/pwfile" >"$dir/initdb.log" 2>&1; then
        die "initdb failed in $data" "$dir/initdb.log"
    fi

    # Only TCP over loopback, password-checked; the Unix socket lives in the private dir.
    cat >"$data/pg_hba.conf" <<EOF
# poolbench sandbox: local socket (inside $dir, mode 700) trusted; TCP needs a password.
local   all   all                 trust
host    all   all   127.0.0.1/32  scram-sha-256
host    replication   poolbench_replicator   127.0.0.1/32  scram-sha-256
EOF
    local port started=0
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        cat >"$data/postgresql.auto.conf" <<EOF
# poolbench sandbox settings (throwaway data: durability off)
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
password_encryption = 'scram-sha-256'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = '32MB'
logging_collector = off
wal_level = replica
max_wal_senders = 10
wal_keep_size = '256MB'
hot_standby = on
EOF
        [[ $(id -u) -eq 0 ]] && chown postgres: "$data/pg_hba.conf" "$data/postgresql.auto.conf"
        if as_owner "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null 2>&1; then
            started=1
            break
        fi
        # Another process may have taken the port between picking and binding it: retry.
        grep -q 'could not bind\|Address already in use' "$log" 2>/dev/null || break
    done
    [[ $started -eq 1 ]] || die "the PostgreSQL server did not start (the sandbox was removed)" "$log"

    # poolbench_limited: a least-privilege role (CONNECT only; tests grant it what they test).
    # poolbench has CREATEROLE: tests create roles of their own (a connection limit, no
    # pg_read_all_stats) and drop them.
    local sql="CREATE ROLE poolbench LOGIN CREATEROLE PASSWORD '$pw'; GRANT pg_signal_backend TO poolbench;
               CREATE ROLE poolbench_limited LOGIN PASSWORD '$pw'; GRANT poolbench_limited TO poolbench;
               CREATE ROLE poolbench_replicator LOGIN REPLICATION PASSWORD '$pw';"
    if ! as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres \
        -c "$sql" -c "CREATE DATABASE poolbench OWNER poolbench" >"$dir/setup.log" 2>&1; then
        die "creating the poolbench user and database failed" "$dir/setup.log"
    fi
    # pg_promote: the replica.promote fault promotes a standby with SQL. A function's grant
    # lives in each database: granted in poolbench's, on the primary, so every standby made
    # from it has it too.
    if ! as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d poolbench \
        -c "GRANT EXECUTE ON FUNCTION pg_promote(boolean, integer) TO poolbench" >>"$dir/setup.log" 2>&1; then
        die "granting pg_promote to poolbench failed" "$dir/setup.log"
    fi
    mv "$dir/pwfile" "$dir/password"  # mode 600: for start-standby
    printf '%s\n' "$port" >"$dir/port"
    trap - EXIT

    printf 'export POOLBENCH_PG_URL=postgresql://poolbench:%s@127.0.0.1:%s/poolbench\n' "$pw" "$port"
    printf 'export POOLBENCH_PG_LIMITED_URL=postgresql://poolbench_limited:%s@127.0.0.1:%s/poolbench\n' "$pw" "$port"
    printf 'export POOLBENCH_PG_DIR=%s\n' "$dir"
    printf 'export POOLBENCH_PG_BIN=%s\n' "$bin"
}

# A hot standby of the running sandbox PRIMARY_DIR, in a sandbox directory of its own.
cmd_start_standby() {
    local primary=${1:-${POOLBENCH_PG_DIR:-}} bin base pport pw
    [[ -n "$primary" ]] || die "which primary? pass its directory or set POOLBENCH_PG_DIR"
    [[ -f "$primary/$marker" ]] || die "$primary is not a pg_sandbox directory"
    [[ -f "$primary/data/postmaster.pid" ]] || die "the primary in $primary is not running"
    [[ -f "$primary/password" ]] ||
        die "$primary has no password file: it was started by an older pg_sandbox.sh (start it again)"
    pport=$(<"$primary/port")
    pw=$(<"$primary/password")
    bin=$(find_bin)
    base=$(dirname "$primary")
    dir=$(mktemp -d "$base/poolbench-pg-standby.XXXXXX") || die "cannot create a temp directory under $base"
    touch "$dir/$marker"
    chmod 700 "$dir"
    [[ $(id -u) -eq 0 ]] && chown -R postgres: "$dir"
    trap 'cleanup_failed_start' EXIT
    local data=$dir/data log=$dir/server.log
    local conninfo="host=127.0.0.1 port=$pport user=poolbench_replicator password=$pw application_name=poolbench_standby"
    # -c fast: an immediate checkpoint on the primary; -X stream: the WAL needed to start.
    if ! as_owner "$bin/pg_basebackup" -d "$conninfo" -D "$data" -X stream -c fast >"$dir/basebackup.log" 2>&1; then
        die "pg_basebackup from the primary in $primary failed" "$dir/basebackup.log"
    fi
    as_owner touch "$data/standby.signal"
    local port started=0
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        # Replaces the primary's copy (its port and socket directory) entirely.
        cat >"$data/postgresql.auto.conf" <<EOF
# poolbench sandbox standby of $primary (throwaway data: durability off)
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
password_encryption = 'scram-sha-256'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = '32MB'
logging_collector = off
wal_level = replica
max_wal_senders = 10
wal_keep_size = '256MB'
hot_standby = on
primary_conninfo = '$conninfo'
wal_retrieve_retry_interval = '200ms'
EOF
        [[ $(id -u) -eq 0 ]] && chown postgres: "$data/postgresql.auto.conf"
        if as_owner "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null 2>&1; then
            started=1
            break
        fi
        grep -q 'could not bind\|Address already in use' "$log" 2>/dev/null || break
    done
    [[ $started -eq 1 ]] || die "the standby did not start (the sandbox was removed)" "$log"
    # Return once it streams from the primary, so callers never race its first connection.
    local state="" i
    for ((i = 0; i < 300; i++)); do
        state=$(as_owner "$bin/psql" -X -q -At -h "$dir" -p "$port" -U postgres -d postgres \
            -c "SELECT status FROM pg_stat_wal_receiver" 2>/dev/null || true)
        [[ "$state" == streaming ]] && break
        sleep 0.1
    done
    [[ "$state" == streaming ]] || die "the standby in $dir started but does not stream from $primary" "$log"
    cp "$primary/password" "$dir/password"
    printf '%s\n' "$port" >"$dir/port"
    trap - EXIT

    printf 'export POOLBENCH_PG_STANDBY_URL=postgresql://poolbench:%s@127.0.0.1:%s/poolbench\n' "$pw" "$port"
    printf 'export POOLBENCH_PG_STANDBY_DIR=%s\n' "$dir"
}

cmd_promote() {
    sandbox_dir "${1:-}"
    [[ -f "$dir/$marker" ]] || die "$dir is not a pg_sandbox directory"
    [[ -f "$dir/data/standby.signal" ]] || die "$dir is not a standby"
    as_owner "$(find_bin)/pg_ctl" -D "$dir/data" -w -t 60 promote >/dev/null 2>&1 ||
        die "promoting the standby in $dir/data failed" "$dir/server.log"
}

cleanup_failed_start() {
    local rc=$?
    if [[ -n "${dir:-}" && -f "$dir/$marker" ]]; then
        if [[ -f "$dir/data/postmaster.pid" ]]; then
            as_owner "$(find_bin)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
        fi
        rm -rf "$dir"
    fi
    exit "$rc"
}

sandbox_dir() {
    dir=${1:-${POOLBENCH_PG_DIR:-}}
    [[ -n "$dir" ]] || die "which sandbox? pass its directory or set POOLBENCH_PG_DIR"
}

cmd_stop() {
    sandbox_dir "${1:-}"
    [[ -e "$dir" ]] || return 0  # already gone: stopping is idempotent
    [[ -f "$dir/$marker" ]] || die "$dir is not a pg_sandbox directory; not touching it"
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        local bin
        bin=$(find_bin)
        if ! as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1; then
            as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 ||
                die "cannot stop the server in $dir/data (left in place)" "$dir/server.log"
        fi
    fi
    rm -rf "$dir"
}

cmd_halt() {
    sandbox_dir "${1:-}"
    [[ -f "$dir/$marker" ]] || die "$dir is not a pg_sandbox directory"
    as_owner "$(find_bin)/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
        die "stopping the server in $dir/data failed" "$dir/server.log"
}

cmd_resume() {
    sandbox_dir "${1:-}"
    [[ -f "$dir/$marker" ]] || die "$dir is not a pg_sandbox directory"
    as_owner "$(find_bin)/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null 2>&1 ||
        die "starting the server in $dir/data failed" "$dir/server.log"
}

cmd_restart() {
    sandbox_dir "${1:-}"
    [[ -f "$dir/$marker" ]] || die "$dir is not a pg_sandbox directory"
    local bin
    bin=$(find_bin)
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null 2>&1 ||
        die "restarting the server in $dir/data failed" "$dir/server.log"
}

cmd_restart_command() {
    sandbox_dir "${1:-}"
    [[ -f "$dir/$marker" ]] || die "$dir is not a pg_sandbox directory"
    printf '%q restart %q\n' "$(cd "$(dirname "$0")" && pwd)/$(basename "$0")" "$dir"
}

cmd_run() {
    [[ $# -gt 0 ]] || die "usage: $0 run CMD [ARG...]"
    local exports
    exports=$(cmd_start) || exit 1
    eval "$exports"
    # Stop on every exit path: normal, CMD failure, or a signal.
    trap 'cmd_stop "$POOLBENCH_PG_DIR"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    local rc=0
    "$@" || rc=$?
    exit "$rc"
}

case "${1:-}" in
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    restart) shift; cmd_restart "$@" ;;
    restart-command) shift; cmd_restart_command "$@" ;;
    halt) shift; cmd_halt "$@" ;;
    resume) shift; cmd_resume "$@" ;;
    run) shift; cmd_run "$@" ;;
    start-standby) shift; cmd_start_standby "$@" ;;
    promote) shift; cmd_promote "$@" ;;
    *)
        printf 'usage: %s start | stop [DIR] | restart [DIR] | restart-command [DIR] | halt [DIR] | resume [DIR] | run CMD [ARG...] | start-standby [PRIMARY_DIR] | promote DIR\n' "$0" >&2
        exit 2
        ;;
esac
