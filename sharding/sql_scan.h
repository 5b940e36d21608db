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

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace pgring::sharding {

namespace scan_internal {

// Character classes of scan.l, one table lookup per character.
enum : uint8_t {
  kSpace = 1,
  kIdentStart = 2,  // ident_start [A-Za-z\200-\377_]
  kIdentCont = 4,   // ident_cont adds [0-9$]
  kTagCont = 8,     // dollar-quote tags are identifiers without '$'
  kDigit = 16,
  kOpChar = 32,
};

constexpr std::array<uint8_t, 256> MakeClasses() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    uint8_t f = 0;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') f |= kSpace;
    const bool start = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
    const bool digit = c >= '0' && c <= '9';
    if (start) f |= kIdentStart | kIdentCont | kTagCont;
    if (digit) f |= kDigit | kIdentCont | kTagCont;
    if (c == '$') f |= kIdentCont;
    if (std::string_view("+-*/<>=~!@#%^&|`?").find(static_cast<char>(c)) != std::string_view::npos) {
      f |= kOpChar;
    }
    t[static_cast<size_t>(c)] = f;
  }
  return t;
}
inline constexpr std::array<uint8_t, 256> kClasses = MakeClasses();

inline bool Is(char c, uint8_t cls) { return (kClasses[static_cast<unsigned char>(c)] & cls) != 0; }

// The end of the identifier characters (ident_cont) from `p` on. Sixteen bytes at a time
// where the text has them (SSE2, part of every x86-64), else one by one.
inline const char* IdentEnd(const char* p, const char* end) {
#if defined(__SSE2__)
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    // x in [lo, lo + n) as one signed compare: shift lo to -128, compare with -128 + n.
    const auto in_range = [](__m128i x, char lo, int n) {
      const __m128i shifted = _mm_add_epi8(x, _mm_set1_epi8(static_cast<char>(0x80 - lo)));
      return _mm_cmplt_epi8(shifted, _mm_set1_epi8(static_cast<char>(-128 + n)));
    };
    // | 0x20 maps A-Z onto a-z and no other byte below 0x80 onto a letter.
    const __m128i letter = in_range(_mm_or_si128(v, _mm_set1_epi8(0x20)), 'a', 26);
    const __m128i digit = in_range(v, '0', 10);
    const __m128i other = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('_')),
                                       _mm_cmpeq_epi8(v, _mm_set1_epi8('$')));
    const __m128i high = _mm_cmplt_epi8(v, _mm_setzero_si128());  // bytes 0x80-0xFF
    const __m128i ident =
        _mm_or_si128(_mm_or_si128(letter, digit), _mm_or_si128(other, high));
    const auto mask = static_cast<unsigned>(_mm_movemask_epi8(ident));
    if (mask != 0xFFFFu) return p + __builtin_ctz(~mask);
    p += 16;
  }
#endif
  while (p < end && Is(*p, kIdentCont)) ++p;
  return p;
}

// True if a comment (`--` or `/*`) starts at `p`.
inline bool StartsComment(const char* p, const char* end) {
  return end - p >= 2 && ((p[0] == '-' && p[1] == '-') || (p[0] == '/' && p[1] == '*'));
}

// True if a number starts at `p`: a digit, or '.' and a digit.
inline bool StartsNumber(const char* p, const char* end) {
  return p < end && (Is(*p, kDigit) || (*p == '.' && end - p >= 2 && Is(p[1], kDigit)));
}

// The end of the number starting at `p` (a digit, or '.' and a digit): digits, one '.'
// and digits ("1..2" is 1 followed by ".."), an exponent.
const char* NumberEnd(const char* p, const char* end);

}  // namespace scan_internal

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
  // Next for the tokens it does not scan inline.
  SqlToken NextSlow();
  SqlToken Make(SqlToken::Kind kind, size_t begin);
  SqlToken Fail(size_t begin);
  // A number starting at `begin` (a digit, or '.' and a digit).
  SqlToken Number(size_t begin);
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

inline SqlToken SqlScanner::Next() {
  // The usual tokens inline: white space, then a plain word, an integer, a one-character
  // operator or punctuation. Everything else (and the text's last byte) takes NextSlow.
  using K = SqlToken::Kind;
  using scan_internal::Is;
  if (!done_) {
    const char* const base = sql_.data();
    const char* const end = base + limit_;
    const char* p = base + pos_;
    while (p < end && Is(*p, scan_internal::kSpace)) ++p;
    pos_ = static_cast<size_t>(p - base);
    if (end - p >= 2) {
      const size_t begin = pos_;
      const char c = p[0];
      const char next = p[1];
      if (Is(c, scan_internal::kIdentStart)) {
        // A word, unless a quote or '&' follows its first letter (E'', B'', U&"", ...).
        if (next != '\'' && next != '&') {
          p = scan_internal::IdentEnd(p + 1, end);
          pos_ = static_cast<size_t>(p - base);
          return SqlToken{K::kWord, begin, pos_};
        }
      } else if (Is(c, scan_internal::kDigit)) {
        const char* q = p + 1;
        while (q < end && Is(*q, scan_internal::kDigit)) ++q;
        if (q == end || (*q != '.' && *q != 'e' && *q != 'E')) {
          pos_ = static_cast<size_t>(q - base);
          return SqlToken{K::kNumber, begin, pos_};
        }
      } else if (Is(c, scan_internal::kOpChar)) {
        // One operator character ("--" and "/*" start comments: NextSlow).
        if (!Is(next, scan_internal::kOpChar)) {
          pos_ = begin + 1;
          return SqlToken{K::kOperator, begin, pos_};
        }
      } else {
        K kind = K::kEnd;
        switch (c) {
          case '(':
          case '[':
            kind = K::kOpen;
            break;
          case ')':
          case ']':
            kind = K::kClose;
            break;
          case ',':
            kind = K::kComma;
            break;
          case ';':
            kind = K::kSemicolon;
            break;
          default:
            break;
        }
        if (kind != K::kEnd) {
          pos_ = begin + 1;
          return SqlToken{kind, begin, pos_};
        }
      }
    }
  }
  return NextSlow();
}

// True if `t` is the unquoted word `keyword` (given in lower case), compared ignoring ASCII
// case as PostgreSQL compares keywords.
bool IsWord(std::string_view sql, const SqlToken& t, std::string_view keyword);

// The text of `t`.
inline std::string_view TokenText(std::string_view sql, const SqlToken& t) {
  return sql.substr(t.begin, t.end - t.begin);
}

}  // namespace pgring::sharding
