# shellcheck shell=bash
# Shared helpers of the shell client tests of pgring; source it, do not run it.
#
# Loads the test cluster's env file ($PGRING_TEST_ENV), isolates libpq from the caller's
# environment, and offers fail/check/wait_for. Every wait has a deadline.

set -euo pipefail
shopt -s inherit_errexit

TEST_NAME=$(basename "$0")

fail() {
  echo "FAIL $TEST_NAME: $*" >&2
  exit 1
}

: "${PGRING_TEST_ENV:?PGRING_TEST_ENV must name the env file of the test cluster (DIR/env written by scripts/cluster start)}"
[ -f "$PGRING_TEST_ENV" ] || fail "PGRING_TEST_ENV=$PGRING_TEST_ENV does not exist"
# shellcheck disable=SC1090
. "$PGRING_TEST_ENV"
for v in PGRING_DSN PGRING_ADMIN_DSN SHARD_DSNS SHARD_SUPERUSER_DSNS; do
  [ -n "${!v:-}" ] || fail "$PGRING_TEST_ENV does not define $v"
done

# Only the DSNs decide where and how to connect.
export PGPASSFILE=/dev/null PGCONNECT_TIMEOUT=10
unset PGPASSWORD PGSERVICE PGHOST PGPORT PGUSER PGDATABASE PGSSLMODE PGOPTIONS PGAPPNAME

read -ra SHARD_DSN_LIST <<<"$SHARD_DSNS"
read -ra SHARD_SUPER_LIST <<<"$SHARD_SUPERUSER_DSNS"
SHARD0=${SHARD_DSN_LIST[0]}
SHARD0_SUPER=${SHARD_SUPER_LIST[0]}
export SHARD0 SHARD0_SUPER

# q DSN SQL: runs SQL, prints unaligned tuples only; fails the test on error.
q() {
  local out
  out=$(psql -X -At -v ON_ERROR_STOP=1 "$1" -c "$2" 2>&1) || fail "psql on ${1#*@} failed for: $2
$out"
  printf '%s\n' "$out"
}

# check_eq WHAT GOT WANT
check_eq() {
  [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}

# wait_for WHAT TIMEOUT_S CMD...: runs CMD until it succeeds; fails at the deadline.
wait_for() {
  local what=$1 timeout=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out after ${timeout}s waiting for $what"
    sleep 0.05
  done
}

# pid_running PID: true while PID exists and is not a zombie.
pid_running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# with_params DSN K=V...: appends query parameters to a postgresql:// URI.
with_params() {
  local dsn=$1
  shift
  local kv sep='?'
  [[ $dsn == *\?* ]] && sep='&'
  for kv in "$@"; do
    dsn+="$sep$kv"
    sep='&'
  done
  printf '%s' "$dsn"
}

WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pgring-${TEST_NAME%.*}.XXXXXX")
cleanup_hooks=()
run_cleanup() {
  local h
  for h in "${cleanup_hooks[@]}"; do eval "$h" || true; done
  rm -rf -- "$WORK_DIR"
}
trap run_cleanup EXIT
# on_exit CMD: runs CMD (a string) when the test exits, in order of registration.
on_exit() { cleanup_hooks+=("$1"); }
