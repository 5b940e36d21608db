#!/usr/bin/env bash
# psql through pgring: a basic query; \copy of 1000 CSV rows (quotes, commas, newlines,
# NULLs, empty strings, UTF-8) in from a local file and out again, compared byte for
# byte with the file and with an export taken on shard0 directly; Ctrl-C (SIGINT to psql)
# cancels a running pg_sleep on shard0 through pgring's CancelRequest handling.
. "$(dirname "$0")/lib.sh"

TABLE=clients_psql_copy
ROWS=1000

echo "-- basic query"
check_eq "SELECT through pgring" "$(q "$PGRING_DSN" "SELECT 6 * 7, current_user, current_database()")" "42|app|app"
shard0_port=$(q "$SHARD0" "SELECT inet_server_port()")
check_eq "server port seen through pgring (default shard is shard0)" \
  "$(q "$PGRING_DSN" "SELECT inet_server_port()")" "$shard0_port"

echo "-- \\copy in and out"
q "$SHARD0" "DROP TABLE IF EXISTS $TABLE" >/dev/null
q "$SHARD0" "CREATE TABLE $TABLE (id int PRIMARY KEY, name text NOT NULL, amount numeric(12,2), note text)" >/dev/null
on_exit "psql -X -q '$SHARD0' -c 'DROP TABLE IF EXISTS $TABLE' >/dev/null 2>&1"

# The file is written in the exact form PostgreSQL's CSV output uses (quotes only where
# needed, NULL as an empty unquoted field, "" for the empty string), so that the COPY
# TO output must equal it byte for byte.
input=$WORK_DIR/in.csv
awk -v n=$ROWS 'BEGIN {
  for (i = 1; i <= n; i++) {
    name = "name-" i
    amount = i ".25"
    if (i % 10 == 0) note = ""                         # NULL
    else if (i % 13 == 0) note = "\"two\nlines " i "\""  # embedded newline
    else if (i % 7 == 0) note = "\"a,b \"\"q\"\" " i "\"" # comma and quotes
    else if (i % 11 == 0) note = "\"\""                # empty string
    else if (i % 5 == 0) note = "ünïcødé € " i
    else note = "plain " i
    print i "," name "," amount "," note
  }
}' >"$input"

out=$(psql -X -v ON_ERROR_STOP=1 "$PGRING_DSN" -c "\\copy $TABLE FROM '$input' WITH (FORMAT csv)" 2>&1) ||
  fail "\\copy FROM through pgring failed: $out"
check_eq "\\copy FROM command tag" "$out" "COPY $ROWS"

check_eq "row count on shard0" "$(q "$SHARD0" "SELECT count(*) FROM $TABLE")" "$ROWS"
check_eq "NULL notes on shard0" "$(q "$SHARD0" "SELECT count(*) FROM $TABLE WHERE note IS NULL")" "$((ROWS / 10))"
check_eq "multi-line notes on shard0" \
  "$(q "$SHARD0" "SELECT count(*) FROM $TABLE WHERE note LIKE E'two\\nlines %'")" "$(( (ROWS / 13) - (ROWS / 130) ))"
check_eq "sum(amount) on shard0" "$(q "$SHARD0" "SELECT sum(amount) FROM $TABLE")" \
  "$(awk -v n=$ROWS 'BEGIN { printf "%.2f", n * (n + 1) / 2 + 0.25 * n }')"
# The whole content, exported on shard0 directly, equals the input file.
direct=$WORK_DIR/direct.csv
psql -X -q -v ON_ERROR_STOP=1 "$SHARD0" -c "\\copy (SELECT * FROM $TABLE ORDER BY id) TO '$direct' WITH (FORMAT csv)" ||
  fail "\\copy TO on shard0 directly failed"
cmp "$input" "$direct" || fail "table content on shard0 differs from the file copied in through pgring (diff $input $direct)"

through=$WORK_DIR/through.csv
out=$(psql -X -v ON_ERROR_STOP=1 "$PGRING_DSN" -c "\\copy (SELECT * FROM $TABLE ORDER BY id) TO '$through' WITH (FORMAT csv)" 2>&1) ||
  fail "\\copy TO through pgring failed: $out"
check_eq "\\copy TO command tag" "$out" "COPY $ROWS"
cmp "$input" "$through" || fail "\\copy TO through pgring differs from the data on shard0"

# Text format, whole table, then a query in the same session still works.
out=$(psql -X -At -v ON_ERROR_STOP=1 "$PGRING_DSN" -c "\\copy $TABLE TO '$WORK_DIR/text.tsv'" -c "SELECT count(*) FROM $TABLE" 2>&1) ||
  fail "\\copy TO (text) through pgring failed: $out"
check_eq "output of \\copy TO (text) then SELECT" "$out" "COPY $ROWS
$ROWS"
# Rows with embedded newlines are escaped (\n) in text format: one line per row.
check_eq "lines in the text-format export" "$(wc -l <"$WORK_DIR/text.tsv")" "$ROWS"

# A failing \copy (bad row) is rolled back and leaves the session usable.
printf '5001,x,1.00,ok\nnot-a-number,y,2.00,bad\n' >"$WORK_DIR/bad.csv"
out=$(psql -X -v ON_ERROR_STOP=1 "$PGRING_DSN" -c "\\copy $TABLE FROM '$WORK_DIR/bad.csv' WITH (FORMAT csv)" 2>&1) &&
  fail "\\copy of a bad row through pgring succeeded: $out"
grep -q 'invalid input syntax for type integer' <<<"$out" || fail "\\copy of a bad row: unexpected error: $out"
check_eq "rows of the failed \\copy on shard0" "$(q "$SHARD0" "SELECT count(*) FROM $TABLE WHERE id = 5001")" "0"
check_eq "SELECT through pgring after a failed COPY" "$(q "$PGRING_DSN" "SELECT count(*) FROM $TABLE")" "$ROWS"

echo "-- Ctrl-C cancels a running query"
marker="cancel_test_$$"
sleep_sql="SELECT pg_sleep(30) AS $marker"
psql -X "$PGRING_DSN" -c "$sleep_sql" >"$WORK_DIR/cancel.out" 2>"$WORK_DIR/cancel.err" &
psql_pid=$!
on_exit "kill -KILL $psql_pid 2>/dev/null"

sleep_running() {
  [ "$(q "$SHARD0_SUPER" "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = '$sleep_sql'")" = 1 ]
}
wait_for "pg_sleep(30) of psql to run on shard0 (pg_stat_activity)" 15 sleep_running
pid_running "$psql_pid" || fail "psql exited before it was interrupted: $(cat "$WORK_DIR/cancel.err")"
kill -INT "$psql_pid"
started=$SECONDS
psql_ended() { ! pid_running "$psql_pid"; }
wait_for "psql to end after SIGINT (cancel through pgring)" 5 psql_ended
rc=0
wait "$psql_pid" || rc=$?
echo "psql ended $((SECONDS - started))s after SIGINT with exit code $rc"
[ "$rc" -ne 0 ] || fail "psql exited 0 after its query was canceled; output: $(cat "$WORK_DIR/cancel.out")"
grep -q 'canceling statement due to user request' "$WORK_DIR/cancel.err" ||
  fail "psql did not report the cancel; stderr: $(cat "$WORK_DIR/cancel.err")"
sleep_gone() { ! sleep_running; }
wait_for "the canceled pg_sleep to leave pg_stat_activity on shard0" 5 sleep_gone
check_eq "SELECT through pgring after the cancel" "$(q "$PGRING_DSN" "SELECT 'still serving'")" "still serving"

echo "PASS $TEST_NAME"
