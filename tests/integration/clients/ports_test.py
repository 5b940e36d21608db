#!/usr/bin/python3
"""A second pgring started on a port the shared instance already listens on:
  * same client port (its own admin and metrics ports): it exits with code 1 and an error
    naming the port, instead of joining the first instance's SO_REUSEPORT group and
    taking part of its clients;
  * same admin port: it exits with code 1 and an error naming that port;
  * the shared instance keeps serving, and every client connection made while the second
    process was starting reached the shared instance (its SHOW CLIENTS lists them all).
"""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgtest  # noqa: E402
from pgtest import check, log  # noqa: E402
from second_proxy import SecondProxy  # noqa: E402

import psycopg  # noqa: E402


def start_refused(env, workdir, port, admin_port, want):
    """Starts a pgring on the given ports (None: a free one of its own) and checks that it
    exits with code 1 and logs `want`, while clients of the shared instance keep working."""
    px = SecondProxy(env, workdir)
    if port is not None:
        px.port = port
    if admin_port is not None:
        px.admin_port = admin_port
    px.write_config(lambda text: text)
    with open(px.log_path, "w") as logf:
        proc = subprocess.Popen([px.binary, "--config", px.config], stdin=subprocess.DEVNULL,
                                stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        # Clients connect while the second process starts: each must be the shared
        # instance's.
        conns = []
        # Named for this case: connections of an earlier case may still be closing.
        app = f"ports_test_{port}_{admin_port}"
        try:
            for _ in range(20):
                if proc.poll() is not None:
                    break
                conns.append(psycopg.connect(env["PGRING_DSN"], autocommit=True,
                                             connect_timeout=10, application_name=app))
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
                check(False, f"the second pgring kept running on a port in use: {px.tail()}")
            check(code == 1, f"the second pgring exited with code {code}, want 1: {px.tail()}")
            check(want in px.tail(), f"the second pgring's log does not say {want!r}: {px.tail()}")
            _, rows = pgtest.admin_query(env, "SHOW CLIENTS")
            listed = [r for r in rows if r.get("application_name") == app]
            check(len(listed) == len(conns),
                  f"the shared instance lists {len(listed)} of the {len(conns)} clients")
            for c in conns:
                check(c.execute("SELECT 1").fetchone() == (1,), "a client of the shared instance failed")
        finally:
            for c in conns:
                c.close()
    log(f"   refused: {px.tail().strip().splitlines()[-1]}")


def test(env):
    port = int(env["PGRING_PORT"])
    admin_port = int(env["PGRING_ADMIN_PORT"])
    with tempfile.TemporaryDirectory(prefix="pgring-ports.") as workdir:
        log("-- a second pgring on the shared instance's client port exits")
        start_refused(env, workdir, port, None,
                      f"cannot listen on 127.0.0.1:{port}: another process already listens on it")
        log("-- a second pgring on the shared instance's admin port exits")
        start_refused(env, workdir, None, admin_port, f"cannot listen on 127.0.0.1:{admin_port}")
    with psycopg.connect(env["PGRING_DSN"], autocommit=True, connect_timeout=10) as c:
        check(c.execute("SELECT 1").fetchone() == (1,), "the shared instance stopped serving")


if __name__ == "__main__":
    pgtest.run_main(test)
