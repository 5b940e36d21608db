#!/usr/bin/python3
"""DDL through pgring runs on every shard (docs/sharding.md, Rules: DDL).

Creates the demo schema (tenants, users, orders, order_items, plans) through pgring and
checks on each shard directly that every table exists with the same columns, types,
defaults and primary key; then CREATE INDEX, ALTER TABLE ... ADD COLUMN, TRUNCATE (with
rows put on every shard directly beforehand), DROP INDEX and DROP TABLE, each checked on
every shard; also CREATE/DROP of a table that is not in the configuration, which DDL
sends to every shard as well. Both the simple protocol and the extended protocol are used.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import routing  # noqa: E402
from routing import check, log, simple  # noqa: E402

EXTRA = "routing_ddl_unlisted"


def columns(c, name, table):
    return c.fetch_direct(name, """
        SELECT column_name, data_type, is_nullable, coalesce(column_default, '')
          FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position""",
                          (table,))


def primary_key(c, name, table):
    rows = c.fetch_direct(name, """
        SELECT pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conrelid = %s::regclass AND contype = 'p'""", (f"public.{table}",))
    return rows[0][0] if rows else None


def tables_on(c, name, tables):
    return {r[0] for r in c.fetch_direct(
        name, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
              "AND tablename = ANY(%s)", (list(tables),))}


def index_on(c, name, index):
    return bool(c.fetch_direct(name, "SELECT 1 FROM pg_indexes WHERE schemaname = 'public' "
                                     "AND indexname = %s", (index,)))


def test(env):
    c = routing.Cluster(env)
    tables = list(routing.DEMO_TABLES) + [EXTRA]
    # A failed earlier run may have left tables on some shards.
    c.drop_tables(tables=[EXTRA])
    c.drop_tables()

    log("-- CREATE TABLE through pgring reaches every shard")
    with c.proxy() as p:
        for t in routing.DEMO_TABLES:
            cur = simple(p, routing.SCHEMA[t])
            check(cur.statusmessage == "CREATE TABLE",
                  f"CREATE TABLE {t}: command tag {cur.statusmessage!r}, want 'CREATE TABLE' "
                  "once (not one per shard)")
        simple(p, f"CREATE TABLE {EXTRA} (id int PRIMARY KEY, v text)")
    for n in c.names:
        have = tables_on(c, n, tables)
        check(have == set(tables), f"after CREATE TABLE through pgring {n} has "
                                   f"{sorted(have)}, want {sorted(tables)}")
    first = c.names[0]
    for t in routing.DEMO_TABLES:
        want_cols, want_pk = columns(c, first, t), primary_key(c, first, t)
        check(want_cols, f"{t} on {first} has no columns")
        for n in c.others(first):
            got = columns(c, n, t)
            check(got == want_cols, f"{t}: columns on {n} {got} differ from {first} {want_cols}")
            check(primary_key(c, n, t) == want_pk, f"{t}: primary key on {n} differs from {first}")
    log(f"   {len(tables)} tables on each of {len(c.names)} shards, same definitions")

    log("-- CREATE INDEX, ALTER TABLE (extended protocol too), TRUNCATE, DROP INDEX")
    with c.proxy() as p:
        simple(p, "CREATE INDEX orders_status_idx ON orders (status)")
        simple(p, "ALTER TABLE orders ADD COLUMN ddl_extra text DEFAULT 'x'")
        routing.extended_noparams(p, "CREATE INDEX users_email_idx ON users (email)")
    for n in c.names:
        check(index_on(c, n, "orders_status_idx"), f"CREATE INDEX orders_status_idx missing on {n}")
        check(index_on(c, n, "users_email_idx"),
              f"CREATE INDEX users_email_idx (extended protocol) missing on {n}")
        cols = [r[0] for r in columns(c, n, "orders")]
        check(cols[-1] == "ddl_extra", f"ALTER TABLE orders ADD COLUMN missing on {n}: {cols}")

    # Rows on every shard directly; TRUNCATE through pgring must empty all of them.
    for i, n in enumerate(c.names):
        with c.shard(n) as s:
            s.execute("INSERT INTO orders (tenant_id, order_id) SELECT %s, g FROM "
                      "generate_series(1, 10) g", (i + 1,))
            s.execute(f"INSERT INTO {EXTRA} VALUES (1, 'a')")
    with c.proxy() as p:
        simple(p, f"TRUNCATE orders, {EXTRA}")
        simple(p, "DROP INDEX orders_status_idx")
    counts = c.count_direct("orders")
    check(all(v == 0 for v in counts.values()), f"after TRUNCATE through pgring orders has "
                                                f"rows left per shard: {counts}")
    extra = c.count_direct(EXTRA)
    check(all(v == 0 for v in extra.values()), f"after TRUNCATE through pgring {EXTRA} has rows "
                                               f"left per shard: {extra}")
    for n in c.names:
        check(not index_on(c, n, "orders_status_idx"), f"DROP INDEX did not reach {n}")

    log("-- DROP TABLE through pgring reaches every shard")
    with c.proxy() as p:
        for t in tables:
            cur = simple(p, f"DROP TABLE {t}")
            check(cur.statusmessage == "DROP TABLE", f"DROP TABLE {t}: command tag "
                                                    f"{cur.statusmessage!r}")
    for n in c.names:
        left = tables_on(c, n, tables)
        check(not left, f"after DROP TABLE through pgring {n} still has {sorted(left)}")
    c.drop_tables(tables=[EXTRA])


if __name__ == "__main__":
    routing.pgtest.run_main(test)
