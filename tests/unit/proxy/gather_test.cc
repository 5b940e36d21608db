#include "proxy/gather.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "protocol/messages.h"
#include "protocol/sql_error.h"
#include "protocol/writer.h"

namespace pgring::proxy {
namespace {

using protocol::Buffer;

// Feeds every frame of `in` to the gather as the shard at `position`.
void Feed(Gather& g, size_t position, Buffer& in, Buffer& out) {
  auto data = in.Readable();
  size_t pos = 0;
  while (pos < data.size()) {
    auto r = protocol::ParseTypedFrame(data.subspan(pos));
    REQUIRE(r.status == protocol::FrameStatus::kComplete);
    g.OnFrame(position, r.frame, out);
    pos += r.frame.size;
  }
}

// The client's messages: type and body as text.
std::vector<std::pair<char, std::string>> Messages(Buffer& out) {
  std::vector<std::pair<char, std::string>> msgs;
  auto data = out.Readable();
  size_t pos = 0;
  while (pos < data.size()) {
    auto r = protocol::ParseTypedFrame(data.subspan(pos));
    REQUIRE(r.status == protocol::FrameStatus::kComplete);
    msgs.emplace_back(r.frame.type, std::string(reinterpret_cast<const char*>(r.frame.body.data()),
                                                r.frame.body.size()));
    pos += r.frame.size;
  }
  return msgs;
}

std::string TagOf(const std::pair<char, std::string>& m) {
  REQUIRE(m.first == 'C');
  return m.second.substr(0, m.second.size() - 1);  // without the NUL
}

Buffer Rows(std::string_view tag, std::vector<std::string_view> values) {
  Buffer b;
  protocol::WriteBindComplete(b);
  std::string_view cols[] = {"tenant_id"};
  protocol::WriteRowDescriptionText(b, cols);
  for (auto v : values) {
    std::optional<std::string_view> row[] = {v};
    protocol::WriteDataRow(b, row);
  }
  protocol::WriteCommandComplete(b, tag);
  protocol::WriteReadyForQuery(b, 'I');
  return b;
}

TEST_CASE("Gather: control messages once, rows concatenated, tags summed", "[gather]") {
  Gather g(2, nullptr);
  Buffer out;
  Buffer a = Rows("UPDATE 2", {"1", "3"});
  Buffer b = Rows("UPDATE 3", {"2", "4", "6"});
  Feed(g, 0, a, out);
  CHECK_FALSE(g.done());
  Feed(g, 1, b, out);
  REQUIRE(g.done());
  CHECK_FALSE(g.failed());
  CHECK(g.status() == 'I');
  auto msgs = Messages(out);
  // BindComplete, RowDescription, 5 DataRows, one CommandComplete; no ReadyForQuery.
  REQUIRE(msgs.size() == 8);
  CHECK(msgs[0].first == '2');
  CHECK(msgs[1].first == 'T');
  for (size_t i = 2; i < 7; ++i) CHECK(msgs[i].first == 'D');
  CHECK(TagOf(msgs[7]) == "UPDATE 5");
}

TEST_CASE("Gather: a failed shard's error replaces the result at the end", "[gather]") {
  Gather g(2, nullptr);
  Buffer out;
  Buffer ok = Rows("DELETE 1", {"1"});
  Buffer bad;
  protocol::WriteErrorResponse(bad, protocol::Severity::kError, "23505", "duplicate key");
  protocol::WriteReadyForQuery(bad, 'E');
  Feed(g, 1, bad, out);
  CHECK(g.failed());
  CHECK(out.empty());  // nothing until every shard is done
  Feed(g, 0, ok, out);
  REQUIRE(g.done());
  CHECK(g.status() == 'E');
  auto msgs = Messages(out);
  REQUIRE_FALSE(msgs.empty());
  CHECK(msgs.back().first == 'E');
  CHECK(msgs.back().second.find("duplicate key") != std::string::npos);
  for (const auto& m : msgs) CHECK(m.first != 'C');  // no CommandComplete after a failure
}

TEST_CASE("Gather: a merged SELECT goes through the Merger", "[gather]") {
  Gather g(2, [](std::span<const protocol::RowField>) -> absl::StatusOr<sharding::MergeSpec> {
    sharding::MergeSpec spec;
    spec.aggregates.push_back({0, sharding::MergeFunction::kCount});
    return spec;
  });
  Buffer out;
  auto count = [](std::string_view n) {
    Buffer b;
    protocol::RowField f;
    f.name = "count";
    f.type_oid = 20;
    f.type_size = 8;
    f.type_modifier = -1;
    protocol::RowField fields[] = {f};
    protocol::WriteRowDescription(b, fields);
    std::optional<std::string_view> row[] = {n};
    protocol::WriteDataRow(b, row);
    protocol::WriteCommandComplete(b, "SELECT 1");
    protocol::WriteReadyForQuery(b, 'T');
    return b;
  };
  Buffer a = count("40"), b = count("2");
  Feed(g, 0, a, out);
  Feed(g, 1, b, out);
  REQUIRE(g.done());
  CHECK(g.status() == 'T');
  auto msgs = Messages(out);
  REQUIRE(msgs.size() == 3);
  CHECK(msgs[0].first == 'T');
  REQUIRE(msgs[1].first == 'D');
  CHECK(msgs[1].second.find("42") != std::string::npos);
  CHECK(TagOf(msgs[2]) == "SELECT 1");
}

TEST_CASE("Gather: COPY TO combines the shards' streams", "[gather]") {
  auto copy_out = [](bool binary, std::vector<std::string> chunks) {
    Buffer b;
    protocol::MessageWriter w(b);
    w.Begin(protocol::be::kCopyOutResponse);
    w.Byte(binary ? 1 : 0);
    w.Int16(1);
    w.Int16(binary ? 1 : 0);
    w.End();
    for (const auto& c : chunks) protocol::WriteCopyData(b, std::as_bytes(std::span(c)));
    protocol::WriteCopyDone(b);
    protocol::WriteCommandComplete(b, "COPY 1");
    protocol::WriteReadyForQuery(b, 'I');
    return b;
  };
  SECTION("CSV with a header: one header line") {
    Gather g(2, nullptr);
    g.set_copy_header(true);
    Buffer out;
    Buffer a = copy_out(false, {"tenant_id\n", "1\n"}), b = copy_out(false, {"tenant_id\n", "2\n"});
    Feed(g, 0, a, out);
    Feed(g, 1, b, out);
    auto msgs = Messages(out);
    std::string data;
    for (const auto& m : msgs)
      if (m.first == 'd') data += m.second;
    CHECK(data == "tenant_id\n1\n2\n");
    CHECK(TagOf(msgs.back()) == "COPY 2");
  }
  SECTION("binary: one signature header and one trailer") {
    const std::string header("PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0", 19);
    const std::string row("\0\1\0\0\0\1x", 7);
    const std::string trailer("\xff\xff", 2);
    Gather g(2, nullptr);
    Buffer out;
    // Shard 0 glues the header to its row; shard 1 has no row: header and trailer only.
    Buffer a = copy_out(true, {header + row, trailer});
    Buffer b = copy_out(true, {header + trailer});
    Feed(g, 0, a, out);
    Feed(g, 1, b, out);
    std::string data;
    for (const auto& m : Messages(out))
      if (m.first == 'd') data += m.second;
    CHECK(data == header + row + trailer);
  }
}

TEST_CASE("Gather: a silent gather passes only an error", "[gather]") {
  Gather g(1, nullptr, /*silent=*/true);
  Buffer out;
  Buffer commit;
  protocol::WriteCommandComplete(commit, "COMMIT");
  protocol::WriteReadyForQuery(commit, 'I');
  Feed(g, 0, commit, out);
  CHECK(g.done());
  CHECK(out.empty());
}

}  // namespace
}  // namespace pgring::proxy
