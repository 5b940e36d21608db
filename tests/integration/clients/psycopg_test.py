#!/usr/bin/python3
"""psycopg 3 through pgring (transaction pooling), every result checked on shard0.

Covers: server-side parameter binding; binary parameters and binary results; named
prepared statements (prepare_threshold=0) over many transactions and connections while
another connection keeps the server connections moving, so that pgring must prepare
them again on other server connections; pipeline mode, including an error inside a
pipeline; executemany; COPY FROM STDIN and COPY TO STDOUT in text and binary format;
commit, rollback, savepoints and errors inside transactions; SET search_path and SET
application_name that persist across transactions while other clients share the server
connections, do not leak to those clients, and are undone by SET LOCAL/RESET semantics.
"""

import datetime
import decimal
import hashlib
import os
import sys
import threading
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgtest  # noqa: E402
from pgtest import check, fail, log  # noqa: E402

import psycopg  # noqa: E402

PREFIX = "clients_psycopg"


def direct(env):
    return psycopg.connect(env["SHARD_DSN_LIST"][0], autocommit=True)


def proxy(env, **kw):
    kw.setdefault("connect_timeout", 10)
    return psycopg.connect(env["PGRING_DSN"], **kw)


def shard0_scalar(env, query, params=None):
    with direct(env) as c:
        return c.execute(query, params).fetchone()[0]


def run_threads(what, fns, timeout=120):
    """Runs each fn in a thread; fails if one raises or does not finish in time."""
    errors = []

    def wrap(fn):
        def target():
            try:
                fn()
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(f"{type(e).__name__}: {e}")
        return target

    threads = [threading.Thread(target=wrap(fn), daemon=True) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        if t.is_alive():
            fail(f"{what}: a thread did not finish within {timeout}s (hung)")
    if errors:
        fail(f"{what}: {len(errors)} thread(s) failed; first: {errors[0]}")


def setup_tables(env):
    with direct(env) as c:
        c.execute(f"DROP SCHEMA IF EXISTS {PREFIX}_sp CASCADE")
        for t in ("bind", "bin", "prep", "pipe", "many", "copy", "tx", "sp"):
            c.execute(f"DROP TABLE IF EXISTS {PREFIX}_{t}")
        c.execute(f"CREATE TABLE {PREFIX}_bind (id int PRIMARY KEY, name text, amount numeric, note text)")
        c.execute(f"CREATE TABLE {PREFIX}_bin (id int PRIMARY KEY, data bytea, big bigint, ts timestamptz, u uuid)")
        c.execute(f"CREATE TABLE {PREFIX}_prep (client int, seq int, pid int, PRIMARY KEY (client, seq))")
        c.execute(f"CREATE TABLE {PREFIX}_pipe (id int PRIMARY KEY, v text)")
        c.execute(f"CREATE TABLE {PREFIX}_many (id int PRIMARY KEY, v text)")
        c.execute(f"CREATE TABLE {PREFIX}_copy (id int PRIMARY KEY, name text, data bytea, amount numeric(12,2))")
        c.execute(f"CREATE TABLE {PREFIX}_tx (id int PRIMARY KEY, v text)")
        # Same table name in public and in the schema: search_path decides which one an
        # unqualified INSERT reaches.
        c.execute(f"CREATE TABLE {PREFIX}_sp (marker text)")
        c.execute(f"CREATE SCHEMA {PREFIX}_sp")
        c.execute(f"CREATE TABLE {PREFIX}_sp.{PREFIX}_sp (marker text)")


def drop_tables(env):
    with direct(env) as c:
        c.execute(f"DROP SCHEMA IF EXISTS {PREFIX}_sp CASCADE")
        for t in ("bind", "bin", "prep", "pipe", "many", "copy", "tx", "sp"):
            c.execute(f"DROP TABLE IF EXISTS {PREFIX}_{t}")


# ---------------------------------------------------------------------------------------

def test_binding(env):
    log("-- server-side parameter binding")
    with proxy(env, autocommit=True) as conn:
        row = conn.execute("SELECT %s::int + %s::int, %s::text || 'x', %s::text IS NULL, %s::numeric * 2",
                           (40, 2, "a'b", None, decimal.Decimal("1.05"))).fetchone()
        check(row == (42, "a'bx", True, decimal.Decimal("2.10")), f"bound SELECT returned {row!r}")
        # One text parsed again as the unnamed statement with other parameter types: the
        # server must see each Parse's own types, as direct PostgreSQL does.
        values = (7, 7.5, 7, True, decimal.Decimal("7.5"), 70000, 7)
        probe = "SELECT pg_typeof(%s)::text"
        types = [conn.execute(probe, (v,)).fetchone()[0] for v in values]
        with direct(env) as c:
            want = [c.execute(probe, (v,)).fetchone()[0] for v in values]
        check(len(set(want)) >= 4 and types == want,
              f"pg_typeof of one re-parsed statement with other parameter types: {types!r}, "
              f"direct PostgreSQL: {want!r}")
        rows = [(i, f"name {i} 'q' \"d\" ünï", decimal.Decimal(i) / 4, None if i % 3 == 0 else f"n{i}")
                for i in range(1, 101)]
        with conn.cursor() as cur:
            for r in rows:
                cur.execute(f"INSERT INTO {PREFIX}_bind VALUES (%s, %s, %s, %s)", r)
                check(cur.rowcount == 1, f"INSERT rowcount {cur.rowcount}")
            got = cur.execute(f"SELECT * FROM {PREFIX}_bind WHERE id = ANY(%s) ORDER BY id",
                              ([5, 6, 7],)).fetchall()
            check(got == rows[4:7], f"SELECT = ANY(%s) through pgring returned {got!r}")
    with direct(env) as c:
        got = c.execute(f"SELECT * FROM {PREFIX}_bind ORDER BY id").fetchall()
    check(got == rows, f"rows on shard0 differ from the rows bound through pgring "
                       f"({len(got)} rows; first difference at "
                       f"{next((i for i, (a, b) in enumerate(zip(got, rows)) if a != b), None)})")


def test_binary(env):
    log("-- binary parameters and binary results")
    blob = bytes(range(256)) * 64
    big = -(2 ** 62) + 12345
    ts = datetime.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=datetime.timezone.utc)
    u = uuid.uuid4()
    num = decimal.Decimal("-12345678901234567890.000123")
    with proxy(env, autocommit=True) as conn:
        with conn.cursor(binary=True) as cur:
            cur.execute("SELECT %b::int8, %b::text, %b::bytea, %b::numeric, %b::timestamptz, %b::uuid, "
                        "%b::float8, %b::bool, %b::int4[]",
                        (big, "tëxt\u2603", blob, num, ts, u, 1.5, True, [1, None, 3]))
            res = cur.pgresult
            check(all(res.fformat(i) == 1 for i in range(res.nfields)),
                  f"result formats {[res.fformat(i) for i in range(res.nfields)]}, want all binary (1)")
            row = cur.fetchone()
            want = (big, "tëxt\u2603", blob, num, ts, u, 1.5, True, [1, None, 3])
            check(row == want, f"binary round trip through pgring: got {row!r}")
            for i in range(20):
                cur.execute(f"INSERT INTO {PREFIX}_bin VALUES (%b, %b, %b, %b, %b)",
                            (i, blob[i:] + bytes([i]), big + i, ts + datetime.timedelta(days=i), uuid.UUID(int=i)))
            got = cur.execute(f"SELECT id, data, big FROM {PREFIX}_bin WHERE id = %b", (7,)).fetchone()
            check(got == (7, blob[7:] + bytes([7]), big + 7), f"binary SELECT by key returned {got!r}")
            check(cur.pgresult.fformat(1) == 1, "bytea column not returned in binary format")
    with direct(env) as c:
        rows = c.execute(f"SELECT id, md5(data), big, ts, u FROM {PREFIX}_bin ORDER BY id").fetchall()
    check(len(rows) == 20, f"{len(rows)} rows on shard0, want 20")
    for i, (rid, md5, b, t, uu) in enumerate(rows):
        want = (i, hashlib.md5(blob[i:] + bytes([i])).hexdigest(), big + i,
                ts + datetime.timedelta(days=i), uuid.UUID(int=i))
        check((rid, md5, b, t, uu) == want, f"row {i} on shard0 is {(rid, md5, b, t, uu)!r}, want {want!r}")


def test_prepared(env):
    log("-- named prepared statements (prepare_threshold=0) over 4 connections, 200 transactions")
    clients, per_client = 4, 50
    stop = threading.Event()
    churn_count = [0]

    def churn():
        # Keeps server connections moving: short transactions that hold a server
        # connection for a moment, so that the 4 clients keep getting other ones.
        with proxy(env, autocommit=True) as c:
            while not stop.is_set():
                with c.transaction():
                    c.execute("SELECT pg_sleep(0.002)")
                churn_count[0] += 1

    def client(k):
        def run():
            with proxy(env, autocommit=True, prepare_threshold=0) as c:
                for i in range(per_client):
                    with c.transaction():
                        c.execute(f"INSERT INTO {PREFIX}_prep (client, seq, pid) VALUES (%s, %s, pg_backend_pid())",
                                  (k, i))
                        # A statement text of its own per client, under the same
                        # psycopg-generated statement name on every connection.
                        v, pid = c.execute(f"SELECT %s::int + {k * 1000}, pg_backend_pid()", (i,)).fetchone()
                        check(v == i + k * 1000, f"client {k} txn {i}: prepared SELECT returned {v}, "
                                                 f"want {i + k * 1000} (statement of another client?)")
        return run

    churner = threading.Thread(target=churn, daemon=True)
    churner.start()
    try:
        run_threads("prepared-statement clients", [client(k) for k in range(clients)])
    finally:
        stop.set()
        churner.join(30)
    with direct(env) as c:
        n, distinct = c.execute(f"SELECT count(*), count(DISTINCT (client, seq)) FROM {PREFIX}_prep").fetchone()
        per = c.execute(f"SELECT client, count(DISTINCT pid) FROM {PREFIX}_prep GROUP BY client ORDER BY client").fetchall()
    check(n == clients * per_client and distinct == n,
          f"shard0 has {n} rows ({distinct} distinct), want {clients * per_client}")
    log(f"   server connections used per client: {per}; churn transactions: {churn_count[0]}")
    check(sum(p for _, p in per) > clients,
          "every client ran on a single server connection, so re-preparing on other server "
          "connections was not exercised")


def test_pipeline(env):
    log("-- pipeline mode")
    with proxy(env, autocommit=True, prepare_threshold=0) as conn:
        with conn.pipeline():
            curs = [conn.execute("SELECT %s::int * 3, %s::text", (i, f"t{i}")) for i in range(50)]
            for i in range(100):
                conn.execute(f"INSERT INTO {PREFIX}_pipe VALUES (%s, %s)", (i, f"v{i}"))
            count_cur = conn.execute(f"SELECT count(*) FROM {PREFIX}_pipe")
        got = [c.fetchone() for c in curs]
        check(got == [(i * 3, f"t{i}") for i in range(50)], f"pipelined SELECT results: {got[:5]}...")
        check(count_cur.fetchone()[0] == 100, "count(*) at the end of the pipeline is not 100")

    # An error inside a pipeline: what PostgreSQL itself does, pgring must do too. The
    # same sequence runs on shard0 directly (ids + 1000) and through pgring.
    def error_sequence(conn, base):
        raised = None
        try:
            with conn.pipeline() as p:
                conn.execute(f"INSERT INTO {PREFIX}_pipe VALUES (%s, 'before sync')", (base + 1,))
                p.sync()
                conn.execute(f"INSERT INTO {PREFIX}_pipe VALUES (%s, 'same segment as the error')", (base + 2,))
                conn.execute("SELECT 1 / %s::int", (0,))
                conn.execute(f"INSERT INTO {PREFIX}_pipe VALUES (%s, 'after the error')", (base + 3,))
                p.sync()
                conn.execute(f"INSERT INTO {PREFIX}_pipe VALUES (%s, 'after the next sync')", (base + 4,))
        except psycopg.errors.DivisionByZero as e:
            raised = e
        check(raised is not None, "division by zero inside the pipeline did not raise")
        v = conn.execute("SELECT 'usable'").fetchone()[0]
        check(v == "usable", "connection unusable after a pipeline error")
        with direct(env) as c:
            return [r[0] - base for r in c.execute(
                f"SELECT id FROM {PREFIX}_pipe WHERE id BETWEEN %s AND %s ORDER BY id", (base + 1, base + 4))]

    with psycopg.connect(env["SHARD_DSN_LIST"][0], autocommit=True) as conn:
        want = error_sequence(conn, 1000)
    with proxy(env, autocommit=True) as conn:
        got = error_sequence(conn, 2000)
    check(got == want, f"rows left by a pipeline with an error: through pgring {got}, "
                       f"on PostgreSQL directly {want}")
    with proxy(env, autocommit=False) as conn:
        with conn.pipeline():
            conn.execute(f"INSERT INTO {PREFIX}_pipe VALUES (3000, 'in a transaction')")
            conn.execute(f"INSERT INTO {PREFIX}_pipe VALUES (3001, 'in a transaction')")
        check(shard0_scalar(env, f"SELECT count(*) FROM {PREFIX}_pipe WHERE id >= 3000") == 0,
              "uncommitted pipelined inserts are visible on shard0")
        conn.commit()
    check(shard0_scalar(env, f"SELECT count(*) FROM {PREFIX}_pipe WHERE id >= 3000") == 2,
          "committed pipelined inserts are not on shard0")


def test_executemany(env):
    log("-- executemany")
    rows = [(i, f"many {i}") for i in range(500)]
    with proxy(env, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {PREFIX}_many VALUES (%s, %s)", rows)
            check(cur.rowcount == 500, f"executemany rowcount {cur.rowcount}, want 500")
            cur.executemany(f"UPDATE {PREFIX}_many SET v = v || '!' WHERE id = %s RETURNING id",
                            [(i,) for i in range(0, 500, 50)], returning=True)
            ids = []
            while True:
                ids.append(cur.fetchone()[0])
                if not cur.nextset():
                    break
            check(ids == list(range(0, 500, 50)), f"executemany RETURNING ids {ids}")
    with direct(env) as c:
        got = c.execute(f"SELECT id, v FROM {PREFIX}_many ORDER BY id").fetchall()
    want = [(i, f"many {i}" + ("!" if i % 50 == 0 else "")) for i in range(500)]
    check(got == want, f"executemany rows on shard0 differ ({len(got)} rows)")


def test_copy(env):
    log("-- COPY FROM STDIN / TO STDOUT (text and binary)")
    rows = [(i, None if i % 17 == 0 else f"row {i}\t\\ \n ünï", bytes([i % 256]) * (i % 7), decimal.Decimal(i) / 100)
            for i in range(1, 2001)]
    with proxy(env, autocommit=True) as conn:
        with conn.cursor() as cur:
            with cur.copy(f"COPY {PREFIX}_copy (id, name, data, amount) FROM STDIN") as copy:
                for r in rows[:1000]:
                    copy.write_row(r)
            check(cur.rowcount == 1000, f"text COPY FROM rowcount {cur.rowcount}")
            with cur.copy(f"COPY {PREFIX}_copy (id, name, data, amount) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int4", "text", "bytea", "numeric"])
                for r in rows[1000:]:
                    copy.write_row(r)
            check(cur.rowcount == 1000, f"binary COPY FROM rowcount {cur.rowcount}")
            check(cur.execute("SELECT 'after copy'").fetchone()[0] == "after copy", "query after COPY failed")
    with direct(env) as c:
        got = c.execute(f"SELECT id, name, data, amount FROM {PREFIX}_copy ORDER BY id").fetchall()
    check(got == rows, f"COPY FROM rows on shard0 differ ({len(got)} rows; first difference at "
                       f"{next((i for i, (a, b) in enumerate(zip(got, rows)) if a != b), None)})")

    def copy_out(conn, fmt):
        with conn.cursor() as cur:
            q = f"COPY (SELECT id, name, data, amount FROM {PREFIX}_copy ORDER BY id) TO STDOUT"
            if fmt == "binary":
                q += " (FORMAT BINARY)"
            with cur.copy(q) as copy:
                if fmt == "binary":
                    copy.set_types(["int4", "text", "bytea", "numeric"])
                    return list(copy.rows())
                return b"".join(bytes(b) for b in copy)

    with proxy(env, autocommit=True) as conn:
        text_via, bin_via = copy_out(conn, "text"), copy_out(conn, "binary")
        check(conn.execute("SELECT 1").fetchone()[0] == 1, "query after COPY TO failed")
    with direct(env) as conn:
        text_direct = copy_out(conn, "text")
    check(text_via == text_direct, f"COPY TO STDOUT through pgring ({len(text_via)} bytes) differs "
                                   f"from shard0 directly ({len(text_direct)} bytes)")
    check(bin_via == rows, "binary COPY TO STDOUT through pgring returned other rows")

    # A COPY FROM that fails midway leaves nothing behind and the connection usable.
    with proxy(env, autocommit=True) as conn:
        try:
            with conn.cursor() as cur:
                with cur.copy(f"COPY {PREFIX}_copy (id, name) FROM STDIN") as copy:
                    copy.write_row((5001, "ok"))
                    copy.write_row((1, "duplicate key"))
            fail("COPY with a duplicate key succeeded")
        except psycopg.errors.UniqueViolation:
            pass
        check(conn.execute("SELECT 2").fetchone()[0] == 2, "connection unusable after a failed COPY")
    check(shard0_scalar(env, f"SELECT count(*) FROM {PREFIX}_copy WHERE id = 5001") == 0,
          "row of a failed COPY is on shard0")


def test_transactions(env):
    log("-- transactions: commit, rollback, savepoints, errors")
    count = f"SELECT count(*) FROM {PREFIX}_tx WHERE id = %s"
    with proxy(env) as conn:  # autocommit off: psycopg opens transactions itself
        conn.execute(f"INSERT INTO {PREFIX}_tx VALUES (1, 'rolled back')")
        check(shard0_scalar(env, count, (1,)) == 0, "uncommitted row visible on shard0")
        conn.rollback()
        check(shard0_scalar(env, count, (1,)) == 0, "rolled back row is on shard0")
        check(conn.execute(count, (1,)).fetchone()[0] == 0, "rolled back row visible through pgring")
        conn.rollback()

        conn.execute(f"INSERT INTO {PREFIX}_tx VALUES (2, 'committed')")
        conn.commit()
        check(shard0_scalar(env, count, (2,)) == 1, "committed row is not on shard0")

        with conn.transaction():
            conn.execute(f"INSERT INTO {PREFIX}_tx VALUES (3, 'outer')")
            with conn.transaction() as inner:
                conn.execute(f"INSERT INTO {PREFIX}_tx VALUES (4, 'inner, rolled back')")
                raise psycopg.Rollback(inner)
        check(shard0_scalar(env, count, (3,)) == 1 and shard0_scalar(env, count, (4,)) == 0,
              "savepoint rollback: want row 3 only on shard0")

        with conn.transaction() as tx:
            conn.execute(f"INSERT INTO {PREFIX}_tx VALUES (5, 'explicit Rollback')")
            raise psycopg.Rollback(tx)
        check(shard0_scalar(env, count, (5,)) == 0, "row 5 (psycopg.Rollback) is on shard0")

        try:
            conn.execute(f"INSERT INTO {PREFIX}_tx VALUES (6, 'before error')")
            conn.execute(f"INSERT INTO {PREFIX}_tx VALUES (2, 'duplicate')")
            fail("duplicate key insert succeeded")
        except psycopg.errors.UniqueViolation:
            pass
        check(conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR,
              f"transaction status after an error: {conn.info.transaction_status!r}, want INERROR")
        try:
            conn.execute("SELECT 1")
            fail("statement in a failed transaction succeeded")
        except psycopg.errors.InFailedSqlTransaction:
            pass
        conn.rollback()
        check(shard0_scalar(env, count, (6,)) == 0, "row 6 of a failed transaction is on shard0")
        check(conn.execute("SELECT 'ok'").fetchone()[0] == "ok", "connection unusable after rollback")
        conn.commit()
    with proxy(env, autocommit=True) as conn:
        conn.execute("BEGIN")
        conn.execute(f"INSERT INTO {PREFIX}_tx VALUES (7, 'SQL ROLLBACK')")
        conn.execute("ROLLBACK")
        conn.execute("START TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.execute(f"INSERT INTO {PREFIX}_tx VALUES (8, 'SQL COMMIT')")
        conn.execute("COMMIT")
    check(shard0_scalar(env, count, (7,)) == 0, "row 7 (SQL ROLLBACK) is on shard0")
    check(shard0_scalar(env, count, (8,)) == 1, "row 8 (SQL COMMIT) is not on shard0")


def test_session_settings(env):
    log("-- SET search_path / application_name across transactions under transaction pooling")
    app_a = f"psycopg-A-{os.getpid()}"
    schema = f"{PREFIX}_sp"
    want_path = f"{schema}, public"
    stop = threading.Event()
    errors = []

    def other(k):
        # Sets values of its own and checks it keeps seeing them (and not A's).
        def run():
            name = f"psycopg-other-{k}"
            with proxy(env, autocommit=True) as c:
                c.execute(f"SET application_name = '{name}'")
                c.execute("SET search_path = pg_catalog, public")
                n = 0
                while not stop.is_set() or n < 20:
                    with c.transaction():
                        got = c.execute("SELECT current_setting('application_name'), "
                                        "current_setting('search_path'), pg_sleep(0.001)").fetchone()[:2]
                    if got != (name, "pg_catalog, public"):
                        errors.append(f"client {k} sees {got!r}, want {(name, 'pg_catalog, public')!r}")
                        return
                    n += 1
        return run

    def plain():
        # Never sets anything: must always see its startup values.
        dsn = pgtest.with_params(env["PGRING_DSN"], application_name="psycopg-plain")
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as c:
            n = 0
            while not stop.is_set() or n < 20:
                got = c.execute("SELECT current_setting('application_name'), current_setting('search_path')").fetchone()
                if got != ("psycopg-plain", '"$user", public'):
                    errors.append(f"client without SET sees {got!r}, want ('psycopg-plain', '\"$user\", public')")
                    return
                n += 1

    threads = [threading.Thread(target=fn, daemon=True) for fn in [other(k) for k in range(4)] + [plain]]
    with proxy(env, autocommit=True) as a:
        a.execute(f"SET search_path TO {schema}, public")
        a.execute(f"SET application_name = '{app_a}'")
        for t in threads:
            t.start()
        try:
            pids = set()
            for i in range(40):
                with a.transaction():
                    path = a.execute("SHOW search_path").fetchone()[0]
                    name = a.execute("SHOW application_name").fetchone()[0]
                    check((path, name) == (want_path, app_a),
                          f"transaction {i} of A: SHOW returned ({path!r}, {name!r}), want ({want_path!r}, {app_a!r})")
                    a.execute(f"INSERT INTO {PREFIX}_sp (marker) VALUES (%s)", (f"A{i}",))
                    pid = a.execute("SELECT pg_backend_pid()").fetchone()[0]
                    pids.add(pid)
                    if i % 10 == 0:
                        # The server connection itself carries A's application_name.
                        with direct(env) as d:
                            seen = d.execute("SELECT application_name FROM pg_stat_activity WHERE pid = %s",
                                             (pid,)).fetchone()
                        check(seen == (app_a,), f"shard0 backend {pid} serving A has application_name {seen!r}")
            # SET LOCAL lasts one transaction only.
            with a.transaction():
                a.execute("SET LOCAL search_path = pg_catalog")
                a.execute("SET LOCAL application_name = 'local-only'")
            got = a.execute("SELECT current_setting('search_path'), current_setting('application_name')").fetchone()
            check(got == (want_path, app_a), f"after SET LOCAL: {got!r}, want ({want_path!r}, {app_a!r})")
            # A SET inside a rolled back transaction does not persist.
            with a.transaction() as tx:
                a.execute("SET application_name = 'rolled-back'")
                raise psycopg.Rollback(tx)
            got = a.execute("SHOW application_name").fetchone()[0]
            check(got == app_a, f"after a rolled back SET: application_name {got!r}, want {app_a!r}")
            a.execute("RESET search_path")
            got = a.execute("SHOW search_path").fetchone()[0]
            check(got == '"$user", public', f"after RESET search_path: {got!r}")
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        log(f"   A ran on {len(pids)} server connection(s)")
    check(not errors, f"session settings leaked between clients: {errors[:3]}")
    check(not any(t.is_alive() for t in threads), "a settings client hung")
    with direct(env) as c:
        in_schema = c.execute(f"SELECT count(*) FROM {schema}.{PREFIX}_sp").fetchone()[0]
        in_public = c.execute(f"SELECT count(*) FROM public.{PREFIX}_sp").fetchone()[0]
    check((in_schema, in_public) == (40, 0),
          f"unqualified INSERTs of A landed {in_schema} in {schema} and {in_public} in public; want 40 and 0")


def test_startup_parameters(env):
    log("-- the welcome's ParameterStatus values and settings follow each client's startup packet")
    server_side = ["server_version", "server_encoding", "standard_conforming_strings",
                   "integer_datetimes"]
    with direct(env) as d:
        want_server = {n: d.info.parameter_status(n) for n in server_side}
    # Clients in turn with other startup parameters, then the first one's again: each one
    # is welcomed with and runs with its own (pgring shares the settings of repeated ones).
    for app, encoding in [("psycopg-welcome-a", "LATIN1"), ("psycopg-welcome-b", "UTF8"),
                          ("psycopg-welcome-b", "UTF8"), ("psycopg-welcome-a", "LATIN1")]:
        dsn = pgtest.with_params(env["PGRING_DSN"], application_name=app,
                                 client_encoding=encoding)
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as c:
            got = {n: c.info.parameter_status(n) for n in ["application_name", "client_encoding"]}
            check(got == {"application_name": app, "client_encoding": encoding},
                  f"welcome ParameterStatus {got}, want the client's {app}, {encoding}")
            for n, v in want_server.items():
                check(c.info.parameter_status(n) == v,
                      f"welcome {n} = {c.info.parameter_status(n)!r}, the server says {v!r}")
            row = c.execute("SELECT current_setting('application_name'), "
                            "current_setting('client_encoding')").fetchone()
            check(row == (app, encoding), f"client {app}/{encoding} runs with {row}")


def test(env):
    setup_tables(env)
    test_startup_parameters(env)
    test_binding(env)
    test_binary(env)
    test_prepared(env)
    test_pipeline(env)
    test_executemany(env)
    test_copy(env)
    test_transactions(env)
    test_session_settings(env)
    drop_tables(env)


if __name__ == "__main__":
    pgtest.run_main(test)
