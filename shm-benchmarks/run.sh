#!/usr/bin/env bash
# Builds shm-benchmarks (and shm-core) with a JDK >= 25 found by itself, then runs
#
#   shm-benchmarks/run.sh [harness options]     the cross-process harness (dev.shm.bench.Harness)
#   shm-benchmarks/run.sh jmh [JMH options]     the JMH benchmarks (dev.shm.bench.jmh.*), short by default
#
# Harness options: --repeats N --cases floor,shm,aeron-shared,aeron-invoker,agrona,uds,tcp,blocking
# --payloads 32,64,1k,1m --messages N --round-trips N --warmup N --out DIR --no-pin (docs/performance.md).
# Set SHM_BENCH_SKIP_BUILD=1 to reuse the last build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly REQUIRED=25
readonly JVM_DIR=${SHM_JVM_DIR:-/usr/lib/jvm}

# Prints the feature release (e.g. 25) of the JDK at $1; prints nothing if $1 is not a JDK (as .ci/run).
jdk_release() {
  local home=$1 version=
  [[ -x "$home/bin/java" && -x "$home/bin/javac" ]] || return 0
  if [[ -r "$home/release" ]]; then
    version=$(sed -n 's/^JAVA_VERSION="\([^"]*\)".*/\1/p' "$home/release")
  fi
  if [[ -z "$version" ]]; then
    version=$("$home/bin/java" -XshowSettings:properties -version 2>&1 \
      | sed -n 's/^ *java\.specification\.version = //p')
  fi
  version=${version#1.}
  printf '%s\n' "${version%%[.+-]*}"
}

selected=
if [[ -n "${JAVA_HOME:-}" ]]; then
  release=$(jdk_release "$JAVA_HOME")
  if [[ -n "$release" && "$release" -ge $REQUIRED ]]; then
    selected=$JAVA_HOME
  fi
fi
if [[ -z "$selected" ]]; then
  best=0
  for home in "$JVM_DIR"/*; do
    [[ -d "$home" && ! -L "$home" ]] || continue
    release=$(jdk_release "$home")
    [[ -n "$release" ]] || continue
    if [[ "$release" -ge $REQUIRED && "$release" -gt $best ]]; then
      best=$release
      selected=$home
    fi
  done
fi
if [[ -z "$selected" ]]; then
  echo "run.sh: no JDK >= $REQUIRED (JAVA_HOME=${JAVA_HOME:-<unset>}, $JVM_DIR searched); install one or set JAVA_HOME." >&2
  exit 1
fi
export JAVA_HOME=$selected
echo "run.sh: using JDK $(jdk_release "$JAVA_HOME") at $JAVA_HOME" >&2

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
