#!/usr/bin/python3
"""RELOAD changes where statements go at once, also for statements a session has routed
before: pgring keeps a route memo next to each cached statement and prepared statement
(docs/sharding.md, Routing), made for the table map of its time.

On a second pgring of its own (a copy of the cluster's configuration on free ports), one
session writes rows of table reload_items with a named prepared INSERT (extended
protocol) and with the same INSERT as simple queries, and counts rows by key:
  * reload_items not configured: every row lands on the default shard;
  * RELOAD with reload_items sharded by k: the same statements of the same session put
    each row on the shard that owns its k (from SHOW RING and PostgreSQL's
    hashint8extended), and a count by key reads that shard;
  * RELOAD without it again: back to the default shard.
Placement is checked on each shard directly.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import routing  # noqa: E402
from routing import check, log, scalar, simple  # noqa: E402
from second_proxy import run_second_proxy  # noqa: E402

TABLE = "reload_items"
INSERT = f"INSERT INTO {TABLE} (k, v, batch) VALUES (%s, %s, %s)"


def with_table(text):
    """The configuration with reload_items sharded by k (bigint)."""
    check("\ntables:\n" in text, "the cluster's configuration has no tables: list")
    entry = f"  - name: {TABLE}\n    shard_key: k\n    key_type: bigint\n"
    return text.replace("\ntables:\n", "\ntables:\n" + entry, 1)


def write_batch(p, batch, keys):
    """Half of the keys through the prepared INSERT, half as simple queries."""
    half = len(keys) // 2
    for k in keys[:half]:
        p.execute(INSERT, (k, k % 97, batch), prepare=True)
    for k in keys[half:]:
        simple(p, INSERT % (k, k % 97, batch))


def placement(c, batch):
    """{shard: sorted keys of the batch on it}, read on the shards directly."""
    out = {}
    for n in c.names:
        with c.shard(n) as s:
            out[n] = sorted(r[0] for r in s.execute(
                f"SELECT k FROM {TABLE} WHERE batch = %s", (batch,)))
    return out


def test_reload(c, px, keys, marker):
    with routing.connect(px.dsn) as p:
        everything = sorted(k for ks in keys.values() for k in ks)
        log("-- reload_items not configured: every row on the default shard")
        write_batch(p, 1, everything)
        want = {n: (everything if n == c.default else []) for n in c.names}
        got = placement(c, 1)
        check(got == want, f"before RELOAD: rows by shard {got}, want all on {c.default}")

        log("-- RELOAD with reload_items sharded by k")
        px.write_config(with_table)
        px.admin("RELOAD")
        # The marker row lives only on its owner, which is not the default shard: the
        # session counts it once its worker routes by the new table map.
        routing.pgtest.wait_until(
            "the session to route reload_items by k after RELOAD",
            lambda: scalar(p, f"SELECT count(*) FROM {TABLE} WHERE k = {marker}") == 1)
        write_batch(p, 2, everything)
        got = placement(c, 2)
        want = {n: sorted(keys[n]) for n in c.names}
        check(got == want, f"after RELOAD: rows by shard {got}, want each on its owner {want}")
        for n, ks in keys.items():
            for k in ks:
                n_rows = scalar(p, f"SELECT count(*) FROM {TABLE} WHERE k = {k} AND batch = 2")
                check(n_rows == 1, f"count of key {k} (owner {n}) through pgring: {n_rows}, "
                                   "want 1")

        log("-- RELOAD without reload_items: the default shard again")
        px.write_config(lambda text: text)
        px.admin("RELOAD")
        routing.pgtest.wait_until(
            "the session to send reload_items to the default shard after RELOAD",
            lambda: scalar(p, f"SELECT count(*) FROM {TABLE} WHERE k = {marker}") == 0)
        write_batch(p, 3, everything)
        want = {n: (everything if n == c.default else []) for n in c.names}
        got = placement(c, 3)
        check(got == want, f"after the second RELOAD: rows by shard {got}, want all on "
                           f"{c.default}")


def test(env):
    c = routing.Cluster(env)
    for n in c.names:
        with c.shard(n) as s:
            s.execute(f"DROP TABLE IF EXISTS {TABLE}")
            s.execute(f"CREATE TABLE {TABLE} (k bigint NOT NULL, v int NOT NULL, "
                      "batch int NOT NULL)")
    keys = c.keys_by_shard(range(1, 2000), 8)
    other = next(n for n in c.names if n != c.default)
    marker = c.keys_by_shard(range(10 ** 6, 10 ** 6 + 2000), 1)[other][0]
    with c.shard(other) as s:
        s.execute(f"INSERT INTO {TABLE} (k, v, batch) VALUES (%s, 0, 0)", (marker,))
    run_second_proxy(env, "reload", lambda px: test_reload(c, px, keys, marker))
    for n in c.names:
        with c.shard(n) as s:
            s.execute(f"DROP TABLE {TABLE}")


if __name__ == "__main__":
    routing.pgtest.run_main(test)
