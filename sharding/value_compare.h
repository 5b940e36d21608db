// Compares, reads and prints column values of scatter-gather results as PostgreSQL's default
// btree operator classes order them, in the text or binary wire format of each column.
//
//   auto cmp = ValueComparator::For(pg_type::kNumeric, ValueFormat::kText);  // StatusOr
//   absl::StatusOr<int> c = cmp->Compare(a, b);  // < 0, 0, > 0
//
// Supported types: int2, int4, int8, oid, float4, float8 (NaN above every other value, -0
// equal to 0), numeric (arbitrary precision, NaN above Infinity), text, varchar, bpchar
// (trailing blanks ignored), name, bool, date, time, timestamp, timestamptz, uuid, bytea.
// Text-like values are compared byte-wise, which is PostgreSQL's order under the "C"
// collation only (see docs/merge.md). Text-format dates and timestamps must be in
// DateStyle ISO (PostgreSQL's default); timestamptz values are compared as instants, so
// shards may print different UTC offsets. Any other type gives Unimplemented with SQLSTATE
// 0A000, and a value that is malformed for its type gives Internal (XX000): values come
// from the shards, so a bad one is a server or proxy bug, never a reason to crash.
//
// Also here: Numeric (exact decimal arithmetic with numeric's display-scale rules, used to
// merge sum() and avg()), and readers/writers for integer and float values in both formats,
// printing floats exactly as PostgreSQL 15 does with extra_float_digits >= 1 (the default).
//
// Everything here is pure and thread-safe; values are borrowed spans, never kept.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pgring::sharding {

// Type OIDs from PostgreSQL's pg_type catalog (fixed across versions).
namespace pg_type {
inline constexpr uint32_t kBool = 16;
inline constexpr uint32_t kBytea = 17;
inline constexpr uint32_t kName = 19;
inline constexpr uint32_t kInt8 = 20;
inline constexpr uint32_t kInt2 = 21;
inline constexpr uint32_t kInt4 = 23;
inline constexpr uint32_t kText = 25;
inline constexpr uint32_t kOid = 26;
inline constexpr uint32_t kFloat4 = 700;
inline constexpr uint32_t kFloat8 = 701;
inline constexpr uint32_t kBpchar = 1042;
inline constexpr uint32_t kVarchar = 1043;
inline constexpr uint32_t kDate = 1082;
inline constexpr uint32_t kTime = 1083;
inline constexpr uint32_t kTimestamp = 1114;
inline constexpr uint32_t kTimestampTz = 1184;
inline constexpr uint32_t kNumeric = 1700;
inline constexpr uint32_t kUuid = 2950;
}  // namespace pg_type

// The wire format of a column value: the format code of RowDescription and Bind.
enum class ValueFormat : int16_t { kText = 0, kBinary = 1 };

// Returns the format for a protocol format code (0 text, 1 binary), nullopt for others.
std::optional<ValueFormat> ValueFormatFromCode(int16_t code);

// Returns true if ValueComparator::For accepts `type_oid`.
bool IsComparableType(uint32_t type_oid);

// Returns the SQL name of a type OID ("bigint", "numeric", ...) or "type OID n" for others.
std::string TypeName(uint32_t type_oid);

// Orders the non-NULL values of one column type in one wire format. Cheap to copy.
class ValueComparator {
 public:
  // Returns the comparator for `type_oid` in `format`; Unimplemented (SQLSTATE 0A000) if
  // pgring cannot order values of that type.
  static absl::StatusOr<ValueComparator> For(uint32_t type_oid, ValueFormat format);

  // Returns < 0, 0 or > 0 as `a` sorts before, equal to or after `b` in ascending order;
  // Internal (XX000) if either value is malformed for the type.
  absl::StatusOr<int> Compare(std::span<const std::byte> a, std::span<const std::byte> b) const;

  // Appends to `key` a byte string that is equal for two values exactly when Compare says
  // they are equal (1.0 and 1.00 give the same bytes, as do -0 and 0): GROUP BY keys.
  // The bytes are self-delimiting, so keys of several columns may be concatenated.
  absl::Status AppendEqualityKey(std::span<const std::byte> value, std::string& key) const;

  uint32_t type_oid() const { return type_oid_; }
  ValueFormat format() const { return format_; }

 private:
  enum class Family : uint8_t {
    kInteger,
    kFloat,
    kNumeric,
    kBytes,
    kBpchar,
    kBool,
    kDate,
    kTime,
    kTimestamp,
    kTimestampTz,
    kUuid,
    kBytea,
  };
  ValueComparator(uint32_t type_oid, ValueFormat format, Family family)
      : type_oid_(type_oid), format_(format), family_(family) {}

  absl::Status Malformed(std::span<const std::byte> value) const;

  uint32_t type_oid_;
  ValueFormat format_;
  Family family_;
};

// Returns CompareValues(a, b) of ValueComparator::For(type_oid, format).
absl::StatusOr<int> CompareValues(uint32_t type_oid, ValueFormat format,
                                  std::span<const std::byte> a, std::span<const std::byte> b);

// Compares two numeric values in PostgreSQL's text output form ([-]digits[.digits], NaN,
// Infinity, -Infinity; leading '+' and leading or trailing zeros accepted) without
// allocating. nullopt if either is malformed.
std::optional<int> CompareNumericText(std::string_view a, std::string_view b);

// An exact decimal number with the semantics of PostgreSQL's numeric: finite values keep
// their display scale (the number of digits after the point, as printed), and the special
// values NaN, Infinity and -Infinity exist. A default-constructed Numeric is 0.
class Numeric {
 public:
  enum class Kind : uint8_t { kFinite, kNaN, kInfinity, kNegativeInfinity };

  Numeric() = default;
  static Numeric FromInt64(int64_t value);
  static Numeric Special(Kind kind);
  // Parses numeric's text output form (see CompareNumericText; no exponent).
  static std::optional<Numeric> FromText(std::string_view text);
  // Parses numeric's binary form (numeric_send: ndigits, weight, sign, dscale, digits).
  static std::optional<Numeric> FromBinary(std::span<const std::byte> bytes);

  // Prints as numeric_out does: exactly scale() digits after the point.
  std::string ToText() const;
  // Appends the binary form exactly as numeric_send writes it.
  void AppendBinary(std::string& out) const;

  // Orders as numeric's btree class does: -Infinity < finite values < Infinity < NaN.
  int Compare(const Numeric& other) const;
  // Adds `other` exactly (numeric_add): the scale becomes the larger of both scales;
  // NaN absorbs everything and Infinity + -Infinity is NaN.
  void Add(const Numeric& other);
  // Returns this / divisor (divisor > 0) as numeric_div computes it: the result scale is
  // chosen to give at least 16 significant digits and no fewer digits than this value's
  // scale, and the quotient is rounded half away from zero at that scale.
  Numeric DivideBy(int64_t divisor) const;

  Kind kind() const { return kind_; }
  bool negative() const { return negative_; }
  int scale() const { return scale_; }

 private:
  // Base-10000 weight and leading digit of the value, as numeric's division scale rule
  // needs them (0 and 0 for zero).
  void WeightAndFirstDigit(int& weight, int& first_digit) const;
  int CompareMagnitude(const Numeric& other) const;
  void Normalize();

  Kind kind_ = Kind::kFinite;
  bool negative_ = false;
  std::string digits_;  // decimal digits of |value| * 10^scale_, no leading zeros; "" is 0
  int scale_ = 0;
};

// Reads an int2, int4, int8 or oid value. nullopt if malformed or of another type.
std::optional<int64_t> ReadInteger(uint32_t type_oid, ValueFormat format,
                                   std::span<const std::byte> value);
// Appends `v` as a value of the integer type `type_oid`; false if it is out of its range.
bool AppendInteger(uint32_t type_oid, ValueFormat format, int64_t v, std::string& out);
// Reads a float4 or float8 value (float4 widened). nullopt if malformed.
std::optional<double> ReadFloat(uint32_t type_oid, ValueFormat format,
                                std::span<const std::byte> value);
// Appends `v` as a float4 (rounded to float) or float8 value.
void AppendFloat(uint32_t type_oid, ValueFormat format, double v, std::string& out);
// Reads a numeric value. nullopt if malformed.
std::optional<Numeric> ReadNumeric(ValueFormat format, std::span<const std::byte> value);

// Prints a float8 / float4 as PostgreSQL 15's float8out / float4out with the default
// extra_float_digits (shortest exact form; exponent form below 1e-4 and from 1e15 for float8,
// 1e6 for float4; NaN, Infinity, -Infinity, -0).
std::string FormatFloat8(double v);
std::string FormatFloat4(float v);

}  // namespace pgring::sharding
