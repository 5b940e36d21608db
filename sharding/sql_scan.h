// Finds token boundaries in SQL text the way PostgreSQL's scanner (scan.l) delimits tokens,
// for the few places where pgring edits statement text (shard_sql.h) or needs a position
// that libpg_query does not report (the parentheses of a VALUES row). It knows quotes,
// comments, parameters and parentheses, not the grammar.
//
//   SqlScanner scan(sql, range.first, range.first + range.second);
//   for (SqlToken t = scan.Next(); t.kind != SqlToken::Kind::kEnd; t = scan.Next()) {
//     if (t.kind == SqlToken::Kind::kError) ...;  // unterminated quote or comment
//     if (IsWord(sql, t, "values")) ...;
//   }
//
// Strings follow standard_conforming_strings = on (PostgreSQL's default, and what the
// libpg_query parser assumes): a backslash escapes only inside E'...'. Offsets are byte
// offsets into the text given to the scanner. Pure; a scanner borrows its text and
// allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace pgring::sharding {

struct SqlToken {
  enum class Kind : uint8_t {
    kEnd,               // no more tokens before the scan limit
    kError,             // an unterminated string, quoted identifier or comment
    kWord,              // an unquoted identifier or keyword
    kQuotedIdentifier,  // "name", U&"name"
    kString,            // 'x', E'x', B'1', X'1F', N'x', U&'x', $$x$$, $tag$x$tag$
    kNumber,            // 42, 1.5, .5, 1e-3
    kParam,             // $1
    kOpen,              // ( or [
    kClose,             // ) or ]
    kComma,
    kSemicolon,
    kOperator,  // a run of + - * / < > = ~ ! @ # % ^ & | ` ?
    kOther,     // . : :: and any other byte
  };
  Kind kind = Kind::kEnd;
  size_t begin = 0;  // first byte
  size_t end = 0;    // one past the last byte
};

class SqlScanner {
 public:
  // Scans `sql` from byte `pos` (which must start a token, a comment or white space) up to
  // byte `limit` (the end of the text by default).
  explicit SqlScanner(std::string_view sql, size_t pos = 0, size_t limit = std::string_view::npos);

  // Returns the next token, skipping white space and comments (`--` to the end of the
  // line, nested `/* */`). After kEnd or kError every call returns kEnd.
  SqlToken Next();

 private:
  SqlToken Make(SqlToken::Kind kind, size_t begin);
  SqlToken Fail(size_t begin);
  // Skips white space and comments; false on an unterminated block comment.
  bool SkipSpace();
  // The body of a quoted token whose opening quote `q` is at pos_; `backslash` enables
  // E'' escapes. Leaves pos_ after the closing quote; false if there is none.
  bool SkipQuoted(char q, bool backslash);
  // A dollar-quoted string starting at pos_ (which holds '$'), if the text starts a valid
  // $tag$; leaves pos_ after the closing tag. Returns 0 if it is not a dollar quote, -1 if
  // it is unterminated, 1 if it was skipped.
  int SkipDollarQuoted();

  std::string_view sql_;
  size_t pos_;
  size_t limit_;
  bool done_ = false;
};

// True if `t` is the unquoted word `keyword` (given in lower case), compared ignoring ASCII
// case as PostgreSQL compares keywords.
bool IsWord(std::string_view sql, const SqlToken& t, std::string_view keyword);

// The text of `t`.
inline std::string_view TokenText(std::string_view sql, const SqlToken& t) {
  return sql.substr(t.begin, t.end - t.begin);
}

}  // namespace pgring::sharding
