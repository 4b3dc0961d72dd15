# Selects a JDK >= 25 and puts it first on PATH; sourced by .ci/run and demo.sh.
#
#   1. JAVA_HOME, when it points at a JDK >= 25;
#   2. else the newest JDK >= 25 in the system's JVM directory (/usr/lib/jvm, or $SHM_JVM_DIR);
#   3. else fail, saying what was found.
# shellcheck shell=bash

REQUIRED=25
JVM_DIR=${SHM_JVM_DIR:-/usr/lib/jvm}

# Prints the feature release (e.g. 25) of the JDK at $1; prints nothing if $1 is not a JDK.
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
  version=${version#1.}          # 1.8 -> 8
  printf '%s\n' "${version%%[.+-]*}"
}

selected=
if [[ -n "${JAVA_HOME:-}" ]]; then
  release=$(jdk_release "$JAVA_HOME")
  if [[ -n "$release" && "$release" -ge $REQUIRED ]]; then
    selected=$JAVA_HOME
  else
    found_home=${release:+Java $release}
    echo "${SHM_SCRIPT:-shm}: JAVA_HOME=$JAVA_HOME is ${found_home:-not a JDK}; looking in $JVM_DIR for a JDK >= $REQUIRED" >&2
  fi
fi
if [[ -z "$selected" ]]; then
  best=0
  found=()
  for home in "$JVM_DIR"/*; do
    [[ -d "$home" && ! -L "$home" ]] || continue
    release=$(jdk_release "$home")
    [[ -n "$release" ]] || continue
    found+=("$(basename "$home") (Java $release)")
    if [[ "$release" -ge $REQUIRED && "$release" -gt $best ]]; then
      best=$release
      selected=$home
    fi
  done
  if [[ -z "$selected" ]]; then
    echo "${SHM_SCRIPT:-shm}: no JDK >= $REQUIRED found. JAVA_HOME=${JAVA_HOME:-<unset>}; $JVM_DIR holds: ${found[*]:-no JDK}." >&2
    echo "${SHM_SCRIPT:-shm}: install a JDK $REQUIRED (for example Temurin 25) or point JAVA_HOME at one." >&2
    exit 1
  fi
fi

export JAVA_HOME=$selected
export PATH="$JAVA_HOME/bin:$PATH"
echo "${SHM_SCRIPT:-shm}: using JDK $(jdk_release "$JAVA_HOME") at $JAVA_HOME"

