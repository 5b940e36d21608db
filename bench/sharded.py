"""The multi-tenant schema of the sharded scenarios: tables, data, pgbench scripts.

The same rows go into one unsharded database (the bench cluster's shard, reached directly
and through PgBouncer) and into the shards of a second cluster behind pgring, each row on
the shard that owns its tenant_id. Placement is computed from pgring's ring (`SHOW RING`
on its admin database; the token formula of docs/sharding.md computed by PostgreSQL when
the command is not available) and PostgreSQL's own hashint8extended(tenant_id, 0), so the
data is loaded per shard with generate_series and does not depend on pgring routing it.
"""

import bisect
import os

from harness import BenchError, client_env, log, run

SCHEMA = """
DROP TABLE IF EXISTS order_items, orders, users, tenants, plans;
CREATE TABLE plans (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL);
CREATE TABLE tenants (tenant_id bigint PRIMARY KEY, name text NOT NULL, plan int NOT NULL,
                      created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE users (tenant_id bigint NOT NULL, user_id bigint NOT NULL, email text NOT NULL,
                    PRIMARY KEY (tenant_id, user_id));
CREATE TABLE orders (tenant_id bigint NOT NULL, order_id bigint NOT NULL,
                     user_id bigint NOT NULL, status text NOT NULL,
                     amount numeric(12,2) NOT NULL, created_at timestamptz NOT NULL,
                     PRIMARY KEY (tenant_id, order_id));
CREATE TABLE order_items (tenant_id bigint NOT NULL, order_id bigint NOT NULL,
                          sku text NOT NULL, price numeric(12,2) NOT NULL,
                          created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX order_items_order ON order_items (tenant_id, order_id);
"""

# {src} yields the tenant ids of the database being loaded, as column t.
DATA = """
INSERT INTO plans VALUES (1, 'free', 0), (2, 'pro', 10), (3, 'team', 25), (4, 'enterprise', 99);
INSERT INTO tenants (tenant_id, name, plan) SELECT t, 'tenant-' || t, t % 4 + 1 FROM {src};
INSERT INTO users SELECT t, u, 'user' || u || '@tenant' || t || '.example'
  FROM {src}, generate_series(1, 5) AS u;
INSERT INTO orders SELECT t, o, o % 5 + 1, (ARRAY['new', 'paid', 'shipped'])[o % 3 + 1],
       ((t * 31 + o * 17) % 100000) / 100.0, timestamptz '2024-01-01' + o * interval '1 hour'
  FROM {src}, generate_series(1, {orders}) AS o;
INSERT INTO order_items (tenant_id, order_id, sku, price)
  SELECT tenant_id, order_id, 'sku-' || order_id % 50, amount FROM orders;
VACUUM ANALYZE plans, tenants, users, orders, order_items;
"""

# Keyed reads and a single-shard write transaction for one random tenant; literal values
# (pgbench -M simple substitutes the variables into the text).
MIXED = r"""\set tenant random(1, :ntenants)
\set order random(1, :norders)
\set delta random(1, 500)
SELECT order_id, status, amount FROM orders WHERE tenant_id = :tenant ORDER BY order_id DESC LIMIT 10;
SELECT t.name, p.name, count(*) FROM tenants t JOIN plans p ON p.id = t.plan JOIN users u ON u.tenant_id = t.tenant_id WHERE t.tenant_id = :tenant GROUP BY t.name, p.name;
BEGIN;
UPDATE orders SET amount = amount + :delta / 100.0, status = 'paid' WHERE tenant_id = :tenant AND order_id = :order;
INSERT INTO order_items (tenant_id, order_id, sku, price) VALUES (:tenant, :order, 'sku-' || :delta, :delta / 100.0);
COMMIT;
"""

# A keyless read: every shard answers, pgring adds up the counts and sums.
SCATTER = "SELECT count(*), sum(amount) FROM orders;\n"

SCRIPTS = {"sharded-mixed": ("sharded_mixed.sql", MIXED),
           "sharded-scatter": ("sharded_scatter.sql", SCATTER)}


def write_scripts(workdir):
    """Writes the pgbench scripts; returns {scenario: path}."""
    os.makedirs(workdir, exist_ok=True)
    paths = {}
    for name, (filename, text) in SCRIPTS.items():
        path = os.path.join(workdir, filename)
        with open(path, "w") as f:
            f.write(text)
        paths[name] = path
    return paths


def psql(dsn, sql):
    return run(["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn],
               input_text=sql, timeout=600).stdout.strip()


def ring(cluster):
    """(sorted tokens, shard of each) of pgring's ring for cluster."""
    try:
        out = run(["psql", "-X", "-A", "-t", "-F", "\t", "-d", cluster.env["PGRING_ADMIN_DSN"],
                   "-c", "SHOW RING"], timeout=30).stdout
        rows = [line.split("\t") for line in out.splitlines() if line.strip()]
        pairs = sorted((int(r[0]), r[1]) for r in rows)
        if pairs:
            log(f"placement from SHOW RING ({len(pairs)} tokens)")
            return [p[0] for p in pairs], [p[1] for p in pairs]
    except (BenchError, ValueError, IndexError) as e:
        log(f"SHOW RING unavailable ({str(e).splitlines()[0][:120]}); placement from the "
            "token formula of docs/sharding.md")
    text = open(cluster.env["PGRING_CONFIG"]).read()
    vnodes = int(text.split("vnodes:", 1)[1].split()[0])
    names = [f"shard{i}" for i in range(cluster.shards)]
    out = psql(cluster.shard_dsn(0),
               "SELECT DISTINCT ON (token) token || E'\\t' || name FROM ("
               " SELECT hashtextextended(n || '#' || v, 0) AS token, n AS name"
               f" FROM unnest(ARRAY[{', '.join(repr(n) for n in names)}]) AS n,"
               f" generate_series(0, {vnodes - 1}) AS v) x ORDER BY token, name COLLATE \"C\"")
    rows = [line.split("\t") for line in out.splitlines()]
    return [int(r[0]) for r in rows], [r[1] for r in rows]


def load_unsharded(cluster, tenants, orders):
    log(f"loading {tenants} tenants x {orders} orders into the unsharded database")
    dsn = cluster.shard_dsn(0)
    psql(dsn, SCHEMA + DATA.format(src=f"generate_series(1, {tenants}) AS t", orders=orders))
    return int(psql(dsn, "SELECT count(*) FROM orders"))


def load_sharded(cluster, tenants, orders):
    """Loads every shard of cluster with the tenants it owns; returns {shard: orders}."""
    tokens, shards = ring(cluster)
    out = psql(cluster.shard_dsn(0), "SELECT t || E'\\t' || hashint8extended(t, 0) FROM "
                                     f"generate_series(1, {tenants}) AS t")
    owned = {f"shard{i}": [] for i in range(cluster.shards)}
    for line in out.splitlines():
        t, h = (int(v) for v in line.split("\t"))
        i = bisect.bisect_left(tokens, h)
        owned[shards[i if i < len(tokens) else 0]].append(t)
    counts = {}
    for i in range(cluster.shards):
        name = f"shard{i}"
        ids = owned.get(name, [])
        log(f"loading {len(ids)} tenants x {orders} orders into {name}")
        src = f"unnest('{{{','.join(map(str, ids))}}}'::bigint[]) AS t"
        dsn = cluster.shard_dsn(i)
        psql(dsn, SCHEMA + DATA.format(src=src, orders=orders))
        counts[name] = int(psql(dsn, "SELECT count(*) FROM orders"))
    return counts


def check_routing(unsharded, cluster, pgring_port, tenants):
    """Checks that pgring in front of cluster answers like the unsharded database: the
    keyless count and sum, and the orders of the first and last tenant. Returns None or
    what differs."""
    # One statement a line: psql sends each as its own Query.
    query = ("SELECT count(*), sum(amount) FROM orders;\n"
             "SELECT count(*) FROM orders WHERE tenant_id = 1;\n"
             f"SELECT count(*) FROM orders WHERE tenant_id = {tenants};\n")
    want = psql(unsharded.shard_dsn(0), query)
    proc = run(["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"],
               env=client_env(pgring_port, cluster.app_password), check=False, timeout=60,
               input_text=query)
    got = proc.stdout.strip()
    if proc.returncode != 0:
        return f"check query through pgring failed: {proc.stderr.strip()[:200]}"
    if got.split() != want.split():
        return (f"pgring answers {got.split()} to the check queries, the unsharded database "
                f"{want.split()}: it does not route by tenant_id or merge over the shards")
    return None
