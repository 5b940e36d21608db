#!/usr/bin/python3
"""INSERTs through pgring land on the shard that owns each row's key.

2,000 tenants are inserted through pgring in six ways: single-row INSERTs over the simple
protocol (psycopg without parameters), the extended protocol with text parameters and
with binary parameters, and psql (libpq, simple protocol); multi-row INSERTs of 100 rows
spanning the shards over the simple protocol (keys as integers, quoted strings and casts)
and the extended protocol with binary parameters. Keys include negative numbers, values
beyond 32 bits and the ends of bigint. Then 2,000 orders in multi-row INSERTs whose
column list has the key in third place, through psql. Each INSERT's command tag must
count its rows.

On each shard directly: every row is there exactly once, on the shard that owns its key
by SHOW RING and hashint8extended (checked in Python and again in SQL on the shard),
with the values written, and the totals equal what was inserted.
"""

import decimal
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import routing  # noqa: E402
from routing import INT64_MAX, INT64_MIN, check, log, simple  # noqa: E402

TABLES = ("tenants", "orders")


def sql_text(s):
    return "'" + s.replace("'", "''") + "'"


def key_literal(k, i):
    """Spells key k as PostgreSQL reads it for a bigint column, in one of four ways."""
    if k == INT64_MIN:
        return f"'{k}'::bigint"  # -9223372036854775808 is not an integer token
    form = i % 4
    if form == 0:
        return str(k)
    if form == 1:
        return f"' {k} '"          # an unknown-type literal, read as the column's type
    if form == 2:
        return f"'{k}'::bigint"
    return f"CAST('{k}' AS int8)"


def check_table(c, table, columns, want_rows, what):
    """want_rows: tuples whose first value is the key. Checks every shard directly."""
    parts = c.split(want_rows)
    total = 0
    for n in c.names:
        got = c.fetch_direct(n, f"SELECT {', '.join(columns)} FROM {table}")
        total += len(got)
        routing.check_rows(f"{what}: rows of {table} on {n}", got, parts[n], ordered=False)
    check(total == len(want_rows), f"{what}: {total} rows of {table} on the shards, want "
                                   f"{len(want_rows)}")
    c.check_placement(table, what)
    log(f"   {table}: {len(want_rows)} rows, per shard "
        f"{ {n: len(parts[n]) for n in c.names} }, each on its owner")


def test(env):
    c = routing.Cluster(env)
    log(f"   ring from {c.ring.source}: {len(c.ring.tokens)} tokens over {c.names}")
    c.create_tables(TABLES)
    rng = random.Random(20240229)
    keys = list(range(1, 1301))
    wide = {INT64_MIN, INT64_MIN + 1, INT64_MAX, INT64_MAX - 1, -1, 0, 2 ** 31, -(2 ** 31) - 1,
            2 ** 32, 4294967295}
    while len(wide) < 700:
        wide.add(rng.randint(INT64_MIN, INT64_MAX))
    keys += sorted(wide)
    rng.shuffle(keys)
    check(len(set(keys)) == 2000, "test keys are not unique")
    rows = [(k, f"tenant {k} 'q' \"d\" ünï", k % 5) for k in keys]
    batches = {"simple": rows[0:400], "text": rows[400:800], "binary": rows[800:1100],
               "psql": rows[1100:1400], "multi-simple": rows[1400:1800],
               "multi-binary": rows[1800:2000]}
    log("-- single-row INSERTs: simple protocol, extended text and binary parameters")
    with c.proxy() as p:
        for i, (k, name, plan) in enumerate(batches["simple"]):
            cur = simple(p, f"INSERT INTO tenants (tenant_id, name, plan) VALUES "
                            f"({key_literal(k, i)}, {sql_text(name)}, {plan})")
            check(cur.rowcount == 1, f"simple INSERT of tenant {k}: rowcount {cur.rowcount}")
        for k, name, plan in batches["text"]:
            cur = routing.extended(p, "INSERT INTO tenants (tenant_id, name, plan) "
                                      "VALUES (%t, %t, %t)", (k, name, plan))
            check(cur.rowcount == 1, f"INSERT of tenant {k} with text parameters: rowcount "
                                     f"{cur.rowcount}")
        for k, name, plan in batches["binary"]:
            cur = routing.extended(p, "INSERT INTO tenants (name, tenant_id, plan) "
                                      "VALUES (%b, %b, %b)", (name, k, plan), binary=True)
            check(cur.rowcount == 1, f"INSERT of tenant {k} with binary parameters: rowcount "
                                     f"{cur.rowcount}")

    log("-- single-row INSERTs through psql")
    script = "".join(f"INSERT INTO tenants (tenant_id, name, plan) VALUES "
                     f"({key_literal(k, i)}, {sql_text(name)}, {plan});\n"
                     for i, (k, name, plan) in enumerate(batches["psql"]))
    routing.psql(c.proxy_dsn, script)

    log("-- multi-row INSERTs of 100 rows spanning the shards")
    with c.proxy() as p:
        part = batches["multi-simple"]
        for start in range(0, len(part), 100):
            chunk = part[start:start + 100]
            owners = set(c.owners([r[0] for r in chunk]).values())
            check(len(owners) == len(c.names), f"a 100-row INSERT spans only {owners}")
            values = ", ".join(f"({key_literal(k, start + i)}, {sql_text(name)}, {plan})"
                               for i, (k, name, plan) in enumerate(chunk))
            cur = simple(p, f"INSERT INTO tenants (tenant_id, name, plan) VALUES {values}")
            check(cur.rowcount == 100, f"multi-row INSERT (simple): rowcount {cur.rowcount}, "
                                       "want 100 (the shards' counts summed)")
        part = batches["multi-binary"]
        for start in range(0, len(part), 100):
            chunk = part[start:start + 100]
            values = ", ".join(["(%b, %b, %b)"] * len(chunk))
            params = [v for r in chunk for v in r]
            cur = routing.extended(p, f"INSERT INTO tenants (tenant_id, name, plan) VALUES "
                                      f"{values}", params, binary=True)
            check(cur.rowcount == 100, f"multi-row INSERT (binary parameters): rowcount "
                                       f"{cur.rowcount}, want 100")

    log("-- an INSERT without a column list (the proxy must know the key's position)")
    extra_key = 987654321012
    with c.proxy() as p:
        try:
            cur = simple(p, f"INSERT INTO tenants VALUES ({extra_key}, 'no column list', 1)")
            check(cur.rowcount == 1, f"INSERT without column list: rowcount {cur.rowcount}")
            rows.append((extra_key, "no column list", 1))
            log("   accepted and routed by the table's column order")
        except routing.psycopg.Error as e:
            check(e.sqlstate == "0A000", f"INSERT without a column list failed with "
                                         f"{e.sqlstate} ({e}), want success or 0A000")
            log("   rejected with 0A000 (column order unknown to the proxy)")
    check_table(c, "tenants", ("tenant_id", "name", "plan"), rows, "tenants")

    log("-- multi-row INSERTs into orders through psql, key third in the column list")
    orders = []
    for i, k in enumerate(keys):
        orders.append((k, i + 1, "new" if i % 3 else None, f"{(i * 7) % 10000}.{i % 100:02d}"))
    script = []
    for start in range(0, len(orders), 200):
        chunk = orders[start:start + 200]
        script.append("INSERT INTO orders (order_id, status, tenant_id, amount) VALUES "
                      + ", ".join(f"({oid}, {'NULL' if st is None else sql_text(st)}, "
                                  f"{key_literal(k, oid)}, {amt})"
                                  for k, oid, st, amt in chunk) + ";\n")
    routing.psql(c.proxy_dsn, "".join(script))
    want = [(k, oid, st, decimal.Decimal(amt)) for k, oid, st, amt in orders]
    check_table(c, "orders", ("tenant_id", "order_id", "status", "amount"), want, "orders")
    with c.proxy() as p:
        got = simple(p, "SELECT count(*) FROM orders").fetchone()[0]
    check(got == len(orders), f"SELECT count(*) FROM orders through pgring: {got}, want "
                              f"{len(orders)}")
    c.drop_tables(TABLES)


if __name__ == "__main__":
    routing.pgtest.run_main(test)
