#!/usr/bin/env python3
"""Opens many idle PostgreSQL client connections and holds them open.

Each connection performs the whole client side of a PostgreSQL login itself (StartupMessage,
SCRAM-SHA-256 or cleartext/trust, ParameterStatus/BackendKeyData, ReadyForQuery), so a
proxy sees exactly what a real driver would send, then stays idle. Standard library only.

Protocol (for bench/run): progress goes to stderr; when every connection attempt has
finished, one JSON line {"connected": N, "failed": M, "errors": {...}} goes to stdout.
The connections stay open until stdin is closed or a line arrives on it; then each
connection sends Terminate and the program exits.

  idle_clients.py --host 127.0.0.1 --port 6432 --user app --database app \
      --password-file app.password --clients 10000
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import resource
import struct
import sys
import time

PROTOCOL_3_0 = 196608
AUTH_OK = 0
AUTH_CLEARTEXT = 3
AUTH_SASL = 10
AUTH_SASL_CONTINUE = 11
AUTH_SASL_FINAL = 12


class LoginError(Exception):
    """A login that the server refused or that broke the protocol."""


# SaltedPassword depends only on (password, salt, iterations). Every connection of one
# run gets the same salt from the same verifier, so PBKDF2 runs once, not once a client:
# the client's CPU must not be what limits the number of connections measured.
_salted_cache = {}


def salted_password(password, salt, iterations):
    key = (salt, iterations)
    if key not in _salted_cache:
        _salted_cache[key] = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
    return _salted_cache[key]


def frame(kind, payload):
    return kind + struct.pack("!I", len(payload) + 4) + payload


async def read_message(reader):
    header = await reader.readexactly(5)
    kind = header[:1]
    (length,) = struct.unpack("!I", header[1:])
    if length < 4 or length > 1 << 20:
        raise LoginError(f"bad message length {length} for type {kind!r}")
    return kind, await reader.readexactly(length - 4)


def error_text(payload):
    """Returns 'SQLSTATE: message' of an ErrorResponse body."""
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[part[:1]] = part[1:].decode("utf-8", "replace")
    return f"{fields.get(b'C', '?????')}: {fields.get(b'M', '(no message)')}"


def parse_attributes(text):
    return dict(item.split("=", 1) for item in text.split(",") if "=" in item)


async def scram_login(reader, writer, password, mechanisms):
    if b"SCRAM-SHA-256" not in mechanisms.split(b"\0"):
        raise LoginError(f"server offers no SCRAM-SHA-256: {mechanisms!r}")
    nonce = base64.b64encode(os.urandom(18)).decode()
    client_first_bare = f"n=,r={nonce}"
    client_first = ("n,," + client_first_bare).encode()
    writer.write(frame(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(client_first))
                       + client_first))
    kind, body = await read_message(reader)
    if kind == b"E":
        raise LoginError(error_text(body))
    (code,) = struct.unpack("!I", body[:4])
    if kind != b"R" or code != AUTH_SASL_CONTINUE:
        raise LoginError(f"expected SASLContinue, got {kind!r} code {code}")
    server_first = body[4:].decode()
    attrs = parse_attributes(server_first)
    if not attrs.get("r", "").startswith(nonce):
        raise LoginError("server nonce does not extend the client nonce")
    salted = salted_password(password, base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    final_without_proof = f"c=biws,r={attrs['r']}"
    auth_message = f"{client_first_bare},{server_first},{final_without_proof}".encode()
    signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    final = f"{final_without_proof},p={base64.b64encode(proof).decode()}".encode()
    writer.write(frame(b"p", final))
    kind, body = await read_message(reader)
    if kind == b"E":
        raise LoginError(error_text(body))
    (code,) = struct.unpack("!I", body[:4])
    if kind != b"R" or code != AUTH_SASL_FINAL:
        raise LoginError(f"expected SASLFinal, got {kind!r} code {code}")
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    expected = hmac.new(server_key, auth_message, hashlib.sha256).digest()
    got = parse_attributes(body[4:].decode()).get("v", "")
    if not hmac.compare_digest(base64.b64decode(got), expected):
        raise LoginError("server signature does not match: the server does not know the verifier")


async def login(host, port, user, database, password, timeout):
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        params = b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0"
        params += b"application_name\0idle_clients\0\0"
        body = struct.pack("!I", PROTOCOL_3_0) + params
        writer.write(struct.pack("!I", len(body) + 4) + body)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LoginError("login timed out")
            kind, body = await asyncio.wait_for(read_message(reader), remaining)
            if kind == b"E":
                raise LoginError(error_text(body))
            if kind == b"R":
                (code,) = struct.unpack("!I", body[:4])
                if code == AUTH_OK:
                    continue
                if code == AUTH_CLEARTEXT:
                    writer.write(frame(b"p", password + b"\0"))
                elif code == AUTH_SASL:
                    await asyncio.wait_for(scram_login(reader, writer, password, body[4:]),
                                           remaining)
                else:
                    raise LoginError(f"unsupported authentication request {code}")
            elif kind == b"Z":
                return reader, writer
            # 'S' ParameterStatus, 'K' BackendKeyData, 'N' NoticeResponse: nothing to do.
    except BaseException:
        writer.close()
        raise


async def main_async(args):
    password = open(args.password_file, "rb").read().rstrip(b"\r\n") if args.password_file \
        else args.password.encode()
    gate = asyncio.Semaphore(args.concurrency)
    connections = []
    errors = {}
    done = 0
    started = time.monotonic()

    async def one():
        nonlocal done
        async with gate:
            for attempt in range(args.attempts):
                try:
                    conn = await login(args.host, args.port, args.user, args.database,
                                       password, args.timeout)
                    connections.append(conn)
                    break
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                        LoginError) as exc:
                    text = str(exc) or type(exc).__name__
                    if attempt + 1 == args.attempts or isinstance(exc, LoginError):
                        errors[text] = errors.get(text, 0) + 1
                        break
                    await asyncio.sleep(0.05 * (attempt + 1))
        done += 1
        if done % 1000 == 0:
            print(f"idle_clients: {done}/{args.clients} attempts done, "
                  f"{len(connections)} connected ({time.monotonic() - started:.1f}s)",
                  file=sys.stderr, flush=True)

    await asyncio.gather(*(one() for _ in range(args.clients)))
    result = {"connected": len(connections), "failed": args.clients - len(connections),
              "errors": errors, "seconds": round(time.monotonic() - started, 2)}
    print(json.dumps(result), flush=True)

    # Hold the connections until the caller says so (a line or EOF on stdin).
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)

    lost = 0
    for reader, writer in connections:
        # A proxy that dropped an idle client shows up as EOF already waiting here.
        if reader.at_eof():
            lost += 1
        try:
            writer.write(frame(b"X", b""))
            writer.close()
        except OSError:
            pass
    if lost:
        print(f"idle_clients: {lost} connections had been closed by the server",
              file=sys.stderr)
    await asyncio.sleep(0.2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", default="app")
    parser.add_argument("--database", default="app")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--password-file")
    group.add_argument("--password")
    parser.add_argument("--clients", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=64,
                        help="logins in flight at once (default 64)")
    parser.add_argument("--attempts", type=int, default=3,
                        help="tries per connection on network errors (default 3)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds for one connect + login (default 30)")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.clients + 64
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
        if hard < need:
            print(f"idle_clients: warning: open file limit {hard} < {need}", file=sys.stderr)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
