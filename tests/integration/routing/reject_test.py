#!/usr/bin/python3
"""Statements pgring cannot run correctly on the shards are refused with the documented
SQLSTATE and a message (docs/sharding.md, Rules and Errors), and the same statements
limited to one shard by a key run normally.

Refused with 0A000, over the simple and the extended protocol: a join of sharded tables
not on the shard key; a window function, HAVING, DISTINCT ON and count(DISTINCT ...)
over several shards; UPDATE of the shard key (literal, parameter, without a key
condition) and ON CONFLICT DO UPDATE of it; an INSERT whose key is missing from the
column list or an expression; COMMIT PREPARED from a client. Refused with 23502: an
INSERT row with a NULL key (literal, NULL parameter, one NULL row among several), into
a table whose column allows NULL, so only pgring can refuse it. After each refusal the
connection still works, and the shards hold exactly the rows they held before. A COPY
that one shard refuses (its table is missing) fails with that shard's error instead of
waiting for the others, and leaves no rows anywhere.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import routing  # noqa: E402
from routing import check, check_rows, expect_error, log, simple  # noqa: E402


def snapshot(c):
    return {n: c.fetch_direct(n, "SELECT tenant_id, order_id, user_id, status FROM orders "
                                 "ORDER BY tenant_id, order_id") for n in c.names}


def test(env):
    c = routing.Cluster(env)
    c.create_tables(("orders", "users", "order_items"))
    tenants = list(range(1, 61))
    orders = [(k, j, j % 3 + 1, ["new", "paid", "cancelled"][(k + j) % 3])
              for k in tenants for j in range(1, 5)]
    users = [(k, u, f"u{u}@t{k}") for k in tenants for u in range(1, 4)]
    c.load_direct("orders", ("tenant_id", "order_id", "user_id", "status"), orders)
    c.load_direct("users", ("tenant_id", "user_id", "email"), users)
    by_shard = c.keys_by_shard(tenants, 1)
    k = by_shard[c.names[-1]][0]          # a key of a shard other than the first
    k_other = by_shard[c.names[0]][0]
    mine = [r for r in orders if r[0] == k]
    before = snapshot(c)

    cases = [
        ("join not on the shard key", "0A000",
         "SELECT o.order_id, u.email FROM orders o JOIN users u ON u.user_id = o.user_id", None),
        ("join not on the shard key (parameter)", "0A000",
         "SELECT o.order_id, u.email FROM orders o JOIN users u ON u.user_id = o.user_id "
         "WHERE o.status = %t", ("new",)),
        ("window function across shards", "0A000",
         "SELECT tenant_id, order_id, row_number() OVER (ORDER BY tenant_id, order_id) "
         "FROM orders", None),
        ("HAVING across shards", "0A000",
         "SELECT status, count(*) FROM orders GROUP BY status HAVING count(*) > 1", None),
        ("DISTINCT ON across shards", "0A000",
         "SELECT DISTINCT ON (status) status, order_id FROM orders ORDER BY status, order_id",
         None),
        ("count(DISTINCT) across shards", "0A000",
         "SELECT count(DISTINCT status) FROM orders", None),
        ("UPDATE of the shard key", "0A000",
         f"UPDATE orders SET tenant_id = {k_other} WHERE tenant_id = {k}", None),
        ("UPDATE of the shard key (parameters)", "0A000",
         "UPDATE orders SET tenant_id = %t WHERE tenant_id = %t", (k_other, k)),
        ("UPDATE of the shard key without a key condition", "0A000",
         "UPDATE orders SET tenant_id = tenant_id + 0 WHERE status = 'new'", None),
        ("ON CONFLICT DO UPDATE of the shard key", "0A000",
         f"INSERT INTO orders (tenant_id, order_id) VALUES ({k}, 1) ON CONFLICT "
         "(tenant_id, order_id) DO UPDATE SET tenant_id = excluded.tenant_id + 1", None),
        ("INSERT without the key column", "0A000",
         "INSERT INTO order_items (order_id, item_no) VALUES (1, 1)", None),
        ("INSERT with an expression as key", "0A000",
         "INSERT INTO order_items (tenant_id, order_id, item_no) VALUES (1 + 1, 1, 1)", None),
        ("INSERT with a NULL key", "23502",
         "INSERT INTO order_items (tenant_id, order_id, item_no) VALUES (NULL, 1, 1)", None),
        ("INSERT with a NULL key parameter", "23502",
         "INSERT INTO order_items (tenant_id, order_id, item_no) VALUES (%t, %t, %t)",
         (None, 1, 1)),
        ("multi-row INSERT with one NULL key", "23502",
         f"INSERT INTO order_items (tenant_id, order_id, item_no) VALUES ({k}, 1, 1), "
         f"({k_other}, 1, 1), (NULL, 2, 2)", None),
        ("COMMIT PREPARED from a client", "0A000", "COMMIT PREPARED 'routing_test_gid'", None),
    ]
    failures = []
    with c.proxy() as p:
        for what, state, sql, params in cases:
            try:
                e = expect_error(p, sql, params, sqlstate=state, what=what)
                log(f"   {what}: {e.sqlstate} {e.diag.message_primary}")
            except routing.pgtest.TestFailure as f:
                failures.append(str(f))
            try:
                got = simple(p, "SELECT 1").fetchone()[0]
            except routing.psycopg.Error as err:
                routing.fail(f"connection unusable after '{what}': {err}")
            check(got == 1, f"SELECT 1 after '{what}' returned {got!r}")
    after = snapshot(c)
    for n in c.names:
        if after[n] != before[n]:
            failures.append(f"orders on {n} changed although every write was refused: "
                            f"{routing.describe_diff(after[n], before[n])}")
    items = c.count_direct("order_items")
    if any(items.values()):
        failures.append(f"refused INSERTs left rows in order_items: {items}")

    log("-- the same statements limited to one shard by a key run")
    with c.proxy() as p:
        try:
            got = simple(p, f"SELECT o.order_id, u.email FROM orders o JOIN users u "
                            f"ON u.user_id = o.user_id WHERE o.tenant_id = {k} "
                            f"AND u.tenant_id = {k} ORDER BY o.order_id").fetchall()
            check_rows(f"join not on the key, both tables limited to tenant {k}", got,
                       [(j, f"u{uid}@t{k}") for _, j, uid, _ in mine])
            got = simple(p, f"SELECT order_id, row_number() OVER (ORDER BY order_id DESC) "
                            f"FROM orders WHERE tenant_id = {k} ORDER BY order_id").fetchall()
            check_rows(f"window function for tenant {k}", got,
                       [(j, len(mine) - i) for i, (_, j, _, _) in enumerate(mine)])
            got = routing.extended(p, "SELECT status, count(*) FROM orders WHERE tenant_id = %b "
                                      "GROUP BY status HAVING count(*) >= 1 ORDER BY status",
                                   (k,), binary=True).fetchall()
            counts = {}
            for r in mine:
                counts[r[3]] = counts.get(r[3], 0) + 1
            check_rows(f"HAVING for tenant {k}", got, sorted(counts.items()))
            got = simple(p, f"SELECT DISTINCT ON (status) status, order_id FROM orders "
                            f"WHERE tenant_id = {k} ORDER BY status, order_id").fetchall()
            first = {}
            for r in mine:
                first.setdefault(r[3], r[1])
            check_rows(f"DISTINCT ON for tenant {k}", got, sorted(first.items()))
        except routing.psycopg.Error as e:
            failures.append(f"a statement limited to tenant {k} failed: {e.sqlstate} {e}")
        except routing.pgtest.TestFailure as f:
            failures.append(str(f))
    check(not failures, f"{len(failures)} check(s) failed:\n  " + "\n  ".join(failures))

    log("-- COPY into a table that one shard lacks: that shard's error, no hang, no rows")
    last = c.names[-1]
    with c.shard(last, autocommit=True) as s:
        s.execute("ALTER TABLE order_items RENAME TO order_items_hidden")
    try:
        with c.proxy(autocommit=True) as p:
            try:
                with p.cursor() as cur:
                    copy = "COPY order_items (tenant_id, order_id, item_no, sku) FROM STDIN"
                    with cur.copy(copy) as cp:
                        for t in tenants:
                            cp.write(f"{t}\t1\t1\tsku-{t}\n")
                routing.fail("COPY succeeded although a shard has no order_items table")
            except routing.psycopg.errors.UndefinedTable:
                pass
            check(simple(p, "SELECT 1").fetchone()[0] == 1,
                  "the session is unusable after a COPY refused by one shard")
        for n in c.others(last):
            got = c.fetch_direct(n, "SELECT count(*) FROM order_items")[0][0]
            check(got == 0, f"a COPY refused by {last} left {got} rows on {n}")
    finally:
        with c.shard(last, autocommit=True) as s:
            s.execute("ALTER TABLE order_items_hidden RENAME TO order_items")
    c.drop_tables(("orders", "users", "order_items"))


if __name__ == "__main__":
    routing.pgtest.run_main(test)
