#include "sharding/sql_scan.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace pgring::sharding {
namespace {

using K = SqlToken::Kind;

// "kind:text" for every token of `sql`, kEnd left out.
std::vector<std::string> Tokens(std::string_view sql, size_t pos = 0,
                                size_t limit = std::string_view::npos) {
  static constexpr const char* kNames[] = {"end",    "error", "word",  "qident", "string",
                                           "number", "param", "open",  "close",  "comma",
                                           "semi",   "op",    "other"};
  std::vector<std::string> out;
  SqlScanner scan(sql, pos, limit);
  for (SqlToken t = scan.Next(); t.kind != K::kEnd; t = scan.Next()) {
    out.push_back(std::string(kNames[static_cast<int>(t.kind)]) + ":" +
                  std::string(TokenText(sql, t)));
    if (t.kind == K::kError) break;
  }
  return out;
}

using V = std::vector<std::string>;

TEST_CASE("SqlScanner splits words, numbers, operators and punctuation", "[sql_scan]") {
  CHECK(Tokens("SELECT abalance FROM pgbench_accounts WHERE aid = 12345;") ==
        V{"word:SELECT", "word:abalance", "word:FROM", "word:pgbench_accounts", "word:WHERE",
          "word:aid", "op:=", "number:12345", "semi:;"});
  CHECK(Tokens("f(a,b)[1]") == V{"word:f", "open:(", "word:a", "comma:,", "word:b", "close:)",
                                  "open:[", "number:1", "close:]"});
  // Identifiers may hold digits and '$'; a word of one letter at the very end.
  CHECK(Tokens("x1$y z") == V{"word:x1$y", "word:z"});
  CHECK(Tokens("a") == V{"word:a"});
  CHECK(Tokens("é_ü") == V{"word:é_ü"});
}

TEST_CASE("SqlScanner numbers: integers, decimals, exponents, ranges", "[sql_scan]") {
  CHECK(Tokens("1 12.5 .5 1e10 1E-3 2e+7 7") ==
        V{"number:1", "number:12.5", "number:.5", "number:1e10", "number:1E-3", "number:2e+7",
          "number:7"});
  // As in scan.l, "1..2" is 1, '.', then .2; "1e" without digits is 1 and the word e.
  CHECK(Tokens("1..2") == V{"number:1", "other:.", "number:.2"});
  CHECK(Tokens("1ex") == V{"number:1", "word:ex"});
  CHECK(Tokens("t.a") == V{"word:t", "other:.", "word:a"});
}

TEST_CASE("SqlScanner operators stop where a comment starts", "[sql_scan]") {
  CHECK(Tokens("a<>b") == V{"word:a", "op:<>", "word:b"});
  CHECK(Tokens("a = -5") == V{"word:a", "op:=", "op:-", "number:5"});
  CHECK(Tokens("a =-5") == V{"word:a", "op:=-", "number:5"});
  CHECK(Tokens("a+-- note\nb") == V{"word:a", "op:+", "word:b"});
  CHECK(Tokens("a*/* c */b") == V{"word:a", "op:*", "word:b"});
  CHECK(Tokens("x::int") == V{"word:x", "other:::", "word:int"});
  CHECK(Tokens("a:b") == V{"word:a", "other::", "word:b"});
  CHECK(Tokens("-") == V{"op:-"});
}

TEST_CASE("SqlScanner quotes, parameters and comments", "[sql_scan]") {
  CHECK(Tokens("'it''s' E'a\\'b' B'01' X'1F' N'n' U&'x' \"Q\"\"x\" U&\"y\"") ==
        V{"string:'it''s'", "string:E'a\\'b'", "string:B'01'", "string:X'1F'", "string:N'n'",
          "string:U&'x'", "qident:\"Q\"\"x\"", "qident:U&\"y\""});
  CHECK(Tokens("$1 $$a$b$$ $tag$x$tag$ $") ==
        V{"param:$1", "string:$$a$b$$", "string:$tag$x$tag$", "other:$"});
  CHECK(Tokens("/* a /* nested */ b */ x -- to the end") == V{"word:x"});
  CHECK(Tokens("u&x") == V{"word:u", "op:&", "word:x"});
  CHECK(Tokens("e'x") == V{"error:e'x"});
  CHECK(Tokens("'open") == V{"error:'open"});
  CHECK(Tokens("/* open") == V{"error:"});
}

TEST_CASE("SqlScanner honours its start and limit", "[sql_scan]") {
  const std::string_view sql = "SELECT 1; SELECT 22";
  CHECK(Tokens(sql, 10) == V{"word:SELECT", "number:22"});
  CHECK(Tokens(sql, 0, 8) == V{"word:SELECT", "number:1"});
  // A token cut by the limit ends there.
  CHECK(Tokens(sql, 10, 18) == V{"word:SELECT", "number:2"});
  CHECK(Tokens("", 0).empty());
  CHECK(Tokens("   \t\n ").empty());
}

TEST_CASE("IdentEnd stops at the first byte that is no ident_cont, for every byte value",
          "[sql_scan]") {
  // The one-byte-at-a-time definition; IdentEnd takes sixteen bytes at a time where it can.
  const auto reference = [](const char* p, const char* end) {
    while (p < end && scan_internal::Is(*p, scan_internal::kIdentCont)) ++p;
    return p;
  };
  // Every byte value as the stopper at every position of a 40-byte run of identifier
  // characters (upper and lower case, digits, _, $ and bytes >= 0x80), read from every
  // offset, with text lengths that end the run before, at and after the stopper.
  std::string run;
  const std::string_view ident = "aZ_9$\x80\xff" "bcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY";
  for (size_t i = 0; run.size() < 40; ++i) run += ident[i % ident.size()];
  size_t checked = 0;
  for (int stopper = 0; stopper < 256; ++stopper) {
    for (size_t at = 0; at < run.size(); ++at) {
      std::string text = run;
      text[at] = static_cast<char>(stopper);
      for (size_t from : {size_t{0}, size_t{1}, size_t{7}, at}) {
        for (size_t len : {text.size(), at + 1, at, size_t{17}}) {
          if (from > len || len > text.size()) continue;
          const char* begin = text.data() + from;
          const char* end = text.data() + len;
          INFO("byte " << stopper << " at " << at << ", from " << from << ", length " << len);
          REQUIRE(scan_internal::IdentEnd(begin, end) == reference(begin, end));
          ++checked;
        }
      }
    }
  }
  CHECK(checked > 30000);
}

}  // namespace
}  // namespace pgring::sharding
