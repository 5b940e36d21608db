#!/usr/bin/env bash
# Runs node_pg_test.mjs (the node `pg` driver through pgring). Installs the driver from
# package-lock.json with `npm ci` into tests/integration/clients/node_modules when it is
# missing.
set -euo pipefail

cd "$(dirname "$0")"
: "${PGRING_TEST_ENV:?PGRING_TEST_ENV must name the env file of the test cluster}"
command -v node >/dev/null || { echo "FAIL node_pg_test.sh: node is not installed (scripts/install-deps)" >&2; exit 1; }

if [ ! -f node_modules/pg/package.json ]; then
  command -v npm >/dev/null || { echo "FAIL node_pg_test.sh: npm is not installed (scripts/install-deps)" >&2; exit 1; }
  echo "installing the node pg driver (npm ci)"
  # A lock held while installing, so that two test runs never install at once.
  exec 8>"${TMPDIR:-/tmp}/pgring-clients-npm.lock"
  flock -w 300 8 || { echo "FAIL node_pg_test.sh: another npm ci holds ${TMPDIR:-/tmp}/pgring-clients-npm.lock" >&2; exit 1; }
  if [ ! -f node_modules/pg/package.json ]; then
    npm ci --no-audit --no-fund --loglevel=error ||
      { echo "FAIL node_pg_test.sh: npm ci failed (the npm registry must be reachable)" >&2; exit 1; }
  fi
  exec 8>&-
fi

exec timeout 600 node node_pg_test.mjs
