#!/usr/bin/python3
"""COPY through pgring: FROM STDIN splits the rows by key, TO STDOUT returns every shard's
rows (docs/sharding.md, Rules: COPY).

COPY orders FROM STDIN of 100,000 rows of 5,000 tenants in text format, with a column
list that has the key third and values with escaped tabs, newlines and backslashes;
then 100,000 more in CSV with a header line and the key last in the column list, with
quoted keys and quoted values holding commas, quotes, LF and CRLF. The data is written in
odd-sized pieces, so rows straddle CopyData messages. Each COPY's command tag must count
100,000 rows. On each shard directly: the rows are exactly those whose key the shard owns
(by SHOW RING and hashint8extended, in Python and again in SQL on the shard), each once,
with the values written. A COPY without a column list must either be split by the
table's column order or be refused with 0A000 and write nothing.

Then, through pgring: COPY orders TO STDOUT in text and CSV returns exactly the union of
the shards' rows; COPY (SELECT ... WHERE tenant_id = K) TO STDOUT returns the rows of K;
binary COPY TO STDOUT is one valid stream (one header, the rows of every shard, one
trailer) holding the shards' rows.
"""

import csv
import datetime
import decimal
import io
import os
import random
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import routing  # noqa: E402
from routing import INT64_MAX, INT64_MIN, check, log, simple  # noqa: E402

N = 100_000
CENT = decimal.Decimal("0.01")
UTC = datetime.timezone.utc
SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
NOTES = ["plain", "tab\there", "new\nline", "back\\slash", "comma, here", 'quote "q"',
         "crlf\r\nend", "ünï 日本", "", None, "  spaces  ", "\\N literal"]
FETCH = "SELECT tenant_id, order_id, status, amount, qty, note, created_at FROM orders"


def text_field(v):
    if v is None:
        return "\\N"
    s = str(v)
    return (s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r"))


def csv_field(v, quote=False):
    if v is None:
        return ""
    if isinstance(v, str) or quote:
        return '"' + str(v).replace('"', '""') + '"'
    return str(v)


def write_pieces(cur, sql, data, piece):
    with cur.copy(sql) as cp:
        for i in range(0, len(data), piece):
            cp.write(data[i:i + piece])
    return cur.rowcount


def copy_out(conn, sql):
    with conn.cursor() as cur:
        with cur.copy(sql) as cp:
            return b"".join(bytes(b) for b in cp)


def parse_binary_copy(raw, what):
    """Splits a binary COPY stream into rows of raw field values (bytes or None); fails
    unless it is one header, the rows and one trailer
    (https://www.postgresql.org/docs/15/sql-copy.html#id-1.9.3.55.9.4)."""
    check(raw.startswith(SIGNATURE), f"{what}: the stream does not start with the PGCOPY "
                                     "signature")
    headers = raw.count(SIGNATURE)
    check(headers == 1, f"{what}: the stream holds {headers} file headers (PGCOPY signatures); "
                        "a client reads one header, the rows of every shard, one trailer")
    pos = len(SIGNATURE) + 4
    (ext,) = struct.unpack_from("!i", raw, pos)
    pos += 4 + ext
    rows = []
    while True:
        check(pos + 2 <= len(raw), f"{what}: the stream ends without the trailer")
        (nfields,) = struct.unpack_from("!h", raw, pos)
        pos += 2
        if nfields == -1:
            check(pos == len(raw), f"{what}: {len(raw) - pos} bytes after the trailer")
            return rows
        row = []
        for _ in range(nfields):
            (length,) = struct.unpack_from("!i", raw, pos)
            pos += 4
            row.append(None if length < 0 else raw[pos:pos + length])
            pos += max(length, 0)
        rows.append(tuple(row))


def make_rows(keys, first_id, rng, with_time):
    rows = []
    for i in range(N):
        k = keys[rng.randrange(len(keys))]
        amount = None if i % 23 == 0 else (
            decimal.Decimal(rng.randint(-100000, 10000000)) / 100).quantize(CENT)
        created = (datetime.datetime(2024, 5, 1, tzinfo=UTC)
                   + datetime.timedelta(seconds=rng.randint(0, 10 ** 7))) if with_time else None
        rows.append((k, first_id + i, rng.choice(["new", "paid", None]), amount,
                     rng.choice([None, 0, 1, 5, 100]), NOTES[i % len(NOTES)], created))
    return rows


def check_shards(c, rows, what):
    parts = c.split(rows)
    total = 0
    for n in c.names:
        got = c.fetch_direct(n, FETCH)
        total += len(got)
        routing.check_rows(f"{what}: orders on {n}", got, parts[n], ordered=False)
    check(total == len(rows), f"{what}: {total} rows on the shards, want {len(rows)}")
    c.check_placement("orders", what)
    log(f"   {len(rows)} rows, per shard { {n: len(parts[n]) for n in c.names} }, "
        "each on its owner (Python and SQL)")


def test(env):
    c = routing.Cluster(env)
    c.create_tables(("orders",))
    rng = random.Random(99)
    wide = {INT64_MIN, INT64_MAX, -1, 0, 2 ** 32, -(2 ** 40)}
    while len(wide) < 1000:
        wide.add(rng.randint(INT64_MIN, INT64_MAX))
    keys = list(range(1, 4001)) + sorted(wide)

    log("-- COPY FROM STDIN, text format, key third in the column list")
    text_rows = make_rows(keys, 1, rng, with_time=False)
    cols = ("order_id", "note", "tenant_id", "status", "amount", "qty")
    data = "".join("\t".join(text_field(v) for v in (oid, note, k, st, amt, qty)) + "\n"
                   for k, oid, st, amt, qty, note, _ in text_rows).encode()
    with c.proxy() as p, p.cursor() as cur:
        n = write_pieces(cur, f"COPY orders ({', '.join(cols)}) FROM STDIN", data, 7919)
        check(n == N, f"text COPY FROM: command tag counts {n} rows, want {N}")
    check_shards(c, text_rows, "text COPY")

    log("-- COPY FROM STDIN, CSV with a header, key last in the column list")
    csv_rows = make_rows(keys, N + 1, rng, with_time=True)
    cols = ("order_id", "user_id", "status", "amount", "qty", "note", "created_at", "tenant_id")
    lines = [",".join(cols) + "\n"]
    for i, (k, oid, st, amt, qty, note, created) in enumerate(csv_rows):
        lines.append(",".join([str(oid), "", csv_field(st), csv_field(amt), csv_field(qty),
                               csv_field(note), csv_field(created.isoformat(sep=" ")),
                               csv_field(k, quote=i % 7 == 0)]) + "\n")
    data = "".join(lines).encode()
    with c.proxy() as p, p.cursor() as cur:
        n = write_pieces(cur, f"COPY orders ({', '.join(cols)}) FROM STDIN "
                              "(FORMAT csv, HEADER true)", data, 65521)
        check(n == N, f"CSV COPY FROM: command tag counts {n} rows, want {N}")
    all_rows = text_rows + csv_rows
    check_shards(c, all_rows, "text and CSV COPY")

    log("-- COPY FROM STDIN without a column list (the proxy must know the key's position)")
    extra = [(k, 2 * N + 1 + i, "new", None, None, f"no list {i}", None)
             for i, k in enumerate(keys[:200])]
    data = "".join(f"{k}\t{oid}\t\\N\t{st}\t\\N\t\\N\t{note}\t\\N\n"
                   for k, oid, st, _, _, note, _ in extra).encode()
    with c.proxy() as p, p.cursor() as cur:
        try:
            n = write_pieces(cur, "COPY orders FROM STDIN", data, 1000)
            check(n == len(extra), f"COPY without a column list: command tag counts {n} rows")
            accepted = True
        except routing.psycopg.Error as e:
            check(e.sqlstate == "0A000", f"COPY without a column list failed with "
                                         f"{e.sqlstate} ({e}), want success or 0A000")
            log("   refused with 0A000 (column order unknown to the proxy)")
            accepted = False
    if accepted:
        log("   accepted and split by the table's column order")
        all_rows += extra
        check_shards(c, all_rows, "all COPYs")
    else:
        counts = c.count_direct("orders", "order_id > %s", (2 * N,))
        check(not any(counts.values()), f"the refused COPY left rows per shard: {counts}")

    log("-- COPY TO STDOUT: text, CSV, binary")
    want_lines = []
    for n in c.names:
        with c.shard(n) as s:
            want_lines += copy_out(s, "COPY orders TO STDOUT").splitlines()
    want_lines.sort()
    with c.proxy() as p:
        got_lines = sorted(copy_out(p, "COPY orders TO STDOUT").splitlines())
        check(got_lines == want_lines,
              f"COPY orders TO STDOUT through pgring: {len(got_lines)} lines, want the "
              f"{len(want_lines)} lines of the shards; "
              f"{routing.describe_diff(got_lines, want_lines)}")
        text = copy_out(p, "COPY orders (tenant_id, order_id, note) TO STDOUT "
                           "(FORMAT csv)").decode()
        got = sorted(tuple(r) for r in csv.reader(io.StringIO(text, newline="")))
        want = sorted((str(k), str(oid), "" if note is None else note)
                      for k, oid, _, _, _, note, _ in all_rows)
        check(got == want, f"COPY ... TO STDOUT (FORMAT csv) through pgring: "
                           f"{routing.describe_diff(got, want)}")
        with_rows = {r[0] for r in all_rows}
        k = next(k for k in keys if k in with_rows and c.owner(k) != c.default)
        got = sorted(copy_out(p, f"COPY (SELECT tenant_id, order_id FROM orders "
                                 f"WHERE tenant_id = {k}) TO STDOUT").splitlines())
        want = sorted(f"{r[0]}\t{r[1]}".encode() for r in all_rows if r[0] == k)
        check(got == want, f"COPY (SELECT ... WHERE tenant_id = {k}) TO STDOUT: "
                           f"{routing.describe_diff(got, want)}")
        binary = "COPY orders (tenant_id, order_id, amount) TO STDOUT (FORMAT binary)"
        got = parse_binary_copy(copy_out(p, binary), "binary COPY TO STDOUT through pgring")
        want = []
        for n in c.names:
            with c.shard(n) as s:
                want += parse_binary_copy(copy_out(s, binary), f"binary COPY TO STDOUT on {n}")
        got, want = routing.sorted_rows(got), routing.sorted_rows(want)
        check(got == want, f"binary COPY TO STDOUT through pgring: {len(got)} rows, want the "
                           f"{len(want)} rows of the shards; {routing.describe_diff(got, want)}")

        # CSV with ESCAPE '\': an escaped quote followed by a line break stays inside the
        # quoted field; read with the quote as escape, the row would be cut in two there.
        log("-- COPY FROM STDIN (FORMAT csv, ESCAPE '\\')")
        simple(p, "TRUNCATE orders")
        esc_keys = list(range(900001, 900041))
        data = "".join(f'{k},1,"say \\"hi\\"\nthere"\n' for k in esc_keys).encode()
        with p.cursor() as cur:
            n = write_pieces(cur, "COPY orders (tenant_id, order_id, note) FROM STDIN "
                                  "(FORMAT csv, ESCAPE '\\')", data, 7)
        check(n == len(esc_keys), f"COPY with ESCAPE reported {n} rows, want {len(esc_keys)}")
        for k in esc_keys:
            got = c.fetch_direct(c.owner(k), "SELECT note FROM orders WHERE tenant_id = %s", (k,))
            check(got == [('say "hi"\nthere',)], f"tenant {k} with ESCAPE on {c.owner(k)}: {got}")
        c.check_placement("orders", "COPY with ESCAPE")
    c.drop_tables(("orders",))


if __name__ == "__main__":
    routing.pgtest.run_main(test)
