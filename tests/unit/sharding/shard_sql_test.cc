#include "sharding/shard_sql.h"

#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/sql_error.h"
#include "sharding/analyzer.h"
#include "sharding/sql_scan.h"

namespace pgring::sharding {
namespace {

// One statement of an analyzed text, with the text it came from.
struct Analyzed {
  std::string sql;
  Analysis analysis;
  size_t index = 0;
  const Statement& statement() const { return analysis.statements[index]; }
  std::pair<size_t, size_t> range() const { return analysis.ranges[index]; }
};

Analyzed Parse(std::string sql, size_t index = 0) {
  INFO(sql);
  absl::StatusOr<Analysis> a = Analyze(sql);
  REQUIRE(a.ok());
  REQUIRE(index < a->statements.size());
  return Analyzed{std::move(sql), *std::move(a), index};
}

// ---- scanner ----------------------------------------------------------------------------------

std::vector<std::string> Tokens(std::string_view sql) {
  std::vector<std::string> out;
  SqlScanner scan(sql);
  for (SqlToken t = scan.Next(); t.kind != SqlToken::Kind::kEnd; t = scan.Next()) {
    out.emplace_back(t.kind == SqlToken::Kind::kError ? "<error>" : TokenText(sql, t));
  }
  return out;
}

TEST_CASE("the scanner splits tokens as PostgreSQL does", "[shard_sql]") {
  using V = std::vector<std::string>;
  CHECK(Tokens("SELECT a.b, 'x''y' FROM t;") ==
        V{"SELECT", "a", ".", "b", ",", "'x''y'", "FROM", "t", ";"});
  CHECK(Tokens("E'\\'' e'a\\\\' 'b\\' x") == V{"E'\\''", "e'a\\\\'", "'b\\'", "x"});
  CHECK(Tokens("B'101' X'1F' N'n' U&'d\\0061' U&\"i\" \"a\"\"b\"") ==
        V{"B'101'", "X'1F'", "N'n'", "U&'d\\0061'", "U&\"i\"", "\"a\"\"b\""});
  CHECK(Tokens("$$ ) $$ $a$ $$ $a$ $1 a$b $2::int8") ==
        V{"$$ ) $$", "$a$ $$ $a$", "$1", "a$b", "$2", "::", "int8"});
  CHECK(Tokens("1 1.5 .5 1e-3 1.e5 2.x") == V{"1", "1.5", ".5", "1e-3", "1.e5", "2.", "x"});
  CHECK(Tokens("a -- c ) \n b /* x /* y */ ) */ c") == V{"a", "b", "c"});
  CHECK(Tokens("a+-b a*/*c*/b a<>--c\nb") == V{"a", "+-", "b", "a", "*", "b", "a", "<>", "b"});
  CHECK(Tokens("([a])") == V{"(", "[", "a", "]", ")"});
  CHECK(Tokens("'open") == V{"<error>"});
  CHECK(Tokens("\"open") == V{"<error>"});
  CHECK(Tokens("$q$ open") == V{"<error>"});
  CHECK(Tokens("a /* open") == V{"a", "<error>"});
  CHECK(Tokens("").empty());
  CHECK(Tokens(" \t\n-- only a comment").empty());
}

TEST_CASE("IsWord compares keywords ignoring case, never quoted names", "[shard_sql]") {
  std::string sql = "VaLuEs \"values\" valuesx";
  SqlScanner scan(sql);
  CHECK(IsWord(sql, scan.Next(), "values"));
  CHECK_FALSE(IsWord(sql, scan.Next(), "values"));
  CHECK_FALSE(IsWord(sql, scan.Next(), "values"));
}

// ---- INSERT split -----------------------------------------------------------------------------

std::string Rows(const Analyzed& a, std::vector<size_t> rows) {
  absl::StatusOr<std::string> out = InsertRowsSql(a.sql, a.range(), a.statement(), rows);
  INFO(a.sql);
  INFO(out.status().message());
  REQUIRE(out.ok());
  // The result parses and has the chosen rows.
  absl::StatusOr<Analysis> again = Analyze(*out);
  INFO(*out);
  REQUIRE(again.ok());
  REQUIRE(again->statements.size() == 1);
  REQUIRE(again->statements[0].insert.has_value());
  CHECK(again->statements[0].insert->rows.size() == rows.size());
  return *out;
}

TEST_CASE("VALUES rows are located exactly", "[shard_sql]") {
  Analyzed a = Parse("INSERT INTO t (k, v) VALUES (1, 'a'), ( 2 , 'b' ),(3,'c')");
  REQUIRE(a.statement().insert.has_value());
  const auto& rr = a.statement().insert->row_ranges;
  REQUIRE(rr.size() == 3);
  CHECK(a.sql.substr(rr[0].first, rr[0].second) == "(1, 'a')");
  CHECK(a.sql.substr(rr[1].first, rr[1].second) == "( 2 , 'b' )");
  CHECK(a.sql.substr(rr[2].first, rr[2].second) == "(3,'c')");
}

TEST_CASE("InsertRowsSql keeps the chosen rows and everything around them", "[shard_sql]") {
  Analyzed a = Parse(
      "/* pgring: batch */ INSERT INTO public.t AS x (k, v) VALUES (1, 'a'), (2, 'b'), (3, 'c') "
      "ON CONFLICT (k) DO UPDATE SET v = excluded.v RETURNING k, (v)");
  CHECK(Rows(a, {0, 2}) ==
        "/* pgring: batch */ INSERT INTO public.t AS x (k, v) VALUES (1, 'a'), (3, 'c') "
        "ON CONFLICT (k) DO UPDATE SET v = excluded.v RETURNING k, (v)");
  CHECK(Rows(a, {1}) ==
        "/* pgring: batch */ INSERT INTO public.t AS x (k, v) VALUES (2, 'b') "
        "ON CONFLICT (k) DO UPDATE SET v = excluded.v RETURNING k, (v)");
  CHECK(Rows(a, {0, 1, 2}) == a.sql);
}

TEST_CASE("InsertRowsSql survives nasty literals", "[shard_sql]") {
  const std::vector<std::string> rows = {
      "(1, 'a), (b', 'it''s')",
      "(-2, E'\\'), (', E'\\\\')",
      "(- 3, $$ ), ( $$, $tag$ $$ ) $tag$)",
      "(4 /* ) , ( */, 'x' -- ), (\n, 'y')",
      "(5, /* nested /* ) */ ( */ coalesce(nullif(1, 2), (3)), 'z')",
      "('6'::bigint, CAST('(' AS text), '{1,2}'::int[])",
      "((7), ARRAY[1, (2)], ROW(1, ')'))",
      "(-8::int, NULL, DEFAULT)",
      "(-(9), \"f(\"(')'), U&'\\0029')",
      "(10, (SELECT max(k) FROM (VALUES (1), (2)) v(k)), 'values (')",
      "($1, $2, -1.5e3)",
  };
  std::string sql = "INSERT INTO t (k, a, b) VALUES ";
  for (size_t i = 0; i < rows.size(); ++i) sql += (i > 0 ? " , " : "") + rows[i];
  sql += " RETURNING *";
  Analyzed a = Parse(sql);
  const auto& rr = a.statement().insert->row_ranges;
  REQUIRE(rr.size() == rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    INFO("row " << i);
    CHECK(sql.substr(rr[i].first, rr[i].second) == rows[i]);
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    CHECK(Rows(a, {i}) == "INSERT INTO t (k, a, b) VALUES " + rows[i] + " RETURNING *");
  }
  CHECK(Rows(a, {1, 4, 9}) == "INSERT INTO t (k, a, b) VALUES " + rows[1] + ", " + rows[4] + ", " +
                                  rows[9] + " RETURNING *");
}

TEST_CASE("random VALUES rows of nasty pieces are located and split exactly", "[shard_sql]") {
  // Items and separators that contain parentheses, commas, quotes and keywords.
  const std::vector<std::string> items = {"1",
                                          "-1",
                                          "- 2",
                                          "-(3)",
                                          "4.5e-1",
                                          "NULL",
                                          "DEFAULT",
                                          "'('",
                                          "')'",
                                          "'a, b'",
                                          "'it''s'",
                                          "E'\\\\'",
                                          "E'\\')'",
                                          "$$ ) ( $$",
                                          "$q$ $$ ) $q$",
                                          "'5'::bigint",
                                          "CAST(')' AS text)",
                                          "ARRAY[1, (2)]",
                                          "ROW(1, ')')",
                                          "(7)",
                                          "((8))",
                                          "coalesce(nullif(1, 2), (3))",
                                          "$1",
                                          "$2::text",
                                          "'values ('",
                                          "\"q)\"('x')",
                                          "U&'\\0029'",
                                          "B'101'",
                                          "x'1F'",
                                          "true",
                                          "'{1,2}'::int[]",
                                          "(SELECT 1)",
                                          "now()",
                                          "-(-9)::int8"};
  const std::vector<std::string> gaps = {
      "", " ", "\n", " /* ) , ( */ ", " -- ), (\n", "/* a /* nested ) */ b */"};
  std::mt19937 rng(20240601);
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  for (int round = 0; round < 300; ++round) {
    const size_t width = 1 + rng() % 4;
    const size_t count = 1 + rng() % 6;
    std::vector<std::string> rows;
    std::string sql = "INSERT INTO t VALUES" + pick(gaps);
    for (size_t r = 0; r < count; ++r) {
      std::string row = "(" + pick(gaps);
      for (size_t c = 0; c < width; ++c) {
        if (c > 0) row += pick(gaps) + "," + pick(gaps);
        row += pick(items);
      }
      row += pick(gaps) + ")";
      if (r > 0) sql += pick(gaps) + "," + pick(gaps);
      sql += row;
      rows.push_back(row);
    }
    sql += pick(gaps) + "RETURNING 1";
    INFO(sql);
    Analyzed a = Parse(sql);
    REQUIRE(a.statement().insert.has_value());
    const auto& rr = a.statement().insert->row_ranges;
    REQUIRE(rr.size() == count);
    for (size_t r = 0; r < count; ++r) CHECK(sql.substr(rr[r].first, rr[r].second) == rows[r]);
    std::vector<size_t> keep;
    for (size_t r = 0; r < count; ++r) {
      if (rng() % 2 == 0) keep.push_back(r);
    }
    if (keep.empty()) keep.push_back(rng() % count);
    Rows(a, keep);
  }
}

TEST_CASE("InsertRowsSql finds the right VALUES keyword", "[shard_sql]") {
  SECTION("a table alias named values") {
    Analyzed a = Parse("INSERT INTO t AS values (k) VALUES (1), (2)");
    CHECK(Rows(a, {1}) == "INSERT INTO t AS values (k) VALUES (2)");
  }
  SECTION("VALUES in a WITH query with as many rows") {
    Analyzed a =
        Parse("WITH v (k) AS (VALUES (10), (20)) INSERT INTO t (k, n) VALUES (1, 1), (2, 2)");
    CHECK(Rows(a, {0}) == "WITH v (k) AS (VALUES (10), (20)) INSERT INTO t (k, n) VALUES (1, 1)");
  }
  SECTION("parenthesized VALUES") {
    Analyzed a = Parse("INSERT INTO t (k) (VALUES (1), (2), (3))");
    CHECK(Rows(a, {0, 2}) == "INSERT INTO t (k) (VALUES (1), (3))");
  }
  SECTION("lower-case keyword, comments between rows, no blank before a row") {
    Analyzed a = Parse("insert into t values(1) /* one */,\n-- two\n(2)--end");
    CHECK(Rows(a, {1}) == "insert into t values(2)--end");
    CHECK(Rows(a, {0}) == "insert into t values(1)--end");
  }
  SECTION("one statement of several, not at the start") {
    Analyzed a = Parse("SELECT 1; /* c */ INSERT INTO t VALUES ('x;'), ('y'); SELECT 2", 1);
    CHECK(a.range().first > 0);
    CHECK(Rows(a, {1}) == "/* c */ INSERT INTO t VALUES ('y')");
  }
}

TEST_CASE("InsertRowsPart renumbers the parameters it keeps", "[shard_sql]") {
  Analyzed a = Parse(
      "INSERT INTO t (k, v) VALUES ($1, $2), ($3, '$4'), ($5, $6::text) "
      "ON CONFLICT (k) DO UPDATE SET v = $7 RETURNING $$ $1 $$");
  absl::StatusOr<InsertPart> part =
      InsertRowsPart(a.sql, a.range(), a.statement(), std::vector<size_t>{1, 2});
  REQUIRE(part.ok());
  CHECK(part->sql ==
        "INSERT INTO t (k, v) VALUES ($1, '$4'), ($2, $3::text) "
        "ON CONFLICT (k) DO UPDATE SET v = $4 RETURNING $$ $1 $$");
  CHECK(part->params == std::vector<int>{3, 5, 6, 7});

  part = InsertRowsPart(a.sql, a.range(), a.statement(), std::vector<size_t>{0});
  REQUIRE(part.ok());
  CHECK(part->sql ==
        "INSERT INTO t (k, v) VALUES ($1, $2) "
        "ON CONFLICT (k) DO UPDATE SET v = $3 RETURNING $$ $1 $$");
  CHECK(part->params == std::vector<int>{1, 2, 7});

  Analyzed plain = Parse("INSERT INTO t VALUES (1), (2)");
  part = InsertRowsPart(plain.sql, plain.range(), plain.statement(), std::vector<size_t>{1});
  REQUIRE(part.ok());
  CHECK(part->sql == "INSERT INTO t VALUES (2)");
  CHECK(part->params.empty());
}

TEST_CASE("InsertRowsSql rejects what it cannot split", "[shard_sql]") {
  Analyzed a = Parse("INSERT INTO t VALUES (1), (2)");
  auto run = [&](const Analyzed& x, std::vector<size_t> rows) {
    return InsertRowsSql(x.sql, x.range(), x.statement(), rows).status();
  };
  CHECK(protocol::SqlStateOf(run(a, {})) == "XX000");
  CHECK(protocol::SqlStateOf(run(a, {2})) == "XX000");
  CHECK(protocol::SqlStateOf(run(a, {1, 0})) == "XX000");
  CHECK(protocol::SqlStateOf(run(a, {0, 0})) == "XX000");
  CHECK(protocol::SqlStateOf(
            InsertRowsSql(a.sql, {5, 100}, a.statement(), std::vector<size_t>{0}).status()) ==
        "XX000");
  CHECK(protocol::SqlStateOf(run(Parse("INSERT INTO t SELECT 1"), {0})) == "XX000");
  CHECK(protocol::SqlStateOf(run(Parse("SELECT 1"), {0})) == "XX000");
  // Without row ranges (an analysis pgring could not place) the split is refused.
  Statement s = a.statement();
  s.insert->row_ranges.clear();
  CHECK(protocol::SqlStateOf(InsertRowsSql(a.sql, a.range(), s, std::vector<size_t>{0}).status()) ==
        "0A000");
}

// ---- scatter-gather ---------------------------------------------------------------------------

// The merge facts the router copies from a statement.
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

ScatterQuery Plan(const Analyzed& a) {
  INFO(a.sql);
  absl::StatusOr<ScatterQuery> q =
      PlanScatter(a.sql, a.range(), a.statement(), FactsOf(a.statement()));
  INFO(q.status().message());
  REQUIRE(q.ok());
  // Whatever the shards run must parse.
  INFO(q->sql);
  REQUIRE(Analyze(q->sql).ok());
  return *std::move(q);
}

ScatterQuery Plan(std::string sql) { return Plan(Parse(std::move(sql))); }

absl::Status PlanError(std::string sql) {
  Analyzed a = Parse(std::move(sql));
  absl::StatusOr<ScatterQuery> q =
      PlanScatter(a.sql, a.range(), a.statement(), FactsOf(a.statement()));
  REQUIRE_FALSE(q.ok());
  return q.status();
}

using Ints = std::vector<int>;

Ints HiddenOf(const MergeSpec& s) { return s.hidden_columns; }

// "c0+", "c1-": column and direction; "n" marks NULLS FIRST.
std::vector<std::string> OrderOf(const MergeSpec& s) {
  std::vector<std::string> out;
  for (const MergeOrderKey& k : s.order_by) {
    out.push_back("c" + std::to_string(k.column) + (k.descending ? "-" : "+") +
                  (k.nulls_first ? "n" : ""));
  }
  return out;
}

// "avg:2/0": function, column, count column.
std::vector<std::string> AggregatesOf(const MergeSpec& s) {
  std::vector<std::string> out;
  for (const MergeAggregate& a : s.aggregates) {
    const char* f = a.function == MergeFunction::kCount ? "count"
                    : a.function == MergeFunction::kSum ? "sum"
                    : a.function == MergeFunction::kMin ? "min"
                    : a.function == MergeFunction::kMax ? "max"
                                                        : "avg";
    out.push_back(std::string(f) + ":" + std::to_string(a.column) +
                  (a.function == MergeFunction::kAvg ? "/" + std::to_string(a.count_column) : ""));
  }
  return out;
}

using Strings = std::vector<std::string>;

protocol::RowField Field(std::string_view name, uint32_t type = 23) {
  protocol::RowField f;
  f.name = name;
  f.type_oid = type;
  return f;
}

TEST_CASE("a statement that needs no rewrite keeps its own text", "[shard_sql]") {
  Analyzed a =
      Parse("SELECT 1; /* c */ SELECT id, name FROM t WHERE id > 5 ORDER BY name LIMIT 3", 1);
  ScatterQuery q = Plan(a);
  CHECK_FALSE(q.rewritten);
  CHECK(q.sql == "/* c */ SELECT id, name FROM t WHERE id > 5 ORDER BY name LIMIT 3");
  CHECK(OrderOf(q.spec) == Strings{"c1+"});
  CHECK(q.spec.input_order == InputOrder::kSorted);
  CHECK(q.spec.limit == 3);
  CHECK_FALSE(q.spec.offset.has_value());
  CHECK(q.spec.aggregates.empty());
  CHECK(q.spec.group_by.empty());
  CHECK(q.spec.hidden_columns.empty());

  ScatterQuery plain = Plan("SELECT * FROM t");
  CHECK_FALSE(plain.rewritten);
  CHECK(plain.sql == "SELECT * FROM t");
  absl::StatusOr<MergeSpec> spec =
      CompleteSpec(plain, std::vector<protocol::RowField>{Field("a"), Field("b")}, nullptr);
  REQUIRE(spec.ok());
  CHECK(spec->order_by.empty());
  CHECK_FALSE(spec->limit.has_value());
}

TEST_CASE("avg(x) runs as sum(x) with a hidden count(x) first", "[shard_sql]") {
  ScatterQuery q = Plan("SELECT avg(x) FROM t");
  CHECK(q.rewritten);
  CHECK(q.sql == "SELECT count(x) AS \"pgring:avg_count_1\", sum(x) AS avg FROM t");
  CHECK(AggregatesOf(q.spec) == Strings{"avg:1/0"});
  CHECK(HiddenOf(q.spec) == Ints{0});
  CHECK(q.spec.input_order == InputOrder::kUnsorted);

  q = Plan("SELECT AVG ( x + 1 ) AS \"Mean\", pg_catalog.avg(y), (avg(z)) FROM t");
  CHECK(q.sql ==
        "SELECT count( x + 1 ) AS \"pgring:avg_count_1\", pg_catalog.count(y) AS "
        "\"pgring:avg_count_2\", count(z) AS \"pgring:avg_count_3\", sum ( x + 1 ) AS \"Mean\", "
        "pg_catalog.sum(y) AS avg, (sum(z)) AS avg FROM t");
  CHECK(AggregatesOf(q.spec) == Strings{"avg:3/0", "avg:4/1", "avg:5/2"});
  CHECK(HiddenOf(q.spec) == Ints{0, 1, 2});
}

TEST_CASE("avg(x) FILTER keeps the filter on both columns", "[shard_sql]") {
  ScatterQuery q = Plan(
      "SELECT g, avg(x) FILTER (WHERE x > 0 AND note <> ')') AS a, count(*) FROM t "
      "GROUP BY g ORDER BY 2 DESC, g");
  CHECK(q.sql ==
        "SELECT count(x) FILTER (WHERE x > 0 AND note <> ')') AS \"pgring:avg_count_1\", g, "
        "sum(x) FILTER (WHERE x > 0 AND note <> ')') AS a, count(*) FROM t "
        "GROUP BY g ORDER BY 3 DESC, g");
  CHECK(AggregatesOf(q.spec) == Strings{"avg:2/0", "count:3"});
  CHECK(HiddenOf(q.spec) == Ints{0});
  CHECK(q.spec.group_by == Ints{1});
  CHECK(OrderOf(q.spec) == Strings{"c2-n", "c1+"});
  CHECK(q.spec.input_order == InputOrder::kUnsorted);

  q = Plan("SELECT avg(x) filter(where y) FROM t");
  CHECK(q.sql ==
        "SELECT count(x) filter(where y) AS \"pgring:avg_count_1\", sum(x) filter(where y) AS avg "
        "FROM t");
}

TEST_CASE("count, sum, min and max map to merge aggregates", "[shard_sql]") {
  ScatterQuery q = Plan(
      "SELECT count(*), count(x) AS n, sum(x), min(t), max(ts) FILTER (WHERE ok) FROM t "
      "WHERE a = 1");
  CHECK_FALSE(q.rewritten);
  CHECK(AggregatesOf(q.spec) == Strings{"count:0", "count:1", "sum:2", "min:3", "max:4"});
  CHECK(q.spec.group_by.empty());
  CHECK(q.spec.hidden_columns.empty());
  CHECK(q.spec.input_order == InputOrder::kUnsorted);
}

TEST_CASE("GROUP BY groups by the plain columns of the select list", "[shard_sql]") {
  ScatterQuery q =
      Plan("SELECT status, region, count(*), sum(total) FROM orders GROUP BY 2, status");
  CHECK_FALSE(q.rewritten);
  CHECK(q.spec.group_by == Ints{0, 1});
  CHECK(AggregatesOf(q.spec) == Strings{"count:2", "sum:3"});

  q = Plan("SELECT o.status AS s, avg(total) FROM orders o GROUP BY 1 ORDER BY 2 LIMIT 5");
  CHECK(q.sql ==
        "SELECT count(total) AS \"pgring:avg_count_1\", o.status AS s, sum(total) AS avg "
        "FROM orders o GROUP BY 2 ORDER BY 3 LIMIT NULL");
  CHECK(q.spec.group_by == Ints{1});
  CHECK(OrderOf(q.spec) == Strings{"c2+"});
  CHECK(q.spec.limit == 5);

  // By column name or qualified name, not by output name (PostgreSQL would group by a
  // column s of the table if it has one).
  CHECK(Plan("SELECT o.status, count(*) FROM orders o GROUP BY status").spec.group_by == Ints{0});
  CHECK(Plan("SELECT status, count(*) FROM orders o GROUP BY o.status").spec.group_by == Ints{0});
  CHECK(Plan("SELECT status AS s, count(*) FROM orders GROUP BY status").spec.group_by == Ints{0});
  CHECK(protocol::SqlStateOf(PlanError("SELECT status AS s, count(*) FROM orders GROUP BY s")) ==
        "0A000");

  // An expression next to aggregates must be a GROUP BY item itself.
  q = Plan("SELECT date_trunc('day', ts) AS day, count(*) FROM t GROUP BY 1 ORDER BY day");
  CHECK(q.spec.group_by == Ints{0});
  CHECK(OrderOf(q.spec) == Strings{"c0+"});
  CHECK(Plan("SELECT lower(s), max(x) FROM t GROUP BY lower(s)").spec.group_by == Ints{0});

  // Without aggregates every output column is a key.
  q = Plan("SELECT a, lower(b) FROM t GROUP BY a, lower(b) LIMIT 3 OFFSET 1");
  CHECK(q.spec.group_by == Ints{0, 1});
  CHECK(q.sql == "SELECT a, lower(b) FROM t GROUP BY a, lower(b) LIMIT NULL OFFSET 0");
  CHECK(q.spec.limit == 3);
  CHECK(q.spec.offset == 1);
}

TEST_CASE("GROUP BY items outside the select list are refused", "[shard_sql]") {
  absl::Status st = PlanError("SELECT a, count(*) FROM t GROUP BY a, b");
  CHECK(protocol::SqlStateOf(st) == "0A000");
  CHECK(protocol::MessageOf(st).find("GROUP BY") != std::string_view::npos);
  CHECK(protocol::HintOf(st).find("group by exactly the columns you select") != std::string::npos);
  CHECK(protocol::SqlStateOf(PlanError("SELECT a, count(*) FROM t GROUP BY ROLLUP (a)")) ==
        "0A000");
  CHECK(protocol::SqlStateOf(PlanError("SELECT a, count(*) FROM t GROUP BY a + 1")) == "0A000");
  CHECK(protocol::SqlStateOf(PlanError("SELECT x.a, count(*) FROM t x GROUP BY y.a")) == "0A000");
  CHECK(protocol::SqlStateOf(PlanError("SELECT a, count(*) FROM t GROUP BY 2")) == "0A000");
}

TEST_CASE("SELECT DISTINCT groups by every output column", "[shard_sql]") {
  ScatterQuery q = Plan("SELECT DISTINCT a, b FROM t ORDER BY b DESC LIMIT 10 OFFSET 5");
  CHECK(q.sql == "SELECT DISTINCT a, b FROM t ORDER BY b DESC LIMIT NULL OFFSET 0");
  CHECK(q.spec.group_by == Ints{0, 1});
  CHECK(q.spec.aggregates.empty());
  CHECK(OrderOf(q.spec) == Strings{"c1-n"});
  CHECK(q.spec.input_order == InputOrder::kUnsorted);
  CHECK(q.spec.limit == 10);
  CHECK(q.spec.offset == 5);

  q = Plan("SELECT DISTINCT * FROM t");
  CHECK_FALSE(q.rewritten);
  absl::StatusOr<MergeSpec> spec =
      CompleteSpec(q, std::vector<protocol::RowField>{Field("a"), Field("b"), Field("c")}, nullptr);
  REQUIRE(spec.ok());
  CHECK(spec->group_by == Ints{0, 1, 2});
}

TEST_CASE("ORDER BY keys in every direction", "[shard_sql]") {
  ScatterQuery q = Plan(
      "SELECT id, name, created FROM t ORDER BY created DESC, name ASC NULLS FIRST, 1 DESC NULLS "
      "LAST, id");
  CHECK_FALSE(q.rewritten);
  CHECK(OrderOf(q.spec) == Strings{"c2-n", "c1+n", "c0-", "c0+"});
  CHECK(q.spec.input_order == InputOrder::kSorted);

  CHECK(protocol::SqlStateOf(PlanError("SELECT id FROM t ORDER BY name")) == "0A000");
  CHECK(protocol::SqlStateOf(PlanError("SELECT id FROM t ORDER BY id USING >")) == "0A000");
}

TEST_CASE("LIMIT is pushed down as offset + limit, OFFSET is not", "[shard_sql]") {
  ScatterQuery q = Plan("SELECT id FROM t ORDER BY id LIMIT 10 OFFSET 20");
  CHECK(q.sql == "SELECT id FROM t ORDER BY id LIMIT 30 OFFSET 0");
  CHECK(q.spec.limit == 10);
  CHECK(q.spec.offset == 20);

  q = Plan("SELECT id FROM t ORDER BY id OFFSET 20 LIMIT 10 FOR SHARE");
  CHECK(q.sql == "SELECT id FROM t ORDER BY id OFFSET 0 LIMIT 30 FOR SHARE");

  q = Plan("SELECT id FROM t OFFSET 5 ROWS FETCH FIRST 10 ROWS ONLY");
  CHECK(q.sql == "SELECT id FROM t OFFSET 0 ROWS FETCH FIRST 15 ROWS ONLY");

  q = Plan("SELECT id FROM t ORDER BY id LIMIT 10::bigint OFFSET (2)");
  CHECK(q.sql == "SELECT id FROM t ORDER BY id LIMIT 12 OFFSET (0)");

  q = Plan("SELECT id FROM t OFFSET 7");
  CHECK(q.sql == "SELECT id FROM t OFFSET 0");
  CHECK_FALSE(q.spec.limit.has_value());
  CHECK(q.spec.offset == 7);

  q = Plan("SELECT id FROM t LIMIT 9223372036854775807 OFFSET 1");
  CHECK(q.sql == "SELECT id FROM t LIMIT 9223372036854775807 OFFSET 0");

  // OFFSET 0 and OFFSET NULL skip nothing: no rewrite.
  q = Plan("SELECT id FROM t LIMIT 4 OFFSET 0");
  CHECK_FALSE(q.rewritten);
  CHECK(q.spec.limit == 4);
  q = Plan("SELECT id FROM t LIMIT ALL OFFSET NULL");
  CHECK_FALSE(q.rewritten);
  CHECK_FALSE(q.spec.limit.has_value());
  CHECK_FALSE(q.spec.offset.has_value());

  // Aggregates: the shards return every group.
  q = Plan("SELECT count(*) FROM t FETCH FIRST +2 ROWS ONLY");
  CHECK(q.sql == "SELECT count(*) FROM t FETCH FIRST NULL ROWS ONLY");
  CHECK(q.spec.limit == 2);
}

TEST_CASE("LIMIT $1 OFFSET $2 take their values from Bind", "[shard_sql]") {
  ScatterQuery q = Plan("SELECT id FROM t ORDER BY id LIMIT $1 OFFSET $2");
  CHECK(q.sql ==
        "SELECT id FROM t ORDER BY id LIMIT (least(($1)::int8, 9223372036854775807 - "
        "($2)::int8) + ($2)::int8) OFFSET (0 * ($2)::int8)");
  CHECK(q.pending.limit_param == 1);
  CHECK(q.pending.offset_param == 2);
  const std::vector<protocol::RowField> fields = {Field("id")};

  auto bytes = [](std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); };
  protocol::BindParams bind;
  bind.values = {bytes("10"), bytes(" -0 ")};
  absl::StatusOr<MergeSpec> spec = CompleteSpec(q, fields, &bind);
  REQUIRE(spec.ok());
  CHECK(spec->limit == 10);
  CHECK_FALSE(spec->offset.has_value());
  CHECK(OrderOf(*spec) == Strings{"c0+"});

  static const unsigned char kInt8Five[] = {0, 0, 0, 0, 0, 0, 0, 5};
  static const unsigned char kInt4Three[] = {0, 0, 0, 3};
  bind.formats = {1};
  bind.values = {std::as_bytes(std::span(kInt8Five)), std::as_bytes(std::span(kInt4Three))};
  spec = CompleteSpec(q, fields, &bind);
  REQUIRE(spec.ok());
  CHECK(spec->limit == 5);
  CHECK(spec->offset == 3);

  bind.formats = {0, 1};
  bind.values = {std::nullopt, std::as_bytes(std::span(kInt4Three))};
  spec = CompleteSpec(q, fields, &bind);
  REQUIRE(spec.ok());
  CHECK_FALSE(spec->limit.has_value());  // LIMIT NULL: no limit
  CHECK(spec->offset == 3);

  auto state = [&](decltype(protocol::BindParams::values) values,
                   decltype(protocol::BindParams::formats) formats = {}) {
    protocol::BindParams b;
    b.values = std::move(values);
    b.formats = std::move(formats);
    return protocol::SqlStateOf(CompleteSpec(q, fields, &b).status());
  };
  CHECK(state({bytes("-1"), bytes("0")}) == "2201W");
  CHECK(state({bytes("1"), bytes("-1")}) == "2201X");
  CHECK(state({bytes("1x"), bytes("0")}) == "22P02");
  CHECK(state({bytes(""), bytes("0")}) == "22P02");
  CHECK(state({bytes("9223372036854775808"), bytes("0")}) == "22003");
  CHECK(state({bytes("-9223372036854775808"), bytes("0")}) == "2201W");
  CHECK(state({bytes("123"), bytes("0")}, {1}) == "22P03");
  CHECK(state({bytes("1")}) == "08P01");
  CHECK(protocol::SqlStateOf(CompleteSpec(q, fields, nullptr).status()) == "08P01");

  // A LIMIT parameter alone is pushed down as it is.
  q = Plan("SELECT id FROM t ORDER BY id LIMIT $1");
  CHECK_FALSE(q.rewritten);
  // With grouping it stays referenced but limits nothing.
  q = Plan("SELECT DISTINCT id FROM t LIMIT $1::int4 OFFSET $2");
  CHECK(q.sql ==
        "SELECT DISTINCT id FROM t LIMIT (NULL + 0 * ($1::int4)::int8) OFFSET (0 * ($2)::int8)");
  q = Plan("SELECT id FROM t LIMIT 10 OFFSET $1");
  CHECK(q.sql ==
        "SELECT id FROM t LIMIT (least((10)::int8, 9223372036854775807 - ($1)::int8) + "
        "($1)::int8) OFFSET (0 * ($1)::int8)");
  CHECK(q.spec.limit == 10);
  CHECK(q.pending.offset_param == 1);
}

TEST_CASE("LIMIT and OFFSET that pgring cannot compute are refused", "[shard_sql]") {
  CHECK(protocol::SqlStateOf(PlanError("SELECT id FROM t LIMIT 2 + 3")) == "0A000");
  CHECK(protocol::SqlStateOf(PlanError("SELECT id FROM t OFFSET (SELECT 1)")) == "0A000");
  CHECK(protocol::SqlStateOf(PlanError("SELECT id FROM t LIMIT -1")) == "2201W");
  CHECK(protocol::SqlStateOf(PlanError("SELECT id FROM t OFFSET -1")) == "2201X");
  CHECK(protocol::SqlStateOf(PlanError("SELECT id FROM t OFFSET 1 FETCH FIRST ROW ONLY")) ==
        "0A000");
}

TEST_CASE("SELECT * ORDER BY a column name is resolved from the RowDescription", "[shard_sql]") {
  ScatterQuery q = Plan("SELECT * FROM t ORDER BY name DESC, 1");
  CHECK_FALSE(q.rewritten);
  REQUIRE(q.pending.order_keys.size() == 1);
  const std::vector<protocol::RowField> fields = {Field("id"), Field("name", 25), Field("x")};
  absl::StatusOr<MergeSpec> spec = CompleteSpec(q, fields, nullptr);
  REQUIRE(spec.ok());
  CHECK(OrderOf(*spec) == Strings{"c1-n", "c0+"});

  q = Plan("SELECT * FROM t ORDER BY missing");
  absl::Status st = CompleteSpec(q, fields, nullptr).status();
  CHECK(protocol::SqlStateOf(st) == "0A000");
  q = Plan("SELECT * FROM t ORDER BY id");
  const std::vector<protocol::RowField> twice = {Field("id"), Field("id")};
  CHECK(protocol::SqlStateOf(CompleteSpec(q, twice, nullptr).status()) == "0A000");

  // Entries after a * are counted from the end.
  q = Plan("SELECT *, lower(name) AS low FROM t ORDER BY low, 2");
  spec = CompleteSpec(
      q, std::vector<protocol::RowField>{Field("id"), Field("name"), Field("x"), Field("low")},
      nullptr);
  REQUIRE(spec.ok());
  CHECK(OrderOf(*spec) == Strings{"c3+", "c1+"});
  q = Plan("SELECT id AS first, * FROM t ORDER BY first");
  CHECK(OrderOf(q.spec) == Strings{"c0+"});
  CHECK(q.pending.order_keys.empty());
}

TEST_CASE("CompleteSpec refuses avg(real) and mismatched descriptions", "[shard_sql]") {
  ScatterQuery q = Plan("SELECT avg(r) FROM t");
  absl::Status st =
      CompleteSpec(q, std::vector<protocol::RowField>{Field("c", 20), Field("avg", 700)}, nullptr)
          .status();
  CHECK(protocol::SqlStateOf(st) == "0A000");
  CHECK(protocol::HintOf(st).find("avg(x::float8)") != std::string::npos);
  absl::StatusOr<MergeSpec> spec =
      CompleteSpec(q, std::vector<protocol::RowField>{Field("c", 20), Field("avg", 701)}, nullptr);
  REQUIRE(spec.ok());
  CHECK(AggregatesOf(*spec) == Strings{"avg:1/0"});
  CHECK(protocol::SqlStateOf(
            CompleteSpec(q, std::vector<protocol::RowField>{Field("avg", 20)}, nullptr).status()) ==
        "XX000");
}

TEST_CASE("PlanScatter refuses what cannot be merged exactly", "[shard_sql]") {
  CHECK(protocol::SqlStateOf(PlanError("SELECT count(DISTINCT a) FROM t")) == "0A000");
  CHECK(protocol::SqlStateOf(PlanError("SELECT string_agg(a, ',') FROM t")) == "0A000");
  CHECK(protocol::SqlStateOf(PlanError("SELECT DISTINCT count(*) FROM t")) == "0A000");
  CHECK(protocol::SqlStateOf(PlanError("SELECT sum(x) / count(*) FROM t")) == "0A000");
  CHECK(protocol::SqlStateOf(PlanError("SELECT 1, count(*) FROM t")) == "0A000");
  CHECK(protocol::SqlStateOf(PlanError("SELECT g, sum(x) / count(*) FROM t GROUP BY g")) ==
        "0A000");
  CHECK(protocol::SqlStateOf(PlanError("SELECT *, count(*) FROM t GROUP BY id")) == "0A000");
  CHECK(protocol::SqlStateOf(PlanError("SELECT *, count(*) FROM t GROUP BY 1")) == "0A000");
  CHECK(protocol::SqlStateOf(PlanError("SELECT avg(x) OVER () FROM t")) == "0A000");
  CHECK(protocol::SqlStateOf(
            PlanError("SELECT g, count(*) FROM t GROUP BY g HAVING count(*) > 1")) == "0A000");
  CHECK(protocol::SqlStateOf(PlanError("SELECT DISTINCT ON (a) a, b FROM t")) == "0A000");
  CHECK(protocol::SqlStateOf(PlanError("SELECT a FROM t UNION SELECT 1")) == "0A000");
  CHECK(protocol::SqlStateOf(
            PlanError("SELECT a FROM t ORDER BY a FETCH FIRST 3 ROWS WITH TIES")) == "0A000");
  Analyzed a = Parse("SELECT 1");
  CHECK(protocol::SqlStateOf(
            PlanScatter(a.sql, {3, 10}, a.statement(), FactsOf(a.statement())).status()) ==
        "XX000");
}

TEST_CASE("EXECUTE keeps its text when no rewrite is needed, else is refused", "[shard_sql]") {
  Analyzed exec = Parse("EXECUTE p(5)");
  auto plan = [&](const std::string& prepared) {
    Analyzed inner = Parse(prepared);
    return PlanScatter(exec.sql, exec.range(), exec.statement(), FactsOf(inner.statement()));
  };
  absl::StatusOr<ScatterQuery> q = plan("SELECT a FROM t ORDER BY a DESC LIMIT 3");
  REQUIRE(q.ok());
  CHECK(q->sql == "EXECUTE p(5)");
  CHECK_FALSE(q->rewritten);
  CHECK(OrderOf(q->spec) == Strings{"c0-n"});
  CHECK(q->spec.limit == 3);
  CHECK(protocol::SqlStateOf(plan("SELECT avg(a) FROM t").status()) == "0A000");
  CHECK(protocol::SqlStateOf(plan("SELECT a FROM t ORDER BY a LIMIT 3 OFFSET 1").status()) ==
        "0A000");
  CHECK(protocol::SqlStateOf(plan("SELECT a, count(*) FROM t GROUP BY a").status()) == "0A000");
}

TEST_CASE("rewrites work on one statement of several and keep leading comments", "[shard_sql]") {
  Analyzed a = Parse(
      "SET x = 1;\n-- report\n/* pgring: note */ SELECT region, avg(total) FROM orders GROUP BY "
      "region LIMIT 1 OFFSET 2; SELECT 3",
      1);
  ScatterQuery q = Plan(a);
  CHECK(q.sql ==
        "-- report\n/* pgring: note */ SELECT count(total) AS \"pgring:avg_count_1\", region, "
        "sum(total) AS avg FROM orders GROUP BY region LIMIT NULL OFFSET 0");
  CHECK(q.spec.group_by == Ints{1});
  CHECK(AggregatesOf(q.spec) == Strings{"avg:2/0"});
  CHECK(q.spec.limit == 1);
  CHECK(q.spec.offset == 2);
}

}  // namespace
}  // namespace pgring::sharding
