#include "sharding/sql_scan.h"

#include <algorithm>
#include <array>
#include <cstdint>

namespace pgring::sharding {
namespace {

using scan_internal::Is;
using scan_internal::kDigit;
using scan_internal::kIdentCont;
using scan_internal::kIdentStart;
using scan_internal::kOpChar;
using scan_internal::kSpace;
using scan_internal::kTagCont;

bool IsSpace(char c) { return Is(c, kSpace); }
bool IsIdentStart(char c) { return Is(c, kIdentStart); }
bool IsIdentCont(char c) { return Is(c, kIdentCont); }
bool IsTagCont(char c) { return Is(c, kTagCont); }
bool IsDigit(char c) { return Is(c, kDigit); }
bool IsOpChar(char c) { return Is(c, kOpChar); }

}  // namespace

SqlScanner::SqlScanner(std::string_view sql, size_t pos, size_t limit)
    : sql_(sql), pos_(std::min(pos, sql.size())), limit_(std::min(limit, sql.size())) {}

SqlToken SqlScanner::Make(SqlToken::Kind kind, size_t begin) {
  pos_ = std::min(pos_, limit_);
  return SqlToken{kind, begin, pos_};
}

SqlToken SqlScanner::Fail(size_t begin) {
  done_ = true;
  return SqlToken{SqlToken::Kind::kError, begin, limit_};
}

bool SqlScanner::SkipSpace() {
  while (pos_ < limit_) {
    char c = sql_[pos_];
    if (IsSpace(c)) {
      ++pos_;
    } else if (c == '-' && pos_ + 1 < limit_ && sql_[pos_ + 1] == '-') {
      while (pos_ < limit_ && sql_[pos_] != '\n' && sql_[pos_] != '\r') ++pos_;
    } else if (c == '/' && pos_ + 1 < limit_ && sql_[pos_ + 1] == '*') {
      // Block comments nest in PostgreSQL.
      int depth = 0;
      do {
        if (pos_ + 1 < limit_ && sql_[pos_] == '/' && sql_[pos_ + 1] == '*') {
          ++depth;
          pos_ += 2;
        } else if (pos_ + 1 < limit_ && sql_[pos_] == '*' && sql_[pos_ + 1] == '/') {
          --depth;
          pos_ += 2;
        } else {
          ++pos_;
        }
      } while (depth > 0 && pos_ < limit_);
      if (depth > 0) return false;
    } else {
      break;
    }
  }
  return true;
}

bool SqlScanner::SkipQuoted(char q, bool backslash) {
  ++pos_;  // the opening quote
  while (pos_ < limit_) {
    char c = sql_[pos_];
    if (backslash && c == '\\') {
      pos_ += 2;
      continue;
    }
    ++pos_;
    if (c == q) {
      if (pos_ < limit_ && sql_[pos_] == q) {  // a doubled quote stands for itself
        ++pos_;
        continue;
      }
      return true;
    }
  }
  pos_ = limit_;
  return false;
}

int SqlScanner::SkipDollarQuoted() {
  size_t k = pos_ + 1;
  if (k < limit_ && IsIdentStart(sql_[k])) {
    while (k < limit_ && IsTagCont(sql_[k])) ++k;
  }
  if (k >= limit_ || sql_[k] != '$') return 0;
  std::string_view tag = sql_.substr(pos_, k + 1 - pos_);
  size_t close = sql_.substr(0, limit_).find(tag, k + 1);
  if (close == std::string_view::npos) {
    pos_ = limit_;
    return -1;
  }
  pos_ = close + tag.size();
  return 1;
}

SqlToken SqlScanner::NextSlow() {
  using K = SqlToken::Kind;
  if (done_) return SqlToken{K::kEnd, limit_, limit_};
  // Comments (Next skipped the white space before them), then the token.
  const char* const base = sql_.data();
  const char* const end = base + limit_;
  const char* p = base + pos_;
  if (scan_internal::StartsComment(p, end)) {
    if (!SkipSpace()) return Fail(pos_);
    p = base + pos_;
  }
  if (p >= end) {
    done_ = true;
    return SqlToken{K::kEnd, limit_, limit_};
  }
  const size_t begin = pos_;
  const char c = *p;
  const char next = end - p >= 2 ? p[1] : '\0';
  const auto single = [&](K kind) {
    pos_ = begin + 1;
    return SqlToken{kind, begin, pos_};
  };
  if (scan_internal::StartsNumber(p, end)) return Number(begin);
  switch (c) {
    case '(':
    case '[':
      return single(K::kOpen);
    case ')':
    case ']':
      return single(K::kClose);
    case ',':
      return single(K::kComma);
    case ';':
      return single(K::kSemicolon);
    case '\'':
      return SkipQuoted('\'', false) ? Make(K::kString, begin) : Fail(begin);
    case '"':
      return SkipQuoted('"', false) ? Make(K::kQuotedIdentifier, begin) : Fail(begin);
    case ':':
      if (next != ':') return single(K::kOther);
      pos_ = begin + 2;
      return SqlToken{K::kOther, begin, pos_};
    case '$': {
      if (IsDigit(next)) {
        ++pos_;
        while (pos_ < limit_ && IsDigit(sql_[pos_])) ++pos_;
        return Make(K::kParam, begin);
      }
      int dollar = SkipDollarQuoted();
      if (dollar > 0) return Make(K::kString, begin);
      if (dollar < 0) return Fail(begin);
      return single(K::kOther);
    }
    default:
      break;
  }
  if (IsOpChar(c)) {
    // An operator ends where a comment starts (scan.l trims "--" and "/*" from it).
    ++pos_;
    while (pos_ < limit_ && IsOpChar(sql_[pos_]) &&
           !scan_internal::StartsComment(base + pos_, end)) {
      ++pos_;
    }
    return Make(K::kOperator, begin);
  }
  if (!IsIdentStart(c)) return single(K::kOther);
  // A letter followed by a quote or '&' (the usual words took the fast path above).
  const char next2 = end - p >= 3 ? p[2] : '\0';
  if ((c == 'e' || c == 'E') && next == '\'') {
    ++pos_;
    return SkipQuoted('\'', true) ? Make(K::kString, begin) : Fail(begin);
  }
  if ((c == 'b' || c == 'B' || c == 'x' || c == 'X' || c == 'n' || c == 'N') && next == '\'') {
    ++pos_;
    return SkipQuoted('\'', false) ? Make(K::kString, begin) : Fail(begin);
  }
  if ((c == 'u' || c == 'U') && next == '&' && (next2 == '\'' || next2 == '"')) {
    pos_ += 2;
    K kind = next2 == '\'' ? K::kString : K::kQuotedIdentifier;
    return SkipQuoted(next2, false) ? Make(kind, begin) : Fail(begin);
  }
  while (pos_ < limit_ && IsIdentCont(sql_[pos_])) ++pos_;
  return Make(K::kWord, begin);
}

SqlToken SqlScanner::Number(size_t begin) {
  const char* const base = sql_.data();
  pos_ = static_cast<size_t>(scan_internal::NumberEnd(base + begin, base + limit_) - base);
  return SqlToken{SqlToken::Kind::kNumber, begin, pos_};
}

namespace scan_internal {

const char* NumberEnd(const char* p, const char* end) {
  while (p < end && IsDigit(*p)) ++p;
  if (p < end && *p == '.' && !(end - p >= 2 && p[1] == '.')) {
    ++p;
    while (p < end && IsDigit(*p)) ++p;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    const char* k = p + 1;
    if (k < end && (*k == '+' || *k == '-')) ++k;
    if (k < end && IsDigit(*k)) {
      p = k;
      while (p < end && IsDigit(*p)) ++p;
    }
  }
  return p;
}

}  // namespace scan_internal

bool IsWord(std::string_view sql, const SqlToken& t, std::string_view keyword) {
  if (t.kind != SqlToken::Kind::kWord || t.end - t.begin != keyword.size()) return false;
  for (size_t i = 0; i < keyword.size(); ++i) {
    char c = sql[t.begin + i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != keyword[i]) return false;
  }
  return true;
}

}  // namespace pgring::sharding
