"""A second pgring instance for a test: a copy of the cluster's configuration, changed by
the test, on free ports of its own, so that the shared instance and its configuration stay
as they are. The binary is $PGRING_BIN (set by CTest), else
$PGRING_BINARY_DIR/proxy/pgring, else build/proxy/pgring in the repository."""

import os
import re
import signal
import socket
import subprocess
import tempfile

import pgtest
from pgtest import check, fail, log

import psycopg

# The first line of an AddressSanitizer, LeakSanitizer or UBSan report.
SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")

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
    """A pgring process of a test, configured by edit(text) -> text applied to the
    cluster's configuration; started by start(), stopped (SIGTERM, then SIGKILL) by
    stop()."""

    def __init__(self, env, workdir, edit=lambda text: text):
        self.binary = find_binary()
        self.port, self.admin_port, self.metrics_port = free_ports(3)
        self.config = os.path.join(workdir, "pgring.yaml")
        with open(env["PGRING_CONFIG"], encoding="utf-8") as f:
            self.base_config = f.read()
        self.write_config(edit)
        self.log_path = os.path.join(workdir, "pgring.log")
        host, _, user, password, db = pgtest.dsn_parts(env["PGRING_DSN"])
        self.dsn = f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{db}"
        _, _, auser, apassword, adb = pgtest.dsn_parts(env["PGRING_ADMIN_DSN"])
        self.admin_dsn = f"postgresql://{auser}:{apassword}@127.0.0.1:{self.admin_port}/{adb}"
        self.proc = None

    def write_config(self, edit):
        """Writes the cluster's configuration changed by edit(text) -> text, on this
        instance's ports (RELOAD applies it to a running instance)."""
        text = edit_config(edit(self.base_config), {},
                           {"port": self.port, "admin_port": self.admin_port, "metrics_port": self.metrics_port},
                           {})
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

    def sanitizer_reports(self):
        """The first lines of the sanitizer reports in the log (a --sanitize build writes
        memory errors, undefined behaviour and, at exit, leaks to stderr)."""
        self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return [line.rstrip() for line in f if SANITIZER_REPORT.search(line)]


def run_second_proxy(env, name, body, edit=lambda text: text):
    """Runs body(px) against a SecondProxy configured by edit(text) -> text, in a temporary
    directory named after `name`: starts it, checks it is still running afterwards, and
    stops it. A failure carries the instance's last log lines."""
    with tempfile.TemporaryDirectory(prefix=f"pgring-{name}.") as workdir:
        px = SecondProxy(env, workdir, edit)
        try:
            px.start()
            body(px)
            check(px.proc.poll() is None, f"the second pgring died during the test: {px.tail()}")
        except pgtest.TestFailure as e:
            raise pgtest.TestFailure(
                f"{e}\n--- last lines of the second pgring's log ---\n{px.tail()}") from None
        finally:
            px.stop()
        reports = px.sanitizer_reports()
        check(not reports, "the second pgring's log has sanitizer reports:\n" + "\n".join(reports))
