// Checks sharding::Merger against a live PostgreSQL 15 server: two "shards" are simulated
// on one database as two temporary tables (part_a, part_b) holding a random split of the
// same rows. Each query runs on each part; the results (text or binary format, as libpq
// returns them, turned back into DataRow bodies) go through a Merger, and the merged rows
// must equal, row for row and byte for byte, what the server returns for the query over
// `(SELECT * FROM part_a UNION ALL SELECT * FROM part_b)`. Aggregates are run on the parts
// the way the proxy rewrites them (avg(x) becomes sum(x) plus a hidden count(x); LIMIT is
// pushed down as LIMIT offset + limit), so the numeric text of avg() is PostgreSQL's own.
//
// Uses the first DSN of SHARD_DSNS from the env file named by PGRING_TEST_ENV.
#include <libpq-fe.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/buffer.h"
#include "protocol/messages.h"
#include "sharding/merge.h"
#include "tests/integration/env.h"

namespace pgring::sharding {
namespace {

using Value = std::optional<std::string>;
using Row = std::vector<Value>;

struct ConnCloser {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct ResultClearer {
  void operator()(PGresult* res) const { PQclear(res); }
};
using Conn = std::unique_ptr<PGconn, ConnCloser>;
using Result = std::unique_ptr<PGresult, ResultClearer>;

constexpr std::string_view kUnion = "(SELECT * FROM part_a UNION ALL SELECT * FROM part_b) u";

Result Exec(PGconn* conn, const std::string& sql, int format = 0) {
  Result res(PQexecParams(conn, sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, format));
  INFO(sql << "\n" << PQerrorMessage(conn));
  REQUIRE((PQresultStatus(res.get()) == PGRES_TUPLES_OK ||
           PQresultStatus(res.get()) == PGRES_COMMAND_OK));
  return res;
}

// Creates part_a and part_b (temporary: they vanish with the connection) from one set of
// random rows. setseed makes every run use the same rows.
Conn ConnectWithParts() {
  const std::vector<std::string> dsns = pgring::test::ShardDsns();
  REQUIRE_FALSE(dsns.empty());
  Conn conn(PQconnectdb(dsns.front().c_str()));
  INFO(dsns.front() << ": " << PQerrorMessage(conn.get()));
  REQUIRE(PQstatus(conn.get()) == CONNECTION_OK);
  REQUIRE(PQsetClientEncoding(conn.get(), "UTF8") == 0);
  // A zone with daylight saving time: timestamptz values print with -05 and -04 offsets.
  Exec(conn.get(), "SET TimeZone = 'America/New_York'");
  Exec(conn.get(), "SET DateStyle = 'ISO, MDY'");
  Exec(conn.get(), "SELECT setseed(0.4242)");
  Exec(conn.get(), R"sql(
    CREATE TEMP TABLE src AS
    SELECT i AS id,
           CASE WHEN random() < 0.1 THEN NULL ELSE (random() * 12)::int - 6 END AS g,
           CASE WHEN random() < 0.1 THEN NULL
                ELSE ((random() - 0.5) * 1e12)::bigint END AS k,
           CASE WHEN random() < 0.1 THEN NULL
                ELSE round(((random() - 0.5) * 2000)::numeric, (random() * 4)::int) END AS n,
           CASE WHEN random() < 0.1 THEN NULL
                ELSE (ARRAY['apple', 'Apple', 'banana', 'B', 'b', '_x', 'é', 'zeta', ''])
                         [1 + (random() * 8)::int] || (random() * 3)::int END AS t,
           CASE WHEN random() < 0.1 THEN NULL
                ELSE timestamp '1999-06-01' + random() * interval '9000 days' END AS ts,
           CASE WHEN random() < 0.1 THEN NULL
                ELSE timestamptz '2020-01-01 00:00+00' + random() * interval '1000 days'
           END AS tz,
           CASE WHEN random() < 0.1 THEN NULL
                ELSE ((random() * 2000)::int - 1000) / 4.0 END::float8 AS f,
           CASE WHEN random() < 0.05 THEN 'NaN'::float8
                WHEN random() < 0.05 THEN '-Infinity'::float8
                WHEN random() < 0.05 THEN NULL
                ELSE (random() - 0.5) * 1e6 END AS fo,
           random() < 0.5 AS b,
           CASE WHEN random() < 0.1 THEN NULL
                ELSE date '2000-01-01' + (random() * 3000)::int END AS d
    FROM generate_series(1, 1500) i)sql");
  Exec(conn.get(), "CREATE TEMP TABLE part_a AS SELECT * FROM src WHERE random() < 0.45");
  Exec(conn.get(),
       "CREATE TEMP TABLE part_b AS SELECT * FROM src WHERE id NOT IN (SELECT id FROM part_a)");
  Result counts =
      Exec(conn.get(), "SELECT (SELECT count(*) FROM part_a), (SELECT count(*) FROM part_b)");
  REQUIRE(std::stoi(PQgetvalue(counts.get(), 0, 0)) > 400);
  REQUIRE(std::stoi(PQgetvalue(counts.get(), 0, 1)) > 400);
  return conn;
}

std::string Replace(std::string sql, std::string_view table) {
  for (size_t pos; (pos = sql.find("{t}")) != std::string::npos;) sql.replace(pos, 3, table);
  return sql;
}

Row RowOf(const PGresult* res, int r) {
  Row row;
  for (int c = 0; c < PQnfields(res); ++c) {
    if (PQgetisnull(res, r, c)) {
      row.emplace_back(std::nullopt);
    } else {
      row.emplace_back(std::string(PQgetvalue(res, r, c), PQgetlength(res, r, c)));
    }
  }
  return row;
}

// A DataRow body as the server sent it.
std::string DataRowBody(const Row& row) {
  std::string out;
  auto put = [&](uint32_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  put(static_cast<uint32_t>(row.size()), 2);
  for (const Value& v : row) {
    put(v ? static_cast<uint32_t>(v->size()) : 0xFFFFFFFFu, 4);
    if (v) out += *v;
  }
  return out;
}

struct Fields {
  std::vector<std::string> names;
  std::vector<protocol::RowField> fields;
};

Fields FieldsOf(const PGresult* res) {
  Fields f;
  for (int c = 0; c < PQnfields(res); ++c) f.names.emplace_back(PQfname(res, c));
  for (int c = 0; c < PQnfields(res); ++c) {
    protocol::RowField field;
    field.name = f.names[static_cast<size_t>(c)];
    field.table_oid = PQftable(res, c);
    field.column = static_cast<int16_t>(PQftablecol(res, c));
    field.type_oid = PQftype(res, c);
    field.type_size = static_cast<int16_t>(PQfsize(res, c));
    field.type_modifier = PQfmod(res, c);
    field.format = static_cast<int16_t>(PQfformat(res, c));
    f.fields.push_back(field);
  }
  return f;
}

struct Merged {
  std::vector<protocol::RowField> fields;
  std::vector<std::string> names;
  std::vector<Row> rows;
  std::string tag;
};

// Runs `shard_sql` on both parts and merges the results as the proxy would, feeding the
// rows of the two parts alternately.
Merged RunMerge(PGconn* conn, const std::string& shard_sql, const MergeSpec& spec, int format) {
  Result a = Exec(conn, Replace(shard_sql, "part_a"), format);
  Result b = Exec(conn, Replace(shard_sql, "part_b"), format);
  Fields fa = FieldsOf(a.get()), fb = FieldsOf(b.get());
  Merger merger(spec, 2);
  protocol::Buffer out;
  REQUIRE(merger.SetRowDescription(0, fa.fields).ok());
  REQUIRE(merger.SetRowDescription(1, fb.fields).ok());
  Merged merged;
  merged.fields = merger.OutputFields();
  for (const auto& f : merged.fields) merged.names.emplace_back(f.name);
  const PGresult* parts[] = {a.get(), b.get()};
  int next[] = {0, 0};
  bool ended[] = {false, false};
  while (!ended[0] || !ended[1]) {
    for (int s = 0; s < 2; ++s) {
      if (ended[s]) continue;
      if (next[s] == PQntuples(parts[s])) {
        REQUIRE(merger.EndShard(s, out).ok());
        ended[s] = true;
        continue;
      }
      std::string body = DataRowBody(RowOf(parts[s], next[s]++));
      absl::Status st = merger.AddRow(s, std::as_bytes(std::span(body.data(), body.size())), out);
      INFO(st.message());
      REQUIRE(st.ok());
    }
  }
  absl::Status st = merger.Finish(out);
  INFO(st.message());
  REQUIRE(st.ok());

  auto bytes = out.Readable();
  size_t pos = 0;
  while (pos < bytes.size()) {
    char type = static_cast<char>(bytes[pos]);
    uint32_t len = 0;
    for (int i = 1; i <= 4; ++i) len = (len << 8) | static_cast<uint8_t>(bytes[pos + i]);
    auto body = bytes.subspan(pos + 5, len - 4);
    if (type == 'D') {
      auto values = protocol::ParseDataRow(body);
      REQUIRE(values.has_value());
      Row row;
      for (const auto& v : *values) {
        if (v) {
          row.emplace_back(std::string(reinterpret_cast<const char*>(v->data()), v->size()));
        } else {
          row.emplace_back(std::nullopt);
        }
      }
      merged.rows.push_back(std::move(row));
    } else {
      REQUIRE(type == 'C');
      merged.tag = std::string(*protocol::ParseCommandComplete(body));
    }
    pos += 1 + len;
  }
  return merged;
}

enum class Order { kExact, kAnyOrder };

std::string Show(const Row& row) {
  std::string s;
  for (const Value& v : row) s += (v ? "'" + *v + "'" : std::string("NULL")) + " ";
  return s;
}

// Merges `shard_sql` over the parts and compares with `reference_sql` over their union.
void Check(PGconn* conn, const std::string& shard_sql, const std::string& reference_sql,
           const MergeSpec& spec, Order order = Order::kExact, int format = 0,
           size_t min_rows = 1) {
  INFO("shards:    " << shard_sql);
  INFO("reference: " << reference_sql);
  Merged merged = RunMerge(conn, shard_sql, spec, format);
  Result ref = Exec(conn, Replace(reference_sql, kUnion), format);
  Fields want = FieldsOf(ref.get());
  REQUIRE(merged.names == want.names);
  for (size_t c = 0; c < want.fields.size(); ++c) {
    INFO("column " << want.names[c]);
    CHECK(merged.fields[c].type_oid == want.fields[c].type_oid);
    CHECK(merged.fields[c].format == want.fields[c].format);
  }
  std::vector<Row> expected;
  for (int r = 0; r < PQntuples(ref.get()); ++r) expected.push_back(RowOf(ref.get(), r));
  REQUIRE(expected.size() >= min_rows);
  CHECK(merged.tag == "SELECT " + std::to_string(expected.size()));
  if (order == Order::kAnyOrder) {
    std::sort(expected.begin(), expected.end());
    std::sort(merged.rows.begin(), merged.rows.end());
  }
  REQUIRE(merged.rows.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("row " << i << "\n  merged:   " << Show(merged.rows[i])
                << "\n  expected: " << Show(expected[i]));
    REQUIRE(merged.rows[i] == expected[i]);
  }
}

MergeOrderKey Key(int column, bool descending, bool nulls_first) {
  return {column, descending, nulls_first};
}

TEST_CASE("ORDER BY merges equal one server's order", "[merge][postgres]") {
  Conn conn = ConnectWithParts();
  MergeSpec spec;

  SECTION("int, numeric and text keys in every direction") {
    std::string sql =
        "SELECT id, g, n, t FROM {t} "
        "ORDER BY g DESC NULLS LAST, n ASC NULLS FIRST, t COLLATE \"C\" DESC, id";
    spec.order_by = {Key(1, true, false), Key(2, false, true), Key(3, true, true),
                     MergeOrderKey::Ascending(0)};
    Check(conn.get(), sql, sql, spec, Order::kExact, 0, 1000);
  }
  SECTION("text COLLATE \"C\" with PostgreSQL's NULL defaults") {
    std::string sql = "SELECT t, id FROM {t} ORDER BY t COLLATE \"C\", id DESC";
    spec.order_by = {MergeOrderKey::Ascending(0), MergeOrderKey::Descending(1)};
    Check(conn.get(), sql, sql, spec, Order::kExact, 0, 1000);
  }
  SECTION("timestamp, timestamptz and date") {
    std::string sql = "SELECT id, ts, tz, d FROM {t} ORDER BY tz DESC, ts, d DESC, id";
    spec.order_by = {MergeOrderKey::Descending(2), MergeOrderKey::Ascending(1),
                     MergeOrderKey::Descending(3), MergeOrderKey::Ascending(0)};
    Check(conn.get(), sql, sql, spec, Order::kExact, 0, 1000);
  }
  SECTION("bigint, float8 with NaN and -Infinity, boolean") {
    std::string sql = "SELECT fo, k, b, id FROM {t} ORDER BY b, fo DESC NULLS LAST, k, id";
    spec.order_by = {MergeOrderKey::Ascending(2), Key(0, true, false), MergeOrderKey::Ascending(1),
                     MergeOrderKey::Ascending(3)};
    Check(conn.get(), sql, sql, spec, Order::kExact, 0, 1000);
  }
  SECTION("LIMIT and OFFSET after the merge, LIMIT offset + limit pushed down") {
    spec.order_by = {MergeOrderKey::Ascending(1), MergeOrderKey::Ascending(0)};
    spec.limit = 25;
    spec.offset = 40;
    Check(conn.get(), "SELECT id, n FROM {t} ORDER BY n, id LIMIT 65",
          "SELECT id, n FROM {t} ORDER BY n, id LIMIT 25 OFFSET 40", spec, Order::kExact, 0, 25);
  }
  SECTION("a sort key that is not in the select list is a hidden column") {
    spec.order_by = {MergeOrderKey::Descending(2)};
    spec.hidden_columns = {2};
    Check(conn.get(), "SELECT id, t, id AS sort_key FROM {t} ORDER BY 3 DESC",
          "SELECT id, t FROM {t} ORDER BY id DESC", spec, Order::kExact, 0, 1000);
  }
  SECTION("binary format") {
    std::string sql = "SELECT id, k, n, tz, fo, d FROM {t} ORDER BY n DESC, tz, fo, id";
    spec.order_by = {MergeOrderKey::Descending(2), MergeOrderKey::Ascending(3),
                     MergeOrderKey::Ascending(4), MergeOrderKey::Ascending(0)};
    Check(conn.get(), sql, sql, spec, Order::kExact, 1, 1000);
  }
  SECTION("no ORDER BY: every row once") {
    Check(conn.get(), "SELECT * FROM {t}", "SELECT * FROM {t}", spec, Order::kAnyOrder, 0, 1000);
  }
}

// SELECT count(*), count(n), sum(g), sum(k), sum(n), sum(f), min(n), max(n),
//        min(t COLLATE "C"), max(ts), min(tz), max(d), avg(g), avg(k), avg(n), avg(f)
// as the shards run it: avg(x) -> sum(x) AS avg, plus count(x) in a hidden column.
constexpr const char* kAggregateShardSelect =
    "count(*) AS count_all, count(n) AS count_n, sum(g) AS sum_g, sum(k) AS sum_k, "
    "sum(n) AS sum_n, sum(f) AS sum_f, min(n) AS min_n, max(n) AS max_n, "
    "min(t COLLATE \"C\") AS min_t, max(ts) AS max_ts, min(tz) AS min_tz, max(d) AS max_d, "
    "sum(g) AS avg_g, sum(k) AS avg_k, sum(n) AS avg_n, sum(f) AS avg_f, "
    "count(g), count(k), count(n), count(f)";
constexpr const char* kAggregateReferenceSelect =
    "count(*) AS count_all, count(n) AS count_n, sum(g) AS sum_g, sum(k) AS sum_k, "
    "sum(n) AS sum_n, sum(f) AS sum_f, min(n) AS min_n, max(n) AS max_n, "
    "min(t COLLATE \"C\") AS min_t, max(ts) AS max_ts, min(tz) AS min_tz, max(d) AS max_d, "
    "avg(g) AS avg_g, avg(k) AS avg_k, avg(n) AS avg_n, avg(f) AS avg_f";

// The spec for the select lists above, with `offset` columns (grouping keys) before them.
MergeSpec AggregateSpec(int offset) {
  MergeSpec spec;
  const MergeFunction functions[] = {
      MergeFunction::kCount, MergeFunction::kCount, MergeFunction::kSum, MergeFunction::kSum,
      MergeFunction::kSum,   MergeFunction::kSum,   MergeFunction::kMin, MergeFunction::kMax,
      MergeFunction::kMin,   MergeFunction::kMax,   MergeFunction::kMin, MergeFunction::kMax};
  int column = offset;
  for (MergeFunction f : functions) spec.aggregates.push_back({column++, f});
  for (int i = 0; i < 4; ++i) {
    spec.aggregates.push_back({column + i, MergeFunction::kAvg, column + 4 + i});
    spec.hidden_columns.push_back(column + 4 + i);
  }
  return spec;
}

TEST_CASE("aggregates merge to one server's results", "[merge][postgres]") {
  Conn conn = ConnectWithParts();
  const std::string shard = std::string("SELECT ") + kAggregateShardSelect;
  const std::string reference = std::string("SELECT ") + kAggregateReferenceSelect;

  SECTION("without GROUP BY, text") {
    Check(conn.get(), shard + " FROM {t}", reference + " FROM {t}", AggregateSpec(0));
  }
  SECTION("without GROUP BY, binary") {
    Check(conn.get(), shard + " FROM {t}", reference + " FROM {t}", AggregateSpec(0), Order::kExact,
          1);
  }
  SECTION("over no rows") {
    Check(conn.get(), shard + " FROM {t} WHERE id < 0", reference + " FROM {t} WHERE id < 0",
          AggregateSpec(0));
  }
  SECTION("GROUP BY with ORDER BY the key") {
    MergeSpec spec = AggregateSpec(1);
    spec.group_by = {0};
    spec.order_by = {MergeOrderKey::Ascending(0)};
    Check(conn.get(), "SELECT g, " + std::string(kAggregateShardSelect) + " FROM {t} GROUP BY g",
          "SELECT g, " + std::string(kAggregateReferenceSelect) + " FROM {t} GROUP BY g ORDER BY g",
          spec, Order::kExact, 0, 10);
  }
  SECTION("GROUP BY two keys, binary, any order") {
    MergeSpec spec = AggregateSpec(2);
    spec.group_by = {0, 1};
    Check(conn.get(),
          "SELECT b, t, " + std::string(kAggregateShardSelect) + " FROM {t} GROUP BY b, t",
          "SELECT b, t, " + std::string(kAggregateReferenceSelect) + " FROM {t} GROUP BY b, t",
          spec, Order::kAnyOrder, 1, 20);
  }
  SECTION("GROUP BY with ORDER BY aggregates and LIMIT/OFFSET") {
    MergeSpec spec;
    spec.group_by = {0};
    spec.aggregates = {
        {1, MergeFunction::kCount}, {2, MergeFunction::kAvg, 3}, {4, MergeFunction::kMax}};
    spec.hidden_columns = {3};
    spec.order_by = {MergeOrderKey::Descending(1), MergeOrderKey::Ascending(2),
                     MergeOrderKey::Ascending(0)};
    spec.limit = 6;
    spec.offset = 2;
    Check(conn.get(),
          "SELECT t COLLATE \"C\" AS t, count(*), sum(n) AS avg, count(n), max(tz) "
          "FROM {t} GROUP BY 1",
          "SELECT t COLLATE \"C\" AS t, count(*), avg(n), max(tz) FROM {t} GROUP BY 1 "
          "ORDER BY 2 DESC, 3, 1 LIMIT 6 OFFSET 2",
          spec, Order::kExact, 0, 6);
  }
  SECTION("GROUP BY without aggregates") {
    MergeSpec spec;
    spec.group_by = {0, 1};
    spec.order_by = {MergeOrderKey::Ascending(1), MergeOrderKey::Descending(0)};
    Check(conn.get(), "SELECT g, b FROM {t} GROUP BY g, b",
          "SELECT g, b FROM {t} GROUP BY g, b ORDER BY b, g DESC", spec, Order::kExact, 0, 10);
  }
}

}  // namespace
}  // namespace pgring::sharding
