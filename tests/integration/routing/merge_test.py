#!/usr/bin/python3
"""Reads without a shard key are sent to every shard and merged into the result one
database would return (docs/merge.md).

About 1,800 orders of 400 tenants (NULLs, negative amounts, equal values, UTF-8 text)
and their users are put on their owners directly; the same rows go into two unsharded
tables on the first shard (routing_merge_ref_orders, routing_merge_ref_users), which
pgring does not know. Each query runs through pgring against orders/users and directly
against the unsharded tables, both with the simple protocol (text results) and the
extended protocol with binary results, and the results must be equal: row for row where
ORDER BY makes the order deterministic, as multisets otherwise. Column names and types,
and the row count of the command tag, must be equal too.

Covered: ORDER BY on several keys, ASC/DESC, NULLS FIRST/LAST, numeric, integer, text,
timestamptz keys, an output-column number; LIMIT, OFFSET, both; count, sum, min, max,
avg (integer and numeric, with FILTER, over no rows); GROUP BY with and without ORDER BY,
ordered by an aggregate; DISTINCT; a join of the two sharded tables on the shard key; a
text parameter in WHERE; LIMIT without ORDER BY.
"""

import datetime
import decimal
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import routing  # noqa: E402
from routing import check, check_rows, describe_diff, log, simple  # noqa: E402

REF_O, REF_U = "routing_merge_ref_orders", "routing_merge_ref_users"
CENT = decimal.Decimal("0.01")
NOTES = ["apple", "Apple", "banana", "Zebra", "émile", "日本", "", "a b", "a\tb", "zz", None]

# (query with {o} = orders and {u} = users, ordered?, parameters or None)
QUERIES = [
    ("SELECT tenant_id, order_id, amount FROM {o} "
     "ORDER BY amount DESC NULLS LAST, tenant_id, order_id", True, None),
    ("SELECT tenant_id, order_id, amount FROM {o} "
     "ORDER BY amount ASC NULLS FIRST, tenant_id DESC, order_id DESC", True, None),
    ("SELECT tenant_id, order_id, status, qty FROM {o} "
     "ORDER BY status NULLS FIRST, qty DESC, tenant_id DESC, order_id", True, None),
    ("SELECT note, tenant_id, order_id FROM {o} ORDER BY note DESC NULLS FIRST, tenant_id, "
     "order_id", True, None),
    ("SELECT note, tenant_id, order_id FROM {o} ORDER BY note NULLS LAST, 2 DESC, 3", True, None),
    ("SELECT * FROM {o} ORDER BY created_at, tenant_id, order_id LIMIT 25 OFFSET 100", True, None),
    ("SELECT tenant_id, order_id, created_at FROM {o} ORDER BY created_at DESC, tenant_id, "
     "order_id LIMIT 7", True, None),
    ("SELECT tenant_id, order_id FROM {o} ORDER BY tenant_id, order_id OFFSET 1700", True, None),
    ("SELECT tenant_id, order_id, qty FROM {o} WHERE qty > %t ORDER BY qty, tenant_id, order_id "
     "LIMIT 50", True, (5,)),
    ("SELECT count(*), count(note), count(amount), sum(amount), min(amount), max(amount), "
     "avg(amount), sum(qty), avg(qty), min(note), max(note), min(created_at), max(created_at) "
     "FROM {o}", True, None),
    ("SELECT count(*) FILTER (WHERE status = 'paid'), sum(amount) FILTER (WHERE qty > 5), "
     "avg(qty) FILTER (WHERE status IS NULL), max(note) FILTER (WHERE qty < 3) FROM {o}",
     True, None),
    ("SELECT count(*), sum(amount), min(note), avg(qty), avg(amount) FROM {o} WHERE qty < -100",
     True, None),
    ("SELECT count(*), sum(qty), avg(amount) FROM {o} WHERE status = %t", True, ("paid",)),
    ("SELECT status, count(*), sum(amount), avg(amount), min(qty), max(qty) FROM {o} "
     "GROUP BY status ORDER BY status NULLS FIRST", True, None),
    ("SELECT status, qty, count(*) FROM {o} GROUP BY status, qty "
     "ORDER BY count(*) DESC, status NULLS LAST, qty NULLS FIRST", True, None),
    ("SELECT qty, sum(amount), max(created_at) FROM {o} GROUP BY qty", False, None),
    ("SELECT DISTINCT status FROM {o} ORDER BY status NULLS FIRST", True, None),
    ("SELECT DISTINCT qty, status FROM {o}", False, None),
    ("SELECT DISTINCT note FROM {o} ORDER BY note DESC NULLS LAST LIMIT 4", True, None),
    ("SELECT tenant_id, order_id, status FROM {o} WHERE qty = 3", False, None),
    ("SELECT o.tenant_id, o.order_id, u.email FROM {o} o JOIN {u} u "
     "ON u.tenant_id = o.tenant_id AND u.user_id = o.user_id "
     "ORDER BY o.tenant_id, o.order_id", True, None),
    ("SELECT u.email, count(*), sum(o.amount) FROM {o} o JOIN {u} u "
     "ON u.tenant_id = o.tenant_id AND u.user_id = o.user_id GROUP BY u.email "
     "ORDER BY u.email NULLS FIRST", True, None),
]


def make_data(rng):
    base = datetime.datetime(2024, 3, 1, 12, tzinfo=datetime.timezone.utc)
    tenants = list(range(1, 361)) + [rng.randint(-10 ** 15, 10 ** 15) for _ in range(40)]
    orders, users = [], []
    for k in tenants:
        for j in range(1, rng.randint(1, 8) + 1):
            amount = None if rng.random() < 0.07 else (
                decimal.Decimal(rng.randint(-5000, 50000)) / 100).quantize(CENT)
            orders.append((k, j, rng.randint(1, 6),
                           rng.choice(["new", "paid", "paid", "shipped", "cancelled", None]),
                           amount, rng.choice([None, 0, 1, 2, 3, 5, 8, 13]), rng.choice(NOTES),
                           base + datetime.timedelta(minutes=rng.randint(0, 5000))))
        for u in range(1, 6):
            users.append((k, u, None if rng.random() < 0.1 else f"user{u}@example.com"))
    return orders, users


def run(conn, sql, params, binary):
    if binary:
        cur = conn.cursor(binary=True)
        cur.execute(sql, params, prepare=False)
    elif params is None:
        cur = simple(conn, sql)
    else:
        cur = routing.extended(conn, sql, params)
    rows = cur.fetchall()
    desc = [(d.name, d.type_code) for d in cur.description]
    return rows, desc, cur.rowcount


def test(env):
    c = routing.Cluster(env)
    c.create_tables(("orders", "users"))
    rng = random.Random(1234)
    orders, users = make_data(rng)
    parts = c.load_direct("orders", routing.ORDER_COLUMNS, orders)
    c.load_direct("users", ("tenant_id", "user_id", "email"), users)
    per_shard = {n: len(v) for n, v in parts.items()}
    check(all(v > 0 for v in per_shard.values()), f"test data: orders per shard {per_shard}")
    log(f"   {len(orders)} orders, {len(users)} users; orders per shard {per_shard}")
    ref = c.names[0]
    with c.shard(ref) as s:
        for t, like in ((REF_O, "orders"), (REF_U, "users")):
            s.execute(f"DROP TABLE IF EXISTS {t}")
            s.execute(f"CREATE TABLE {t} (LIKE {like} INCLUDING ALL)")
        with s.cursor() as cur:
            with cur.copy(f"COPY {REF_O} ({', '.join(routing.ORDER_COLUMNS)}) FROM STDIN") as cp:
                for r in orders:
                    cp.write_row(r)
            with cur.copy(f"COPY {REF_U} (tenant_id, user_id, email) FROM STDIN") as cp:
                for r in users:
                    cp.write_row(r)

    failures = []
    with c.proxy() as p, c.shard(ref) as s:
        for sql, ordered, params in QUERIES:
            via_sql, ref_sql = sql.format(o="orders", u="users"), sql.format(o=REF_O, u=REF_U)
            for binary in (False, True):
                mode = "binary results" if binary else (
                    "simple protocol" if params is None else "text parameters")
                want, want_desc, _ = run(s, ref_sql, params, binary)
                try:
                    got, got_desc, rowcount = run(p, via_sql, params, binary)
                except routing.psycopg.Error as e:
                    failures.append(f"{via_sql} ({mode}): {e.sqlstate} {str(e).strip()[:200]}")
                    continue
                g, w = ((routing.canon(got), routing.canon(want)) if ordered
                        else (routing.sorted_rows(got), routing.sorted_rows(want)))
                if g != w:
                    failures.append(f"{via_sql} ({mode}): {describe_diff(g, w)}")
                elif got_desc != want_desc:
                    failures.append(f"{via_sql} ({mode}): columns {got_desc}, want {want_desc}")
                elif rowcount != len(want):
                    failures.append(f"{via_sql} ({mode}): command tag counts {rowcount} rows, "
                                    f"{len(want)} sent")
        log(f"   {len(QUERIES)} queries x 2 formats compared with one unsharded database")

        log("-- LIMIT without ORDER BY")
        cols = ", ".join(routing.ORDER_COLUMNS)
        got = simple(p, f"SELECT {cols} FROM orders LIMIT 10").fetchall()
        check(len(got) == 10, f"LIMIT 10 without ORDER BY returned {len(got)} rows")
        all_rows = set(routing.canon(orders))
        check(all(r in all_rows for r in routing.canon(got)),
              "LIMIT 10 without ORDER BY returned a row that is not in the table")
        check_rows("SELECT count(*) FROM orders",
                   simple(p, "SELECT count(*) FROM orders").fetchall(), [(len(orders),)])
    check(not failures, f"{len(failures)} merged result(s) differ from one database:\n  "
                        + "\n  ".join(failures))
    with c.shard(ref) as s:
        s.execute(f"DROP TABLE {REF_O}")
        s.execute(f"DROP TABLE {REF_U}")
    c.drop_tables(("orders", "users"))


if __name__ == "__main__":
    routing.pgtest.run_main(test)
