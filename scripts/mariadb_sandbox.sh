#!/usr/bin/env bash
# mariadb_sandbox.sh — a throwaway MariaDB server for tests and benchmarks.
#
#   eval "$(scripts/mariadb_sandbox.sh start)"   start one; prints the export lines:
#        export POOLBENCH_MARIADB_URL=mariadb://poolbench:<pw>@127.0.0.1:<port>/poolbench
#        export POOLBENCH_MARIADB_LIMITED_URL=...  (poolbench_limited: may only connect)
#        export POOLBENCH_MARIADB_ADMIN_URL=...    (poolbench_admin: every privilege)
#        export POOLBENCH_MARIADB_DIR=<dir>
#        export POOLBENCH_MARIADB_SOCKET=<dir>/mysqld.sock
#   scripts/mariadb_sandbox.sh stop [DIR]        stop it and remove DIR (default $POOLBENCH_MARIADB_DIR)
#   scripts/mariadb_sandbox.sh restart [DIR]     normal shutdown, then start (same port, same data)
#   scripts/mariadb_sandbox.sh restart-command [DIR]
#                                                prints the command that restarts it, for
#                                                poolbench run --restart-command "$(...)"
#   scripts/mariadb_sandbox.sh halt [DIR]        stop the server, keep DIR (for outage tests)
#   scripts/mariadb_sandbox.sh resume [DIR]      start a halted server again (same port, same data)
#   scripts/mariadb_sandbox.sh run CMD [ARG...]  start, run CMD with the variables exported, stop
#                                                on exit (even when CMD fails); exits with CMD's status
#
# The server (mariadbd, with DIR/my.cnf as its only option file: /etc/mysql is not read)
# listens on 127.0.0.1 only, on a port the kernel picked, plus a Unix socket inside DIR
# (mode 700); --skip-name-resolve, so accounts are 'user'@'%'. Durability is off (the data
# is thrown away): innodb_flush_log_at_trx_commit=0, no binary log, no doublewrite buffer;
# max_connections=300, innodb_buffer_pool_size=64M. The log is DIR/server.log.
#
# Accounts (one password for all three, mysql_native_password):
#   poolbench          ALL on poolbench.* WITH GRANT OPTION, plus PROCESS, RELOAD, SUPER and
#                      CONNECTION ADMIN (KILL any thread, SET GLOBAL max_connections,
#                      wait_timeout, ...; not read_only, see below) and CREATE USER (tests make
#                      accounts of their own). Side effects: init_connect is not run for it,
#                      and it may take the one extra connection past max_connections.
#                      SET GLOBAL changes the server for every test running at the time.
#   poolbench_limited  SHOW VIEW on poolbench.* and nothing else: MariaDB refuses a default
#                      database to an account with no privilege at all on it (ERROR 1044), so
#                      this is the least that lets the URL connect. Tests grant what they test.
#   poolbench_admin    ALL PRIVILEGES ON *.*. For SET GLOBAL read_only: in MariaDB 10.11 only
#                      READ_ONLY ADMIN may set it, and READ_ONLY ADMIN also exempts its holder
#                      from it, so poolbench is deliberately without it (its writes then fail
#                      with ERROR 1290, as a workload's should).
# As the OS user root, `mariadb --socket="$POOLBENCH_MARIADB_SOCKET" -uroot` is the server's
# root too (unix_socket authentication; as another OS user, -u"$(id -un)").
# sysbench works against it: sysbench oltp_point_select --db-driver=mysql --mysql-host=127.0.0.1
#   --mysql-port=<port> --mysql-user=poolbench --mysql-password=<pw> --mysql-db=poolbench ...
#
# Quiet on success; on failure one line on stderr plus the tail of the server log, and a
# half-made sandbox is removed. Works as root (mariadbd switches to the `mysql` OS user:
# it refuses to run as root) or as an ordinary user (the server then runs as that user).
# No TTY needed.
set -euo pipefail

prog=mariadb_sandbox
marker=.poolbench-mariadb-sandbox

die() {
    printf '%s: %s\n' "$prog" "$1" >&2
    if [[ -n "${2:-}" && -f "$2" ]]; then
        printf '%s: last lines of %s:\n' "$prog" "$2" >&2
        tail -n 20 "$2" | sed 's/^/    /' >&2
    fi
    exit 1
}

need_bins() {
    local b
    for b in mariadbd mariadb-install-db mariadb mariadb-admin; do
        command -v "$b" >/dev/null 2>&1 || [[ -x /usr/sbin/$b ]] ||
            die "no $b found (install mariadb-server and mariadb-client)"
    done
}

mariadbd_bin() {
    command -v mariadbd 2>/dev/null || printf '/usr/sbin/mariadbd\n'
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

# The account that reaches the server as administrator over the socket (unix_socket auth):
# root when we are root, else the OS user mariadb-install-db was told about.
admin_user() {
    if [[ $(id -u) -eq 0 ]]; then echo root; else id -un; fi
}

# The running server's pid, or nothing (no pid file, a stale one, or another program).
server_pid() {
    local pid comm
    [[ -f "$dir/mysqld.pid" ]] || return 0
    pid=$(cat "$dir/mysqld.pid" 2>/dev/null) || return 0
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 0
    [[ "$comm" == mariadbd || "$comm" == mysqld ]] && printf '%s\n' "$pid"
    return 0
}

# Waits up to $2 tenths of a second for process $1 to end.
wait_gone() {
    local i
    for ((i = 0; i < $2; i++)); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    ! kill -0 "$1" 2>/dev/null
}

# Stops the server in $dir: a normal shutdown (SIGTERM) for up to 60 s, then SIGKILL; with
# "immediate", SIGKILL at once. Returns 1 when there was no server running.
stop_server() {
    local pid
    pid=$(server_pid)
    [[ -n "$pid" ]] || return 1
    if [[ "${1:-}" != immediate ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        wait_gone "$pid" 600 && return 0
    fi
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 100 || die "cannot stop the server (pid $pid) in $dir (left in place)" "$dir/server.log"
}

# Starts mariadbd with $dir/my.cnf and waits up to 60 s until it answers on its socket.
# Returns 0 when ready; 2 when the port was taken; 1 on any other failure.
launch_server() {
    local log=$dir/server.log lines pid i
    lines=$( (wc -l <"$log") 2>/dev/null || echo 0)
    local user=()
    [[ $(id -u) -eq 0 ]] && user=(--user=mysql)
    # A session of its own (no terminal signals) and no inherited stdout: "$(... start)"
    # must see EOF.
    (cd "$dir" && exec setsid -w "$(mariadbd_bin)" --defaults-file="$dir/my.cnf" "${user[@]}" \
        </dev/null >>"$log" 2>&1) &
    pid=$!
    for ((i = 0; i < 600; i++)); do
        if mariadb-admin --no-defaults --socket="$dir/mysqld.sock" --connect-timeout=2 \
            -u"$(admin_user)" ping >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        stop_server immediate || kill -KILL "$pid" 2>/dev/null || true
        return 1
    fi
    tail -n +"$((lines + 1))" "$log" 2>/dev/null | grep -q 'Address already in use\|Bind on TCP/IP port' && return 2
    return 1
}

write_config() {
    cat >"$dir/my.cnf" <<EOF
# poolbench sandbox settings (throwaway data: durability off)
[mariadbd]
datadir = $dir/data
tmpdir = $dir/tmp
socket = $dir/mysqld.sock
pid-file = $dir/mysqld.pid
log-error = $dir/server.log
port = $1
bind-address = 127.0.0.1
skip-name-resolve
skip-log-bin
sync_binlog = 0
innodb_flush_log_at_trx_commit = 0
innodb_doublewrite = 0
innodb_buffer_pool_size = 64M
innodb_log_file_size = 32M
max_connections = 300
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
EOF
    [[ $(id -u) -eq 0 ]] && chown mysql: "$dir/my.cnf"
    return 0
}

# Makes and starts a sandbox in this shell, setting dir, port and pw. Leaves the EXIT trap
# that removes it in place: the caller replaces that trap (cmd_run) or clears it (cmd_start).
start_sandbox() {
    need_bins
    local base
    if [[ $(id -u) -eq 0 ]]; then
        id mysql >/dev/null 2>&1 || die "running as root but there is no 'mysql' OS user to run the server"
        # The server user must be able to reach the directory; a private TMPDIR may not allow it.
        base=/tmp
    else
        base=${TMPDIR:-/tmp}
        # A Unix socket path has at most 107 bytes.
        ((${#base} <= 60)) || base=/tmp
    fi
    dir=$(mktemp -d "$base/poolbench-mariadb.XXXXXX") || die "cannot create a temp directory under $base"
    touch "$dir/$marker"
    local log=$dir/server.log
    pw=$(random_password)
    chmod 700 "$dir"
    mkdir "$dir/tmp"
    : >"$log"
    [[ $(id -u) -eq 0 ]] && chown -R mysql: "$dir"

    # If anything below fails, take the half-made sandbox down.
    trap 'cleanup_failed_start' EXIT

    port=$(free_port)
    write_config "$port"
    local install=(--auth-root-authentication-method=socket --skip-test-db --skip-name-resolve)
    if [[ $(id -u) -eq 0 ]]; then
        install+=(--user=mysql)
    else
        install+=(--auth-root-socket-user="$(id -un)")
    fi
    if ! (cd "$dir" && mariadb-install-db --defaults-file="$dir/my.cnf" "${install[@]}") >"$dir/install.log" 2>&1; then
        sed -n '/^$/q;p' "$dir/install.log" >>"$log"  # its errors; the advice after them is generic
        die "mariadb-install-db failed in $dir/data" "$log"
    fi

    local started=0 rc
    for attempt in 1 2 3 4 5; do
        if ((attempt > 1)); then
            port=$(free_port)
            write_config "$port"
        fi
        rc=0
        launch_server || rc=$?
        if ((rc == 0)); then
            started=1
            break
        fi
        # Another process may have taken the port between picking and binding it: retry.
        ((rc == 2)) || break
    done
    [[ $started -eq 1 ]] || die "the MariaDB server did not start (the sandbox was removed)" "$log"

    local sql="
        DELETE FROM mysql.proxies_priv WHERE Host NOT IN ('localhost', '127.0.0.1', '%');
        CREATE DATABASE poolbench;
        CREATE USER poolbench@'%' IDENTIFIED BY '$pw';
        GRANT ALL ON poolbench.* TO poolbench@'%' WITH GRANT OPTION;
        GRANT PROCESS, RELOAD, SUPER, CONNECTION ADMIN, CREATE USER ON *.* TO poolbench@'%';
        CREATE USER poolbench_limited@'%' IDENTIFIED BY '$pw';
        GRANT SHOW VIEW ON poolbench.* TO poolbench_limited@'%';
        CREATE USER poolbench_admin@'%' IDENTIFIED BY '$pw';
        GRANT ALL PRIVILEGES ON *.* TO poolbench_admin@'%' WITH GRANT OPTION;
        FLUSH PRIVILEGES;"
    if ! mariadb --no-defaults --socket="$dir/mysqld.sock" -u"$(admin_user)" -e "$sql" >"$dir/setup.log" 2>&1; then
        die "creating the poolbench users and database failed" "$dir/setup.log"
    fi
    printf '%s\n' "$port" >"$dir/port"
}

cmd_start() {
    start_sandbox
    trap - EXIT
    printf 'export POOLBENCH_MARIADB_URL=mariadb://poolbench:%s@127.0.0.1:%s/poolbench\n' "$pw" "$port"
    printf 'export POOLBENCH_MARIADB_LIMITED_URL=mariadb://poolbench_limited:%s@127.0.0.1:%s/poolbench\n' "$pw" "$port"
    printf 'export POOLBENCH_MARIADB_ADMIN_URL=mariadb://poolbench_admin:%s@127.0.0.1:%s/poolbench\n' "$pw" "$port"
    printf 'export POOLBENCH_MARIADB_DIR=%s\n' "$dir"
    printf 'export POOLBENCH_MARIADB_SOCKET=%s\n' "$dir/mysqld.sock"
}

cleanup_failed_start() {
    local rc=$?
    trap '' INT TERM
    if [[ -n "${dir:-}" && -f "$dir/$marker" ]]; then
        stop_server immediate >/dev/null 2>&1 || true
        rm -rf "$dir"
    fi
    exit "$rc"
}

sandbox_dir() {
    dir=${1:-${POOLBENCH_MARIADB_DIR:-}}
    [[ -n "$dir" ]] || die "which sandbox? pass its directory or set POOLBENCH_MARIADB_DIR"
}

cmd_stop() {
    sandbox_dir "${1:-}"
    [[ -e "$dir" ]] || return 0  # already gone: stopping is idempotent
    [[ -f "$dir/$marker" ]] || die "$dir is not a mariadb_sandbox directory; not touching it"
    stop_server || true
    rm -rf "$dir"
}

cmd_halt() {
    sandbox_dir "${1:-}"
    [[ -f "$dir/$marker" ]] || die "$dir is not a mariadb_sandbox directory"
    stop_server || die "no server is running in $dir" "$dir/server.log"
}

cmd_resume() {
    sandbox_dir "${1:-}"
    [[ -f "$dir/$marker" ]] || die "$dir is not a mariadb_sandbox directory"
    [[ -z "$(server_pid)" ]] || die "the server in $dir is already running"
    launch_server || die "starting the server in $dir failed" "$dir/server.log"
}

cmd_restart() {
    sandbox_dir "${1:-}"
    [[ -f "$dir/$marker" ]] || die "$dir is not a mariadb_sandbox directory"
    stop_server || true  # like pg_ctl restart: a stopped server is simply started
    launch_server || die "restarting the server in $dir failed" "$dir/server.log"
}

cmd_restart_command() {
    sandbox_dir "${1:-}"
    [[ -f "$dir/$marker" ]] || die "$dir is not a mariadb_sandbox directory"
    printf '%q restart %q\n' "$(cd "$(dirname "$0")" && pwd)/$(basename "$0")" "$dir"
}

cmd_run() {
    [[ $# -gt 0 ]] || die "usage: $0 run CMD [ARG...]"
    # Stop on every exit path: normal, CMD failure, or a signal, also one that comes while
    # the sandbox is being made (start_sandbox runs in this shell, not in a "$(...)").
    trap 'exit 130' INT
    trap 'exit 143' TERM
    start_sandbox
    run_dir=$dir
    trap 'trap "" INT TERM; cmd_stop "$run_dir"' EXIT  # a second signal must not cut the cleanup short
    export POOLBENCH_MARIADB_URL=mariadb://poolbench:$pw@127.0.0.1:$port/poolbench
    export POOLBENCH_MARIADB_LIMITED_URL=mariadb://poolbench_limited:$pw@127.0.0.1:$port/poolbench
    export POOLBENCH_MARIADB_ADMIN_URL=mariadb://poolbench_admin:$pw@127.0.0.1:$port/poolbench
    export POOLBENCH_MARIADB_DIR=$dir
    export POOLBENCH_MARIADB_SOCKET=$dir/mysqld.sock
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
    *)
        printf 'usage: %s start | stop [DIR] | restart [DIR] | restart-command [DIR] | halt [DIR] | resume [DIR] | run CMD [ARG...]\n' "$0" >&2
        exit 2
        ;;
esac
