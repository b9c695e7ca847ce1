#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft, combined broker + controller) run as a local process.
#
#   STATE_DIR=.local/run KAFKA_PORT=59092 KAFKA_CONTROLLER_PORT=59093 \
#       bash deploy/local/kafka.sh {start|stop|status}
#
# STATE_DIR (relative paths are taken from the repository root) holds:
#   kafka/server.properties, kafka/log4j2.xml   written on every start
#   kafka/data/                                  KRaft metadata + topic logs (formatted once)
#   kafka.pid                                    pid of the running broker
#   kafka.log                                    the broker's log (log4j2, rolled at 50 MB)
#   kafka.out                                    the JVM's stdout/stderr (normally near empty)
# Listens on 127.0.0.1 only; topics are never auto-created.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE_DIR="${STATE_DIR:-.local/run}"
[[ "$STATE_DIR" == /* ]] || STATE_DIR="$ROOT/$STATE_DIR"
KAFKA_PORT="${KAFKA_PORT:-59092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-59093}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
READY_TIMEOUT="${KAFKA_READY_TIMEOUT:-90}"
STOP_TIMEOUT=30

KAFKA_LIBS="$ROOT/.local/cache/kafka/libs"
KDIR="$STATE_DIR/kafka"
DATA_DIR="$KDIR/data"
CONFIG="$KDIR/server.properties"
LOG4J_CONFIG="$KDIR/log4j2.xml"
PID_FILE="$STATE_DIR/kafka.pid"
LOG="$STATE_DIR/kafka.log"
OUT="$STATE_DIR/kafka.out"

# Paths are printed relative to the repository root when they are inside it.
rel() { local p="$1"; echo "${p#"$ROOT"/}"; }
die() { echo "kafka.sh: $*" >&2; exit 1; }
log() { echo "kafka.sh: $*"; }

# The pid of our broker (the one started with this state dir's server.properties), or nothing.
broker_pid() {
    local pid
    if [[ -f "$PID_FILE" ]]; then
        pid="$(cat "$PID_FILE")"
        if [[ "$pid" =~ ^[0-9]+$ ]] && is_our_broker "$pid"; then
            echo "$pid"
            return 0
        fi
    fi
    # pid file lost or stale: look for a JVM running kafka.Kafka with our config file.
    local dir
    for dir in /proc/[0-9]*; do
        pid="${dir#/proc/}"
        if is_our_broker "$pid"; then
            echo "$pid"
            return 0
        fi
    done
    return 0
}

is_our_broker() { # pid
    local cmdline
    cmdline="$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline")" || return 1
    [[ "$cmdline" == *" kafka.Kafka $CONFIG"* ]]
}

port_open() { # port
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Asks the broker for cluster metadata (Kafka protocol, Metadata v4, no topics) and succeeds
# when it lists itself as an available (unfenced) broker and a controller is elected.
broker_answers() {
    python3 - "$KAFKA_PORT" <<'PY'
import socket
import struct
import sys

port = int(sys.argv[1])


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


try:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        client_id = b"ecomops-kafka-sh"
        # request header v1 (api_key=3 Metadata, version 4, correlation id 1, client id)
        header = struct.pack(">hhih", 3, 4, 1, len(client_id)) + client_id
        body = struct.pack(">i", 0) + b"\x00"  # topics: [] ; allow_auto_topic_creation: false
        sock.sendall(struct.pack(">i", len(header) + len(body)) + header + body)
        (size,) = struct.unpack(">i", recv_exact(sock, 4))
        resp = recv_exact(sock, size)
    off = 4 + 4  # correlation id, throttle_time_ms
    (n_brokers,) = struct.unpack_from(">i", resp, off)
    off += 4
    for _ in range(n_brokers):
        off += 4  # node id
        (host_len,) = struct.unpack_from(">h", resp, off)
        off += 2 + host_len + 4  # host, port
        (rack_len,) = struct.unpack_from(">h", resp, off)
        off += 2 + max(rack_len, 0)
    (cluster_len,) = struct.unpack_from(">h", resp, off)
    off += 2 + max(cluster_len, 0)
    (controller_id,) = struct.unpack_from(">i", resp, off)
    sys.exit(0 if n_brokers >= 1 and controller_id >= 0 else 1)
except (OSError, struct.error):
    sys.exit(1)
PY
}

write_config() {
    mkdir -p "$DATA_DIR"
    local tmp="$CONFIG.tmp"
    cat >"$tmp" <<EOF
# Written by deploy/local/kafka.sh on every start; edits here are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA_DIR

# one node: one partition and one replica by default; topics are created explicitly
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# after a crash the restarted broker waits for its old registration's session to expire
# (DUPLICATE_BROKER_REGISTRATION); a shorter session makes fault tests faster
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=6000

# a small machine (2 cores)
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=168
log.segment.bytes=268435456
EOF
    mv "$tmp" "$CONFIG"

    cat >"$LOG4J_CONFIG.tmp" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by deploy/local/kafka.sh: the broker logs to a file, nothing to the console. -->
<Configuration status="WARN" shutdownHook="disable">
  <Appenders>
    <RollingFile name="file" fileName="$LOG" filePattern="$LOG.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="50 MB"/></Policies>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="kafka.authorizer.logger" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="org.apache.kafka.raft" level="WARN"/>
    <Root level="INFO"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
EOF
    mv "$LOG4J_CONFIG.tmp" "$LOG4J_CONFIG"
}

java_cmd() { # main-class args...
    # shellcheck disable=SC2086  # KAFKA_HEAP_OPTS is a list of JVM flags
    java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$LOG4J_CONFIG" \
        -cp "$KAFKA_LIBS/*" "$@"
}

format_storage() {
    [[ -f "$DATA_DIR/meta.properties" ]] && return 0
    local cluster_id
    # A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (as random-uuid).
    cluster_id="$(python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("="))')"
    log "formatting KRaft storage in $(rel "$DATA_DIR") (cluster id $cluster_id)"
    rm -rf "$DATA_DIR" && mkdir -p "$DATA_DIR"
    if ! java_cmd kafka.tools.StorageTool format -t "$cluster_id" -c "$CONFIG" >>"$OUT" 2>&1; then
        rm -rf "$DATA_DIR"
        die "formatting the KRaft storage failed; see $(rel "$OUT")"
    fi
}

start() {
    mkdir -p "$STATE_DIR"
    exec 8>"$STATE_DIR/kafka.lock"
    flock -w 180 8 || die "another kafka.sh is working on $(rel "$STATE_DIR")"

    local pid
    pid="$(broker_pid)"
    if [[ -n "$pid" ]]; then
        log "already running (pid $pid) on 127.0.0.1:$KAFKA_PORT"
        echo "$pid" >"$PID_FILE"
    else
        [[ -d "$KAFKA_LIBS" ]] || bash "$ROOT/deploy/local/fetch-kafka.sh"
        command -v java >/dev/null 2>&1 || die "java is not on PATH (Kafka needs Java 17+)"
        local port
        for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
            if port_open "$port"; then
                die "port $port on 127.0.0.1 is already in use by another process (not this state dir's Kafka); stop it or choose other ports"
            fi
        done
        write_config
        format_storage
        log "starting Kafka on 127.0.0.1:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT), log $(rel "$LOG")"
        # setsid: the broker outlives this shell and ignores the terminal's Ctrl-C.
        # The inner shell records its own pid, then becomes the JVM (exec).
        rm -f "$PID_FILE"   # a stale one (crashed broker) would be mistaken for the new pid
        export KAFKA_HEAP_OPTS KAFKA_LIBS LOG4J_CONFIG CONFIG PID_FILE
        # shellcheck disable=SC2016  # expanded by the inner shell, from the exported variables
        setsid bash -c '
            # keep no descriptor of the caller (locks, pipes of a CI runner) beyond 0-2
            for fd in /proc/self/fd/*; do
                fd="${fd##*/}"
                if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
            done
            echo $$ >"$PID_FILE"
            # shellcheck disable=SC2086
            exec java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
                -Djava.awt.headless=true -Dlog4j2.configurationFile="$LOG4J_CONFIG" \
                -cp "$KAFKA_LIBS/*" kafka.Kafka "$CONFIG"
        ' </dev/null >>"$OUT" 2>&1 &
        # wait for the pid file written by the inner shell
        local i
        for ((i = 0; i < 50; i++)); do
            [[ -s "$PID_FILE" ]] && break
            sleep 0.1
        done
    fi

    local deadline=$((SECONDS + READY_TIMEOUT))
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    until port_open "$KAFKA_PORT" && broker_answers; do
        if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$LOG" "$OUT" 2>/dev/null >&2 || true
            die "Kafka exited during start-up; see $(rel "$LOG") and $(rel "$OUT")"
        fi
        if ((SECONDS >= deadline)); then
            die "Kafka did not become ready in $READY_TIMEOUT s; see $(rel "$LOG")"
        fi
        sleep 0.3
    done
    log "ready on 127.0.0.1:$KAFKA_PORT (pid $pid)"
}

stop() {
    local pid
    pid="$(broker_pid)"
    if [[ -z "$pid" ]]; then
        rm -f "$PID_FILE"
        log "not running"
        return 0
    fi
    log "stopping Kafka (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            echo "kafka.sh: Kafka (pid $pid) did not stop in $STOP_TIMEOUT s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.2
    done
    rm -f "$PID_FILE"
    log "stopped"
}

# A crash, not a shutdown: SIGKILL, so the broker writes no clean-shutdown marker and the
# producers' in-flight batches get no answer (what a node failure does).
kill_broker() {
    local pid
    pid="$(broker_pid)"
    if [[ -z "$pid" ]]; then
        rm -f "$PID_FILE"
        log "not running"
        return 0
    fi
    log "killing Kafka (pid $pid) with SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || die "Kafka (pid $pid) survived SIGKILL for 10 s"
        sleep 0.1
    done
    rm -f "$PID_FILE"
    log "killed"
}

status() {
    local pid
    pid="$(broker_pid)"
    if [[ -z "$pid" ]]; then
        echo "kafka: not running (state $(rel "$STATE_DIR"))"
        return 3
    fi
    if broker_answers; then
        echo "kafka: running, pid $pid, 127.0.0.1:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT), log $(rel "$LOG")"
    else
        echo "kafka: process $pid is up but the broker does not answer on 127.0.0.1:$KAFKA_PORT; see $(rel "$LOG")"
        return 1
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    kill) kill_broker ;;
    status) status ;;
    *) echo "usage: STATE_DIR=... KAFKA_PORT=... KAFKA_CONTROLLER_PORT=... $0 {start|stop|kill|status}" >&2; exit 2 ;;
esac
