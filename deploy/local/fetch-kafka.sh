#!/usr/bin/env bash
# Resolves Apache Kafka (broker + tools, Scala 2.13 build) and its runtime dependencies from
# Maven Central into .local/cache/kafka/libs, using a project-local Maven repository
# (.local/cache/m2) so that nothing depends on ~/.m2. The jars are then run directly:
#
#   java -cp '.local/cache/kafka/libs/*' kafka.Kafka server.properties          # broker
#   java -cp '.local/cache/kafka/libs/*' kafka.tools.StorageTool format ...       # KRaft storage
#   java -cp '.local/cache/kafka/libs/*' org.apache.kafka.tools.TopicCommand ...  # admin tools
#
# Idempotent: skipped when .local/cache/kafka/VERSION matches the pinned version and POM.
set -euo pipefail

KAFKA_VERSION="4.4.0"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
POM="$ROOT/deploy/local/kafka-pom.xml"
KAFKA_HOME="$ROOT/.local/cache/kafka"
M2_REPO="$ROOT/.local/cache/m2"
MARKER="$KAFKA_HOME/VERSION"

die() { echo "fetch-kafka.sh: $*" >&2; exit 1; }

# The marker names the version and the POM's checksum: editing the POM refetches.
want="kafka $KAFKA_VERSION pom $(sha256sum "$POM" | cut -c1-16)"
if [[ -f "$MARKER" && "$(cat "$MARKER")" == "$want" && -d "$KAFKA_HOME/libs" ]]; then
    exit 0
fi

command -v java >/dev/null 2>&1 || die "java is not on PATH (Kafka $KAFKA_VERSION needs Java 17+)"
command -v mvn >/dev/null 2>&1 || die "mvn (Apache Maven) is not on PATH"

mkdir -p "$KAFKA_HOME" "$M2_REPO"
# Serialise concurrent runs (make -j, two stacks coming up at once).
exec 9>"$KAFKA_HOME/.lock"
flock -w 900 9 || die "another fetch-kafka.sh is still running (lock $KAFKA_HOME/.lock)"
if [[ -f "$MARKER" && "$(cat "$MARKER")" == "$want" && -d "$KAFKA_HOME/libs" ]]; then
    exit 0   # the other run did it
fi

echo "fetch-kafka.sh: fetching Apache Kafka $KAFKA_VERSION from Maven Central into .local/cache/kafka (first time, usually under a minute)..."
started=$SECONDS
tmp="$KAFKA_HOME/libs.tmp"
rm -rf "$tmp"
mvn_log="$KAFKA_HOME/mvn.log"
if ! mvn -B -q -f "$POM" \
    -Dmaven.repo.local="$M2_REPO" \
    -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies \
    -DincludeScope=runtime \
    -DoutputDirectory="$tmp" >"$mvn_log" 2>&1; then
    tail -n 30 "$mvn_log" >&2
    die "maven could not resolve Kafka $KAFKA_VERSION; see .local/cache/kafka/mvn.log"
fi

python3 - "$tmp" <<'PY' || die "resolved jars lack kafka.Kafka / kafka.tools.StorageTool: is $KAFKA_VERSION a Kafka 4.x release?"
import glob, sys, zipfile
names = set()
for jar in glob.glob(sys.argv[1] + "/kafka_2.13-*.jar"):
    names.update(zipfile.ZipFile(jar).namelist())
sys.exit(0 if {"kafka/Kafka.class", "kafka/tools/StorageTool.class"} <= names else 1)
PY

rm -rf "$KAFKA_HOME/libs"
mv "$tmp" "$KAFKA_HOME/libs"
echo "$want" >"$MARKER"
echo "fetch-kafka.sh: Kafka $KAFKA_VERSION ready ($(find "$KAFKA_HOME/libs" -name '*.jar' | wc -l) jars, $((SECONDS - started)) s)"
