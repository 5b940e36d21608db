#include "sharding/router.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <limits>
#include <numeric>
#include <span>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "protocol/sql_error.h"
#include "sharding/hash.h"

namespace pgring::sharding {
namespace {

using conf::KeyType;
using protocol::SqlError;

// ---------------------------------------------------------------------------------------
// Errors

absl::Status Unsupported(const std::string& message, const std::string& hint) {
  return SqlError(absl::StatusCode::kUnimplemented, "0A000", message, hint);
}

absl::Status InvalidValue(std::string_view sqlstate, const std::string& message) {
  return SqlError(absl::StatusCode::kInvalidArgument, sqlstate, message);
}

constexpr std::string_view kSessionHint = "SET pgring.shard_key";
constexpr const char* kHintAdvice =
    "/* pgring: shard_key=... */ before the statement, or SET pgring.shard_key";

// ---------------------------------------------------------------------------------------
// Value types

// The type a value is given in the statement or by Parse, as far as routing cares.
enum class ValType { kUnspecified, kInt2, kInt4, kInt8, kText, kUuid, kOther };

struct TypeOf {
  ValType type = ValType::kUnspecified;
  bool is_array = false;
};

TypeOf FromOid(uint32_t oid) {
  switch (oid) {
    case 0:
    case 705:  // unknown
      return {ValType::kUnspecified, false};
    case 21:
      return {ValType::kInt2, false};
    case 23:
      return {ValType::kInt4, false};
    case 20:
      return {ValType::kInt8, false};
    case 25:
    case 1043:
      return {ValType::kText, false};
    case 2950:
      return {ValType::kUuid, false};
    case 1005:
      return {ValType::kInt2, true};
    case 1007:
      return {ValType::kInt4, true};
    case 1016:
      return {ValType::kInt8, true};
    case 1009:
    case 1015:
      return {ValType::kText, true};
    case 2951:
      return {ValType::kUuid, true};
    default:
      return {ValType::kOther, false};
  }
}

// `cast` is the analyzer's spelling: "int8", "text", "uuid[]"...
TypeOf FromCast(std::string_view cast) {
  TypeOf t;
  if (cast.ends_with("[]")) {
    t.is_array = true;
    cast.remove_suffix(2);
  }
  if (cast.empty()) {
    t.type = ValType::kUnspecified;
  } else if (cast == "int2") {
    t.type = ValType::kInt2;
  } else if (cast == "int4") {
    t.type = ValType::kInt4;
  } else if (cast == "int8") {
    t.type = ValType::kInt8;
  } else if (cast == "text" || cast == "varchar") {
    t.type = ValType::kText;
  } else if (cast == "uuid") {
    t.type = ValType::kUuid;
  } else {
    t.type = ValType::kOther;
  }
  return t;
}

ValType NaturalType(KeyType key) {
  switch (key) {
    case KeyType::kInt:
      return ValType::kInt8;
    case KeyType::kText:
      return ValType::kText;
    case KeyType::kUuid:
      return ValType::kUuid;
  }
  return ValType::kInt8;
}

bool Compatible(ValType v, KeyType key) {
  switch (v) {
    case ValType::kUnspecified:
      return true;
    case ValType::kInt2:
    case ValType::kInt4:
    case ValType::kInt8:
      return key == KeyType::kInt;
    case ValType::kText:
      return key == KeyType::kText;
    case ValType::kUuid:
      return key == KeyType::kUuid;
    case ValType::kOther:
      return false;
  }
  return false;
}

std::string_view SqlTypeName(ValType v) {
  switch (v) {
    case ValType::kInt2:
      return "smallint";
    case ValType::kInt4:
      return "integer";
    case ValType::kInt8:
      return "bigint";
    case ValType::kText:
      return "text";
    case ValType::kUuid:
      return "uuid";
    case ValType::kUnspecified:
    case ValType::kOther:
      break;
  }
  return "another type";
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// Reads an integer as PostgreSQL 15's int2in/int4in/int8in do: optional white space, an
// optional sign, decimal digits, optional white space.
absl::StatusOr<int64_t> ParsePgInt(std::string_view text, ValType type) {
  // The usual value: up to 9 digits and nothing else, which fits every integer type but
  // int2.
  if (!text.empty() && text.size() <= 9 && type != ValType::kInt2) {
    int64_t value = 0;
    size_t i = 0;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      value = value * 10 + (text[i] - '0');
    }
    if (i == text.size()) return value;
  }
  const std::string_view name = SqlTypeName(type);
  size_t i = 0;
  while (i < text.size() && IsSpace(text[i])) ++i;
  bool negative = false;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) negative = text[i++] == '-';
  const size_t digits_start = i;
  // Accumulate as a negative number: its range includes INT64_MIN.
  int64_t value = 0;
  bool overflow = false;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    const int digit = text[i] - '0';
    if (value < (std::numeric_limits<int64_t>::min() + digit) / 10) overflow = true;
    if (!overflow) value = value * 10 - digit;
  }
  const bool has_digits = i > digits_start;
  while (i < text.size() && IsSpace(text[i])) ++i;
  if (!has_digits || i != text.size()) {
    return InvalidValue("22P02",
                        fmt::format("invalid input syntax for type {}: \"{}\"", name, text));
  }
  if (!negative) {
    if (value == std::numeric_limits<int64_t>::min()) {
      overflow = true;
    } else {
      value = -value;
    }
  }
  int64_t lo = std::numeric_limits<int64_t>::min();
  int64_t hi = std::numeric_limits<int64_t>::max();
  if (type == ValType::kInt2) {
    lo = std::numeric_limits<int16_t>::min();
    hi = std::numeric_limits<int16_t>::max();
  } else if (type == ValType::kInt4) {
    lo = std::numeric_limits<int32_t>::min();
    hi = std::numeric_limits<int32_t>::max();
  }
  if (overflow || value < lo || value > hi) {
    return InvalidValue("22003",
                        fmt::format("value \"{}\" is out of range for type {}", text, name));
  }
  return value;
}

std::string QuoteText(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  out += '\'';
  return out;
}

// ---------------------------------------------------------------------------------------
// Array values

using ArrayElements = std::vector<std::optional<std::string>>;  // nullopt: NULL element

// Parses PostgreSQL's text form of an array ("{1,2,3}", "{{1,2},{3,4}}",
// "[0:1]={a,\"b c\"}", "{}") into its elements, flattened. Unquoted elements lose
// surrounding white space; an unquoted NULL (any case) is a NULL element; a backslash
// escapes the next character. Returns nullopt when the text is malformed.
class ArrayTextParser {
 public:
  explicit ArrayTextParser(std::string_view text) : s_(text) {}

  std::optional<ArrayElements> Parse() {
    SkipSpace();
    if (Peek() == '[') {  // dimension decoration: [lo:hi][lo:hi]=
      const size_t eq = s_.find('=', i_);
      if (eq == std::string_view::npos) return std::nullopt;
      i_ = eq + 1;
      SkipSpace();
    }
    if (!Level(1)) return std::nullopt;
    SkipSpace();
    if (i_ != s_.size()) return std::nullopt;
    return std::move(out_);
  }

 private:
  static constexpr int kMaxDepth = 6;  // PostgreSQL's MAXDIM

  char Peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  bool AtEnd() const { return i_ >= s_.size(); }
  void SkipSpace() {
    while (!AtEnd() && IsSpace(s_[i_])) ++i_;
  }

  bool Level(int depth) {
    if (depth > kMaxDepth || Peek() != '{') return false;
    ++i_;
    SkipSpace();
    if (Peek() == '}') {
      ++i_;
      return true;
    }
    while (true) {
      SkipSpace();
      if (Peek() == '{') {
        if (!Level(depth + 1)) return false;
      } else if (!Element()) {
        return false;
      }
      SkipSpace();
      if (Peek() == ',') {
        ++i_;
        continue;
      }
      if (Peek() == '}') {
        ++i_;
        return true;
      }
      return false;
    }
  }

  bool Element() {
    std::string value;
    if (Peek() == '"') {
      ++i_;
      while (true) {
        if (AtEnd()) return false;
        char c = s_[i_++];
        if (c == '"') break;
        if (c == '\\') {
          if (AtEnd()) return false;
          c = s_[i_++];
        }
        value += c;
      }
      out_.emplace_back(std::move(value));
      return true;
    }
    size_t kept = 0;  // length of `value` up to its last character that is not trailing space
    bool escaped_any = false;
    while (!AtEnd()) {
      char c = s_[i_];
      if (c == ',' || c == '}') break;
      if (c == '{' || c == '"') return false;
      ++i_;
      if (c == '\\') {
        if (AtEnd()) return false;
        value += s_[i_++];
        kept = value.size();
        escaped_any = true;
        continue;
      }
      value += c;
      if (!IsSpace(c)) kept = value.size();
    }
    value.resize(kept);
    if (value.empty()) return false;
    const bool is_null = !escaped_any && value.size() == 4 && (value[0] | 0x20) == 'n' &&
                         (value[1] | 0x20) == 'u' && (value[2] | 0x20) == 'l' &&
                         (value[3] | 0x20) == 'l';
    if (is_null) {
      out_.emplace_back(std::nullopt);
    } else {
      out_.emplace_back(std::move(value));
    }
    return true;
  }

  std::string_view s_;
  size_t i_ = 0;
  ArrayElements out_;
};

// A big-endian reader over a Bind value.
class BinaryReader {
 public:
  explicit BinaryReader(std::span<const std::byte> data) : data_(data) {}
  std::optional<int32_t> Int32() {
    if (data_.size() - pos_ < 4) return std::nullopt;
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) v = (v << 8) | static_cast<uint8_t>(data_[pos_ + k]);
    pos_ += 4;
    return static_cast<int32_t>(v);
  }
  std::optional<std::span<const std::byte>> Bytes(size_t n) {
    if (data_.size() - pos_ < n) return std::nullopt;
    auto out = data_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  size_t remaining() const { return data_.size() - pos_; }

 private:
  std::span<const std::byte> data_;
  size_t pos_ = 0;
};

int64_t ReadBigEndian(std::span<const std::byte> bytes) {
  uint64_t v = 0;
  for (std::byte b : bytes) v = (v << 8) | static_cast<uint8_t>(b);
  // Sign-extend from the value's width.
  const int shift = 64 - static_cast<int>(bytes.size()) * 8;
  return static_cast<int64_t>(v << shift) >> shift;
}

std::string_view AsText(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::string UuidText(const std::array<uint8_t, 16>& u) {
  std::string out;
  for (size_t k = 0; k < u.size(); ++k) {
    if (k == 4 || k == 6 || k == 8 || k == 10) out += '-';
    out += fmt::format("{:02x}", u[k]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Key values of one column

// The keys one constraint or INSERT cell allows.
struct KeyList {
  bool resolved = true;                    // false: a value pgring cannot turn into a key
  std::string why;                         // when !resolved
  absl::InlinedVector<int64_t, 1> hashes;  // one per non-NULL value
  std::vector<std::string> shown;          // with RouteInputs::explain: the values, as text
  int nulls = 0;                           // NULL values (they match no row)

  void Unresolved(std::string reason) {
    if (resolved) why = std::move(reason);
    resolved = false;
  }
};

// Turns KeyValues into key hashes, reading Bind parameters where needed. Borrows the
// RouteInputs (and EXECUTE arguments) for one Route() call.
class ValueReader {
 public:
  ValueReader(const RouteInputs& in, const std::vector<KeyValue>* execute_args)
      : in_(in), execute_args_(execute_args) {}

  absl::Status Add(const KeyValue& v, KeyType key, KeyList& out) const {
    switch (v.kind) {
      case KeyValue::Kind::kNull:
        ++out.nulls;
        return absl::OkStatus();
      case KeyValue::Kind::kDefault:
        out.Unresolved("DEFAULT");
        return absl::OkStatus();
      case KeyValue::Kind::kExpression:
        out.Unresolved("an expression");
        return absl::OkStatus();
      case KeyValue::Kind::kLiteral:
        return AddLiteral(v, key, out);
      case KeyValue::Kind::kParam:
        return AddParam(v, key, out);
    }
    return absl::OkStatus();
  }

 private:
  // Decodes one value written as text, typed `type` (kUnspecified: the key's own type).
  absl::Status AddText(std::string_view text, ValType type, KeyType key, KeyList& out,
                       std::string_view label) const {
    if (!Compatible(type, key)) {
      out.Unresolved(fmt::format("{} is {}, the shard key is {}", label, SqlTypeName(type),
                                 conf::ToString(key)));
      return absl::OkStatus();
    }
    if (type == ValType::kUnspecified) type = NaturalType(key);
    switch (type) {
      case ValType::kInt2:
      case ValType::kInt4:
      case ValType::kInt8: {
        absl::StatusOr<int64_t> n = ParsePgInt(text, type);
        if (!n.ok()) return n.status();
        out.hashes.push_back(HashInt8(*n));
        if (in_.explain) out.shown.push_back(fmt::format("{}", *n));
        return absl::OkStatus();
      }
      case ValType::kText:
        out.hashes.push_back(HashText(text));
        if (in_.explain) out.shown.push_back(QuoteText(text));
        return absl::OkStatus();
      case ValType::kUuid: {
        std::optional<std::array<uint8_t, 16>> u = ParseUuid(text);
        if (!u) {
          return InvalidValue("22P02",
                              fmt::format("invalid input syntax for type uuid: \"{}\"", text));
        }
        out.hashes.push_back(HashUuid(*u));
        if (in_.explain) out.shown.push_back(QuoteText(UuidText(*u)));
        return absl::OkStatus();
      }
      case ValType::kUnspecified:
      case ValType::kOther:
        break;
    }
    out.Unresolved(fmt::format("{} has an unsupported type", label));
    return absl::OkStatus();
  }

  // Decodes one value in binary format (PostgreSQL's typsend layout).
  absl::Status AddBinary(std::span<const std::byte> bytes, ValType type, KeyType key, KeyList& out,
                         int param) const {
    if (!Compatible(type, key)) {
      out.Unresolved(fmt::format("${} is {}, the shard key is {}", param, SqlTypeName(type),
                                 conf::ToString(key)));
      return absl::OkStatus();
    }
    if (type == ValType::kUnspecified) {
      // No declared type: the key type says which, the length says how wide an integer.
      switch (key) {
        case KeyType::kInt:
          type = bytes.size() == 2   ? ValType::kInt2
                 : bytes.size() == 4 ? ValType::kInt4
                                     : ValType::kInt8;
          break;
        case KeyType::kText:
          type = ValType::kText;
          break;
        case KeyType::kUuid:
          type = ValType::kUuid;
          break;
      }
    }
    const auto bad_format = [&] {
      return InvalidValue("22P03",
                          fmt::format("incorrect binary data format in bind parameter {}", param));
    };
    switch (type) {
      case ValType::kInt2:
      case ValType::kInt4:
      case ValType::kInt8: {
        const size_t want = type == ValType::kInt2 ? 2 : type == ValType::kInt4 ? 4 : 8;
        if (bytes.size() != want) return bad_format();
        const int64_t n = ReadBigEndian(bytes);
        out.hashes.push_back(HashInt8(n));
        if (in_.explain) out.shown.push_back(fmt::format("{}", n));
        return absl::OkStatus();
      }
      case ValType::kText:
        out.hashes.push_back(HashText(AsText(bytes)));
        if (in_.explain) out.shown.push_back(QuoteText(AsText(bytes)));
        return absl::OkStatus();
      case ValType::kUuid: {
        if (bytes.size() != 16) return bad_format();
        std::array<uint8_t, 16> u{};
        for (size_t k = 0; k < 16; ++k) u[k] = static_cast<uint8_t>(bytes[k]);
        out.hashes.push_back(HashUuid(u));
        if (in_.explain) out.shown.push_back(QuoteText(UuidText(u)));
        return absl::OkStatus();
      }
      case ValType::kUnspecified:
      case ValType::kOther:
        break;
    }
    out.Unresolved(fmt::format("${} has an unsupported type", param));
    return absl::OkStatus();
  }

  absl::Status AddTextArray(std::string_view text, ValType elem, KeyType key, KeyList& out,
                            std::string_view label) const {
    std::optional<ArrayElements> elems = ArrayTextParser(text).Parse();
    if (!elems) {
      return InvalidValue("22P02", fmt::format("malformed array literal: \"{}\"", text));
    }
    for (const std::optional<std::string>& e : *elems) {
      if (!e) {
        ++out.nulls;
        continue;
      }
      absl::Status st = AddText(*e, elem, key, out, label);
      if (!st.ok()) return st;
    }
    return absl::OkStatus();
  }

  // PostgreSQL's array_send layout: int32 ndim, int32 flags (has NULLs), uint32 element
  // type OID, ndim x (int32 length, int32 lower bound), then per element an int32 length
  // (-1: NULL) and that many bytes.
  absl::Status AddBinaryArray(std::span<const std::byte> bytes, ValType elem, KeyType key,
                              KeyList& out, int param) const {
    const auto bad = [&](std::string_view what) {
      return InvalidValue("22P03", fmt::format("incorrect binary data format in bind parameter "
                                               "{}: {}",
                                               param, what));
    };
    BinaryReader r(bytes);
    std::optional<int32_t> ndim = r.Int32();
    std::optional<int32_t> flags = r.Int32();
    std::optional<int32_t> elem_oid = r.Int32();
    if (!ndim || !flags || !elem_oid) return bad("array header is truncated");
    if (*ndim < 0 || *ndim > 6) return bad("invalid number of array dimensions");
    if (*flags != 0 && *flags != 1) return bad("invalid array flags");
    const TypeOf sent = FromOid(static_cast<uint32_t>(*elem_oid));
    if (sent.is_array) return bad("array element type is an array type");
    if (elem == ValType::kUnspecified) {
      elem = sent.type;
    } else if (sent.type != ValType::kUnspecified && sent.type != elem) {
      return bad("wrong array element type");
    }
    uint64_t count = *ndim == 0 ? 0 : 1;
    for (int32_t d = 0; d < *ndim; ++d) {
      std::optional<int32_t> len = r.Int32();
      std::optional<int32_t> lbound = r.Int32();
      if (!len || !lbound) return bad("array dimensions are truncated");
      if (*len < 0) return bad("negative array dimension");
      count *= static_cast<uint64_t>(*len);
      // Every element takes at least its 4-byte length word.
      if (count > r.remaining() / 4 + 1) return bad("array is larger than the value");
    }
    for (uint64_t k = 0; k < count; ++k) {
      std::optional<int32_t> len = r.Int32();
      if (!len) return bad("array element is truncated");
      if (*len == -1) {
        ++out.nulls;
        continue;
      }
      if (*len < 0) return bad("negative array element length");
      std::optional<std::span<const std::byte>> item = r.Bytes(static_cast<size_t>(*len));
      if (!item) return bad("array element is truncated");
      absl::Status st = AddBinary(*item, elem, key, out, param);
      if (!st.ok()) return st;
    }
    if (r.remaining() != 0) return bad("bytes after the last array element");
    return absl::OkStatus();
  }

  absl::Status AddLiteral(const KeyValue& v, KeyType key, KeyList& out) const {
    TypeOf t = FromCast(v.cast);
    const bool array = v.is_array || t.is_array;
    if (t.type == ValType::kOther) {
      out.Unresolved(fmt::format("a value cast to {}", v.cast));
      return absl::OkStatus();
    }
    if (array) {
      if (!v.is_string()) {
        out.Unresolved("an array that is not a string literal");
        return absl::OkStatus();
      }
      return AddTextArray(v.literal, t.type, key, out, "an array element");
    }
    switch (v.literal_kind) {
      case LiteralKind::kString:
        return AddText(v.literal, t.type, key, out, "the value");
      case LiteralKind::kInteger:
        if (t.type == ValType::kUnspecified && key == KeyType::kInt) {
          // A constant beyond bigint is a numeric to PostgreSQL: it equals no bigint.
          absl::StatusOr<int64_t> n = ParsePgInt(v.literal, ValType::kInt8);
          if (!n.ok()) {
            out.Unresolved(fmt::format("{} (out of range for bigint)", v.literal));
            return absl::OkStatus();
          }
          out.hashes.push_back(HashInt8(*n));
          if (in_.explain) out.shown.push_back(v.literal);
          return absl::OkStatus();
        }
        if (t.type == ValType::kUnspecified && key == KeyType::kUuid) {
          out.Unresolved(fmt::format("the integer {} (the shard key is uuid)", v.literal));
          return absl::OkStatus();
        }
        // An integer for a text key is stored as its decimal text (assignment cast).
        return AddText(v.literal, t.type, key, out, "the value");
      case LiteralKind::kFloat:
      case LiteralKind::kBoolean:
      case LiteralKind::kBitString:
      case LiteralKind::kNone:
        break;
    }
    out.Unresolved(fmt::format("{} (not a {} value)", v.literal, conf::ToString(key)));
    return absl::OkStatus();
  }

  absl::Status AddParam(const KeyValue& v, KeyType key, KeyList& out) const {
    const size_t index = static_cast<size_t>(v.param) - 1;
    if (execute_args_ != nullptr) {
      // EXECUTE name(args): $n of the prepared statement is the n-th argument.
      if (v.param < 1 || index >= execute_args_->size()) {
        return SqlError(absl::StatusCode::kInvalidArgument, "42601",
                        fmt::format("wrong number of parameters for prepared statement: "
                                    "EXECUTE gives {}, the statement uses ${}",
                                    execute_args_->size(), v.param));
      }
      KeyValue arg = (*execute_args_)[index];
      if (arg.cast.empty()) arg.cast = v.cast;
      arg.is_array = arg.is_array || v.is_array;
      ValueReader outer(in_, nullptr);
      return outer.Add(arg, key, out);
    }
    if (in_.params == nullptr) {
      out.Unresolved(fmt::format("${} (no parameter values)", v.param));
      return absl::OkStatus();
    }
    if (v.param < 1 || index >= in_.params->values.size()) {
      return SqlError(absl::StatusCode::kInvalidArgument, "08P01",
                      fmt::format("bind message supplies {} parameters, but the statement uses "
                                  "${}",
                                  in_.params->values.size(), v.param));
    }
    const std::optional<std::span<const std::byte>>& value = in_.params->values[index];
    if (!value) {
      ++out.nulls;
      return absl::OkStatus();
    }
    TypeOf t;
    if (index < in_.param_types.size()) t = FromOid(in_.param_types[index]);
    if (t.type == ValType::kUnspecified) t = FromCast(v.cast);
    if (t.type == ValType::kOther) {
      out.Unresolved(
          fmt::format("${} (its type cannot hold a {} key)", v.param, conf::ToString(key)));
      return absl::OkStatus();
    }
    if (t.is_array != v.is_array && t.type != ValType::kUnspecified) {
      out.Unresolved(fmt::format("${} (array and element types do not match)", v.param));
      return absl::OkStatus();
    }
    char label_buf[16] = {'$'};  // "$n", for messages
    const std::string_view label(
        label_buf, static_cast<size_t>(
                       std::to_chars(label_buf + 1, label_buf + sizeof(label_buf), v.param).ptr -
                       label_buf));
    const int16_t format = in_.params->FormatOf(index);
    const size_t shown_before = out.shown.size();
    absl::Status st;
    if (format == 0) {
      st = v.is_array ? AddTextArray(AsText(*value), t.type, key, out, label)
                      : AddText(AsText(*value), t.type, key, out, label);
    } else if (format == 1) {
      st = v.is_array ? AddBinaryArray(*value, t.type, key, out, v.param)
                      : AddBinary(*value, t.type, key, out, v.param);
    } else {
      return SqlError(absl::StatusCode::kInvalidArgument, "22023",
                      fmt::format("unsupported format code: {}", format));
    }
    if (in_.explain && out.shown.size() > shown_before && !v.is_array) {
      out.shown.back() = fmt::format("${}={}", v.param, out.shown.back());
    }
    return st;
  }

  const RouteInputs& in_;
  const std::vector<KeyValue>* execute_args_;
};

// ---------------------------------------------------------------------------------------
// Planning one statement

std::string TableName(std::string_view schema, std::string_view name) {
  if (schema.empty() || schema == "public") return std::string(name);
  return fmt::format("{}.{}", schema, name);
}

bool SameTable(std::string_view schema_a, std::string_view name_a, std::string_view schema_b,
               std::string_view name_b) {
  const auto norm = [](std::string_view s) { return s.empty() ? std::string_view("public") : s; };
  return TruncateIdentifier(name_a) == TruncateIdentifier(name_b) &&
         TruncateIdentifier(norm(schema_a)) == TruncateIdentifier(norm(schema_b));
}

bool SameColumn(std::string_view a, std::string_view b) {
  return TruncateIdentifier(a) == TruncateIdentifier(b);
}

// A plain lower-case column name as the analyzer prints it (no qualifier, quotes or
// expression).
bool IsBareIdentifier(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

void SortUnique(ShardList& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

// One table of the statement as the router sees it.
struct TableUse {
  const TableRef* ref = nullptr;
  TableClass cls = TableClass::kUnknown;
  const TableInfo* info = nullptr;  // kSharded / kReference
  // kSharded: the key constraint could be read; `shards` then owns every allowed key
  // (empty when only NULL is allowed: no row matches).
  bool constrained = false;
  ShardList shards;
  std::string note;  // explain: how the shards were found

  std::string Name() const { return TableName(ref->schema, ref->name); }
  bool RefLike() const { return cls == TableClass::kReference || cls == TableClass::kCatalog; }
};

// Where the hint comes from, for messages.
struct Hint {
  std::string_view value;
  std::string_view source;  // "statement comment" or "SET pgring.shard_key"
};

// Plans one statement. Lives for one Route() call and borrows its arguments; nested
// statements (EXECUTE, EXPLAIN, COPY (query)) get a Planner of their own.
class Planner {
 public:
  Planner(const TableMap& map, const Ring& ring, const RouteInputs& in)
      : map_(map), ring_(ring), in_(in) {}

  absl::StatusOr<RoutePlan> Route(const Statement& s, std::optional<Hint> hint,
                                  const std::vector<KeyValue>* execute_args) {
    hint_ = hint;
    reader_.emplace(in_, execute_args);
    switch (s.kind) {
      case StatementKind::kEmpty:
        return Local("an empty query is answered by pgring");
      case StatementKind::kTransaction:
        return Transaction(s);
      case StatementKind::kSet:
        if (s.set_name.starts_with("pgring.")) {
          return Local("{} is a pgring setting, kept by pgring", s.set_name);
        }
        if (s.reset_all) {
          return Session("RESET ALL applies to every server connection of the client");
        }
        return Session("SET {} applies to every server connection of the client", s.set_name);
      case StatementKind::kShow:
        if (s.set_name.starts_with("pgring.")) {
          return Local("{} is a pgring setting, shown by pgring", s.set_name);
        }
        return Default(s, /*any=*/true, "SHOW reads a setting, the same on every shard");
      case StatementKind::kPrepare:
        return Session("PREPARE is kept per client; EXECUTE is routed by the prepared statement");
      case StatementKind::kDeallocate:
        return Session("DEALLOCATE applies to every server connection of the client");
      case StatementKind::kDiscard:
        return Session("DISCARD applies to every server connection of the client");
      case StatementKind::kExecute:
        return Execute(s);
      case StatementKind::kListen:
      case StatementKind::kUnlisten:
      case StatementKind::kNotify:
        return Default(s, /*any=*/false,
                       "LISTEN, UNLISTEN and NOTIFY run on the default shard so that "
                       "notifications meet their listeners");
      case StatementKind::kExplain:
        return Explain(s);
      case StatementKind::kDdl:
        return Ddl();
      case StatementKind::kCall:
        return NoTables(s, "CALL: pgring cannot see which tables the procedure uses");
      case StatementKind::kCopy:
        return Copy(s);
      case StatementKind::kOther:
        if (s.tables.empty()) {
          if (!s.writes) {
            return Session("a cursor command runs on the connection that holds the cursor");
          }
          return NoTables(s, "pgring cannot see which tables this statement uses");
        }
        return Data(s);
      case StatementKind::kSelect:
      case StatementKind::kInsert:
      case StatementKind::kUpdate:
      case StatementKind::kDelete:
      case StatementKind::kLock:
        return Data(s);
    }
    return Unsupported("pgring cannot route this statement", "");
  }

  // The kKeyed memo of a DML statement when Data() gives it a single-shard plan from one
  // key value per sharded table whenever those values resolve to one non-NULL key each
  // that all land on the same shard; otherwise a kGeneral memo. Reads only the statement
  // and the table map. Not for statements with a hint comment.
  RouteMemo KeyedMemo(const Statement& s) const {
    RouteMemo m;
    m.kind = RouteMemo::Kind::kGeneral;
    if (s.kind != StatementKind::kSelect && s.kind != StatementKind::kInsert &&
        s.kind != StatementKind::kUpdate && s.kind != StatementKind::kDelete) {
      return m;
    }
    if (s.kind == StatementKind::kInsert && (!s.insert || s.insert->from_select)) return m;
    const TableUses uses = Classify(s);
    const TableUse* target = WriteTarget(s, uses);
    if (!KeyUnchanged(s, uses, target).ok()) return m;
    if (s.kind == StatementKind::kInsert && target == nullptr) return m;
    // A single value that is a constant or a parameter: the candidates for one key.
    const auto usable = [](const KeyValue& v) {
      return (v.kind == KeyValue::Kind::kLiteral || v.kind == KeyValue::Kind::kParam) &&
             !v.is_array;
    };
    for (const TableUse& u : uses) {
      // Unconfigured tables pin to the default shard; a write that names a reference
      // table writes it everywhere or fails.
      if (u.cls == TableClass::kUnknown || (u.RefLike() && s.writes)) return m;
      if (u.RefLike()) continue;  // read on whichever shard the keys choose
      if (s.kind == StatementKind::kInsert && &u == target) {
        // The key of the one VALUES row, by an explicit column list.
        const InsertInfo& ins = *s.insert;
        if (ins.default_values || ins.rows.size() != 1 || ins.columns.empty() ||
            u.ref->references > 1) {
          return m;
        }
        absl::StatusOr<size_t> pos = KeyPosition(*u.info, ins.columns, "INSERT");
        if (!pos.ok() || *pos >= ins.rows[0].size() || !usable(ins.rows[0][*pos])) return m;
        m.sources.push_back({&ins.rows[0][*pos], u.info->key_type});
        m.insert_row = true;
        continue;
      }
      const ColumnConstraint* c = KeyConstraint(s, u);
      if (c == nullptr || c->values.size() != 1 || !usable(c->values[0])) return m;
      m.sources.push_back({&c->values[0], u.info->key_type});
    }
    if (m.sources.empty()) return m;  // reference tables or catalogs only
    m.kind = RouteMemo::Kind::kKeyed;
    return m;
  }

 private:
  // ---- plans that need no table ---------------------------------------------------------

  RoutePlan Base(RouteKind kind) const {
    RoutePlan p;
    p.kind = kind;
    return p;
  }

  // Local and Session format their reason only to explain the plan.
  template <typename... Args>
  RoutePlan Local(fmt::format_string<Args...> reason, Args&&... args) const {
    RoutePlan p = Base(RouteKind::kLocal);
    if (in_.explain) p.reason = fmt::format(reason, std::forward<Args>(args)...);
    return p;
  }

  template <typename... Args>
  RoutePlan Session(fmt::format_string<Args...> reason, Args&&... args) const {
    RoutePlan p = Base(RouteKind::kSession);
    if (in_.explain) p.reason = fmt::format(reason, std::forward<Args>(args)...);
    return p;
  }

  // The default shard, or the first shard when none is configured (or it left the ring).
  ShardId FallbackShard() const {
    if (!map_.default_shard().empty()) {
      if (std::optional<ShardId> id = ring_.FindShard(map_.default_shard())) return *id;
    }
    return ShardId(0);
  }

  RoutePlan Default(const Statement& s, bool any, std::string_view why) const {
    RoutePlan p = Base(RouteKind::kDefault);
    p.shards = {FallbackShard()};
    p.any_shard = any;
    p.is_write = s.writes;
    if (in_.explain) p.reason = fmt::format("{} -> {}", why, ring_.shard_name(p.shards[0]));
    return p;
  }

  ShardList AllShards() const {
    ShardList all(ring_.shard_count());
    for (size_t k = 0; k < all.size(); ++k) all[k] = ShardId(static_cast<uint32_t>(k));
    return all;
  }

  std::string ShardNames(const ShardList& shards) const {
    if (shards.size() == ring_.shard_count() && shards.size() > 1) {
      return fmt::format("all {} shards", shards.size());
    }
    std::string out;
    for (ShardId id : shards) {
      if (!out.empty()) out += ", ";
      out += ring_.shard_name(id);
    }
    return out.empty() ? "no shard" : out;
  }

  absl::StatusOr<RoutePlan> Transaction(const Statement& s) const {
    switch (s.txn_op) {
      case TransactionOp::kPrepare:
      case TransactionOp::kCommitPrepared:
      case TransactionOp::kRollbackPrepared:
        return Unsupported(
            "PREPARE TRANSACTION, COMMIT PREPARED and ROLLBACK PREPARED are not supported "
            "through pgring: pgring runs two-phase commit itself for transactions that write "
            "to several shards",
            "use plain COMMIT; to resolve a prepared transaction by hand, connect to the "
            "shard directly");
      default:
        break;
    }
    return Session("transaction control applies to every server connection of the client");
  }

  absl::StatusOr<RoutePlan> Execute(const Statement& s) {
    if (in_.prepared == nullptr) {
      return SqlError(absl::StatusCode::kNotFound, "26000",
                      fmt::format("prepared statement \"{}\" does not exist", s.name));
    }
    Planner inner(map_, ring_, in_);
    absl::StatusOr<RoutePlan> plan = inner.Route(*in_.prepared, hint_, &s.execute_args);
    if (plan.ok() && in_.explain)
      plan->reason = fmt::format("EXECUTE {}: {}", s.name, plan->reason);
    return plan;
  }

  absl::StatusOr<RoutePlan> Explain(const Statement& s) {
    if (s.inner == nullptr)
      return Default(s, /*any=*/true, "EXPLAIN of a statement without tables");
    Planner inner(map_, ring_, in_);
    std::optional<Hint> hint = hint_;
    if (s.inner->hint_shard_key) hint = Hint{*s.inner->hint_shard_key, "statement comment"};
    absl::StatusOr<RoutePlan> plan = inner.Route(*s.inner, hint, nullptr);
    if (!plan.ok()) return plan;
    if (s.explain_analyze) {
      if (plan->shards.size() > 1) {
        return Unsupported(
            fmt::format("EXPLAIN ANALYZE of a statement that runs on {} is not supported",
                        ShardNames(plan->shards)),
            fmt::format("limit the statement to one shard key, or pin it with {}", kHintAdvice));
      }
      return plan;
    }
    plan->is_write = false;
    if (plan->shards.size() > 1) {
      const std::string all = ShardNames(plan->shards);
      plan->shards.resize(1);
      plan->kind = RouteKind::kSingle;
      plan->needs_merge = false;
      plan->merge = MergeFacts{};
      plan->insert_rows.clear();
      plan->copy_split.reset();
      if (in_.explain) {
        plan->reason = fmt::format("{}; EXPLAIN shows the plan of {} (the statement runs on {})",
                                   plan->reason, ring_.shard_name(plan->shards[0]), all);
      }
    }
    return plan;
  }

  RoutePlan Ddl() const {
    RoutePlan p = Base(RouteKind::kAll);
    p.shards = AllShards();
    p.is_write = true;
    if (in_.explain) {
      p.reason = fmt::format("DDL runs on {} so that every shard has the same schema",
                             ShardNames(p.shards));
    }
    return p;
  }

  // Reads the hint as a key of `type` and returns its owner.
  absl::StatusOr<ShardId> HintShard(KeyType type, std::string* note) const {
    absl::StatusOr<int64_t> h = Router::HashKeyText(hint_->value, type);
    if (!h.ok()) {
      return SqlError(absl::StatusCode::kInvalidArgument, protocol::SqlStateOf(h.status()),
                      fmt::format("invalid shard-key hint from {}: {}", hint_->source,
                                  protocol::MessageOf(h.status())),
                      fmt::format("the hint is read as a {} key; give a value of that type",
                                  conf::ToString(type)));
    }
    const ShardId id = ring_.Lookup(*h);
    if (note != nullptr && in_.explain) {
      *note = fmt::format("hint shard_key={} ({}) -> hash {} -> {}", hint_->value, hint_->source,
                          *h, ring_.shard_name(id));
    }
    return id;
  }

  // The hint's shard where no sharded table of the statement types the hint: read with the
  // key type all sharded tables share (else as an integer). A session hint that does not
  // parse so is ignored here rather than failing every table-free statement of the session;
  // a comment hint on the statement itself must parse.
  absl::StatusOr<std::optional<ShardId>> UntypedHintShard(std::string* note) const {
    if (!hint_) return std::optional<ShardId>();
    absl::StatusOr<ShardId> id = HintShard(map_.common_key_type().value_or(KeyType::kInt), note);
    if (id.ok()) return std::optional<ShardId>(*id);
    if (hint_->source == kSessionHint) return std::optional<ShardId>();
    return id.status();
  }

  // Statements whose tables pgring cannot see (CALL, DO, SELECT without FROM).
  absl::StatusOr<RoutePlan> NoTables(const Statement& s, std::string_view why) const {
    std::string note;
    absl::StatusOr<std::optional<ShardId>> id = UntypedHintShard(&note);
    if (!id.ok()) return id.status();
    if (id->has_value()) {
      RoutePlan p = Base(RouteKind::kSingle);
      p.shards = {**id};
      p.used_hint = true;
      p.is_write = s.writes;
      if (in_.explain) p.reason = note;
      return p;
    }
    const bool any =
        s.kind == StatementKind::kSelect && !s.writes && !s.locks && !s.uses_advisory_lock;
    return Default(s, any, why);
  }

  // ---- COPY --------------------------------------------------------------------------------

  // Position of `table`'s key column among `columns` (or the table's columns in order).
  absl::StatusOr<size_t> KeyPosition(const TableInfo& table,
                                     const std::vector<std::string>& columns,
                                     std::string_view what) const {
    const std::vector<std::string>* cols = &columns;
    if (columns.empty()) {
      cols = in_.column_order ? in_.column_order(table.schema, table.name) : nullptr;
      if (cols == nullptr) {
        return Unsupported(
            fmt::format("{} without a column list into a sharded table needs the key column "
                        "position: pgring does not know the column order of {}",
                        what, table.DisplayName()),
            fmt::format("name the columns: {} {} ({}, ...)", what, table.DisplayName(),
                        table.key_column));
      }
    }
    for (size_t k = 0; k < cols->size(); ++k) {
      if (SameColumn((*cols)[k], table.key_column)) return k;
    }
    return Unsupported(
        fmt::format("{} into {} does not set its shard key {}: pgring must see the key to "
                    "choose the shard",
                    what, table.DisplayName(), table.key_column),
        fmt::format("add {} to the column list with the row's key value", table.key_column));
  }

  absl::StatusOr<RoutePlan> Copy(const Statement& s) {
    if (!s.copy) return Unsupported("pgring cannot route this COPY statement", "");
    const CopyInfo& copy = *s.copy;
    if (!copy.stdio) {
      return Unsupported(
          "COPY to or from a file or program on the server is not supported through pgring",
          "use COPY ... FROM STDIN or COPY ... TO STDOUT (psql's \\copy)");
    }
    if (copy.is_query) {
      if (s.inner == nullptr) return Unsupported("pgring cannot route this COPY query", "");
      const Statement& q = *s.inner;
      Planner inner(map_, ring_, in_);
      absl::StatusOr<RoutePlan> plan = inner.Route(q, hint_, nullptr);
      if (!plan.ok() || plan->shards.size() <= 1) return plan;
      // COPY rows pass through unchanged; only a result that needs no merge can be
      // concatenated.
      if (q.has_aggregates || q.has_group_by || q.has_order_by || q.has_limit || q.has_offset ||
          q.has_distinct) {
        return Unsupported(
            fmt::format("COPY (query) TO STDOUT over {} cannot merge ORDER BY, LIMIT, OFFSET, "
                        "DISTINCT, GROUP BY or aggregates: pgring passes COPY rows through",
                        ShardNames(plan->shards)),
            fmt::format("run the query as a plain SELECT, limit it to one shard key, or pin it "
                        "with {}",
                        kHintAdvice));
      }
      plan->needs_merge = false;  // rows are concatenated
      plan->merge = MergeFacts{};
      return plan;
    }
    const TableRef& t = copy.table;
    const TableClass cls = map_.Classify(t.schema, t.name);
    const std::string name = TableName(t.schema, t.name);
    if (cls == TableClass::kUnknown) {
      absl::StatusOr<ShardId> d = UnknownTableShard(t);
      if (!d.ok()) return d.status();
      RoutePlan p = Base(RouteKind::kDefault);
      p.shards = {*d};
      p.is_write = copy.is_from;
      if (in_.explain) {
        p.reason = fmt::format("{} is not configured: it lives on the default shard {}", name,
                               ring_.shard_name(*d));
      }
      return p;
    }
    if (cls != TableClass::kSharded) {
      RoutePlan p = Base(copy.is_from ? RouteKind::kAll : RouteKind::kSingle);
      if (copy.is_from) {
        p.shards = AllShards();
        p.is_write = true;
        if (in_.explain) {
          p.reason = fmt::format("reference table {} is written on {}", name, ShardNames(p.shards));
        }
      } else {
        p.shards = {FallbackShard()};
        p.any_shard = true;
        if (in_.explain) {
          p.reason = fmt::format("reference table {} is read on one shard -> {}", name,
                                 ring_.shard_name(p.shards[0]));
        }
      }
      return p;
    }
    const TableInfo& info = *map_.Find(t.schema, t.name);
    if (copy.is_from) {
      absl::StatusOr<size_t> pos = KeyPosition(info, copy.columns, "COPY");
      if (!pos.ok()) return pos.status();
      RoutePlan p = Base(RouteKind::kAll);
      p.shards = AllShards();
      p.is_write = true;
      p.copy_split = CopySplit{static_cast<int>(*pos), info.key_column, info.key_type};
      if (in_.explain) {
        p.reason = fmt::format("COPY rows into {} are split by {} (field {}) over {}", name,
                               info.key_column, *pos + 1, ShardNames(p.shards));
      }
      return p;
    }
    if (hint_) {
      std::string note;
      absl::StatusOr<ShardId> id = HintShard(info.key_type, &note);
      if (!id.ok()) return id.status();
      RoutePlan p = Base(RouteKind::kSingle);
      p.shards = {*id};
      p.used_hint = true;
      if (in_.explain) p.reason = note;
      return p;
    }
    RoutePlan p = Base(RouteKind::kAll);
    p.shards = AllShards();
    if (in_.explain) {
      p.reason =
          fmt::format("COPY {} TO STDOUT reads {} (rows concatenated)", name, ShardNames(p.shards));
    }
    return p;
  }

  absl::StatusOr<ShardId> UnknownTableShard(const TableRef& t) const {
    if (!map_.default_shard().empty()) {
      if (std::optional<ShardId> id = ring_.FindShard(map_.default_shard())) return *id;
    }
    const std::string name = TableName(t.schema, t.name);
    if (map_.default_shard().empty()) {
      return SqlError(absl::StatusCode::kNotFound, "42P01",
                      fmt::format("table {} is not in the pgring configuration; add it under "
                                  "tables: or set default_shard",
                                  name),
                      fmt::format("add '- name: {}' with kind: sharded (and its shard_key) or "
                                  "kind: reference to the tables: section, or set default_shard "
                                  "to the shard that holds tables pgring does not shard",
                                  name));
    }
    return SqlError(absl::StatusCode::kFailedPrecondition, "55000",
                    fmt::format("table {} is not in the pgring configuration and the "
                                "default shard '{}' is not on the current ring",
                                name, map_.default_shard()),
                    "set default_shard to a shard of the ring, or add the table under tables:");
  }

  // ---- data statements ---------------------------------------------------------------------

  // The constraint on the shard key of sharded table `use` (the first, when there are
  // several), or nullptr.
  static const ColumnConstraint* KeyConstraint(const Statement& s, const TableUse& use) {
    for (const ColumnConstraint& c : s.constraints) {
      if (SameTable(c.schema, c.table, use.ref->schema, use.ref->name) &&
          SameColumn(c.column, use.info->key_column)) {
        return &c;
      }
    }
    return nullptr;
  }

  // Reads the key constraint of a sharded table.
  absl::Status ReadConstraint(const Statement& s, TableUse& use) const {
    const TableInfo& info = *use.info;
    const ColumnConstraint* c = KeyConstraint(s, use);
    if (c == nullptr) {
      if (in_.explain) {
        use.note = fmt::format("{}: no condition on shard key {}", use.Name(), info.key_column);
      }
      return absl::OkStatus();
    }
    KeyList keys;
    for (const KeyValue& v : c->values) {
      absl::Status st = reader_->Add(v, info.key_type, keys);
      if (!st.ok()) return st;
    }
    // Explain only: the formatting stays off the routing path.
    const auto column = [&] { return fmt::format("{}.{}", use.Name(), info.key_column); };
    if (!keys.resolved) {
      if (in_.explain) {
        use.note = fmt::format("{}: pgring cannot read {} as a {} key -> every shard", column(),
                               keys.why, conf::ToString(info.key_type));
      }
      return absl::OkStatus();
    }
    use.constrained = true;
    for (int64_t h : keys.hashes) use.shards.push_back(ring_.Lookup(h));
    SortUnique(use.shards);
    if (in_.explain) {
      std::vector<std::string> shown = keys.shown;
      for (int k = 0; k < keys.nulls; ++k) shown.push_back("NULL");
      std::string values;
      for (const std::string& v : shown) values += (values.empty() ? "" : ", ") + v;
      if (keys.hashes.empty()) {
        use.note = fmt::format("{} = {}: no row can match", column(), values);
      } else if (shown.size() == 1) {
        use.note = fmt::format("{} = {} -> hash {} -> {}", column(), values, keys.hashes[0],
                               ring_.shard_name(use.shards[0]));
      } else {
        use.note = fmt::format("{} IN ({}) -> {}", column(), values, ShardNames(use.shards));
      }
    }
    return absl::OkStatus();
  }

  // Splits the rows of INSERT ... VALUES into a sharded table by their keys.
  absl::Status SplitRows(const Statement& s, TableUse& target,
                         std::vector<std::pair<ShardId, size_t>>& rows) const {
    const InsertInfo& ins = *s.insert;
    const TableInfo& info = *target.info;
    const std::string table = info.DisplayName();
    if (ins.default_values) {
      return Unsupported(
          fmt::format("INSERT ... DEFAULT VALUES into sharded table {} does not give its shard "
                      "key {}: pgring must see the key to choose the shard",
                      table, info.key_column),
          fmt::format("name the columns: INSERT INTO {} ({}, ...) VALUES (...)", table,
                      info.key_column));
    }
    absl::StatusOr<size_t> pos = KeyPosition(info, ins.columns, "INSERT");
    if (!pos.ok()) return pos.status();
    std::vector<int64_t> hashes;
    std::vector<std::string> shown;
    for (size_t r = 0; r < ins.rows.size(); ++r) {
      const std::vector<KeyValue>& row = ins.rows[r];
      KeyList keys;
      if (*pos >= row.size()) {
        keys.Unresolved("DEFAULT");
      } else {
        absl::Status st = reader_->Add(row[*pos], info.key_type, keys);
        if (!st.ok()) return st;
      }
      const std::string where =
          ins.rows.size() == 1 ? std::string("the row") : fmt::format("row {}", r + 1);
      if (!keys.resolved) {
        return Unsupported(
            fmt::format("{} of the INSERT into {} sets shard key {} to {}: pgring must see the "
                        "key value to choose the shard",
                        where, table, info.key_column, keys.why),
            fmt::format("write the {} value of each row as a constant or a $n parameter",
                        info.key_column));
      }
      if (keys.nulls > 0 || keys.hashes.size() != 1) {
        return SqlError(absl::StatusCode::kFailedPrecondition, "23502",
                        fmt::format("{} of the INSERT into {} has a NULL shard key {}: a row "
                                    "of a sharded table needs a key to have a shard",
                                    where, table, info.key_column),
                        fmt::format("give every row a {} value", info.key_column));
      }
      rows.emplace_back(ring_.Lookup(keys.hashes[0]), r);
      hashes.push_back(keys.hashes[0]);
      if (in_.explain) shown.push_back(keys.shown[0]);
    }
    target.constrained = true;
    for (const auto& [shard, r] : rows) target.shards.push_back(shard);
    SortUnique(target.shards);
    if (in_.explain) {
      if (rows.size() == 1) {
        target.note = fmt::format("{}.{} = {} -> hash {} -> {}", table, info.key_column, shown[0],
                                  hashes[0], ring_.shard_name(rows[0].first));
      } else {
        std::string parts;
        for (size_t k = 0; k < rows.size(); ++k) {
          parts += fmt::format("{}row {}: {} -> {}", k == 0 ? "" : ", ", k + 1, shown[k],
                               ring_.shard_name(rows[k].first));
        }
        target.note = fmt::format("{}.{} of {} rows ({}) -> {}", table, info.key_column,
                                  rows.size(), parts, ShardNames(target.shards));
      }
    }
    return absl::OkStatus();
  }

  // The table a write changes, when the statement says so unambiguously.
  const TableUse* WriteTarget(const Statement& s, std::span<const TableUse> uses) const {
    if (!s.writes || uses.empty()) return nullptr;
    if (s.kind == StatementKind::kInsert && s.insert) {
      for (const TableUse& u : uses) {
        if (SameTable(u.ref->schema, u.ref->name, s.insert->table.schema, s.insert->table.name)) {
          return &u;
        }
      }
      return nullptr;
    }
    // UPDATE, DELETE and other writes name their target first, unless WITH queries come
    // before it.
    if ((s.kind == StatementKind::kUpdate || s.kind == StatementKind::kDelete ||
         s.kind == StatementKind::kOther) &&
        !s.has_cte) {
      return &uses[0];
    }
    return nullptr;
  }

  // Checks that every sharded table is joined to the others on its shard key (same key
  // type), so that each shard can run the statement on its own rows. Fills `a`/`b` with two
  // tables that are not (the same table twice for a self-join).
  bool CoLocated(const Statement& s, std::span<const TableUse* const> sharded,
                 const TableUse** a, const TableUse** b) const {
    std::vector<size_t> parent(sharded.size());
    std::iota(parent.begin(), parent.end(), 0);
    const auto find = [&](size_t x) {
      while (parent[x] != x) x = parent[x] = parent[parent[x]];
      return x;
    };
    std::vector<bool> self_joined(sharded.size(), false);
    const auto index_of = [&](std::string_view schema, std::string_view table,
                              std::string_view column) -> std::optional<size_t> {
      for (size_t k = 0; k < sharded.size(); ++k) {
        const TableUse& u = *sharded[k];
        if (SameTable(schema, table, u.ref->schema, u.ref->name) &&
            SameColumn(column, u.info->key_column)) {
          return k;
        }
      }
      return std::nullopt;
    };
    for (const ColumnEquality& j : s.joins) {
      std::optional<size_t> x = index_of(j.schema1, j.table1, j.column1);
      std::optional<size_t> y = index_of(j.schema2, j.table2, j.column2);
      if (!x || !y) continue;
      if (sharded[*x]->info->key_type != sharded[*y]->info->key_type) continue;
      if (*x == *y) {
        self_joined[*x] = true;
      } else {
        parent[find(*x)] = find(*y);
      }
    }
    for (size_t k = 0; k < sharded.size(); ++k) {
      if (sharded[k]->ref->references > 1 && !self_joined[k]) {
        *a = *b = sharded[k];
        return false;
      }
      if (find(k) != find(0)) {
        *a = sharded[0];
        *b = sharded[k];
        return false;
      }
    }
    return true;
  }

  absl::Status NotCoLocated(const TableUse& a, const TableUse& b) const {
    const std::string ka = fmt::format("{}.{}", a.Name(), a.info->key_column);
    const std::string kb = fmt::format("{}.{}", b.Name(), b.info->key_column);
    if (&a == &b) {
      return Unsupported(
          fmt::format("sharded table {} is used twice without joining the two on its shard key "
                      "{}, and the statement is not limited to one shard: pgring cannot combine "
                      "rows that live on different shards",
                      a.Name(), a.info->key_column),
          fmt::format("join the two on {0} = {0}, add a condition on {0} that selects one "
                      "shard, or pin the statement with {1}",
                      ka, kHintAdvice));
    }
    std::string types;
    if (a.info->key_type != b.info->key_type) {
      types = fmt::format(" ({} is {}, {} is {}: keys of different types never share a shard)", ka,
                          conf::ToString(a.info->key_type), kb, conf::ToString(b.info->key_type));
    }
    return Unsupported(
        fmt::format("sharded tables {} and {} are not joined on their shard keys and the "
                    "statement is not limited to one shard{}: pgring cannot join rows that live "
                    "on different shards",
                    a.Name(), b.Name(), types),
        fmt::format("add {} = {} to the join, add the same shard-key value for both tables, or "
                    "pin the statement with {}",
                    ka, kb, kHintAdvice));
  }

  // Rejects reads over several shards whose result pgring cannot merge exactly.
  absl::Status CheckMergeable(const Statement& s, std::string_view spread) const {
    std::string what;
    if (s.has_window_functions) {
      what = "window functions";
    } else if (s.has_having) {
      what = "HAVING";
    } else if (s.has_distinct_on) {
      what = "DISTINCT ON";
    } else if (s.has_distinct && s.has_aggregates) {
      what = "DISTINCT together with aggregates";
    } else if (s.has_set_operation) {
      // Arms reading sharded tables that are not joined fail the co-location check, so an
      // arm that gets here reads no sharded table: its rows would come once per shard.
      what = "UNION, INTERSECT or EXCEPT";
    } else if (s.limit_with_ties) {
      what = "FETCH FIRST ... WITH TIES";
    } else if (s.has_group_by && !s.targets.empty() &&
               std::all_of(s.targets.begin(), s.targets.end(), [](const TargetInfo& t) {
                 return t.kind == TargetInfo::Kind::kAggregate;
               })) {
      // The shards' rows are regrouped by their plain columns; with none, every group of
      // every shard would collapse into one row.
      what = "GROUP BY without its grouping columns in the select list";
    } else {
      for (const TargetInfo& t : s.targets) {
        if (t.kind == TargetInfo::Kind::kAggregate && t.aggregate == AggregateFunc::kOther) {
          what = fmt::format("the aggregate {} (only count, sum, min, max and avg are merged)",
                             t.text.empty() ? t.name : t.text);
        } else if (t.kind == TargetInfo::Kind::kAggregate && t.agg_distinct) {
          what = fmt::format("{} (an aggregate over DISTINCT values)",
                             t.text.empty() ? t.name : t.text);
        } else if (s.has_aggregates &&
                   (t.kind == TargetInfo::Kind::kOther || t.kind == TargetInfo::Kind::kStar)) {
          what = fmt::format(
              "the select-list item {} next to aggregates (with aggregates, "
              "each item must be a plain column or a count, sum, min, max or "
              "avg call)",
              t.text.empty() ? t.name : t.text);
        }
        if (!what.empty()) break;
      }
    }
    if (what.empty()) {
      const bool star = std::any_of(s.targets.begin(), s.targets.end(), [](const TargetInfo& t) {
        return t.kind == TargetInfo::Kind::kStar;
      });
      for (const OrderKey& k : s.order_by) {
        if (k.using_operator) {
          what = fmt::format("ORDER BY {} USING an operator", k.text);
        } else if (k.position <= 0 && star && IsBareIdentifier(k.text)) {
          // `SELECT * ... ORDER BY col`: the column is in the output; the proxy finds it by
          // name in the RowDescription.
          continue;
        } else if (k.position <= 0 || static_cast<size_t>(k.position) > s.targets.size()) {
          what = fmt::format("ORDER BY {}, which is not in the select list", k.text);
        }
        if (!what.empty()) break;
      }
    }
    if (what.empty()) return absl::OkStatus();
    return Unsupported(
        fmt::format("the query runs on {} and uses {}, which pgring cannot merge across shards",
                    spread, what),
        fmt::format("add a shard-key condition that selects one shard, or pin the query with {}",
                    kHintAdvice));
  }

  // Statements name few tables: no allocation for the usual ones.
  using TableUses = absl::InlinedVector<TableUse, 4>;

  // Every table `s` names, classified.
  TableUses Classify(const Statement& s) const {
    TableUses uses;
    uses.reserve(s.tables.size());
    for (const TableRef& t : s.tables) {
      if (t.name.empty()) continue;
      TableUse u;
      u.ref = &t;
      u.cls = map_.Classify(t.schema, t.name, u.info);
      uses.push_back(std::move(u));
    }
    return uses;
  }

  // Changing a row's shard key would have to move the row to another shard.
  static absl::Status KeyUnchanged(const Statement& s, std::span<const TableUse> uses,
                                   const TableUse* target) {
    if (s.updated_columns.empty()) return absl::OkStatus();
    for (const TableUse& u : uses) {
      if (u.cls != TableClass::kSharded) continue;
      if (target != nullptr && &u != target) continue;
      for (const std::string& c : s.updated_columns) {
        if (SameColumn(c, u.info->key_column)) {
          return Unsupported(
              "changing the shard key of a row is not supported; delete and insert the row "
              "instead",
              fmt::format("{} sets {}.{}, the shard key of {}; remove it from the SET list",
                          s.kind == StatementKind::kInsert ? "ON CONFLICT DO UPDATE" : "UPDATE",
                          u.Name(), u.info->key_column, u.Name()));
        }
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<RoutePlan> Data(const Statement& s) {
    TableUses uses = Classify(s);
    if (uses.empty()) return NoTables(s, "the statement names no table");

    const bool insert_values =
        s.kind == StatementKind::kInsert && s.insert && !s.insert->from_select;
    const bool insert_select =
        s.kind == StatementKind::kInsert && s.insert && s.insert->from_select;
    const TableUse* target = WriteTarget(s, uses);
    if (absl::Status st = KeyUnchanged(s, uses, target); !st.ok()) return st;

    // Unknown tables: only on the default shard.
    std::optional<ShardId> default_shard;
    const TableUse* unknown = nullptr;
    for (const TableUse& u : uses) {
      if (u.cls != TableClass::kUnknown) continue;
      absl::StatusOr<ShardId> d = UnknownTableShard(*u.ref);
      if (!d.ok()) return d.status();
      default_shard = *d;
      if (unknown == nullptr) unknown = &u;
    }

    // Writes to reference tables go to every shard and must not depend on sharded rows.
    const TableUse* ref_written = nullptr;
    bool ref_ambiguous = false;
    if (s.writes) {
      if (target != nullptr && target->RefLike()) {
        ref_written = target;
      } else if (target == nullptr || s.has_cte) {
        for (const TableUse& u : uses) {
          if (u.RefLike() && &u != target) {
            ref_written = &u;
            ref_ambiguous = true;
            break;
          }
        }
      }
    }
    if (ref_written != nullptr) {
      for (const TableUse& u : uses) {
        if (u.cls != TableClass::kSharded && u.cls != TableClass::kUnknown) continue;
        if (ref_ambiguous) {
          return Unsupported(
              fmt::format("pgring cannot tell whether this statement writes reference table {} "
                          "(it has WITH queries): a reference table must be written on every "
                          "shard, and this statement also uses {} table {}",
                          ref_written->Name(),
                          u.cls == TableClass::kSharded ? "sharded" : "unconfigured", u.Name()),
              "move the WITH query into FROM as a subquery, or write the reference table in a "
              "statement of its own");
        }
        return Unsupported(
            fmt::format("a write to reference table {} cannot use {} table {}: its rows differ "
                        "between shards, so the copies of {} would diverge",
                        ref_written->Name(),
                        u.cls == TableClass::kSharded ? "sharded" : "unconfigured", u.Name(),
                        ref_written->Name()),
            fmt::format("write {} with values from the application or from reference tables "
                        "only",
                        ref_written->Name()));
      }
      RoutePlan p = Base(RouteKind::kAll);
      p.shards = AllShards();
      p.is_write = true;
      if (in_.explain) {
        p.reason = fmt::format("reference table {} is written on {}", ref_written->Name(),
                               ShardNames(p.shards));
      }
      return p;
    }

    // Shard keys.
    absl::InlinedVector<const TableUse*, 4> sharded;
    std::vector<std::pair<ShardId, size_t>> rows;  // INSERT VALUES: (owner, row index)
    const TableUse* insert_target = nullptr;
    // INSERT ... VALUES whose subqueries also read the target table: the read side, which
    // the rows' keys do not limit.
    std::optional<TableUse> target_read;
    for (TableUse& u : uses) {
      if (u.cls != TableClass::kSharded) continue;
      sharded.push_back(&u);
      if ((insert_values || insert_select) && &u == target) {
        insert_target = &u;
        if (insert_values) {
          absl::Status st = SplitRows(s, u, rows);
          if (!st.ok()) return st;
          if (u.ref->references > 1) {
            target_read.emplace();
            target_read->ref = u.ref;
            target_read->cls = u.cls;
            target_read->info = u.info;
            st = ReadConstraint(s, *target_read);
            if (!st.ok()) return st;
          }
          continue;
        }
        if (u.ref->references <= 1) continue;  // an INSERT target is not read
      }
      absl::Status st = ReadConstraint(s, u);
      if (!st.ok()) return st;
    }
    if (target_read) sharded.push_back(&*target_read);

    // Only reference tables and catalogs: any one shard has them all.
    if (sharded.empty() && !default_shard) {
      RoutePlan p = Base(RouteKind::kSingle);
      std::string note;
      absl::StatusOr<std::optional<ShardId>> id = std::optional<ShardId>();
      if (!s.locks) id = UntypedHintShard(&note);
      if (!id.ok()) return id.status();
      if (id->has_value()) {
        p.shards = {**id};
        p.used_hint = true;
      } else {
        // Locks go to one fixed shard, so that two clients locking the same rows meet.
        p.shards = {FallbackShard()};
        p.any_shard = !s.locks;
      }
      p.is_write = s.writes;
      if (in_.explain) {
        p.reason = fmt::format("reference tables only: read on one shard -> {}{}",
                               ring_.shard_name(p.shards[0]), note.empty() ? "" : "; " + note);
      }
      return p;
    }

    // The shards the keys ask for, and whether the keys decide alone.
    ShardList wanted;
    bool all_constrained = true;
    for (const TableUse* u : sharded) {
      if (u == insert_target && insert_select && u->ref->references <= 1) continue;
      if (u->constrained) {
        wanted.insert(wanted.end(), u->shards.begin(), u->shards.end());
      } else {
        all_constrained = false;
        wanted = AllShards();
      }
    }
    if (default_shard) wanted.push_back(*default_shard);
    SortUnique(wanted);

    const TableUse* bad_a = nullptr;
    const TableUse* bad_b = nullptr;
    bool colocated = wanted.size() <= 1 || ring_.shard_count() == 1;
    if (!colocated && unknown == nullptr) colocated = CoLocated(s, sharded, &bad_a, &bad_b);

    std::vector<std::string> notes;
    if (in_.explain) {
      for (const TableUse* u : sharded) {
        if (!u->note.empty()) notes.push_back(u->note);
      }
      if (unknown != nullptr) {
        notes.push_back(fmt::format("{} is not configured: it lives on the default shard {}",
                                    unknown->Name(), ring_.shard_name(*default_shard)));
      }
    }

    // INSERT ... SELECT into a sharded table: the new rows' keys come from the SELECT, so the
    // statement must run on one shard whose rows it reads.
    bool insert_select_ok = true;
    if (insert_target != nullptr && insert_select && ring_.shard_count() > 1) {
      bool has_source = default_shard.has_value();
      for (const TableUse* u : sharded) {
        if (u == insert_target && u->ref->references <= 1) continue;
        has_source = true;
        if (u->info->key_type != insert_target->info->key_type) insert_select_ok = false;
      }
      insert_select_ok = insert_select_ok && has_source && all_constrained && wanted.size() <= 1;
    }

    RoutePlan p;
    p.is_write = s.writes;
    if (all_constrained && colocated && insert_select_ok) {
      if (wanted.empty()) {
        // Only NULL keys: no row matches; one shard answers (with no rows).
        wanted.push_back(FallbackShard());
        if (in_.explain) notes.push_back("no row can match -> one shard answers");
      }
      p.kind = wanted.size() == 1 ? RouteKind::kSingle : RouteKind::kMulti;
      p.shards = std::move(wanted);
      if (hint_ && in_.explain) {
        notes.push_back(
            fmt::format("hint shard_key={} ignored: the statement's keys decide", hint_->value));
      }
    } else if (hint_) {
      // Pin to the hint's shard; a key that contradicts it is an error, not a silent miss.
      KeyType type = sharded.empty() ? map_.common_key_type().value_or(KeyType::kInt)
                                     : sharded[0]->info->key_type;
      for (const TableUse* u : sharded) {
        if (u->info->key_type != type) type = KeyType::kInt;
      }
      std::string note;
      absl::StatusOr<ShardId> h = HintShard(type, &note);
      if (!h.ok()) return h.status();
      for (const TableUse* u : sharded) {
        if (!u->constrained) continue;
        for (ShardId id : u->shards) {
          if (id == *h) continue;
          return Unsupported(
              fmt::format("the shard-key hint {} ({}) selects shard {}, but the statement's "
                          "key for {} selects {}",
                          hint_->value, hint_->source, ring_.shard_name(*h), u->Name(),
                          ring_.shard_name(id)),
              "remove the hint, or make it name the same key as the statement");
        }
      }
      if (default_shard && *default_shard != *h) {
        return Unsupported(
            fmt::format("the shard-key hint {} ({}) selects shard {}, but table {} is not "
                        "configured and lives only on the default shard {}",
                        hint_->value, hint_->source, ring_.shard_name(*h), unknown->Name(),
                        ring_.shard_name(*default_shard)),
            fmt::format("add {} under tables: in the configuration", unknown->Name()));
      }
      p.shards = {*h};
      p.kind = RouteKind::kSingle;
      p.used_hint = true;
      if (in_.explain) notes.push_back(note);
    } else if (!insert_select_ok) {
      const TableInfo& t = *insert_target->info;
      return Unsupported(
          fmt::format("INSERT ... SELECT into sharded table {} must read co-located sharded "
                      "tables limited to one shard: pgring cannot see the new rows' {} values",
                      t.DisplayName(), t.key_column),
          fmt::format("limit the SELECT by its shard key (WHERE ... {} = value) so it reads one "
                      "shard, insert the rows with VALUES, or pin the statement with {}",
                      t.key_column, kHintAdvice));
    } else if (!colocated) {
      if (unknown != nullptr) {
        ShardList others = wanted;
        others.erase(std::remove(others.begin(), others.end(), *default_shard), others.end());
        return Unsupported(
            fmt::format("table {} is not in the pgring configuration, so it lives only on the "
                        "default shard {}, but the statement also needs {}",
                        unknown->Name(), ring_.shard_name(*default_shard), ShardNames(others)),
            fmt::format("add {} under tables: in the configuration, or limit the statement to "
                        "keys of shard {}",
                        unknown->Name(), ring_.shard_name(*default_shard)));
      }
      return NotCoLocated(*bad_a, *bad_b);
    } else {
      p.shards = std::move(wanted);  // every shard
      p.kind = RouteKind::kAll;
    }
    if (sharded.empty() && p.kind == RouteKind::kSingle && !p.used_hint) {
      p.kind = RouteKind::kDefault;  // unconfigured tables only
    }

    // Rows over several shards.
    if (p.shards.size() > 1) {
      if (s.kind == StatementKind::kSelect) {
        absl::Status st = CheckMergeable(s, ShardNames(p.shards));
        if (!st.ok()) return st;
        p.needs_merge = true;
        p.merge.targets = s.targets;
        p.merge.order_by = s.order_by;
        p.merge.limit = s.limit;
        p.merge.offset = s.offset;
        p.merge.limit_param = s.limit_param;
        p.merge.offset_param = s.offset_param;
        p.merge.limit_with_ties = s.limit_with_ties;
        p.merge.has_aggregates = s.has_aggregates;
        p.merge.has_group_by = s.has_group_by;
        p.merge.has_distinct = s.has_distinct;
      } else if (s.kind == StatementKind::kOther && !s.writes) {
        return Unsupported(
            fmt::format("a cursor over {} is not supported: a cursor lives on one shard",
                        ShardNames(p.shards)),
            fmt::format("limit the cursor's query to one shard key, or pin it with {}",
                        kHintAdvice));
      }
    }

    if (!rows.empty()) {
      p.insert_rows.resize(p.shards.size());
      for (const auto& [shard, r] : rows) {
        auto it = std::lower_bound(p.shards.begin(), p.shards.end(), shard);
        p.insert_rows[static_cast<size_t>(it - p.shards.begin())].push_back(r);
      }
    }

    if (in_.explain) {
      std::string reason;
      for (const std::string& n : notes) reason += (reason.empty() ? "" : "; ") + n;
      if (p.kind == RouteKind::kAll) {
        reason +=
            fmt::format(" -> {}{}", ShardNames(p.shards), p.needs_merge ? " (results merged)" : "");
      } else if (p.shards.size() > 1) {
        reason +=
            fmt::format(" -> {}{}", ShardNames(p.shards), p.needs_merge ? " (results merged)" : "");
      }
      p.reason = std::move(reason);
    }
    return p;
  }

  const TableMap& map_;
  const Ring& ring_;
  const RouteInputs& in_;
  std::optional<Hint> hint_;
  std::optional<ValueReader> reader_;
};

}  // namespace

std::string_view ToString(RouteKind kind) {
  switch (kind) {
    case RouteKind::kSingle:
      return "single";
    case RouteKind::kMulti:
      return "multi";
    case RouteKind::kAll:
      return "all";
    case RouteKind::kDefault:
      return "default";
    case RouteKind::kSession:
      return "session";
    case RouteKind::kLocal:
      return "local";
  }
  return "unknown";
}

// DML that names only tables pgring does not shard runs on the default shard, whatever its
// values or hint: the planner's general path gives the same plan, at several times the cost.
static bool UnconfiguredTablesOnly(const Statement& s, const TableMap& tables) {
  if (s.kind != StatementKind::kSelect && s.kind != StatementKind::kInsert &&
      s.kind != StatementKind::kUpdate && s.kind != StatementKind::kDelete) {
    return false;
  }
  if (tables.default_shard().empty()) return false;
  bool named = false;
  for (const TableRef& t : s.tables) {
    if (t.name.empty()) continue;
    if (tables.Classify(t.schema, t.name) != TableClass::kUnknown) return false;
    named = true;
  }
  return named;
}

// Fills `p` for a statement on the default shard; false when the ring has no such shard.
static bool DefaultShardPlan(const Statement& s, const TableMap& tables, const Ring& ring,
                             RoutePlan& p) {
  std::optional<ShardId> id = ring.FindShard(tables.default_shard());
  if (!id) return false;
  p.kind = RouteKind::kDefault;
  p.shards.clear();
  p.shards.push_back(*id);
  p.is_write = s.writes;
  return true;
}

// Session and local plans depend on the statement alone (not on values, hints, the table
// map or the ring).
static std::optional<RouteMemo::Kind> FixedKind(const Statement& s, const TableMap& tables,
                                                const Ring& ring, const RouteInputs& inputs) {
  switch (s.kind) {
    case StatementKind::kTransaction:
    case StatementKind::kSet:
    case StatementKind::kPrepare:
    case StatementKind::kDeallocate:
    case StatementKind::kDiscard:
    case StatementKind::kEmpty:
      break;
    default:
      return std::nullopt;
  }
  absl::StatusOr<RoutePlan> plan = Planner(tables, ring, inputs).Route(s, std::nullopt, nullptr);
  if (!plan.ok()) return std::nullopt;  // refused every time, with its message
  if (plan->kind == RouteKind::kSession) return RouteMemo::Kind::kSession;
  if (plan->kind == RouteKind::kLocal) return RouteMemo::Kind::kLocal;
  return std::nullopt;
}

static RouteMemo MakeMemo(const Statement& s, const TableMap& tables, const Ring& ring,
                          const RouteInputs& inputs) {
  RouteMemo m;
  if (UnconfiguredTablesOnly(s, tables)) {
    m.kind = RouteMemo::Kind::kDefault;
  } else if (std::optional<RouteMemo::Kind> fixed = FixedKind(s, tables, ring, inputs)) {
    m.kind = *fixed;
  } else if (s.hint_shard_key) {
    m.kind = RouteMemo::Kind::kGeneral;
  } else {
    m = Planner(tables, ring, inputs).KeyedMemo(s);
  }
  m.tables_id = tables.id();
  return m;
}

// Fills `p` with the plan the memo gives for these inputs; false when the planner must
// decide.
static bool RouteByMemo(const Statement& s, const RouteMemo& m, const TableMap& tables,
                        const Ring& ring, const RouteInputs& inputs, RoutePlan& p) {
  switch (m.kind) {
    case RouteMemo::Kind::kUnmade:
    case RouteMemo::Kind::kGeneral:
      return false;
    case RouteMemo::Kind::kDefault:
      return DefaultShardPlan(s, tables, ring, p);
    case RouteMemo::Kind::kSession:
      p.kind = RouteKind::kSession;
      return true;
    case RouteMemo::Kind::kLocal:
      p.kind = RouteKind::kLocal;
      return true;
    case RouteMemo::Kind::kKeyed:
      break;
  }
  const ValueReader reader(inputs, nullptr);
  std::optional<ShardId> shard;
  for (const RouteMemo::Source& source : m.sources) {
    KeyList keys;
    if (!reader.Add(*source.value, source.type, keys).ok() || !keys.resolved ||
        keys.nulls != 0 || keys.hashes.size() != 1) {
      return false;  // the planner reports the error or plans several shards
    }
    const ShardId id = ring.Lookup(keys.hashes[0]);
    if (shard && *shard != id) return false;
    shard = id;
  }
  p.kind = RouteKind::kSingle;
  p.shards.clear();
  p.shards.push_back(*shard);
  p.is_write = s.writes;
  if (m.insert_row) p.insert_rows = {{0}};
  return true;
}

// Routes without planning when the memo, or a statement on unconfigured tables only,
// allows it: fills `p` and returns true.
static bool RouteWithoutPlanning(const Statement& s, const TableMap& tables, const Ring& ring,
                                 const RouteInputs& inputs, RoutePlan& p) {
  if (inputs.explain) return false;
  RouteMemo* memo = inputs.memo;
  if (memo == nullptr) {
    return UnconfiguredTablesOnly(s, tables) && DefaultShardPlan(s, tables, ring, p);
  }
  if (memo->kind == RouteMemo::Kind::kUnmade || memo->tables_id != tables.id()) {
    *memo = MakeMemo(s, tables, ring, inputs);
  }
  return RouteByMemo(s, *memo, tables, ring, inputs, p);
}

absl::StatusOr<RoutePlan> Router::Route(const Statement& statement, const TableMap& tables,
                                        const Ring& ring, const RouteInputs& inputs) {
  // One plan object, returned from every path (no moves on the fast one).
  absl::StatusOr<RoutePlan> plan(absl::in_place);
  if (RouteWithoutPlanning(statement, tables, ring, inputs, *plan)) return plan;
  std::optional<Hint> hint;
  if (statement.hint_shard_key) {
    hint = Hint{*statement.hint_shard_key, "statement comment"};
  } else if (inputs.session_shard_key) {
    hint = Hint{*inputs.session_shard_key, kSessionHint};
  }
  Planner planner(tables, ring, inputs);
  plan = planner.Route(statement, hint, nullptr);
  return plan;
}

absl::StatusOr<int64_t> Router::HashKeyText(std::string_view text, KeyType type) {
  switch (type) {
    case KeyType::kInt: {
      absl::StatusOr<int64_t> n = ParsePgInt(text, ValType::kInt8);
      if (!n.ok()) return n.status();
      return HashInt8(*n);
    }
    case KeyType::kText:
      return HashText(text);
    case KeyType::kUuid: {
      std::optional<std::array<uint8_t, 16>> u = ParseUuid(text);
      if (!u) {
        return InvalidValue("22P02",
                            fmt::format("invalid input syntax for type uuid: \"{}\"", text));
      }
      return HashUuid(*u);
    }
  }
  return InvalidValue("22P02", "unknown shard key type");
}

}  // namespace pgring::sharding
