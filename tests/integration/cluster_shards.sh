#!/usr/bin/env bash
# Checks the shards of the test cluster started by scripts/cluster: each DSN in
# SHARD_DSNS reaches its own PostgreSQL 15 server, set up for logical replication and
# two-phase commit, that authenticates role app with SCRAM-SHA-256 and rejects a wrong
# password; pgring.yaml names the same servers.
set -euo pipefail

: "${PGRING_TEST_ENV:?PGRING_TEST_ENV must name the env file of the test cluster}"
# shellcheck disable=SC1090
. "$PGRING_TEST_ENV"

# Only the DSNs decide how to connect.
export PGPASSFILE=/dev/null PGCONNECT_TIMEOUT=10
unset PGPASSWORD PGSERVICE PGHOST PGPORT PGUSER PGDATABASE PGSSLMODE

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
q() { psql -X -At -v ON_ERROR_STOP=1 "$1" -c "$2"; }

read -ra dsns <<<"$SHARD_DSNS"
read -ra supers <<<"$SHARD_SUPERUSER_DSNS"
read -ra ports <<<"$SHARD_PORTS"
n=${#dsns[@]}
[ "$n" -ge 1 ] || { echo "FAIL: SHARD_DSNS is empty" >&2; exit 1; }
[ "$n" -eq "$PGRING_SHARD_COUNT" ] || fail "SHARD_DSNS has $n entries, PGRING_SHARD_COUNT is $PGRING_SHARD_COUNT"
[ "${#supers[@]}" -eq "$n" ] || fail "SHARD_SUPERUSER_DSNS has ${#supers[@]} entries, SHARD_DSNS $n"
[ "${#ports[@]}" -eq "$n" ] || fail "SHARD_PORTS has ${#ports[@]} entries, SHARD_DSNS $n"

declare -A system_ids=()
for ((i = 0; i < n; i++)); do
  dsn=${dsns[i]}
  super=${supers[i]}
  echo "shard$i: $dsn"

  [ "$(q "$dsn" 'SELECT current_user')" = app ] || fail "shard$i: current_user is not app"
  [ "$(q "$dsn" 'SHOW port')" = "${ports[i]}" ] || fail "shard$i: SHOW port is not ${ports[i]}"
  [ "$(q "$dsn" 'SHOW server_version_num')" -ge 150000 ] || fail "shard$i: not PostgreSQL 15+"

  wal_level=$(q "$dsn" 'SHOW wal_level')
  [ "$wal_level" = logical ] || fail "shard$i: wal_level is '$wal_level', want logical"

  mpt=$(q "$dsn" 'SHOW max_prepared_transactions')
  if ! [[ $mpt =~ ^[0-9]+$ ]] || ((mpt == 0)); then
    fail "shard$i: max_prepared_transactions is '$mpt', want > 0"
  fi

  # Two-phase commit works for role app, not just the setting.
  gid="pgring_cluster_shards_check_$$_$i"
  if ! psql -X -q -v ON_ERROR_STOP=1 "$dsn" >/dev/null <<EOF; then
BEGIN;
CREATE TABLE pgring_cluster_shards_check (id int);
PREPARE TRANSACTION '$gid';
COMMIT PREPARED '$gid';
DROP TABLE pgring_cluster_shards_check;
EOF
    fail "shard$i: PREPARE TRANSACTION / COMMIT PREPARED failed for role app"
    q "$super" "ROLLBACK PREPARED '$gid'" >/dev/null 2>&1 || true
  fi

  # SCRAM-SHA-256: TCP connections use scram-sha-256 and the stored secrets are SCRAM
  # verifiers (an md5 hash could not be used for SCRAM).
  [ "$(q "$super" 'SELECT current_user')" = postgres ] || fail "shard$i: superuser DSN is not postgres"
  methods=$(q "$super" "SELECT string_agg(DISTINCT auth_method, ',') FROM pg_hba_file_rules WHERE type = 'host'")
  [ "$methods" = scram-sha-256 ] || fail "shard$i: host rules use '$methods', want scram-sha-256 only"
  verifiers=$(q "$super" "SELECT count(*) FROM pg_authid WHERE rolname IN ('app', 'postgres') AND rolpassword LIKE 'SCRAM-SHA-256\$%'")
  [ "$verifiers" = 2 ] || fail "shard$i: app and postgres do not both have SCRAM-SHA-256 verifiers"

  # The right password was accepted above; a wrong one must be refused.
  pw=${dsn#postgresql://app:}
  pw=${pw%%@*}
  bad_dsn=${dsn/":$pw@"/":x$pw@"}
  [ "$bad_dsn" != "$dsn" ] || fail "shard$i: could not derive a wrong-password DSN"
  if out=$(psql -X -At "$bad_dsn" -c 'SELECT 1' 2>&1); then
    fail "shard$i: a wrong password was accepted"
  elif ! grep -q 'password authentication failed for user "app"' <<<"$out"; then
    fail "shard$i: wrong password refused with an unexpected error: $out"
  fi

  sysid=$(q "$dsn" 'SELECT system_identifier FROM pg_control_system()')
  [ "$(q "$super" 'SELECT system_identifier FROM pg_control_system()')" = "$sysid" ] ||
    fail "shard$i: the superuser DSN reaches another server than the app DSN"
  [ -z "${system_ids[$sysid]:-}" ] || fail "shard$i is the same server as shard${system_ids[$sysid]}"
  system_ids[$sysid]=$i
done

# pgring.yaml lists exactly these shards, in order, with the app password file.
mapfile -t cfg_ports < <(awk '/^shards:/{s=1; next} /^[a-z]/{s=0} s && $1 == "port:" {print $2}' "$PGRING_CONFIG")
[ "${cfg_ports[*]}" = "${ports[*]}" ] || fail "pgring.yaml shard ports '${cfg_ports[*]}' differ from SHARD_PORTS '${ports[*]}'"
app_pw=${dsns[0]#postgresql://app:}
app_pw=${app_pw%%@*}
[ "$(tr -d '\n' <"$PGRING_CLUSTER_DIR/app.password")" = "$app_pw" ] ||
  fail "app.password does not hold the password of SHARD_DSNS"

if ((failures > 0)); then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all $n shard(s) OK"
