#include "protocol/frame.h"

#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "protocol/buffer.h"
#include "protocol/messages.h"
#include "test_util.h"

namespace pgring::protocol {
namespace {

using testing::AsBytes;
using testing::AsString;
using testing::Wire;

TEST_CASE("ParseTypedFrame: empty input and one byte need more", "[frame]") {
  CHECK(ParseTypedFrame({}).status == FrameStatus::kNeedMore);
  CHECK(ParseTypedFrame(AsBytes("Q")).status == FrameStatus::kNeedMore);
  // Type byte and part of the length.
  CHECK(ParseTypedFrame(AsBytes(std::string("Q\0\0\0", 4))).status == FrameStatus::kNeedMore);
}

TEST_CASE("ParseTypedFrame: header only is a complete empty frame", "[frame]") {
  const std::string buf = Wire().Frame('S');
  REQUIRE(buf.size() == 5);
  FrameResult r = ParseTypedFrame(AsBytes(buf));
  REQUIRE(r.status == FrameStatus::kComplete);
  CHECK(r.frame.type == 'S');
  CHECK(r.frame.body.empty());
  CHECK(r.frame.size == 5);
  CHECK(r.declared_length == 4);
  CHECK(r.frame.raw.data() == AsBytes(buf).data());
  CHECK(r.frame.raw.size() == 5);
}

TEST_CASE("ParseTypedFrame: body and raw cover exactly the frame", "[frame]") {
  const std::string frame = Wire().Str("select 1").Frame('Q');
  const std::string buf = frame + "trailing";
  FrameResult r = ParseTypedFrame(AsBytes(buf));
  REQUIRE(r.status == FrameStatus::kComplete);
  CHECK(r.frame.type == 'Q');
  CHECK(AsString(r.frame.body) == std::string("select 1\0", 9));
  CHECK(r.frame.size == frame.size());
  CHECK(AsString(r.frame.raw) == frame);
  CHECK(r.frame.body.data() == AsBytes(buf).data() + 5);
}

TEST_CASE("ParseTypedFrame: length below 4 is invalid", "[frame]") {
  for (int len : {0, 1, 2, 3}) {
    const std::string buf = Wire().U8('Q').I32(len).Raw("xxxx").str();
    FrameResult r = ParseTypedFrame(AsBytes(buf));
    CHECK(r.status == FrameStatus::kInvalid);
    CHECK(r.declared_length == static_cast<uint32_t>(len));
  }
  // A negative Int32 is a huge unsigned length: invalid too.
  const std::string neg = Wire().U8('Q').I32(-1).str();
  CHECK(ParseTypedFrame(AsBytes(neg)).status == FrameStatus::kInvalid);
}

TEST_CASE("ParseTypedFrame: oversized length is invalid before any body arrives", "[frame]") {
  // Only the 5 header bytes of a 1 GB message: rejected at once, not kNeedMore.
  const std::string buf = Wire().U8('D').I32(1 << 30).str();
  FrameResult r = ParseTypedFrame(AsBytes(buf));
  CHECK(r.status == FrameStatus::kInvalid);
  CHECK(r.declared_length == (1u << 30));
  // The default maximum is 256 MiB inclusive.
  const std::string at_max = Wire().U8('D').I32(kDefaultMaxMessage).str();
  CHECK(ParseTypedFrame(AsBytes(at_max)).status == FrameStatus::kNeedMore);
  const std::string over_max = Wire().U8('D').I32(kDefaultMaxMessage + 1).str();
  CHECK(ParseTypedFrame(AsBytes(over_max)).status == FrameStatus::kInvalid);
  // A caller-supplied maximum is honoured.
  const std::string small = Wire().Raw("0123456789").Frame('d');  // len 14
  CHECK(ParseTypedFrame(AsBytes(small), 13).status == FrameStatus::kInvalid);
  CHECK(ParseTypedFrame(AsBytes(small), 14).status == FrameStatus::kComplete);
}

TEST_CASE("ParseTypedFrame: a prefix of a frame needs more", "[frame]") {
  const std::string frame = Wire().Str("select 1").Frame('Q');
  for (size_t n = 0; n < frame.size(); ++n) {
    INFO("prefix " << n);
    CHECK(ParseTypedFrame(AsBytes(frame).first(n)).status == FrameStatus::kNeedMore);
  }
  CHECK(ParseTypedFrame(AsBytes(frame)).status == FrameStatus::kComplete);
}

TEST_CASE("ParseTypedFrame: two frames in one buffer", "[frame]") {
  const std::string a = Wire().Str("select 1").Frame('Q');
  const std::string b = Wire().Frame('S');
  const std::string buf = a + b;
  auto bytes = AsBytes(buf);
  FrameResult r1 = ParseTypedFrame(bytes);
  REQUIRE(r1.status == FrameStatus::kComplete);
  CHECK(r1.frame.type == 'Q');
  CHECK(r1.frame.size == a.size());
  FrameResult r2 = ParseTypedFrame(bytes.subspan(r1.frame.size));
  REQUIRE(r2.status == FrameStatus::kComplete);
  CHECK(r2.frame.type == 'S');
  CHECK(r2.frame.size == b.size());
  CHECK(ParseTypedFrame(bytes.subspan(r1.frame.size + r2.frame.size)).status ==
        FrameStatus::kNeedMore);
}

TEST_CASE("ParseTypedFrame: byte-by-byte stream yields frames exactly when complete", "[frame]") {
  Buffer out;
  WriteParse(out, "s1", "select $1", std::vector<uint32_t>{23});
  WriteBind(out, "", "s1", AsBytes(Wire().I16(0).I16(1).I32(1).Raw("7").I16(0).str()));
  WriteExecute(out, "", 0);
  WriteSync(out);
  WriteQuery(out, "");
  const std::string stream = AsString(out);
  // Where each frame ends, found by walking the hand-known lengths.
  std::vector<size_t> ends;
  for (size_t pos = 0; pos < stream.size();) {
    FrameResult r = ParseTypedFrame(AsBytes(stream).subspan(pos));
    REQUIRE(r.status == FrameStatus::kComplete);
    pos += r.frame.size;
    ends.push_back(pos);
  }
  REQUIRE(ends.size() == 5);

  Buffer in;
  std::vector<char> types;
  std::vector<size_t> seen_at;
  for (size_t i = 0; i < stream.size(); ++i) {
    in.Append(std::string_view(&stream[i], 1));
    for (;;) {
      FrameResult r = ParseTypedFrame(in.Readable());
      REQUIRE(r.status != FrameStatus::kInvalid);
      if (r.status == FrameStatus::kNeedMore) break;
      types.push_back(r.frame.type);
      seen_at.push_back(i + 1);
      if (r.frame.type == fe::kParse) {
        auto p = ParseParse(r.frame.body);
        REQUIRE(p);
        CHECK(p->name == "s1");
        CHECK(p->ParamType(0) == 23);
      }
      in.Consume(r.frame.size);
    }
  }
  CHECK(types == std::vector<char>{'P', 'B', 'E', 'S', 'Q'});
  CHECK(seen_at == ends);
  CHECK(in.empty());
}

TEST_CASE("ParseStartupFrame: limits and prefixes", "[frame]") {
  CHECK(ParseStartupFrame({}).status == FrameStatus::kNeedMore);
  CHECK(ParseStartupFrame(AsBytes(std::string(1, '\0'))).status == FrameStatus::kNeedMore);
  CHECK(ParseStartupFrame(AsBytes(std::string(3, '\0'))).status == FrameStatus::kNeedMore);

  // Header only: length 4 and no body.
  const std::string header_only = Wire().Frame(0);
  FrameResult h = ParseStartupFrame(AsBytes(header_only));
  REQUIRE(h.status == FrameStatus::kComplete);
  CHECK(h.frame.type == 0);
  CHECK(h.frame.body.empty());
  CHECK(h.frame.size == 4);

  for (int len : {0, 3}) {
    CHECK(ParseStartupFrame(Wire().I32(len).bytes()).status == FrameStatus::kInvalid);
  }
  // PostgreSQL's limit: 10000 bytes including the length.
  CHECK(ParseStartupFrame(Wire().I32(10000).bytes()).status == FrameStatus::kNeedMore);
  CHECK(ParseStartupFrame(Wire().I32(10001).bytes()).status == FrameStatus::kInvalid);
  CHECK(ParseStartupFrame(Wire().I32(1 << 30).bytes()).status == FrameStatus::kInvalid);

  Buffer out;
  WriteSslRequest(out);
  const std::pair<std::string_view, std::string_view> params[] = {{"user", "alice"}};
  WriteStartupMessage(out, params);
  const std::string stream = AsString(out);
  FrameResult r1 = ParseStartupFrame(AsBytes(stream));
  REQUIRE(r1.status == FrameStatus::kComplete);
  CHECK(r1.frame.size == 8);
  CHECK(AsString(r1.frame.raw) == stream.substr(0, 8));
  FrameResult r2 = ParseStartupFrame(AsBytes(stream).subspan(8));
  REQUIRE(r2.status == FrameStatus::kComplete);
  CHECK(r2.frame.size == stream.size() - 8);
  for (size_t n = 8; n < stream.size(); ++n) {
    CHECK(ParseStartupFrame(AsBytes(stream).subspan(8, n - 8)).status == FrameStatus::kNeedMore);
  }
}

TEST_CASE("ParseTypedFrame/ParseStartupFrame: 10,000 random buffers", "[frame][random]") {
  std::mt19937 rng(20240611);
  for (int i = 0; i < 10000; ++i) {
    std::string s = testing::RandomBody(rng, 40);
    // Make small plausible lengths common.
    if (s.size() >= 5 && i % 2 == 0) s[1] = s[2] = s[3] = '\0';
    auto bytes = AsBytes(s);
    const std::pair<FrameResult, size_t> results[] = {{ParseTypedFrame(bytes, 64), 1},
                                                      {ParseStartupFrame(bytes, 64), 0}};
    for (const auto& [r, header] : results) {
      if (r.status == FrameStatus::kInvalid) {
        REQUIRE((r.declared_length < 4 || r.declared_length > 64));
      }
      if (r.status != FrameStatus::kComplete) continue;
      REQUIRE(r.frame.size <= s.size());
      REQUIRE(r.frame.size == header + r.declared_length);
      REQUIRE(r.frame.body.size() == r.declared_length - 4);
      REQUIRE(testing::Within(r.frame.body, bytes));
      REQUIRE(r.frame.raw.data() == bytes.data());
    }
  }
}

}  // namespace
}  // namespace pgring::protocol
