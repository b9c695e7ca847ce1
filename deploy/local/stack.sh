#!/usr/bin/env bash
# The local infrastructure stack: PostgreSQL 15 and a single-node KRaft Kafka as processes.
#
#   bash deploy/local/stack.sh {up|down|status|wipe} [run|test|dev|bench|fault]
#   bash deploy/local/stack.sh {kafka-stop|kafka-start|kafka-kill|postgres-stop|postgres-start} PROFILE
#
# profile  PostgreSQL  Kafka (controller)  state dir     on `up`
# run      55432       59092 (59093)       .local/run    keeps its data across restarts
# test     25432       29192 (29193)       .local/test   wiped first: a throw-away stack
# dev      57432       59292 (59293)       .local/dev    kept: for running tests by hand
# bench    58432       59392 (59393)       .local/bench  wiped first: for `make bench`
# fault    58632       59592 (59593)       .local/fault  wiped first: for developing fault tests
#
# The test stack's ports lie below Linux's ephemeral range (32768-60999): its fault tests stop
# Kafka and PostgreSQL while clients keep reconnecting, and a loopback connect to a closed port
# inside that range can take the port itself (TCP self-connect), so the server cannot bind again.
#
# `up` writes $STATE_DIR/env: `export` lines with what the services need (Kafka bootstrap,
# one database URL per service, a JWT secret generated once per state dir). Use it with
#   . .local/run/env
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/local"
SERVICES=(order inventory pricing recommendation risk support)

die() { echo "stack.sh: $*" >&2; exit 1; }
log() { echo "stack.sh: $*"; }
usage() { echo "usage: $0 {up|down|status|wipe|kafka-stop|kafka-start|kafka-kill|postgres-stop|postgres-start} [run|test|dev|bench|fault]" >&2; exit 2; }

action="${1:-}"
profile="${2:-run}"
case "$profile" in
    run)
        export STATE_DIR="$ROOT/.local/run" PG_PORT=55432 KAFKA_PORT=59092 KAFKA_CONTROLLER_PORT=59093
        ECOMOPS_ENV="local"
        ;;
    test)
        export STATE_DIR="$ROOT/.local/test" PG_PORT=25432 KAFKA_PORT=29192 KAFKA_CONTROLLER_PORT=29193
        ECOMOPS_ENV="test"
        ;;
    dev)
        # A long-lived stack for developing and running tests by hand; `make test` never touches it.
        export STATE_DIR="$ROOT/.local/dev" PG_PORT=57432 KAFKA_PORT=59292 KAFKA_CONTROLLER_PORT=59293
        ECOMOPS_ENV="test"
        ;;
    bench)
        # Throw-away stack for `make bench` (wiped on up), so benchmarks never disturb the others.
        export STATE_DIR="$ROOT/.local/bench" PG_PORT=58432 KAFKA_PORT=59392 KAFKA_CONTROLLER_PORT=59393
        ECOMOPS_ENV="test"
        ;;
    fault)
        # Throw-away stack for developing the fault suite, whose tests stop Kafka and PostgreSQL.
        export STATE_DIR="$ROOT/.local/fault" PG_PORT=58632 KAFKA_PORT=59592 KAFKA_CONTROLLER_PORT=59593
        ECOMOPS_ENV="test"
        ;;
    *) usage ;;
esac
rel_state=".local/$profile"

# One stack.sh at a time per profile (the lock lives outside the state dir, which `wipe` removes).
mkdir -p "$ROOT/.local"
exec 9>"$ROOT/.local/stack-$profile.lock"
flock -w 300 9 || die "another stack.sh is still working on the $profile stack"

# The children (servers) must not inherit the lock.
postgres() { bash "$HERE/postgres.sh" "$@" 9>&-; }
kafka() { bash "$HERE/kafka.sh" "$@" 9>&-; }

down() {
    local rc=0
    kafka stop || rc=1
    postgres stop || rc=1
    return "$rc"
}

wipe() {
    down || die "could not stop the $profile stack; not wiping $rel_state"
    if [[ -d "$STATE_DIR" ]]; then
        rm -rf "$STATE_DIR"
        log "wiped $rel_state"
    fi
}

jwt_secret() {
    local file="$STATE_DIR/jwt-secret"
    if [[ ! -s "$file" ]]; then
        (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(48))' >"$file.tmp")
        mv "$file.tmp" "$file"
    fi
    cat "$file"
}

write_env() {
    local env_file="$STATE_DIR/env" secret svc upper
    secret="$(jwt_secret)"
    (
        umask 077
        {
            echo "# Written by deploy/local/stack.sh up $profile; source it: . $rel_state/env"
            echo "export ECOMOPS_ENV=$ECOMOPS_ENV"
            echo "export ECOMOPS_STACK_PROFILE=$profile"
            echo "export ECOMOPS_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT"
            echo "export ECOMOPS_JWT_SECRET='$secret'"
            for svc in "${SERVICES[@]}"; do
                upper="$(echo "$svc" | tr '[:lower:]' '[:upper:]')"
                echo "export ${upper}_DATABASE_URL=postgresql+asyncpg://ecomops:ecomops@127.0.0.1:$PG_PORT/ecomops_$svc"
            done
        } >"$env_file.tmp"
    )
    mv "$env_file.tmp" "$env_file"
}

up() {
    local started=$SECONDS
    if [[ "$profile" == test || "$profile" == bench || "$profile" == fault ]]; then
        wipe
    fi
    mkdir -p "$STATE_DIR"
    bash "$HERE/fetch-kafka.sh" 9>&- || die "could not fetch Kafka (above); the $profile stack is not up"
    postgres start || die "PostgreSQL did not start (above); the $profile stack is not up"
    kafka start || die "Kafka did not start (above); the $profile stack is not up (PostgreSQL is left running: stack.sh down $profile)"
    write_env
    log "$profile stack up in $((SECONDS - started)) s: PostgreSQL 127.0.0.1:$PG_PORT, Kafka 127.0.0.1:$KAFKA_PORT"
    log "environment for the services: . $rel_state/env"
}

status() {
    local rc=0
    postgres status || rc=$?
    kafka status || rc=$?
    if [[ -f "$STATE_DIR/env" ]]; then
        echo "env: $rel_state/env"
    fi
    return "$rc"
}

case "$action" in
    up) up ;;
    down) down ;;
    status) status ;;
    wipe) wipe ;;
    # Fault injection for the tests: stop or start one server of a running stack.
    kafka-stop) kafka stop ;;
    kafka-start) kafka start ;;
    kafka-kill) kafka kill ;;
    postgres-stop) postgres stop ;;
    postgres-start) postgres start ;;
    *) usage ;;
esac
