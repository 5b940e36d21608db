#include "sharding/value_compare.h"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "protocol/sql_error.h"
#include "sharding/hash.h"

namespace pgring::sharding {
namespace {

using Bytes = std::span<const std::byte>;

// The divisor of an average can be as large as INT64_MAX, so one step of long division
// needs more than 64 bits.
__extension__ using Uint128 = unsigned __int128;

std::string_view AsText(Bytes b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

uint64_t ReadBigEndian(const std::byte* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

void AppendBigEndian(std::string& out, uint64_t v, size_t n) {
  for (size_t i = n; i-- > 0;) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

template <typename T>
int Sign(T a, T b) {
  return a < b ? -1 : (a > b ? 1 : 0);
}

int CompareBytes(std::string_view a, std::string_view b) {
  int c = a.compare(b);  // memcmp, then length: PostgreSQL's order under COLLATE "C"
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

void AppendLengthPrefixed(std::string& key, std::string_view bytes) {
  AppendBigEndian(key, bytes.size(), 4);
  key.append(bytes);
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view StripLeadingZeros(std::string_view digits) {
  size_t i = digits.find_first_not_of('0');
  return i == std::string_view::npos ? std::string_view() : digits.substr(i);
}

std::string_view StripTrailingZeros(std::string_view digits) {
  size_t i = digits.find_last_not_of('0');
  return i == std::string_view::npos ? std::string_view() : digits.substr(0, i + 1);
}

// ---- numeric text -----------------------------------------------------------------------

// A numeric value in text form, borrowed from the text: integer digits without leading
// zeros and fraction digits as written.
struct NumericText {
  Numeric::Kind kind = Numeric::Kind::kFinite;
  bool negative = false;
  std::string_view int_digits;
  std::string_view frac_digits;
  bool IsZero() const { return int_digits.empty() && StripTrailingZeros(frac_digits).empty(); }
};

std::optional<NumericText> ParseNumericText(std::string_view s) {
  NumericText n;
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (EqualsIgnoreCase(s, "nan")) {
    if (negative) return std::nullopt;
    n.kind = Numeric::Kind::kNaN;
    return n;
  }
  if (EqualsIgnoreCase(s, "infinity") || EqualsIgnoreCase(s, "inf")) {
    n.kind = negative ? Numeric::Kind::kNegativeInfinity : Numeric::Kind::kInfinity;
    return n;
  }
  size_t dot = s.find('.');
  std::string_view int_part = s.substr(0, dot);
  std::string_view frac_part =
      dot == std::string_view::npos ? std::string_view() : s.substr(dot + 1);
  if (int_part.empty() && frac_part.empty()) return std::nullopt;
  for (char c : int_part)
    if (!IsDigit(c)) return std::nullopt;
  for (char c : frac_part)
    if (!IsDigit(c)) return std::nullopt;
  n.int_digits = StripLeadingZeros(int_part);
  n.frac_digits = frac_part;
  n.negative = negative && !n.IsZero();  // numeric has no negative zero
  return n;
}

int SpecialRank(Numeric::Kind kind) {
  switch (kind) {
    case Numeric::Kind::kNegativeInfinity:
      return 0;
    case Numeric::Kind::kFinite:
      return 1;
    case Numeric::Kind::kInfinity:
      return 2;
    case Numeric::Kind::kNaN:
      return 3;
  }
  return 1;
}

int CompareParsedNumericText(const NumericText& a, const NumericText& b) {
  int ra = SpecialRank(a.kind), rb = SpecialRank(b.kind);
  if (ra != rb || a.kind != Numeric::Kind::kFinite) return Sign(ra, rb);
  if (a.negative != b.negative) return a.negative ? -1 : 1;
  int magnitude;
  if (a.int_digits.size() != b.int_digits.size()) {
    magnitude = Sign(a.int_digits.size(), b.int_digits.size());
  } else {
    magnitude = CompareBytes(a.int_digits, b.int_digits);
    if (magnitude == 0) {
      magnitude =
          CompareBytes(StripTrailingZeros(a.frac_digits), StripTrailingZeros(b.frac_digits));
    }
  }
  return a.negative ? -magnitude : magnitude;
}

// ---- decimal digit strings ----------------------------------------------------------------

// Adds two non-negative decimal digit strings of any length.
std::string AddDigits(std::string_view a, std::string_view b) {
  std::string out;
  out.reserve(std::max(a.size(), b.size()) + 1);
  int carry = 0;
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    int da = i < a.size() ? a[a.size() - 1 - i] - '0' : 0;
    int db = i < b.size() ? b[b.size() - 1 - i] - '0' : 0;
    int s = da + db + carry;
    out.push_back(static_cast<char>('0' + s % 10));
    carry = s / 10;
  }
  if (carry) out.push_back('1');
  std::reverse(out.begin(), out.end());
  return out;
}

// Subtracts b from a (a >= b, both non-negative digit strings).
std::string SubtractDigits(std::string_view a, std::string_view b) {
  std::string out;
  out.reserve(a.size());
  int borrow = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    int da = a[a.size() - 1 - i] - '0';
    int db = i < b.size() ? b[b.size() - 1 - i] - '0' : 0;
    int d = da - db - borrow;
    borrow = d < 0;
    if (d < 0) d += 10;
    out.push_back(static_cast<char>('0' + d));
  }
  std::reverse(out.begin(), out.end());
  return out;
}

// ---- floats -------------------------------------------------------------------------------

template <typename F>
std::optional<F> ParseFloatText(std::string_view s) {
  if (s.empty() || s[0] == '+') return std::nullopt;
  F v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// Formats the shortest exact digits of `scientific` (std::to_chars' scientific form) the way
// PostgreSQL's float output does: fixed notation for decimal exponents in
// [-4, fixed_limit), exponent notation with at least two exponent digits otherwise.
std::string PostgresFloatForm(std::string_view scientific, int fixed_limit) {
  bool negative = !scientific.empty() && scientific[0] == '-';
  if (negative) scientific.remove_prefix(1);
  size_t e = scientific.find('e');
  std::string digits;
  for (char c : scientific.substr(0, e))
    if (c != '.') digits.push_back(c);
  int exponent = 0;
  std::string_view exp_text = scientific.substr(e + 1);
  if (!exp_text.empty() && exp_text[0] == '+') exp_text.remove_prefix(1);
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exponent);
  std::string out = negative ? "-" : "";
  if (exponent >= -4 && exponent < fixed_limit) {
    if (exponent < 0) {
      out += "0.";
      out.append(static_cast<size_t>(-exponent - 1), '0');
      out += digits;
    } else if (digits.size() <= static_cast<size_t>(exponent) + 1) {
      out += digits;
      out.append(static_cast<size_t>(exponent) + 1 - digits.size(), '0');
    } else {
      out += digits.substr(0, static_cast<size_t>(exponent) + 1);
      out += '.';
      out += digits.substr(static_cast<size_t>(exponent) + 1);
    }
    return out;
  }
  out += digits[0];
  if (digits.size() > 1) {
    out += '.';
    out += digits.substr(1);
  }
  out += exponent < 0 ? "e-" : "e+";
  int magnitude = exponent < 0 ? -exponent : exponent;
  if (magnitude < 10) out += '0';
  out += std::to_string(magnitude);
  return out;
}

template <typename F>
std::string FormatFloat(F v, int fixed_limit) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v < 0 ? "-Infinity" : "Infinity";
  if (v == 0) return std::signbit(v) ? "-0" : "0";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  return PostgresFloatForm(std::string_view(buf, static_cast<size_t>(end - buf)), fixed_limit);
}

// float8's btree order: NaN equals NaN and sorts above everything else; -0 equals 0.
int CompareDoubles(double a, double b) {
  bool na = std::isnan(a), nb = std::isnan(b);
  if (na || nb) return na == nb ? 0 : (na ? 1 : -1);
  return Sign(a, b);
}

// ---- dates and times ------------------------------------------------------------------------

constexpr int64_t kMicrosPerSecond = 1000000;
constexpr int64_t kMicrosPerDay = 86400 * kMicrosPerSecond;
constexpr int64_t kInfinity = std::numeric_limits<int64_t>::max();
constexpr int64_t kNegativeInfinity = std::numeric_limits<int64_t>::min();
// Days between 1970-01-01 and 2000-01-01, PostgreSQL's epoch for binary dates.
constexpr int64_t kPostgresEpochDays = 10957;

// Days since 2000-01-01 of a date of the proleptic Gregorian calendar with astronomical
// year numbering (1 BC is year 0), by counting whole 400-year cycles of 146097 days and
// the days within the cycle, with the year starting in March so the leap day comes last.
int64_t DaysFromCivil(int64_t year, int month, int day) {
  year -= month <= 2 ? 1 : 0;
  int64_t era = (year >= 0 ? year : year - 399) / 400;
  int64_t year_of_era = year - era * 400;
  int64_t day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468 - kPostgresEpochDays;
}

class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  bool AtEnd() const { return i_ == s_.size(); }
  bool Take(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool TakeSuffix(std::string_view suffix) {
    if (s_.size() - i_ >= suffix.size() && s_.substr(s_.size() - suffix.size()) == suffix) {
      s_.remove_suffix(suffix.size());
      return true;
    }
    return false;
  }
  // Reads between min and max digits as a number.
  std::optional<int64_t> Digits(size_t min, size_t max) {
    size_t start = i_;
    int64_t v = 0;
    while (i_ < s_.size() && i_ - start < max && IsDigit(s_[i_])) v = v * 10 + (s_[i_++] - '0');
    if (i_ - start < min) return std::nullopt;
    return v;
  }
  // Reads ".ffffff" (1 to 6 digits) as microseconds; 0 if absent.
  std::optional<int64_t> Fraction() {
    if (!Take('.')) return 0;
    size_t start = i_;
    auto digits = Digits(1, 6);
    if (!digits) return std::nullopt;
    int64_t v = *digits;
    for (size_t n = i_ - start; n < 6; ++n) v *= 10;
    return v;
  }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

// "YYYY-MM-DD" (any number of year digits) as days since 2000-01-01, BC handled by caller.
std::optional<int64_t> ParseDatePart(Cursor& c, bool bc) {
  auto year = c.Digits(1, 9);
  if (!year || *year == 0 || !c.Take('-')) return std::nullopt;
  auto month = c.Digits(2, 2);
  if (!month || *month < 1 || *month > 12 || !c.Take('-')) return std::nullopt;
  auto day = c.Digits(2, 2);
  if (!day || *day < 1 || *day > 31) return std::nullopt;
  return DaysFromCivil(bc ? 1 - *year : *year, static_cast<int>(*month), static_cast<int>(*day));
}

// "HH:MM:SS[.ffffff]" as microseconds since midnight (24:00:00 allowed, as PostgreSQL does).
std::optional<int64_t> ParseTimePart(Cursor& c) {
  auto hour = c.Digits(2, 2);
  if (!hour || *hour > 24 || !c.Take(':')) return std::nullopt;
  auto minute = c.Digits(2, 2);
  if (!minute || *minute > 59 || !c.Take(':')) return std::nullopt;
  auto second = c.Digits(2, 2);
  if (!second || *second > 60) return std::nullopt;
  auto fraction = c.Fraction();
  if (!fraction) return std::nullopt;
  return ((*hour * 60 + *minute) * 60 + *second) * kMicrosPerSecond + *fraction;
}

// "+HH[:MM[:SS]]" as seconds east of UTC.
std::optional<int64_t> ParseOffset(Cursor& c) {
  int sign = c.Take('+') ? 1 : (c.Take('-') ? -1 : 0);
  if (sign == 0) return std::nullopt;
  auto hours = c.Digits(2, 2);
  if (!hours) return std::nullopt;
  int64_t seconds = *hours * 3600;
  if (c.Take(':')) {
    auto minutes = c.Digits(2, 2);
    if (!minutes) return std::nullopt;
    seconds += *minutes * 60;
    if (c.Take(':')) {
      auto secs = c.Digits(2, 2);
      if (!secs) return std::nullopt;
      seconds += *secs;
    }
  }
  return sign * seconds;
}

std::optional<int64_t> ParseInfinity(std::string_view s) {
  if (s == "infinity") return kInfinity;
  if (s == "-infinity") return kNegativeInfinity;
  return std::nullopt;
}

// A date in DateStyle ISO as days since 2000-01-01 (infinities as INT64 limits).
std::optional<int64_t> ParseDateText(std::string_view s) {
  if (auto inf = ParseInfinity(s)) return inf;
  Cursor c(s);
  bool bc = c.TakeSuffix(" BC");
  auto days = ParseDatePart(c, bc);
  if (!days || !c.AtEnd()) return std::nullopt;
  return days;
}

std::optional<int64_t> ParseTimeText(std::string_view s) {
  Cursor c(s);
  auto t = ParseTimePart(c);
  if (!t || !c.AtEnd()) return std::nullopt;
  return t;
}

// A timestamp (with_zone: timestamptz, converted to UTC) in DateStyle ISO as microseconds
// since 2000-01-01 00:00 (infinities as INT64 limits).
std::optional<int64_t> ParseTimestampText(std::string_view s, bool with_zone) {
  if (auto inf = ParseInfinity(s)) return inf;
  Cursor c(s);
  bool bc = c.TakeSuffix(" BC");
  auto days = ParseDatePart(c, bc);
  // PostgreSQL's timestamps end in year 294276; larger years would overflow below.
  if (!days || *days > 110000000 || !c.Take(' ')) return std::nullopt;
  auto time = ParseTimePart(c);
  if (!time) return std::nullopt;
  int64_t offset = 0;
  if (with_zone) {
    auto parsed = ParseOffset(c);
    if (!parsed) return std::nullopt;
    offset = *parsed;
  }
  if (!c.AtEnd()) return std::nullopt;
  return *days * kMicrosPerDay + *time - offset * kMicrosPerSecond;
}

// ---- bytea --------------------------------------------------------------------------------

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Yields the bytes of a bytea in text form, hex ("\x0aff") or escape ("a\\b\001") format.
class ByteaTextReader {
 public:
  explicit ByteaTextReader(std::string_view s) : s_(s) {
    hex_ = s_.size() >= 2 && s_[0] == '\\' && s_[1] == 'x';
    if (hex_) i_ = 2;
  }
  // Returns the next byte, -1 at the end, -2 if the text is malformed.
  int Next() {
    if (i_ >= s_.size()) return -1;
    if (hex_) {
      if (i_ + 1 >= s_.size()) return -2;
      int hi = HexValue(s_[i_]), lo = HexValue(s_[i_ + 1]);
      i_ += 2;
      return hi < 0 || lo < 0 ? -2 : hi * 16 + lo;
    }
    char c = s_[i_++];
    if (c != '\\') return static_cast<uint8_t>(c);
    if (i_ < s_.size() && s_[i_] == '\\') {
      ++i_;
      return '\\';
    }
    if (i_ + 3 > s_.size()) return -2;
    int v = 0;
    for (int k = 0; k < 3; ++k) {
      char d = s_[i_++];
      if (d < '0' || d > '7') return -2;
      v = v * 8 + (d - '0');
    }
    return v > 255 ? -2 : v;
  }

 private:
  std::string_view s_;
  size_t i_ = 0;
  bool hex_ = false;
};

std::optional<int> CompareByteaText(std::string_view a, std::string_view b) {
  ByteaTextReader ra(a), rb(b);
  while (true) {
    int x = ra.Next(), y = rb.Next();
    if (x == -2 || y == -2) return std::nullopt;
    if (x != y) return x < y ? -1 : 1;  // the end (-1) sorts before any byte
    if (x == -1) return 0;
  }
}

// ---- per-family readers ---------------------------------------------------------------------

std::optional<int64_t> ReadTemporal(uint32_t type_oid, ValueFormat format, Bytes v) {
  if (format == ValueFormat::kBinary) {
    if (type_oid == pg_type::kDate) {
      if (v.size() != 4) return std::nullopt;
      auto days = static_cast<int32_t>(ReadBigEndian(v.data(), 4));
      if (days == std::numeric_limits<int32_t>::max()) return kInfinity;
      if (days == std::numeric_limits<int32_t>::min()) return kNegativeInfinity;
      return days;
    }
    if (v.size() != 8) return std::nullopt;
    return static_cast<int64_t>(ReadBigEndian(v.data(), 8));
  }
  std::string_view s = AsText(v);
  switch (type_oid) {
    case pg_type::kDate:
      return ParseDateText(s);
    case pg_type::kTime:
      return ParseTimeText(s);
    case pg_type::kTimestamp:
      return ParseTimestampText(s, false);
    default:
      return ParseTimestampText(s, true);
  }
}

std::optional<bool> ReadBool(ValueFormat format, Bytes v) {
  if (format == ValueFormat::kBinary) {
    if (v.size() != 1 || static_cast<uint8_t>(v[0]) > 1) return std::nullopt;
    return v[0] != std::byte{0};
  }
  std::string_view s = AsText(v);
  if (s == "t" || s == "true") return true;
  if (s == "f" || s == "false") return false;
  return std::nullopt;
}

std::optional<std::array<uint8_t, 16>> ReadUuid(ValueFormat format, Bytes v) {
  if (format == ValueFormat::kText) return ParseUuid(AsText(v));
  if (v.size() != 16) return std::nullopt;
  std::array<uint8_t, 16> u;
  std::memcpy(u.data(), v.data(), 16);
  return u;
}

std::string_view TrimBlanks(std::string_view s) {
  size_t end = s.find_last_not_of(' ');
  return end == std::string_view::npos ? std::string_view() : s.substr(0, end + 1);
}

std::string PrintableValue(Bytes v) {
  std::string out;
  for (std::byte b : v.first(std::min<size_t>(v.size(), 40))) {
    auto c = static_cast<unsigned char>(b);
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  if (v.size() > 40) out += "...";
  return out;
}

}  // namespace

// ---- public helpers -------------------------------------------------------------------------

std::optional<ValueFormat> ValueFormatFromCode(int16_t code) {
  if (code == 0) return ValueFormat::kText;
  if (code == 1) return ValueFormat::kBinary;
  return std::nullopt;
}

bool IsComparableType(uint32_t type_oid) {
  switch (type_oid) {
    case pg_type::kBool:
    case pg_type::kBytea:
    case pg_type::kName:
    case pg_type::kInt8:
    case pg_type::kInt2:
    case pg_type::kInt4:
    case pg_type::kText:
    case pg_type::kOid:
    case pg_type::kFloat4:
    case pg_type::kFloat8:
    case pg_type::kBpchar:
    case pg_type::kVarchar:
    case pg_type::kDate:
    case pg_type::kTime:
    case pg_type::kTimestamp:
    case pg_type::kTimestampTz:
    case pg_type::kNumeric:
    case pg_type::kUuid:
      return true;
    default:
      return false;
  }
}

std::string TypeName(uint32_t type_oid) {
  switch (type_oid) {
    case pg_type::kBool:
      return "boolean";
    case pg_type::kBytea:
      return "bytea";
    case pg_type::kName:
      return "name";
    case pg_type::kInt8:
      return "bigint";
    case pg_type::kInt2:
      return "smallint";
    case pg_type::kInt4:
      return "integer";
    case pg_type::kText:
      return "text";
    case pg_type::kOid:
      return "oid";
    case pg_type::kFloat4:
      return "real";
    case pg_type::kFloat8:
      return "double precision";
    case pg_type::kBpchar:
      return "character";
    case pg_type::kVarchar:
      return "character varying";
    case pg_type::kDate:
      return "date";
    case pg_type::kTime:
      return "time without time zone";
    case pg_type::kTimestamp:
      return "timestamp without time zone";
    case pg_type::kTimestampTz:
      return "timestamp with time zone";
    case pg_type::kNumeric:
      return "numeric";
    case pg_type::kUuid:
      return "uuid";
    default:
      return "type OID " + std::to_string(type_oid);
  }
}

std::optional<int64_t> ReadInteger(uint32_t type_oid, ValueFormat format, Bytes value) {
  if (format == ValueFormat::kText) {
    std::string_view s = AsText(value);
    int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
  }
  switch (type_oid) {
    case pg_type::kInt2:
      if (value.size() != 2) return std::nullopt;
      return static_cast<int16_t>(ReadBigEndian(value.data(), 2));
    case pg_type::kInt4:
      if (value.size() != 4) return std::nullopt;
      return static_cast<int32_t>(ReadBigEndian(value.data(), 4));
    case pg_type::kOid:
      if (value.size() != 4) return std::nullopt;
      return static_cast<int64_t>(ReadBigEndian(value.data(), 4));
    case pg_type::kInt8:
      if (value.size() != 8) return std::nullopt;
      return static_cast<int64_t>(ReadBigEndian(value.data(), 8));
    default:
      return std::nullopt;
  }
}

bool AppendInteger(uint32_t type_oid, ValueFormat format, int64_t v, std::string& out) {
  size_t width = 8;
  int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
  switch (type_oid) {
    case pg_type::kInt2:
      width = 2, lo = INT16_MIN, hi = INT16_MAX;
      break;
    case pg_type::kInt4:
      width = 4, lo = INT32_MIN, hi = INT32_MAX;
      break;
    case pg_type::kOid:
      width = 4, lo = 0, hi = UINT32_MAX;
      break;
    case pg_type::kInt8:
      break;
    default:
      return false;
  }
  if (v < lo || v > hi) return false;
  if (format == ValueFormat::kText) {
    out += std::to_string(v);
  } else {
    AppendBigEndian(out, static_cast<uint64_t>(v), width);
  }
  return true;
}

std::optional<double> ReadFloat(uint32_t type_oid, ValueFormat format, Bytes value) {
  if (format == ValueFormat::kText) {
    if (type_oid != pg_type::kFloat4) return ParseFloatText<double>(AsText(value));
    // Parsed as float: the shortest text of a float4 names that float exactly.
    auto f = ParseFloatText<float>(AsText(value));
    if (!f) return std::nullopt;
    return *f;
  }
  if (type_oid == pg_type::kFloat4) {
    if (value.size() != 4) return std::nullopt;
    return std::bit_cast<float>(static_cast<uint32_t>(ReadBigEndian(value.data(), 4)));
  }
  if (type_oid != pg_type::kFloat8 || value.size() != 8) return std::nullopt;
  return std::bit_cast<double>(ReadBigEndian(value.data(), 8));
}

void AppendFloat(uint32_t type_oid, ValueFormat format, double v, std::string& out) {
  if (type_oid == pg_type::kFloat4) {
    auto f = static_cast<float>(v);
    if (format == ValueFormat::kText) {
      out += FormatFloat4(f);
    } else {
      AppendBigEndian(out, std::bit_cast<uint32_t>(f), 4);
    }
    return;
  }
  if (format == ValueFormat::kText) {
    out += FormatFloat8(v);
  } else {
    AppendBigEndian(out, std::bit_cast<uint64_t>(v), 8);
  }
}

std::optional<Numeric> ReadNumeric(ValueFormat format, Bytes value) {
  if (format == ValueFormat::kText) return Numeric::FromText(AsText(value));
  return Numeric::FromBinary(value);
}

std::string FormatFloat8(double v) { return FormatFloat(v, 15); }
std::string FormatFloat4(float v) { return FormatFloat(v, 6); }

std::optional<int> CompareNumericText(std::string_view a, std::string_view b) {
  auto na = ParseNumericText(a);
  auto nb = ParseNumericText(b);
  if (!na || !nb) return std::nullopt;
  return CompareParsedNumericText(*na, *nb);
}

// ---- Numeric --------------------------------------------------------------------------------

namespace {
constexpr uint16_t kNumericPositive = 0x0000;
constexpr uint16_t kNumericNegative = 0x4000;
constexpr uint16_t kNumericNaN = 0xC000;
constexpr uint16_t kNumericPlusInfinity = 0xD000;
constexpr uint16_t kNumericMinusInfinity = 0xF000;
constexpr int kNumericMaxDisplayScale = 1000;
constexpr int kNumericMinSignificantDigits = 16;
constexpr int kNumericMaxDscale = 0x3FFF;
}  // namespace

Numeric Numeric::FromInt64(int64_t value) {
  Numeric n;
  n.negative_ = value < 0;
  uint64_t magnitude = value < 0 ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  n.digits_ = magnitude == 0 ? std::string() : std::to_string(magnitude);
  return n;
}

Numeric Numeric::Special(Kind kind) {
  Numeric n;
  n.kind_ = kind;
  return n;
}

std::optional<Numeric> Numeric::FromText(std::string_view text) {
  auto parsed = ParseNumericText(text);
  if (!parsed) return std::nullopt;
  if (parsed->kind != Kind::kFinite) return Special(parsed->kind);
  if (parsed->frac_digits.size() > static_cast<size_t>(kNumericMaxDscale)) return std::nullopt;
  Numeric n;
  n.negative_ = parsed->negative;
  n.digits_ = std::string(parsed->int_digits);
  n.digits_.append(parsed->frac_digits);
  n.scale_ = static_cast<int>(parsed->frac_digits.size());
  n.Normalize();
  return n;
}

std::optional<Numeric> Numeric::FromBinary(Bytes bytes) {
  if (bytes.size() < 8) return std::nullopt;
  auto ndigits = static_cast<int16_t>(ReadBigEndian(bytes.data(), 2));
  auto weight = static_cast<int16_t>(ReadBigEndian(bytes.data() + 2, 2));
  auto sign = static_cast<uint16_t>(ReadBigEndian(bytes.data() + 4, 2));
  auto dscale = static_cast<int16_t>(ReadBigEndian(bytes.data() + 6, 2));
  if (ndigits < 0 || bytes.size() != 8 + 2 * static_cast<size_t>(ndigits)) return std::nullopt;
  switch (sign) {
    case kNumericNaN:
      return Special(Kind::kNaN);
    case kNumericPlusInfinity:
      return Special(Kind::kInfinity);
    case kNumericMinusInfinity:
      return Special(Kind::kNegativeInfinity);
    case kNumericPositive:
    case kNumericNegative:
      break;
    default:
      return std::nullopt;
  }
  if (dscale < 0 || dscale > kNumericMaxDscale) return std::nullopt;
  // Lay the base-10000 digits out as decimal digits, with zero groups between the point
  // and the first (or after the last) stored digit: value = sum d[i] * 10000^(weight - i).
  std::string int_part, frac_part;
  for (int i = 0; i < ndigits; ++i) {
    auto d = static_cast<int16_t>(ReadBigEndian(bytes.data() + 8 + 2 * i, 2));
    if (d < 0 || d > 9999) return std::nullopt;
    char group[5];
    std::snprintf(group, sizeof(group), "%04d", static_cast<int>(d));
    int power = weight - i;  // this digit multiplies 10000^power
    if (power >= 0) {
      int_part.append(group, 4);
    } else {
      // Fraction groups: group -1 holds digits 1..4 after the point, and so on.
      size_t offset = 4 * static_cast<size_t>(-power - 1);
      if (offset >= static_cast<size_t>(dscale)) continue;  // truncated away, as numeric_recv
      if (frac_part.size() < offset) frac_part.append(offset - frac_part.size(), '0');
      frac_part.append(group, 4);
    }
  }
  // Integer groups below the last stored one are zero.
  if (weight >= 0 && ndigits > 0) {
    int last_power = weight - (ndigits - 1);
    if (last_power > 0) int_part.append(4 * static_cast<size_t>(last_power), '0');
  }
  frac_part.resize(static_cast<size_t>(dscale), '0');
  Numeric n;
  n.negative_ = sign == kNumericNegative;
  n.digits_ = int_part + frac_part;
  n.scale_ = dscale;
  n.Normalize();
  return n;
}

void Numeric::Normalize() {
  size_t first = digits_.find_first_not_of('0');
  digits_.erase(0, first == std::string::npos ? digits_.size() : first);
  if (digits_.empty()) negative_ = false;
}

std::string Numeric::ToText() const {
  switch (kind_) {
    case Kind::kNaN:
      return "NaN";
    case Kind::kInfinity:
      return "Infinity";
    case Kind::kNegativeInfinity:
      return "-Infinity";
    case Kind::kFinite:
      break;
  }
  std::string out = negative_ ? "-" : "";
  auto scale = static_cast<size_t>(scale_);
  std::string padded = digits_;
  if (padded.size() < scale + 1) padded.insert(0, scale + 1 - padded.size(), '0');
  out += padded.substr(0, padded.size() - scale);
  if (scale > 0) {
    out += '.';
    out += padded.substr(padded.size() - scale);
  }
  return out;
}

void Numeric::AppendBinary(std::string& out) const {
  uint16_t sign = negative_ ? kNumericNegative : kNumericPositive;
  switch (kind_) {
    case Kind::kNaN:
      sign = kNumericNaN;
      break;
    case Kind::kInfinity:
      sign = kNumericPlusInfinity;
      break;
    case Kind::kNegativeInfinity:
      sign = kNumericMinusInfinity;
      break;
    case Kind::kFinite:
      break;
  }
  if (kind_ != Kind::kFinite) {
    AppendBigEndian(out, 0, 2);
    AppendBigEndian(out, 0, 2);
    AppendBigEndian(out, sign, 2);
    // PostgreSQL 15 reads the display scale of a special value from its header bits, which
    // gives 32 for the infinities and 0 for NaN; clients ignore it, pgring sends the same.
    AppendBigEndian(out, kind_ == Kind::kNaN ? 0 : 32, 2);
    return;
  }
  auto scale = static_cast<size_t>(scale_);
  std::string padded = digits_;
  if (padded.size() < scale) padded.insert(0, scale - padded.size(), '0');
  std::string int_part = padded.substr(0, padded.size() - scale);
  std::string frac_part = padded.substr(padded.size() - scale);
  // Base-10000 groups aligned at the decimal point.
  if (int_part.size() % 4 != 0) int_part.insert(0, 4 - int_part.size() % 4, '0');
  if (frac_part.size() % 4 != 0) frac_part.append(4 - frac_part.size() % 4, '0');
  std::vector<int> groups;
  for (size_t i = 0; i < int_part.size(); i += 4)
    groups.push_back(std::stoi(int_part.substr(i, 4)));
  int weight = static_cast<int>(groups.size()) - 1;
  for (size_t i = 0; i < frac_part.size(); i += 4)
    groups.push_back(std::stoi(frac_part.substr(i, 4)));
  // numeric_send writes the stored form, which never has leading or trailing zero digits.
  size_t begin = 0;
  while (begin < groups.size() && groups[begin] == 0) {
    ++begin;
    --weight;
  }
  size_t end = groups.size();
  while (end > begin && groups[end - 1] == 0) --end;
  if (begin == end) {
    weight = 0;
    sign = kNumericPositive;
  }
  AppendBigEndian(out, end - begin, 2);
  AppendBigEndian(out, static_cast<uint16_t>(static_cast<int16_t>(weight)), 2);
  AppendBigEndian(out, sign, 2);
  AppendBigEndian(out, static_cast<uint16_t>(scale_), 2);
  for (size_t i = begin; i < end; ++i) AppendBigEndian(out, static_cast<uint16_t>(groups[i]), 2);
}

int Numeric::CompareMagnitude(const Numeric& other) const {
  if (digits_.empty() || other.digits_.empty()) {
    return Sign(digits_.empty() ? 0 : 1, other.digits_.empty() ? 0 : 1);
  }
  // Number of digits before the point (may be negative for values below 0.1).
  int64_t ea = static_cast<int64_t>(digits_.size()) - scale_;
  int64_t eb = static_cast<int64_t>(other.digits_.size()) - other.scale_;
  if (ea != eb) return Sign(ea, eb);
  return CompareBytes(StripTrailingZeros(digits_), StripTrailingZeros(other.digits_));
}

int Numeric::Compare(const Numeric& other) const {
  int ra = SpecialRank(kind_), rb = SpecialRank(other.kind_);
  if (ra != rb || kind_ != Kind::kFinite) return Sign(ra, rb);
  if (negative_ != other.negative_) return negative_ ? -1 : 1;
  int magnitude = CompareMagnitude(other);
  return negative_ ? -magnitude : magnitude;
}

void Numeric::Add(const Numeric& other) {
  if (kind_ == Kind::kNaN || other.kind_ == Kind::kNaN) {
    *this = Special(Kind::kNaN);
    return;
  }
  if (kind_ != Kind::kFinite || other.kind_ != Kind::kFinite) {
    if (kind_ != Kind::kFinite && other.kind_ != Kind::kFinite && kind_ != other.kind_) {
      *this = Special(Kind::kNaN);
    } else if (kind_ == Kind::kFinite) {
      *this = Special(other.kind_);
    }
    return;
  }
  int scale = std::max(scale_, other.scale_);
  std::string a = digits_, b = other.digits_;
  if (!a.empty()) a.append(static_cast<size_t>(scale - scale_), '0');
  if (!b.empty()) b.append(static_cast<size_t>(scale - other.scale_), '0');
  if (negative_ == other.negative_) {
    digits_ = AddDigits(a, b);
  } else {
    bool a_larger = a.size() != b.size() ? a.size() > b.size() : a >= b;
    digits_ = a_larger ? SubtractDigits(a, b) : SubtractDigits(b, a);
    if (!a_larger) negative_ = other.negative_;
  }
  scale_ = scale;
  Normalize();
}

void Numeric::WeightAndFirstDigit(int& weight, int& first_digit) const {
  weight = 0;
  first_digit = 0;
  if (digits_.empty()) return;
  // Decimal exponent of the leading digit, then the base-10000 group that holds it.
  int64_t exponent = static_cast<int64_t>(digits_.size()) - scale_ - 1;
  int64_t w = exponent >= 0 ? exponent / 4 : -((-exponent + 3) / 4);
  auto in_group = static_cast<size_t>(exponent - 4 * w + 1);  // 1..4 digits of the group
  int value = 0;
  for (size_t i = 0; i < in_group; ++i)
    value = value * 10 + (i < digits_.size() ? digits_[i] - '0' : 0);
  weight = static_cast<int>(w);
  first_digit = value;
}

Numeric Numeric::DivideBy(int64_t divisor) const {
  if (kind_ != Kind::kFinite) return *this;
  Numeric d = FromInt64(divisor);
  int w1, f1, w2, f2;
  WeightAndFirstDigit(w1, f1);
  d.WeightAndFirstDigit(w2, f2);
  // numeric_div's result scale: about 16 significant digits, at least the dividend's scale.
  int qweight = w1 - w2;
  if (f1 <= f2) --qweight;
  int rscale = kNumericMinSignificantDigits - qweight * 4;
  rscale = std::max(rscale, scale_);
  rscale = std::max(rscale, 0);
  rscale = std::min(rscale, kNumericMaxDisplayScale);

  // Truncated quotient with one digit beyond rscale, then rounded half away from zero.
  std::string numerator = digits_;
  int64_t extra = static_cast<int64_t>(rscale) + 1 - scale_;
  if (extra >= 0) {
    if (!numerator.empty()) numerator.append(static_cast<size_t>(extra), '0');
  } else {
    numerator.resize(numerator.size() > static_cast<size_t>(-extra)
                         ? numerator.size() - static_cast<size_t>(-extra)
                         : 0);
  }
  auto n = static_cast<Uint128>(static_cast<uint64_t>(divisor));
  Uint128 remainder = 0;
  std::string quotient;
  quotient.reserve(numerator.size());
  for (char c : numerator) {
    remainder = remainder * 10 + static_cast<Uint128>(c - '0');
    quotient.push_back(static_cast<char>('0' + static_cast<int>(remainder / n)));
    remainder %= n;
  }
  bool round_up = !quotient.empty() && quotient.back() >= '5';
  if (!quotient.empty()) quotient.pop_back();
  if (round_up) quotient = AddDigits(quotient, "1");
  Numeric result;
  result.negative_ = negative_;
  result.digits_ = std::move(quotient);
  result.scale_ = rscale;
  result.Normalize();
  return result;
}

// ---- ValueComparator ------------------------------------------------------------------------

absl::StatusOr<ValueComparator> ValueComparator::For(uint32_t type_oid, ValueFormat format) {
  Family family;
  switch (type_oid) {
    case pg_type::kInt2:
    case pg_type::kInt4:
    case pg_type::kInt8:
    case pg_type::kOid:
      family = Family::kInteger;
      break;
    case pg_type::kFloat4:
    case pg_type::kFloat8:
      family = Family::kFloat;
      break;
    case pg_type::kNumeric:
      family = Family::kNumeric;
      break;
    case pg_type::kText:
    case pg_type::kVarchar:
    case pg_type::kName:
      family = Family::kBytes;
      break;
    case pg_type::kBpchar:
      family = Family::kBpchar;
      break;
    case pg_type::kBool:
      family = Family::kBool;
      break;
    case pg_type::kDate:
      family = Family::kDate;
      break;
    case pg_type::kTime:
      family = Family::kTime;
      break;
    case pg_type::kTimestamp:
      family = Family::kTimestamp;
      break;
    case pg_type::kTimestampTz:
      family = Family::kTimestampTz;
      break;
    case pg_type::kUuid:
      family = Family::kUuid;
      break;
    case pg_type::kBytea:
      family = Family::kBytea;
      break;
    default:
      return protocol::SqlError(
          absl::StatusCode::kUnimplemented, "0A000",
          "pgring cannot compare values of " + TypeName(type_oid) +
              " across shards (ORDER BY, GROUP BY, min and max merge integer, float, "
              "numeric, text, boolean, date/time, uuid and bytea values)");
  }
  return ValueComparator(type_oid, format, family);
}

absl::Status ValueComparator::Malformed(Bytes value) const {
  return protocol::SqlError(absl::StatusCode::kInternal, "XX000",
                            "a shard returned a malformed " + TypeName(type_oid_) + " value (" +
                                (format_ == ValueFormat::kText ? "text" : "binary") +
                                " format): \"" + PrintableValue(value) + "\"" +
                                (family_ == Family::kDate || family_ == Family::kTimestamp ||
                                         family_ == Family::kTimestampTz
                                     ? "; pgring merges dates and times in DateStyle ISO only"
                                     : ""));
}

absl::StatusOr<int> ValueComparator::Compare(Bytes a, Bytes b) const {
  switch (family_) {
    case Family::kInteger: {
      auto x = ReadInteger(type_oid_, format_, a);
      if (!x) return Malformed(a);
      auto y = ReadInteger(type_oid_, format_, b);
      if (!y) return Malformed(b);
      return Sign(*x, *y);
    }
    case Family::kFloat: {
      auto x = ReadFloat(type_oid_, format_, a);
      if (!x) return Malformed(a);
      auto y = ReadFloat(type_oid_, format_, b);
      if (!y) return Malformed(b);
      return CompareDoubles(*x, *y);
    }
    case Family::kNumeric: {
      if (format_ == ValueFormat::kText) {
        auto x = ParseNumericText(AsText(a));
        if (!x) return Malformed(a);
        auto y = ParseNumericText(AsText(b));
        if (!y) return Malformed(b);
        return CompareParsedNumericText(*x, *y);
      }
      auto x = Numeric::FromBinary(a);
      if (!x) return Malformed(a);
      auto y = Numeric::FromBinary(b);
      if (!y) return Malformed(b);
      return x->Compare(*y);
    }
    case Family::kBytes:
      return CompareBytes(AsText(a), AsText(b));
    case Family::kBpchar:
      return CompareBytes(TrimBlanks(AsText(a)), TrimBlanks(AsText(b)));
    case Family::kBool: {
      auto x = ReadBool(format_, a);
      if (!x) return Malformed(a);
      auto y = ReadBool(format_, b);
      if (!y) return Malformed(b);
      return Sign(*x, *y);
    }
    case Family::kDate:
    case Family::kTime:
    case Family::kTimestamp:
    case Family::kTimestampTz: {
      auto x = ReadTemporal(type_oid_, format_, a);
      if (!x) return Malformed(a);
      auto y = ReadTemporal(type_oid_, format_, b);
      if (!y) return Malformed(b);
      return Sign(*x, *y);
    }
    case Family::kUuid: {
      auto x = ReadUuid(format_, a);
      if (!x) return Malformed(a);
      auto y = ReadUuid(format_, b);
      if (!y) return Malformed(b);
      return Sign(std::memcmp(x->data(), y->data(), 16), 0);
    }
    case Family::kBytea: {
      if (format_ == ValueFormat::kBinary) return CompareBytes(AsText(a), AsText(b));
      auto c = CompareByteaText(AsText(a), AsText(b));
      if (!c) {
        // Say which one is malformed.
        return CompareByteaText(AsText(a), AsText(a)) ? Malformed(b) : Malformed(a);
      }
      return *c;
    }
  }
  return Malformed(a);
}

absl::Status ValueComparator::AppendEqualityKey(Bytes value, std::string& key) const {
  switch (family_) {
    case Family::kInteger: {
      auto v = ReadInteger(type_oid_, format_, value);
      if (!v) return Malformed(value);
      AppendBigEndian(key, static_cast<uint64_t>(*v), 8);
      return absl::OkStatus();
    }
    case Family::kFloat: {
      auto v = ReadFloat(type_oid_, format_, value);
      if (!v) return Malformed(value);
      double d = *v;
      if (std::isnan(d)) d = std::numeric_limits<double>::quiet_NaN();
      if (d == 0) d = 0;  // -0 groups with 0
      AppendBigEndian(key, std::bit_cast<uint64_t>(d), 8);
      return absl::OkStatus();
    }
    case Family::kNumeric: {
      auto v = ReadNumeric(format_, value);
      if (!v) return Malformed(value);
      // Kind, sign, decimal exponent and significant digits: equal exactly for equal values.
      key.push_back(static_cast<char>(v->kind()));
      if (v->kind() == Numeric::Kind::kFinite) {
        std::string text = v->ToText();
        std::string_view s = text;
        bool negative = !s.empty() && s[0] == '-';
        if (negative) s.remove_prefix(1);
        size_t dot = s.find('.');
        std::string_view int_digits = StripLeadingZeros(s.substr(0, dot));
        std::string_view frac_digits =
            dot == std::string_view::npos ? std::string_view() : s.substr(dot + 1);
        key.push_back(negative ? '-' : '+');
        AppendLengthPrefixed(key, int_digits);
        AppendLengthPrefixed(key, StripTrailingZeros(frac_digits));
      }
      return absl::OkStatus();
    }
    case Family::kBytes:
      AppendLengthPrefixed(key, AsText(value));
      return absl::OkStatus();
    case Family::kBpchar:
      AppendLengthPrefixed(key, TrimBlanks(AsText(value)));
      return absl::OkStatus();
    case Family::kBool: {
      auto v = ReadBool(format_, value);
      if (!v) return Malformed(value);
      key.push_back(*v ? 't' : 'f');
      return absl::OkStatus();
    }
    case Family::kDate:
    case Family::kTime:
    case Family::kTimestamp:
    case Family::kTimestampTz: {
      auto v = ReadTemporal(type_oid_, format_, value);
      if (!v) return Malformed(value);
      AppendBigEndian(key, static_cast<uint64_t>(*v), 8);
      return absl::OkStatus();
    }
    case Family::kUuid: {
      auto v = ReadUuid(format_, value);
      if (!v) return Malformed(value);
      key.append(reinterpret_cast<const char*>(v->data()), 16);
      return absl::OkStatus();
    }
    case Family::kBytea: {
      if (format_ == ValueFormat::kBinary) {
        AppendLengthPrefixed(key, AsText(value));
        return absl::OkStatus();
      }
      std::string decoded;
      ByteaTextReader reader(AsText(value));
      for (int b = reader.Next(); b != -1; b = reader.Next()) {
        if (b == -2) return Malformed(value);
        decoded.push_back(static_cast<char>(b));
      }
      AppendLengthPrefixed(key, decoded);
      return absl::OkStatus();
    }
  }
  return Malformed(value);
}

absl::StatusOr<int> CompareValues(uint32_t type_oid, ValueFormat format, Bytes a, Bytes b) {
  auto comparator = ValueComparator::For(type_oid, format);
  if (!comparator.ok()) return comparator.status();
  return comparator->Compare(a, b);
}

}  // namespace pgring::sharding
