"""Shared helpers of pgring's routing tests (tests/integration/routing/).

Every routing test writes or reads through pgring and checks the result on the shards
directly. Where a row belongs is computed here from the ring pgring reports (`SHOW RING`
on the admin database) and from PostgreSQL's own `hashint8extended(k, 0)`, run on a shard:
the expected placement never comes from pgring's code.

The tables are the demo schema of the local cluster's configuration (tenants, users,
orders, order_items sharded by tenant_id bigint; plans a reference table). Each test
creates the tables it needs through pgring at its start (DDL runs on every shard) and
drops them at its end; the integration tests hold one resource lock, so no two tests use
the tables at the same time.

Only the Python standard library and psycopg 3 (Debian python3-psycopg) are used.
"""

import bisect
import decimal
import os
import re
import subprocess
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "clients"))
import pgtest  # noqa: E402
from pgtest import check, fail, log  # noqa: E402,F401

import psycopg  # noqa: E402

INT64_MIN = -(2 ** 63)
INT64_MAX = 2 ** 63 - 1

# The demo schema. order_items.tenant_id may be NULL on purpose: a row with a NULL shard
# key must be refused by pgring itself (23502), not by a constraint of the shard.
SCHEMA = {
    "plans": "CREATE TABLE plans (id int PRIMARY KEY, name text NOT NULL, "
             "price numeric(10,2) NOT NULL)",
    "tenants": "CREATE TABLE tenants (tenant_id bigint PRIMARY KEY, name text NOT NULL, "
               "plan int, created_at timestamptz NOT NULL DEFAULT now())",
    "users": "CREATE TABLE users (tenant_id bigint NOT NULL, user_id bigint NOT NULL, "
             "email text, PRIMARY KEY (tenant_id, user_id))",
    "orders": "CREATE TABLE orders (tenant_id bigint NOT NULL, order_id bigint NOT NULL, "
              "user_id bigint, status text, amount numeric(12,2), qty int, note text, "
              "created_at timestamptz, PRIMARY KEY (tenant_id, order_id))",
    "order_items": "CREATE TABLE order_items (tenant_id bigint, order_id bigint NOT NULL, "
                   "item_no int NOT NULL, sku text, price numeric(12,2))",
}
DEMO_TABLES = tuple(SCHEMA)
ORDER_COLUMNS = ("tenant_id", "order_id", "user_id", "status", "amount", "qty", "note",
                 "created_at")


# ---------------------------------------------------------------------------------------
# Connections

def connect(dsn, **kw):
    kw.setdefault("autocommit", True)
    kw.setdefault("connect_timeout", 10)
    return psycopg.connect(dsn, **kw)


def simple(conn, sql):
    """Runs sql with the simple query protocol (one Query message, no parameters):
    psycopg uses PQsendQuery for a text cursor without parameters and without a prepared
    statement. Returns the cursor."""
    return conn.cursor().execute(sql, prepare=False)


def scalar(conn, sql):
    """The first value of the first row of sql, run with the simple query protocol."""
    return simple(conn, sql).fetchone()[0]


def extended(conn, sql, params, binary=False):
    """Runs sql with the extended protocol and an unnamed statement (Parse/Bind/Execute);
    binary=True asks for binary results. Use %t / %b in sql for text / binary parameters.
    Returns the cursor. (psycopg sends a statement without parameters and with text
    results as a simple Query: use extended_noparams for that.)"""
    check(params, "extended() needs parameters; use extended_noparams()")
    return conn.cursor(binary=binary).execute(sql, params, prepare=False)


def extended_noparams(conn, sql):
    """Runs sql with the extended protocol without parameters (libpq PQexecParams);
    returns the PGresult, raises the psycopg error of an ErrorResponse."""
    res = conn.pgconn.exec_params(sql.encode(), [])
    if res.status not in (psycopg.pq.ExecStatus.COMMAND_OK, psycopg.pq.ExecStatus.TUPLES_OK):
        raise psycopg.errors.error_from_result(res)
    return res


def psql(dsn, script):
    """Runs script with psql (libpq, simple query protocol, one statement at a time) and
    returns its unaligned, tuples-only output; fails the test on an error."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGPASSFILE"] = "/dev/null"
    env["PGCONNECT_TIMEOUT"] = "10"
    proc = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", dsn,
                           "-f", "-"], input=script, capture_output=True, text=True, env=env,
                          timeout=300)
    if proc.returncode != 0:
        fail(f"psql through {urllib.parse.urlsplit(dsn).port} failed (exit {proc.returncode}): "
             f"{proc.stderr.strip()[:2000]}")
    return proc.stdout


# ---------------------------------------------------------------------------------------
# The ring and the shards

class Ring:
    """A ring as pgring reports it: sorted tokens and the shard of each."""

    def __init__(self, tokens, shards, version, source):
        self.tokens = tokens
        self.shards = shards
        self.version = version
        self.source = source

    def owner_of_hash(self, h):
        """The shard of the first token >= h, wrapping to the smallest token."""
        i = bisect.bisect_left(self.tokens, h)
        return self.shards[i if i < len(self.tokens) else 0]


def _config_text(env):
    with open(env["PGRING_CONFIG"], encoding="utf-8") as f:
        return f.read()


def config_vnodes(env):
    m = re.search(r"^ring:\n(?:[ \t]+.*\n)*?[ \t]+vnodes:[ \t]*(\d+)", _config_text(env), re.M)
    if not m:
        fail(f"no ring.vnodes in {env['PGRING_CONFIG']}")
    return int(m.group(1))


def config_default_shard(env):
    m = re.search(r"^default_shard:[ \t]*['\"]?([\w.-]+)", _config_text(env), re.M)
    return m.group(1) if m else None


def formula_ring(env, names, vnodes):
    """The ring the token formula of docs/sharding.md gives, computed by PostgreSQL:
    token(name, i) = hashtextextended(name || '#' || i, 0); on equal tokens the name that
    sorts first (COLLATE "C") keeps the token."""
    with connect(env["SHARD_DSN_LIST"][0]) as c:
        rows = c.execute(
            "SELECT DISTINCT ON (token) token, name FROM ("
            "  SELECT hashtextextended(n || '#' || v, 0) AS token, n AS name"
            "    FROM unnest(%s::text[]) AS n, generate_series(0, %s - 1) AS v) t"
            " ORDER BY token, name COLLATE \"C\"", (list(names), vnodes)).fetchall()
    return [r[0] for r in rows], [r[1] for r in rows]


def show_ring(env):
    """Returns (tokens, shards, versions) of SHOW RING; raises pgtest.TestFailure when the
    admin command fails."""
    cols, rows = pgtest.admin_query(env, "SHOW RING")
    for want in ("token", "shard", "ring_version"):
        check(want in cols, f"SHOW RING has columns {cols}, no {want!r}")
    return ([int(r["token"]) for r in rows], [r["shard"] for r in rows],
            sorted({int(r["ring_version"]) for r in rows}))


def shard_dsns(env):
    """Maps each shard name to its DSN (SHARD_DSNS), matching SHOW SHARDS' ports."""
    by_port = {urllib.parse.urlsplit(d).port: d for d in env["SHARD_DSN_LIST"]}
    try:
        _, rows = pgtest.admin_query(env, "SHOW SHARDS")
        out = {r["name"]: by_port[int(r["port"])] for r in rows if int(r["port"]) in by_port}
        if len(out) == len(env["SHARD_DSN_LIST"]):
            return out
    except (pgtest.TestFailure, KeyError, ValueError):
        pass
    # scripts/cluster names shard i "shard<i>" and lists SHARD_DSNS in that order.
    return {f"shard{i}": d for i, d in enumerate(env["SHARD_DSN_LIST"])}


class Cluster:
    """The test cluster: shard names, their DSNs, pgring's DSN and the ring."""

    def __init__(self, env):
        self.env = env
        self.proxy_dsn = env["PGRING_DSN"]
        self.dsn = shard_dsns(env)
        self.names = sorted(self.dsn)
        check(len(self.names) >= 2, f"routing tests need at least 2 shards, the cluster has "
                                    f"{len(self.names)}")
        self.default = config_default_shard(env) or self.names[0]
        try:
            tokens, shards, versions = show_ring(env)
        except pgtest.TestFailure as e:
            # Until the admin console has SHOW RING: the ring the configuration gives.
            tokens, shards = formula_ring(env, self.names, config_vnodes(env))
            self.ring = Ring(tokens, shards, None, "token formula")
            log(f"   note: SHOW RING failed ({str(e).splitlines()[0]}); expected shards come "
                "from the token formula of docs/sharding.md computed by PostgreSQL")
        else:
            check(tokens, "SHOW RING returned no rows")
            check(len(versions) == 1, f"SHOW RING mixes ring versions {versions}")
            self.ring = Ring(tokens, shards, versions[0], "SHOW RING")
        check(self.ring.tokens == sorted(self.ring.tokens),
              "SHOW RING rows are not sorted by token")
        unknown = set(self.ring.shards) - set(self.names)
        check(not unknown, f"the ring names shards {sorted(unknown)} that SHOW SHARDS / "
                           f"SHARD_DSNS do not have")
        self._hash = {}

    def proxy(self, **kw):
        return connect(self.proxy_dsn, **kw)

    def shard(self, name, **kw):
        return connect(self.dsn[name], **kw)

    def others(self, name):
        return [n for n in self.names if n != name]

    def hashes(self, keys):
        """hashint8extended(k, 0) of each key, computed by PostgreSQL on a shard."""
        missing = sorted({k for k in keys if k not in self._hash})
        if missing:
            with self.shard(self.names[0]) as c:
                for i in range(0, len(missing), 50000):
                    part = missing[i:i + 50000]
                    for k, h in c.execute("SELECT k, hashint8extended(k, 0) FROM "
                                          "unnest(%s::bigint[]) AS k", (part,)):
                        self._hash[k] = h
        return {k: self._hash[k] for k in keys}

    def owners(self, keys):
        """The shard that owns each key."""
        return {k: self.ring.owner_of_hash(h) for k, h in self.hashes(keys).items()}

    def owner(self, key):
        return self.owners([key])[key]

    def keys_by_shard(self, candidates, per_shard):
        """per_shard keys of each shard, taken in order from candidates."""
        out = {n: [] for n in self.names}
        for k, s in self.owners(list(candidates)).items():
            if len(out[s]) < per_shard:
                out[s].append(k)
        for n, ks in out.items():
            check(len(ks) == per_shard, f"only {len(ks)} of the candidate keys belong to {n}")
        return out

    def split(self, rows, key_index=0):
        """Groups rows by the owner of row[key_index]."""
        owners = self.owners([r[key_index] for r in rows])
        out = {n: [] for n in self.names}
        for r in rows:
            out[owners[r[key_index]]].append(r)
        return out

    # -- schema --------------------------------------------------------------------------

    def create_tables(self, tables=DEMO_TABLES):
        """Drops and creates tables through pgring, then checks that every shard has them."""
        with self.proxy() as c:
            for t in tables:
                simple(c, f"DROP TABLE IF EXISTS {t}")
                simple(c, SCHEMA[t])
        for n in self.names:
            with self.shard(n) as c:
                have = {r[0] for r in c.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename = ANY(%s)", (list(tables),))}
            missing = [t for t in tables if t not in have]
            check(not missing, f"setup: CREATE TABLE {', '.join(missing)} through pgring did "
                               f"not reach {n} (DDL must run on every shard)")

    def drop_tables(self, tables=DEMO_TABLES):
        with self.proxy() as c:
            for t in tables:
                simple(c, f"DROP TABLE IF EXISTS {t}")
        # Whatever pgring did, leave no demo table behind for the next test.
        for n in self.names:
            with self.shard(n) as c:
                for t in tables:
                    c.execute(f"DROP TABLE IF EXISTS {t}")

    # -- data on the shards directly -----------------------------------------------------

    def load_direct(self, table, columns, rows, key_index=0):
        """Writes each row on the shard that owns row[key_index], with COPY, directly.
        Returns {shard: rows written there}."""
        parts = self.split(rows, key_index)
        for n, part in parts.items():
            if not part:
                continue
            with self.shard(n) as c, c.cursor() as cur:
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
                    for r in part:
                        cp.write_row(r)
        return parts

    def fetch_direct(self, name, sql, params=None):
        with self.shard(name) as c:
            return c.execute(sql, params).fetchall()

    def count_direct(self, table, where="true", params=None):
        """{shard: count(*) of table WHERE where}, read on each shard directly."""
        return {n: self.fetch_direct(n, f"SELECT count(*) FROM {table} WHERE {where}",
                                     params)[0][0] for n in self.names}

    def misplaced(self, name, table, key="tenant_id", limit=5):
        """Checks in SQL, on shard `name` directly, that every row of table belongs there:
        the owner of each key is computed from the ring's tokens and hashint8extended.
        Returns (rows on the wrong shard, examples as (key, rows, owner))."""
        sql = f"""
            WITH ring(token, shard) AS (
                   SELECT * FROM unnest(%(tokens)s::bigint[], %(shards)s::text[])),
                 keys AS (SELECT {key} AS k, count(*) AS n FROM {table} GROUP BY {key}),
                 owned AS (
                   SELECT k, n, coalesce(
                       (SELECT shard FROM ring WHERE token >= hashint8extended(k, 0)
                         ORDER BY token LIMIT 1),
                       (SELECT shard FROM ring ORDER BY token LIMIT 1)) AS owner
                     FROM keys)
            SELECT k, n, owner FROM owned
             WHERE k IS NULL OR owner IS DISTINCT FROM %(me)s ORDER BY k"""
        rows = self.fetch_direct(name, sql, {"tokens": self.ring.tokens,
                                             "shards": self.ring.shards, "me": name})
        return sum(r[1] for r in rows), rows[:limit]

    def check_placement(self, table, what, key="tenant_id"):
        for n in self.names:
            bad, examples = self.misplaced(n, table, key)
            check(bad == 0, f"{what}: {bad} row(s) of {table} on {n} belong to another shard "
                            f"(key, rows, owner): {examples}")


# ---------------------------------------------------------------------------------------
# Comparing results

def canon_value(v):
    # Decimal's str keeps the scale, so 1.50 and 1.5 differ as PostgreSQL prints them.
    if isinstance(v, decimal.Decimal):
        return ("numeric", str(v))
    return v


def canon(rows):
    return [tuple(canon_value(v) for v in r) for r in rows]


def _sort_key(row):
    return tuple((0, "") if v is None else (1, repr(type(v)), v) for v in row)


def sorted_rows(rows):
    return sorted(canon(rows), key=_sort_key)


def describe_diff(got, want, limit=3):
    """A short text saying how two row lists differ."""
    if len(got) != len(want):
        try:
            gs, ws = set(got), set(want)
            extra = [g for g in got if g not in ws][:limit]
            missing = [w for w in want if w not in gs][:limit]
        except TypeError:  # unhashable values (lists)
            gs, ws = set(map(repr, got)), set(map(repr, want))
            extra = [g for g in got if repr(g) not in ws][:limit]
            missing = [w for w in want if repr(w) not in gs][:limit]
        return f"{len(got)} rows, want {len(want)}; unexpected {extra}; missing {missing}"
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return f"first difference at row {i}: got {g!r}, want {w!r}"
    return "equal"


def check_rows(what, got, want, ordered=True):
    g, w = (canon(got), canon(want)) if ordered else (sorted_rows(got), sorted_rows(want))
    check(g == w, f"{what}: {describe_diff(g, w)}")


def expect_error(conn, sql, params=None, sqlstate="0A000", what=None, binary=False):
    """Runs sql through conn and checks that it fails with sqlstate and a message.
    Returns the error."""
    what = what or sql
    try:
        if params is None:
            simple(conn, sql)
        else:
            extended(conn, sql, params, binary)
    except psycopg.Error as e:
        check(e.sqlstate == sqlstate,
              f"{what}: SQLSTATE {e.sqlstate} ({str(e).strip()[:300]}), want {sqlstate}")
        msg = (e.diag.message_primary or "").strip()
        check(msg, f"{what}: error {e.sqlstate} without a message")
        return e
    fail(f"{what}: succeeded, want an error with SQLSTATE {sqlstate}")
