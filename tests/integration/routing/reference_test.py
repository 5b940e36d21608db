#!/usr/bin/python3
"""The reference table plans: writes through pgring reach every shard, reads see one copy.

Checks on every shard directly after INSERT (multi-row literal and with parameters),
UPDATE, DELETE, COPY FROM STDIN, and INSERT ... ON CONFLICT through pgring: each shard
holds exactly the same rows. Through pgring, SELECT and count(*) over plans return every
row once (not once per shard), and a join of the sharded tenants (put on their owners
directly) with plans returns each tenant once with its plan. A write into plans that
reads a sharded table is refused with 0A000 and writes nothing.
"""

import decimal
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import routing  # noqa: E402
from routing import check_rows, log, simple  # noqa: E402

D = decimal.Decimal


def check_copies(c, want, what):
    for n in c.names:
        got = c.fetch_direct(n, "SELECT id, name, price FROM plans ORDER BY id")
        check_rows(f"{what}: plans on {n}", got, want)


def test(env):
    c = routing.Cluster(env)
    c.create_tables(("plans", "tenants"))
    plans = {1: ("free", D("0.00")), 2: ("pro", D("10.00")), 3: ("team", D("25.50"))}

    def want():
        return [(i, n, p) for i, (n, p) in sorted(plans.items())]

    with c.proxy() as p:
        log("-- INSERT, UPDATE, DELETE of plans reach every shard")
        simple(p, "INSERT INTO plans (id, name, price) VALUES (1, 'free', 0), (2, 'pro', 10), "
                  "(3, 'team', 25.50)")
        check_copies(c, want(), "after a multi-row INSERT")
        routing.extended(p, "INSERT INTO plans (id, name, price) VALUES (%t, %t, %t)",
                         (4, "enterprise 'quoted'", D("99.99")))
        plans[4] = ("enterprise 'quoted'", D("99.99"))
        check_copies(c, want(), "after an INSERT with parameters")
        simple(p, "UPDATE plans SET price = price * 2 WHERE id = 2")
        plans[2] = ("pro", D("20.00"))
        routing.extended(p, "UPDATE plans SET name = %t WHERE name = %t", ("team+", "team"))
        plans[3] = ("team+", D("25.50"))
        check_copies(c, want(), "after UPDATE")
        simple(p, "DELETE FROM plans WHERE id = 1")
        del plans[1]
        check_copies(c, want(), "after DELETE")
        simple(p, "INSERT INTO plans VALUES (2, 'pro', 0) ON CONFLICT (id) DO UPDATE "
                  "SET name = 'pro2'")
        plans[2] = ("pro2", D("20.00"))
        check_copies(c, want(), "after INSERT ... ON CONFLICT DO UPDATE")
        with p.cursor() as cur:
            with cur.copy("COPY plans (id, name, price) FROM STDIN") as cp:
                for i in range(10, 20):
                    cp.write_row((i, f"copied {i}", D(i)))
        for i in range(10, 20):
            plans[i] = (f"copied {i}", D(f"{i}.00"))
        check_copies(c, want(), "after COPY FROM STDIN")

        log("-- reads of plans see one copy")
        check_rows("SELECT * FROM plans ORDER BY id through pgring",
                   simple(p, "SELECT id, name, price FROM plans ORDER BY id").fetchall(), want())
        check_rows("SELECT count(*) FROM plans through pgring",
                   simple(p, "SELECT count(*) FROM plans").fetchall(), [(len(plans),)])
        check_rows("SELECT ... FROM plans WHERE id = $1 (binary) through pgring",
                   routing.extended(p, "SELECT id, name, price FROM plans WHERE id = %b", (4,),
                                    binary=True).fetchall(), [(4, *plans[4])])

        log("-- a join of the sharded tenants with plans")
        tenants = [(k, f"t{k}", [2, 3, 4, 10][k % 4]) for k in range(1, 201)]
        c.load_direct("tenants", ("tenant_id", "name", "plan"), tenants)
        got = simple(p, "SELECT t.tenant_id, t.name, pl.name FROM tenants t JOIN plans pl "
                        "ON pl.id = t.plan ORDER BY t.tenant_id").fetchall()
        check_rows("tenants JOIN plans through pgring", got,
                   [(k, n, plans[pl][0]) for k, n, pl in tenants])

        log("-- a write into plans reading a sharded table is refused")
        routing.expect_error(p, "INSERT INTO plans (id, name, price) SELECT tenant_id + 1000, "
                                "name, 0 FROM tenants WHERE plan = 2", sqlstate="0A000")
        check_copies(c, want(), "after the refused INSERT ... SELECT FROM tenants")
    c.drop_tables(("plans", "tenants"))


if __name__ == "__main__":
    routing.pgtest.run_main(test)
