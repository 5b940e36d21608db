#!/usr/bin/python3
"""Pool limits of pgring, on a second pgring instance of its own.

The test starts another pgring with a copy of the cluster's configuration on free ports,
with workers 1, pool.size 2 and pool.query_wait_timeout 1s, and checks:
  * with 2 transactions held open, a third client gets SQLSTATE 53300 after about 1s
    instead of hanging (with the extended and the simple query protocol, counted in SHOW
    POOLS cl_waiting meanwhile), keeps its connection, and runs once a transaction ends;
  * after RELOAD raises query_wait_timeout to 10s (pool.size stays 2), 200 clients
    connected at once, each running 3 short transactions, all succeed, and shard0 shows
    that they shared at most 2 server connections.
The copy runs one worker, so that pool.size 2 is one pool of 2 (pgring splits pool.size
between workers). The binary is $PGRING_BIN (set by CTest), else $PGRING_BINARY_DIR/proxy/pgring, else
build/proxy/pgring in the repository.
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgtest  # noqa: E402
from pgtest import check, log  # noqa: E402
from second_proxy import edit_config, run_second_proxy  # noqa: E402

import psycopg  # noqa: E402

TABLE = "clients_pool"


def limits(wait_timeout):
    """The config edit of this test: one worker (pgring splits pool.size evenly between its
    workers, and a client only borrows from its own worker's share, docs/pooling.md),
    pool.size 2 and the given query_wait_timeout."""
    return lambda text: edit_config(text, {"workers": 1}, {},
                                    {"size": 2, "query_wait_timeout": wait_timeout})


def test_wait_timeout(env, px):
    log("-- pool.size 2, query_wait_timeout 1s: a third client gets 53300")
    for key, want in (("pool.size", "2"), ("workers", "1"), ("pool.query_wait_timeout", "1000ms")):
        got = px.config_value(key)
        check(got == want, f"second pgring: SHOW CONFIG {key} = {got!r}, want {want!r}")
    holders = [psycopg.connect(px.dsn, autocommit=True, connect_timeout=10) for _ in range(2)]
    third = psycopg.connect(px.dsn, autocommit=True, connect_timeout=10)
    try:
        pids = []
        for h in holders:
            h.execute("BEGIN")
            pids.append(h.execute("SELECT pg_backend_pid()").fetchone()[0])
        check(len(set(pids)) == 2, f"the two open transactions share backend {pids}")
        with psycopg.connect(env["SHARD_SUPERUSER_DSN_LIST"][0], autocommit=True) as d:
            states = d.execute("SELECT state FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)).fetchall()
        check(sorted(states) == [("idle in transaction",)] * 2,
              f"shard0 backends of the held transactions are {states}, want idle in transaction")

        started = time.monotonic()
        err = None
        try:
            pgtest.with_deadline("the third client's query", lambda: third.execute("SELECT 1"), timeout=15)
        except psycopg.Error as e:
            err = e
        elapsed = time.monotonic() - started
        check(err is not None, "a third client ran a query while pool.size 2 was taken by 2 open transactions")
        check(err.sqlstate == "53300", f"third client: SQLSTATE {err.sqlstate}, want 53300 ({err})")
        log(f"   53300 after {elapsed:.2f}s: {str(err).strip().splitlines()[0]}")
        check(0.8 <= elapsed <= 3.0, f"53300 came after {elapsed:.2f}s; query_wait_timeout is 1s")
        check(not third.closed, "pgring closed the third client's connection instead of only sending the error")

        # The same wait with the simple query protocol (libpq's PQexec), which waits in the
        # pool's queue without a coroutine first: SHOW POOLS counts it as waiting, and
        # query_wait_timeout still counts from the start of its wait.
        result = {}

        def simple_query():
            t0 = time.monotonic()
            res = third.pgconn.exec_(b"SELECT 1")
            result["elapsed"] = time.monotonic() - t0
            result["sqlstate"] = res.error_field(psycopg.pq.DiagnosticField.SQLSTATE)

        waiter = threading.Thread(target=simple_query, daemon=True)
        waiter.start()

        def waiting_clients():
            return sum(int(r["cl_waiting"]) for r in px.admin("SHOW POOLS"))

        pgtest.wait_until("SHOW POOLS to count the simple-protocol client as waiting",
                          lambda: waiting_clients() == 1, timeout=5)
        states = sorted(r["state"] for r in px.admin("SHOW CLIENTS"))
        check(states.count("waiting") == 1 and states.count("active") == 2,
              f"SHOW CLIENTS states while one client waits: {states}, want 2 active, 1 waiting")
        waiter.join(15)
        check(not waiter.is_alive(), "the simple-protocol query waited past query_wait_timeout (15s)")
        check(result.get("sqlstate") == b"53300",
              f"simple-protocol waiter: SQLSTATE {result.get('sqlstate')}, want 53300")
        log(f"   simple protocol: 53300 after {result['elapsed']:.2f}s")
        check(0.8 <= result["elapsed"] <= 3.0,
              f"simple-protocol 53300 came after {result['elapsed']:.2f}s; query_wait_timeout is 1s")
        check(waiting_clients() == 0, "SHOW POOLS still counts a waiting client after its 53300")
        states = [r["state"] for r in px.admin("SHOW CLIENTS")]
        check("waiting" not in states, f"SHOW CLIENTS still shows a waiting client after its 53300: {states}")

        holders[0].execute("COMMIT")
        v = third.execute("SELECT 'served'").fetchone()[0]
        check(v == "served", "the third client cannot run a query once a server connection is free")
        holders[1].execute("COMMIT")
    finally:
        for c in holders + [third]:
            c.close()


def test_many_clients(env, px):
    log("-- RELOAD with query_wait_timeout 10s, then 200 clients x 3 transactions over pool.size 2")
    px.write_config(limits("10s"))
    px.admin("RELOAD")
    got = px.config_value("pool.query_wait_timeout")
    check(got == "10000ms", f"after RELOAD, SHOW CONFIG pool.query_wait_timeout = {got!r}, want 10000ms")
    clients, per_client = 200, 3
    with psycopg.connect(env["SHARD_DSN_LIST"][0], autocommit=True) as d:
        d.execute(f"DROP TABLE IF EXISTS {TABLE}")
        d.execute(f"CREATE TABLE {TABLE} (client int, seq int, pid int, PRIMARY KEY (client, seq))")

    barrier = threading.Barrier(clients, timeout=120)
    errors = []

    def client(k):
        try:
            with psycopg.connect(px.dsn, autocommit=True, connect_timeout=30) as c:
                barrier.wait()
                for i in range(per_client):
                    with c.transaction():
                        c.execute(f"INSERT INTO {TABLE} VALUES (%s, %s, pg_backend_pid())", (k, i))
                        c.execute("SELECT pg_sleep(0.001)")
        except threading.BrokenBarrierError:
            errors.append(f"client {k}: barrier broken (another client failed to connect)")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"client {k}: {type(e).__name__}: {str(e).strip()}")
            barrier.abort()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    deadline = started + 240
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    hung = sum(t.is_alive() for t in threads)
    check(hung == 0, f"{hung} of {clients} clients did not finish within 240s")
    real_errors = [e for e in errors if "barrier broken" not in e] or errors
    check(not errors, f"{len(errors)} client(s) failed; first: {real_errors[0] if real_errors else ''}")
    log(f"   {clients * per_client} transactions in {time.monotonic() - started:.1f}s")
    with psycopg.connect(env["SHARD_DSN_LIST"][0], autocommit=True) as d:
        n, pids = d.execute(f"SELECT count(*), count(DISTINCT pid) FROM {TABLE}").fetchone()
        d.execute(f"DROP TABLE IF EXISTS {TABLE}")
    check(n == clients * per_client, f"shard0 has {n} rows, want {clients * per_client}")
    check(1 <= pids <= 2, f"the transactions ran on {pids} server connections, pool.size is 2")


def test(env):
    def body(px):
        test_wait_timeout(env, px)
        test_many_clients(env, px)

    run_second_proxy(env, "pool-limits", body, limits("1s"))


if __name__ == "__main__":
    pgtest.run_main(test)
