#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "protocol/buffer.h"
#include "protocol/frame.h"
#include "protocol/messages.h"
#include "test_util.h"

namespace pgring::protocol {
namespace {

using testing::AsBytes;
using testing::AsString;
using testing::Wire;

// Only for checks of kind and success: the result borrows from `w`, which may be a temporary.
std::optional<StartupPacket> ParseBody(const Wire& w) { return ParseStartupPacket(w.bytes()); }

TEST_CASE("ParseStartupPacket: empty, one byte and short bodies", "[startup]") {
  CHECK_FALSE(ParseStartupPacket({}));
  CHECK_FALSE(ParseStartupPacket(AsBytes(std::string(1, '\x03'))));
  CHECK_FALSE(ParseStartupPacket(AsBytes(std::string("\0\x03\0", 3))));
  // Header only (a frame of length 4) has an empty body.
  FrameResult r = ParseStartupFrame(AsBytes(Wire().Frame(0)));
  REQUIRE(r.status == FrameStatus::kComplete);
  CHECK_FALSE(ParseStartupPacket(r.frame.body));
}

TEST_CASE("ParseStartupPacket: StartupMessage parameters", "[startup]") {
  Wire w;
  w.I32(kProtocolVersion3).Str("user").Str("alice").Str("database").Str("shop");
  w.Str("options").Str("").U8(0);
  auto p = ParseBody(w);
  REQUIRE(p);
  CHECK(p->kind == StartupKind::kStartup);
  CHECK(p->startup.protocol_version == kProtocolVersion3);
  REQUIRE(p->startup.params.size() == 3);
  CHECK(p->startup.Get("user") == "alice");
  CHECK(p->startup.Get("database") == "shop");
  CHECK(p->startup.Get("options").empty());
  CHECK(p->startup.Get("application_name").empty());
  CHECK(testing::Within(p->startup.params[0].second, w.bytes()));
}

TEST_CASE("ParseStartupPacket: no parameters and no user are allowed here", "[startup]") {
  auto none = ParseBody(Wire().I32(kProtocolVersion3).U8(0));
  REQUIRE(none);
  CHECK(none->kind == StartupKind::kStartup);
  CHECK(none->startup.params.empty());
  const Wire w = Wire().I32(kProtocolVersion3).Str("database").Str("d").U8(0);
  auto no_user = ParseStartupPacket(w.bytes());
  REQUIRE(no_user);
  CHECK(no_user->startup.Get("database") == "d");
  CHECK(no_user->startup.Get("user").empty());
}

TEST_CASE("ParseStartupPacket: malformed parameter lists", "[startup]") {
  // No terminator after the last pair.
  CHECK_FALSE(ParseBody(Wire().I32(kProtocolVersion3).Str("user").Str("alice")));
  // Nothing at all after the version.
  CHECK_FALSE(ParseBody(Wire().I32(kProtocolVersion3)));
  // Odd list: a key without a value.
  CHECK_FALSE(ParseBody(Wire().I32(kProtocolVersion3).Str("user")));
  CHECK_FALSE(ParseBody(Wire().I32(kProtocolVersion3).Str("user").Str("a").Str("database")));
  // Missing NUL inside a value.
  CHECK_FALSE(ParseBody(Wire().I32(kProtocolVersion3).Str("user").Raw("ali")));
  // Bytes after the terminator.
  CHECK_FALSE(ParseBody(Wire().I32(kProtocolVersion3).Str("user").Str("a").U8(0).Raw("x")));
  CHECK_FALSE(ParseBody(Wire().I32(kProtocolVersion3).U8(0).U8(0)));
}

TEST_CASE("ParseStartupPacket: SSLRequest, GSSENCRequest, CancelRequest", "[startup]") {
  auto ssl = ParseBody(Wire().I32(kSslRequestCode));
  REQUIRE(ssl);
  CHECK(ssl->kind == StartupKind::kSslRequest);
  CHECK_FALSE(ParseBody(Wire().I32(kSslRequestCode).U8(0)));

  auto gss = ParseBody(Wire().I32(kGssEncRequestCode));
  REQUIRE(gss);
  CHECK(gss->kind == StartupKind::kGssEncRequest);
  CHECK_FALSE(ParseBody(Wire().I32(kGssEncRequestCode).I32(0)));

  auto cancel = ParseBody(Wire().I32(kCancelRequestCode).I32(4242).I32(-17));
  REQUIRE(cancel);
  CHECK(cancel->kind == StartupKind::kCancel);
  CHECK(cancel->cancel.pid == 4242);
  CHECK(cancel->cancel.secret == -17);
  CHECK_FALSE(ParseBody(Wire().I32(kCancelRequestCode).I32(4242)));
  CHECK_FALSE(ParseBody(Wire().I32(kCancelRequestCode).I32(1).I32(2).U8(0)));
}

TEST_CASE("ParseStartupPacket: other versions are reported, not parsed as 3.0", "[startup]") {
  auto v2 = ParseBody(Wire().I32(2 << 16).Raw(std::string(64, 'x')));
  REQUIRE(v2);
  CHECK(v2->kind == StartupKind::kUnsupportedVersion);
  CHECK(v2->startup.protocol_version == (2 << 16));

  auto v4 = ParseBody(Wire().I32(4 << 16));
  REQUIRE(v4);
  CHECK(v4->kind == StartupKind::kUnsupportedVersion);
  CHECK(v4->startup.protocol_version == (4 << 16));

  // 3.2: parameters parsed, so the caller can negotiate down to 3.0.
  const Wire w32 = Wire().I32((3 << 16) | 2).Str("user").Str("bob").Str("_pq_.x").Str("1").U8(0);
  auto v32 = ParseStartupPacket(w32.bytes());
  REQUIRE(v32);
  CHECK(v32->kind == StartupKind::kUnsupportedVersion);
  CHECK(v32->startup.protocol_version == ((3 << 16) | 2));
  CHECK(v32->startup.Get("user") == "bob");
  CHECK_FALSE(ParseBody(Wire().I32((3 << 16) | 2).Str("user")));

  auto odd = ParseBody(Wire().I32(-1));
  REQUIRE(odd);
  CHECK(odd->kind == StartupKind::kUnsupportedVersion);
  CHECK(odd->startup.protocol_version == -1);
}

TEST_CASE("Startup writers round-trip through ParseStartupFrame", "[startup][roundtrip]") {
  Buffer out;
  const std::pair<std::string_view, std::string_view> params[] = {
      {"user", "alice"}, {"database", "shop"}, {"application_name", "pgring test"}};
  WriteStartupMessage(out, params);
  WriteSslRequest(out);
  WriteCancelRequest(out, 99, -5);
  auto bytes = out.Readable();

  FrameResult r = ParseStartupFrame(bytes);
  REQUIRE(r.status == FrameStatus::kComplete);
  auto startup = ParseStartupPacket(r.frame.body);
  REQUIRE(startup);
  CHECK(startup->kind == StartupKind::kStartup);
  REQUIRE(startup->startup.params.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(startup->startup.params[i] == params[i]);
  bytes = bytes.subspan(r.frame.size);

  r = ParseStartupFrame(bytes);
  REQUIRE(r.status == FrameStatus::kComplete);
  CHECK(AsString(r.frame.raw) == std::string("\0\0\0\x08\x04\xd2\x16\x2f", 8));
  auto ssl = ParseStartupPacket(r.frame.body);
  REQUIRE(ssl);
  CHECK(ssl->kind == StartupKind::kSslRequest);
  bytes = bytes.subspan(r.frame.size);

  r = ParseStartupFrame(bytes);
  REQUIRE(r.status == FrameStatus::kComplete);
  CHECK(r.frame.size == 16);
  auto cancel = ParseStartupPacket(r.frame.body);
  REQUIRE(cancel);
  CHECK(cancel->kind == StartupKind::kCancel);
  CHECK(cancel->cancel.pid == 99);
  CHECK(cancel->cancel.secret == -5);
  CHECK(bytes.size() == r.frame.size);
}

TEST_CASE("Startup: byte-by-byte SSLRequest then StartupMessage", "[startup]") {
  Buffer out;
  WriteSslRequest(out);
  const std::pair<std::string_view, std::string_view> params[] = {{"user", "u"}};
  WriteStartupMessage(out, params);
  const std::string stream = AsString(out);
  Buffer in;
  std::vector<std::pair<size_t, StartupKind>> seen;
  for (size_t i = 0; i < stream.size(); ++i) {
    in.Append(std::string_view(&stream[i], 1));
    FrameResult r = ParseStartupFrame(in.Readable());
    REQUIRE(r.status != FrameStatus::kInvalid);
    if (r.status == FrameStatus::kNeedMore) continue;
    auto p = ParseStartupPacket(r.frame.body);
    REQUIRE(p);
    seen.emplace_back(i + 1, p->kind);
    in.Consume(r.frame.size);
  }
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == std::pair<size_t, StartupKind>{8, StartupKind::kSslRequest});
  CHECK(seen[1] == std::pair<size_t, StartupKind>{stream.size(), StartupKind::kStartup});
}

TEST_CASE("ParseStartupPacket: 10,000 random bodies", "[startup][random]") {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> code_pick(0, 5);
  const int32_t codes[] = {kProtocolVersion3,  kSslRequestCode, kGssEncRequestCode,
                           kCancelRequestCode, (3 << 16) | 1,   2 << 16};
  for (int i = 0; i < 10000; ++i) {
    std::string body = testing::RandomBody(rng, 48);
    // Half the inputs start with a real request code so the parsers behind it get exercised.
    if (i % 2 == 0) body = Wire().I32(codes[code_pick(rng)]).str() + body;
    auto bytes = AsBytes(body);
    auto p = ParseStartupPacket(bytes);
    if (!p) continue;
    for (const auto& [k, v] : p->startup.params) {
      REQUIRE(testing::Within(k, bytes));
      REQUIRE(testing::Within(v, bytes));
      REQUIRE_FALSE(k.empty());
    }
    if (p->kind == StartupKind::kStartup) {
      // A parsed StartupMessage re-encodes to exactly the same bytes.
      Buffer out;
      WriteStartupMessage(out, p->startup.params);
      REQUIRE(AsString(out).substr(4) == body);
    }
  }
}

}  // namespace
}  // namespace pgring::protocol
