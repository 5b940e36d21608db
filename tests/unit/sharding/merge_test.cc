// Unit tests of sharding/merge.h and sharding/value_compare.h with synthetic shard results.
// Expected numeric and float texts were printed by PostgreSQL 15; for example
//   SELECT avg(x) FROM (VALUES (1), (2)) v(x);               -- 1.5000000000000000
//   SELECT numeric_send(12345.678);                           -- \x0003000100000003000109291a7c
// tests/integration/merge_pg_test.cc compares whole merged results with a live server.
#include "sharding/merge.h"

#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "protocol/messages.h"
#include "protocol/sql_error.h"
#include "sharding/value_compare.h"

namespace pgring::sharding {
namespace {

using protocol::Buffer;
using protocol::RowField;
using Value = std::optional<std::string>;
using Row = std::vector<Value>;

std::span<const std::byte> B(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

RowField Field(std::string_view name, uint32_t type, int16_t format = 0) {
  RowField f;
  f.name = name;
  f.type_oid = type;
  f.format = format;
  f.type_size = -1;
  f.type_modifier = -1;
  return f;
}

// Encodes a DataRow body (without type byte and length).
std::string DataRow(const Row& values) {
  std::string out;
  auto put32 = [&](uint32_t v) {
    for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  out.push_back(static_cast<char>(values.size() >> 8));
  out.push_back(static_cast<char>(values.size() & 0xff));
  for (const Value& v : values) {
    if (!v) {
      put32(0xFFFFFFFFu);
      continue;
    }
    put32(static_cast<uint32_t>(v->size()));
    out += *v;
  }
  return out;
}

std::string Int8Binary(int64_t v) {
  std::string out;
  for (int i = 7; i >= 0; --i)
    out.push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff));
  return out;
}

std::string Float8Binary(double d) { return Int8Binary(std::bit_cast<int64_t>(d)); }

std::string Hex(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    out.push_back(kHex[u >> 4]);
    out.push_back(kHex[u & 15]);
  }
  return out;
}

// What the client received: DataRows, RowDescription fields and the CommandComplete tag.
struct Output {
  std::vector<Row> rows;
  std::vector<std::string> raw_rows;  // DataRow bodies as sent
  std::string tag;
  int other_messages = 0;
};

Output Decode(const Buffer& buf) {
  Output out;
  auto bytes = buf.Readable();
  size_t pos = 0;
  while (pos < bytes.size()) {
    REQUIRE(bytes.size() - pos >= 5);
    char type = static_cast<char>(bytes[pos]);
    uint32_t len = 0;
    for (int i = 1; i <= 4; ++i) len = (len << 8) | static_cast<uint8_t>(bytes[pos + i]);
    REQUIRE(len >= 4);
    REQUIRE(bytes.size() - pos - 1 >= len);
    auto body = bytes.subspan(pos + 5, len - 4);
    if (type == 'D') {
      auto values = protocol::ParseDataRow(body);
      REQUIRE(values.has_value());
      Row row;
      for (const auto& v : *values) {
        if (v) {
          row.emplace_back(std::string(reinterpret_cast<const char*>(v->data()), v->size()));
        } else {
          row.emplace_back(std::nullopt);
        }
      }
      out.rows.push_back(std::move(row));
      out.raw_rows.emplace_back(reinterpret_cast<const char*>(body.data()), body.size());
    } else if (type == 'C') {
      auto tag = protocol::ParseCommandComplete(body);
      REQUIRE(tag.has_value());
      out.tag = std::string(*tag);
    } else {
      ++out.other_messages;
    }
    pos += 1 + len;
  }
  return out;
}

// Runs a whole merge: every shard's rows are added in turn, then Finish.
Output Merge(const MergeSpec& spec, const std::vector<RowField>& fields,
             const std::vector<std::vector<Row>>& shards) {
  Merger m(spec, static_cast<int>(shards.size()));
  Buffer out;
  for (size_t s = 0; s < shards.size(); ++s) {
    REQUIRE(m.SetRowDescription(static_cast<int>(s), fields).ok());
  }
  for (size_t s = 0; s < shards.size(); ++s) {
    for (const Row& row : shards[s]) {
      std::string body = DataRow(row);
      absl::Status st = m.AddRow(static_cast<int>(s), B(body), out);
      INFO(st.message());
      REQUIRE(st.ok());
    }
    REQUIRE(m.EndShard(static_cast<int>(s), out).ok());
  }
  absl::Status st = m.Finish(out);
  INFO(st.message());
  REQUIRE(st.ok());
  return Decode(out);
}

std::vector<Row> Ints(std::initializer_list<std::optional<int>> values) {
  std::vector<Row> rows;
  for (auto v : values) rows.push_back({v ? Value(std::to_string(*v)) : std::nullopt});
  return rows;
}

std::vector<std::string> Column(const Output& out, size_t c) {
  std::vector<std::string> col;
  for (const Row& r : out.rows) col.push_back(r.at(c) ? *r.at(c) : "NULL");
  return col;
}

using Strings = std::vector<std::string>;

int Cmp(uint32_t type, const std::string& a, const std::string& b,
        ValueFormat format = ValueFormat::kText) {
  absl::StatusOr<int> c = CompareValues(type, format, B(a), B(b));
  INFO(type << " '" << a << "' vs '" << b << "': " << c.status().message());
  REQUIRE(c.ok());
  return *c;
}

// ---- value_compare ----------------------------------------------------------------------------

TEST_CASE("numeric text compares as exact decimals", "[merge][compare]") {
  CHECK(Cmp(pg_type::kNumeric, "9", "10") < 0);
  CHECK(Cmp(pg_type::kNumeric, "-1.5", "-1.25") < 0);
  CHECK(Cmp(pg_type::kNumeric, "-1.25", "-1.5") > 0);
  CHECK(Cmp(pg_type::kNumeric, "1.0", "1.00") == 0);
  CHECK(Cmp(pg_type::kNumeric, "0.00", "-0") == 0);
  CHECK(Cmp(pg_type::kNumeric, "007.5", "7.50") == 0);
  CHECK(Cmp(pg_type::kNumeric, "0.001", "0.0009999") > 0);
  CHECK(Cmp(pg_type::kNumeric, "-0.001", "0") < 0);
  CHECK(Cmp(pg_type::kNumeric, "123456789012345678901234567890.5",
            "123456789012345678901234567890.49") > 0);
  CHECK(Cmp(pg_type::kNumeric, "-99999999999999999999", "-100000000000000000000") > 0);
  // -Infinity < finite < Infinity < NaN, as numeric's btree class orders them.
  CHECK(Cmp(pg_type::kNumeric, "NaN", "Infinity") > 0);
  CHECK(Cmp(pg_type::kNumeric, "Infinity", "999999999999999999999999") > 0);
  CHECK(Cmp(pg_type::kNumeric, "-Infinity", "-999999") < 0);
  CHECK(Cmp(pg_type::kNumeric, "NaN", "NaN") == 0);
  CHECK_FALSE(CompareValues(pg_type::kNumeric, ValueFormat::kText, B("1e5"), B("1")).ok());
  CHECK_FALSE(CompareValues(pg_type::kNumeric, ValueFormat::kText, B("1.2.3"), B("1")).ok());
  CHECK_FALSE(CompareValues(pg_type::kNumeric, ValueFormat::kText, B(""), B("1")).ok());
  CHECK_FALSE(CompareValues(pg_type::kNumeric, ValueFormat::kText, B("-"), B("1")).ok());
}

TEST_CASE("integers and floats compare by value, not by bytes", "[merge][compare]") {
  CHECK(Cmp(pg_type::kInt4, "9", "10") < 0);
  CHECK(Cmp(pg_type::kInt8, "-9223372036854775808", "9223372036854775807") < 0);
  CHECK(Cmp(pg_type::kInt2, "-2", "-10") > 0);
  CHECK(Cmp(pg_type::kInt8, Int8Binary(-5), Int8Binary(3), ValueFormat::kBinary) < 0);
  CHECK(Cmp(pg_type::kInt8, Int8Binary(256), Int8Binary(255), ValueFormat::kBinary) > 0);
  CHECK(Cmp(pg_type::kFloat8, "1e-05", "0.0001") < 0);
  CHECK(Cmp(pg_type::kFloat8, "NaN", "Infinity") > 0);
  CHECK(Cmp(pg_type::kFloat8, "NaN", "NaN") == 0);
  CHECK(Cmp(pg_type::kFloat8, "-0", "0") == 0);
  CHECK(Cmp(pg_type::kFloat8, "-Infinity", "-1e+308") < 0);
  CHECK(Cmp(pg_type::kFloat4, "3.3000002", "3.3") > 0);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  CHECK(Cmp(pg_type::kFloat8, Float8Binary(-2.5), Float8Binary(-1.0), ValueFormat::kBinary) < 0);
  CHECK(Cmp(pg_type::kFloat8, Float8Binary(nan), Float8Binary(inf), ValueFormat::kBinary) > 0);
  CHECK(Cmp(pg_type::kFloat8, Float8Binary(-0.0), Float8Binary(0.0), ValueFormat::kBinary) == 0);
  CHECK_FALSE(CompareValues(pg_type::kInt8, ValueFormat::kBinary, B("1234"), B("1234")).ok());
  CHECK_FALSE(CompareValues(pg_type::kInt4, ValueFormat::kText, B("12a"), B("1")).ok());
}

TEST_CASE("text, dates, times, uuid, bytea and bool compare as PostgreSQL does",
          "[merge][compare]") {
  // Byte-wise: the "C" collation.
  CHECK(Cmp(pg_type::kText, "B", "a") < 0);
  CHECK(Cmp(pg_type::kText, "ab", "abc") < 0);
  CHECK(Cmp(pg_type::kText, "\xc3\xa9", "z") > 0);
  CHECK(Cmp(pg_type::kVarchar, "", "a") < 0);
  CHECK(Cmp(pg_type::kBpchar, "ab  ", "ab") == 0);
  CHECK(Cmp(pg_type::kBool, "f", "t") < 0);
  CHECK(Cmp(pg_type::kDate, "2024-02-29", "2024-03-01") < 0);
  CHECK(Cmp(pg_type::kDate, "0044-03-15 BC", "0001-01-01") < 0);
  CHECK(Cmp(pg_type::kDate, "0002-01-01 BC", "0001-01-01 BC") < 0);
  CHECK(Cmp(pg_type::kDate, "12345-01-01", "9999-12-31") > 0);
  CHECK(Cmp(pg_type::kDate, "infinity", "12345-01-01") > 0);
  CHECK(Cmp(pg_type::kDate, "-infinity", "4713-01-01 BC") < 0);
  CHECK(Cmp(pg_type::kTime, "09:00:00", "10:00:00") < 0);
  CHECK(Cmp(pg_type::kTime, "12:00:01.25", "12:00:01.249999") > 0);
  CHECK(Cmp(pg_type::kTimestamp, "2024-01-02 03:04:05.5", "2024-01-02 03:04:05.123456") > 0);
  CHECK(Cmp(pg_type::kTimestamp, "1999-12-31 23:59:59", "2000-01-01 00:00:00") < 0);
  // timestamptz: instants, whatever offset each shard printed.
  CHECK(Cmp(pg_type::kTimestampTz, "2024-01-01 12:00:00+02", "2024-01-01 10:00:00+00") == 0);
  CHECK(Cmp(pg_type::kTimestampTz, "2024-01-01 12:00:00+05:30", "2024-01-01 07:00:00+00") < 0);
  CHECK(Cmp(pg_type::kTimestampTz, "1800-01-01 00:00:00+05:53:28", "1800-01-01 00:00:00+00") < 0);
  CHECK(Cmp(pg_type::kTimestampTz, "0044-03-15 10:00:00+00 BC", "0001-01-01 00:00:00+00") < 0);
  CHECK(Cmp(pg_type::kTimestampTz, "infinity", "2024-01-01 00:00:00+00") > 0);
  CHECK(Cmp(pg_type::kUuid, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11") == 0);
  CHECK(Cmp(pg_type::kUuid, "00000000-0000-0000-0000-000000000001",
            "10000000-0000-0000-0000-000000000000") < 0);
  CHECK(Cmp(pg_type::kBytea, "\\x00ff", "\\x0100") < 0);
  CHECK(Cmp(pg_type::kBytea, "\\x61", "a") == 0);  // hex and escape forms of one value
  CHECK(Cmp(pg_type::kBytea, "\\x6100", "a") > 0);
  CHECK(Cmp(pg_type::kBytea, "a\\\\b", "\\x615c62") == 0);
  CHECK(Cmp(pg_type::kBytea, "\\377", "\\x80") > 0);
  CHECK_FALSE(
      CompareValues(pg_type::kDate, ValueFormat::kText, B("01/02/2024"), B("2024-01-02")).ok());
  CHECK_FALSE(CompareValues(pg_type::kBytea, ValueFormat::kText, B("\\x0"), B("a")).ok());
}

TEST_CASE("unknown types cannot be compared", "[merge][compare]") {
  constexpr uint32_t kJsonb = 3802, kInterval = 1186;
  for (uint32_t type : {kJsonb, kInterval}) {
    auto cmp = ValueComparator::For(type, ValueFormat::kText);
    REQUIRE_FALSE(cmp.ok());
    CHECK(cmp.status().code() == absl::StatusCode::kUnimplemented);
    CHECK(protocol::SqlStateOf(cmp.status()) == "0A000");
    CHECK_FALSE(IsComparableType(type));
  }
}

TEST_CASE("equality keys match equal values only", "[merge][compare]") {
  auto key = [](uint32_t type, const std::string& v) {
    auto cmp = ValueComparator::For(type, ValueFormat::kText);
    REQUIRE(cmp.ok());
    std::string k;
    REQUIRE(cmp->AppendEqualityKey(B(v), k).ok());
    return k;
  };
  CHECK(key(pg_type::kNumeric, "1.0") == key(pg_type::kNumeric, "1.000"));
  CHECK(key(pg_type::kNumeric, "-0.0") == key(pg_type::kNumeric, "0"));
  CHECK(key(pg_type::kNumeric, "10") != key(pg_type::kNumeric, "1"));
  CHECK(key(pg_type::kNumeric, "0.1") != key(pg_type::kNumeric, "1"));
  CHECK(key(pg_type::kFloat8, "-0") == key(pg_type::kFloat8, "0"));
  CHECK(key(pg_type::kTimestampTz, "2024-01-01 12:00:00+02") ==
        key(pg_type::kTimestampTz, "2024-01-01 10:00:00+00"));
  CHECK(key(pg_type::kBpchar, "a  ") == key(pg_type::kBpchar, "a"));
  CHECK(key(pg_type::kText, "a") != key(pg_type::kText, "a "));
  // Keys of two columns concatenate without ambiguity.
  CHECK(key(pg_type::kText, "ab") + key(pg_type::kText, "c") !=
        key(pg_type::kText, "a") + key(pg_type::kText, "bc"));
}

TEST_CASE("Numeric arithmetic follows numeric's scale rules", "[merge][numeric]") {
  auto num = [](std::string_view s) {
    auto n = Numeric::FromText(s);
    REQUIRE(n.has_value());
    return *n;
  };
  Numeric sum = num("1.10");
  sum.Add(num("2.205"));
  sum.Add(num("-3.3"));
  CHECK(sum.ToText() == "0.005");
  Numeric zero = num("1.5");
  zero.Add(num("-1.50"));
  CHECK(zero.ToText() == "0.00");
  CHECK_FALSE(zero.negative());
  Numeric neg = num("1");
  neg.Add(num("-2.5"));
  CHECK(neg.ToText() == "-1.5");

  // avg() = numeric_div(sum, count): values printed by PostgreSQL 15.
  CHECK(Numeric::FromInt64(3).DivideBy(2).ToText() == "1.5000000000000000");
  CHECK(Numeric::FromInt64(5).DivideBy(3).ToText() == "1.6666666666666667");
  CHECK(Numeric::FromInt64(0).DivideBy(5).ToText() == "0.00000000000000000000");
  CHECK(Numeric::FromInt64(15).DivideBy(3).ToText() == "5.0000000000000000");
  CHECK(Numeric::FromInt64(-3).DivideBy(2).ToText() == "-1.5000000000000000");
  CHECK(Numeric::FromInt64(100000000000).DivideBy(1).ToText() == "100000000000.00000000");
  CHECK(num("0.0001").DivideBy(1).ToText() == "0.000100000000000000000000");
  CHECK(num("0.000001").DivideBy(1).ToText() == "0.000001000000000000000000");
  CHECK(num("-3.625").DivideBy(3).ToText() == "-1.20833333333333333333");
  CHECK(num("123456789012345681").DivideBy(2).ToText() == "61728394506172841");
  CHECK(Numeric::FromInt64(10).DivideBy(3).ToText() == "3.3333333333333333");
  CHECK(num("NaN").DivideBy(3).ToText() == "NaN");

  Numeric inf = num("Infinity");
  inf.Add(num("5"));
  CHECK(inf.ToText() == "Infinity");
  inf.Add(num("-Infinity"));
  CHECK(inf.ToText() == "NaN");
}

TEST_CASE("Numeric binary form equals numeric_send", "[merge][numeric]") {
  struct Case {
    const char* text;
    const char* hex;  // SELECT numeric_send(text::numeric)
  };
  const Case cases[] = {
      {"12345.678", "0003000100000003000109291a7c"},
      {"0.05", "0001ffff0000000201f4"},
      {"0.00", "0000000000000002"},
      {"NaN", "00000000c0000000"},
      {"100000000", "00010002000000000001"},
      {"-1.5", "000200004000000100011388"},
      {"-Infinity", "00000000f0000020"},
      {"Infinity", "00000000d0000020"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    auto n = Numeric::FromText(c.text);
    REQUIRE(n.has_value());
    std::string bin;
    n->AppendBinary(bin);
    CHECK(Hex(bin) == c.hex);
    auto back = Numeric::FromBinary(B(bin));
    REQUIRE(back.has_value());
    CHECK(back->ToText() == c.text);
  }
  CHECK_FALSE(Numeric::FromBinary(B(std::string("\x00\x01\x00\x00\x00\x00\x00\x00", 8))));
  CHECK_FALSE(Numeric::FromBinary(B(std::string("\x00\x00\x00\x00\x12\x34\x00\x00", 8))));
}

TEST_CASE("floats print as PostgreSQL 15 prints them", "[merge][float]") {
  CHECK(FormatFloat8(1e14) == "100000000000000");
  CHECK(FormatFloat8(1e15) == "1e+15");
  CHECK(FormatFloat8(123456789012345.6) == "123456789012345.6");
  CHECK(FormatFloat8(0.0001) == "0.0001");
  CHECK(FormatFloat8(0.00001) == "1e-05");
  CHECK(FormatFloat8(1.5e-5) == "1.5e-05");
  CHECK(FormatFloat8(1e100) == "1e+100");
  CHECK(FormatFloat8(1e-300) == "1e-300");
  CHECK(FormatFloat8(-0.0) == "-0");
  CHECK(FormatFloat8(std::nan("")) == "NaN");
  CHECK(FormatFloat8(-std::numeric_limits<double>::infinity()) == "-Infinity");
  CHECK(FormatFloat8(5e-324) == "5e-324");
  CHECK(FormatFloat8(1.7976931348623157e308) == "1.7976931348623157e+308");
  CHECK(FormatFloat8(0.1 + 0.2) == "0.30000000000000004");
  CHECK(FormatFloat4(1e5f) == "100000");
  CHECK(FormatFloat4(1e6f) == "1e+06");
  CHECK(FormatFloat4(123456.0f) == "123456");
  CHECK(FormatFloat4(1234567.0f) == "1.234567e+06");
  CHECK(FormatFloat4(1.1f + 2.2f) == "3.3000002");
  CHECK(FormatFloat4(3.4e38f) == "3.4e+38");
}

// ---- Merger: row streams ------------------------------------------------------------------------

TEST_CASE("without ORDER BY rows pass through unchanged", "[merge]") {
  std::vector<RowField> fields = {Field("id", pg_type::kInt4), Field("name", pg_type::kText)};
  MergeSpec spec;
  Merger m(spec, 2);
  REQUIRE(m.SetRowDescription(0, fields).ok());
  REQUIRE(m.SetRowDescription(1, fields).ok());
  Buffer out;
  std::string r1 = DataRow({"1", "a"}), r2 = DataRow({"2", std::nullopt}), r3 = DataRow({"3", ""});
  REQUIRE(m.AddRow(1, B(r1), out).ok());
  CHECK(out.size() == 5 + r1.size());  // written at once, nothing buffered
  REQUIRE(m.AddRow(0, B(r2), out).ok());
  REQUIRE(m.AddRow(1, B(r3), out).ok());
  REQUIRE(m.Finish(out).ok());
  Output o = Decode(out);
  CHECK(o.raw_rows == Strings{r1, r2, r3});
  CHECK(o.tag == "SELECT 3");
  CHECK(m.rows_sent() == 3);
}

TEST_CASE("LIMIT and OFFSET apply to the concatenation", "[merge]") {
  MergeSpec spec;
  spec.limit = 2;
  spec.offset = 1;
  Output o = Merge(spec, {Field("x", pg_type::kInt4)}, {Ints({1, 2}), Ints({3, 4})});
  CHECK(Column(o, 0) == Strings{"2", "3"});
  CHECK(o.tag == "SELECT 2");
}

TEST_CASE("ORDER BY merges sorted shards as rows arrive", "[merge]") {
  std::vector<RowField> fields = {Field("x", pg_type::kInt4)};
  MergeSpec spec;
  spec.order_by = {MergeOrderKey::Ascending(0)};
  Merger m(spec, 2);
  REQUIRE(m.SetRowDescription(0, fields).ok());
  REQUIRE(m.SetRowDescription(1, fields).ok());
  Buffer out;
  auto add = [&](int shard, int v) {
    std::string body = DataRow({std::to_string(v)});
    REQUIRE(m.AddRow(shard, B(body), out).ok());
    return Column(Decode(out), 0);
  };
  CHECK(add(0, 1).empty());  // shard 1 may still send a smaller row
  CHECK(add(0, 4).empty());
  CHECK(add(1, 2) == Strings{"1", "2"});  // 2 < 4, the head of shard 0
  CHECK(add(1, 3) == Strings{"1", "2", "3"});
  CHECK(add(1, 9) == Strings{"1", "2", "3", "4"});
  REQUIRE(m.EndShard(0, out).ok());  // shard 0 has no more rows: 9 can go
  CHECK(Column(Decode(out), 0) == Strings{"1", "2", "3", "4", "9"});
  REQUIRE(m.Finish(out).ok());
  CHECK(Decode(out).tag == "SELECT 5");
}

TEST_CASE("ORDER BY directions and NULL placement", "[merge]") {
  std::vector<RowField> fields = {Field("x", pg_type::kInt4)};
  MergeSpec spec;
  SECTION("ASC puts NULLs last by default") {
    spec.order_by = {MergeOrderKey::Ascending(0)};
    Output o = Merge(spec, fields, {Ints({1, 5, std::nullopt}), Ints({2, 10, std::nullopt})});
    CHECK(Column(o, 0) == Strings{"1", "2", "5", "10", "NULL", "NULL"});
  }
  SECTION("DESC puts NULLs first by default") {
    spec.order_by = {MergeOrderKey::Descending(0)};
    Output o = Merge(spec, fields, {Ints({std::nullopt, 10, 1}), Ints({9, 2})});
    CHECK(Column(o, 0) == Strings{"NULL", "10", "9", "2", "1"});
  }
  SECTION("ASC NULLS FIRST") {
    spec.order_by = {{0, false, true}};
    Output o = Merge(spec, fields, {Ints({std::nullopt, 3}), Ints({std::nullopt, 1, 7})});
    CHECK(Column(o, 0) == Strings{"NULL", "NULL", "1", "3", "7"});
  }
  SECTION("DESC NULLS LAST") {
    spec.order_by = {{0, true, false}};
    Output o = Merge(spec, fields, {Ints({8, std::nullopt}), Ints({9, -1, std::nullopt})});
    CHECK(Column(o, 0) == Strings{"9", "8", "-1", "NULL", "NULL"});
  }
}

TEST_CASE("ORDER BY several keys, numeric text and hidden sort columns", "[merge]") {
  std::vector<RowField> fields = {Field("name", pg_type::kText), Field("amount", pg_type::kNumeric),
                                  Field("id", pg_type::kInt8)};
  MergeSpec spec;
  spec.order_by = {MergeOrderKey::Ascending(0), MergeOrderKey::Descending(1)};
  std::vector<std::vector<Row>> shards = {
      {{"a", "10", "1"}, {"a", "9", "2"}, {"b", "-1.25", "3"}},
      {{"a", "9.5", "4"}, {"b", "-1.25", "5"}, {"b", "-1.5", "6"}, {"c", std::nullopt, "7"}},
  };
  Output o = Merge(spec, fields, shards);
  // Ties (b, -1.25) keep shard order.
  CHECK(Column(o, 2) == Strings{"1", "4", "2", "3", "5", "6", "7"});

  SECTION("a hidden column can be a sort key") {
    spec.order_by = {MergeOrderKey::Descending(2)};
    spec.hidden_columns = {2};
    Merger m(spec, 2);
    REQUIRE(m.SetRowDescription(0, fields).ok());
    REQUIRE(m.SetRowDescription(1, fields).ok());
    auto visible = m.OutputFields();
    REQUIRE(visible.size() == 2);
    CHECK(visible[1].name == "amount");
    Buffer out;
    std::string a = DataRow({"x", "1", "5"}), b = DataRow({"y", "2", "7"});
    REQUIRE(m.AddRow(0, B(a), out).ok());
    REQUIRE(m.AddRow(1, B(b), out).ok());
    REQUIRE(m.Finish(out).ok());
    Output h = Decode(out);
    REQUIRE(h.rows.size() == 2);
    CHECK(h.rows[0] == Row{"y", "2"});
    CHECK(h.rows[1] == Row{"x", "1"});
  }
}

TEST_CASE("LIMIT and OFFSET apply after the merge", "[merge]") {
  MergeSpec spec;
  spec.order_by = {MergeOrderKey::Ascending(0)};
  spec.limit = 3;
  spec.offset = 2;
  std::vector<RowField> fields = {Field("x", pg_type::kInt4)};
  Output o = Merge(spec, fields, {Ints({1, 3, 5, 7}), Ints({2, 4, 6, 8})});
  CHECK(Column(o, 0) == Strings{"3", "4", "5"});
  CHECK(o.tag == "SELECT 3");

  SECTION("Done() once the limit is reached; later rows are dropped") {
    Merger m(spec, 2);
    REQUIRE(m.SetRowDescription(0, fields).ok());
    REQUIRE(m.SetRowDescription(1, fields).ok());
    Buffer out;
    for (int v : {1, 2, 3, 4, 5, 6}) {
      std::string body = DataRow({std::to_string(v)});
      REQUIRE(m.AddRow(v % 2, B(body), out).ok());
    }
    CHECK(m.Done());
    std::string late = DataRow({"0"});
    REQUIRE(m.AddRow(0, B(late), out).ok());
    REQUIRE(m.Finish(out).ok());
    CHECK(Column(Decode(out), 0) == Strings{"3", "4", "5"});
  }
  SECTION("LIMIT 0") {
    spec.limit = 0;
    Output z = Merge(spec, fields, {Ints({1}), Ints({2})});
    CHECK(z.rows.empty());
    CHECK(z.tag == "SELECT 0");
  }
}

TEST_CASE("binary int8 and float8 keys merge by value", "[merge]") {
  MergeSpec spec;
  spec.order_by = {MergeOrderKey::Ascending(0)};
  SECTION("int8") {
    std::vector<RowField> fields = {Field("k", pg_type::kInt8, 1)};
    std::vector<std::vector<Row>> shards = {
        {{Int8Binary(-300)}, {Int8Binary(-1)}, {Int8Binary(256)}},
        {{Int8Binary(-5)}, {Int8Binary(0)}, {Int8Binary(255)}, {Int8Binary(INT64_MAX)}}};
    Output o = Merge(spec, fields, shards);
    std::vector<std::string> want = {Int8Binary(-300),     Int8Binary(-5),  Int8Binary(-1),
                                     Int8Binary(0),        Int8Binary(255), Int8Binary(256),
                                     Int8Binary(INT64_MAX)};
    CHECK(Column(o, 0) == want);
  }
  SECTION("float8 with NaN and infinities") {
    const double inf = std::numeric_limits<double>::infinity();
    const double nan = std::numeric_limits<double>::quiet_NaN();
    std::vector<RowField> fields = {Field("f", pg_type::kFloat8, 1)};
    std::vector<std::vector<Row>> shards = {
        {{Float8Binary(-inf)}, {Float8Binary(-0.5)}, {Float8Binary(2)}, {Float8Binary(nan)}},
        {{Float8Binary(-2)}, {Float8Binary(0.25)}, {Float8Binary(inf)}}};
    Output o = Merge(spec, fields, shards);
    std::vector<std::string> want = {Float8Binary(-inf), Float8Binary(-2), Float8Binary(-0.5),
                                     Float8Binary(0.25), Float8Binary(2),  Float8Binary(inf),
                                     Float8Binary(nan)};
    CHECK(Column(o, 0) == want);
  }
}

TEST_CASE("a shard that sent rows out of order is an error", "[merge]") {
  MergeSpec spec;
  spec.order_by = {MergeOrderKey::Ascending(0)};
  std::vector<RowField> fields = {Field("t", pg_type::kText)};
  Merger m(spec, 2);
  REQUIRE(m.SetRowDescription(0, fields).ok());
  REQUIRE(m.SetRowDescription(1, fields).ok());
  Buffer out;
  // "a" before "B" is en_US order, not the "C" order pgring merges by.
  std::string a = DataRow({"a"}), b = DataRow({"B"});
  REQUIRE(m.AddRow(0, B(a), out).ok());
  absl::Status st = m.AddRow(0, B(b), out);
  CHECK(st.code() == absl::StatusCode::kUnimplemented);
  CHECK(protocol::SqlStateOf(st) == "0A000");
  CHECK(protocol::HintOf(st).find("COLLATE \"C\"") != std::string::npos);
  CHECK_FALSE(m.Finish(out).ok());  // the merger stays failed
}

TEST_CASE("unsorted input is sorted at the end", "[merge]") {
  MergeSpec spec;
  spec.order_by = {MergeOrderKey::Descending(0), MergeOrderKey::Ascending(1)};
  spec.input_order = InputOrder::kUnsorted;
  std::vector<RowField> fields = {Field("g", pg_type::kInt4), Field("id", pg_type::kInt4)};
  std::mt19937 rng(7);
  std::vector<std::vector<Row>> shards(3);
  std::vector<std::pair<int, int>> all;
  for (int id = 0; id < 5000; ++id) {
    int g = static_cast<int>(rng() % 50);
    all.push_back({g, id});
    shards[rng() % 3].push_back({std::to_string(g), std::to_string(id)});
  }
  std::sort(all.begin(), all.end(), [](auto a, auto b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  SECTION("all rows") {
    Output o = Merge(spec, fields, shards);
    REQUIRE(o.rows.size() == all.size());
    for (size_t i = 0; i < all.size(); ++i) {
      REQUIRE(*o.rows[i][1] == std::to_string(all[i].second));
    }
  }
  SECTION("LIMIT keeps only offset + limit rows, with the same result") {
    spec.limit = 7;
    spec.offset = 300;
    Output o = Merge(spec, fields, shards);
    REQUIRE(o.rows.size() == 7);
    for (size_t i = 0; i < 7; ++i) {
      CHECK(*o.rows[i][1] == std::to_string(all[300 + i].second));
    }
  }
}

// ---- Merger: aggregates -------------------------------------------------------------------------

TEST_CASE("aggregates without GROUP BY give one row", "[merge][aggregate]") {
  // SELECT count(*), sum(x), min(x), max(x), avg(x) -> count(*), sum(x), min, max, sum(x),
  // count(x) with the last column hidden.
  std::vector<RowField> fields = {Field("count", pg_type::kInt8), Field("sum", pg_type::kInt8),
                                  Field("min", pg_type::kInt4),   Field("max", pg_type::kInt4),
                                  Field("avg", pg_type::kInt8),   Field("c", pg_type::kInt8)};
  MergeSpec spec;
  spec.aggregates = {{0, MergeFunction::kCount},
                     {1, MergeFunction::kSum},
                     {2, MergeFunction::kMin},
                     {3, MergeFunction::kMax},
                     {4, MergeFunction::kAvg, 5}};
  spec.hidden_columns = {5};
  // Shard 0 holds 1, 2, 3, NULL; shard 1 holds -4, 10; shard 2 no row matches.
  std::vector<std::vector<Row>> shards = {
      {{"4", "6", "1", "3", "6", "3"}},
      {{"2", "6", "-4", "10", "6", "2"}},
      {{"0", std::nullopt, std::nullopt, std::nullopt, std::nullopt, "0"}}};
  Output o = Merge(spec, fields, shards);
  REQUIRE(o.rows.size() == 1);
  CHECK(o.rows[0] == Row{"6", "12", "-4", "10", "2.4000000000000000"});
  CHECK(o.tag == "SELECT 1");

  Merger m(spec, 1);
  REQUIRE(m.SetRowDescription(0, fields).ok());
  auto out_fields = m.OutputFields();
  REQUIRE(out_fields.size() == 5);
  CHECK(out_fields[4].name == "avg");
  CHECK(out_fields[4].type_oid == pg_type::kNumeric);
  CHECK(out_fields[0].type_oid == pg_type::kInt8);

  SECTION("all NULL: count 0, the others NULL") {
    std::vector<std::vector<Row>> empty = {
        {{"0", std::nullopt, std::nullopt, std::nullopt, std::nullopt, "0"}},
        {{"0", std::nullopt, std::nullopt, std::nullopt, std::nullopt, "0"}}};
    Output e = Merge(spec, fields, empty);
    REQUIRE(e.rows.size() == 1);
    CHECK(e.rows[0] == Row{"0", std::nullopt, std::nullopt, std::nullopt, std::nullopt});
  }
  SECTION("OFFSET 1 skips the only row") {
    spec.offset = 1;
    CHECK(Merge(spec, fields, shards).rows.empty());
  }
}

TEST_CASE("sum and avg of numeric and float columns", "[merge][aggregate]") {
  std::vector<RowField> fields = {Field("s", pg_type::kNumeric), Field("a", pg_type::kNumeric),
                                  Field("n", pg_type::kInt8), Field("f", pg_type::kFloat8),
                                  Field("fa", pg_type::kFloat8)};
  MergeSpec spec;
  spec.aggregates = {{0, MergeFunction::kSum},
                     {1, MergeFunction::kAvg, 2},
                     {3, MergeFunction::kSum},
                     {4, MergeFunction::kAvg, 2}};
  spec.hidden_columns = {2};
  // avg over -7.125, 2.5, 1 (PostgreSQL: -1.20833333333333333333).
  std::vector<std::vector<Row>> shards = {{{"-4.625", "-4.625", "2", "0.1", "1.5"}},
                                          {{"1.000", "1", "1", "0.2", "0.25"}}};
  Output o = Merge(spec, fields, shards);
  REQUIRE(o.rows.size() == 1);
  CHECK(o.rows[0] ==
        Row{"-3.625", "-1.20833333333333333333", "0.30000000000000004", "0.5833333333333334"});
  Merger m(spec, 1);
  REQUIRE(m.SetRowDescription(0, fields).ok());
  CHECK(m.OutputFields()[3].type_oid == pg_type::kFloat8);

  SECTION("binary numeric and int8") {
    std::vector<RowField> bin = {Field("s", pg_type::kNumeric, 1), Field("c", pg_type::kInt8, 1),
                                 Field("a", pg_type::kNumeric, 1), Field("n", pg_type::kInt8, 1)};
    MergeSpec bspec;
    bspec.aggregates = {
        {0, MergeFunction::kSum}, {1, MergeFunction::kCount}, {2, MergeFunction::kAvg, 3}};
    auto nb = [](const char* text) {
      std::string out;
      Numeric::FromText(text)->AppendBinary(out);
      return out;
    };
    std::vector<std::vector<Row>> bshards = {
        {{nb("12345.678"), Int8Binary(2), nb("3"), Int8Binary(1)}},
        {{nb("0.05"), Int8Binary(5), nb("2"), Int8Binary(1)}}};
    Output b = Merge(bspec, bin, bshards);
    REQUIRE(b.rows.size() == 1);
    CHECK(Hex(*b.rows[0][0]) == Hex(nb("12345.728")));
    CHECK(*b.rows[0][1] == Int8Binary(7));
    CHECK(Hex(*b.rows[0][2]) == Hex(nb("2.5000000000000000")));
  }
}

TEST_CASE("GROUP BY combines groups spread over shards", "[merge][aggregate]") {
  // SELECT region, count(*), sum(x), max(x), avg(x) FROM t GROUP BY region
  std::vector<RowField> fields = {Field("region", pg_type::kText), Field("count", pg_type::kInt8),
                                  Field("sum", pg_type::kInt8),    Field("max", pg_type::kInt4),
                                  Field("avg", pg_type::kInt8),    Field("n", pg_type::kInt8)};
  MergeSpec spec;
  spec.group_by = {0};
  spec.aggregates = {{1, MergeFunction::kCount},
                     {2, MergeFunction::kSum},
                     {3, MergeFunction::kMax},
                     {4, MergeFunction::kAvg, 5}};
  spec.hidden_columns = {5};
  std::vector<std::vector<Row>> shards = {
      {{"eu", "2", "3", "2", "3", "2"}, {"us", "1", "5", "5", "5", "1"}},
      {{"us", "3", "6", "4", "6", "3"}, {std::nullopt, "1", "7", "7", "7", "1"}},
      {{"ap", "1", std::nullopt, std::nullopt, std::nullopt, "0"},
       {"eu", "1", "10", "10", "10", "1"}}};
  SECTION("ORDER BY the key") {
    spec.order_by = {MergeOrderKey::Ascending(0)};
    Output o = Merge(spec, fields, shards);
    REQUIRE(o.rows.size() == 4);
    CHECK(o.rows[0] == Row{"ap", "1", std::nullopt, std::nullopt, std::nullopt});
    CHECK(o.rows[1] == Row{"eu", "3", "13", "10", "4.3333333333333333"});
    CHECK(o.rows[2] == Row{"us", "4", "11", "5", "2.7500000000000000"});
    CHECK(o.rows[3] == Row{std::nullopt, "1", "7", "7", "7.0000000000000000"});
    CHECK(o.tag == "SELECT 4");
  }
  SECTION("ORDER BY an aggregate, DESC, with LIMIT") {
    spec.order_by = {MergeOrderKey::Descending(4)};  // avg, NULLs first
    spec.limit = 3;
    Output o = Merge(spec, fields, shards);
    CHECK(Column(o, 0) == Strings{"ap", "NULL", "eu"});
  }
  SECTION("without ORDER BY: every group once, in order of first arrival") {
    Output o = Merge(spec, fields, shards);
    CHECK(Column(o, 0) == Strings{"eu", "us", "NULL", "ap"});
  }
}

TEST_CASE("GROUP BY keys compare by value", "[merge][aggregate]") {
  std::vector<RowField> fields = {Field("k", pg_type::kNumeric), Field("n", pg_type::kInt8)};
  MergeSpec spec;
  spec.group_by = {0};
  spec.aggregates = {{1, MergeFunction::kCount}};
  spec.order_by = {MergeOrderKey::Ascending(0)};
  Output o = Merge(spec, fields, {{{"1.0", "2"}, {"10", "1"}}, {{"1.00", "3"}, {"9", "1"}}});
  CHECK(Column(o, 0) == Strings{"1.0", "9", "10"});
  CHECK(Column(o, 1) == Strings{"5", "1", "1"});
}

TEST_CASE("GROUP BY without aggregates removes duplicates", "[merge][aggregate]") {
  MergeSpec spec;
  spec.group_by = {0};
  Output o = Merge(spec, {Field("x", pg_type::kInt4)}, {Ints({1, 2}), Ints({2, 3, 1})});
  CHECK(Column(o, 0) == Strings{"1", "2", "3"});
}

TEST_CASE("sum overflow is an error like PostgreSQL's", "[merge][aggregate]") {
  MergeSpec spec;
  spec.aggregates = {{0, MergeFunction::kSum}};
  std::vector<RowField> fields = {Field("s", pg_type::kInt8)};
  Merger m(spec, 2);
  REQUIRE(m.SetRowDescription(0, fields).ok());
  REQUIRE(m.SetRowDescription(1, fields).ok());
  Buffer out;
  std::string big = DataRow({"9223372036854775807"}), one = DataRow({"1"});
  REQUIRE(m.AddRow(0, B(big), out).ok());
  absl::Status st = m.AddRow(1, B(one), out);
  CHECK(protocol::SqlStateOf(st) == "22003");
}

// ---- Merger: errors ----------------------------------------------------------------------------

TEST_CASE("shards must describe the same columns", "[merge][errors]") {
  std::vector<RowField> fields = {Field("id", pg_type::kInt4), Field("name", pg_type::kText)};
  std::vector<RowField> other = fields;
  SECTION("column count") { other.pop_back(); }
  SECTION("name") { other[1].name = "title"; }
  SECTION("type") { other[0].type_oid = pg_type::kInt8; }
  SECTION("format") { other[0].format = 1; }
  Merger m(MergeSpec{}, 2);
  REQUIRE(m.SetRowDescription(0, fields).ok());
  absl::Status st = m.SetRowDescription(1, other);
  CHECK(st.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(protocol::SqlStateOf(st) == "42804");
  Buffer out;
  CHECK_FALSE(m.Finish(out).ok());
}

TEST_CASE("table OIDs may differ between shards", "[merge][errors]") {
  std::vector<RowField> a = {Field("id", pg_type::kInt4)}, b = a;
  a[0].table_oid = 16384;
  b[0].table_oid = 16999;
  Merger m(MergeSpec{}, 2);
  REQUIRE(m.SetRowDescription(0, a).ok());
  CHECK(m.SetRowDescription(1, b).ok());
}

TEST_CASE("specs the columns cannot satisfy are rejected", "[merge][errors]") {
  constexpr uint32_t kJsonb = 3802;
  std::vector<RowField> fields = {Field("j", kJsonb), Field("n", pg_type::kInt4)};
  MergeSpec spec;
  SECTION("ORDER BY an unknown type") {
    spec.order_by = {MergeOrderKey::Ascending(0)};
    absl::Status st = Merger(spec, 1).SetRowDescription(0, fields);
    CHECK(protocol::SqlStateOf(st) == "0A000");
  }
  SECTION("sum of jsonb") {
    spec.aggregates = {{0, MergeFunction::kSum}};
    absl::Status st = Merger(spec, 1).SetRowDescription(0, fields);
    CHECK(protocol::SqlStateOf(st) == "0A000");
  }
  SECTION("count of a non-bigint column") {
    spec.aggregates = {{1, MergeFunction::kCount}};
    CHECK_FALSE(Merger(spec, 1).SetRowDescription(0, fields).ok());
  }
  SECTION("column out of range") {
    spec.hidden_columns = {2};
    CHECK(protocol::SqlStateOf(Merger(spec, 1).SetRowDescription(0, fields)) == "XX000");
  }
  SECTION("avg without a count column") {
    spec.aggregates = {{1, MergeFunction::kAvg}};
    CHECK_FALSE(Merger(spec, 1).SetRowDescription(0, fields).ok());
  }
}

TEST_CASE("malformed rows are errors, not crashes", "[merge][errors]") {
  MergeSpec spec;
  spec.order_by = {MergeOrderKey::Ascending(0)};
  std::vector<RowField> fields = {Field("x", pg_type::kInt4), Field("y", pg_type::kText)};
  std::string good = DataRow({"1", "a"});
  const std::string bad_rows[] = {
      "",
      std::string("\x00", 1),
      DataRow({"1"}),                                                     // too few columns
      good.substr(0, good.size() - 1),                                    // truncated
      good + "x",                                                         // trailing byte
      DataRow({"one", "a"}),                                              // not an integer
      std::string("\x00\x02\xff\xff\xff\xfe", 6) + std::string(4, '\0'),  // length -2
  };
  for (const std::string& bad : bad_rows) {
    Merger m(spec, 1);
    REQUIRE(m.SetRowDescription(0, fields).ok());
    Buffer out;
    CHECK_FALSE(m.AddRow(0, B(bad), out).ok());
  }
  Merger m(spec, 1);
  Buffer out;
  CHECK_FALSE(m.AddRow(0, B(good), out).ok());  // no RowDescription yet
  Merger n(spec, 1);
  CHECK_FALSE(n.AddRow(3, B(good), out).ok());  // no such shard
}

TEST_CASE("random rows merge like one sorted list", "[merge]") {
  // Shards receive random rows, sort them, and the merge must equal sorting everything.
  std::mt19937 rng(42);
  std::vector<RowField> fields = {Field("a", pg_type::kInt4), Field("b", pg_type::kNumeric),
                                  Field("id", pg_type::kInt4)};
  for (int round = 0; round < 20; ++round) {
    MergeSpec spec;
    spec.order_by = {{0, rng() % 2 == 0, rng() % 2 == 0},
                     {1, rng() % 2 == 0, rng() % 2 == 0},
                     MergeOrderKey::Ascending(2)};
    int num_shards = 1 + static_cast<int>(rng() % 4);
    std::vector<std::vector<Row>> shards(static_cast<size_t>(num_shards));
    std::vector<Row> all;
    for (int id = 0; id < 200; ++id) {
      Value a =
          rng() % 8 == 0 ? std::nullopt : Value(std::to_string(static_cast<int>(rng() % 7) - 3));
      Value b = rng() % 8 == 0 ? std::nullopt
                               : Value(std::to_string(static_cast<int>(rng() % 21) - 10) + "." +
                                       std::to_string(rng() % 100));
      Row row = {a, b, std::to_string(id)};
      all.push_back(row);
      shards[rng() % shards.size()].push_back(row);
    }
    auto less = [&](const Row& x, const Row& y) {
      for (const MergeOrderKey& k : spec.order_by) {
        const Value& u = x[static_cast<size_t>(k.column)];
        const Value& v = y[static_cast<size_t>(k.column)];
        if (!u || !v) {
          if (!u && !v) continue;
          return !u == k.nulls_first;
        }
        int c = Cmp(fields[static_cast<size_t>(k.column)].type_oid, *u, *v);
        if (c != 0) return k.descending ? c > 0 : c < 0;
      }
      return false;
    };
    for (auto& s : shards) std::stable_sort(s.begin(), s.end(), less);
    std::stable_sort(all.begin(), all.end(), less);
    Output o = Merge(spec, fields, shards);
    REQUIRE(o.rows == all);
  }
}

}  // namespace
}  // namespace pgring::sharding
