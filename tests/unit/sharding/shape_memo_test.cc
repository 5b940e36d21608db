#include "sharding/shape_memo.h"

#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

namespace pgring::sharding {
namespace {

using Values = std::vector<std::string_view>;

TEST_CASE("ShapeMemo shapes a statement of a known form without a scan", "[shape_memo]") {
  ShapeMemo memo;
  LiteralShape s;
  REQUIRE(memo.Shape("SELECT * FROM orders WHERE tenant_id = 42 AND status = 'paid'", s));
  CHECK(memo.misses() == 1);
  REQUIRE(memo.Shape("SELECT * FROM orders WHERE tenant_id = -7 AND status = 'it is'", s));
  CHECK(memo.hits() == 1);
  CHECK(s.text == "SELECT * FROM orders WHERE tenant_id = $1 AND status = $2");
  CHECK(s.values == Values{"-7", "it is"});
  REQUIRE(memo.Shape("SELECT * FROM orders WHERE tenant_id = 123456789012345678 AND "
                     "status = ''",
                     s));
  CHECK(memo.hits() == 2);
  CHECK(s.values == Values{"123456789012345678", ""});
  // After an operator a minus is the operator's: `=-8` is another form.
  REQUIRE(memo.Shape("SELECT * FROM orders WHERE amount =8 AND status = 'x'", s));
  REQUIRE(memo.Shape("SELECT * FROM orders WHERE amount =-8 AND status = 'x'", s));
  CHECK(memo.hits() == 2);
  CHECK(s.values == Values{"x"});

  // Not of the form: 19 digits, a doubled quote, a float, more text, a parameter.
  const std::vector<std::string> others = {
      "SELECT * FROM orders WHERE tenant_id = 1234567890123456789 AND status = 'x'",
      "SELECT * FROM orders WHERE tenant_id = 1 AND status = 'it''s'",
      "SELECT * FROM orders WHERE tenant_id = 1.5 AND status = 'x'",
      "SELECT * FROM orders WHERE tenant_id = 1 AND status = 'x'; DROP TABLE orders",
      "SELECT * FROM orders WHERE tenant_id = $1 AND status = 'x'"};
  for (const auto& sql : others) {
    INFO(sql);
    const uint64_t hits = memo.hits();
    LiteralShape want;
    const bool shaped = ShapeOf(sql, want);
    REQUIRE(memo.Shape(sql, s) == shaped);
    CHECK(memo.hits() == hits);
    if (shaped) {
      CHECK(s.text == want.text);
      CHECK(s.values == want.values);
    }
  }
}

TEST_CASE("ShapeMemo keeps no form whose key holds a value", "[shape_memo]") {
  ShapeMemo memo;
  LiteralShape s;
  // A value in the first 16 bytes, a number that a letter follows: shaped, never
  // remembered.
  for (const std::string sql :
       {"SELECT f(5) FROM orders WHERE tenant_id = 42", "SELECT * FROM tab WHERE k = 42AND v = 1"}) {
    INFO(sql);
    REQUIRE(memo.Shape(sql, s));
    REQUIRE(memo.Shape(sql, s));
    CHECK(memo.hits() == 0);
  }
  // Statements shorter than the key are left to ShapeOf.
  CHECK(memo.Shape("SELECT (1)", s));
  CHECK(memo.Shape("SELECT (1)", s));
  CHECK(memo.hits() == 0);
  // Comments, quoted identifiers and escapes between the values are matched byte for byte.
  REQUIRE(memo.Shape("SELECT * FROM \"T\" /* c */ WHERE k = 1 AND v = E'\\'' -- '\n", s));
  REQUIRE(memo.Shape("SELECT * FROM \"T\" /* c */ WHERE k = 2 AND v = E'\\'' -- '\n", s));
  CHECK(memo.hits() == 1);
  CHECK(s.values == Values{"2"});
}

TEST_CASE("ShapeMemo remembers a bounded number of forms", "[shape_memo]") {
  ShapeMemo memo;
  LiteralShape s;
  // Many forms with one first 16 bytes share a bucket: only the last kWays stay.
  const auto form = [](size_t i) {
    return "SELECT * FROM orders WHERE c" + std::to_string(i) + " = ";
  };
  const size_t n = ShapeMemo::kWays + 3;
  for (size_t i = 0; i < n; ++i) REQUIRE(memo.Shape(form(i) + "1", s));
  for (size_t i = n; i-- > 0;) REQUIRE(memo.Shape(form(i) + "2", s));
  CHECK(memo.hits() == ShapeMemo::kWays);
  CHECK(memo.misses() == 2 * n - ShapeMemo::kWays);
}

TEST_CASE("ShapeMemo shapes exactly as ShapeOf does", "[shape_memo]") {
  // Random statements of a few forms, with each literal slot filled by a value or by text
  // that is none (or another kind): the memo must agree with ShapeOf on every one, and
  // must have matched many of them.
  const std::vector<std::string> forms = {
      "SELECT abalance FROM pgbench_accounts WHERE aid = ?",
      "SELECT * FROM orders WHERE tenant_id = ? AND status = ?;",
      "UPDATE users SET name = ? WHERE tenant_id = ? AND id IN (?, ?)",
      "INSERT INTO order_items (tenant_id, sku, qty) VALUES (?, ?, ?) RETURNING id ;  ",
      "DELETE FROM orders WHERE tenant_id = ?",
      "select x from orders where tenant_id = ? and amount + ? > ?::bigint",
      "WITH t AS (SELECT * FROM users WHERE tenant_id = ?) SELECT * FROM t WHERE id=?",
      "SELECT * FROM orders WHERE tenant_id = ?e AND a <? AND b+? > c AND (?)",
      "SELECT * FROM \"Orders\" /* ? */ WHERE tenant_id = ? -- ?\n AND b = ?",
      "SELECT * FROM orders WHERE tenant_id = ? AND note = E'\\'?' AND c = $$?$$ || ?",
      "SELECT * FROM orders WHERE tenant_id = ? AND c = 'a'\n? AND x = ?::int"};
  const std::vector<std::string> fills = {
      "0", "42", "007", "123456789012345678", "1234567890123456789", "-1", "-42", "- 1",
      "--1", "1.5", "1e5", "1..2", "12abc", "0x1F", "'a'", "''", "'it''s'", "'x", "'--'",
      "'/*'", "'$1'", "'\\'", "'é'", "E'x'", "U&'x'", "$1", "$$x$$", "x", "\"q\"", "'a' 'b'",
      "1; SELECT 2", "'a';", "1 --c", "'x'::text", "(1)", "", " 5", "5 ", "-", "'"};
  std::mt19937 rng(20261207);
  ShapeMemo memo;
  LiteralShape got;
  LiteralShape want;
  for (int i = 0; i < 200000; ++i) {
    const std::string& form = forms[rng() % forms.size()];
    std::string sql;
    for (char c : form) {
      // Mostly plain integers and strings, so that forms repeat.
      if (c != '?') {
        sql += c;
      } else if (rng() % 4 != 0) {
        const auto n = static_cast<int64_t>(rng() % 100000) - 30000;
        sql += rng() % 2 ? std::to_string(n) : "'v" + std::to_string(rng() % 9) + "'";
      } else {
        sql += fills[rng() % fills.size()];
      }
    }
    INFO("statement: " << sql);
    const bool shaped = ShapeOf(sql, want);
    REQUIRE(memo.Shape(sql, got) == shaped);
    if (shaped) {
      REQUIRE(got.text == want.text);
      REQUIRE(got.values == want.values);
    }
  }
  CHECK(memo.hits() > 30000);
}

}  // namespace
}  // namespace pgring::sharding
