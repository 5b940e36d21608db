#include "sharding/copy_splitter.h"

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fmt/format.h"
#include "protocol/frame.h"
#include "protocol/sql_error.h"
#include "sharding/hash.h"

namespace pgring::sharding {
namespace {

using conf::KeyType;

std::shared_ptr<const Ring> MakeRing() {
  auto ring = Ring::Build(RingVersion(1), {"shard-a", "shard-b", "shard-c"}, 64);
  REQUIRE(ring.ok());
  return *ring;
}

const std::shared_ptr<const Ring>& TheRing() {
  static const std::shared_ptr<const Ring> ring = MakeRing();
  return ring;
}

ShardId IntShard(int64_t key) { return TheRing()->Lookup(HashInt8(key)); }
ShardId TextShard(std::string_view key) { return TheRing()->Lookup(HashText(key)); }
ShardId UuidShard(std::string_view key) {
  auto u = ParseUuid(key);
  REQUIRE(u.has_value());
  return TheRing()->Lookup(HashUuid(*u));
}

CopyFormat Text() { return CopyFormat{false, '\t', '"', '"', "\\N", false}; }
CopyFormat Csv() { return CopyFormat{true, ',', '"', '"', "", false}; }
CopyFormat WithHeader(CopyFormat f) {
  f.header = true;
  return f;
}

CopySplit Key(int index, KeyType type = KeyType::kInt) {
  return CopySplit{index, "tenant_id", type};
}

std::span<const std::byte> Bytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// What a splitter produced: the CopyData payload each shard received (concatenated), the
// status of the first failing call (or of Finish), and the counters.
struct Result {
  absl::Status status;
  std::vector<std::string> shards;
  uint64_t rows = 0;
  std::vector<uint64_t> rows_to;
  // The most CopyData messages one shard got from one call.
  size_t max_messages_per_call = 0;

  friend bool operator==(const Result& a, const Result& b) {
    return a.status == b.status && a.shards == b.shards && a.rows == b.rows &&
           a.rows_to == b.rows_to;
  }
};

// Appends the payload of every CopyData message in `buf` to `payload` and returns how many
// messages there were; fails the test on anything that is not a well-formed CopyData.
size_t Drain(protocol::Buffer& buf, std::string& payload) {
  size_t messages = 0;
  while (!buf.empty()) {
    const protocol::FrameResult r = protocol::ParseTypedFrame(buf.Readable());
    REQUIRE(r.status == protocol::FrameStatus::kComplete);
    REQUIRE(r.frame.type == 'd');
    payload.append(reinterpret_cast<const char*>(r.frame.body.data()), r.frame.body.size());
    buf.Consume(r.frame.size);
    ++messages;
  }
  return messages;
}

// Feeds `input` cut at `cuts` (ascending offsets) as separate CopyData bodies, then Finish.
Result Run(const CopyFormat& format, const CopySplit& split, std::string_view input,
           const std::vector<size_t>& cuts = {},
           size_t max_row = CopySplitter::kDefaultMaxRowBytes) {
  CopySplitter splitter(format, split, TheRing(), max_row);
  std::vector<protocol::Buffer> out(TheRing()->shard_count());
  Result result;
  result.shards.resize(out.size());
  auto drain = [&] {
    for (size_t s = 0; s < out.size(); ++s) {
      result.max_messages_per_call =
          std::max(result.max_messages_per_call, Drain(out[s], result.shards[s]));
    }
  };
  size_t from = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(input.size());
  for (size_t end : ends) {
    result.status = splitter.Add(Bytes(input.substr(from, end - from)), out);
    drain();
    from = end;
    if (!result.status.ok()) break;
  }
  if (result.status.ok()) {
    result.status = splitter.Finish(out);
    drain();
  }
  result.rows = splitter.rows();
  for (uint32_t s = 0; s < out.size(); ++s) result.rows_to.push_back(splitter.rows_to(ShardId(s)));
  return result;
}

// Rows by shard as the test expects them.
struct Expected {
  std::vector<std::string> shards = std::vector<std::string>(3);
  uint64_t rows = 0;
  void Row(ShardId shard, std::string_view bytes) {
    shards[shard.value()] += bytes;
    ++rows;
  }
  void All(std::string_view bytes) {
    for (auto& s : shards) s += bytes;
  }
};

void CheckSame(const Result& got, const Expected& want) {
  REQUIRE(got.status.ok());
  CHECK(got.shards == want.shards);
  CHECK(got.rows == want.rows);
  uint64_t sum = 0;
  for (size_t s = 0; s < got.rows_to.size(); ++s) {
    sum += got.rows_to[s];
  }
  CHECK(sum == got.rows);
}

// Feeds `input` whole, cut once at every offset, byte by byte and cut at every pair of
// offsets (short inputs), and requires the same result every time.
void CheckEveryCut(const CopyFormat& format, const CopySplit& split, std::string_view input) {
  const Result whole = Run(format, split, input);
  for (size_t i = 0; i <= input.size(); ++i) {
    INFO("cut at " << i);
    REQUIRE(Run(format, split, input, {i}) == whole);
  }
  std::vector<size_t> each;
  for (size_t i = 1; i < input.size(); ++i) each.push_back(i);
  REQUIRE(Run(format, split, input, each) == whole);
  if (input.size() <= 120) {
    for (size_t i = 0; i <= input.size(); ++i) {
      for (size_t j = i; j <= input.size(); ++j) {
        INFO("cuts at " << i << " and " << j);
        REQUIRE(Run(format, split, input, {i, j}) == whole);
      }
    }
  }
}

std::string SqlState(const absl::Status& st) { return protocol::SqlStateOf(st); }
std::string Message(const absl::Status& st) { return std::string(protocol::MessageOf(st)); }

// ---- CopyFormatOf ---------------------------------------------------------------------------

CopyInfo CopyFrom(std::string format = "text") {
  CopyInfo c;
  c.is_from = true;
  c.stdio = true;
  c.table.name = "orders";
  c.format = std::move(format);
  return c;
}

TEST_CASE("CopyFormatOf fills in PostgreSQL's defaults", "[copy_split]") {
  auto text = CopyFormatOf(CopyFrom("text"));
  REQUIRE(text.ok());
  CHECK_FALSE(text->csv);
  CHECK(text->delimiter == '\t');
  CHECK(text->null_string == "\\N");
  CHECK_FALSE(text->header);

  CopyInfo c = CopyFrom("csv");
  c.header = true;
  auto csv = CopyFormatOf(c);
  REQUIRE(csv.ok());
  CHECK(csv->csv);
  CHECK(csv->delimiter == ',');
  CHECK(csv->quote == '"');
  CHECK(csv->escape == '"');
  CHECK(csv->null_string.empty());
  CHECK(csv->header);

  c.delimiter = ";";
  c.quote = "'";
  c.null_string = "NULL";
  csv = CopyFormatOf(c);
  REQUIRE(csv.ok());
  CHECK(csv->delimiter == ';');
  CHECK(csv->quote == '\'');
  CHECK(csv->escape == '\'');
  CHECK(csv->null_string == "NULL");

  c.escape = "\\";
  csv = CopyFormatOf(c);
  REQUIRE(csv.ok());
  CHECK(csv->escape == '\\');
  c.escape = "ab";
  CHECK_FALSE(CopyFormatOf(c).ok());
  CopyInfo text_escape = CopyFrom("text");
  text_escape.escape = "\\";
  CHECK_FALSE(CopyFormatOf(text_escape).ok());  // ESCAPE is for CSV only, as in PostgreSQL
}

TEST_CASE("CopyFormatOf rejects what cannot be split, naming the fix", "[copy_split]") {
  auto binary = CopyFormatOf(CopyFrom("binary"));
  REQUIRE_FALSE(binary.ok());
  CHECK(SqlState(binary.status()) == "0A000");
  CHECK(protocol::HintOf(binary.status()) == "use FORMAT text or FORMAT csv");

  CopyInfo wide = CopyFrom("csv");
  wide.delimiter = "||";
  auto multi = CopyFormatOf(wide);
  REQUIRE_FALSE(multi.ok());
  CHECK(SqlState(multi.status()) == "0A000");
  CHECK(Message(multi.status()) == "COPY delimiter must be a single one-byte character");
  CHECK_FALSE(protocol::HintOf(multi.status()).empty());

  CopyInfo to = CopyFrom();
  to.is_from = false;
  CHECK(SqlState(CopyFormatOf(to).status()) == "0A000");
  CopyInfo file = CopyFrom();
  file.stdio = false;
  CHECK(SqlState(CopyFormatOf(file).status()) == "0A000");

  CopyInfo text_quote = CopyFrom("text");
  text_quote.quote = "'";
  CHECK(SqlState(CopyFormatOf(text_quote).status()) == "0A000");
  CopyInfo long_quote = CopyFrom("csv");
  long_quote.quote = "''";
  CHECK(SqlState(CopyFormatOf(long_quote).status()) == "0A000");

  // Values PostgreSQL itself rejects keep its SQLSTATE and message.
  CopyInfo newline = CopyFrom();
  newline.delimiter = "\n";
  CHECK(SqlState(CopyFormatOf(newline).status()) == "22023");
  CopyInfo letter = CopyFrom("text");
  letter.delimiter = "a";
  CHECK(Message(CopyFormatOf(letter).status()) == "COPY delimiter cannot be \"a\"");
  letter.format = "csv";
  CHECK(CopyFormatOf(letter).ok());  // only text format reserves letters and digits
  CopyInfo same = CopyFrom("csv");
  same.delimiter = "\"";
  CHECK(SqlState(CopyFormatOf(same).status()) == "22023");
  CopyInfo null_delim = CopyFrom("csv");
  null_delim.null_string = "a,b";
  CHECK(SqlState(CopyFormatOf(null_delim).status()) == "22023");
  CopyInfo null_quote = CopyFrom("csv");
  null_quote.null_string = "\"";
  CHECK(SqlState(CopyFormatOf(null_quote).status()) == "22023");
  CopyInfo null_newline = CopyFrom();
  null_newline.null_string = "x\r";
  CHECK(SqlState(CopyFormatOf(null_newline).status()) == "22023");
  CHECK(SqlState(CopyFormatOf(CopyFrom("xml")).status()) == "22023");
}

// ---- Text format ----------------------------------------------------------------------------

TEST_CASE("text rows go to the owner of their key, unchanged and in order", "[copy_split]") {
  Expected want;
  std::string input;
  for (int k = 1; k <= 40; ++k) {
    const std::string row = fmt::format("{}\tnote {}\t{}\n", k, k, k * 3);
    input += row;
    want.Row(IntShard(k), row);
  }
  const Result got = Run(Text(), Key(0), input);
  CheckSame(got, want);
  CHECK(got.max_messages_per_call == 1);
  for (const std::string& s : got.shards) CHECK_FALSE(s.empty());  // 40 keys reach all 3
}

TEST_CASE("the key may be any field", "[copy_split]") {
  Expected want;
  std::string input;
  for (int k = -5; k <= 5; ++k) {
    const std::string row = fmt::format("a{}\t\\N\t{}\tz\n", k, k);
    input += row;
    want.Row(IntShard(k), row);
  }
  CheckSame(Run(Text(), Key(2), input), want);
  CheckEveryCut(Text(), Key(2), "a\tb\t7\tc\nx\t\\N\t-8\n\\\\\t\\t\t9\n");
}

TEST_CASE("text escapes are decoded in the key only", "[copy_split]") {
  struct Case {
    std::string field;
    std::string key;
  };
  const std::vector<Case> cases = {
      {"plain", "plain"},
      {"a\\tb", "a\tb"},
      {"a\\nb\\rc", "a\nb\rc"},
      {"\\b\\f\\v", "\b\f\v"},
      {"\\\\", "\\"},
      {"\\\\N", "\\N"},  // an escaped backslash: not the NULL string
      {"x\\N", "xN"},    // \N inside a longer field is the letter N
      {"\\101\\x42\\103", "ABC"},
      {"\\1012", "A2"},        // three octal digits at most
      {"\\x4a\\x4", "J\x04"},  // two hex digits at most, either case
      {"\\xg", "xg"},          // \x without a hex digit is x
      {"\\q\\,x", "q,x"},      // any other byte stands for itself
      {"a\\\tb", "a\tb"},      // an escaped delimiter does not end the field
  };
  for (const Case& c : cases) {
    INFO(c.field);
    const std::string row = "1\t" + c.field + "\tlast\n";
    Expected want;
    want.Row(TextShard(c.key), row);
    CheckSame(Run(Text(), Key(1, KeyType::kText), row), want);
  }
  // The NULL string is compared before de-escaping, as PostgreSQL does.
  CopyFormat custom = Text();
  custom.null_string = "\\x41";
  Expected want;
  want.Row(TextShard("NULLISH"), "NULLISH\n");
  CheckSame(Run(custom, Key(0, KeyType::kText), "NULLISH\n"), want);
  const Result null_key = Run(custom, Key(0, KeyType::kText), "\\x41\n");
  CHECK(SqlState(null_key.status) == "23502");
  Expected a;
  a.Row(TextShard("A"), "\\101\n");
  CheckSame(Run(custom, Key(0, KeyType::kText), "\\101\n"), a);
}

TEST_CASE("escapes around the key field keep field boundaries", "[copy_split]") {
  // Backslash-newline continues the row in text format (the old way to write a newline).
  const std::string row = "x\\\ny\t42\tz\\\n\n";
  Expected want;
  want.Row(IntShard(42), row);
  CheckSame(Run(Text(), Key(1), row), want);
  CheckEveryCut(Text(), Key(1), row + "a\\\tb\t7\t\\\\\n");

  // \x reads a hex digit even when it is the delimiter, so the row has one field.
  CopyFormat b = Text();
  b.delimiter = 'B';
  const Result hex = Run(b, Key(1), "\\x4B42\n");
  CHECK(SqlState(hex.status) == "22P04");
  Expected split;
  split.Row(IntShard(42), "\\x4QB42\n");
  CheckSame(Run(b, Key(1), "\\x4QB42\n"), split);
}

TEST_CASE("text NULL keys fail with 23502 and the line", "[copy_split]") {
  const Result got = Run(Text(), Key(1), "a\t1\nb\t2\nc\t\\N\nd\t4\n");
  REQUIRE_FALSE(got.status.ok());
  CHECK(SqlState(got.status) == "23502");
  CHECK(Message(got.status) ==
        "COPY line 3: null value in column \"tenant_id\" violates not-null constraint");
  CHECK_THAT(protocol::HintOf(got.status), Catch::Contains("shard key tenant_id"));
  CHECK(got.rows == 2);

  CopyFormat custom = Text();
  custom.null_string = "";
  CHECK(SqlState(Run(custom, Key(0, KeyType::kText), "\tx\n").status) == "23502");
  Expected want;
  want.Row(TextShard("\\N"), "\\\\N\n");
  CheckSame(Run(custom, Key(0, KeyType::kText), "\\\\N\n"), want);
  Expected n;
  n.Row(TextShard("N"), "\\N\n");
  CheckSame(Run(custom, Key(0, KeyType::kText), "\\N\n"), n);
}

TEST_CASE("text rows may end in \\r\\n or \\r, consistently", "[copy_split]") {
  Expected want;
  want.Row(IntShard(1), "1\ta\r\n");
  want.Row(IntShard(2), "2\tb\r\n");
  want.Row(IntShard(3), "3\tc");
  CheckSame(Run(Text(), Key(0), "1\ta\r\n2\tb\r\n3\tc"), want);
  CheckEveryCut(Text(), Key(0), "1\ta\r\n2\tb\r\n3\tc\r\n\\.\r\n");

  Expected cr;
  cr.Row(IntShard(1), "1\ta\r");
  cr.Row(IntShard(2), "2\tb\r");
  CheckSame(Run(Text(), Key(0), "1\ta\r2\tb\r"), cr);
  CheckEveryCut(Text(), Key(0), "1\ta\r2\tb\r3\r\\.\r");

  const Result mixed = Run(Text(), Key(0), "1\r\n2\n");
  CHECK(SqlState(mixed.status) == "22P04");
  CHECK(Message(mixed.status) == "COPY line 2: literal newline found in data");
  CHECK(protocol::HintOf(mixed.status) == "Use \"\\n\" to represent newline.");
  const Result stray = Run(Text(), Key(0), "1\n2\r3\n");
  CHECK(Message(stray.status) == "COPY line 2: literal carriage return found in data");
  const Result bare = Run(Text(), Key(0), "1\r\n2\r3\r\n");
  CHECK(Message(bare.status) == "COPY line 2: literal carriage return found in data");
  CHECK(SqlState(Run(Text(), Key(0), "1\r2\r\n").status) == "22P04");
}

TEST_CASE("\\. ends text data; what follows is dropped", "[copy_split]") {
  Expected want;
  want.Row(IntShard(1), "1\ta\n");
  want.Row(IntShard(2), "2\tb\n");
  const std::string input = "1\ta\n2\tb\n\\.\n3\tc\n";
  CheckSame(Run(Text(), Key(0), input), want);
  CheckEveryCut(Text(), Key(0), input);

  // Later messages are dropped too, even ones that would be errors.
  CopySplitter splitter(Text(), Key(0), TheRing());
  std::vector<protocol::Buffer> out(3);
  REQUIRE(splitter.Add(Bytes("1\ta\n\\.\n"), out).ok());
  CHECK(splitter.ended());
  REQUIRE(splitter.Add(Bytes("\\N\tb\n"), out).ok());
  REQUIRE(splitter.Finish(out).ok());
  CHECK(splitter.rows() == 1);

  // PostgreSQL 15 also ends text data at "\." after data on the same line: that data is the
  // last row, forwarded without the marker.
  Expected tail;
  tail.Row(IntShard(1), "1\ta\n");
  tail.Row(IntShard(2), "2\tb");
  CheckSame(Run(Text(), Key(0), "1\ta\n2\tb\\.\n3\n"), tail);

  // "\\." is an escaped backslash and a dot: data.
  Expected data;
  data.Row(TextShard("\\."), "\\\\.\n");
  CheckSame(Run(Text(), Key(0, KeyType::kText), "\\\\.\n"), data);

  CHECK(Message(Run(Text(), Key(0), "1\n\\.x\n").status) ==
        "COPY line 2: end-of-copy marker corrupt");
  CHECK(Message(Run(Text(), Key(0), "1\n\\.").status) == "COPY line 2: end-of-copy marker corrupt");
  CHECK(Message(Run(Text(), Key(0), "1\tq\\.x\n").status) ==
        "COPY line 1: end-of-copy marker corrupt");  // "\." is never data in text format
  CHECK(Message(Run(Text(), Key(0), "1\n\\.\r\n").status) ==
        "COPY line 2: end-of-copy marker does not match previous newline style");
  CHECK(Message(Run(Text(), Key(0), "1\r\n\\.\n").status) ==
        "COPY line 2: end-of-copy marker does not match previous newline style");
  CHECK(Run(Text(), Key(0), "\\.\n").status.ok());
  CHECK(Run(Text(), Key(0), "\\.\r\n").status.ok());
}

TEST_CASE("a last row without a line end is routed at Finish", "[copy_split]") {
  Expected want;
  want.Row(IntShard(1), "1\ta\n");
  want.Row(IntShard(7), "7\tb");
  CheckSame(Run(Text(), Key(0), "1\ta\n7\tb"), want);
  // A backslash just before the end is data (PostgreSQL drops it from the field).
  Expected bs;
  bs.Row(TextShard("ab"), "ab\\");
  CheckSame(Run(Text(), Key(0, KeyType::kText), "ab\\"), bs);
  CheckSame(Run(Text(), Key(0), ""), Expected{});
}

// ---- CSV ------------------------------------------------------------------------------------

TEST_CASE("CSV keys may be quoted, with delimiters, quotes and newlines inside", "[copy_split]") {
  struct Case {
    std::string field;
    std::string key;
  };
  const std::vector<Case> cases = {
      {"plain", "plain"},
      {"\"quoted\"", "quoted"},
      {"\"a,b\"", "a,b"},
      {"\"x\"\"y\"", "x\"y"},
      {"\"line1\nline2\"", "line1\nline2"},
      {"\"cr\r\nlf\"", "cr\r\nlf"},
      {"ab\"c,d\"e", "abc,de"},
      {"\"\"", ""},    // quoted empty string: not NULL
      {"\\.", "\\."},  // backslashes are plain data in CSV
      {" spaced ", " spaced "},
  };
  for (const Case& c : cases) {
    INFO(c.field);
    const std::string row = "\"first,\"\"x\"\"\"," + c.field + ",\"last\nline\"\n";
    Expected want;
    want.Row(TextShard(c.key), row);
    CheckSame(Run(Csv(), Key(1, KeyType::kText), row), want);
    CheckEveryCut(Csv(), Key(1, KeyType::kText), row + row);
  }
}

TEST_CASE("CSV with an escape different from the quote", "[copy_split]") {
  CopyFormat f = Csv();
  f.escape = '\\';
  Expected want;
  want.Row(TextShard("a\"b\\c"), "\"a\\\"b\\\\c\",1\n");
  want.Row(TextShard("x\\y"), "\"x\\y\",2\n");  // an escape before another byte is data
  const std::string input = "\"a\\\"b\\\\c\",1\n\"x\\y\",2\n";
  CheckSame(Run(f, Key(0, KeyType::kText), input), want);
  CheckEveryCut(f, Key(0, KeyType::kText), input);
  // \" does not close the quote, so the newline is inside the field.
  Expected nl;
  nl.Row(TextShard("a\"\nb"), "\"a\\\"\nb\",1\n");
  CheckSame(Run(f, Key(0, KeyType::kText), "\"a\\\"\nb\",1\n"), nl);
}

TEST_CASE("CSV NULL: an unquoted field equal to the NULL string", "[copy_split]") {
  const Result empty = Run(Csv(), Key(1, KeyType::kText), "a,x\nb,\n");
  CHECK(SqlState(empty.status) == "23502");
  CHECK(Message(empty.status) ==
        "COPY line 2: null value in column \"tenant_id\" violates not-null constraint");
  CHECK(SqlState(Run(Csv(), Key(0), "\n").status) == "23502");  // an empty line is one NULL field

  Expected quoted;
  quoted.Row(TextShard(""), "a,\"\"\n");
  CheckSame(Run(Csv(), Key(1, KeyType::kText), "a,\"\"\n"), quoted);

  CopyFormat f = Csv();
  f.null_string = "NULL";
  CHECK(SqlState(Run(f, Key(0, KeyType::kText), "NULL,1\n").status) == "23502");
  Expected q;
  q.Row(TextShard("NULL"), "\"NULL\",1\n");
  q.Row(TextShard(""), ",2\n");
  CheckSame(Run(f, Key(0, KeyType::kText), "\"NULL\",1\n,2\n"), q);
}

TEST_CASE("\\. alone on a line ends CSV data; elsewhere it is data", "[copy_split]") {
  Expected want;
  want.Row(IntShard(1), "a,1\n");
  want.Row(IntShard(5), "\\.x,5\n");
  want.Row(IntShard(6), "\"\\.\",6\n");
  want.Row(IntShard(8), "x\\.,8\n");
  const std::string input = "a,1\n\\.x,5\n\"\\.\",6\nx\\.,8\n\\.\nz,9\n";
  CheckSame(Run(Csv(), Key(1), input), want);
  CheckEveryCut(Csv(), Key(1), input);

  Expected crlf;
  crlf.Row(IntShard(1), "a,1\r\n");
  CheckSame(Run(Csv(), Key(1), "a,1\r\n\\.\r\nz,9\r\n"), crlf);
  CheckEveryCut(Csv(), Key(1), "a,1\r\n\\.x,2\r\n\\.\r\n");

  // At the very end, without a line end, "\." is a CSV data row.
  Expected last;
  last.Row(TextShard("\\."), "\\.");
  CheckSame(Run(Csv(), Key(0, KeyType::kText), "\\."), last);
  // "\." with another line end than the data's is data, then a stray newline (CRLF data), or
  // a marker in the wrong style (LF data), as PostgreSQL reads them.
  CHECK(Message(Run(Csv(), Key(1), "a,1\r\n\\.\n").status) ==
        "COPY line 2: unquoted newline found in data");
  CHECK(Message(Run(Csv(), Key(1), "a,1\n\\.\r\n").status) ==
        "COPY line 2: end-of-copy marker does not match previous newline style");
  CHECK(Message(Run(Csv(), Key(1), "a,1\r\n\\.\rx\r\n").status) ==
        "COPY line 2: unquoted carriage return found in data");
}

// ---- HEADER ---------------------------------------------------------------------------------

TEST_CASE("the header line goes to every shard, before any row", "[copy_split]") {
  Expected want;
  want.All("tenant_id\tnote\n");
  want.Row(IntShard(4), "4\tx\n");
  CheckSame(Run(WithHeader(Text()), Key(0), "tenant_id\tnote\n4\tx\n"), want);
  CheckEveryCut(WithHeader(Text()), Key(0), "tenant_id\tnote\n4\tx\n5\ty\n");

  // Sent in the call that completes it, even to shards that get no row.
  CopySplitter splitter(WithHeader(Csv()), Key(0), TheRing());
  std::vector<protocol::Buffer> out(3);
  REQUIRE(splitter.Add(Bytes("tenant"), out).ok());
  for (const auto& b : out) CHECK(b.empty());
  REQUIRE(splitter.Add(Bytes("_id,\"no\nte\"\n"), out).ok());
  for (auto& b : out) {
    std::string payload;
    CHECK(Drain(b, payload) == 1);
    CHECK(payload == "tenant_id,\"no\nte\"\n");
  }
  REQUIRE(splitter.Finish(out).ok());
  CHECK(splitter.rows() == 0);

  // A header is not a row: a NULL or invalid "key" in it is fine; a header without a line
  // end reaches every shard at Finish, unterminated quote and all.
  Expected header_only;
  header_only.All("\\N\tx");
  CheckSame(Run(WithHeader(Text()), Key(0), "\\N\tx"), header_only);
  Expected open_quote;
  open_quote.All("\"a,b");
  CheckSame(Run(WithHeader(Csv()), Key(0), "\"a,b"), open_quote);
  CheckSame(Run(WithHeader(Text()), Key(0), "\\.\n1\n"), Expected{});
  CheckSame(Run(WithHeader(Text()), Key(0), ""), Expected{});
}

// ---- Errors ---------------------------------------------------------------------------------

TEST_CASE("bad keys fail with PostgreSQL's SQLSTATE and the line number", "[copy_split]") {
  const Result missing = Run(WithHeader(Text()), Key(2), "h\n1\t2\t3\n1\t2\n");
  CHECK(SqlState(missing.status) == "22P04");
  CHECK(Message(missing.status) == "COPY line 3: missing data for column \"tenant_id\"");
  CHECK(missing.rows == 1);

  const Result syntax = Run(Text(), Key(0), "1\n2\nabc\n");
  CHECK(SqlState(syntax.status) == "22P02");
  CHECK(Message(syntax.status) ==
        "COPY line 3, column tenant_id: invalid input syntax for type bigint: \"abc\"");
  CHECK(SqlState(Run(Text(), Key(0), "99999999999999999999\n").status) == "22003");
  CHECK(Run(Text(), Key(0), " 42 \n").status.ok());  // as bigint input accepts
  const Result uuid = Run(Csv(), Key(0, KeyType::kUuid), "not-a-uuid\n");
  CHECK(SqlState(uuid.status) == "22P02");
  CHECK(Message(uuid.status) ==
        "COPY line 1, column tenant_id: invalid input syntax for type uuid: \"not-a-uuid\"");

  // CSV line numbers count the newlines inside quotes, as PostgreSQL's do (once it knows the
  // line end: inside the first row it counts "\r" only).
  const Result csv = Run(Csv(), Key(0), "0,z\n1,\"a\nb\nc\"\n2,x\n,y\n");
  CHECK(Message(csv.status) ==
        "COPY line 6: null value in column \"tenant_id\" violates not-null constraint");
  const Result first = Run(Csv(), Key(0), "1,\"a\nb\nc\"\n,y\n");
  CHECK(Message(first.status) ==
        "COPY line 2: null value in column \"tenant_id\" violates not-null constraint");
  const Result crlf = Run(Csv(), Key(0), "1,\"a\r\nb\"\r\n,y\r\n");
  CHECK(Message(crlf.status) ==
        "COPY line 3: null value in column \"tenant_id\" violates not-null constraint");

  const Result open = Run(Csv(), Key(0), "1,a\n2,\"never closed\n3,b\n");
  CHECK(SqlState(open.status) == "22P04");
  CHECK(Message(open.status) == "COPY line 4: unterminated CSV quoted field");
  CHECK(open.rows == 1);
  const Result open_key = Run(Csv(), Key(1), "1,\"ab");
  CHECK(Message(open_key.status) == "COPY line 1: unterminated CSV quoted field");
  // The escaped quote keeps the newline and the comma inside one field: the row has a single
  // field (PostgreSQL 15 says the same for this input).
  CopyFormat esc = Csv();
  esc.escape = '\\';
  CHECK(Message(Run(esc, Key(1), "\"a\\\"\n,1\"x\n").status) ==
        "COPY line 1: missing data for column \"tenant_id\"");
}

TEST_CASE("after an error every call returns it", "[copy_split]") {
  CopySplitter splitter(Text(), Key(0), TheRing());
  std::vector<protocol::Buffer> out(3);
  REQUIRE(splitter.Add(Bytes("1\n2\nbad\n3\n"), out).ok() == false);
  const absl::Status first = splitter.Add(Bytes("4\n"), out);
  CHECK(SqlState(first) == "22P02");
  CHECK(splitter.Add(Bytes("5\n"), out) == first);
  CHECK(splitter.Finish(out) == first);
  CHECK(splitter.rows() == 2);
  // The rows before the error went out in well-formed messages.
  uint64_t rows = 0;
  for (auto& b : out) {
    std::string payload;
    Drain(b, payload);
    rows += std::count(payload.begin(), payload.end(), '\n');
  }
  CHECK(rows == 2);
}

TEST_CASE("a row longer than the limit fails with 54000", "[copy_split]") {
  const std::string big(100, 'x');
  // Complete within one call: nothing is kept.
  CHECK(Run(Text(), Key(0, KeyType::kText), big + "\n", {}, 64).status.ok());
  const Result got = Run(Text(), Key(0, KeyType::kText), big + "\n", {50, 90}, 64);
  CHECK(SqlState(got.status) == "54000");
  CHECK(Run(Text(), Key(0, KeyType::kText), big + "\n", {50, 90}, 100).status.ok());
}

TEST_CASE("misuse is reported, not undefined", "[copy_split]") {
  CopySplitter splitter(Text(), Key(0), TheRing());
  std::vector<protocol::Buffer> two(2);
  CHECK(SqlState(splitter.Add(Bytes("1\n"), two)) == "XX000");
  std::vector<protocol::Buffer> out(3);
  REQUIRE(splitter.Add(Bytes("1\n"), out).ok());
  REQUIRE(splitter.Finish(out).ok());
  REQUIRE(splitter.Finish(out).ok());  // twice is fine
  CHECK(SqlState(splitter.Add(Bytes("2\n"), out)) == "XX000");
  CHECK(splitter.rows() == 1);
  CHECK(splitter.rows_to(ShardId(7)) == 0);
}

// ---- Key types and volume -------------------------------------------------------------------

TEST_CASE("text and uuid keys hash as the router hashes them", "[copy_split]") {
  const std::vector<std::string> uuids = {
      "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "{a0eebc999c0b4ef8bb6d6bb9bd380a12}",
      "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A13", "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a14"};
  Expected want;
  std::string input;
  for (size_t i = 0; i < uuids.size(); ++i) {
    const std::string row = fmt::format("{},\"{}\",{}\n", i, uuids[i], i);
    input += row;
    want.Row(UuidShard(uuids[i]), row);
  }
  CheckSame(Run(Csv(), Key(1, KeyType::kUuid), input), want);

  Expected text;
  std::string rows;
  for (const std::string key : {"alice@example.com", "Bob", "", "ünïcödé", "tab\there"}) {
    std::string escaped;
    for (char c : key) escaped += c == '\t' ? std::string("\\t") : std::string(1, c);
    const std::string row = escaped + "\t1\n";
    rows += row;
    text.Row(TextShard(key), row);
  }
  CheckSame(Run(Text(), Key(0, KeyType::kText), rows), text);
}

TEST_CASE("100,000 rows over three shards land once each", "[copy_split]") {
  std::string input = "tenant_id,payload\n";
  for (int k = 0; k < 100000; ++k)
    input += fmt::format("{},\"row {}, quoted\"\n", k * 7919 - 50000, k);
  // Cut into messages of 8 KiB, not aligned to rows.
  std::vector<size_t> cuts;
  for (size_t at = 8192; at < input.size(); at += 8192) cuts.push_back(at);
  const Result got = Run(WithHeader(Csv()), Key(0), input, cuts);
  REQUIRE(got.status.ok());
  CHECK(got.rows == 100000);
  CHECK(got.max_messages_per_call == 1);
  std::set<int64_t> seen;
  for (uint32_t s = 0; s < 3; ++s) {
    std::string_view payload = got.shards[s];
    const std::string_view header = "tenant_id,payload\n";
    REQUIRE(payload.substr(0, header.size()) == header);
    payload.remove_prefix(header.size());
    uint64_t count = 0;
    while (!payload.empty()) {
      const size_t comma = payload.find(',');
      const size_t nl = payload.find('\n');
      REQUIRE(comma < nl);
      const int64_t key = std::stoll(std::string(payload.substr(0, comma)));
      CHECK(IntShard(key) == ShardId(s));
      CHECK(seen.insert(key).second);
      payload.remove_prefix(nl + 1);
      ++count;
    }
    CHECK(count == got.rows_to[s]);
    CHECK(count > 20000);  // 64 vnodes per shard spread the keys
  }
  CHECK(seen.size() == 100000);
}

// ---- Framing --------------------------------------------------------------------------------

TEST_CASE("messages are appended after what the buffers already hold", "[copy_split]") {
  CopySplitter splitter(Text(), Key(0), TheRing());
  std::vector<protocol::Buffer> out(3);
  for (auto& b : out) {
    b.Append(std::string_view("prefix"));
    b.Consume(2);  // a read position that is not 0
  }
  REQUIRE(splitter.Add(Bytes("1\n2\n3\n4\n5\n6\n"), out).ok());
  REQUIRE(splitter.Add(Bytes(""), out).ok());  // an empty message adds nothing
  for (uint32_t s = 0; s < 3; ++s) {
    auto& b = out[s];
    REQUIRE(b.size() >= 4);
    CHECK(std::string_view(reinterpret_cast<const char*>(b.Readable().data()), 4) == "efix");
    b.Consume(4);
    std::string payload;
    const size_t messages = Drain(b, payload);
    CHECK(messages == (splitter.rows_to(ShardId(s)) > 0 ? 1u : 0u));
    for (char k = '1'; k <= '6'; ++k) {
      const bool here = IntShard(k - '0') == ShardId(s);
      CHECK((payload.find(std::string(1, k) + "\n") != std::string::npos) == here);
    }
  }
}

// ---- Random input ---------------------------------------------------------------------------

TEST_CASE("random input splits the same however it is cut", "[copy_split]") {
  std::mt19937 rng(20240601);
  const std::string alphabet = "01234\t,\"\\.\n\rNx;";
  for (int iteration = 0; iteration < 3000; ++iteration) {
    CopyFormat format = iteration % 2 == 0 ? Text() : Csv();
    if (iteration % 5 == 0) format.header = true;
    if (iteration % 7 == 0 && format.csv) format.escape = '\\';
    if (iteration % 11 == 0) format.delimiter = ';';
    const KeyType type = iteration % 3 == 0 ? KeyType::kInt : KeyType::kText;
    const CopySplit split = Key(static_cast<int>(rng() % 3), type);
    std::string input(rng() % 40, ' ');
    for (char& c : input) c = alphabet[rng() % alphabet.size()];
    const Result whole = Run(format, split, input);
    for (int k = 0; k < 4; ++k) {
      std::vector<size_t> cuts = {rng() % (input.size() + 1), rng() % (input.size() + 1)};
      std::sort(cuts.begin(), cuts.end());
      INFO("input " << input << " cuts " << cuts[0] << " " << cuts[1]);
      REQUIRE(Run(format, split, input, cuts) == whole);
    }
    std::vector<size_t> each;
    for (size_t i = 1; i < input.size(); ++i) each.push_back(i);
    REQUIRE(Run(format, split, input, each) == whole);
    if (whole.status.ok()) {
      // Every forwarded byte came from the input, none twice.
      size_t forwarded = 0;
      for (const std::string& s : whole.shards) forwarded += s.size();
      CHECK(forwarded <= input.size() * (format.header ? 3 : 1));
    }
  }
}

}  // namespace
}  // namespace pgring::sharding
