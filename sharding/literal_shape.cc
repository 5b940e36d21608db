#include "sharding/literal_shape.h"

#include <algorithm>
#include <cstdint>
#include <charconv>
#include <cstring>

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

// Writes a shape into `out`: the statement with literals replaced by $n, in out.buffer,
// which keeps its size from statement to statement (no allocation and no clearing once it
// is large enough).
class ShapeWriter {
 public:
  ShapeWriter(std::string_view sql, LiteralShape& out) : sql_(sql), out_(out) {
    out.text = {};
    out.values.clear();
  }

  // Copies the statement up to `from` and writes the next parameter ($n) in place of the
  // literal sql[from, to), whose value is `value`.
  void Replace(size_t from, size_t to, std::string_view value) {
    out_.values.push_back(value);
    const size_t gap = from - copied_;
    char* dst = Room(gap + 1 + kMaxDigits);
    std::memcpy(dst, sql_.data() + copied_, gap);
    dst += gap;
    *dst++ = '$';
    const size_t n = out_.values.size();
    if (n < 10) {
      *dst++ = static_cast<char>('0' + n);
    } else {
      dst = std::to_chars(dst, dst + kMaxDigits, n).ptr;
    }
    length_ = static_cast<size_t>(dst - out_.buffer.data());
    copied_ = to;
  }

  // Copies the rest of the statement and points out.text at the shape.
  void Finish() {
    const size_t rest = sql_.size() - copied_;
    std::memcpy(Room(rest), sql_.data() + copied_, rest);
    length_ += rest;
    out_.text = std::string_view(out_.buffer.data(), length_);
  }

 private:
  static constexpr size_t kMaxDigits = 20;  // of a size_t

  // Where the next `n` bytes go.
  char* Room(size_t n) {
    if (out_.buffer.size() < length_ + n) {
      out_.buffer.resize(std::max(length_ + n + 64, 2 * out_.buffer.size()));
    }
    return out_.buffer.data() + length_;
  }

  std::string_view sql_;
  LiteralShape& out_;
  size_t copied_ = 0;  // sql[0, copied_) is written
  size_t length_ = 0;  // bytes written to out.buffer
};

// A keyword of up to 8 bytes as one little-endian integer.
constexpr uint64_t Pack(std::string_view k) {
  uint64_t x = 0;
  for (size_t i = 0; i < k.size(); ++i) x |= uint64_t{static_cast<uint8_t>(k[i])} << (8 * i);
  return x;
}

// Whether the word w[0, n) is select, insert, update, delete or with in any case: its
// bytes lowered (| 0x20 lowers ASCII letters and maps no other byte onto one) and
// compared as one integer. `end` bounds the text w is in.
bool ShapedKeyword(const char* w, size_t n, const char* end) {
  if (n < 4 || n > 6) return false;
  uint64_t v = 0;
  if (end - w >= 8) {
    std::memcpy(&v, w, 8);
  } else {
    for (size_t i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(w[i])} << (8 * i);
  }
  const uint64_t low_n = (uint64_t{1} << (8 * n)) - 1;  // n <= 6
  v = (v | 0x2020202020202020ull) & low_n;
  static constexpr uint64_t kWith = Pack("with"), kSelect = Pack("select"),
                            kInsert = Pack("insert"), kUpdate = Pack("update"),
                            kDelete = Pack("delete");
  switch (n) {
    case 4:
      return v == kWith;
    case 6:
      return v == kSelect || v == kInsert || v == kUpdate || v == kDelete;
    default:
      return false;
  }
}

// One pass over the text for the usual statement (words, integers and decimals, plain
// strings, operators, punctuation), with the token rules of SqlScanner; anything else
// (comments, quoted identifiers, E'' and dollar strings, a '$' that is no parameter) is
// left to the token-based pass.
enum class Fast { kShaped, kNotShaped, kUnsure };

Fast FastShape(std::string_view sql, LiteralShape& out) {
  using namespace scan_internal;  // SqlScanner's character classes and number rule
  const char* const base = sql.data();
  const char* const end = base + sql.size();
  const char* p = base;
  const auto skip_space = [&] {
    while (p < end && Is(*p, kSpace)) ++p;
  };
  skip_space();
  // The first word: one of the shaped statement kinds.
  const char* w = p;
  if (p == end || !Is(*p, kIdentStart)) {
    return StartsComment(p, end) ? Fast::kUnsure : Fast::kNotShaped;
  }
  ++p;
  if (p < end && (*p == '\'' || *p == '&')) return Fast::kUnsure;
  p = IdentEnd(p, end);
  if (!ShapedKeyword(w, static_cast<size_t>(p - w), end)) return Fast::kNotShaped;
  bool slot = false;     // the previous token is `=`, `(` or `,`
  bool operand = false;  // the previous token is an operator without a minus
  ShapeWriter writer(sql, out);
  const auto replace = [&](const char* from, const char* to, std::string_view value) {
    writer.Replace(static_cast<size_t>(from - base), static_cast<size_t>(to - base), value);
  };
  for (;;) {
    skip_space();
    if (p == end) break;
    const char* const begin = p;
    const char c = *p;
    if (Is(c, kIdentStart)) {
      ++p;
      if (p < end && (*p == '\'' || *p == '&')) return Fast::kUnsure;
      p = IdentEnd(p, end);
      slot = operand = false;
    } else if (StartsNumber(p, end)) {
      p = NumberEnd(p, end);
      const std::string_view text(begin, static_cast<size_t>(p - begin));
      if ((slot || operand) && SmallInteger(text)) replace(begin, p, text);
      slot = operand = false;
    } else if (c == '\'') {
      bool plain = true;
      ++p;
      for (;;) {
        p = static_cast<const char*>(std::memchr(p, '\'', static_cast<size_t>(end - p)));
        if (p == nullptr) return Fast::kNotShaped;  // unterminated: the token pass fails too
        ++p;
        if (p < end && *p == '\'') {  // a doubled quote
          plain = false;
          ++p;
          continue;
        }
        break;
      }
      if (slot && plain) {
        replace(begin, p, std::string_view(begin + 1, static_cast<size_t>(p - begin) - 2));
      }
      slot = operand = false;
    } else if (Is(c, kOpChar)) {
      if (StartsComment(p, end)) return Fast::kUnsure;
      ++p;
      while (p < end && Is(*p, kOpChar) && !StartsComment(p, end)) ++p;
      const std::string_view text(begin, static_cast<size_t>(p - begin));
      const bool minus = text.find('-') != std::string_view::npos;
      if (text.size() == 1 && c == '-' && (slot || operand)) {
        // A negative integer right after the minus is one value; a number after blanks
        // is taken as it is (the token pass does the same).
        const char* q = p;
        while (q < end && Is(*q, kSpace)) ++q;
        if (StartsComment(q, end)) return Fast::kUnsure;
        if (StartsNumber(q, end)) {
          const char* e = NumberEnd(q, end);
          const std::string_view number(q, static_cast<size_t>(e - q));
          if (SmallInteger(number)) {
            if (q == p) replace(begin, e, std::string_view(begin, static_cast<size_t>(e - begin)));
            p = e;
            slot = operand = false;
            continue;
          }
        }
      }
      slot = text.size() == 1 && c == '=';
      operand = !minus;
    } else {
      ++p;
      switch (c) {
        case '(':
        case ',':
          slot = true;
          operand = false;
          break;
        case ';': {
          // One statement only (trailing semicolons and blanks are fine).
          for (;;) {
            skip_space();
            if (p == end) break;
            if (*p == ';') {
              ++p;
              continue;
            }
            return StartsComment(p, end) ? Fast::kUnsure : Fast::kNotShaped;
          }
          slot = operand = false;
          break;
        }
        case ':':
          if (p < end && *p == ':') ++p;
          slot = operand = false;
          break;
        case '"':
          return Fast::kUnsure;
        case '$':
          if (p < end && Is(*p, kDigit)) return Fast::kNotShaped;  // a parameter of its own
          return Fast::kUnsure;
        default:  // [ ] ) . and any other byte
          slot = operand = false;
          break;
      }
    }
  }
  if (out.values.empty()) return Fast::kNotShaped;
  writer.Finish();
  return Fast::kShaped;
}

}  // namespace

namespace shape_internal {

bool ShapeByTokens(std::string_view sql, LiteralShape& out) {
  ShapeWriter writer(sql, out);
  SqlScanner scan(sql);
  SqlToken first = scan.Next();
  if (first.kind != Kind::kWord) return false;
  if (!IsWord(sql, first, "select") && !IsWord(sql, first, "insert") &&
      !IsWord(sql, first, "update") && !IsWord(sql, first, "delete") &&
      !IsWord(sql, first, "with")) {
    return false;
  }
  SqlToken prev = first;
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
    if (replace) writer.Replace(begin, t.end, value);
    prev = t;
  }
  if (out.values.empty()) return false;
  writer.Finish();
  return true;
}

}  // namespace shape_internal

bool ShapeOf(std::string_view sql, LiteralShape& out) {
  out.text = {};
  out.values.clear();
  switch (FastShape(sql, out)) {
    case Fast::kShaped:
      return true;
    case Fast::kNotShaped:
      return false;
    case Fast::kUnsure:
      break;
  }
  return shape_internal::ShapeByTokens(sql, out);
}

}  // namespace pgring::sharding
