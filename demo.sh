#!/usr/bin/env bash
# The demo: builds the sample app, then runs four Spring Boot services in separate JVMs that talk
# over shared memory (orders -> billing x2 + audit, and a pricing request-reply), prints what flows,
# SIGKILLs one service part-way to show recovery, and stops after --duration (default 60s) or Ctrl-C.
#
#   ./demo.sh [--duration 60s] [--kill-after 24s] [--no-kill] [--rate 2000] [--port-base 8080]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
SHM_SCRIPT=demo.sh
# shellcheck source=scripts/select-jdk.sh
source scripts/select-jdk.sh

echo "demo.sh: building the sample app (first run: a few minutes, then seconds) ..."
./mvnw -q -pl sample-app -am package -DskipTests
exec java --enable-native-access=ALL-UNNAMED -jar sample-app/target/sample-app.jar demo "$@"
