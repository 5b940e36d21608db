#!/usr/bin/python3
"""pgring's routing visibility in the admin database: SHOW RING, SHOW ROUTE KEY, SHOW ROUTE
and pgringctl route / show ring, checked against PostgreSQL itself.

- SHOW RING has vnodes x shards rows (token bigint, shard text, ring_version bigint), sorted
  and distinct, every configured shard present, one ring version; its tokens are the ones
  the ring formula gives when a shard computes hashtextextended(name || '#' || i, 0).
- For 1,000 bigint keys (small, negative, extreme and random 64-bit values), SHOW ROUTE KEY
  orders K names the hash, token and shard that a shard computes in SQL from SHOW RING's
  tokens and hashint8extended(K, 0): owner = first token >= hash, wrapping to the smallest.
  pgringctl route --table orders --key K prints the same for a sample of them.
- SHOW ROUTE for a keyed read, a keyless read (merged over every shard), a multi-row INSERT
  split over shards, DDL, a join of sharded tables not on the key (a row of kind error with
  SQLSTATE 0A000), several statements at once, and a syntax error (ErrorResponse 42601 with
  the position in the query string).
- SHOW ROUTE KEY on a reference table, an unknown table (42P01 naming the fix) and a bad key
  (22P02); pgringctl route --sql exits 1 for a rejected statement.
"""

import os
import random
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "clients"))
import pgtest  # noqa: E402
from pgtest import check, fail, log  # noqa: E402

import psycopg  # noqa: E402
from psycopg import pq  # noqa: E402

INT8_OID, BOOL_OID, TEXT_OID = 20, 16, 25
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Admin:
    """One admin-database connection; every command runs with the simple query protocol."""

    def __init__(self, env):
        self.conn = psycopg.connect(env["PGRING_ADMIN_DSN"], autocommit=True, connect_timeout=10)

    def close(self):
        self.conn.close()

    def raw(self, sql):
        return self.conn.pgconn.exec_(sql.encode())

    def query(self, sql):
        """Returns (columns, type oids, rows as dicts of text); fails the test on an error."""
        res = self.raw(sql)
        if res.status != pq.ExecStatus.TUPLES_OK:
            fail(f"admin {sql!r} failed: {res.error_message.decode(errors='replace').strip()}")
        cols, rows = pgtest.result_rows(res)
        return cols, [res.ftype(i) for i in range(res.nfields)], rows

    def error(self, sql):
        """Runs sql, which must fail; returns {sqlstate, message, hint, position}."""
        res = self.raw(sql)
        if res.status != pq.ExecStatus.FATAL_ERROR:
            fail(f"admin {sql!r} succeeded, expected an error")

        def field(code):
            v = res.error_field(code)
            return None if v is None else v.decode()

        return {
            "sqlstate": field(pq.DiagnosticField.SQLSTATE),
            "message": field(pq.DiagnosticField.MESSAGE_PRIMARY),
            "hint": field(pq.DiagnosticField.MESSAGE_HINT),
            "position": field(pq.DiagnosticField.STATEMENT_POSITION),
        }


def config_vnodes(path):
    with open(path, encoding="utf-8") as f:
        m = re.search(r"^ring:\s*\n\s+vnodes:\s*(\d+)", f.read(), re.M)
    if not m:
        fail(f"no ring.vnodes in {path}")
    return int(m.group(1))


def check_ring(env, admin):
    log("-- SHOW RING")
    cols, types, rows = admin.query("SHOW RING")
    check(cols == ["token", "shard", "ring_version"], f"SHOW RING columns: {cols}")
    check(types == [INT8_OID, TEXT_OID, INT8_OID], f"SHOW RING column types: {types}")
    _, _, shard_rows = admin.query("SHOW SHARDS")
    names = [r["name"] for r in shard_rows]
    check(len(names) == int(env["PGRING_SHARD_COUNT"]),
          f"SHOW SHARDS lists {names}, the cluster has {env['PGRING_SHARD_COUNT']} shards")
    vnodes = config_vnodes(env["PGRING_CONFIG"])
    check(len(rows) == vnodes * len(names),
          f"SHOW RING has {len(rows)} rows, want vnodes {vnodes} x {len(names)} shards")
    tokens = [int(r["token"]) for r in rows]
    check(all(INT64_MIN <= t <= INT64_MAX for t in tokens), "a token is outside int64")
    check(all(a < b for a, b in zip(tokens, tokens[1:])), "SHOW RING tokens are not sorted and distinct")
    check({r["shard"] for r in rows} == set(names),
          f"SHOW RING shards {sorted({r['shard'] for r in rows})} != configured {sorted(names)}")
    for name in names:
        n = sum(1 for r in rows if r["shard"] == name)
        check(n == vnodes, f"{name} has {n} tokens, want {vnodes}")
    versions = {r["ring_version"] for r in rows}
    check(len(versions) == 1, f"SHOW RING has several ring versions: {versions}")
    version = int(versions.pop())
    check(version >= 1, f"ring_version {version}")

    # The tokens are the formula's, computed by PostgreSQL.
    with psycopg.connect(env["SHARD_DSN_LIST"][0], autocommit=True) as shard:
        want = shard.execute(
            "SELECT hashtextextended(s || '#' || v, 0), s FROM unnest(%s::text[]) AS s, "
            "generate_series(0, %s - 1) AS v ORDER BY 1, s COLLATE \"C\"",
            (names, vnodes)).fetchall()
    check([(t, s) for t, s in want] == [(int(r["token"]), r["shard"]) for r in rows],
          "SHOW RING tokens differ from hashtextextended(name || '#' || i, 0)")
    log(f"   {len(rows)} tokens, {len(names)} shards, ring_version {version}")
    return rows, names, version


def owners_in_sql(env, ring_rows, keys):
    """Returns {key: (hash, token, shard)} computed on shard0 from SHOW RING's tokens."""
    with psycopg.connect(env["SHARD_DSN_LIST"][0], autocommit=True) as shard:
        with shard.transaction():
            shard.execute("CREATE TEMP TABLE ring (token bigint PRIMARY KEY, shard text) ON COMMIT DROP")
            shard.execute("CREATE TEMP TABLE keys (k bigint PRIMARY KEY) ON COMMIT DROP")
            with shard.cursor() as cur:
                with cur.copy("COPY ring (token, shard) FROM STDIN") as cp:
                    for r in ring_rows:
                        cp.write_row((int(r["token"]), r["shard"]))
                with cur.copy("COPY keys (k) FROM STDIN") as cp:
                    for k in keys:
                        cp.write_row((k,))
            rows = shard.execute("""
                WITH h AS (SELECT k, hashint8extended(k, 0) AS hash FROM keys),
                     o AS (SELECT k, hash,
                                  coalesce((SELECT min(token) FROM ring WHERE token >= hash),
                                           (SELECT min(token) FROM ring)) AS token
                             FROM h)
                SELECT o.k, o.hash, o.token, ring.shard FROM o JOIN ring USING (token)""").fetchall()
    out = {k: (h, t, s) for k, h, t, s in rows}
    check(len(out) == len(keys), f"computed {len(out)} owners for {len(keys)} keys")
    return out


def test_keys(env, admin, ring_rows, names, version):
    log("-- SHOW ROUTE KEY orders K for 1,000 keys against SQL")
    rnd = random.Random(20240607)
    keys = {0, 1, -1, 42, INT64_MIN, INT64_MAX, INT64_MIN + 1, INT64_MAX - 1, 2**31, -(2**31)}
    keys.update(range(1, 300))
    while len(keys) < 1000:
        keys.add(rnd.randint(INT64_MIN, INT64_MAX) if rnd.random() < 0.7 else rnd.randint(-10**6, 10**6))
    keys = sorted(keys)
    want = owners_in_sql(env, ring_rows, keys)
    # Keys above the largest token must wrap around; make sure the sample has some.
    top = max(int(r["token"]) for r in ring_rows)
    check(any(h > top for h, _, _ in want.values()), "no key hashes above the largest token")
    seen = set()
    for k in keys:
        cols, types, rows = admin.query(f"SHOW ROUTE KEY orders {k}")
        if k == keys[0]:
            check(cols == ["table", "kind", "key_column", "key_type", "key", "hash", "token",
                           "shard", "ring_version", "reason"], f"SHOW ROUTE KEY columns: {cols}")
            check(types[cols.index("hash")] == INT8_OID and types[cols.index("token")] == INT8_OID,
                  f"SHOW ROUTE KEY types: {types}")
        check(len(rows) == 1, f"SHOW ROUTE KEY orders {k}: {len(rows)} rows")
        r = rows[0]
        h, t, s = want[k]
        got = (int(r["hash"]), int(r["token"]), r["shard"])
        check(got == (h, t, s), f"key {k}: pgring says hash/token/shard {got}, SQL says {(h, t, s)}")
        check(r["table"] == "orders" and r["kind"] == "sharded" and r["key_column"] == "tenant_id"
              and r["key_type"] == "bigint" and r["key"] == str(k), f"key {k}: row {r}")
        check(int(r["ring_version"]) == version, f"key {k}: ring_version {r['ring_version']}")
        check(str(h) in r["reason"] and s in r["reason"], f"key {k}: reason {r['reason']!r}")
        seen.add(s)
    check(seen == set(names), f"1,000 keys landed only on {sorted(seen)}")
    # Quoted and differently cased spellings are the same key.
    _, _, rows = admin.query("SHOW ROUTE KEY Public.ORDERS ' 42 '")
    check(rows[0]["shard"] == want[42][2], f"SHOW ROUTE KEY Public.ORDERS ' 42 ': {rows[0]}")

    log("-- pgringctl route --table orders --key K")
    ctl = env.get("PGRINGCTL_BIN") or os.environ.get("PGRINGCTL_BIN")
    if not ctl:
        fail("PGRINGCTL_BIN is not set (the pgringctl target is missing)")
    for k in keys[::40]:
        out = run_ctl(env, ctl, "route", "--table", "orders", "--key", str(k))
        fields = dict(re.findall(r"^(\w+):\s+(.*)$", out, re.M))
        h, t, s = want[k]
        check(fields.get("shard") == s and fields.get("hash") == str(h) and fields.get("token") == str(t),
              f"pgringctl route --key {k} printed:\n{out}\nwant hash {h} token {t} shard {s}")
    out = run_ctl(env, ctl, "show", "ring")
    check(out.count("\n") >= len(ring_rows) and f"({len(ring_rows)} rows)" in out,
          f"pgringctl show ring: {out[:300]}...")
    return want


def run_ctl(env, ctl, *args, expect_rc=0, stdin=None):
    p = subprocess.run([ctl, "--admin", env["PGRING_ADMIN_DSN"], *args], input=stdin,
                       capture_output=True, text=True, timeout=30)
    if p.returncode != expect_rc:
        fail(f"pgringctl {' '.join(args)} exited {p.returncode} (want {expect_rc}): "
             f"{p.stdout}{p.stderr}")
    return p.stdout


def test_route(env, admin, want, names):
    log("-- SHOW ROUTE")
    all_shards = ",".join(sorted(names))
    cols, types, rows = admin.query("SHOW ROUTE SELECT * FROM orders WHERE tenant_id = 42")
    check(cols == ["statement", "kind", "shards", "writes", "merge", "reason", "sqlstate"],
          f"SHOW ROUTE columns: {cols}")
    check(types == [TEXT_OID, TEXT_OID, TEXT_OID, BOOL_OID, BOOL_OID, TEXT_OID, TEXT_OID],
          f"SHOW ROUTE types: {types}")
    r = rows[0]
    check(len(rows) == 1 and r["statement"] == "SELECT * FROM orders WHERE tenant_id = 42",
          f"keyed read: {rows}")
    check(r["kind"] == "single" and r["shards"] == want[42][2] and r["writes"] == "f"
          and r["merge"] == "f" and r["sqlstate"] is None, f"keyed read: {r}")
    check(str(want[42][0]) in r["reason"], f"keyed read reason names no hash: {r['reason']!r}")

    _, _, rows = admin.query("SHOW ROUTE select count(*) from orders")
    r = rows[0]
    check(r["kind"] == "all" and r["shards"] == all_shards and r["merge"] == "t"
          and r["writes"] == "f", f"keyless read: {r}")
    check("tenant_id" in r["reason"], f"keyless read reason: {r['reason']!r}")

    # A multi-row INSERT split over the owners of its keys (keys on two shards).
    by_shard = {}
    for k, (_, _, s) in sorted(want.items()):
        if 0 < k < 1000:
            by_shard.setdefault(s, k)
    check(len(by_shard) >= 2, f"no small keys on two shards: {by_shard}")
    (s1, k1), (s2, k2) = sorted(by_shard.items())[:2]
    _, _, rows = admin.query(
        "SHOW ROUTE INSERT INTO orders (tenant_id, order_id, user_id, status, amount) "
        f"VALUES ({k1}, 1, 1, 'new', 1), ({k2}, 2, 2, 'new', 2)")
    r = rows[0]
    check(r["kind"] == "multi" and r["shards"] == ",".join(sorted([s1, s2])) and r["writes"] == "t",
          f"split INSERT: {r}")
    check(f"row 1: {k1} -> {s1}" in r["reason"] and f"row 2: {k2} -> {s2}" in r["reason"],
          f"split INSERT reason: {r['reason']!r}")

    _, _, rows = admin.query("SHOW ROUTE CREATE TABLE route_test_ddl (id bigint PRIMARY KEY)")
    r = rows[0]
    check(r["kind"] == "all" and r["shards"] == all_shards and r["writes"] == "t", f"DDL: {r}")

    _, _, rows = admin.query(
        "SHOW ROUTE SELECT * FROM orders o JOIN users u ON o.user_id = u.user_id")
    r = rows[0]
    check(r["kind"] == "error" and r["sqlstate"] == "0A000" and r["shards"] is None,
          f"join not on the shard key: {r}")
    check("orders" in r["reason"] and "users" in r["reason"] and "hint:" in r["reason"],
          f"join not on the shard key, reason: {r['reason']!r}")

    # Several statements, each with its own row; ';' inside a string is not a separator.
    _, _, rows = admin.query(
        "SHOW ROUTE BEGIN; UPDATE orders SET status = 'paid;x' WHERE tenant_id = 42; "
        "SELECT * FROM plans; COMMIT;")
    check([r["kind"] for r in rows] == ["session", "single", "single", "session"],
          f"several statements: {[(r['statement'], r['kind']) for r in rows]}")
    check(rows[1]["statement"] == "UPDATE orders SET status = 'paid;x' WHERE tenant_id = 42"
          and rows[1]["shards"] == want[42][2] and rows[1]["writes"] == "t",
          f"UPDATE in several statements: {rows[1]}")

    # PREPARE earlier in the text routes a later EXECUTE with its arguments.
    _, _, rows = admin.query(
        "SHOW ROUTE PREPARE q(bigint) AS SELECT * FROM orders WHERE tenant_id = $1; EXECUTE q(42)")
    check(rows[1]["kind"] == "single" and rows[1]["shards"] == want[42][2], f"EXECUTE: {rows[1]}")
    # SET pgring.shard_key earlier in the text pins a keyless statement after it.
    _, _, rows = admin.query(
        "SHOW ROUTE SET pgring.shard_key = '42'; SELECT * FROM orders o JOIN users u USING (user_id)")
    check(rows[0]["kind"] == "local" and rows[1]["kind"] == "single"
          and rows[1]["shards"] == want[42][2], f"session hint: {rows}")
    # $n without values: no key, every shard.
    _, _, rows = admin.query("SHOW ROUTE SELECT * FROM orders WHERE tenant_id = $1")
    check(rows[0]["kind"] == "all", f"$1 without a value: {rows[0]}")

    e = admin.error("SHOW ROUTE SELEC 1 FROM orders")
    check(e["sqlstate"] == "42601" and "syntax error" in e["message"], f"syntax error: {e}")
    check(e["position"] == "12", f"syntax error position {e['position']}, want 12 (SELEC)")
    e = admin.error("SHOW ROUTE")
    check(e["sqlstate"] == "42601", f"SHOW ROUTE without a statement: {e}")

    log("-- SHOW ROUTE KEY: reference table, unknown table, bad key")
    _, _, rows = admin.query("SHOW ROUTE KEY plans 1")
    r = rows[0]
    _, _, shard_rows = admin.query("SHOW SHARDS")
    defaults = [x["name"] for x in shard_rows if x["is_default"] == "yes"]
    default = defaults[0] if defaults else names[0]
    check(r["kind"] == "reference" and r["shard"] == f"all shards for writes, {default} for reads"
          and r["hash"] is None and r["token"] is None, f"reference table: {r}")
    e = admin.error("SHOW ROUTE KEY audit_log 1")
    check(e["sqlstate"] == "42P01" and "audit_log" in e["message"]
          and "tables:" in (e["hint"] or ""), f"unknown table: {e}")
    e = admin.error("SHOW ROUTE KEY orders 4x2")
    check(e["sqlstate"] == "22P02" and "4x2" in e["message"], f"bad key: {e}")
    e = admin.error("SHOW ROUTE KEY orders")
    check(e["sqlstate"] == "42601", f"no key: {e}")

    log("-- pgringctl route --sql")
    ctl = env.get("PGRINGCTL_BIN") or os.environ.get("PGRINGCTL_BIN")
    out = run_ctl(env, ctl, "route", "--sql", "SELECT * FROM orders WHERE tenant_id = 42")
    check(re.search(rf"^\s+shards:\s+{re.escape(want[42][2])}$", out, re.M) and "kind:" in out,
          f"pgringctl route --sql:\n{out}")
    out = run_ctl(env, ctl, "route", "--sql", "-", expect_rc=1,
                  stdin="SELECT 1;\nSELECT * FROM orders o JOIN users u ON o.user_id = u.user_id;\n")
    check("statement 2:" in out and "error" in out and "0A000" in out,
          f"pgringctl route --sql with a rejected statement:\n{out}")

    _, _, rows = admin.query("SHOW HELP")
    commands = " ".join(r["command"] for r in rows)
    check("SHOW RING" in commands and "SHOW ROUTE" in commands and "SHOW ROUTE KEY" in commands,
          f"SHOW HELP: {commands}")


def test(env):
    env["PGRINGCTL_BIN"] = os.environ.get("PGRINGCTL_BIN", "")
    admin = Admin(env)
    try:
        ring_rows, names, version = check_ring(env, admin)
        want = test_keys(env, admin, ring_rows, names, version)
        test_route(env, admin, want, names)
    finally:
        admin.close()


if __name__ == "__main__":
    pgtest.run_main(test)
