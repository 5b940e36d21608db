// Checks sharding::Merger against a live PostgreSQL 15 server: two "shards" are simulated
// on one database as two temporary tables (part_a, part_b) holding a random split of the
// same rows. Each query runs on each part; the results (text or binary format, as libpq
// returns them, turned back into DataRow bodies) go through a Merger, and the merged rows
// must equal, row for row and byte for byte, what the server returns for the query over
// `(SELECT * FROM part_a UNION ALL SELECT * FROM part_b)`. Most queries are planned as the
// proxy plans them: the analyzer reads the client's query, PlanScatter() (shard_sql.h)
// gives the text each part runs (avg(x) becomes sum(x) plus a hidden count(x); LIMIT is
// pushed down as LIMIT offset + limit without OFFSET; DISTINCT and GROUP BY run without
// LIMIT) and CompleteSpec() the MergeSpec from the first part's RowDescription and the
// Bind values. So the rewritten SQL is checked against the server too, and the numeric
// text of avg() is PostgreSQL's own.
//
// Uses the first DSN of SHARD_DSNS from the env file named by PGRING_TEST_ENV.
#include <libpq-fe.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/buffer.h"
#include "protocol/messages.h"
#include "sharding/analyzer.h"
#include "sharding/merge.h"
#include "sharding/router.h"
#include "sharding/shard_sql.h"
#include "tests/integration/env.h"
#include "tests/integration/pq.h"

namespace pgring::sharding {
namespace {

using Value = std::optional<std::string>;
using Row = std::vector<Value>;

using Conn = pgring::test::PgConn;
using Result = pgring::test::PgResult;

constexpr std::string_view kUnion = "(SELECT * FROM part_a UNION ALL SELECT * FROM part_b) u";

// Bind values in text format ($1 is params[0]); the server infers their types.
using Params = std::vector<Value>;

Result Exec(PGconn* conn, const std::string& sql, int format = 0, const Params& params = {}) {
  std::vector<const char*> values;
  for (const Value& v : params) values.push_back(v ? v->c_str() : nullptr);
  Result res(PQexecParams(conn, sql.c_str(), static_cast<int>(params.size()), nullptr,
                          values.data(), nullptr, nullptr, format));
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

// Makes the MergeSpec once the first part's columns are known.
using SpecOf = std::function<MergeSpec(std::span<const protocol::RowField>)>;

// Runs `shard_sql` on both parts and merges the results as the proxy would, feeding the
// rows of the two parts alternately.
Merged RunMerge(PGconn* conn, const std::string& shard_sql, const SpecOf& spec_of, int format,
                const Params& params) {
  Result a = Exec(conn, Replace(shard_sql, "part_a"), format, params);
  Result b = Exec(conn, Replace(shard_sql, "part_b"), format, params);
  Fields fa = FieldsOf(a.get()), fb = FieldsOf(b.get());
  Merger merger(spec_of(fa.fields), 2);
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
void CheckWith(PGconn* conn, const std::string& shard_sql, const std::string& reference_sql,
               const SpecOf& spec_of, Order order, int format, size_t min_rows,
               const Params& params) {
  INFO("shards:    " << shard_sql);
  INFO("reference: " << reference_sql);
  Merged merged = RunMerge(conn, shard_sql, spec_of, format, params);
  Result ref = Exec(conn, Replace(reference_sql, kUnion), format, params);
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

// Merges with a spec written by hand.
void Check(PGconn* conn, const std::string& shard_sql, const std::string& reference_sql,
           const MergeSpec& spec, Order order = Order::kExact, int format = 0,
           size_t min_rows = 1) {
  CheckWith(
      conn, shard_sql, reference_sql, [&](std::span<const protocol::RowField>) { return spec; },
      order, format, min_rows, {});
}

// The merge facts the router copies from a statement it spreads over several shards.
MergeFacts FactsOf(const Statement& s) {
  MergeFacts f;
  f.targets = s.targets;
  f.order_by = s.order_by;
  f.limit = s.limit;
  f.offset = s.offset;
  f.limit_param = s.limit_param;
  f.offset_param = s.offset_param;
  f.limit_with_ties = s.limit_with_ties;
  f.has_aggregates = s.has_aggregates;
  f.has_group_by = s.has_group_by;
  f.has_distinct = s.has_distinct;
  return f;
}

// A client's query over the table {t}, planned as the proxy plans it: the parts run the
// text PlanScatter() gives (on the analyzed name "items", the table the client sees), the
// merge uses the spec CompleteSpec() completes with the Bind values, and the result must
// equal the query itself over the union of the parts. `rewritten` is whether the parts
// must run another text than the client's.
void CheckPlanned(PGconn* conn, const std::string& query, bool rewritten,
                  Order order = Order::kExact, int format = 0, size_t min_rows = 1,
                  const Params& params = {}) {
  const std::string client_sql = Replace(query, "items");
  INFO("client:    " << client_sql);
  absl::StatusOr<Analysis> analysis = Analyze(client_sql);
  REQUIRE(analysis.ok());
  REQUIRE(analysis->statements.size() == 1);
  const Statement& s = analysis->statements[0];
  absl::StatusOr<ScatterQuery> planned =
      PlanScatter(client_sql, analysis->ranges[0], s, FactsOf(s));
  INFO(planned.status().message());
  REQUIRE(planned.ok());
  CHECK(planned->rewritten == rewritten);
  // Back to the placeholder, which RunMerge replaces by each part.
  std::string shard_sql = planned->sql;
  for (size_t pos; (pos = shard_sql.find("items")) != std::string::npos;) {
    shard_sql.replace(pos, 5, "{t}");
  }
  std::vector<std::string> storage;
  for (const Value& v : params) storage.push_back(v.value_or(""));
  protocol::BindParams bind;
  for (size_t i = 0; i < params.size(); ++i) {
    if (params[i]) {
      bind.values.emplace_back(std::as_bytes(std::span(storage[i].data(), storage[i].size())));
    } else {
      bind.values.emplace_back(std::nullopt);
    }
  }
  const ScatterQuery& q = *planned;
  CheckWith(
      conn, shard_sql, query,
      [&](std::span<const protocol::RowField> fields) {
        absl::StatusOr<MergeSpec> spec = CompleteSpec(q, fields, params.empty() ? nullptr : &bind);
        INFO(spec.status().message());
        REQUIRE(spec.ok());
        return *std::move(spec);
      },
      order, format, min_rows, params);
}

TEST_CASE("ORDER BY merges equal one server's order", "[merge][postgres]") {
  Conn conn = ConnectWithParts();

  SECTION("int, numeric and text keys in every direction") {
    CheckPlanned(conn.get(),
                 "SELECT id, g, n, t FROM {t} "
                 "ORDER BY g DESC NULLS LAST, n ASC NULLS FIRST, t DESC, id",
                 false, Order::kExact, 0, 1000);
  }
  SECTION("text with PostgreSQL's NULL defaults") {
    CheckPlanned(conn.get(), "SELECT t, id FROM {t} ORDER BY t, id DESC", false, Order::kExact, 0,
                 1000);
  }
  SECTION("timestamp, timestamptz and date") {
    CheckPlanned(conn.get(), "SELECT id, ts, tz, d FROM {t} ORDER BY tz DESC, ts, d DESC, id",
                 false, Order::kExact, 0, 1000);
  }
  SECTION("bigint, float8 with NaN and -Infinity, boolean") {
    CheckPlanned(conn.get(), "SELECT fo, k, b, id FROM {t} ORDER BY b, fo DESC NULLS LAST, k, id",
                 false, Order::kExact, 0, 1000);
  }
  SECTION("LIMIT and OFFSET after the merge, LIMIT offset + limit pushed down") {
    CheckPlanned(conn.get(), "SELECT id, n FROM {t} ORDER BY n, id LIMIT 25 OFFSET 40", true,
                 Order::kExact, 0, 25);
  }
  SECTION("OFFSET ... ROWS FETCH FIRST ... ROWS ONLY") {
    CheckPlanned(conn.get(),
                 "SELECT id, ts FROM {t} ORDER BY ts DESC, id OFFSET 100 ROWS "
                 "FETCH FIRST 30 ROWS ONLY",
                 true, Order::kExact, 0, 30);
  }
  SECTION("OFFSET without LIMIT") {
    CheckPlanned(conn.get(), "SELECT id FROM {t} ORDER BY id OFFSET 1400", true, Order::kExact, 0,
                 50);
  }
  SECTION("LIMIT $1 OFFSET $2 from Bind values, binary format") {
    const std::string sql = "SELECT id, k FROM {t} ORDER BY k DESC, id LIMIT $1 OFFSET $2";
    CheckPlanned(conn.get(), sql, true, Order::kExact, 1, 17, Params{"17", "33"});
    // LIMIT NULL: no limit.
    CheckPlanned(conn.get(), sql, true, Order::kExact, 1, 5, Params{std::nullopt, "1490"});
    CheckPlanned(conn.get(), sql, true, Order::kExact, 1, 0, Params{"0", "0"});
  }
  SECTION("SELECT * ORDER BY a column name") {
    CheckPlanned(conn.get(), "SELECT * FROM {t} ORDER BY k DESC, id LIMIT 30 OFFSET 5", true,
                 Order::kExact, 0, 30);
    CheckPlanned(conn.get(), "SELECT *, -id AS neg FROM {t} ORDER BY d, neg", false, Order::kExact,
                 0, 1000);
  }
  SECTION("a sort key that is not in the select list is a hidden column") {
    MergeSpec spec;
    spec.order_by = {MergeOrderKey::Descending(2)};
    spec.hidden_columns = {2};
    Check(conn.get(), "SELECT id, t, id AS sort_key FROM {t} ORDER BY 3 DESC",
          "SELECT id, t FROM {t} ORDER BY id DESC", spec, Order::kExact, 0, 1000);
  }
  SECTION("binary format") {
    CheckPlanned(conn.get(), "SELECT id, k, n, tz, fo, d FROM {t} ORDER BY n DESC, tz, fo, id",
                 false, Order::kExact, 1, 1000);
  }
  SECTION("no ORDER BY: every row once") {
    CheckPlanned(conn.get(), "SELECT * FROM {t}", false, Order::kAnyOrder, 0, 1000);
  }
}

// count, sum, min and max of every comparable type, and avg of integer, bigint, numeric and
// float8 columns (f holds multiples of 0.25, so its sums are exact in any order).
constexpr const char* kAggregateSelect =
    "count(*) AS count_all, count(n) AS count_n, sum(g) AS sum_g, sum(k) AS sum_k, "
    "sum(n) AS sum_n, sum(f) AS sum_f, min(n) AS min_n, max(n) AS max_n, "
    "min(t) AS min_t, max(ts) AS max_ts, min(tz) AS min_tz, max(d) AS max_d, "
    "avg(g) AS avg_g, avg(k) AS avg_k, avg(n) AS avg_n, avg(f) AS avg_f";

TEST_CASE("aggregates merge to one server's results", "[merge][postgres]") {
  Conn conn = ConnectWithParts();
  const std::string select = std::string("SELECT ") + kAggregateSelect;

  SECTION("without GROUP BY, text") {
    CheckPlanned(conn.get(), select + " FROM {t}", true);
  }
  SECTION("without GROUP BY, binary") {
    CheckPlanned(conn.get(), select + " FROM {t}", true, Order::kExact, 1);
  }
  SECTION("over no rows") {
    CheckPlanned(conn.get(), select + " FROM {t} WHERE id < 0", true);
  }
  SECTION("avg without an alias, with FILTER") {
    CheckPlanned(conn.get(),
                 "SELECT avg(g), avg(n) FILTER (WHERE b), count(*) FILTER (WHERE b), "
                 "avg(f) FILTER (WHERE g > 0) AS af, AVG((k)) FROM {t}",
                 true);
  }
  SECTION("count, sum, min and max need no rewrite") {
    CheckPlanned(conn.get(), "SELECT count(*), sum(k), min(d), max(t) FROM {t} WHERE g > 0",
                 false);
  }
  SECTION("GROUP BY with ORDER BY the key") {
    CheckPlanned(conn.get(), "SELECT g, " + std::string(kAggregateSelect) +
                                 " FROM {t} GROUP BY g ORDER BY g",
                 true, Order::kExact, 0, 10);
  }
  SECTION("GROUP BY two keys, binary, any order") {
    CheckPlanned(conn.get(), "SELECT b, t, " + std::string(kAggregateSelect) +
                                 " FROM {t} GROUP BY b, t",
                 true, Order::kAnyOrder, 1, 20);
  }
  SECTION("GROUP BY with ORDER BY aggregates and LIMIT/OFFSET") {
    CheckPlanned(conn.get(),
                 "SELECT t, count(*), avg(n), max(tz) FROM {t} GROUP BY 1 "
                 "ORDER BY 2 DESC, 3, 1 LIMIT 6 OFFSET 2",
                 true, Order::kExact, 0, 6);
  }
  SECTION("GROUP BY with ORDER BY avg and LIMIT $1 OFFSET $2") {
    CheckPlanned(conn.get(),
                 "SELECT g, avg(k) AS mean FROM {t} GROUP BY g "
                 "ORDER BY avg(k) DESC NULLS LAST, g LIMIT $1 OFFSET $2",
                 true, Order::kExact, 0, 4, Params{"4", "3"});
  }
  SECTION("GROUP BY without aggregates") {
    CheckPlanned(conn.get(), "SELECT g, b FROM {t} GROUP BY g, b ORDER BY b, g DESC", false,
                 Order::kExact, 0, 10);
  }
}

TEST_CASE("SELECT DISTINCT merges to one server's results", "[merge][postgres]") {
  Conn conn = ConnectWithParts();

  SECTION("two columns, ORDER BY") {
    CheckPlanned(conn.get(), "SELECT DISTINCT g, b FROM {t} ORDER BY b, g DESC", false,
                 Order::kExact, 0, 10);
  }
  SECTION("LIMIT and OFFSET are applied after deduplication") {
    CheckPlanned(conn.get(), "SELECT DISTINCT t FROM {t} ORDER BY t LIMIT 7 OFFSET 3", true,
                 Order::kExact, 0, 7);
  }
  SECTION("no ORDER BY, binary") {
    CheckPlanned(conn.get(), "SELECT DISTINCT g, d > '2004-01-01' AS late FROM {t}", false,
                 Order::kAnyOrder, 1, 10);
  }
}

}  // namespace
}  // namespace pgring::sharding
