#!/usr/bin/env bash
# Runs one of Redis's Tcl test files, round after round, on redis-server
# and on pubsubd, and prints how each test fared on each.
#
#   bash bench/redistcl/run.sh path/to/redis/tests/unit/pubsub.tcl [rounds]
#
# The test file comes from a Redis source tree (Redis's own tests, which
# this repository does not carry). Needs tclsh and redis-server; both
# servers listen on loopback only.
set -euo pipefail
if [ $# -lt 1 ] || [ ! -f "$1" ]; then
  echo "usage: bash bench/redistcl/run.sh path/to/redis/tests/unit/pubsub.tcl [rounds]" >&2
  exit 2
fi
file=$(realpath "$1") # before the cd: the path may be relative to where it was run
cd "$(dirname "$0")/../.."
rounds=${2:-100}
bin=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$bin"
}
trap cleanup EXIT

go build -o "$bin/pubsubd" ./cmd/pubsubd
redis-server --port 7121 --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
pids+=($!)
"$bin/pubsubd" -port 7122 2>/dev/null &
pids+=($!)
for port in 7121 7122; do
  for _ in $(seq 100); do
    redis-cli -p $port ping >/dev/null 2>&1 && break
    sleep 0.1
  done
done
echo "redis-server:"
tclsh bench/redistcl/helpers.tcl 7121 "$file" "$rounds"
echo "pubsubd:"
tclsh bench/redistcl/helpers.tcl 7122 "$file" "$rounds"
