#!/usr/bin/python3
"""Malformed frontend messages sent to pgring over raw sockets.

After a valid startup and SCRAM-SHA-256 login, each case sends one broken frame: a
declared length of 3 (below the 4 bytes of the length itself), a declared length of 1 GB,
an unknown message type byte, and a truncated frame followed by a close. A broken frame
inside an open transaction must also end that transaction on the shard. A Bind whose
parameter claims more bytes than the message has, for a statement pgring routes without
reading values, must get PostgreSQL's own 08P01 error and leave the session usable. Before
login, startup packets with impossible lengths are sent.

Every case must end with an ErrorResponse carrying SQLSTATE 08P01 or a closed
connection, promptly (pgring must not wait for 1 GB that will never come), and after
each case a normal psycopg connection through pgring must still work. Finally no client
of these cases may stay registered in pgring (SHOW CLIENTS).
"""

import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgtest  # noqa: E402
from pgtest import check, cstr, fail, frame, log, parse_error_fields  # noqa: E402

import psycopg  # noqa: E402

# How long pgring may take to answer a broken frame with an error or a close.
ANSWER_TIMEOUT = 10.0
TABLE = "clients_malformed"


def expect_error_or_close(conn, case):
    """Fails unless conn gets an 08P01 ErrorResponse or EOF within ANSWER_TIMEOUT."""
    conn.sock.settimeout(ANSWER_TIMEOUT)
    try:
        fields = conn.read_until_error_or_close()
    except socket.timeout:
        fail(f"{case}: pgring neither sent an ErrorResponse nor closed the connection "
             f"within {ANSWER_TIMEOUT:g}s")
    finally:
        conn.close()
    if fields is None:
        log(f"  {case}: connection closed")
        return
    check(fields.get("C") == "08P01",
          f"{case}: ErrorResponse has SQLSTATE {fields.get('C')!r}, want 08P01 "
          f"(message: {fields.get('M')!r})")
    log(f"  {case}: ErrorResponse 08P01 {fields.get('M')!r}")


def proxy_still_serves(env, case):
    """Holds enough concurrent transactions through pgring that every idle server
    connection of shard0 is handed out (a connection left with half a frame in it shows up
    here as a hang), each running a parameterised query with psycopg."""
    _, pools = pgtest.admin_query(env, "SHOW POOLS")
    servers = sum(int(r[k]) for r in pools if r["shard"] == "shard0"
                  for k in ("sv_active", "sv_idle", "sv_used", "sv_tested"))
    n = min(servers + 4, 12)
    barrier = threading.Barrier(n, timeout=20)
    conns = [psycopg.connect(env["PGRING_DSN"], connect_timeout=10) for _ in range(n)]
    try:
        def one(conn):
            v = conn.execute("SELECT %s::int * 2", (21,)).fetchone()[0]  # opens a transaction
            barrier.wait()
            conn.commit()
            return v
        results = [None] * n
        threads = []
        for i, conn in enumerate(conns):
            def run(i=i, conn=conn):
                try:
                    results[i] = one(conn)
                except threading.BrokenBarrierError:
                    results[i] = "no answer (another transaction failed or hung)"
                except Exception as e:  # noqa: BLE001 - reported below
                    results[i] = f"{type(e).__name__}: {str(e).strip()}"
            t = threading.Thread(target=run, daemon=True)
            t.start()
            threads.append(t)
        deadline = time.monotonic() + 20
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        hung = sum(t.is_alive() for t in threads)
        check(hung == 0, f"after {case}: {hung} of {n} concurrent transactions through pgring "
                         f"got no answer within 20s (a server connection was left unusable)")
        check(results == [42] * n, f"after {case}: concurrent SELECTs returned {results}")
    finally:
        for conn in conns:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - best effort on a hung connection
                pass


def logged_in(env, case):
    conn = pgtest.raw_login(env["PGRING_DSN"], application_name=f"pgring_malformed_{os.getpid()}")
    rows, status = conn.query("SELECT 1")
    check(rows == [("1",)] and status == "I", f"{case}: login sanity query returned {rows} {status}")
    return conn


def test(env):
    shard0 = env["SHARD_DSN_LIST"][0]
    shard0_super = env["SHARD_SUPERUSER_DSN_LIST"][0]
    host, port, *_ = pgtest.dsn_parts(env["PGRING_DSN"])
    app_name = f"pgring_malformed_{os.getpid()}"

    with psycopg.connect(shard0, autocommit=True) as c:
        c.execute(f"DROP TABLE IF EXISTS {TABLE}")
        c.execute(f"CREATE TABLE {TABLE} (id int PRIMARY KEY)")

    cases = []
    failures = []

    def case(name):
        def register(fn):
            cases.append((name, fn))
            return fn
        return register

    @case("(0) control: valid startup packet with only user and database, then a query")
    def _(name):
        _, _, user, password, db = pgtest.dsn_parts(env["PGRING_DSN"])
        conn = pgtest.RawConn(host, port)
        try:
            conn.login(user, password, db)  # no application_name, no client_encoding
            rows, status = conn.query("SELECT 1")
            check(rows == [("1",)] and status == "I", f"{name}: got {rows} {status}")
        except socket.timeout:
            fail(f"{name}: no answer to 'SELECT 1' within 10s (a startup packet without "
                 f"optional parameters is valid; psql/libpq just always send some)")
        finally:
            conn.close()

    @case("(a) message with length 3")
    def _(name):
        conn = logged_in(env, name)
        conn.send(b"Q" + struct.pack("!i", 3))
        expect_error_or_close(conn, name)

    @case("(b) message declaring 1 GB")
    def _(name):
        conn = logged_in(env, name)
        started = time.monotonic()
        conn.send(b"Q" + struct.pack("!i", 1 << 30) + b"SELECT 1")
        expect_error_or_close(conn, name)
        log(f"  answered after {time.monotonic() - started:.2f}s")

    @case("(c) unknown message type byte '!'")
    def _(name):
        conn = logged_in(env, name)
        conn.send(frame(b"!", b"garbage\0"))
        expect_error_or_close(conn, name)

    @case("(c2) message type byte 0x00")
    def _(name):
        conn = logged_in(env, name)
        conn.send(frame(b"\0", b""))
        expect_error_or_close(conn, name)

    @case("(d) truncated frame, then close")
    def _(name):
        conn = logged_in(env, name)
        conn.send(b"Q" + struct.pack("!i", 100) + b"SELECT 1")  # 92 bytes short
        conn.sock.shutdown(socket.SHUT_WR)
        expect_error_or_close(conn, name)

    @case("(d2) truncated frame, then reset")
    def _(name):
        conn = logged_in(env, name)
        conn.send(b"P" + struct.pack("!i", 50) + b"\0SELECT")
        conn.abort()
        log(f"  {name}: connection reset by the client")

    @case("(e) broken frame inside a transaction")
    def _(name):
        conn = logged_in(env, name)
        rows, status = conn.query(f"BEGIN; INSERT INTO {TABLE} VALUES (1); SELECT pg_backend_pid()")
        check(status == "T", f"{name}: status after BEGIN; INSERT is {status!r}, want 'T'")
        backend = int(rows[0][0])
        conn.send(b"Q" + struct.pack("!i", 2))
        expect_error_or_close(conn, name)

        def tx_gone():
            with psycopg.connect(shard0_super, autocommit=True) as c:
                r = c.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (backend,)).fetchone()
            return r is None or r[0] == "idle"
        pgtest.wait_until(f"{name}: shard0 backend {backend} to leave its open transaction", tx_gone)
        with psycopg.connect(shard0) as c:
            n = c.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
        check(n == 0, f"{name}: the INSERT of the broken client's open transaction is visible on "
                      f"shard0 ({n} row(s)); it must have been rolled back")

    @case("(e2) Bind whose parameter claims more bytes than the message has")
    def _(name):
        # The statement names only a table outside the table map: once it is routed, pgring
        # knows its values decide nothing and passes its Binds on without reading their
        # parameters. PostgreSQL finds this one broken: 08P01, and the session goes on.
        conn = logged_in(env, name)
        sql = cstr(f"SELECT count(*) FROM {TABLE} WHERE id = $1")
        parse = frame(b"P", b"\0" + sql + struct.pack("!h", 0))
        execute_sync = frame(b"E", b"\0" + struct.pack("!i", 0)) + frame(b"S")

        def bind(declared, value):
            return frame(b"B", b"\0\0" + struct.pack("!hhi", 0, 1, declared) + value +
                         struct.pack("!h", 0))

        def until_ready():
            messages = []
            while not messages or messages[-1][0] != b"Z":
                messages.append(conn.read_message())
            return messages

        try:
            for _ in range(2):  # well-formed: routed, and remembered how
                conn.send(parse + bind(1, b"1") + execute_sync)
                types = [t for t, _ in until_ready()]
                check(types == [b"1", b"2", b"D", b"C", b"Z"],
                      f"{name}: a well-formed Bind returned messages {types}")
            conn.send(parse + bind(100, b"41") + execute_sync)
            messages = until_ready()
            errors = [parse_error_fields(p) for t, p in messages if t == b"E"]
            check(len(errors) == 1 and errors[0].get("C") == "08P01",
                  f"{name}: want one 08P01 ErrorResponse before ReadyForQuery, got {messages}")
            rows, status = conn.query("SELECT 7")
            check(rows == [("7",)] and status == "I",
                  f"{name}: after the error the session answered {rows} {status}")
            log(f"  {name}: ErrorResponse 08P01 {errors[0].get('M')!r}; the session goes on")
        except pgtest.ConnectionClosed:
            fail(f"{name}: the connection was closed; the Bind should have reached PostgreSQL")
        finally:
            conn.close()

    @case("(f) unauthenticated startup packet with length 3")
    def _(name):
        conn = pgtest.RawConn(host, port)
        conn.send(struct.pack("!i", 3) + struct.pack("!i", pgtest.PROTOCOL_VERSION_3))
        expect_error_or_close(conn, name)

    @case("(g) unauthenticated startup packet declaring 1 GB")
    def _(name):
        conn = pgtest.RawConn(host, port)
        conn.send(struct.pack("!i", 1 << 30) + struct.pack("!i", pgtest.PROTOCOL_VERSION_3) + b"user\0app\0")
        expect_error_or_close(conn, name)

    @case("(h) unauthenticated startup packet of 10001 bytes")
    def _(name):
        conn = pgtest.RawConn(host, port)
        body = struct.pack("!i", pgtest.PROTOCOL_VERSION_3) + b"user\0app\0x\0" + b"y" * 9970 + b"\0\0"
        packet = struct.pack("!i", 10001) + body.ljust(10001 - 4, b"\0")[:10001 - 4]
        try:
            conn.send(packet)
        except (BrokenPipeError, ConnectionResetError):
            pass
        expect_error_or_close(conn, name)

    @case("(i) unauthenticated startup packet whose length overstates its content, then close")
    def _(name):
        conn = pgtest.RawConn(host, port)
        conn.send(struct.pack("!i", 64) + struct.pack("!i", pgtest.PROTOCOL_VERSION_3) + b"user\0ap")
        conn.sock.shutdown(socket.SHUT_WR)
        expect_error_or_close(conn, name)

    @case("(j) password message with a length below 4 during SCRAM")
    def _(name):
        _, _, user, _, db = pgtest.dsn_parts(env["PGRING_DSN"])
        conn = pgtest.RawConn(host, port)
        conn.send(pgtest.startup_packet(user, db, application_name=app_name))
        t, p = conn.read_message()
        check(t == b"R" and struct.unpack("!i", p[:4])[0] == 10,
              f"{name}: expected AuthenticationSASL, got {t!r}")
        conn.send(b"p" + struct.pack("!i", 1))
        expect_error_or_close(conn, name)

    for name, fn in cases:
        log(name)
        try:
            fn(name)
            proxy_still_serves(env, name)
        except (pgtest.TestFailure, OSError, psycopg.Error, pgtest.PgError) as e:
            log(f"  FAILED: {e!r}")
            failures.append(f"{name}: {e}")
    if failures:
        fail(f"{len(failures)} of {len(cases)} cases failed (a case may fail because an earlier "
             f"one left pgring broken):\n  " + "\n  ".join(failures))

    def no_leftover_clients():
        _, rows = pgtest.admin_query(env, "SHOW CLIENTS")
        left = [r for r in rows if r.get("application_name") == app_name]
        return True if not left else None
    pgtest.wait_until("pgring's SHOW CLIENTS to drop every client of the malformed cases",
                      no_leftover_clients)

    with psycopg.connect(shard0, autocommit=True) as c:
        c.execute(f"DROP TABLE IF EXISTS {TABLE}")


if __name__ == "__main__":
    pgtest.run_main(test)
