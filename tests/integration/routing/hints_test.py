#!/usr/bin/python3
"""Routing hints pin a statement or a session to the owner of a key (docs/sharding.md,
Hints).

orders rows are put on their owners directly so that each shard holds a different
count. For a key owned by the default shard and one owned by another shard, through
pgring: a leading `/* pgring: shard_key=K */` (and `-- pgring: shard_key='K'`) sends a
keyless SELECT, a table-free SELECT (current_setting('port') names the shard) and a
keyless UPDATE to the owner of K only (checked on the shards directly); a key in the
statement wins over the hint; a hint never narrows a write into the reference table
plans; a malformed hint fails with 22P02. `SET pgring.shard_key = 'K'` pins the session
over several transactions and both protocols, `SHOW pgring.shard_key` reports it, a
comment wins over it, another session is not affected, and `RESET pgring.shard_key`
ends it.
"""

import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import routing  # noqa: E402
from routing import check, expect_error, log, scalar, simple  # noqa: E402


def test(env):
    c = routing.Cluster(env)
    c.create_tables(("orders", "plans"))
    tenants = list(range(1, 301))
    # Tenant k has k % 4 + 1 orders: the shards' counts differ.
    rows = [(k, j, "new" if j % 2 else "paid") for k in tenants for j in range(1, k % 4 + 2)]
    c.load_direct("orders", ("tenant_id", "order_id", "status"), rows)
    counts = c.count_direct("orders")
    new_counts = c.count_direct("orders", "status = 'new'")
    total = sum(counts.values())
    check(len(set(counts.values())) == len(counts) and all(counts.values()),
          f"test data: the shards must hold different, non-zero counts: {counts}")
    port = {n: str(urllib.parse.urlsplit(c.dsn[n]).port) for n in c.names}
    others = [n for n in c.names if n != c.default]
    keys = {c.default: c.keys_by_shard(range(10 ** 6, 10 ** 6 + 200), 1)[c.default][0]}
    keys[others[0]] = c.keys_by_shard(range(10 ** 6, 10 ** 6 + 200), 1)[others[0]][0]
    log(f"   orders per shard {counts}; hint keys {keys} (default shard {c.default})")

    with c.proxy() as p:
        for owner, k in keys.items():
            log(f"-- comment hints for key {k} (owner {owner})")
            got = scalar(p, f"/* pgring: shard_key={k} */ SELECT count(*) FROM orders")
            check(got == counts[owner], f"/* pgring: shard_key={k} */ SELECT count(*): {got}, "
                                        f"want {counts[owner]} (the rows of {owner}; all shards "
                                        f"{counts})")
            got = routing.extended(p, f"/* pgring: shard_key={k} */ SELECT count(*) FROM orders "
                                      "WHERE status = %t", ("new",), binary=True).fetchone()[0]
            check(got == new_counts[owner], f"hinted SELECT with a binary parameter: {got}, want "
                                            f"{new_counts[owner]}")
            got = scalar(p, f"-- pgring: shard_key='{k}'\nSELECT count(*) FROM orders")
            check(got == counts[owner], f"-- pgring: shard_key='{k}' SELECT count(*): {got}, want "
                                        f"{counts[owner]}")
            got = scalar(p, f"/* pgring: shard_key={k} */ SELECT current_setting('port')")
            check(got == port[owner], f"hinted table-free SELECT ran on port {got}, want "
                                      f"{port[owner]} ({owner})")
            other = next(t for t in tenants if c.owner(t) != owner)
            got = simple(p, f"/* pgring: shard_key={k} */ SELECT count(*) FROM orders "
                            f"WHERE tenant_id = {other}").fetchone()[0]
            check(got == other % 4 + 1, f"the key {other} in the statement must win over the "
                                        f"hint {k}: count {got}, want {other % 4 + 1}")

        owner = others[0]
        k = keys[owner]
        log(f"-- a hinted keyless UPDATE changes only the rows of {owner}")
        cur = simple(p, f"/* pgring: shard_key={k} */ UPDATE orders SET status = 'hinted' "
                        "WHERE status = 'new'")
        check(cur.rowcount == new_counts[owner], f"hinted UPDATE: rowcount {cur.rowcount}, want "
                                                 f"{new_counts[owner]}")
        hinted = c.count_direct("orders", "status = 'hinted'")
        want = {n: new_counts[n] if n == owner else 0 for n in c.names}
        check(hinted == want, f"hinted UPDATE changed rows per shard {hinted}, want {want}")

        log("-- a hint does not narrow a write into the reference table")
        simple(p, f"/* pgring: shard_key={k} */ INSERT INTO plans VALUES (1, 'hinted', 0)")
        plans = c.count_direct("plans")
        check(all(v == 1 for v in plans.values()), f"hinted INSERT into plans: rows per shard "
                                                   f"{plans}, want 1 everywhere")

        log("-- a malformed hint")
        expect_error(p, "/* pgring: shard_key=4x2 */ SELECT count(*) FROM orders",
                     sqlstate="22P02")

        log(f"-- SET pgring.shard_key = '{k}' pins the session to {owner}")
        simple(p, f"SET pgring.shard_key = '{k}'")
        got = simple(p, "SHOW pgring.shard_key").fetchone()[0]
        check(got == str(k), f"SHOW pgring.shard_key: {got!r}, want {str(k)!r}")
        with c.proxy() as q:
            got = scalar(q, "SELECT count(*) FROM orders")
            check(got == total, f"another session sees {got} orders, want all {total}: the "
                                "session hint leaked")
        for i in range(5):
            got = simple(p, "SELECT count(*) FROM orders").fetchone()[0]
            check(got == counts[owner], f"session hint, statement {i}: count {got}, want "
                                        f"{counts[owner]}")
            got = routing.extended(p, "SELECT count(*) FROM orders WHERE order_id >= %b", (1,),
                                   binary=True).fetchone()[0]
            check(got == counts[owner], f"session hint, extended protocol: count {got}, want "
                                        f"{counts[owner]}")
        got = simple(p, "SELECT current_setting('port')").fetchone()[0]
        check(got == port[owner], f"session hint: table-free SELECT on port {got}, want "
                                  f"{port[owner]}")
        kd = keys[c.default]
        got = scalar(p, f"/* pgring: shard_key={kd} */ SELECT count(*) FROM orders")
        check(got == counts[c.default], f"a comment hint must win over the session hint: count "
                                        f"{got}, want {counts[c.default]}")
        with p.transaction():
            got = simple(p, "SELECT count(*) FROM orders").fetchone()[0]
            check(got == counts[owner], f"session hint inside a transaction: count {got}")
        simple(p, "RESET pgring.shard_key")
        got = simple(p, "SELECT count(*) FROM orders").fetchone()[0]
        check(got == total, f"after RESET pgring.shard_key: count {got}, want all {total}")
    c.drop_tables(("orders", "plans"))


if __name__ == "__main__":
    routing.pgtest.run_main(test)
