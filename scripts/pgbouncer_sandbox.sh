#!/usr/bin/env bash
# pgbouncer_sandbox.sh — a throwaway PgBouncer (transaction pooling) in front of a running
# PostgreSQL, for tests and benchmarks.
#
#   eval "$(scripts/pgbouncer_sandbox.sh start [PG_URL [LIMITED_URL]])"
#        start one in front of PG_URL (default $POOLBENCH_PG_URL: the URL scripts/pg_sandbox.sh
#        prints, postgresql://USER:PASSWORD@HOST:PORT/DB without %-escapes or a query);
#        LIMITED_URL (default $POOLBENCH_PG_LIMITED_URL, optional) names a second user of the
#        same server, let in as a plain user (not on the console); prints:
#        export POOLBENCH_PGBOUNCER_URL=postgresql://USER:<pw>@127.0.0.1:<port>/DB
#        export POOLBENCH_PGBOUNCER_LIMITED_URL=...   (with a LIMITED_URL)
#        export POOLBENCH_PGBOUNCER_DIR=<dir>
#   scripts/pgbouncer_sandbox.sh stop [DIR]        stop it and remove DIR (default
#                                                  $POOLBENCH_PGBOUNCER_DIR); idempotent
#   scripts/pgbouncer_sandbox.sh run CMD [ARG...]  start (in front of $POOLBENCH_PG_URL), run
#                                                  CMD with the variables exported, stop on exit
#                                                  (even when CMD fails); exits with CMD's status.
#        Both at once: scripts/pg_sandbox.sh run scripts/pgbouncer_sandbox.sh run CMD
#
# Only the URL is needed, not the PostgreSQL sandbox's directory: PgBouncer reaches the
# server over TCP with the same user and password, so any server with scram-sha-256 (or
# md5) password auth works. The URL's user is PgBouncer's only user (auth_file with its
# plain password, auth_type=scram-sha-256, so clients authenticate with SCRAM as with the
# server) and its admin and stats user: `psql "postgresql://USER:PW@127.0.0.1:PORT/pgbouncer"
# -c 'SHOW POOLS'` works. The one database is the URL's, under the same name. The limited
# user (pg_sandbox.sh's poolbench_limited) may use it but not the console: PgBouncer refuses
# it there with "not allowed".
#
# PgBouncer listens on 127.0.0.1 only, on a port the kernel picked (its Unix socket lives
# inside DIR), with pool_mode=transaction, default_pool_size=10 (so 20 client threads share
# 10 server connections), max_client_conn=500, no reserve pool.
#
# Quiet on success; on failure one line on stderr plus the tail of PgBouncer's log.
# Works as root (PgBouncer then runs as the `postgres` OS user, as pg_sandbox.sh runs the
# server, through runuser) or as an ordinary user. No TTY needed.
# POOLBENCH_PGBOUNCER_BIN overrides the pgbouncer binary (default: from PATH, /usr/sbin);
# POOLBENCH_PG_BIN where psql and pg_isready are found (default as pg_sandbox.sh).
set -euo pipefail

prog=pgbouncer_sandbox
marker=.poolbench-pgbouncer-sandbox
pool_size=10

die() {
    printf '%s: %s\n' "$prog" "$1" >&2
    if [[ -n "${2:-}" && -f "$2" ]]; then
        printf '%s: last lines of %s:\n' "$prog" "$2" >&2
        tail -n 20 "$2" | sed 's/^/    /' >&2
    fi
    exit 1
}

find_pgbouncer() {
    if [[ -n "${POOLBENCH_PGBOUNCER_BIN:-}" ]]; then
        [[ -x "$POOLBENCH_PGBOUNCER_BIN" ]] || die "POOLBENCH_PGBOUNCER_BIN=$POOLBENCH_PGBOUNCER_BIN is not executable"
        printf '%s\n' "$POOLBENCH_PGBOUNCER_BIN"
        return 0
    fi
    local p
    p=$(PATH="$PATH:/usr/sbin:/usr/local/sbin" command -v pgbouncer) ||
        die "no pgbouncer found (install the Debian package pgbouncer: scripts/bootstrap.sh, or set POOLBENCH_PGBOUNCER_BIN)"
    printf '%s\n' "$p"
}

# psql and pg_isready (PostgreSQL's client binaries).
find_pg_bin() {
    if [[ -n "${POOLBENCH_PG_BIN:-}" && -x "$POOLBENCH_PG_BIN/psql" ]]; then
        printf '%s\n' "$POOLBENCH_PG_BIN"
        return 0
    fi
    local d best=""
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/psql" && -x "$d/pg_isready" ]] && best=$d
    done
    [[ -n "$best" ]] || die "no psql / pg_isready found (install postgresql-client, or set POOLBENCH_PG_BIN)"
    printf '%s\n' "$best"
}

# Runs a command as the sandbox owner, from inside the sandbox directory.
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

# The PgBouncer process's pid from its pidfile ("" when there is none).
bouncer_pid() {
    [[ -f "$dir/pgbouncer.pid" ]] && tr -dc '0-9' <"$dir/pgbouncer.pid" || true
}

# Stops the PgBouncer of $dir, if it runs: SIGTERM (immediate shutdown), then SIGKILL
# when it has not exited within 10 s.
stop_bouncer() {
    local pid
    pid=$(bouncer_pid)
    [[ -n "$pid" ]] || return 0
    # Only the process this sandbox started: its command line names this sandbox's config.
    if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/pgbouncer.ini"; then
        return 0  # gone (or the pid was reused): nothing of ours runs
    fi
    kill -TERM "$pid" 2>/dev/null || return 0
    local i
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
}

cmd_start() {
    local pg_url=${1:-${POOLBENCH_PG_URL:-}}
    [[ -n "$pg_url" ]] || die "in front of which server? pass its URL or set POOLBENCH_PG_URL (eval \"\$(scripts/pg_sandbox.sh start)\")"
    local re='^postgres(ql)?://([^:@/?]+):([^@/?]+)@([^:/?]+):([0-9]+)/([^/?]+)$'
    [[ "$pg_url" =~ $re ]] ||
        die "cannot read the server URL: expected postgresql://USER:PASSWORD@HOST:PORT/DB without a query or %-escapes"
    local user=${BASH_REMATCH[2]} pw=${BASH_REMATCH[3]} pg_host=${BASH_REMATCH[4]} pg_port=${BASH_REMATCH[5]}
    local db=${BASH_REMATCH[6]}
    [[ "$pw$user$db" != *%* && "$pw$user" != *'"'* ]] || die "the server URL's user, password or database has %-escapes or quotes; use plain ones"
    local limited_url=${2:-${POOLBENCH_PG_LIMITED_URL:-}} limited_user="" limited_pw=""
    if [[ -n "$limited_url" ]]; then
        [[ "$limited_url" =~ $re ]] ||
            die "cannot read the limited URL: expected postgresql://USER:PASSWORD@HOST:PORT/DB without a query or %-escapes"
        limited_user=${BASH_REMATCH[2]} limited_pw=${BASH_REMATCH[3]}
        [[ "$limited_pw$limited_user" != *%* && "$limited_pw$limited_user" != *'"'* && "$limited_user" != "$user" ]] ||
            die "the limited URL's user or password has %-escapes or quotes, or is the main user"
    fi
    local bouncer pg_bin
    bouncer=$(find_pgbouncer)
    pg_bin=$(find_pg_bin)
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' OS user to run PgBouncer"
    fi
    local base=${TMPDIR:-/tmp}
    [[ $(id -u) -eq 0 && "$base" != /tmp ]] && base=/tmp
    dir=$(mktemp -d "$base/poolbench-pgbouncer.XXXXXX") || die "cannot create a temp directory under $base"
    touch "$dir/$marker"
    chmod 700 "$dir"
    trap 'cleanup_failed_start' EXIT

    # The plain password: PgBouncer checks clients with SCRAM against it and logs in to
    # the server with it.
    printf '"%s" "%s"\n' "$user" "$pw" >"$dir/userlist.txt"
    [[ -z "$limited_user" ]] || printf '"%s" "%s"\n' "$limited_user" "$limited_pw" >>"$dir/userlist.txt"
    chmod 600 "$dir/userlist.txt"
    local log=$dir/pgbouncer.log port started=0
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        cat >"$dir/pgbouncer.ini" <<EOF
; poolbench sandbox: transaction pooling in front of $pg_host:$pg_port
[databases]
$db = host=$pg_host port=$pg_port dbname=$db

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir = $dir
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
admin_users = $user
stats_users = $user
pool_mode = transaction
default_pool_size = $pool_size
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 500
max_db_connections = 0
server_lifetime = 3600
server_idle_timeout = 600
; libpq-based clients may send these; PgBouncer would refuse the connection otherwise
ignore_startup_parameters = extra_float_digits
logfile = $log
pidfile = $dir/pgbouncer.pid
log_connections = 0
log_disconnections = 0
EOF
        [[ $(id -u) -eq 0 ]] && chown -R postgres: "$dir"
        rm -f "$log"
        as_owner "$bouncer" -d -q "$dir/pgbouncer.ini" >"$dir/start.out" 2>&1 ||
            die "pgbouncer did not start (the sandbox was removed)" "$dir/start.out"
        # -d returns once the daemon runs; it binds after that: wait until it answers.
        local i ready=0
        for ((i = 0; i < 100; i++)); do
            if "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U "$user" -d "$db" -t 1 >/dev/null 2>&1; then
                ready=1
                break
            fi
            local pid
            pid=$(bouncer_pid)
            if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then break; fi  # it exited
            sleep 0.05
        done
        if [[ $ready -eq 1 ]]; then
            started=1
            break
        fi
        stop_bouncer
        # Another process may have taken the port between picking and binding it: retry.
        grep -q 'Address already in use' "$log" 2>/dev/null || break
    done
    [[ $started -eq 1 ]] || die "PgBouncer did not come up (the sandbox was removed)" "$log"

    # One query through it and one on its console, so a wrong password or server fails here.
    local url="postgresql://$user:$pw@127.0.0.1:$port/$db"
    if ! "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -d "$url" -c 'SELECT 1' >"$dir/check.log" 2>&1; then
        die "PgBouncer runs but a query through it to $pg_host:$pg_port failed (the sandbox was removed)" "$dir/check.log"
    fi
    if ! "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -d "postgresql://$user:$pw@127.0.0.1:$port/pgbouncer" \
        -c 'SHOW VERSION' >>"$dir/check.log" 2>&1; then
        die "PgBouncer's admin console refused $user (the sandbox was removed)" "$dir/check.log"
    fi
    printf '%s\n' "$port" >"$dir/port"
    trap - EXIT

    printf 'export POOLBENCH_PGBOUNCER_URL=%s\n' "$url"
    [[ -z "$limited_user" ]] ||
        printf 'export POOLBENCH_PGBOUNCER_LIMITED_URL=postgresql://%s:%s@127.0.0.1:%s/%s\n' "$limited_user" "$limited_pw" "$port" "$db"
    printf 'export POOLBENCH_PGBOUNCER_DIR=%s\n' "$dir"
}

cleanup_failed_start() {
    local rc=$?
    if [[ -n "${dir:-}" && -f "$dir/$marker" ]]; then
        stop_bouncer
        rm -rf "$dir"
    fi
    exit "$rc"
}

cmd_stop() {
    dir=${1:-${POOLBENCH_PGBOUNCER_DIR:-}}
    [[ -n "$dir" ]] || die "which sandbox? pass its directory or set POOLBENCH_PGBOUNCER_DIR"
    [[ -e "$dir" ]] || return 0  # already gone: stopping is idempotent
    [[ -f "$dir/$marker" ]] || die "$dir is not a pgbouncer_sandbox directory; not touching it"
    stop_bouncer
    local pid
    pid=$(bouncer_pid)
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/pgbouncer.ini"; then
        die "cannot stop PgBouncer (pid $pid) in $dir (left in place)" "$dir/pgbouncer.log"
    fi
    rm -rf "$dir"
}

cmd_run() {
    [[ $# -gt 0 ]] || die "usage: $0 run CMD [ARG...]"
    local exports
    exports=$(cmd_start) || exit 1
    eval "$exports"
    trap 'cmd_stop "$POOLBENCH_PGBOUNCER_DIR"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    local rc=0
    "$@" || rc=$?
    exit "$rc"
}

case "${1:-}" in
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    run) shift; cmd_run "$@" ;;
    *)
        printf 'usage: %s start [PG_URL [LIMITED_URL]] | stop [DIR] | run CMD [ARG...]\n' "$0" >&2
        exit 2
        ;;
esac
