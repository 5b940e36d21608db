#!/usr/bin/python3
"""A login whose session cannot get its first server connection, on a second pgring
instance of its own whose shards all point at a port nobody listens on:
  * the client finishes SCRAM (AuthenticationSASLFinal verifies, AuthenticationOk comes),
    then gets one FATAL ErrorResponse (08006) naming the unreachable server, with a hint,
    and the connection closes;
  * libpq (psycopg) reports that error rather than a lost connection;
  * the instance keeps serving: a second client gets the same answer.
"""

import os
import re
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgtest  # noqa: E402
from pgtest import check, log  # noqa: E402
from second_proxy import edit_config, free_ports, run_second_proxy  # noqa: E402

import psycopg  # noqa: E402


def no_servers(env):
    """The config edit: each shard's port becomes a free port nobody listens on (one per
    shard: pgring refuses two shards on one database), and waits are short."""
    shard_ports = sorted({pgtest.dsn_parts(d)[1] for d in env["SHARD_DSNS"].split()})
    dead_ports = free_ports(len(shard_ports))

    def edit(text):
        for port, dead in zip(shard_ports, dead_ports):
            text = re.sub(rf"^(\s+port:\s*){port}\s*$", rf"\g<1>{dead}", text, flags=re.M)
        return edit_config(text, {}, {}, {"query_wait_timeout": "2s"})
    return edit, dead_ports


def raw_login_until_error(px, env):
    """Logs in with a raw client; returns the authentication codes seen in order and the
    fields of the ErrorResponse that followed, and checks that the connection closed."""
    _, _, user, password, db = pgtest.dsn_parts(env["PGRING_DSN"])
    conn = pgtest.RawConn("127.0.0.1", px.port, timeout=30)
    try:
        conn.send(pgtest.startup_packet(user, db))
        scram = pgtest._Scram(password)
        codes = []
        while True:
            t, p = conn.read_message()
            if t == b"E":
                fields = pgtest.parse_error_fields(p)
                break
            check(t == b"R", f"unexpected message {t!r} before the error")
            (code,) = struct.unpack("!i", p[:4])
            codes.append(code)
            if code == 10:
                first = scram.client_first()
                conn.send(pgtest.frame(b"p", pgtest.cstr("SCRAM-SHA-256") +
                                       struct.pack("!i", len(first)) + first))
            elif code == 11:
                conn.send(pgtest.frame(b"p", scram.client_final(p[4:])))
            elif code == 12:
                scram.verify_server_final(p[4:])
        check(conn.read_until_error_or_close() is None,
              "the connection stayed open after the FATAL error")
        return codes, fields
    finally:
        conn.close()


def test(env):
    edit, dead_ports = no_servers(env)
    dead_servers = [f"127.0.0.1:{p}" for p in dead_ports]

    def body(px):
        for attempt in (1, 2):
            log(f"-- raw client {attempt}: authentication completes, then FATAL naming the server")
            codes, fields = raw_login_until_error(px, env)
            check(codes == [10, 11, 12, 0],
                  f"authentication requests {codes}, want SASL, continue, final, ok (10, 11, 12, 0)")
            check(fields.get("S") == "FATAL" and fields.get("C") == "08006",
                  f"got {fields}, want FATAL 08006")
            check(any(s in fields.get("M", "") for s in dead_servers),
                  f"the error does not name the unreachable server {dead_servers}: {fields}")
            check(fields.get("H"), f"the error has no hint: {fields}")
        log("-- psycopg reports the same error")
        try:
            psycopg.connect(px.dsn, connect_timeout=30).close()
            check(False, "a login with no reachable server succeeded")
        except psycopg.OperationalError as e:
            check(any(s in str(e) for s in dead_servers),
                  f"psycopg reported {e!r}, want pgring's error naming {dead_servers}")

    run_second_proxy(env, "login-no-server", body, edit)


if __name__ == "__main__":
    pgtest.run_main(test)
