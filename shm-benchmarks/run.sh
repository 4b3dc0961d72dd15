#!/usr/bin/env bash
# Builds shm-benchmarks (and shm-core) with a JDK >= 25 found by itself, then runs
#
#   shm-benchmarks/run.sh [harness options]     the cross-process harness (dev.shm.bench.Harness)
#   shm-benchmarks/run.sh jmh [JMH options]     the JMH benchmarks (dev.shm.bench.jmh.*), short by default
#
# Harness options: --repeats N --cases floor,raw-ring,shm,aeron-shared,aeron-invoker,agrona,uds,tcp,si-shm,si-tcp,blocking
# --payloads 32,64,1k,1m --messages N --round-trips N --warmup N --out DIR --no-pin (docs/performance.md).
# Set SHM_BENCH_SKIP_BUILD=1 to reuse the last build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SHM_SCRIPT=run.sh
# shellcheck source=../scripts/select-jdk.sh
source scripts/select-jdk.sh

if [[ "${SHM_BENCH_SKIP_BUILD:-0}" != 1 ]]; then
  ./mvnw -q -pl shm-benchmarks -am -DskipTests package
fi

readonly target=shm-benchmarks/target
classpath="$target/classes:$(cat "$target/bench-classpath.txt")"
# The flags of every benchmark JVM; the harness passes the same to its children (ChildJvm.JVM_OPTIONS).
jvm=(--enable-native-access=ALL-UNNAMED --add-exports=java.base/jdk.internal.misc=ALL-UNNAMED
     -Dagrona.disable.bounds.checks=true -Xms256m -Xmx1g)

if [[ "${1:-}" == jmh ]]; then
  shift
  if [[ $# -eq 0 ]]; then
    set -- -f 1 -wi 3 -w 1s -i 5 -r 1s 'dev.shm.bench.jmh.*'
  fi
  exec "$JAVA_HOME/bin/java" "${jvm[@]}" -cp "$classpath" org.openjdk.jmh.Main -jvmArgs "${jvm[*]}" "$@"
fi
exec "$JAVA_HOME/bin/java" "${jvm[@]}" -cp "$classpath" dev.shm.bench.Harness "$@"
