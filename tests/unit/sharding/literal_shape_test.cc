#include "sharding/literal_shape.h"

#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "sharding/analyzer.h"

namespace pgring::sharding {
namespace {

using Values = std::vector<std::string_view>;

TEST_CASE("ShapeOf replaces key-like literals after =, ( and ,", "[literal_shape]") {
  LiteralShape s;
  REQUIRE(ShapeOf("SELECT * FROM orders WHERE tenant_id = 42 AND status = 'paid'", s));
  CHECK(s.text == "SELECT * FROM orders WHERE tenant_id = $1 AND status = $2");
  CHECK(s.values == Values{"42", "paid"});

  REQUIRE(ShapeOf("insert into t (a, b) values (1, 'x'), (2, 'y') returning a;", s));
  CHECK(s.text == "insert into t (a, b) values ($1, $2), ($3, $4) returning a;");
  CHECK(s.values == Values{"1", "x", "2", "y"});

  REQUIRE(ShapeOf("DELETE FROM t WHERE k IN (7, 8) AND j = ANY('{1,2}'::bigint[])", s));
  CHECK(s.text == "DELETE FROM t WHERE k IN ($1, $2) AND j = ANY($3::bigint[])");
}

TEST_CASE("ShapeOf numbers many parameters and reuses its buffer", "[literal_shape]") {
  LiteralShape s;
  // 120 rows of 2 values: parameters $1 to $240, a shape longer than any before.
  std::string sql = "INSERT INTO t (k, v) VALUES ";
  std::string want = sql;
  for (int r = 0; r < 120; ++r) {
    sql += (r ? ", (" : "(") + std::to_string(1000 + r) + ", 'v" + std::to_string(r) + "')";
    want += (r ? ", ($" : "($") + std::to_string(2 * r + 1) + ", $" +
            std::to_string(2 * r + 2) + ")";
  }
  for (const bool tokens : {false, true}) {
    INFO((tokens ? "token pass" : "one pass"));
    REQUIRE((tokens ? shape_internal::ShapeByTokens(sql, s) : ShapeOf(sql, s)));
    CHECK(s.text == want);
    REQUIRE(s.values.size() == 240);
    CHECK(s.values[9] == "v4");
    CHECK(s.values[238] == "1119");
    // A short statement after the long one: only its own text.
    REQUIRE(ShapeOf("UPDATE t SET v = 'x' WHERE k = 7", s));
    CHECK(s.text == "UPDATE t SET v = $1 WHERE k = $2");
    CHECK(s.values == Values{"x", "7"});
  }
  CHECK_FALSE(ShapeOf("SELECT * FROM t ORDER BY 1", s));
  CHECK(s.text.empty());
}

TEST_CASE("ShapeOf keeps literals whose meaning a parameter would change", "[literal_shape]") {
  LiteralShape s;
  // LIMIT, ORDER BY positions, floats, huge integers, E'' strings, doubled quotes,
  // strings next to other operators, numbers after a minus that is not a sign.
  CHECK_FALSE(ShapeOf("SELECT a FROM t ORDER BY 1 LIMIT 10 OFFSET 5", s));
  CHECK_FALSE(ShapeOf("SELECT a FROM t WHERE k = 1.5", s));
  CHECK_FALSE(ShapeOf("SELECT a FROM t WHERE k = 1234567890123456789", s));
  CHECK_FALSE(ShapeOf("SELECT a FROM t WHERE k = E'a\\nb'", s));
  CHECK_FALSE(ShapeOf("SELECT a FROM t WHERE k = 'it''s'", s));
  CHECK_FALSE(ShapeOf("SELECT a FROM t WHERE j < 'x' AND k = v - 5", s));
  CHECK_FALSE(ShapeOf("SELECT a FROM t WHERE k = - 5", s));
  // Numbers as operands of other operators; a negative constant keeps its sign.
  REQUIRE(ShapeOf("UPDATE t SET v = v + 3 WHERE k = -9 AND j > 2", s));
  CHECK(s.text == "UPDATE t SET v = v + $1 WHERE k = $2 AND j > $3");
  CHECK(s.values == Values{"3", "-9", "2"});
  REQUIRE(ShapeOf("UPDATE a SET b = b + -1234 WHERE aid = 7", s));
  CHECK(s.text == "UPDATE a SET b = b + $1 WHERE aid = $2");
  CHECK(s.values == Values{"-1234", "7"});
  REQUIRE(ShapeOf("INSERT INTO h VALUES (1, -1234, 'x' || 5)", s));
  CHECK(s.text == "INSERT INTO h VALUES ($1, $2, $3 || $4)");
  CHECK(s.values == Values{"1", "-1234", "x", "5"});
}

TEST_CASE("ShapeOf shapes only one DML statement without parameters", "[literal_shape]") {
  LiteralShape s;
  CHECK_FALSE(ShapeOf("SET search_path = 'x'", s));
  CHECK_FALSE(ShapeOf("CREATE TABLE t (a int DEFAULT 5)", s));
  CHECK_FALSE(ShapeOf("SELECT * FROM t WHERE k = $1 AND j = 5", s));
  CHECK_FALSE(ShapeOf("SELECT 1 FROM t WHERE k = 1; SELECT 2 FROM t WHERE k = 2", s));
  CHECK_FALSE(ShapeOf("SELECT * FROM t WHERE k = 'unterminated", s));
  REQUIRE(ShapeOf("/* pgring: shard_key=5 */ select * from t where k = 3 ;  ", s));
  CHECK(s.text == "/* pgring: shard_key=5 */ select * from t where k = $1 ;  ");
}

TEST_CASE("A shape analyzes like its statement", "[literal_shape]") {
  LiteralShape s;
  // A negative key is a constant in both.
  REQUIRE(ShapeOf("SELECT * FROM orders WHERE tenant_id = -42", s));
  auto negative = Analyze(s.text);
  REQUIRE(negative.ok());
  REQUIRE(negative->statements[0].constraints.size() == 1);
  CHECK(negative->statements[0].constraints[0].values[0].kind == KeyValue::Kind::kParam);
  REQUIRE(ShapeOf("SELECT o.* FROM orders o JOIN items i ON i.tenant_id = o.tenant_id "
                  "WHERE o.tenant_id = 42 AND i.sku IN ('a', 'b')",
                  s));
  auto a = Analyze(s.text);
  REQUIRE(a.ok());
  REQUIRE(a->statements.size() == 1);
  const auto& st = a->statements[0];
  bool found = false;
  for (const auto& c : st.constraints) {
    if (c.table == "orders" && c.column == "tenant_id") {
      REQUIRE(c.values.size() == 1);
      CHECK(c.values[0].kind == KeyValue::Kind::kParam);
      CHECK(c.values[0].param == 1);
      found = true;
    }
  }
  CHECK(found);
  // Type modifiers become parameters too; the raw parser accepts them (only PostgreSQL's
  // later analysis insists on constants), and the shape is only analyzed, never run.
  REQUIRE(ShapeOf("SELECT x::numeric(12,2) FROM t WHERE k = 1", s));
  CHECK(Analyze(s.text).ok());
}

TEST_CASE("ShapeOf's one-pass scan shapes as the token scan does", "[literal_shape]") {
  // Random statements from fragments that exercise every rule of the shape: the one-pass
  // scan (ShapeOf) and the general token-based scan must agree on every one.
  const std::vector<std::string> firsts = {"select", "SELECT", "Insert", "update", "DELETE",
                                           "with",   "wITh",   "values", "selects", "E'x'",
                                           "-- c\nselect", "/* c */ select", "\"q\"", "",
                                           "updat", "withx", "delete_", "Select1", "wit", "s"};
  const std::vector<std::string> parts = {
      " ", "  ", "\n", "\t", "x", "tenant_id", "a$b", "é", "_t", "=", "==", "=-", "-", "- ",
      "+", "<>", "<=", "||", "!=", "*", "/", "@", "(", ")", "[", "]", ",", ";", ";;", ".",
      "::", ":", "0", "42", "007", "123456789012345678", "1234567890123456789", "1.5",
      "100.0", "1e5", "1E+5", "1e", ".5", "1..2", "12abc", "'a'", "'it''s'", "''", "'x",
      "E'x'", "e'\\''", "B'1'", "U&'x'", "U&\"x\"", "a&", "$1", "$$x$$", "$t$x$t$", "$",
      "\"Q\"", "\"a\"\"b\"", "--c\n", "/*c*/", "/*", "{", "\\", "'sku-'", "-1", "- 1",
      "+-", "-+", "*-", "<-", "=>", "#", "%"};
  std::mt19937 rng(20261206);
  LiteralShape fast;
  LiteralShape tokens;
  size_t shaped = 0;
  for (int i = 0; i < 200000; ++i) {
    std::string sql = firsts[rng() % firsts.size()];
    const int n = static_cast<int>(rng() % 24);
    for (int k = 0; k < n; ++k) {
      if (rng() % 3 == 0) sql += ' ';
      sql += parts[rng() % parts.size()];
    }
    const bool a = ShapeOf(sql, fast);
    const bool b = shape_internal::ShapeByTokens(sql, tokens);
    INFO("statement: " << sql);
    REQUIRE(a == b);
    if (a) {
      ++shaped;
      REQUIRE(fast.text == tokens.text);
      REQUIRE(fast.values == tokens.values);
    }
  }
  CHECK(shaped > 5000);  // the comparison covered shaped statements, not only refusals
}

}  // namespace
}  // namespace pgring::sharding
