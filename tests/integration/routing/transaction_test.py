#!/usr/bin/python3
"""Transactions through pgring that write to two shards (docs/sharding.md, Transactions;
DESIGN.md section 5).

For a tenant owned by each of two shards, through pgring:
- BEGIN; keyed INSERTs and UPDATEs for both tenants; COMMIT (explicit SQL over the simple
  protocol, and psycopg's own transaction with parameters): both shards hold the rows
  afterwards, and while the transaction was open the shards did not show them to other
  sessions (read directly) though the transaction itself read its own writes;
- the same followed by ROLLBACK: neither shard holds anything;
- a transaction whose write on the second shard fails (duplicate key): the error aborts
  it, ROLLBACK leaves nothing on the first shard either;
- a keyless UPDATE over every shard rolled back: nothing changes;
- BEGIN ISOLATION LEVEL ... reaches the shard with its options;
- a query string whose second statement fails on one shard leaves nothing of the first.
After each commit no prepared transaction is left on any shard.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import routing  # noqa: E402
from routing import check, log, simple  # noqa: E402


def test(env):
    c = routing.Cluster(env)
    c.create_tables(("tenants", "orders"))
    a_shard, b_shard = c.names[0], c.names[1]
    pool = c.keys_by_shard(range(5000, 6000), 6)
    A, B = pool[a_shard], pool[b_shard]
    owner = c.owners(A + B)

    def tenant_rows(k):
        return c.fetch_direct(owner[k], "SELECT tenant_id, name FROM tenants WHERE tenant_id = %s",
                              (k,))

    def order_rows(k):
        return c.fetch_direct(owner[k], "SELECT order_id, status FROM orders WHERE tenant_id = %s "
                                        "ORDER BY order_id", (k,))

    def prepared_left():
        return {n: c.fetch_direct(n, "SELECT count(*) FROM pg_prepared_xacts "
                                     "WHERE database = current_database()")[0][0]
                for n in c.names}

    baseline = prepared_left()

    def no_prepared(what):
        routing.pgtest.wait_until(f"no prepared transaction left on the shards after {what} "
                                  f"(per shard before the test: {baseline})",
                                  lambda: prepared_left() == baseline, timeout=15)

    with c.proxy() as p:
        log(f"-- BEGIN; writes for tenant {A[0]} ({a_shard}) and {B[0]} ({b_shard}); COMMIT")
        simple(p, "BEGIN")
        for k in (A[0], B[0]):
            simple(p, f"INSERT INTO tenants (tenant_id, name) VALUES ({k}, 'tx {k}')")
            simple(p, f"INSERT INTO orders (tenant_id, order_id, status) VALUES ({k}, 1, 'new'), "
                      f"({k}, 2, 'new')")
        cur = simple(p, f"UPDATE orders SET status = 'paid' WHERE tenant_id IN ({A[0]}, {B[0]}) "
                        "AND order_id = 2")
        check(cur.rowcount == 2, f"UPDATE inside the transaction: rowcount {cur.rowcount}, want 2")
        got = routing.scalar(p, f"SELECT count(*) FROM orders WHERE tenant_id IN ({A[0]}, {B[0]})")
        check(got == 4, f"the transaction reads {got} of its own 4 orders")
        for k in (A[0], B[0]):
            check(tenant_rows(k) == [], f"tenant {k} is visible on {owner[k]} before COMMIT")
        simple(p, "COMMIT")
        for k in (A[0], B[0]):
            check(tenant_rows(k) == [(k, f"tx {k}")], f"after COMMIT tenant {k} on {owner[k]}: "
                                                      f"{tenant_rows(k)}")
            check(order_rows(k) == [(1, "new"), (2, "paid")],
                  f"after COMMIT orders of {k} on {owner[k]}: {order_rows(k)}")
        no_prepared("COMMIT")

        log("-- psycopg transaction with parameters, committed")
        with p.transaction():
            for k in (A[1], B[1]):
                routing.extended(p, "INSERT INTO tenants (tenant_id, name) VALUES (%b, %t)",
                                 (k, f"tx {k}"))
        for k in (A[1], B[1]):
            check(tenant_rows(k) == [(k, f"tx {k}")], f"after commit tenant {k} on {owner[k]}: "
                                                      f"{tenant_rows(k)}")
        no_prepared("a psycopg transaction")

        log("-- the same rolled back")
        simple(p, "BEGIN")
        for k in (A[2], B[2]):
            simple(p, f"INSERT INTO tenants (tenant_id, name) VALUES ({k}, 'rolled back')")
            routing.extended(p, "INSERT INTO orders (tenant_id, order_id) VALUES (%t, 1)", (k,))
        simple(p, f"UPDATE orders SET status = 'gone' WHERE tenant_id IN ({A[0]}, {B[0]})")
        simple(p, "ROLLBACK")
        for k in (A[2], B[2]):
            check(tenant_rows(k) == [] and order_rows(k) == [],
                  f"after ROLLBACK tenant {k} has rows on {owner[k]}")
        for k in (A[0], B[0]):
            check(order_rows(k) == [(1, "new"), (2, "paid")],
                  f"a rolled back UPDATE changed orders of {k}: {order_rows(k)}")

        log("-- a failing write on the second shard aborts the whole transaction")
        simple(p, "BEGIN")
        simple(p, f"INSERT INTO tenants (tenant_id, name) VALUES ({A[3]}, 'aborted')")
        try:
            simple(p, f"INSERT INTO tenants (tenant_id, name) VALUES ({B[0]}, 'duplicate')")
            routing.fail(f"INSERT of the existing tenant {B[0]} succeeded")
        except routing.psycopg.errors.UniqueViolation:
            pass
        try:
            simple(p, "SELECT 1")
            routing.fail("a statement after an error inside a transaction succeeded")
        except routing.psycopg.errors.InFailedSqlTransaction:
            pass
        simple(p, "ROLLBACK")
        check(tenant_rows(A[3]) == [], f"tenant {A[3]} of an aborted transaction is on {a_shard}")
        check(tenant_rows(B[0]) == [(B[0], f"tx {B[0]}")], f"tenant {B[0]} changed: "
                                                          f"{tenant_rows(B[0])}")

        log("-- a keyless UPDATE over every shard, rolled back")
        before = {n: c.fetch_direct(n, "SELECT tenant_id, order_id, status FROM orders "
                                       "ORDER BY 1, 2") for n in c.names}
        with p.transaction() as tx:
            cur = simple(p, "UPDATE orders SET status = 'everywhere'")
            check(cur.rowcount == 4, f"keyless UPDATE in a transaction: rowcount {cur.rowcount}, "
                                     "want 4")
            raise routing.psycopg.Rollback(tx)
        after = {n: c.fetch_direct(n, "SELECT tenant_id, order_id, status FROM orders "
                                      "ORDER BY 1, 2") for n in c.names}
        check(after == before, f"a rolled back keyless UPDATE changed orders: {after} (was "
                               f"{before})")
        check(simple(p, "SELECT count(*) FROM tenants").fetchone()[0] == 4,
              "through pgring the shards hold another number of tenants than 4")

        log("-- BEGIN with options is replayed as written on the shard it reaches")
        simple(p, "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY")
        got = routing.scalar(p, f"SELECT current_setting('transaction_isolation') || ' ' || "
                                f"current_setting('transaction_read_only') FROM tenants "
                                f"WHERE tenant_id = {B[0]}")
        check(got == "serializable on", f"the shard's transaction runs as {got!r}, not "
                                        "'serializable on'")
        simple(p, "COMMIT")

        log("-- a query string over two shards is one transaction per shard: all or nothing")
        # The first statement writes on B's shard; the second runs on every shard and fails
        # on B's only (division by zero for tenant B[0]): what it wrote on A's shard, which
        # the first statement never touched, must not stay either.
        before = {k: order_rows(k) for k in (A[0], B[0])}
        try:
            simple(p, f"UPDATE orders SET status = 'multi' WHERE tenant_id = {B[0]}; "
                      f"UPDATE orders SET status = 'x' || (1 / (tenant_id - {B[0]}))::text")
            routing.fail("a query string dividing by zero on one shard succeeded")
        except routing.psycopg.errors.DivisionByZero:
            pass
        after = {k: order_rows(k) for k in (A[0], B[0])}
        check(after == before, f"a failed query string left changes: {after} (was {before})")
        check(simple(p, "SELECT 1").fetchone()[0] == 1, "the session is unusable after the "
                                                        "failed query string")
    no_prepared("the test")
    c.drop_tables(("tenants", "orders"))


if __name__ == "__main__":
    routing.pgtest.run_main(test)
