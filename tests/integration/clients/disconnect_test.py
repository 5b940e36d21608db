#!/usr/bin/python3
"""A client that disappears in the middle of a transaction.

A raw-socket client logs in through pgring, runs BEGIN and an INSERT, and its socket is
closed abruptly: once with a TCP reset (SO_LINGER 0, like a killed process on another
host) and once with a plain close (FIN) without Terminate; a third client vanishes while
its statement is still running on shard0. Each time, on shard0 directly:
  * the INSERT is not visible (the transaction was rolled back, never committed);
  * within a deadline no backend of user app is left 'idle in transaction' (or still
    running the abandoned statement), the server connection was rolled back and either
    returned to the pool or closed;
and through pgring, concurrent transactions covering every idle server connection of
shard0 run normally, see none of the abandoned rows and start in a fresh transaction.
A fourth client sends a slow INSERT, then BEGIN and an INSERT, then Terminate, in one
write without waiting: as on PostgreSQL the first INSERT runs to the end and is committed,
and the transaction left open is rolled back.
"""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgtest  # noqa: E402
from pgtest import check, log  # noqa: E402

import psycopg  # noqa: E402

TABLE = "clients_disconnect"


def shard0_super(env):
    return psycopg.connect(env["SHARD_SUPERUSER_DSN_LIST"][0], autocommit=True)


def backend_state(env, pid):
    with shard0_super(env) as c:
        r = c.execute("SELECT state, query FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return r


def no_app_backend_in_transaction(env):
    with shard0_super(env) as c:
        rows = c.execute("SELECT pid, state, query FROM pg_stat_activity WHERE usename = 'app' "
                         "AND datname = current_database() AND pid <> pg_backend_pid() "
                         "AND (state LIKE 'idle in transaction%%' OR (state = 'active' AND query LIKE %s))",
                         (f"%{TABLE}%",)).fetchall()
    return rows


def check_pool_healthy(env, case, marker):
    """Holds as many concurrent transactions through pgring as shard0 has server
    connections (plus some), each checking it is in a fresh transaction and cannot see the
    abandoned row."""
    _, pools = pgtest.admin_query(env, "SHOW POOLS")
    servers = sum(int(r[k]) for r in pools if r["shard"] == "shard0"
                  for k in ("sv_active", "sv_idle", "sv_used", "sv_tested"))
    n = min(servers + 4, 12)
    barrier = threading.Barrier(n, timeout=30)
    results, errors = [], []

    def one():
        try:
            with psycopg.connect(env["PGRING_DSN"], autocommit=True, connect_timeout=10) as c:
                with c.transaction():
                    r = c.execute(f"SELECT (SELECT count(*) FROM {TABLE} WHERE marker LIKE %s), "
                                  "pg_current_xact_id_if_assigned() IS NULL, pg_backend_pid()",
                                  (marker + "%",)).fetchone()
                    barrier.wait()
                results.append(r)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"{type(e).__name__}: {str(e).strip()}")
            barrier.abort()

    threads = [threading.Thread(target=one, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    check(not any(t.is_alive() for t in threads), f"{case}: a transaction through pgring hung")
    real = [e for e in errors if "BrokenBarrierError" not in e] or errors
    check(not errors, f"{case}: transactions through pgring failed: {real[:2]}")
    for count, fresh, pid in results:
        check(count == 0, f"{case}: server connection {pid} sees the abandoned row (still in its transaction)")
        check(fresh, f"{case}: server connection {pid} is inside an older transaction (it has a transaction id before writing)")
    return {pid for _, _, pid in results}


def abandon(env, case, marker, how):
    conn = pgtest.raw_login(env["PGRING_DSN"], application_name=f"pgring_disconnect_{how}")
    rows, status = conn.query(f"BEGIN; INSERT INTO {TABLE} (marker) VALUES ('{marker}'); SELECT pg_backend_pid()")
    check(status == "T", f"{case}: transaction status after BEGIN; INSERT is {status!r}, want 'T'")
    backend = int(rows[0][0])
    st = backend_state(env, backend)
    check(st is not None and st[0] == "idle in transaction",
          f"{case}: shard0 backend {backend} is {st!r}, want idle in transaction")
    if how == "reset":
        conn.abort()
    elif how == "close":
        conn.close()
    elif how == "running":
        # The client vanishes while its statement is still running on shard0.
        conn.send(pgtest.frame(b"Q", pgtest.cstr(f"UPDATE {TABLE} SET marker = marker || pg_sleep(3)::text")))
        pgtest.wait_until(f"{case}: the UPDATE to run on shard0",
                          lambda: (backend_state(env, backend) or ("", ""))[0] == "active", timeout=10)
        conn.abort()
    return backend


def test_goodbye(env):
    case = "statements sent with Terminate, not waited for"
    log(f"-- {case}")
    done = f"goodbye-done-{os.getpid()}"
    open_tx = f"goodbye-open-{os.getpid()}"
    conn = pgtest.raw_login(env["PGRING_DSN"], application_name="pgring_disconnect_goodbye")
    # One send: a statement that takes a while (it must run to the end, not be cancelled),
    # a transaction left open (PostgreSQL rolls it back at Terminate), then Terminate.
    conn.send(pgtest.frame(b"Q", pgtest.cstr(
                  f"INSERT INTO {TABLE} (marker) SELECT '{done}' FROM pg_sleep(0.5)")) +
              pgtest.frame(b"Q", pgtest.cstr(
                  f"BEGIN; INSERT INTO {TABLE} (marker) VALUES ('{open_tx}')")) +
              pgtest.frame(b"X"))
    conn.close()

    def count(marker):
        with psycopg.connect(env["SHARD_DSN_LIST"][0], autocommit=True) as c:
            return c.execute(f"SELECT count(*) FROM {TABLE} WHERE marker = %s", (marker,)).fetchone()[0]

    pgtest.wait_until(f"{case}: the INSERT sent before Terminate to be committed on shard0",
                      lambda: count(done) == 1, timeout=10)
    pgtest.wait_until(f"{case}: no backend of app left idle in transaction on shard0; now: "
                      f"{no_app_backend_in_transaction(env)}",
                      lambda: not no_app_backend_in_transaction(env), timeout=10)
    check(count(open_tx) == 0, f"{case}: the transaction left open at Terminate was committed")
    check_pool_healthy(env, case, open_tx)


def test(env):
    with psycopg.connect(env["SHARD_DSN_LIST"][0], autocommit=True) as c:
        c.execute(f"DROP TABLE IF EXISTS {TABLE}")
        c.execute(f"CREATE TABLE {TABLE} (id serial PRIMARY KEY, marker text)")

    for how in ("reset", "close", "running"):
        case = {"reset": "TCP reset mid-transaction",
                "close": "close without Terminate mid-transaction",
                "running": "TCP reset while a statement runs"}[how]
        log(f"-- {case}")
        marker = f"abandoned-{how}-{os.getpid()}"
        backend = abandon(env, case, marker, how)

        def settled():
            st = backend_state(env, backend)
            return st is None or st[0] == "idle"
        timeout = 15 if how == "running" else 10
        pgtest.wait_until(f"{case}: shard0 backend {backend} to leave its transaction "
                          f"(now {backend_state(env, backend)!r})", settled, timeout=timeout)
        pgtest.wait_until(f"{case}: no backend of app left idle in transaction (or running the "
                          f"abandoned statement) on shard0; now: {no_app_backend_in_transaction(env)}",
                          lambda: not no_app_backend_in_transaction(env), timeout=timeout)
        st = backend_state(env, backend)
        log(f"   backend {backend}: {'closed' if st is None else st[0] + ' (back in the pool)'}")
        with psycopg.connect(env["SHARD_DSN_LIST"][0], autocommit=True) as c:
            n = c.execute(f"SELECT count(*) FROM {TABLE} WHERE marker LIKE %s", (marker + "%",)).fetchone()[0]
        check(n == 0, f"{case}: the abandoned INSERT is visible on shard0 ({n} row(s))")
        pids = check_pool_healthy(env, case, marker)
        if st is not None:
            log(f"   the old backend {'was' if backend in pids else 'was not'} among the "
                f"{len(pids)} server connections used afterwards")

    test_goodbye(env)

    with psycopg.connect(env["SHARD_DSN_LIST"][0], autocommit=True) as c:
        c.execute(f"DROP TABLE IF EXISTS {TABLE}")


if __name__ == "__main__":
    pgtest.run_main(test)
