#!/usr/bin/env bash
# A local PostgreSQL (the system's server binaries, `pg_config --bindir`) run as a process.
#
#   STATE_DIR=.local/run PG_PORT=55432 bash deploy/local/postgres.sh {start|stop|status}
#
# STATE_DIR (relative paths are taken from the repository root) holds:
#   postgres/data/     the cluster (initdb on first start; kept across restarts)
#   postgres/socket/   the unix socket directory
#   postgres.log       the server's log
# Listens on 127.0.0.1 only, trust authentication (local development only). Creates the role
# `ecomops` (password `ecomops`) and one database per service, owned by it. fsync stays on.
# initdb/postgres refuse to run as root: as root they run as the `postgres` user.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE_DIR="${STATE_DIR:-.local/run}"
[[ "$STATE_DIR" == /* ]] || STATE_DIR="$ROOT/$STATE_DIR"
PG_PORT="${PG_PORT:-55432}"
READY_TIMEOUT="${PG_READY_TIMEOUT:-60}"

PGDIR="$STATE_DIR/postgres"
DATA_DIR="$PGDIR/data"
SOCKET_DIR="$PGDIR/socket"
LOG="$STATE_DIR/postgres.log"
SERVICES=(order inventory pricing recommendation risk support)

rel() { local p="$1"; echo "${p#"$ROOT"/}"; }
die() { echo "postgres.sh: $*" >&2; exit 1; }
log() { echo "postgres.sh: $*"; }

find_bindir() {
    local dir=""
    if command -v pg_config >/dev/null 2>&1; then
        dir="$(pg_config --bindir 2>/dev/null || true)"
    fi
    if [[ -z "$dir" || ! -x "$dir/initdb" ]]; then
        # pg_config may belong to libpq-dev only; take the newest installed server.
        dir="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)"
    fi
    [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]] \
        || die "no PostgreSQL server binaries found (pg_config --bindir, /usr/lib/postgresql/*/bin); install postgresql"
    echo "$dir"
}
PGBIN="$(find_bindir)"

# The server must not run as root: as root, run it as the `postgres` system user.
if [[ "$(id -u)" == 0 ]]; then
    id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user to run the server as"
    as_pg() { runuser -u postgres -- "$@"; }
    PG_OWNER=postgres
else
    as_pg() { "$@"; }
    PG_OWNER="$(id -un)"
fi

# Client calls go over TCP as the bootstrap superuser `postgres` (trust on 127.0.0.1).
psql_admin() {
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"
}

# The postmaster's pid from postmaster.pid, if that process is alive (a zombie, i.e. killed
# but not yet reaped by its new parent, counts as dead: `pg_ctl status` would say "running").
postmaster_pid() {
    local pid state
    [[ -f "$DATA_DIR/postmaster.pid" ]] || return 1
    pid="$(head -n 1 "$DATA_DIR/postmaster.pid" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    state="$(proc_state "$pid")" || return 1
    [[ "$state" != Z && "$(cat "/proc/$pid/comm" 2>/dev/null)" == postgres* ]] || return 1
    echo "$pid"
}

proc_state() { # pid -> one-letter state (R, S, Z, ...) from /proc/PID/stat
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    echo "${stat%% *}"
}

is_running() {
    postmaster_pid >/dev/null
}

# After a crash (kill -9) the old postmaster may linger a moment as a zombie, and its
# children until they notice; a new postmaster would refuse to start until they are gone.
wait_for_old_server() {
    local pid deadline=$((SECONDS + 30))
    [[ -f "$DATA_DIR/postmaster.pid" ]] || return 0
    pid="$(head -n 1 "$DATA_DIR/postmaster.pid" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    while [[ "$(proc_state "$pid" 2>/dev/null || true)" == Z ]] && ((SECONDS < deadline)); do
        sleep 0.2
    done
}

is_ready() {
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -t 2 >/dev/null 2>&1
}

# As root, the postgres user must be able to reach the data dir: every parent directory needs
# search (x) permission for it. Grant o+x where it is missing (never read or write).
ensure_traversable() {
    [[ "$(id -u)" == 0 ]] || return 0
    local dir="$PGDIR" parents=()
    while [[ "$dir" != "/" ]]; do
        dir="$(dirname "$dir")"
        parents=("$dir" "${parents[@]}")
    done
    for dir in "${parents[@]}"; do
        if ! runuser -u postgres -- test -x "$dir"; then
            log "granting search permission (chmod o+x) on $dir so that the postgres user can reach $(rel "$PGDIR")"
            chmod o+x "$dir"
        fi
    done
}

prepare_dirs() {
    mkdir -p "$STATE_DIR"
    ensure_traversable
    mkdir -p "$PGDIR" "$SOCKET_DIR"
    touch "$LOG"
    if [[ "$(id -u)" == 0 ]]; then
        chown "$PG_OWNER:" "$PGDIR" "$SOCKET_DIR" "$LOG"
    fi
    chmod 700 "$PGDIR"
    chmod 755 "$SOCKET_DIR"
}

init_cluster() {
    [[ -f "$DATA_DIR/PG_VERSION" ]] && return 0
    log "initdb: new cluster in $(rel "$DATA_DIR")"
    local tmp="$PGDIR/data.initdb"
    rm -rf "$tmp"
    # initdb into a temporary dir and rename it: an interrupted initdb leaves no half cluster.
    if ! as_pg "$PGBIN/initdb" -D "$tmp" -U postgres --auth=trust --encoding=UTF8 \
        --locale=C --no-instructions >>"$LOG" 2>&1; then
        rm -rf "$tmp"
        die "initdb failed; see $(rel "$LOG")"
    fi
    echo "include_if_exists = 'ecomops.conf'" | as_pg tee -a "$tmp/postgresql.conf" >/dev/null
    # loopback only (initdb's default pg_hba also has local/::1 lines; we listen on 127.0.0.1)
    as_pg mv "$tmp" "$DATA_DIR"
}

write_config() {
    local socket_dirs="$SOCKET_DIR"
    # unix socket paths are limited to ~107 bytes; with a deep checkout serve TCP only.
    if ((${#SOCKET_DIR} + 20 > 100)); then
        socket_dirs=""
    fi
    as_pg tee "$DATA_DIR/ecomops.conf" >/dev/null <<EOF
# Written by deploy/local/postgres.sh on every start; edits here are overwritten.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$socket_dirs'
max_connections = 300
shared_buffers = 64MB
work_mem = 4MB
maintenance_work_mem = 64MB
# durability stays on: the test suites check crash safety
fsync = on
synchronous_commit = on
full_page_writes = on
max_wal_size = 512MB
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
log_min_duration_statement = 1000
log_lock_waits = on
EOF
    # Per-statement counters for `make bench`'s per-checkout budget (statements per database),
    # loaded where the contrib module is installed; without it the server starts as before.
    local version control
    version="$(basename "$(dirname "$PGBIN")")"
    control="/usr/share/postgresql/$version/extension/pg_stat_statements.control"
    if [[ -f "$control" && -f "$PGBIN/../lib/pg_stat_statements.so" ]]; then
        as_pg tee -a "$DATA_DIR/ecomops.conf" >/dev/null <<EOF
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.max = 5000
pg_stat_statements.track = top
pg_stat_statements.track_utility = on
EOF
    fi
}

# The server outlives this script: it must not hold any descriptor of ours (locks, a CI
# runner's pipes), or a caller waiting for EOF would hang. Keep stdin/stdout/stderr only.
close_extra_fds() {
    local fd
    for fd in /proc/self/fd/*; do
        fd="${fd##*/}"
        if ((fd > 2)); then
            eval "exec $fd>&-" 2>/dev/null || true
        fi
    done
}

start_server() {
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT, log $(rel "$LOG")"
    local attempt
    for attempt in 1 2 3; do
        # pg_ctl puts the postmaster in its own session (setsid) with its output in $LOG
        if (close_extra_fds && as_pg "$PGBIN/pg_ctl" start -D "$DATA_DIR" -l "$LOG" \
            -w -t "$READY_TIMEOUT" -s </dev/null >/dev/null 2>&1); then
            return 0
        fi
        if is_running; then
            die "PostgreSQL did not become ready in $READY_TIMEOUT s; see $(rel "$LOG")"
        fi
        # e.g. the backends of a crashed server still hold its shared memory: retry shortly
        ((attempt < 3)) && sleep 2
    done
    tail -n 5 "$LOG" >&2 || true
    die "PostgreSQL failed to start (port $PG_PORT in use by another server?); see $(rel "$LOG")"
}

wait_ready() {
    local deadline=$((SECONDS + READY_TIMEOUT))
    until is_ready; do
        is_running || die "PostgreSQL exited during start-up; see $(rel "$LOG")"
        if ((SECONDS >= deadline)); then
            die "PostgreSQL did not become ready in $READY_TIMEOUT s; see $(rel "$LOG")"
        fi
        sleep 0.2
    done
}

create_databases() {
    psql_admin -d postgres <<'SQL'
SELECT format('CREATE ROLE ecomops LOGIN CREATEDB PASSWORD %L', 'ecomops')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ecomops') \gexec
ALTER ROLE ecomops LOGIN CREATEDB PASSWORD 'ecomops';
SQL
    local svc
    for svc in "${SERVICES[@]}"; do
        psql_admin -d postgres <<SQL
SELECT 'CREATE DATABASE ecomops_$svc OWNER ecomops ENCODING ''UTF8'' TEMPLATE template0'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ecomops_$svc') \gexec
SQL
    done
}

start() {
    mkdir -p "$STATE_DIR"
    exec 8>"$STATE_DIR/postgres.lock"
    flock -w 180 8 || die "another postgres.sh is working on $(rel "$STATE_DIR")"

    wait_for_old_server
    if is_running; then
        log "already running on 127.0.0.1:$PG_PORT"
        wait_ready
    else
        prepare_dirs
        init_cluster
        write_config
        start_server
        wait_ready
    fi
    create_databases
    log "ready on 127.0.0.1:$PG_PORT (databases: ${SERVICES[*]/#/ecomops_})"
}

stop() {
    if ! is_running; then
        log "not running"
        return 0
    fi
    log "stopping PostgreSQL (fast shutdown)"
    if ! as_pg "$PGBIN/pg_ctl" stop -D "$DATA_DIR" -m fast -w -t 60 -s; then
        echo "postgres.sh: fast shutdown did not finish in 60 s; immediate shutdown" >&2
        as_pg "$PGBIN/pg_ctl" stop -D "$DATA_DIR" -m immediate -w -t 30 -s
    fi
    log "stopped"
}

status() {
    if ! is_running; then
        echo "postgres: not running (state $(rel "$STATE_DIR"))"
        return 3
    fi
    if is_ready; then
        echo "postgres: running, 127.0.0.1:$PG_PORT, data $(rel "$DATA_DIR"), log $(rel "$LOG")"
    else
        echo "postgres: the server process is up but does not accept connections on 127.0.0.1:$PG_PORT; see $(rel "$LOG")"
        return 1
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: STATE_DIR=... PG_PORT=... $0 {start|stop|status}" >&2; exit 2 ;;
esac
