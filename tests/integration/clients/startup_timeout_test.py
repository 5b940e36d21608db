#!/usr/bin/python3
"""pool.startup_timeout, on a second pgring instance of its own (startup_timeout 1s):
  * a client that connects and sends nothing gets FATAL 08006 naming pool.startup_timeout,
    then the connection closes: the kernel holds its connection back for about a second
    (TCP_DEFER_ACCEPT on the listener), then the deadline runs;
  * so does a client that sends its startup packet, gets the SCRAM challenge and never
    answers it (the deadline covers the whole start-up, not one read);
  * a client that logged in in time keeps its session past the deadline, and new clients
    log in and query while the stalled ones wait.
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

TIMEOUT = 1.0


# The listener defers a connection until its first packet, or until one SYN-ACK
# retransmission (the kernel's initial retransmission timeout, 1 s) has passed.
DEFER = 1.0


def expect_startup_fatal(conn, case, started, held=0.0):
    fields = conn.read_until_error_or_close()
    elapsed = time.monotonic() - started
    check(fields is not None, f"{case}: the connection closed without an ErrorResponse")
    check(fields.get("S") == "FATAL" and fields.get("C") == "08006",
          f"{case}: got {fields}, want FATAL 08006")
    check("pool.startup_timeout" in fields.get("M", ""),
          f"{case}: the message does not name pool.startup_timeout: {fields.get('M')!r}")
    check(held + 0.8 * TIMEOUT <= elapsed <= held + 3 * TIMEOUT + 2,
          f"{case}: the error came after {elapsed:.2f}s; startup_timeout is {TIMEOUT}s, "
          f"and the connection is held back {held}s before it")
    check(conn.read_until_error_or_close() is None, f"{case}: the connection stayed open after FATAL")


def test_silent_client(px):
    log("-- a client that sends nothing gets FATAL 08006 after startup_timeout")
    started = time.monotonic()
    conn = pgtest.RawConn("127.0.0.1", px.port, timeout=15)
    try:
        expect_startup_fatal(conn, "silent client", started, held=DEFER)
    finally:
        conn.close()


def test_stalled_authentication(env, px):
    log("-- a client that stops during SCRAM gets FATAL 08006 after startup_timeout")
    _, _, user, _, db = pgtest.dsn_parts(env["PGRING_DSN"])
    started = time.monotonic()
    conn = pgtest.RawConn("127.0.0.1", px.port, timeout=15)
    try:
        conn.send(pgtest.startup_packet(user, db))
        t, payload = conn.read_message()
        check(t == b"R" and payload[:4] == b"\0\0\0\x0a",
              f"want AuthenticationSASL after the startup packet, got {t!r} {payload[:8]!r}")
        expect_startup_fatal(conn, "client stalled in SCRAM", started)
    finally:
        conn.close()


def test_others_unaffected(env, px):
    log("-- sessions that logged in in time outlive the deadline; others log in meanwhile")
    early = pgtest.raw_login(px.dsn, timeout=15)
    _, _, user, _, db = pgtest.dsn_parts(env["PGRING_DSN"])
    stalled = [pgtest.RawConn("127.0.0.1", px.port, timeout=15) for _ in range(3)]
    for c in stalled:
        c.send(pgtest.startup_packet(user, db)[:3])  # pgring has them, waiting for the rest
    errors = []

    def drain(c):
        try:
            errors.append(c.read_until_error_or_close())
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    readers = [threading.Thread(target=drain, args=(c,)) for c in stalled]
    for r in readers:
        r.start()
    try:
        for i in range(5):
            with psycopg.connect(px.dsn, autocommit=True, connect_timeout=10) as c:
                got = c.execute("SELECT %s::int + 1", (i,)).fetchone()[0]
                check(got == i + 1, f"a new client's query returned {got}, want {i + 1}")
        for r in readers:
            r.join(15)
        check(all(isinstance(e, dict) and e.get("C") == "08006" for e in errors),
              f"the stalled clients got {errors}, want FATAL 08006 each")
        # The early session is past the deadline now; its timer must not end it.
        rows, status = early.query("SELECT 42")
        check(rows == [("42",)] and status == "I",
              f"a session that logged in in time got {rows} {status} after the deadline")
    finally:
        early.close()
        for c in stalled:
            c.close()


def test(env):
    def body(px):
        test_silent_client(px)
        test_stalled_authentication(env, px)
        test_others_unaffected(env, px)

    run_second_proxy(env, "startup-timeout", body,
                     lambda text: edit_config(text, {}, {}, {"startup_timeout": f"{int(TIMEOUT)}s"}))


if __name__ == "__main__":
    pgtest.run_main(test)
