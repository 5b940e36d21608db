#!/usr/bin/env bash
# CTest fixture of the integration tests: starts (setup) and stops (teardown) the test
# cluster with scripts/cluster, and the pgring proxy in front of it when a binary is given.
#
#   fixture.sh setup DIR BASE_PORT SHARDS [PGRING_BINARY]
#   fixture.sh teardown DIR
#
# setup always begins from an empty DIR: a cluster left running there by an interrupted
# run is stopped and deleted first, and so is a test cluster of another build directory
# (build/, build-asan/, ...) that still holds one of the ports. Teardown stops the proxy
# and the shards but keeps DIR, so logs (DIR/shard<i>/log, DIR/pgring.log) can be read
# after a failure; it fails when the proxy's logs hold a sanitizer report.
set -euo pipefail
shopt -s inherit_errexit

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CLUSTER=$REPO_ROOT/scripts/cluster

say() { echo "fixture: $*" >&2; }

# The first line of an AddressSanitizer, LeakSanitizer or UBSan report.
SANITIZER_REPORT='ERROR: (Address|Leak)Sanitizer|runtime error:'

# free_port PORT: stops a test cluster or proxy of another build directory that listens
# on PORT. Only directories named test-cluster are touched; anything else is left to
# scripts/cluster, which reports the port conflict.
free_port() {
  local port=$1 line pid cwd dir arg
  line=$(ss -Htlnp "sport = :$port" 2>/dev/null | head -n 1 || true)
  [ -n "$line" ] || return 0
  pid=$(sed -n 's/.*pid=\([0-9]\+\).*/\1/p' <<<"$line" | head -n 1)
  [ -n "$pid" ] || return 0
  dir=""
  cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null || true)
  case $cwd in
    */test-cluster/shard*/data) dir=${cwd%/shard*/data} ;;
  esac
  if [ -z "$dir" ]; then
    # A proxy started by proxy-start runs as `pgring --config DIR/pgring.yaml`.
    while IFS= read -r arg; do
      case $arg in */test-cluster/pgring.yaml) dir=${arg%/pgring.yaml} ;; esac
    done < <(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null || true)
  fi
  [ -n "$dir" ] || return 0
  say "port $port is held by the stale test cluster $dir; stopping it"
  "$CLUSTER" stop --dir "$dir"
}

setup() {
  local dir=$1 base=$2 shards=$3 binary=${4:-}
  local p
  if [ -e "$dir" ]; then
    say "removing the test cluster left in $dir by an earlier run"
    "$CLUSTER" destroy --dir "$dir"
  fi
  for ((p = base; p < base + shards; p++)); do free_port "$p"; done
  for p in $((base + 100)) $((base + 101)) $((base + 102)); do free_port "$p"; done

  "$CLUSTER" start --shards "$shards" --port "$base" --dir "$dir" >/dev/null
  if [ -n "$binary" ]; then
    "$CLUSTER" proxy-start --dir "$dir" --binary "$binary"
  else
    say "no pgring binary given; the proxy is not started"
  fi
  "$CLUSTER" status --dir "$dir"
}

teardown() {
  local dir=$1
  "$CLUSTER" stop --dir "$dir"
  # A sanitizer build (scripts/test --sanitize) reports memory errors, undefined
  # behaviour and, when the proxy exits, leaks on its stderr, which is its log.
  local reports
  reports=$(grep -h -E "$SANITIZER_REPORT" "$dir"/pgring.log* 2>/dev/null || true)
  if [ -n "$reports" ]; then
    say "the proxy's log has sanitizer reports ($dir/pgring.log*):"
    echo "$reports" >&2
    exit 1
  fi
}

case ${1:-} in
  setup)
    [ $# -ge 4 ] || { echo "usage: fixture.sh setup DIR BASE_PORT SHARDS [PGRING_BINARY]" >&2; exit 2; }
    setup "$2" "$3" "$4" "${5:-}"
    ;;
  teardown)
    [ $# -eq 2 ] || { echo "usage: fixture.sh teardown DIR" >&2; exit 2; }
    teardown "$2"
    ;;
  *)
    echo "usage: fixture.sh setup|teardown DIR ..." >&2
    exit 2
    ;;
esac
