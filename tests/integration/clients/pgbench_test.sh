#!/usr/bin/env bash
# pgbench through pgring in the three query protocols (-M simple, extended, prepared),
# 8 clients on 2 threads, 200 TPC-B transactions each, on tables initialised on shard0
# directly. Each run must process every transaction with none failed, pgbench_history on
# shard0 must grow by exactly the number of transactions, and the balances on shard0 must
# stay consistent (every TPC-B transaction adds the same delta to one account, teller and
# branch, and logs it in pgbench_history).
. "$(dirname "$0")/lib.sh"

CLIENTS=8
THREADS=2
PER_CLIENT=200
TOTAL=$((CLIENTS * PER_CLIENT))

echo "-- pgbench -i -s 1 on shard0 directly"
out=$(pgbench -i -s 1 -q "$SHARD0" 2>&1) || fail "pgbench -i on shard0 failed: $out"
on_exit "psql -X -q '$SHARD0' -c 'DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history' >/dev/null 2>&1"

balances() {
  q "$SHARD0" "SELECT (SELECT sum(abalance) FROM pgbench_accounts) || '/' ||
                      (SELECT sum(tbalance) FROM pgbench_tellers) || '/' ||
                      (SELECT sum(bbalance) FROM pgbench_branches) || '/' ||
                      (SELECT coalesce(sum(delta), 0) FROM pgbench_history)"
}

for mode in simple extended prepared; do
  echo "-- pgbench -M $mode -c $CLIENTS -j $THREADS -t $PER_CLIENT through pgring"
  before=$(q "$SHARD0" "SELECT count(*) FROM pgbench_history")
  # -n: no VACUUM (and no TRUNCATE of pgbench_history) before the run.
  log=$WORK_DIR/pgbench-$mode.log
  rc=0
  timeout 240 pgbench -n -M "$mode" -c "$CLIENTS" -j "$THREADS" -t "$PER_CLIENT" "$PGRING_DSN" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    tail -n 30 "$log" >&2
    fail "pgbench -M $mode through pgring exited with code $rc (output above)"
  fi
  grep -E 'number of transactions actually processed|number of failed transactions|latency average|tps' "$log" | sed 's/^/   /'
  processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\)\/\([0-9]*\).*/\1 \2/p' "$log")
  check_eq "-M $mode: transactions processed/expected" "$processed" "$TOTAL $TOTAL"
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$log")
  [ -n "$failed" ] || fail "-M $mode: pgbench printed no 'number of failed transactions' line"
  check_eq "-M $mode: failed transactions" "$failed" "0"
  grep -qiE '^(pgbench: )?(error|fatal)|client [0-9]+ aborted' "$log" &&
    fail "-M $mode: pgbench reported errors: $(grep -iE 'error|fatal|aborted' "$log" | head -n 5)"
  after=$(q "$SHARD0" "SELECT count(*) FROM pgbench_history")
  check_eq "-M $mode: rows added to pgbench_history on shard0" "$((after - before))" "$TOTAL"
  IFS=/ read -r a t b h <<<"$(balances)"
  if [ "$a" != "$t" ] || [ "$t" != "$b" ] || [ "$b" != "$h" ]; then
    fail "-M $mode: balances on shard0 disagree: accounts $a, tellers $t, branches $b, history $h"
  fi
done

echo "-- select-only run (-S -M prepared) through pgring"
rc=0
timeout 240 pgbench -n -S -M prepared -c "$CLIENTS" -j "$THREADS" -t "$PER_CLIENT" "$PGRING_DSN" >"$WORK_DIR/select.log" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || fail "pgbench -S -M prepared exited with code $rc: $(tail -n 20 "$WORK_DIR/select.log")"
check_eq "-S: transactions processed/expected" \
  "$(sed -n 's/^number of transactions actually processed: \([0-9]*\)\/\([0-9]*\).*/\1 \2/p' "$WORK_DIR/select.log")" "$TOTAL $TOTAL"

echo "PASS $TEST_NAME"
