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
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgtest  # noqa: E402
from pgtest import check, fail, log  # noqa: E402

import psycopg  # noqa: E402

TABLE = "clients_pool"
REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))


def find_binary():
    candidates = [os.environ.get("PGRING_BIN")]
    if os.environ.get("PGRING_BINARY_DIR"):
        candidates.append(os.path.join(os.environ["PGRING_BINARY_DIR"], "proxy", "pgring"))
    candidates.append(os.path.join(REPO, "build", "proxy", "pgring"))
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    fail("no pgring binary: set PGRING_BIN (CTest does) or build build/proxy/pgring")


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def edit_config(text, scalars, listen, pool):
    """Returns text with the top-level scalar keys in scalars and the given keys of the
    sections listen: and pool: set (a missing key is added)."""
    sections = {"listen": dict(listen), "pool": dict(pool)}
    scalars = dict(scalars)
    out, current, pending = [], None, {}

    def flush():
        for k, v in pending.items():
            out.append(f"  {k}: {v}")
        pending.clear()

    for line in text.splitlines():
        top = re.match(r"^([A-Za-z_]+):", line)
        if top and top.group(1) in scalars:
            flush()
            current = top.group(1)
            out.append(f"{current}: {scalars.pop(current)}")
            continue
        if top:
            flush()
            current = top.group(1)
            pending.update(sections.pop(current, {}))
            out.append(line)
            continue
        child = re.match(r"^  ([A-Za-z_]+):", line)
        if child and child.group(1) in pending:
            out.append(f"  {child.group(1)}: {pending.pop(child.group(1))}")
            continue
        out.append(line)
    flush()
    out.extend(f"{k}: {v}" for k, v in scalars.items())
    for name, keys in sections.items():  # sections the file did not have
        out.append(f"{name}:")
        out.extend(f"  {k}: {v}" for k, v in keys.items())
    return "\n".join(out) + "\n"


class SecondProxy:
    """A pgring process of this test, stopped (SIGTERM, then SIGKILL) by stop()."""

    def __init__(self, env, workdir):
        self.binary = find_binary()
        self.port, self.admin_port, self.metrics_port = free_ports(3)
        self.config = os.path.join(workdir, "pgring.yaml")
        with open(env["PGRING_CONFIG"], encoding="utf-8") as f:
            self.base_config = f.read()
        self.write_config("1s")
        self.log_path = os.path.join(workdir, "pgring.log")
        host, _, user, password, db = pgtest.dsn_parts(env["PGRING_DSN"])
        self.dsn = f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{db}"
        _, _, auser, apassword, adb = pgtest.dsn_parts(env["PGRING_ADMIN_DSN"])
        self.admin_dsn = f"postgresql://{auser}:{apassword}@127.0.0.1:{self.admin_port}/{adb}"
        self.proc = None

    def write_config(self, wait_timeout):
        # One worker: pgring splits pool.size evenly between its workers, and a client
        # only borrows from its own worker's share (docs/pooling.md).
        text = edit_config(self.base_config, {"workers": 1},
                           {"port": self.port, "admin_port": self.admin_port, "metrics_port": self.metrics_port},
                           {"size": 2, "query_wait_timeout": wait_timeout})
        tmp = self.config + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self.config)

    def start(self):
        out = subprocess.run([self.binary, "--check-config", self.config], capture_output=True, text=True)
        check(out.returncode == 0, f"pgring --check-config refuses the copied config: {out.stdout}{out.stderr}")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([self.binary, "--config", self.config], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

        def accepting():
            if self.proc.poll() is not None:
                fail(f"second pgring exited with code {self.proc.returncode} during start-up: {self.tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False
        pgtest.wait_until(f"the second pgring to accept connections on port {self.port}", accepting, timeout=30)
        log(f"   second pgring (pid {self.proc.pid}) on port {self.port}, admin {self.admin_port}")

    def admin(self, sql):
        with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=10) as conn:
            res = conn.pgconn.exec_(sql.encode())
            if res.status not in (psycopg.pq.ExecStatus.TUPLES_OK, psycopg.pq.ExecStatus.COMMAND_OK):
                fail(f"admin {sql!r} on the second pgring failed: {res.error_message.decode(errors='replace')}")
            cols = [res.fname(i).decode() for i in range(res.nfields)]
            return [{c: (None if res.get_value(r, i) is None else res.get_value(r, i).decode())
                     for i, c in enumerate(cols)} for r in range(res.ntuples)]

    def config_value(self, key):
        return next((r["value"] for r in self.admin("SHOW CONFIG") if r["key"] == key), None)

    def tail(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-15:])
        except OSError:
            return "(no log)"

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


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
    px.write_config("10s")
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
    with tempfile.TemporaryDirectory(prefix="pgring-pool-limits.") as workdir:
        px = SecondProxy(env, workdir)
        try:
            px.start()
            test_wait_timeout(env, px)
            test_many_clients(env, px)
            check(px.proc.poll() is None, f"the second pgring died during the test: {px.tail()}")
        except pgtest.TestFailure as e:
            raise pgtest.TestFailure(f"{e}\n--- last lines of the second pgring's log ---\n{px.tail()}") from None
        finally:
            px.stop()


if __name__ == "__main__":
    pgtest.run_main(test)
