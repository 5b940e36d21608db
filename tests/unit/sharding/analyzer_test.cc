#include "sharding/analyzer.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/sql_error.h"
#include "sharding/analyzer_cache.h"

namespace pgring::sharding {
namespace {

using Kind = StatementKind;
using Strings = std::vector<std::string>;

Analysis Parse(std::string_view sql) {
  absl::StatusOr<Analysis> a = Analyze(sql);
  INFO(sql);
  REQUIRE(a.ok());
  return *std::move(a);
}

Statement One(std::string_view sql) {
  Analysis a = Parse(sql);
  REQUIRE(a.statements.size() == 1);
  return a.statements[0];
}

// "5", "'x'", "$1", "NULL", with "[]" for array values.
std::string Text(const KeyValue& v) {
  std::string s;
  switch (v.kind) {
    case KeyValue::Kind::kLiteral:
      s = v.literal_kind == LiteralKind::kString ? "'" + v.literal + "'" : v.literal;
      break;
    case KeyValue::Kind::kParam:
      s = "$" + std::to_string(v.param);
      break;
    case KeyValue::Kind::kNull:
      s = "NULL";
      break;
    case KeyValue::Kind::kDefault:
      s = "DEFAULT";
      break;
    case KeyValue::Kind::kExpression:
      s = "<expr>";
      break;
  }
  return v.is_array ? s + "[]" : s;
}

Strings Texts(const std::vector<KeyValue>& values) {
  Strings out;
  for (const KeyValue& v : values) out.push_back(Text(v));
  return out;
}

// Values allowed for table.column, or {"<none>"} without a constraint.
Strings Constraint(const Statement& s, std::string_view table, std::string_view column) {
  for (const ColumnConstraint& c : s.constraints) {
    if (c.table == table && c.column == column) return Texts(c.values);
  }
  return {"<none>"};
}

Strings TableNames(const Statement& s) {
  Strings out;
  for (const TableRef& t : s.tables)
    out.push_back(t.schema.empty() ? t.name : t.schema + "." + t.name);
  return out;
}

bool HasJoin(const Statement& s, std::string_view t1, std::string_view c1, std::string_view t2,
             std::string_view c2) {
  for (const ColumnEquality& j : s.joins) {
    if ((j.table1 == t1 && j.column1 == c1 && j.table2 == t2 && j.column2 == c2) ||
        (j.table1 == t2 && j.column1 == c2 && j.table2 == t1 && j.column2 == c1)) {
      return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// Empty input, SELECT basics

TEST_CASE("empty query strings give one kEmpty statement", "[analyzer]") {
  for (std::string_view sql : {"", "   ", ";", " ; ; ", "-- only a comment", "/* c */"}) {
    INFO(sql);
    Analysis a = Parse(sql);
    REQUIRE(a.statements.size() == 1);
    CHECK(a.statements[0].kind == Kind::kEmpty);
    CHECK(a.ranges[0] == std::pair<size_t, size_t>(0, 0));
  }
}

TEST_CASE("SELECT without FROM has no tables", "[analyzer]") {
  Statement s = One("SELECT 1 AS one, now()");
  CHECK(s.kind == Kind::kSelect);
  CHECK_FALSE(s.writes);
  CHECK(s.tables.empty());
  CHECK(s.constraints.empty());
  REQUIRE(s.targets.size() == 2);
  CHECK(s.targets[0].name == "one");
  CHECK(s.targets[1].name == "now");
  CHECK(s.num_params == 0);
}

TEST_CASE("integer equality constrains the table", "[analyzer]") {
  Statement s = One("SELECT * FROM orders WHERE tenant_id = 42");
  CHECK(s.kind == Kind::kSelect);
  CHECK(TableNames(s) == Strings{"orders"});
  REQUIRE(s.constraints.size() == 1);
  CHECK(s.constraints[0].table == "orders");
  CHECK(s.constraints[0].column == "tenant_id");
  REQUIRE(s.constraints[0].values.size() == 1);
  const KeyValue& v = s.constraints[0].values[0];
  CHECK(v.kind == KeyValue::Kind::kLiteral);
  CHECK(v.literal == "42");
  CHECK(v.literal_kind == LiteralKind::kInteger);
  CHECK_FALSE(v.is_string());
}

TEST_CASE("string, float and boolean literals keep their kind", "[analyzer]") {
  Statement s = One(
      "SELECT * FROM t WHERE name = 'it''s' AND ratio = 1.50 AND flag = true AND bits = B'101'");
  REQUIRE(Constraint(s, "t", "name") == Strings{"'it's'"});
  CHECK(Constraint(s, "t", "ratio") == Strings{"1.50"});
  CHECK(Constraint(s, "t", "flag") == Strings{"true"});
  CHECK(Constraint(s, "t", "bits") == Strings{"b101"});
  for (const ColumnConstraint& c : s.constraints) {
    LiteralKind want = c.column == "name"    ? LiteralKind::kString
                       : c.column == "ratio" ? LiteralKind::kFloat
                       : c.column == "flag"  ? LiteralKind::kBoolean
                                             : LiteralKind::kBitString;
    CHECK(c.values[0].literal_kind == want);
    CHECK(c.values[0].is_string() == (c.column == "name"));
  }
}

TEST_CASE("negative numbers are literals with a minus sign", "[analyzer]") {
  Statement s = One("SELECT * FROM t WHERE a = -5 AND b = -2.5 AND c = -(7) AND d = -9::bigint");
  CHECK(Constraint(s, "t", "a") == Strings{"-5"});
  CHECK(Constraint(s, "t", "b") == Strings{"-2.5"});
  CHECK(Constraint(s, "t", "c") == Strings{"-7"});
  CHECK(Constraint(s, "t", "d") == Strings{"-9"});
}

TEST_CASE("zero and negative integers in every spelling", "[analyzer]") {
  Statement s =
      One("SELECT * FROM t WHERE a = 0 AND b = -0 AND c = - 12 AND d = - -3 AND e = -(-(4)) AND "
          "f = -2147483648 AND g = 007");
  CHECK(Constraint(s, "t", "a") == Strings{"0"});
  CHECK(Constraint(s, "t", "b") == Strings{"0"});
  CHECK(Constraint(s, "t", "c") == Strings{"-12"});
  CHECK(Constraint(s, "t", "d") == Strings{"3"});
  CHECK(Constraint(s, "t", "e") == Strings{"4"});
  CHECK(Constraint(s, "t", "f") == Strings{"-2147483648"});
  CHECK(Constraint(s, "t", "g") == Strings{"7"});
  // A comment inside the constant hides its value: not routable rather than wrong.
  CHECK(Constraint(One("SELECT * FROM t WHERE a = -/* c */5"), "t", "a") == Strings{"<none>"});
  Statement insert = One("INSERT INTO t VALUES (-1, 0, -99)");
  REQUIRE(insert.insert.has_value());
  CHECK(Texts(insert.insert->rows[0]) == Strings{"-1", "0", "-99"});
}

TEST_CASE("string literals are decoded exactly", "[analyzer]") {
  Statement s =
      One("SELECT * FROM t WHERE a = 'x\"y\\z' AND b = E'tab\\there\\nnl' AND c = 'caf\u00e9' "
          "AND d = E'\\x01\\\\' AND e = $$dollar 'q'$$ AND f = U&'\\0041b'");
  CHECK(Constraint(s, "t", "a") == Strings{"'x\"y\\z'"});
  CHECK(Constraint(s, "t", "b") == Strings{"'tab\there\nnl'"});
  CHECK(Constraint(s, "t", "c") == Strings{"'caf\u00e9'"});
  CHECK(Constraint(s, "t", "d") == Strings{"'\x01\\'"});
  CHECK(Constraint(s, "t", "e") == Strings{"'dollar 'q''"});
  CHECK(Constraint(s, "t", "f") == Strings{"'Ab'"});
}

TEST_CASE("integers beyond int4 stay integers", "[analyzer]") {
  Statement s = One("SELECT * FROM t WHERE k = 9223372036854775807 OR k = -2147483649");
  CHECK(Constraint(s, "t", "k") == Strings{"9223372036854775807", "-2147483649"});
  for (const KeyValue& v : s.constraints[0].values) CHECK(v.literal_kind == LiteralKind::kInteger);
}

TEST_CASE("typed casts keep the literal and name the type", "[analyzer]") {
  Statement s =
      One("SELECT * FROM t WHERE a = '5'::bigint AND b = CAST('7' AS int8) AND "
          "c = '3b241101-e2bb-4255-8caf-4136c566a962'::uuid");
  REQUIRE(s.constraints.size() == 3);
  for (const ColumnConstraint& c : s.constraints) {
    const KeyValue& v = c.values[0];
    CHECK(v.kind == KeyValue::Kind::kLiteral);
    CHECK(v.literal_kind == LiteralKind::kString);
    CHECK(v.cast == (c.column == "c" ? "uuid" : "int8"));
  }
  CHECK(Constraint(s, "t", "a") == Strings{"'5'"});
  CHECK(Constraint(s, "t", "b") == Strings{"'7'"});
}

TEST_CASE("parameters, cast parameters and the highest $n", "[analyzer]") {
  Statement s = One("SELECT $3 FROM t WHERE a = $1 AND b = $2::bigint");
  CHECK(Constraint(s, "t", "a") == Strings{"$1"});
  CHECK(Constraint(s, "t", "b") == Strings{"$2"});
  for (const ColumnConstraint& c : s.constraints) {
    CHECK(c.values[0].kind == KeyValue::Kind::kParam);
    CHECK(c.values[0].cast == (c.column == "b" ? "int8" : ""));
  }
  CHECK(s.num_params == 3);
}

TEST_CASE("IN lists give several values", "[analyzer]") {
  Statement s = One("SELECT * FROM t WHERE k IN (1, 2, 3, 2)");
  CHECK(Constraint(s, "t", "k") == Strings{"1", "2", "3"});
  CHECK(Constraint(One("SELECT * FROM t WHERE k NOT IN (1, 2)"), "t", "k") == Strings{"<none>"});
  CHECK(Constraint(One("SELECT * FROM t WHERE k IN (1, f())"), "t", "k") == Strings{"<none>"});
}

TEST_CASE("= ANY($1) is an array parameter", "[analyzer]") {
  Statement s = One("SELECT * FROM t WHERE k = ANY($1)");
  REQUIRE(Constraint(s, "t", "k") == Strings{"$1[]"});
  CHECK(s.constraints[0].values[0].kind == KeyValue::Kind::kParam);
  CHECK(s.constraints[0].values[0].is_array);
  Statement cast = One("SELECT * FROM t WHERE k = ANY($1::bigint[])");
  REQUIRE(Constraint(cast, "t", "k") == Strings{"$1[]"});
  CHECK(cast.constraints[0].values[0].cast == "int8[]");
}

TEST_CASE("= ANY(ARRAY[...]) expands the elements", "[analyzer]") {
  Statement s = One("SELECT * FROM t WHERE k = ANY(ARRAY[10, 20]) AND j = ANY(ARRAY[1,2]::int8[])");
  CHECK(Constraint(s, "t", "k") == Strings{"10", "20"});
  CHECK(Constraint(s, "t", "j") == Strings{"1", "2"});
  for (const ColumnConstraint& c : s.constraints) {
    CHECK_FALSE(c.values[0].is_array);
    CHECK(c.values[0].cast == (c.column == "j" ? "int8" : ""));
  }
  Statement lit = One("SELECT * FROM t WHERE k = ANY('{1,2}'::bigint[])");
  CHECK(Constraint(lit, "t", "k") == Strings{"'{1,2}'[]"});
  CHECK(Constraint(One("SELECT * FROM t WHERE k <> ALL($1)"), "t", "k") == Strings{"<none>"});
}

TEST_CASE("an OR of equalities on one column is a multi-value constraint", "[analyzer]") {
  CHECK(Constraint(One("SELECT * FROM t WHERE k = 1 OR k = 2 OR k IN (3, $1)"), "t", "k") ==
        Strings{"1", "2", "3", "$1"});
  CHECK(Constraint(One("SELECT * FROM t WHERE k = 1 OR j = 2"), "t", "k") == Strings{"<none>"});
  CHECK(Constraint(One("SELECT * FROM t WHERE k = 1 OR k > 5"), "t", "k") == Strings{"<none>"});
}

TEST_CASE("NOT, inequalities, BETWEEN and LIKE do not route", "[analyzer]") {
  for (std::string_view sql :
       {"SELECT * FROM t WHERE NOT (k = 1)", "SELECT * FROM t WHERE k <> 1",
        "SELECT * FROM t WHERE k BETWEEN 1 AND 1", "SELECT * FROM t WHERE k > 1 AND k < 3",
        "SELECT * FROM t WHERE k LIKE 'a'", "SELECT * FROM t WHERE k IS NULL",
        "SELECT * FROM t WHERE k = lower('X')", "SELECT * FROM t WHERE k = other_col",
        "SELECT * FROM t WHERE k + 0 = 5"}) {
    INFO(sql);
    CHECK(One(sql).constraints.empty());
  }
}

TEST_CASE("AND chains keep every constraint, whatever the nesting", "[analyzer]") {
  Statement s = One("SELECT * FROM t WHERE (a = 1 AND (b = 2 AND c > 3)) AND d = 'x'");
  CHECK(Constraint(s, "t", "a") == Strings{"1"});
  CHECK(Constraint(s, "t", "b") == Strings{"2"});
  CHECK(Constraint(s, "t", "d") == Strings{"'x'"});
  CHECK(Constraint(s, "t", "c") == Strings{"<none>"});
}

TEST_CASE("value on the left of = works too", "[analyzer]") {
  CHECK(Constraint(One("SELECT * FROM t WHERE 7 = k"), "t", "k") == Strings{"7"});
}

TEST_CASE("NULL and the tighter of two constraints", "[analyzer]") {
  CHECK(Constraint(One("SELECT * FROM t WHERE k = NULL"), "t", "k") == Strings{"NULL"});
  CHECK(Constraint(One("SELECT * FROM t WHERE k IN (1, 2, 3) AND k = 2"), "t", "k") ==
        Strings{"2"});
}

TEST_CASE("qualified columns resolve aliases to table names", "[analyzer]") {
  Statement s =
      One("SELECT o.id FROM app.orders AS o WHERE o.tenant_id = 5 AND app.orders.region = 'eu'");
  REQUIRE(s.tables.size() == 1);
  CHECK(s.tables[0].schema == "app");
  CHECK(s.tables[0].name == "orders");
  CHECK(s.tables[0].alias == "o");
  // With an alias, PostgreSQL hides the table name, so app.orders.region does not resolve.
  CHECK(Constraint(s, "orders", "tenant_id") == Strings{"5"});
  CHECK(Constraint(s, "orders", "region") == Strings{"<none>"});
  REQUIRE(s.constraints.size() == 1);
  CHECK(s.constraints[0].schema == "app");

  Statement t = One("SELECT * FROM app.orders WHERE orders.a = 1 AND app.orders.b = 2");
  CHECK(Constraint(t, "orders", "a") == Strings{"1"});
  CHECK(Constraint(t, "orders", "b") == Strings{"2"});
}

TEST_CASE("identifiers fold like PostgreSQL: unquoted lower-cased, quoted kept", "[analyzer]") {
  Statement s = One("SELECT * FROM Orders o JOIN \"Items\" i ON o.Tenant_ID = i.\"TenantId\"");
  CHECK(TableNames(s) == Strings{"orders", "Items"});
  CHECK(HasJoin(s, "orders", "tenant_id", "Items", "TenantId"));
}

// ---------------------------------------------------------------------------------------
// Joins and co-location

TEST_CASE("inner join equality is recorded and carries constraints", "[analyzer]") {
  Statement s =
      One("SELECT * FROM orders o JOIN items i ON o.tenant_id = i.tenant_id AND o.id = i.order_id "
          "WHERE o.tenant_id = 9");
  CHECK(TableNames(s) == Strings{"orders", "items"});
  CHECK(HasJoin(s, "orders", "tenant_id", "items", "tenant_id"));
  CHECK(HasJoin(s, "orders", "id", "items", "order_id"));
  CHECK(Constraint(s, "orders", "tenant_id") == Strings{"9"});
  CHECK(Constraint(s, "items", "tenant_id") == Strings{"9"});
  CHECK(Constraint(s, "items", "order_id") == Strings{"<none>"});
}

TEST_CASE("equalities in WHERE (comma joins) act like join conditions", "[analyzer]") {
  Statement s = One("SELECT * FROM a, b WHERE a.k = b.k AND b.k = $1");
  CHECK(HasJoin(s, "a", "k", "b", "k"));
  CHECK(Constraint(s, "a", "k") == Strings{"$1"});
  CHECK(Constraint(s, "b", "k") == Strings{"$1"});
}

TEST_CASE("left join ON constrains only the nullable side", "[analyzer]") {
  Statement s = One("SELECT * FROM a LEFT JOIN b ON a.k = b.k AND b.k = 3 AND a.x = 4");
  CHECK(HasJoin(s, "a", "k", "b", "k"));
  CHECK(Constraint(s, "b", "k") == Strings{"3"});
  CHECK(Constraint(s, "a", "k") == Strings{"<none>"});
  CHECK(Constraint(s, "a", "x") == Strings{"<none>"});

  // A WHERE constraint on the preserved side flows into the nullable side.
  Statement w = One("SELECT * FROM a LEFT JOIN b ON a.k = b.k WHERE a.k = 8");
  CHECK(Constraint(w, "a", "k") == Strings{"8"});
  CHECK(Constraint(w, "b", "k") == Strings{"8"});

  Statement full = One("SELECT * FROM a FULL JOIN b ON a.k = b.k AND b.k = 3");
  CHECK(full.constraints.empty());
  CHECK(HasJoin(full, "a", "k", "b", "k"));
}

TEST_CASE("JOIN USING records the equality", "[analyzer]") {
  Statement s = One("SELECT * FROM a JOIN b USING (tenant_id) WHERE tenant_id = 2");
  CHECK(HasJoin(s, "a", "tenant_id", "b", "tenant_id"));
  CHECK(Constraint(s, "a", "tenant_id") == Strings{"2"});
  CHECK(Constraint(s, "b", "tenant_id") == Strings{"2"});
}

TEST_CASE("a self-join needs the constraint on every reference", "[analyzer]") {
  Statement one_side = One("SELECT * FROM t x, t y WHERE x.k = 1");
  REQUIRE(one_side.tables.size() == 1);
  CHECK(one_side.tables[0].references == 2);
  CHECK(Constraint(one_side, "t", "k") == Strings{"<none>"});

  Statement both = One("SELECT * FROM t x, t y WHERE x.k = 1 AND y.k = 2");
  CHECK(Constraint(both, "t", "k") == Strings{"1", "2"});

  Statement joined = One("SELECT * FROM t x JOIN t y ON x.k = y.k WHERE x.k = 1");
  CHECK(Constraint(joined, "t", "k") == Strings{"1"});
  CHECK(HasJoin(joined, "t", "k", "t", "k"));
}

TEST_CASE("an unqualified column is given to every table of its FROM list", "[analyzer]") {
  Statement s = One("SELECT * FROM a JOIN b ON a.id = b.a_id WHERE tenant_id = 4");
  CHECK(Constraint(s, "a", "tenant_id") == Strings{"4"});
  CHECK(Constraint(s, "b", "tenant_id") == Strings{"4"});
}

// ---------------------------------------------------------------------------------------
// Subqueries, CTEs, set operations

TEST_CASE("IN (SELECT ...) lists the inner tables and relates the columns", "[analyzer]") {
  Statement s =
      One("SELECT * FROM orders WHERE tenant_id = 3 AND customer_id IN "
          "(SELECT id FROM customers WHERE tenant_id = 3 AND vip)");
  CHECK(s.has_subquery);
  CHECK(TableNames(s) == Strings{"orders", "customers"});
  CHECK(Constraint(s, "orders", "tenant_id") == Strings{"3"});
  CHECK(Constraint(s, "customers", "tenant_id") == Strings{"3"});
  CHECK(HasJoin(s, "orders", "customer_id", "customers", "id"));

  Statement flow = One("SELECT * FROM a WHERE a.k IN (SELECT b.k FROM b WHERE b.k = 6)");
  CHECK(Constraint(flow, "a", "k") == Strings{"6"});
  CHECK(Constraint(flow, "b", "k") == Strings{"6"});
  Statement limited = One("SELECT * FROM a WHERE a.k IN (SELECT b.k FROM b LIMIT 1) AND a.k = 1");
  CHECK(Constraint(limited, "b", "k") == Strings{"<none>"});
}

TEST_CASE("correlated subqueries relate inner and outer tables one way", "[analyzer]") {
  Statement s =
      One("SELECT * FROM a WHERE a.k = 5 AND EXISTS (SELECT 1 FROM b WHERE b.k = a.k AND b.x = 1)");
  CHECK(s.has_subquery);
  CHECK(HasJoin(s, "b", "k", "a", "k"));
  CHECK(Constraint(s, "b", "k") == Strings{"5"});

  // The subquery's condition on the outer table does not filter the outer rows.
  Statement outer = One("SELECT * FROM a WHERE EXISTS (SELECT 1 FROM b WHERE a.k = 5)");
  CHECK(Constraint(outer, "a", "k") == Strings{"<none>"});
  Statement back =
      One("SELECT * FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.k = a.k AND b.k = 1)");
  CHECK(Constraint(back, "b", "k") == Strings{"1"});
  CHECK(Constraint(back, "a", "k") == Strings{"<none>"});
}

TEST_CASE("subselects in FROM and scalar subqueries", "[analyzer]") {
  Statement s =
      One("SELECT s.k, (SELECT count(*) FROM c WHERE c.k = s.k) FROM (SELECT k FROM b WHERE k = 2) "
          "AS s WHERE s.k = 2");
  CHECK(s.has_subquery);
  CHECK(TableNames(s) == Strings{"b", "c"});
  CHECK(Constraint(s, "b", "k") == Strings{"2"});
  CHECK(Constraint(s, "s", "k") == Strings{"<none>"});  // a derived table is not a table
  CHECK_FALSE(s.has_aggregates);                        // the count(*) belongs to the subquery
}

TEST_CASE("CTE names are not tables; CTE bodies are", "[analyzer]") {
  Statement s =
      One("WITH recent AS (SELECT * FROM orders WHERE tenant_id = 1) "
          "SELECT * FROM recent r JOIN items i ON r.id = i.order_id");
  CHECK(s.has_cte);
  CHECK_FALSE(s.writes);
  CHECK(TableNames(s) == Strings{"orders", "items"});
  CHECK(Constraint(s, "orders", "tenant_id") == Strings{"1"});
  CHECK(s.joins.empty());  // recent.id is not a table column
}

TEST_CASE("DML inside a CTE makes the statement write", "[analyzer]") {
  Statement s =
      One("WITH moved AS (DELETE FROM queue WHERE tenant_id = 2 RETURNING *) "
          "INSERT INTO archive SELECT * FROM moved");
  CHECK(s.kind == Kind::kInsert);
  CHECK(s.writes);
  CHECK(s.has_cte);
  CHECK(s.has_returning);
  CHECK(TableNames(s) == Strings{"queue", "archive"});
  CHECK(Constraint(s, "queue", "tenant_id") == Strings{"2"});

  Statement sel = One("WITH x AS (UPDATE t SET a = 1 RETURNING a) SELECT * FROM x");
  CHECK(sel.kind == Kind::kSelect);
  CHECK(sel.writes);
  CHECK(sel.updated_columns.empty());  // only the top-level statement's SET list counts
}

TEST_CASE("UNION lists both arms and removes duplicates unless ALL", "[analyzer]") {
  Statement s = One("SELECT id FROM a WHERE k = 1 UNION SELECT id FROM b WHERE k = 1 ORDER BY 1");
  CHECK(s.kind == Kind::kSelect);
  CHECK(s.has_set_operation);
  CHECK(s.has_distinct);
  CHECK(TableNames(s) == Strings{"a", "b"});
  CHECK(Constraint(s, "a", "k") == Strings{"1"});
  CHECK(Constraint(s, "b", "k") == Strings{"1"});
  REQUIRE(s.order_by.size() == 1);
  CHECK(s.order_by[0].position == 1);
  REQUIRE(s.targets.size() == 1);
  CHECK(s.targets[0].name == "id");

  Statement all = One("SELECT 1 UNION ALL SELECT 2");
  CHECK(all.has_set_operation);
  CHECK_FALSE(all.has_distinct);
}

// ---------------------------------------------------------------------------------------
// INSERT

TEST_CASE("INSERT with a column list", "[analyzer]") {
  Statement s = One("INSERT INTO orders (tenant_id, note) VALUES (7, 'hi')");
  CHECK(s.kind == Kind::kInsert);
  CHECK(s.writes);
  REQUIRE(s.insert.has_value());
  CHECK(s.insert->table.name == "orders");
  CHECK(s.insert->columns == Strings{"tenant_id", "note"});
  REQUIRE(s.insert->rows.size() == 1);
  CHECK(Texts(s.insert->rows[0]) == Strings{"7", "'hi'"});
  CHECK_FALSE(s.insert->from_select);
  CHECK_FALSE(s.insert->has_on_conflict);
  CHECK_FALSE(s.has_returning);
  CHECK(TableNames(s) == Strings{"orders"});
  CHECK(s.constraints.empty());  // the written rows are described by `insert`
}

TEST_CASE("INSERT without a column list", "[analyzer]") {
  Statement s = One("INSERT INTO s.t VALUES ($1, $2)");
  REQUIRE(s.insert.has_value());
  CHECK(s.insert->table.schema == "s");
  CHECK(s.insert->columns.empty());
  REQUIRE(s.insert->rows.size() == 1);
  CHECK(Texts(s.insert->rows[0]) == Strings{"$1", "$2"});
  CHECK(s.num_params == 2);
}

TEST_CASE("multi-row VALUES with NULL, DEFAULT and expressions", "[analyzer]") {
  Statement s =
      One("INSERT INTO t (k, v) VALUES (1, 'a'), (-2, NULL), (DEFAULT, now()), ($1::bigint, 'x'), "
          "('5'::int8, lower('Y'))");
  REQUIRE(s.insert.has_value());
  REQUIRE(s.insert->rows.size() == 5);
  CHECK(Texts(s.insert->rows[0]) == Strings{"1", "'a'"});
  CHECK(Texts(s.insert->rows[1]) == Strings{"-2", "NULL"});
  CHECK(Texts(s.insert->rows[2]) == Strings{"DEFAULT", "<expr>"});
  CHECK(Texts(s.insert->rows[3]) == Strings{"$1", "'x'"});
  CHECK(s.insert->rows[3][0].cast == "int8");
  CHECK(Texts(s.insert->rows[4]) == Strings{"'5'", "<expr>"});
  CHECK(s.insert->rows[4][0].cast == "int8");
}

TEST_CASE("INSERT ... SELECT", "[analyzer]") {
  Statement s = One("INSERT INTO archive (k, v) SELECT k, v FROM live WHERE k = 3");
  REQUIRE(s.insert.has_value());
  CHECK(s.insert->from_select);
  CHECK(s.insert->rows.empty());
  CHECK(s.insert->columns == Strings{"k", "v"});
  CHECK(TableNames(s) == Strings{"archive", "live"});
  CHECK(Constraint(s, "live", "k") == Strings{"3"});
  CHECK(Constraint(s, "archive", "k") == Strings{"<none>"});
}

TEST_CASE("INSERT ... ON CONFLICT and RETURNING", "[analyzer]") {
  Statement nothing = One("INSERT INTO t (k) VALUES (1) ON CONFLICT DO NOTHING");
  REQUIRE(nothing.insert.has_value());
  CHECK(nothing.insert->has_on_conflict);
  CHECK_FALSE(nothing.insert->on_conflict_update);
  CHECK(nothing.updated_columns.empty());

  Statement upsert =
      One("INSERT INTO t (k, v) VALUES (1, 2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v, "
          "k = EXCLUDED.k + 1 RETURNING id, v");
  REQUIRE(upsert.insert.has_value());
  CHECK(upsert.insert->has_on_conflict);
  CHECK(upsert.insert->on_conflict_update);
  CHECK(upsert.updated_columns == Strings{"v", "k"});
  CHECK(upsert.has_returning);
}

TEST_CASE("INSERT DEFAULT VALUES", "[analyzer]") {
  Statement s = One("INSERT INTO t DEFAULT VALUES");
  REQUIRE(s.insert.has_value());
  CHECK(s.insert->default_values);
  CHECK(s.insert->rows.empty());
  CHECK_FALSE(s.insert->from_select);
}

// ---------------------------------------------------------------------------------------
// UPDATE, DELETE

TEST_CASE("UPDATE ... SET ... WHERE", "[analyzer]") {
  Statement s =
      One("UPDATE orders SET status = 'done', tenant_id = 4 WHERE tenant_id = 3 AND id = $1");
  CHECK(s.kind == Kind::kUpdate);
  CHECK(s.writes);
  CHECK(s.updated_columns == Strings{"status", "tenant_id"});
  CHECK(Constraint(s, "orders", "tenant_id") == Strings{"3"});
  CHECK(Constraint(s, "orders", "id") == Strings{"$1"});
  CHECK_FALSE(s.insert.has_value());
}

TEST_CASE("UPDATE ... FROM joins and constrains both tables", "[analyzer]") {
  Statement s =
      One("UPDATE orders o SET total = s.total FROM summary s "
          "WHERE o.tenant_id = s.tenant_id AND s.tenant_id = 12 RETURNING o.id");
  CHECK(TableNames(s) == Strings{"orders", "summary"});
  CHECK(HasJoin(s, "orders", "tenant_id", "summary", "tenant_id"));
  CHECK(Constraint(s, "orders", "tenant_id") == Strings{"12"});
  CHECK(s.updated_columns == Strings{"total"});
  CHECK(s.has_returning);
}

TEST_CASE("UPDATE with a multi-column SET", "[analyzer]") {
  Statement s = One("UPDATE t SET (a, b) = (1, 2) WHERE k = 1");
  CHECK(s.updated_columns == Strings{"a", "b"});
}

TEST_CASE("DELETE ... USING", "[analyzer]") {
  Statement s =
      One("DELETE FROM items i USING orders o WHERE i.order_id = o.id AND o.tenant_id = 5 "
          "AND i.tenant_id = o.tenant_id");
  CHECK(s.kind == Kind::kDelete);
  CHECK(s.writes);
  CHECK(TableNames(s) == Strings{"items", "orders"});
  CHECK(Constraint(s, "items", "tenant_id") == Strings{"5"});
  CHECK(Constraint(s, "orders", "tenant_id") == Strings{"5"});
  CHECK(HasJoin(s, "items", "order_id", "orders", "id"));
  CHECK_FALSE(s.has_returning);
}

// ---------------------------------------------------------------------------------------
// COPY

TEST_CASE("COPY FROM STDIN with options", "[analyzer]") {
  Statement s =
      One("COPY orders (tenant_id, note) FROM STDIN WITH (FORMAT csv, HEADER, DELIMITER ';')");
  CHECK(s.kind == Kind::kCopy);
  CHECK(s.writes);
  REQUIRE(s.copy.has_value());
  CHECK(s.copy->is_from);
  CHECK(s.copy->stdio);
  CHECK_FALSE(s.copy->is_query);
  CHECK(s.copy->table.name == "orders");
  CHECK(s.copy->columns == Strings{"tenant_id", "note"});
  CHECK(s.copy->format == "csv");
  CHECK(s.copy->header);
  CHECK(s.copy->delimiter == std::optional<std::string>(";"));
  CHECK_FALSE(s.copy->escape.has_value());
  CHECK(TableNames(s) == Strings{"orders"});
  Statement e = One("COPY orders FROM STDIN WITH (FORMAT csv, ESCAPE '\\')");
  REQUIRE(e.copy.has_value());
  CHECK(e.copy->escape == std::optional<std::string>("\\"));
}

TEST_CASE("COPY with the old option syntax", "[analyzer]") {
  Statement s = One("COPY t FROM STDIN CSV HEADER NULL 'x'");
  REQUIRE(s.copy.has_value());
  CHECK(s.copy->format == "csv");
  CHECK(s.copy->header);
  CHECK(s.copy->null_string == std::optional<std::string>("x"));
  Statement h = One("COPY t FROM STDIN WITH (FORMAT text, HEADER false)");
  CHECK(h.copy->format == "text");
  CHECK_FALSE(h.copy->header);
}

TEST_CASE("COPY TO STDOUT reads; COPY to a file is not stdio", "[analyzer]") {
  Statement s = One("COPY t TO STDOUT");
  REQUIRE(s.copy.has_value());
  CHECK_FALSE(s.writes);
  CHECK_FALSE(s.copy->is_from);
  CHECK(s.copy->stdio);
  CHECK(s.copy->format == "text");
  CHECK_FALSE(s.copy->header);

  Statement f = One("COPY t TO '/tmp/out.csv' (FORMAT binary)");
  CHECK_FALSE(f.copy->stdio);
  CHECK(f.copy->filename == "/tmp/out.csv");
  CHECK(f.copy->format == "binary");
}

TEST_CASE("COPY (query) TO STDOUT routes by the query", "[analyzer]") {
  Statement s = One("COPY (SELECT * FROM orders WHERE tenant_id = $1) TO STDOUT");
  REQUIRE(s.copy.has_value());
  CHECK(s.copy->is_query);
  CHECK(s.copy->stdio);
  CHECK_FALSE(s.writes);
  REQUIRE(s.inner != nullptr);
  CHECK(s.inner->kind == Kind::kSelect);
  CHECK(TableNames(s) == Strings{"orders"});
  CHECK(Constraint(s, "orders", "tenant_id") == Strings{"$1"});
  CHECK(s.num_params == 1);
}

// ---------------------------------------------------------------------------------------
// DDL

TEST_CASE("CREATE / ALTER TABLE and CREATE INDEX name their tables", "[analyzer]") {
  Statement create = One("CREATE TABLE IF NOT EXISTS app.orders (tenant_id bigint, id bigint)");
  CHECK(create.kind == Kind::kDdl);
  CHECK(create.writes);
  REQUIRE(create.ddl.has_value());
  CHECK(create.ddl->action == DdlAction::kCreate);
  CHECK(create.ddl->object == DdlObject::kTable);
  CHECK(create.ddl->if_exists);
  CHECK(TableNames(create) == Strings{"app.orders"});

  Statement alter = One("ALTER TABLE orders ADD COLUMN note text");
  CHECK(alter.ddl->action == DdlAction::kAlter);
  CHECK(alter.ddl->object == DdlObject::kTable);
  CHECK(TableNames(alter) == Strings{"orders"});

  Statement index = One("CREATE INDEX CONCURRENTLY orders_k ON orders (tenant_id)");
  CHECK(index.ddl->object == DdlObject::kIndex);
  CHECK(index.ddl->concurrently);
  CHECK(index.ddl->objects == Strings{"orders_k"});
  CHECK(TableNames(index) == Strings{"orders"});
}

TEST_CASE("DROP TABLE / INDEX / SCHEMA / SEQUENCE / VIEW", "[analyzer]") {
  Statement tables = One("DROP TABLE IF EXISTS a, s.b CASCADE");
  CHECK(tables.kind == Kind::kDdl);
  CHECK(tables.ddl->action == DdlAction::kDrop);
  CHECK(tables.ddl->object == DdlObject::kTable);
  CHECK(tables.ddl->if_exists);
  CHECK(TableNames(tables) == Strings{"a", "s.b"});

  Statement index = One("DROP INDEX s.i");
  CHECK(index.ddl->object == DdlObject::kIndex);
  CHECK(index.ddl->objects == Strings{"s.i"});
  CHECK(index.tables.empty());

  CHECK(One("DROP SCHEMA app").ddl->objects == Strings{"app"});
  CHECK(One("DROP SCHEMA app").ddl->object == DdlObject::kSchema);
  CHECK(One("DROP SEQUENCE q").ddl->object == DdlObject::kSequence);
  CHECK(One("DROP VIEW v").ddl->object == DdlObject::kView);
}

TEST_CASE("CREATE SCHEMA / SEQUENCE / VIEW", "[analyzer]") {
  Statement schema = One("CREATE SCHEMA IF NOT EXISTS app");
  CHECK(schema.ddl->object == DdlObject::kSchema);
  CHECK(schema.ddl->objects == Strings{"app"});

  Statement seq = One("CREATE SEQUENCE app.ids START 10");
  CHECK(seq.ddl->object == DdlObject::kSequence);
  CHECK(seq.ddl->objects == Strings{"app.ids"});
  CHECK(One("ALTER SEQUENCE ids RESTART").ddl->action == DdlAction::kAlter);

  Statement view = One("CREATE VIEW v AS SELECT * FROM orders WHERE tenant_id = 1");
  CHECK(view.ddl->object == DdlObject::kView);
  CHECK(view.ddl->objects == Strings{"v"});
  REQUIRE(view.inner != nullptr);
  CHECK(TableNames(*view.inner) == Strings{"orders"});
}

TEST_CASE("TRUNCATE names every table", "[analyzer]") {
  Statement s = One("TRUNCATE a, app.b RESTART IDENTITY");
  CHECK(s.kind == Kind::kDdl);
  CHECK(s.ddl->action == DdlAction::kTruncate);
  CHECK(s.writes);
  CHECK(TableNames(s) == Strings{"a", "app.b"});
}

TEST_CASE("SELECT INTO and CREATE TABLE AS create tables", "[analyzer]") {
  Statement into = One("SELECT * INTO copy_t FROM t");
  CHECK(into.kind == Kind::kDdl);
  CHECK(into.writes);
  CHECK(TableNames(into) == Strings{"copy_t", "t"});
  Statement ctas = One("CREATE TABLE c AS SELECT * FROM t WHERE k = 1");
  CHECK(ctas.kind == Kind::kDdl);
  CHECK(TableNames(ctas) == Strings{"c"});
  REQUIRE(ctas.inner != nullptr);
  CHECK(Constraint(*ctas.inner, "t", "k") == Strings{"1"});
}

// ---------------------------------------------------------------------------------------
// Transactions, session commands

TEST_CASE("transaction control statements", "[analyzer]") {
  struct Case {
    std::string_view sql;
    TransactionOp op;
    std::string_view name;
  };
  for (const Case& c :
       {Case{"BEGIN", TransactionOp::kBegin, ""},
        Case{"START TRANSACTION ISOLATION LEVEL SERIALIZABLE", TransactionOp::kBegin, ""},
        Case{"COMMIT", TransactionOp::kCommit, ""}, Case{"END", TransactionOp::kCommit, ""},
        Case{"ROLLBACK", TransactionOp::kRollback, ""}, Case{"ABORT", TransactionOp::kRollback, ""},
        Case{"SAVEPOINT sp1", TransactionOp::kSavepoint, "sp1"},
        Case{"RELEASE SAVEPOINT sp1", TransactionOp::kRelease, "sp1"},
        Case{"ROLLBACK TO SAVEPOINT sp1", TransactionOp::kRollbackTo, "sp1"},
        Case{"PREPARE TRANSACTION 'g1'", TransactionOp::kPrepare, "g1"},
        Case{"COMMIT PREPARED 'g1'", TransactionOp::kCommitPrepared, "g1"},
        Case{"ROLLBACK PREPARED 'g1'", TransactionOp::kRollbackPrepared, "g1"}}) {
    INFO(c.sql);
    Statement s = One(c.sql);
    CHECK(s.kind == Kind::kTransaction);
    CHECK(s.txn_op == c.op);
    CHECK(s.txn_name == c.name);
    CHECK_FALSE(s.writes);
  }
  CHECK(One("BEGIN READ ONLY").txn_read_only);
  CHECK(One("BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY").txn_read_only);
  CHECK_FALSE(One("BEGIN READ WRITE").txn_read_only);
  CHECK(One("COMMIT AND CHAIN").txn_chain);
}

TEST_CASE("SET, SET LOCAL, RESET", "[analyzer]") {
  Statement s = One("SET search_path = app, 'public'");
  CHECK(s.kind == Kind::kSet);
  CHECK(s.set_name == "search_path");
  CHECK(s.set_value == "app, public");
  CHECK_FALSE(s.set_local);
  CHECK_FALSE(s.is_reset);

  Statement local = One("SET LOCAL statement_timeout TO 5000");
  CHECK(local.set_local);
  CHECK(local.set_name == "statement_timeout");
  CHECK(local.set_value == "5000");

  CHECK(One("SET TIME ZONE 'UTC'").set_name == "timezone");
  CHECK(One("SET TIME ZONE 'UTC'").set_value == "UTC");
  CHECK(One("SET pgring.shard_key = '42'").set_name == "pgring.shard_key");
  CHECK(One("SET pgring.shard_key = '42'").set_value == "42");
  CHECK(One("SET DateStyle TO DEFAULT").set_default);

  Statement reset = One("RESET Statement_Timeout");
  CHECK(reset.kind == Kind::kSet);
  CHECK(reset.is_reset);
  CHECK_FALSE(reset.reset_all);
  CHECK(reset.set_name == "statement_timeout");
  Statement all = One("RESET ALL");
  CHECK(all.is_reset);
  CHECK(all.reset_all);

  Statement txn = One("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
  CHECK(txn.kind == Kind::kSet);
  CHECK(txn.set_name == "transaction");
  CHECK(txn.set_value == "transaction_isolation repeatable read");
}

TEST_CASE("SHOW", "[analyzer]") {
  Statement s = One("SHOW search_path");
  CHECK(s.kind == Kind::kShow);
  CHECK(s.set_name == "search_path");
  CHECK(One("SHOW ALL").set_name == "all");
}

TEST_CASE("PREPARE carries the analysis of its statement", "[analyzer]") {
  Statement s =
      One("PREPARE get_order (bigint, text) AS SELECT * FROM orders WHERE tenant_id = $1");
  CHECK(s.kind == Kind::kPrepare);
  CHECK(s.name == "get_order");
  CHECK(s.prepare_arg_types == Strings{"int8", "text"});
  CHECK(s.num_params == 0);  // the PREPARE itself takes no parameters
  CHECK(s.tables.empty());
  REQUIRE(s.inner != nullptr);
  CHECK(s.inner->kind == Kind::kSelect);
  CHECK(s.inner->num_params == 1);
  CHECK(Constraint(*s.inner, "orders", "tenant_id") == Strings{"$1"});

  Statement w = One("PREPARE ins AS INSERT INTO t (k) VALUES ($1)");
  REQUIRE(w.inner != nullptr);
  CHECK(w.inner->writes);
  CHECK_FALSE(w.writes);
}

TEST_CASE("EXECUTE records the name and argument values", "[analyzer]") {
  Statement s = One("EXECUTE get_order(42, 'x', $1)");
  CHECK(s.kind == Kind::kExecute);
  CHECK(s.name == "get_order");
  CHECK(Texts(s.execute_args) == Strings{"42", "'x'", "$1"});
  CHECK(s.num_params == 1);
  CHECK(One("EXECUTE p").execute_args.empty());
}

TEST_CASE("DEALLOCATE name and DEALLOCATE ALL", "[analyzer]") {
  Statement s = One("DEALLOCATE get_order");
  CHECK(s.kind == Kind::kDeallocate);
  CHECK(s.name == "get_order");
  CHECK(One("DEALLOCATE PREPARE p2").name == "p2");
  Statement all = One("DEALLOCATE ALL");
  CHECK(all.kind == Kind::kDeallocate);
  CHECK(all.name.empty());
}

TEST_CASE("LISTEN, UNLISTEN, NOTIFY", "[analyzer]") {
  Statement l = One("LISTEN jobs");
  CHECK(l.kind == Kind::kListen);
  CHECK(l.name == "jobs");
  Statement u = One("UNLISTEN jobs");
  CHECK(u.kind == Kind::kUnlisten);
  CHECK(u.name == "jobs");
  Statement ua = One("UNLISTEN *");
  CHECK(ua.kind == Kind::kUnlisten);
  CHECK(ua.name.empty());
  Statement n = One("NOTIFY jobs, 'job 7 done'");
  CHECK(n.kind == Kind::kNotify);
  CHECK(n.name == "jobs");
  CHECK(n.notify_payload == "job 7 done");
}

TEST_CASE("DISCARD modes", "[analyzer]") {
  CHECK(One("DISCARD ALL").kind == Kind::kDiscard);
  CHECK(One("DISCARD ALL").discard == DiscardMode::kAll);
  CHECK(One("DISCARD PLANS").discard == DiscardMode::kPlans);
  CHECK(One("DISCARD SEQUENCES").discard == DiscardMode::kSequences);
  CHECK(One("DISCARD TEMP").discard == DiscardMode::kTemp);
}

TEST_CASE("advisory lock calls are flagged, session-level ones separately", "[analyzer]") {
  Statement session = One("SELECT pg_advisory_lock(42)");
  CHECK(session.uses_advisory_lock);
  CHECK(session.session_advisory_lock);
  Statement unlock = One("SELECT pg_advisory_unlock_all()");
  CHECK(unlock.session_advisory_lock);
  Statement xact = One("SELECT * FROM t WHERE pg_try_advisory_xact_lock(k) AND k = 1");
  CHECK(xact.uses_advisory_lock);
  CHECK_FALSE(xact.session_advisory_lock);
  CHECK(Constraint(xact, "t", "k") == Strings{"1"});
  Statement nested = One("SELECT (SELECT pg_catalog.pg_try_advisory_lock_shared(1, 2))");
  CHECK(nested.session_advisory_lock);
  CHECK_FALSE(One("SELECT pg_advisory_lockx(1)").uses_advisory_lock);
}

TEST_CASE("EXPLAIN describes its statement; only ANALYZE runs it", "[analyzer]") {
  Statement e = One("EXPLAIN SELECT * FROM orders WHERE tenant_id = 3");
  CHECK(e.kind == Kind::kExplain);
  CHECK_FALSE(e.explain_analyze);
  REQUIRE(e.inner != nullptr);
  CHECK(e.inner->kind == Kind::kSelect);
  CHECK(Constraint(e, "orders", "tenant_id") == Strings{"3"});

  Statement plain = One("EXPLAIN DELETE FROM t WHERE k = 1");
  CHECK_FALSE(plain.writes);
  REQUIRE(plain.inner != nullptr);
  CHECK(plain.inner->writes);
  Statement analyze = One("EXPLAIN (ANALYZE, BUFFERS) DELETE FROM t WHERE k = $1");
  CHECK(analyze.explain_analyze);
  CHECK(analyze.writes);
  CHECK(analyze.num_params == 1);
  CHECK(One("EXPLAIN ANALYZE SELECT 1").explain_analyze);
  CHECK_FALSE(One("EXPLAIN (ANALYZE false) SELECT 1").explain_analyze);
}

TEST_CASE("CALL and LOCK", "[analyzer]") {
  Statement call = One("CALL app.rebuild($1, 2)");
  CHECK(call.kind == Kind::kCall);
  CHECK(call.writes);
  CHECK(call.name == "app.rebuild");
  CHECK(call.num_params == 1);

  Statement lock = One("LOCK TABLE orders, items IN EXCLUSIVE MODE");
  CHECK(lock.kind == Kind::kLock);
  CHECK(lock.locks);
  CHECK_FALSE(lock.writes);
  CHECK(TableNames(lock) == Strings{"orders", "items"});
}

TEST_CASE("other statements are assumed to write and name their tables", "[analyzer]") {
  Statement s = One("VACUUM ANALYZE orders");
  CHECK(s.kind == Kind::kOther);
  CHECK(s.writes);
  CHECK(TableNames(s) == Strings{"orders"});
  CHECK(One("DO $$ BEGIN END $$").kind == Kind::kOther);
  CHECK(One("DO $$ BEGIN END $$").writes);
  Statement cursor = One("DECLARE c CURSOR FOR SELECT * FROM orders");
  CHECK(cursor.kind == Kind::kOther);
  CHECK_FALSE(cursor.writes);
  CHECK(TableNames(cursor) == Strings{"orders"});
  CHECK_FALSE(One("FETCH 10 FROM c").writes);
  CHECK_FALSE(One("CLOSE c").writes);
}

TEST_CASE("SELECT ... FOR UPDATE locks without writing", "[analyzer]") {
  Statement s = One("SELECT * FROM t WHERE k = 1 FOR UPDATE SKIP LOCKED");
  CHECK(s.kind == Kind::kSelect);
  CHECK(s.locks);
  CHECK_FALSE(s.writes);
  CHECK(One("SELECT * FROM t FOR SHARE").locks);
  CHECK_FALSE(One("SELECT * FROM t").locks);
}

// ---------------------------------------------------------------------------------------
// Scatter-gather facts

TEST_CASE("select list: columns, star and aggregates", "[analyzer]") {
  Statement s =
      One("SELECT o.tenant_id, *, count(*), sum(total) AS s, count(DISTINCT customer), "
          "avg(x) FILTER (WHERE x > 0), min(y), max(y), total::text, o.* FROM orders o");
  REQUIRE(s.targets.size() == 10);
  CHECK(s.targets[0].kind == TargetInfo::Kind::kColumn);
  CHECK(s.targets[0].table == "o");
  CHECK(s.targets[0].column == "tenant_id");
  CHECK(s.targets[0].name == "tenant_id");
  CHECK(s.targets[1].kind == TargetInfo::Kind::kStar);
  CHECK(s.targets[2].aggregate == AggregateFunc::kCount);
  CHECK(s.targets[2].agg_star);
  CHECK(s.targets[2].name == "count");
  CHECK(s.targets[3].aggregate == AggregateFunc::kSum);
  CHECK(s.targets[3].name == "s");
  CHECK(s.targets[4].aggregate == AggregateFunc::kCount);
  CHECK(s.targets[4].agg_distinct);
  CHECK_FALSE(s.targets[4].agg_star);
  CHECK(s.targets[5].aggregate == AggregateFunc::kAvg);
  CHECK(s.targets[5].agg_filter);
  CHECK(s.targets[6].aggregate == AggregateFunc::kMin);
  CHECK(s.targets[7].aggregate == AggregateFunc::kMax);
  CHECK(s.targets[8].kind == TargetInfo::Kind::kOther);
  CHECK(s.targets[8].name == "total");
  CHECK(s.targets[9].kind == TargetInfo::Kind::kStar);
  CHECK(s.targets[9].table == "o");
  CHECK(s.has_aggregates);
  CHECK_FALSE(s.has_group_by);
}

TEST_CASE("GROUP BY, HAVING, window functions and DISTINCT", "[analyzer]") {
  Statement g = One("SELECT k, string_agg(v, ',') FROM t GROUP BY k HAVING count(*) > 1");
  CHECK(g.has_group_by);
  CHECK(g.has_having);
  CHECK(g.has_aggregates);
  CHECK(g.targets[1].aggregate == AggregateFunc::kOther);

  Statement w = One("SELECT k, row_number() OVER (ORDER BY k), sum(v) OVER () FROM t");
  CHECK(w.has_window_functions);
  CHECK_FALSE(w.has_aggregates);
  CHECK(w.targets[2].aggregate == AggregateFunc::kNone);

  Statement d = One("SELECT DISTINCT k FROM t");
  CHECK(d.has_distinct);
  CHECK_FALSE(d.has_distinct_on);
  Statement on = One("SELECT DISTINCT ON (k) k, v FROM t ORDER BY k, v DESC");
  CHECK(on.has_distinct);
  CHECK(on.has_distinct_on);

  Statement plain = One("SELECT k FROM t");
  CHECK_FALSE(plain.has_distinct);
  CHECK_FALSE(plain.has_aggregates);
  CHECK_FALSE(plain.has_window_functions);
  CHECK_FALSE(plain.has_subquery);
  CHECK_FALSE(plain.has_cte);
}

TEST_CASE("ORDER BY keys resolve to output positions", "[analyzer]") {
  Statement s =
      One("SELECT id, total AS amount, lower(name) FROM t "
          "ORDER BY 2 DESC, id, amount NULLS FIRST, lower(name) DESC NULLS LAST, created_at, "
          "t.id");
  REQUIRE(s.order_by.size() == 6);
  CHECK(s.has_order_by);
  CHECK(s.order_by[0].position == 2);
  CHECK(s.order_by[0].descending);
  CHECK(s.order_by[0].nulls_first);  // PostgreSQL's default for DESC
  CHECK(s.order_by[1].position == 1);
  CHECK_FALSE(s.order_by[1].descending);
  CHECK_FALSE(s.order_by[1].nulls_first);
  CHECK(s.order_by[2].position == 2);
  CHECK(s.order_by[2].nulls_first);
  CHECK(s.order_by[3].position == 3);
  CHECK(s.order_by[3].descending);
  CHECK_FALSE(s.order_by[3].nulls_first);
  CHECK(s.order_by[4].position == 0);  // not in the select list
  CHECK(s.order_by[4].text == "created_at");
  CHECK(s.order_by[5].position == 0);  // t.id is not written as id in the select list
  CHECK(s.order_by[5].text == "t.id");
  CHECK(One("SELECT a FROM t ORDER BY a USING >").order_by[0].using_operator);
}

TEST_CASE("LIMIT and OFFSET: constants, parameters, ALL, WITH TIES", "[analyzer]") {
  Statement c = One("SELECT * FROM t LIMIT 10 OFFSET 5");
  CHECK(c.has_limit);
  CHECK(c.limit == std::optional<int64_t>(10));
  CHECK(c.has_offset);
  CHECK(c.offset == std::optional<int64_t>(5));

  Statement p = One("SELECT * FROM t LIMIT $1 OFFSET $2");
  CHECK(p.has_limit);
  CHECK_FALSE(p.limit.has_value());
  CHECK(p.limit_param == 1);
  CHECK(p.offset_param == 2);
  CHECK(p.num_params == 2);

  Statement all = One("SELECT * FROM t LIMIT ALL");
  CHECK_FALSE(all.has_limit);
  CHECK_FALSE(all.has_offset);

  Statement fetch = One("SELECT * FROM t ORDER BY k FETCH FIRST 3 ROWS WITH TIES");
  CHECK(fetch.limit == std::optional<int64_t>(3));
  CHECK(fetch.limit_with_ties);
  CHECK_FALSE(One("SELECT * FROM t").has_limit);
}

// ---------------------------------------------------------------------------------------
// Hints, several statements, errors

TEST_CASE("a leading pgring comment gives a shard-key hint", "[analyzer]") {
  CHECK(One("/* pgring: shard_key=42 */ SELECT * FROM t").hint_shard_key ==
        std::optional<std::string>("42"));
  CHECK(One("  /* other */ /*pgring: shard_key = 'a b''c' */\nSELECT 1").hint_shard_key ==
        std::optional<std::string>("a b'c"));
  CHECK(One("/* pgring: replica=true, shard_key=abc */ SELECT 1").hint_shard_key ==
        std::optional<std::string>("abc"));
  CHECK(One("-- pgring: shard_key=7\nSELECT 1").hint_shard_key == std::optional<std::string>("7"));
  CHECK_FALSE(One("SELECT 1 /* pgring: shard_key=42 */").hint_shard_key.has_value());
  CHECK_FALSE(One("/* shard_key=42 */ SELECT 1").hint_shard_key.has_value());
  CHECK_FALSE(One("SELECT '/* pgring: shard_key=1 */'").hint_shard_key.has_value());
}

TEST_CASE("several statements come with their byte ranges", "[analyzer]") {
  std::string sql =
      "BEGIN; INSERT INTO t VALUES (1);\n  /* pgring: shard_key=5 */ SELECT ';'  ;COMMIT";
  Analysis a = Parse(sql);
  REQUIRE(a.statements.size() == 4);
  REQUIRE(a.ranges.size() == 4);
  Strings pieces;
  for (auto [start, len] : a.ranges) pieces.push_back(sql.substr(start, len));
  CHECK(pieces == Strings{"BEGIN", "INSERT INTO t VALUES (1)",
                          "/* pgring: shard_key=5 */ SELECT ';'", "COMMIT"});
  CHECK(a.statements[0].txn_op == TransactionOp::kBegin);
  CHECK(a.statements[1].kind == Kind::kInsert);
  CHECK(a.statements[2].kind == Kind::kSelect);
  CHECK(a.statements[2].hint_shard_key == std::optional<std::string>("5"));
  CHECK_FALSE(a.statements[1].hint_shard_key.has_value());
  CHECK(a.statements[3].txn_op == TransactionOp::kCommit);
}

TEST_CASE("a syntax error gives PostgreSQL's message, 42601 and the position", "[analyzer]") {
  absl::StatusOr<Analysis> a = Analyze("SELECT * FORM t");
  REQUIRE_FALSE(a.ok());
  CHECK(a.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(a.status().message() == "syntax error at or near \"FORM\"");
  CHECK(protocol::SqlStateOf(a.status()) == "42601");
  CHECK(SyntaxErrorPosition(a.status()) == std::optional<int>(10));

  absl::StatusOr<Analysis> second = Analyze("SELECT 1; SELEC 2");
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().message() == "syntax error at or near \"SELEC\"");
  CHECK(SyntaxErrorPosition(second.status()) == std::optional<int>(11));

  absl::StatusOr<Analysis> eof = Analyze("SELECT (1");
  REQUIRE_FALSE(eof.ok());
  CHECK(eof.status().message() == "syntax error at end of input");
  CHECK(SyntaxErrorPosition(eof.status()) == std::optional<int>(10));
  CHECK_FALSE(SyntaxErrorPosition(absl::OkStatus()).has_value());
}

TEST_CASE("error positions count characters, not bytes", "[analyzer]") {
  absl::StatusOr<Analysis> a = Analyze("SELECT 'é' FORM t");
  REQUIRE_FALSE(a.ok());
  CHECK(SyntaxErrorPosition(a.status()) == std::optional<int>(17));
}

TEST_CASE("every prefix of a statement either parses or is a clean syntax error", "[analyzer]") {
  const std::string sql =
      "/* pgring: shard_key='a' */ WITH c AS (SELECT * FROM o WHERE k = ANY($1::int[])) "
      "INSERT INTO t (k, v) SELECT c.k, E'\\u00e9' FROM c JOIN u USING (k) WHERE u.k IN (1, -2) "
      "ON CONFLICT (k) DO UPDATE SET v = 'x' RETURNING *; SELECT count(*) FROM t";
  int ok = 0;
  for (size_t n = 0; n <= sql.size(); ++n) {
    absl::StatusOr<Analysis> a = Analyze(std::string_view(sql).substr(0, n));
    if (a.ok()) {
      ++ok;
      CHECK(a->statements.size() == a->ranges.size());
      for (auto [start, len] : a->ranges) CHECK(start + len <= n);
    } else {
      CHECK(a.status().code() == absl::StatusCode::kInvalidArgument);
      CHECK_FALSE(a.status().message().empty());
    }
  }
  CHECK(ok > 2);
}

// ---------------------------------------------------------------------------------------
// Cache

TEST_CASE("cache counts hits and misses and returns the same analysis", "[analyzer][cache]") {
  AnalyzerCache cache(8);
  auto first = cache.Get("SELECT * FROM t WHERE k = 1");
  REQUIRE(first.ok());
  CHECK(cache.misses() == 1);
  CHECK(cache.hits() == 0);
  auto again = cache.Get("SELECT * FROM t WHERE k = 1");
  REQUIRE(again.ok());
  CHECK(cache.hits() == 1);
  CHECK(cache.misses() == 1);
  CHECK(first->get() == again->get());
  CHECK(Constraint((*again)->statements[0], "t", "k") == Strings{"1"});
  // Different text (even only in spacing) is a different key.
  REQUIRE(cache.Get("SELECT * FROM t WHERE k  = 1").ok());
  CHECK(cache.misses() == 2);
  CHECK(cache.size() == 2);
}

TEST_CASE("cache stays within capacity and evicts the least recently used", "[analyzer][cache]") {
  AnalyzerCache cache(2);
  REQUIRE(cache.Get("SELECT 1").ok());
  auto kept = cache.Get("SELECT 2");
  REQUIRE(kept.ok());
  REQUIRE(cache.Get("SELECT 1").ok());  // now most recently used
  REQUIRE(cache.Get("SELECT 3").ok());  // evicts SELECT 2
  CHECK(cache.size() == 2);
  CHECK(cache.hits() == 1);
  CHECK(cache.misses() == 3);
  REQUIRE(cache.Get("SELECT 1").ok());
  CHECK(cache.hits() == 2);
  REQUIRE(cache.Get("SELECT 2").ok());
  CHECK(cache.misses() == 4);
  CHECK(cache.size() == 2);
  // An evicted analysis stays valid for whoever holds it.
  CHECK((*kept)->statements[0].targets[0].text == "2");
  for (int i = 0; i < 100; ++i) REQUIRE(cache.Get("SELECT " + std::to_string(i)).ok());
  CHECK(cache.size() == 2);
  cache.Clear();
  CHECK(cache.size() == 0);
}

TEST_CASE("cache keeps one route memo per entry", "[analyzer][cache]") {
  AnalyzerCache cache(2);
  RouteMemo* first = nullptr;
  REQUIRE(cache.Get("SELECT * FROM t WHERE k = $1", &first).ok());
  REQUIRE(first != nullptr);
  first->kind = RouteMemo::Kind::kGeneral;  // as Router::Route would leave it
  RouteMemo* other = nullptr;
  REQUIRE(cache.Get("SELECT 2", &other).ok());
  CHECK(other != first);
  CHECK(other->kind == RouteMemo::Kind::kUnmade);
  RouteMemo* again = nullptr;
  REQUIRE(cache.Get("SELECT * FROM t WHERE k = $1", &again).ok());
  CHECK(again == first);
  CHECK(again->kind == RouteMemo::Kind::kGeneral);
  // A text analyzed again after its eviction starts with a new, unmade memo.
  REQUIRE(cache.Get("SELECT 3").ok());
  REQUIRE(cache.Get("SELECT 4").ok());
  RouteMemo* fresh = nullptr;
  REQUIRE(cache.Get("SELECT * FROM t WHERE k = $1", &fresh).ok());
  CHECK(fresh->kind == RouteMemo::Kind::kUnmade);
}

TEST_CASE("cache does not store syntax errors", "[analyzer][cache]") {
  AnalyzerCache cache(4);
  auto bad = cache.Get("SELEC 1");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(cache.size() == 0);
  CHECK_FALSE(cache.Get("SELEC 1").ok());
  CHECK(cache.misses() == 2);
  CHECK(cache.hits() == 0);
  AnalyzerCache zero(0);
  CHECK(zero.capacity() == 1);
  REQUIRE(zero.Get("SELECT 1").ok());
  CHECK(zero.size() == 1);
}

}  // namespace
}  // namespace pgring::sharding
