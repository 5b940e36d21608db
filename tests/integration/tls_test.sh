#!/usr/bin/env bash
# TLS toward clients: a second pgring, started here on its own ports with
# tls.client_mode require and a freshly generated self-signed certificate, accepts psql
# with sslmode=require (psql's \conninfo reports an SSL connection) and refuses
# sslmode=disable with an error naming the fix.
set -euo pipefail

: "${PGRING_TEST_ENV:?PGRING_TEST_ENV must name the env file of the test cluster}"
: "${PGRING_BIN:?PGRING_BIN must name the pgring binary}"
# shellcheck disable=SC1090
. "$PGRING_TEST_ENV"
export PGPASSFILE=/dev/null PGCONNECT_TIMEOUT=10
unset PGPASSWORD PGSERVICE PGHOST PGPORT PGUSER PGDATABASE PGSSLMODE

work=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
  -keyout "$work/server.key" -out "$work/server.crt" >/dev/null 2>&1
chmod 600 "$work/server.key"

port=$((PGRING_PORT + 10))
admin=$((PGRING_PORT + 11))
# The test cluster's config, on other ports, with TLS required for clients.
sed -e "s/^  port: $PGRING_PORT\$/  port: $port/" \
    -e "s/^  admin_port: $PGRING_ADMIN_PORT\$/  admin_port: $admin/" \
    -e "s/^  metrics_port: $PGRING_METRICS_PORT\$/  metrics_port: 0/" \
    "$PGRING_CONFIG" > "$work/pgring.yaml"
cat >> "$work/pgring.yaml" <<YAML
tls:
  client_mode: require
  cert_file: $work/server.crt
  key_file: $work/server.key
YAML
grep -q "port: $port" "$work/pgring.yaml" || { echo "FAIL: could not rewrite the client port" >&2; exit 1; }

"$PGRING_BIN" --config "$work/pgring.yaml" >"$work/pgring.log" 2>&1 &
pid=$!
deadline=$((SECONDS + 30))
until pg_isready -q -h 127.0.0.1 -p "$port"; do
  if ! kill -0 "$pid" 2>/dev/null; then cat "$work/pgring.log" >&2; echo "FAIL: pgring exited" >&2; exit 1; fi
  ((SECONDS < deadline)) || { echo "FAIL: pgring did not listen within 30 s" >&2; exit 1; }
  sleep 0.1
done

dsn=${PGRING_DSN/:$PGRING_PORT\//:$port/}
out=$(psql -X -At "$dsn?sslmode=require" -c 'select 42' -c '\conninfo')
grep -qx 42 <<<"$out" || { echo "FAIL: query over TLS: $out" >&2; exit 1; }
grep -q 'SSL connection' <<<"$out" || { echo "FAIL: psql does not report an SSL connection: $out" >&2; exit 1; }

if err=$(psql -X -At "$dsn?sslmode=disable" -c 'select 1' 2>&1); then
  echo "FAIL: a plain-text client was accepted although tls.client_mode is require" >&2
  exit 1
fi
grep -q 'pgring requires TLS' <<<"$err" || { echo "FAIL: unexpected refusal message: $err" >&2; exit 1; }
echo "tls: ok"
