#!/usr/bin/env bash
# pgring's admin database with psql: SHOW POOLS columns, SHOW CLIENTS listing a connected
# client, SHOW STATS counting transactions, refusal of a non-admin user and of a wrong
# password, and PAUSE/RESUME: a client's query is held while pgring is paused and runs on
# shard0 only after RESUME.
. "$(dirname "$0")/lib.sh"

admin() { q "$PGRING_ADMIN_DSN" "$1"; }
# admin_table SQL: the result with a header line, fields separated by '|'.
admin_table() {
  psql -X -A -F'|' -P footer=off -v ON_ERROR_STOP=1 "$PGRING_ADMIN_DSN" -c "$1" 2>&1 ||
    fail "admin command '$1' failed"
}
# column VALUE_OF NAME TABLE_TEXT ROW_MATCH_COLUMN ROW_MATCH_VALUE: prints column NAME of
# the first row whose column ROW_MATCH_COLUMN equals ROW_MATCH_VALUE.
column_of() {
  awk -F'|' -v want="$1" -v mcol="$3" -v mval="$4" '
    NR == 1 { for (i = 1; i <= NF; i++) idx[$i] = i; next }
    idx[mcol] && $idx[mcol] == mval { print $idx[want]; exit }' <<<"$2"
}

echo "-- SHOW POOLS columns"
pools=$(admin_table "SHOW POOLS")
header=$(head -n 1 <<<"$pools")
for col in database user cl_active cl_waiting sv_active sv_idle pool_mode; do
  grep -qE "(^|\|)$col(\||$)" <<<"$header" || fail "SHOW POOLS has no column $col (header: $header)"
done
mode=$(column_of pool_mode "$pools" user app)
check_eq "SHOW POOLS pool_mode of user app" "$mode" "transaction"
check_eq "SHOW POOLS database of user app" "$(column_of database "$pools" user app)" "app"

echo "-- SHOW CLIENTS lists a connected client"
marker="pgring_admin_test_$$"
fifo=$WORK_DIR/client.fifo
mkfifo "$fifo"
psql -X -q "$(with_params "$PGRING_DSN" "application_name=$marker")" -f "$fifo" >"$WORK_DIR/client.out" 2>&1 &
client_pid=$!
on_exit "kill -KILL $client_pid 2>/dev/null"
exec 7<>"$fifo" # read-write: never blocks; psql reads until fd 7 closes
on_exit "exec 7>&-"
echo "SELECT 1;" >&7
client_listed() {
  pid_running "$client_pid" || fail "the client psql exited: $(cat "$WORK_DIR/client.out")"
  [ -n "$(column_of user "$(admin_table "SHOW CLIENTS")" application_name "$marker")" ]
}
wait_for "SHOW CLIENTS to list the client with application_name $marker" 10 client_listed
clients=$(admin_table "SHOW CLIENTS")
check_eq "SHOW CLIENTS user of the client" "$(column_of user "$clients" application_name "$marker")" "app"
check_eq "SHOW CLIENTS database of the client" "$(column_of database "$clients" application_name "$marker")" "app"

echo "-- an idle client is parked, and a parked client's next query runs"
# After its query the client's reader still waits in a coroutine; the maintenance loop
# parks it once it has been idle for a second (SHOW CLIENTS parked = yes).
echo "SELECT 'before parking';" >&7
client_parked() {
  pid_running "$client_pid" || fail "the client psql exited: $(cat "$WORK_DIR/client.out")"
  [ "$(column_of parked "$(admin_table "SHOW CLIENTS")" application_name "$marker")" = yes ]
}
wait_for "the idle client to be parked (SHOW CLIENTS parked = yes)" 15 client_parked
echo "SELECT 40 + 2 AS after_parking;" >&7
answered() { grep -q "^ *42$" "$WORK_DIR/client.out"; }
wait_for "the parked client's query to be answered" 10 answered
grep -q "before parking" "$WORK_DIR/client.out" || fail "the query before parking got no answer: $(cat "$WORK_DIR/client.out")"
exec 7>&-
client_gone() {
  ! pid_running "$client_pid" &&
    [ -z "$(column_of user "$(admin_table "SHOW CLIENTS")" application_name "$marker")" ]
}
wait_for "the disconnected client to leave SHOW CLIENTS" 10 client_gone

echo "-- SHOW STATS total_xact_count"
xacts() { column_of total_xact_count "$(admin_table "SHOW STATS")" database app; }
before=$(xacts)
[[ $before =~ ^[0-9]+$ ]] || fail "SHOW STATS total_xact_count of database app is '$before'"
args=()
for i in 1 2 3 4 5; do args+=(-c "SELECT $i" -c "BEGIN" -c "SELECT 1" -c "COMMIT"); done
psql -X -q -v ON_ERROR_STOP=1 "$PGRING_DSN" "${args[@]}" >/dev/null || fail "transactions through pgring failed"
counted() { local now; now=$(xacts); ((now >= before + 10)); }
wait_for "SHOW STATS total_xact_count to grow by at least 10 from $before (now $(xacts))" 10 counted
echo "   total_xact_count $before -> $(xacts)"

echo "-- the admin database refuses a non-admin user and a wrong password"
read -r _ _ _ app_pw _ < <(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p.hostname, p.port, p.username, u.unquote(p.password or ""), p.path)' "$PGRING_DSN")
app_on_admin="postgresql://app:$app_pw@127.0.0.1:$PGRING_ADMIN_PORT/pgring"
out=$(psql -X -At "$app_on_admin" -c "SHOW POOLS" 2>&1) && fail "user app ran SHOW POOLS on the admin port: $out"
grep -qiE 'FATAL|ERROR' <<<"$out" || fail "refusal of user app carries no server error: $out"
grep -q 'pool_mode\|transaction' <<<"$out" && fail "user app got admin output: $out"
echo "   app refused: $(head -n 1 <<<"$out")"
bad_admin=$(sed -E 's#^(postgresql://[^:]+:)[^@]*@#\1wrong-password@#' <<<"$PGRING_ADMIN_DSN")
out=$(psql -X -At "$bad_admin" -c "SHOW POOLS" 2>&1) && fail "a wrong admin password was accepted: $out"
grep -q 'password authentication failed\|authentication failed' <<<"$out" ||
  fail "wrong admin password: unexpected error: $out"

echo "-- PAUSE holds new transactions until RESUME"
on_exit "psql -X -q '$PGRING_ADMIN_DSN' -c RESUME >/dev/null 2>&1"
out=$(timeout 30 psql -X -v ON_ERROR_STOP=1 "$PGRING_ADMIN_DSN" -c "PAUSE" 2>&1) || fail "PAUSE failed: $out"
check_eq "PAUSE command tag" "$out" "PAUSE"
marker2="pgring_paused_$$"
psql -X -At -v ON_ERROR_STOP=1 "$(with_params "$PGRING_DSN" "application_name=$marker2")" \
  -c "SELECT clock_timestamp()" >"$WORK_DIR/paused.out" 2>&1 &
paused_pid=$!
on_exit "kill -KILL $paused_pid 2>/dev/null"
paused_listed() {
  pid_running "$paused_pid" || fail "the client's query ran while pgring was paused: $(cat "$WORK_DIR/paused.out")"
  [ -n "$(column_of user "$(admin_table "SHOW CLIENTS")" application_name "$marker2")" ]
}
wait_for "the paused client to connect (SHOW CLIENTS)" 10 paused_listed
# A bounded observation, not a synchronisation: the query must still be held a second on.
deadline=$((SECONDS + 1))
while ((SECONDS <= deadline)); do
  pid_running "$paused_pid" || fail "the client's query ran while pgring was paused: $(cat "$WORK_DIR/paused.out")"
  sleep 0.1
done
resume_ts=$(q "$SHARD0" "SELECT clock_timestamp()")
out=$(psql -X -v ON_ERROR_STOP=1 "$PGRING_ADMIN_DSN" -c "RESUME" 2>&1) || fail "RESUME failed: $out"
check_eq "RESUME command tag" "$out" "RESUME"
paused_done() { ! pid_running "$paused_pid"; }
wait_for "the held client to complete after RESUME" 10 paused_done
rc=0
wait "$paused_pid" || rc=$?
[ "$rc" -eq 0 ] || fail "the held client failed after RESUME (exit $rc): $(cat "$WORK_DIR/paused.out")"
client_ts=$(cat "$WORK_DIR/paused.out")
check_eq "the held query ran on shard0 after RESUME ($client_ts > $resume_ts)" \
  "$(q "$SHARD0" "SELECT '$client_ts'::timestamptz > '$resume_ts'::timestamptz")" "t"
check_eq "SELECT through pgring after RESUME" "$(q "$PGRING_DSN" "SELECT 'resumed'")" "resumed"

# The analysis cache: statements that differ only in their key value share one analysis.
stats_before=$(admin_table "SHOW STATS")
hits_before=$(column_of analyzer_hits "$stats_before" database app)
# (Four queries over at most two workers: at least two find the shape cached.)
for k in 101 102 103 104; do
  q "$PGRING_DSN" "SELECT 'shape' WHERE 1 = $k" >/dev/null
done
hits_after=$(column_of analyzer_hits "$(admin_table "SHOW STATS")" database app)
((hits_after >= hits_before + 2)) ||
  fail "SHOW STATS analyzer_hits went from $hits_before to $hits_after over four same-shape queries"

# Prometheus metrics: every shard's pool is reported, and scraping twice keeps pgring up.
for _ in 1 2; do
  metrics=$(curl -sS -m 10 "http://127.0.0.1:$PGRING_METRICS_PORT/metrics") ||
    fail "GET /metrics on port $PGRING_METRICS_PORT failed"
done
for shard in shard0 shard1; do
  grep -q "^pgring_pool_connects_total{shard=\"$shard\"} [0-9]" <<<"$metrics" ||
    fail "/metrics has no pgring_pool_connects_total for $shard: $(head -c 2000 <<<"$metrics")"
done
grep -q '^pgring_clients [0-9]' <<<"$metrics" || fail "/metrics has no pgring_clients gauge"
check_eq "SELECT through pgring after scraping /metrics" "$(q "$PGRING_DSN" "SELECT 'scraped'")" "scraped"

echo "PASS $TEST_NAME"
