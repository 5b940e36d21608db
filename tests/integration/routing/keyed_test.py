#!/usr/bin/python3
"""Statements with a shard-key condition run on the owners of their keys only.

orders rows of 300 tenants are put on their owners directly. For a few keys of each
shard, a "poison" row with the same key is put on every other shard as well: a statement
routed by its key never sees it, one that ran on another shard does.

Checks, through pgring: SELECT with `tenant_id = k` as a literal, a quoted literal, a
text parameter and a binary parameter (binary results too), for keys at the ends of
bigint as well; IN lists, `= ANY` with an array literal, ARRAY[...], text and binary
array parameters, and ORs, both within one shard (no poison row may appear) and
across shards (all rows of all keys); UPDATE and DELETE by key with literals and
parameters (command tags count only the owners' rows, poison rows stay untouched);
UPDATE and DELETE across shards by IN / = ANY and without a key, with the shards' counts
summed; RETURNING rows of multi-shard UPDATE, INSERT and DELETE all reach the client.
Every write is checked on the shards directly.
"""

import datetime
import decimal
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import routing  # noqa: E402
from routing import INT64_MAX, INT64_MIN, check, check_rows, log, simple  # noqa: E402

COLS = "tenant_id, order_id, user_id, status, amount, qty, note, created_at"
POISON_ORDER = 900000
CENT = decimal.Decimal("0.01")


def lit(k):
    return f"'{k}'" if k == INT64_MIN else str(k)


def make_orders(tenants, per_tenant, rng):
    base = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    rows = []
    for k in tenants:
        for j in range(1, per_tenant + 1):
            rows.append((k, j, rng.randint(1, 20), rng.choice(["new", "paid", "cancelled", None]),
                         (decimal.Decimal(rng.randint(-1000, 100000)) / 100).quantize(CENT),
                         rng.choice([0, 1, 2, 3, 7, None]), rng.choice(["a", "b", None, "ünï"]),
                         base + datetime.timedelta(minutes=rng.randint(0, 100000))))
    return rows


def test(env):
    c = routing.Cluster(env)
    c.create_tables(("orders",))
    rng = random.Random(4242)
    candidates = [INT64_MIN, INT64_MAX, -7, 2 ** 40 + 3] + list(range(1, 297))
    rows = make_orders(candidates, 4, rng)
    by_key = {}
    for r in rows:
        by_key.setdefault(r[0], []).append(r)
    owner = c.owners(candidates)
    c.load_direct("orders", routing.ORDER_COLUMNS, rows)
    # P: keys with poison rows (3 a shard, the ends of bigint among them); Q: keys without.
    P = c.keys_by_shard(candidates, 3)
    p_keys = {k for ks in P.values() for k in ks}
    Q = c.keys_by_shard([k for k in candidates if k not in p_keys], 4)
    poison = []
    for k in sorted(p_keys):
        for n in c.others(owner[k]):
            poison.append((n, k))
            with c.shard(n) as s:
                s.execute("INSERT INTO orders (tenant_id, order_id, status, note) "
                          "VALUES (%s, %s, 'poison', 'misplaced')", (k, POISON_ORDER))
    log(f"   {len(rows)} orders of {len(candidates)} tenants; poison rows for {sorted(p_keys)}")

    def want(keys):
        return sorted((r for k in keys for r in by_key[k]), key=lambda r: (r[0], r[1]))

    def poison_left(k):
        return sum(c.fetch_direct(n, "SELECT count(*) FROM orders WHERE tenant_id = %s AND "
                                     "order_id = %s AND note = 'misplaced' AND status = 'poison'",
                                  (k, POISON_ORDER))[0][0] for n in c.others(owner[k]))

    with c.proxy() as p:
        log("-- SELECT by one key: literal, quoted literal, text and binary parameter")
        for k in sorted(p_keys):
            q = f"SELECT {COLS} FROM orders WHERE tenant_id = %s ORDER BY order_id"
            variants = [
                ("literal", lambda: simple(p, q % lit(k)).fetchall()),
                ("quoted literal", lambda: simple(p, q % f"'{k}'").fetchall()),
                ("text parameter", lambda: routing.extended(p, q % "%t", (k,)).fetchall()),
                ("binary parameter", lambda: routing.extended(p, q % "%b", (k,),
                                                              binary=True).fetchall()),
            ]
            for what, run in variants:
                check_rows(f"tenant_id = {k} ({what}; owner {owner[k]})", run(), want([k]))

        log("-- IN / = ANY / OR with every key on one shard (the poison rows must not appear)")
        for n, ks in P.items():
            inlist = ", ".join(lit(k) for k in ks)
            arr = "{" + ",".join(str(k) for k in ks) + "}"
            casts = ", ".join(f"'{k}'::bigint" for k in ks)
            for what, run in [
                ("IN list", lambda: simple(p, f"SELECT {COLS} FROM orders WHERE tenant_id IN "
                                              f"({inlist})").fetchall()),
                ("= ANY(array literal)", lambda: simple(
                    p, f"SELECT {COLS} FROM orders "
                       f"WHERE tenant_id = ANY('{arr}'::bigint[])").fetchall()),
                ("= ANY(ARRAY[...])", lambda: simple(
                    p, f"SELECT {COLS} FROM orders "
                       f"WHERE tenant_id = ANY(ARRAY[{casts}])").fetchall()),
                ("OR", lambda: simple(p, f"SELECT {COLS} FROM orders WHERE " + " OR ".join(
                    f"tenant_id = {lit(k)}" for k in ks)).fetchall()),
                ("= ANY(text array parameter)", lambda: routing.extended(
                    p, f"SELECT {COLS} FROM orders WHERE tenant_id = ANY(%t)", (ks,)).fetchall()),
                ("= ANY(binary array parameter)", lambda: routing.extended(
                    p, f"SELECT {COLS} FROM orders WHERE tenant_id = ANY(%b)", (ks,),
                    binary=True).fetchall()),
            ]:
                check_rows(f"keys {ks} of {n} ({what})", run(), want(ks), ordered=False)

        log("-- IN / = ANY / OR across shards: rows of every key")
        qk = [k for ks in Q.values() for k in ks]
        inlist = ", ".join(lit(k) for k in qk)
        for what, run in [
            ("IN list", lambda: simple(p, f"SELECT {COLS} FROM orders WHERE tenant_id IN "
                                          f"({inlist})").fetchall()),
            ("OR", lambda: simple(p, f"SELECT {COLS} FROM orders WHERE " + " OR ".join(
                f"tenant_id = {lit(k)}" for k in qk)).fetchall()),
            ("= ANY(text array parameter)", lambda: routing.extended(
                p, f"SELECT {COLS} FROM orders WHERE tenant_id = ANY(%t)", (qk,)).fetchall()),
            ("= ANY(binary array parameter)", lambda: routing.extended(
                p, f"SELECT {COLS} FROM orders WHERE tenant_id = ANY(%b)", (qk,),
                binary=True).fetchall()),
            ("IN list with ORDER BY", lambda: simple(
                p, f"SELECT {COLS} FROM orders WHERE tenant_id IN ({inlist}) "
                   "ORDER BY tenant_id, order_id").fetchall()),
        ]:
            check_rows(f"keys {qk} across shards ({what})", run(), want(qk),
                       ordered=what.endswith("ORDER BY"))
        cur = simple(p, f"SELECT count(*) FROM orders WHERE tenant_id IN ({inlist})")
        check(cur.fetchone()[0] == len(want(qk)), "count(*) over keys of several shards is not "
                                                  "the sum of the shards' counts")

        log("-- UPDATE / DELETE by one key: only the owner's rows")
        for i, k in enumerate(sorted(p_keys)):
            n_rows = len(by_key[k])
            if i % 2 == 0:
                cur = simple(p, f"UPDATE orders SET note = 'keyed-{i}' WHERE tenant_id = {lit(k)}")
            else:
                cur = routing.extended(p, "UPDATE orders SET note = %t WHERE tenant_id = %b",
                                       (f"keyed-{i}", k))
            check(cur.rowcount == n_rows, f"UPDATE tenant_id = {k}: rowcount {cur.rowcount}, want "
                                          f"{n_rows} (the owner {owner[k]}'s rows only)")
            got = c.fetch_direct(owner[k], "SELECT count(*) FROM orders WHERE tenant_id = %s "
                                           "AND note = %s", (k, f"keyed-{i}"))[0][0]
            check(got == n_rows, f"UPDATE tenant_id = {k}: {got} rows updated on {owner[k]}, "
                                 f"want {n_rows}")
            check(poison_left(k) == len(c.others(owner[k])),
                  f"UPDATE tenant_id = {k} changed a row on a shard that does not own {k}")

        log("-- UPDATE across shards: IN list and = ANY(parameter), tags summed")
        qa, qb = qk[:len(qk) // 2], qk[len(qk) // 2:]
        for what, keys, run in [
            ("IN list", qa, lambda: simple(p, "UPDATE orders SET status = 'x' WHERE tenant_id IN ("
                                              + ", ".join(lit(k) for k in qa) + ")")),
            ("= ANY(binary parameter)", qb, lambda: routing.extended(
                p, "UPDATE orders SET status = %t WHERE tenant_id = ANY(%b)", ("x", qb))),
        ]:
            shards = {owner[k] for k in keys}
            cur = run()
            check(cur.rowcount == len(want(keys)),
                  f"UPDATE over keys of {sorted(shards)} ({what}): rowcount {cur.rowcount}, "
                  f"want {len(want(keys))}")
        counts = c.count_direct("orders", "status = 'x'")
        for n in c.names:
            mine = len([r for k in qk if owner[k] == n for r in by_key[k]])
            check(counts[n] == mine, f"after the multi-shard UPDATEs {n} has {counts[n]} rows "
                                     f"with status 'x', want {mine}")

        log("-- RETURNING of multi-shard UPDATE, INSERT and DELETE")
        cur = routing.extended(p, "UPDATE orders SET qty = coalesce(qty, 0) + 100 "
                                  "WHERE tenant_id = ANY(%t) RETURNING tenant_id, order_id, qty",
                               (qk,))
        got = cur.fetchall()
        exp = [(r[0], r[1], (r[5] or 0) + 100) for r in want(qk)]
        check_rows("UPDATE ... RETURNING over several shards", got, exp, ordered=False)
        check(cur.rowcount == len(exp), f"UPDATE ... RETURNING rowcount {cur.rowcount}")
        new_rows = [(k, 500 + j) for j, k in enumerate(qk)]
        cur = simple(p, "INSERT INTO orders (tenant_id, order_id, status) VALUES "
                        + ", ".join(f"({lit(k)}, {o}, 'ret')" for k, o in new_rows)
                        + " RETURNING tenant_id, order_id, status")
        check_rows("INSERT ... RETURNING over several shards", cur.fetchall(),
                   [(k, o, "ret") for k, o in new_rows], ordered=False)
        check(cur.rowcount == len(new_rows), f"INSERT ... RETURNING rowcount {cur.rowcount}")
        parts = c.split(new_rows)
        for n in c.names:
            got = c.fetch_direct(n, "SELECT tenant_id, order_id FROM orders WHERE status = 'ret'")
            check_rows(f"rows of INSERT ... RETURNING on {n}", got, parts[n], ordered=False)
        cur = routing.extended(p, "DELETE FROM orders WHERE tenant_id = ANY(%b) AND status = %t "
                                  "RETURNING tenant_id, order_id", (qk, "ret"), binary=True)
        check_rows("DELETE ... RETURNING over several shards", cur.fetchall(), new_rows,
                   ordered=False)
        check(sum(c.count_direct("orders", "status = 'ret'").values()) == 0,
              "rows deleted by DELETE ... RETURNING are still on a shard")

        log("-- DELETE by one key")
        for k in sorted(p_keys)[:2]:
            cur = routing.extended(p, "DELETE FROM orders WHERE tenant_id = %t", (k,))
            check(cur.rowcount == len(by_key[k]), f"DELETE tenant_id = {k}: rowcount "
                                                  f"{cur.rowcount}, want {len(by_key[k])}")
            left = c.fetch_direct(owner[k], "SELECT count(*) FROM orders WHERE tenant_id = %s",
                                  (k,))[0][0]
            check(left == 0, f"DELETE tenant_id = {k} left {left} rows on {owner[k]}")
            check(poison_left(k) == len(c.others(owner[k])),
                  f"DELETE tenant_id = {k} deleted a row on a shard that does not own {k}")

        log("-- UPDATE and DELETE without a key: every shard, tags summed")
        before = c.count_direct("orders", "status = 'cancelled'")
        check(all(v > 0 for v in before.values()),
              f"test data: cancelled orders per shard {before}")
        cur = simple(p, "UPDATE orders SET note = 'bulk' WHERE status = 'cancelled'")
        check(cur.rowcount == sum(before.values()),
              f"keyless UPDATE: rowcount {cur.rowcount}, want {sum(before.values())} "
              f"(per shard {before})")
        after = c.count_direct("orders", "status = 'cancelled' AND note = 'bulk'")
        check(after == before, f"keyless UPDATE: updated rows per shard {after}, want {before}")
        before = c.count_direct("orders", "qty = 0")
        cur = routing.extended(p, "DELETE FROM orders WHERE qty = %t", (0,))
        check(cur.rowcount == sum(before.values()),
              f"keyless DELETE: rowcount {cur.rowcount}, want {sum(before.values())}")
        left = c.count_direct("orders", "qty = 0")
        check(sum(left.values()) == 0, f"keyless DELETE left rows per shard: {left}")
        check(sum(c.count_direct("orders", "status = 'poison'").values()) == len(poison),
              "a keyed statement touched a poison row")
    c.drop_tables(("orders",))


if __name__ == "__main__":
    routing.pgtest.run_main(test)
