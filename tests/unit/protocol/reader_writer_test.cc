#include <catch2/catch.hpp>
#include <limits>
#include <random>
#include <string>

#include "protocol/buffer.h"
#include "protocol/frame.h"
#include "protocol/reader.h"
#include "protocol/writer.h"
#include "test_util.h"

namespace pgring::protocol {
namespace {

using testing::AsBytes;
using testing::AsString;
using testing::Wire;

TEST_CASE("Reader: network byte order and signed values", "[reader]") {
  const std::string data = Wire()
                               .U8(0xab)
                               .I16(0x1234)
                               .I16(-2)
                               .I32(0x01020304)
                               .I32(-1)
                               .Raw(std::string("\x80\0\0\0\0\0\0\x01", 8))
                               .str();
  Reader r(AsBytes(data));
  CHECK(r.Byte() == 0xab);
  CHECK(r.Int16() == 0x1234);
  CHECK(r.Int16() == -2);
  CHECK(r.Int32() == 0x01020304);
  CHECK(r.Int32() == -1);
  CHECK(r.Int64() == std::numeric_limits<int64_t>::min() + 1);
  CHECK(r.AtEnd());
  CHECK(r.position() == data.size());
}

TEST_CASE("Reader: never reads past the end and does not advance on failure", "[reader]") {
  Reader empty({});
  CHECK_FALSE(empty.Byte());
  CHECK_FALSE(empty.Int16());
  CHECK_FALSE(empty.Int32());
  CHECK_FALSE(empty.Int64());
  CHECK_FALSE(empty.CString());
  CHECK_FALSE(empty.Bytes(1));
  CHECK(empty.Bytes(0).has_value());
  CHECK(empty.Rest().empty());

  const std::string data = "abc";
  Reader r(AsBytes(data));
  CHECK_FALSE(r.Int32());
  CHECK_FALSE(r.Int64());
  CHECK_FALSE(r.CString());  // no NUL
  CHECK_FALSE(r.Bytes(4));
  CHECK(r.position() == 0);
  CHECK(r.Int16() == 0x6162);
  CHECK_FALSE(r.Int16());
  CHECK(r.remaining() == 1);
  CHECK(r.Byte() == 'c');
  CHECK(r.AtEnd());
}

TEST_CASE("Reader: CString excludes the NUL and borrows", "[reader]") {
  const std::string data("user\0\0x", 7);
  Reader r(AsBytes(data));
  auto a = r.CString();
  REQUIRE(a);
  CHECK(*a == "user");
  CHECK(a->data() == data.data());
  auto b = r.CString();
  REQUIRE(b);
  CHECK(b->empty());
  CHECK(b->data() == data.data() + 5);
  CHECK_FALSE(r.CString());  // "x" without NUL
  CHECK(r.remaining() == 1);
  auto rest = r.Rest();
  CHECK(AsString(rest) == "x");
  CHECK(r.AtEnd());
}

TEST_CASE("Reader: Bytes of exact size and size_t overflow", "[reader]") {
  const std::string data = "0123456789";
  Reader r(AsBytes(data));
  auto b = r.Bytes(4);
  REQUIRE(b);
  CHECK(AsString(*b) == "0123");
  CHECK_FALSE(r.Bytes(SIZE_MAX));
  CHECK_FALSE(r.Bytes(7));
  auto c = r.Bytes(6);
  REQUIRE(c);
  CHECK(AsString(*c) == "456789");
}

TEST_CASE("MessageWriter: typed and untyped messages", "[writer]") {
  Buffer out;
  MessageWriter w(out);
  w.Begin('Z');
  w.Byte('I');
  w.End();
  CHECK(AsString(out) == std::string("Z\0\0\0\x05I", 6));

  out.Clear();
  w.Begin(0);
  w.Int32(80877103);
  w.End();
  CHECK(AsString(out) == std::string("\0\0\0\x08\x04\xd2\x16\x2f", 8));

  out.Clear();
  w.Begin('x');
  w.Int16(-2);
  w.Int32(-3);
  w.Int64(0x0102030405060708);
  w.CString("ab");
  w.Bytes(std::string_view("cd"));
  w.Bytes(AsBytes("ef"));
  w.End();
  CHECK(AsString(out) == Wire()
                             .I16(-2)
                             .I32(-3)
                             .Raw("\x01\x02\x03\x04\x05\x06\x07\x08")
                             .Str("ab")
                             .Raw("cdef")
                             .Frame('x'));
}

TEST_CASE("MessageWriter: CString cuts at an embedded NUL", "[writer]") {
  Buffer out;
  MessageWriter w(out);
  w.Begin('Q');
  w.CString(std::string_view("sel\0ect", 7));
  w.End();
  CHECK(AsString(out) == Wire().Str("sel").Frame('Q'));
}

TEST_CASE("MessageWriter: length survives buffer growth and compaction", "[writer]") {
  Buffer out;
  out.Append(std::string(300, 'a'));
  out.Consume(200);  // read position > 0: the next growth compacts first
  MessageWriter w(out);
  w.Begin('d');
  const std::string big(100000, 'b');
  for (size_t i = 0; i < big.size(); i += 1000) w.Bytes(std::string_view(big).substr(i, 1000));
  w.End();
  auto readable = out.Readable();
  REQUIRE(readable.size() == 100 + 1 + 4 + big.size());
  FrameResult r = ParseTypedFrame(readable.subspan(100));
  REQUIRE(r.status == FrameStatus::kComplete);
  CHECK(r.frame.type == 'd');
  CHECK(r.declared_length == 4 + big.size());
  CHECK(AsString(r.frame.body) == big);
}

TEST_CASE("MessageWriter: several messages back to back", "[writer]") {
  Buffer out;
  MessageWriter w(out);
  for (int i = 0; i < 100; ++i) {
    w.Begin('D');
    w.Int32(i);
    w.End();
  }
  auto bytes = out.Readable();
  for (int i = 0; i < 100; ++i) {
    FrameResult r = ParseTypedFrame(bytes);
    REQUIRE(r.status == FrameStatus::kComplete);
    Reader rd(r.frame.body);
    CHECK(rd.Int32() == i);
    CHECK(rd.AtEnd());
    bytes = bytes.subspan(r.frame.size);
  }
  CHECK(bytes.empty());
}

TEST_CASE("Reader: 10,000 random buffers", "[reader][random]") {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> op(0, 6);
  for (int i = 0; i < 10000; ++i) {
    const std::string s = testing::RandomBody(rng, 32);
    Reader r(AsBytes(s));
    for (int step = 0; step < 16; ++step) {
      const size_t before = r.position();
      bool ok = false;
      size_t want = 0;
      switch (op(rng)) {
        case 0:
          ok = r.Byte().has_value();
          want = 1;
          break;
        case 1:
          ok = r.Int16().has_value();
          want = 2;
          break;
        case 2:
          ok = r.Int32().has_value();
          want = 4;
          break;
        case 3:
          ok = r.Int64().has_value();
          want = 8;
          break;
        case 4: {
          auto c = r.CString();
          ok = c.has_value();
          if (ok) {
            REQUIRE(testing::Within(*c, AsBytes(s)));
            want = c->size() + 1;
          } else {
            REQUIRE(s.find('\0', before) == std::string::npos);
            want = s.size() - before + 1;  // "one more byte than there is"
          }
          break;
        }
        case 5: {
          want = static_cast<size_t>(step) * 3;
          auto b = r.Bytes(want);
          ok = b.has_value();
          if (ok) REQUIRE(testing::Within(*b, AsBytes(s)));
          break;
        }
        default:
          want = r.remaining();
          ok = true;
          r.Rest();
          break;
      }
      REQUIRE(r.position() <= s.size());
      REQUIRE(r.position() == (ok ? before + want : before));
      if (!ok) REQUIRE(before + want > s.size());
    }
  }
}

}  // namespace
}  // namespace pgring::protocol
