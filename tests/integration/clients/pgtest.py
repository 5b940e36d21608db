"""Shared helpers of the Python client tests of pgring.

Reads the test cluster's env file ($PGRING_TEST_ENV), reports failures, waits for
conditions with a deadline, and speaks the PostgreSQL v3 wire protocol over a raw
socket (startup, SCRAM-SHA-256 login, simple queries) for the tests that must send
bytes no driver would send.

Only the Python standard library and psycopg 3 (Debian python3-psycopg) are used.
"""

import base64
import hashlib
import hmac
import os
import secrets
import shlex
import socket
import struct
import sys
import threading
import time
import urllib.parse

PROTOCOL_VERSION_3 = 196608  # 3 << 16


class TestFailure(Exception):
    """Raised by check() and fail(); main() prints it and exits 1."""


def log(msg):
    print(msg, flush=True)


def fail(msg):
    raise TestFailure(msg)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def load_env():
    """Returns the variables of the env file named by $PGRING_TEST_ENV as a dict."""
    path = os.environ.get("PGRING_TEST_ENV")
    if not path:
        fail("PGRING_TEST_ENV is not set; it must name the env file written by "
             "scripts/cluster start (DIR/env)")
    if not os.path.isfile(path):
        fail(f"PGRING_TEST_ENV={path} does not exist; start a cluster with scripts/cluster start")
    env = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("export "):
                line = line[len("export "):]
            name, sep, value = line.partition("=")
            if not sep:
                continue
            parts = shlex.split(value)
            env[name] = parts[0] if parts else ""
    for name in ("PGRING_DSN", "PGRING_ADMIN_DSN", "SHARD_DSNS", "SHARD_SUPERUSER_DSNS",
                 "PGRING_CONFIG", "PGRING_PORT", "PGRING_ADMIN_PORT"):
        if not env.get(name):
            fail(f"{path} does not define {name}")
    env["SHARD_DSN_LIST"] = env["SHARD_DSNS"].split()
    env["SHARD_SUPERUSER_DSN_LIST"] = env["SHARD_SUPERUSER_DSNS"].split()
    return env


def dsn_parts(dsn):
    """Returns (host, port, user, password, dbname) of a postgresql:// URI."""
    u = urllib.parse.urlsplit(dsn)
    return (u.hostname or "127.0.0.1", u.port or 5432, urllib.parse.unquote(u.username or ""),
            urllib.parse.unquote(u.password or ""), u.path.lstrip("/"))


def with_params(dsn, **params):
    """Returns dsn with query parameters added (application_name=..., etc.)."""
    u = urllib.parse.urlsplit(dsn)
    q = urllib.parse.parse_qsl(u.query)
    q.extend((k, str(v)) for k, v in params.items())
    return urllib.parse.urlunsplit(u._replace(query=urllib.parse.urlencode(q)))


def wait_until(what, cond, timeout=10.0, interval=0.05):
    """Calls cond() until it returns a true value and returns that value; fails with
    'timed out after Ns waiting for WHAT' at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def with_deadline(what, fn, timeout=20.0):
    """Runs fn() in a thread and returns its result; fails if it has not returned after
    timeout seconds (the thread is left behind: a hung driver call cannot be interrupted
    from outside). Exceptions of fn propagate."""
    result = {}

    def target():
        try:
            result["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            result["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        fail(f"{what} did not finish within {timeout:g}s (hung)")
    if "error" in result:
        raise result["error"]
    return result.get("value")


def run_main(test):
    """Runs test(env), printing PASS or the failure; exits 0 or 1."""
    name = os.path.basename(sys.argv[0])
    try:
        test(load_env())
    except TestFailure as e:
        print(f"FAIL {name}: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    print(f"PASS {name}", flush=True)
    sys.exit(0)


# ---------------------------------------------------------------------------------------
# Wire protocol (https://www.postgresql.org/docs/15/protocol-message-formats.html)


class PgError(Exception):
    """An ErrorResponse; fields maps the one-letter field codes to values."""

    def __init__(self, fields):
        self.fields = fields
        self.sqlstate = fields.get("C", "")
        super().__init__(f"{fields.get('S', 'ERROR')} {self.sqlstate}: {fields.get('M', '')}")


class ConnectionClosed(Exception):
    pass


def frame(type_byte, payload=b""):
    """Returns a typed message: type byte, int32 length (self-inclusive), payload."""
    return type_byte + struct.pack("!i", len(payload) + 4) + payload


def cstr(s):
    return s.encode() + b"\0"


def startup_packet(user, database, **params):
    body = struct.pack("!i", PROTOCOL_VERSION_3)
    for k, v in [("user", user), ("database", database)] + list(params.items()):
        body += cstr(k) + cstr(v)
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


def parse_error_fields(payload):
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode(errors="replace")
    return fields


class RawConn:
    """A PostgreSQL client over a plain socket; every read has a deadline."""

    def __init__(self, host, port, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.params = {}
        self.backend_key = None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Closes with a TCP reset (SO_LINGER 0), as a crashed client would."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionClosed(f"connection closed by the server "
                                       f"({len(self.buf)} bytes of a message received)")
            self.buf += chunk

    def read_message(self):
        """Returns (type byte, payload) of the next backend message."""
        self._fill(5)
        type_byte = self.buf[:1]
        (length,) = struct.unpack("!i", self.buf[1:5])
        if length < 4 or length > 64 * 1024 * 1024:
            raise ConnectionClosed(f"server sent a message {type_byte!r} with length {length}")
        self._fill(1 + length)
        payload = self.buf[5:1 + length]
        self.buf = self.buf[1 + length:]
        return type_byte, payload

    def read_until_error_or_close(self):
        """Reads until an ErrorResponse (returns its fields) or EOF (returns None).
        socket.timeout propagates when the server does neither."""
        while True:
            try:
                t, payload = self.read_message()
            except ConnectionClosed:
                return None
            except ConnectionResetError:
                return None
            if t == b"E":
                return parse_error_fields(payload)

    def login(self, user, password, database, **params):
        """Sends the startup packet and answers SCRAM-SHA-256 (RFC 5802/7677), cleartext
        or MD5 challenges; returns after the first ReadyForQuery."""
        self.send(startup_packet(user, database, **params))
        scram = None
        while True:
            t, p = self.read_message()
            if t == b"E":
                raise PgError(parse_error_fields(p))
            if t == b"R":
                (code,) = struct.unpack("!i", p[:4])
                if code == 0:
                    continue
                if code == 3:
                    self.send(frame(b"p", cstr(password)))
                elif code == 5:
                    salt = p[4:8]
                    inner = hashlib.md5(password.encode() + user.encode()).hexdigest()
                    outer = hashlib.md5(inner.encode() + salt).hexdigest()
                    self.send(frame(b"p", cstr("md5" + outer)))
                elif code == 10:
                    mechs = [m.decode() for m in p[4:].split(b"\0") if m]
                    if "SCRAM-SHA-256" not in mechs:
                        fail(f"server offers SASL mechanisms {mechs}, not SCRAM-SHA-256")
                    scram = _Scram(password)
                    first = scram.client_first()
                    self.send(frame(b"p", cstr("SCRAM-SHA-256") + struct.pack("!i", len(first)) + first))
                elif code == 11:
                    self.send(frame(b"p", scram.client_final(p[4:])))
                elif code == 12:
                    scram.verify_server_final(p[4:])
                else:
                    fail(f"unsupported authentication request {code}")
            elif t == b"S":
                k, v, _ = p.split(b"\0", 2)
                self.params[k.decode()] = v.decode()
            elif t == b"K":
                self.backend_key = struct.unpack("!ii", p[:8])
            elif t == b"Z":
                return
            elif t == b"N":
                continue
            else:
                fail(f"unexpected message {t!r} during login")

    def query(self, sql):
        """Runs a simple Query; returns (rows, tx_status). rows: list of tuples of str/None
        from all result sets. Raises PgError on an ErrorResponse (after ReadyForQuery)."""
        self.send(frame(b"Q", cstr(sql)))
        rows, error = [], None
        while True:
            t, p = self.read_message()
            if t == b"D":
                (n,) = struct.unpack("!h", p[:2])
                off, row = 2, []
                for _ in range(n):
                    (ln,) = struct.unpack("!i", p[off:off + 4])
                    off += 4
                    if ln < 0:
                        row.append(None)
                    else:
                        row.append(p[off:off + ln].decode())
                        off += ln
                rows.append(tuple(row))
            elif t == b"E":
                error = PgError(parse_error_fields(p))
            elif t == b"Z":
                status = p[:1].decode()
                if error:
                    raise error
                return rows, status


class _Scram:
    """Client side of SCRAM-SHA-256 without channel binding (gs2 header "n,,")."""

    def __init__(self, password):
        self.password = password.encode()
        self.nonce = base64.b64encode(secrets.token_bytes(18)).decode()
        # PostgreSQL takes the user name from the startup packet and ignores n=.
        self.first_bare = f"n=,r={self.nonce}"

    def client_first(self):
        return ("n,," + self.first_bare).encode()

    def client_final(self, server_first):
        server_first = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        combined = attrs["r"]
        check(combined.startswith(self.nonce), "SCRAM server nonce does not extend the client nonce")
        salt = base64.b64decode(attrs["s"])
        iterations = int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password, salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={combined}"
        self.auth_message = f"{self.first_bare},{server_first},{without_proof}".encode()
        signature = hmac.new(stored_key, self.auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        self.server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify_server_final(self, server_final):
        attrs = dict(kv.split("=", 1) for kv in server_final.decode().split(","))
        check("v" in attrs, f"SCRAM server-final has no verifier: {server_final!r}")
        want = hmac.new(self.server_key, self.auth_message, hashlib.sha256).digest()
        check(base64.b64decode(attrs["v"]) == want, "SCRAM server signature does not verify")


def raw_login(dsn, timeout=10.0, **params):
    """Opens a RawConn to the server of dsn and logs in. Like libpq, it sends an
    application_name (the test's file name unless params names one)."""
    params.setdefault("application_name", os.path.basename(sys.argv[0]))
    host, port, user, password, db = dsn_parts(dsn)
    c = RawConn(host, port, timeout)
    try:
        c.login(user, password, db, **params)
    except BaseException:
        c.close()
        raise
    return c


def result_rows(res):
    """Column names and rows (dicts of text, None for NULL) of a libpq result."""
    cols = [res.fname(i).decode() for i in range(res.nfields)]
    rows = [{col: (None if (v := res.get_value(r, i)) is None else v.decode())
             for i, col in enumerate(cols)} for r in range(res.ntuples)]
    return cols, rows


def admin_query(env, sql):
    """Runs sql on pgring's admin database with the simple query protocol; returns
    (column names, rows as dicts)."""
    import psycopg  # imported here so that wire-only tests do not need it

    with psycopg.connect(env["PGRING_ADMIN_DSN"], autocommit=True, connect_timeout=10) as conn:
        res = conn.pgconn.exec_(sql.encode())
        if res.status not in (psycopg.pq.ExecStatus.TUPLES_OK, psycopg.pq.ExecStatus.COMMAND_OK):
            fail(f"admin {sql!r} failed: {res.error_message.decode(errors='replace').strip()}")
        return result_rows(res)
