#include "sharding/shape_memo.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "sharding/sql_scan.h"

namespace pgring::sharding {
namespace {

// Longest shape kept: a longer statement (a large multi-row INSERT) is shaped by a scan.
constexpr size_t kMaxFormBytes = 4096;
// Most digits of an integer literal that ShapeOf replaces.
constexpr size_t kMaxDigits = 18;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// A byte that could continue a number or a word (1e5, 12abc, 0x1F, 1_000, 1.5).
bool ContinuesToken(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         c == '.' || static_cast<unsigned char>(c) >= 0x80;
}

bool AllDigits(std::string_view t) {
  return !t.empty() && t.size() <= kMaxDigits && std::all_of(t.begin(), t.end(), IsDigit);
}

}  // namespace

struct ShapeMemo::Form {
  enum class Kind : uint8_t {
    kInt,        // digits
    kSignedInt,  // digits with or without a minus right before them
    kString,
  };
  struct Literal {
    uint32_t param_begin;  // its parameter, $n, is shape[param_begin, param_end)
    uint32_t param_end;
    Kind kind;
  };
  std::string shape;
  std::vector<Literal> literals;
};

ShapeMemo::ShapeMemo() = default;
ShapeMemo::~ShapeMemo() = default;

size_t ShapeMemo::Bucket(std::string_view sql) {
  uint64_t a;
  uint64_t b;
  std::memcpy(&a, sql.data(), 8);
  std::memcpy(&b, sql.data() + 8, 8);
  const uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ull)) * 0xC2B2AE3D27D4EB4Full;
  static_assert(kBuckets == 64 && kKeyBytes == 16);
  return static_cast<size_t>(h >> 58);
}

bool ShapeMemo::Shape(std::string_view sql, LiteralShape& out) {
  if (sql.size() < kKeyBytes) return ShapeOf(sql, out);
  auto& ways = buckets_[Bucket(sql)];
  for (size_t i = 0; i < kWays && ways[i]; ++i) {
    if (Match(*ways[i], sql, out)) {
      std::rotate(ways.begin(), ways.begin() + static_cast<ptrdiff_t>(i),
                  ways.begin() + static_cast<ptrdiff_t>(i) + 1);
      ++hits_;
      return true;
    }
  }
  ++misses_;
  if (!ShapeOf(sql, out)) return false;
  if (std::unique_ptr<Form> form = MakeForm(sql, out)) {
    std::move_backward(ways.begin(), ways.end() - 1, ways.end());
    ways[0] = std::move(form);
  }
  return true;
}

bool ShapeMemo::Match(const Form& form, std::string_view sql, LiteralShape& out) {
  const char* p = sql.data();
  const char* const end = p + sql.size();
  const char* const shape = form.shape.data();
  const auto same = [&](size_t from, size_t n) {
    return static_cast<size_t>(end - p) >= n && std::memcmp(p, shape + from, n) == 0;
  };
  out.values.clear();
  size_t copied = 0;  // shape[0, copied) matched
  for (const Form::Literal& literal : form.literals) {
    const size_t gap = literal.param_begin - copied;
    if (!same(copied, gap)) return false;
    p += gap;
    const char* const begin = p;
    switch (literal.kind) {
      case Form::Kind::kString: {
        if (p == end || *p != '\'') return false;
        const auto* close =
            static_cast<const char*>(std::memchr(p + 1, '\'', static_cast<size_t>(end - p - 1)));
        // A doubled quote fails the comparison that follows: the text after a string
        // literal never starts with a quote.
        if (close == nullptr) return false;
        out.values.emplace_back(p + 1, static_cast<size_t>(close - p - 1));
        p = close + 1;
        break;
      }
      case Form::Kind::kSignedInt:
        if (p != end && *p == '-') ++p;
        [[fallthrough]];
      case Form::Kind::kInt: {
        const char* const digits = p;
        while (p < end && IsDigit(*p)) ++p;
        const auto n = static_cast<size_t>(p - digits);
        if (n == 0 || n > kMaxDigits) return false;
        out.values.emplace_back(begin, static_cast<size_t>(p - begin));
        break;
      }
    }
    copied = literal.param_end;
  }
  const size_t rest = form.shape.size() - copied;
  if (static_cast<size_t>(end - p) != rest || !same(copied, rest)) return false;
  out.text = form.shape;
  return true;
}

std::unique_ptr<ShapeMemo::Form> ShapeMemo::MakeForm(std::string_view sql,
                                                     const LiteralShape& shape) {
  if (shape.text.size() > kMaxFormBytes) return nullptr;
  auto form = std::make_unique<Form>();
  form->shape.assign(shape.text);
  const std::string_view text = form->shape;
  size_t t = 0;  // text[0, t) and sql[0, s) are the same statement so far
  size_t s = 0;
  for (size_t i = 0; i < shape.values.size(); ++i) {
    // The text up to the parameter is the statement's own.
    const size_t dollar = text.find('$', t);
    if (dollar == text.npos || sql.substr(s, dollar - t) != text.substr(t, dollar - t)) {
      return nullptr;
    }
    s += dollar - t;
    if (i == 0 && s < kKeyBytes) return nullptr;  // the key would hold a value
    // The parameter is $(i + 1).
    size_t param_end = dollar + 1;
    while (param_end < text.size() && IsDigit(text[param_end])) ++param_end;
    size_t n = 0;
    if (std::from_chars(text.data() + dollar + 1, text.data() + param_end, n).ec != std::errc{} ||
        n != i + 1) {
      return nullptr;
    }
    // The literal: its value is a view into sql.
    const std::string_view value = shape.values[i];
    size_t begin = static_cast<size_t>(value.data() - sql.data());
    size_t end = begin + value.size();
    Form::Kind kind;
    if (begin > 0 && sql[begin - 1] == '\'' && end < sql.size() && sql[end] == '\'') {
      if (value.find('\'') != value.npos) return nullptr;
      kind = Form::Kind::kString;
      --begin;
      ++end;
    } else {
      const bool negative = !value.empty() && value[0] == '-';
      if (!AllDigits(value.substr(negative ? 1 : 0))) return nullptr;
      if (end < sql.size() && ContinuesToken(sql[end])) return nullptr;
      // ShapeOf takes a minus right before an integer into its value (5 and -5 have one
      // shape) unless it joins an operator before it (`x =-5` is `=-` and 5).
      const bool after_operator = begin > 0 && scan_internal::Is(sql[begin - 1],
                                                                 scan_internal::kOpChar);
      kind = after_operator ? Form::Kind::kInt : Form::Kind::kSignedInt;
    }
    if (begin != s) return nullptr;
    form->literals.push_back(
        {static_cast<uint32_t>(dollar), static_cast<uint32_t>(param_end), kind});
    t = param_end;
    s = end;
  }
  if (sql.substr(s) != text.substr(t)) return nullptr;
  return form;
}

}  // namespace pgring::sharding
