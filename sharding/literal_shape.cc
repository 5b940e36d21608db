#include "sharding/literal_shape.h"

#include <algorithm>
#include <charconv>

#include "sharding/sql_scan.h"

namespace pgring::sharding {
namespace {

using Kind = SqlToken::Kind;

// Whether a number token is an unsigned decimal integer that fits a bigint for sure.
bool SmallInteger(std::string_view t) {
  if (t.empty() || t.size() > 18) return false;
  return std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A '...' string with no doubled quote inside (its value is its text between the quotes).
bool PlainString(std::string_view t) {
  if (t.size() < 2 || t.front() != '\'' || t.back() != '\'') return false;
  return t.substr(1, t.size() - 2).find('\'') == std::string_view::npos;
}

}  // namespace

bool ShapeOf(std::string_view sql, LiteralShape& out) {
  out.text.clear();
  out.values.clear();
  SqlScanner scan(sql);
  SqlToken first = scan.Next();
  if (first.kind != Kind::kWord) return false;
  if (!IsWord(sql, first, "select") && !IsWord(sql, first, "insert") &&
      !IsWord(sql, first, "update") && !IsWord(sql, first, "delete") &&
      !IsWord(sql, first, "with")) {
    return false;
  }
  SqlToken prev = first;
  size_t copied = 0;  // sql[0, copied) is in out.text
  char name[24];
  for (SqlToken t = scan.Next(); t.kind != Kind::kEnd; t = scan.Next()) {
    switch (t.kind) {
      case Kind::kError:
      case Kind::kParam:
        return false;
      case Kind::kSemicolon: {
        // One statement only (trailing semicolons and blanks are fine).
        SqlToken next = scan.Next();
        while (next.kind == Kind::kSemicolon) next = scan.Next();
        if (next.kind != Kind::kEnd) return false;
        t = next;
        break;
      }
      default:
        break;
    }
    if (t.kind == Kind::kEnd) break;
    // Only numbers, strings and a minus can start a replaced value.
    if (t.kind != Kind::kNumber && t.kind != Kind::kString && t.kind != Kind::kOperator) {
      prev = t;
      continue;
    }
    const std::string_view text = TokenText(sql, t);
    const std::string_view prev_text = TokenText(sql, prev);
    // Where a value may stand as a parameter: after `=`, `(` or `,`.
    const bool after_slot =
        (prev.kind == Kind::kOperator && prev_text.size() == 1 && prev_text[0] == '=') ||
        (prev.kind == Kind::kOpen && prev_text[0] == '(') || prev.kind == Kind::kComma;
    // Numbers may also be operands of other operators (`amount + 5`), but never of a
    // minus: `-$1` is an expression to the analyzer where `-5` is a constant.
    const bool operand = prev.kind == Kind::kOperator &&
                         prev_text.find('-') == std::string_view::npos;
    std::string_view value;
    bool replace = false;
    size_t begin = t.begin;
    if ((after_slot || operand) && t.kind == Kind::kNumber && SmallInteger(text)) {
      value = text;
      replace = true;
    } else if (after_slot && t.kind == Kind::kString && PlainString(text)) {
      value = text.substr(1, text.size() - 2);
      replace = true;
    } else if ((after_slot || operand) && t.kind == Kind::kOperator && text == "-") {
      // A negative integer (`, -1234,`): PostgreSQL folds it into one constant; the
      // parameter's text keeps the sign.
      SqlScanner peek = scan;
      SqlToken n = peek.Next();
      if (n.kind == Kind::kNumber && SmallInteger(TokenText(sql, n))) {
        scan = peek;
        value = sql.substr(t.begin, n.end - t.begin);
        if (n.begin != t.end) value = {};  // "- 5": keep it simple, no parameter
        if (!value.empty()) {
          replace = true;
          t = SqlToken{Kind::kNumber, begin, n.end};
        } else {
          t = n;
        }
      }
    }
    if (replace) {
      out.text.append(sql.substr(copied, begin - copied));
      out.values.push_back(value);
      name[0] = '$';
      auto end = std::to_chars(name + 1, name + sizeof(name), out.values.size()).ptr;
      out.text.append(name, static_cast<size_t>(end - name));
      copied = t.end;
    }
    prev = t;
  }
  if (out.values.empty()) return false;
  out.text.append(sql.substr(copied));
  return true;
}

}  // namespace pgring::sharding
