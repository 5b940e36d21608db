// libFuzzer target: the COPY FROM STDIN splitter. The first bytes of the input choose the
// format (text or CSV, header, delimiter, NULL string, escape, key field and type), the rest
// is the COPY data. The data is split whole, then cut into pieces at input-chosen offsets,
// then byte by byte; all three must give the same per-shard bytes, counters and status,
// every output must be well-formed CopyData, and no byte may be forwarded twice.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/buffer.h"
#include "protocol/frame.h"
#include "sharding/copy_splitter.h"
#include "sharding/ring.h"

namespace pgring::sharding {
namespace {

struct Outcome {
  absl::Status status;
  std::vector<std::string> shards;
  uint64_t rows = 0;
  std::vector<uint64_t> rows_to;

  bool operator==(const Outcome& o) const {
    return status == o.status && shards == o.shards && rows == o.rows && rows_to == o.rows_to;
  }
};

const std::shared_ptr<const Ring>& TheRing() {
  static const std::shared_ptr<const Ring> ring = *Ring::Build(RingVersion(1), {"a", "b", "c"}, 8);
  return ring;
}

// Moves the CopyData payloads of `buf` to `payload`; traps on anything else, or on more
// than one message from one call.
void Drain(protocol::Buffer& buf, std::string& payload) {
  int messages = 0;
  while (!buf.empty()) {
    const protocol::FrameResult r = protocol::ParseTypedFrame(buf.Readable());
    if (r.status != protocol::FrameStatus::kComplete || r.frame.type != 'd') __builtin_trap();
    if (r.frame.body.empty()) __builtin_trap();  // never an empty message
    payload.append(reinterpret_cast<const char*>(r.frame.body.data()), r.frame.body.size());
    buf.Consume(r.frame.size);
    ++messages;
  }
  if (messages > 1) __builtin_trap();
}

Outcome Split(const CopyFormat& format, const CopySplit& split, std::string_view data,
              const std::vector<size_t>& cuts) {
  CopySplitter splitter(format, split, TheRing());
  std::vector<protocol::Buffer> out(TheRing()->shard_count());
  Outcome o;
  o.shards.resize(out.size());
  size_t from = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(data.size());
  for (size_t end : ends) {
    const std::string_view piece = data.substr(from, end - from);
    o.status = splitter.Add(std::as_bytes(std::span(piece.data(), piece.size())), out);
    for (size_t s = 0; s < out.size(); ++s) Drain(out[s], o.shards[s]);
    from = end;
    if (!o.status.ok()) break;
  }
  if (o.status.ok()) o.status = splitter.Finish(out);
  for (size_t s = 0; s < out.size(); ++s) Drain(out[s], o.shards[s]);
  o.rows = splitter.rows();
  uint64_t sum = 0;
  for (uint32_t s = 0; s < out.size(); ++s) {
    o.rows_to.push_back(splitter.rows_to(ShardId(s)));
    sum += o.rows_to.back();
  }
  if (sum != o.rows) __builtin_trap();
  return o;
}

}  // namespace
}  // namespace pgring::sharding

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pgring::sharding;
  if (size < 4) return 0;
  const uint8_t flags = data[0];
  CopyFormat format;
  format.csv = (flags & 1) != 0;
  format.header = (flags & 2) != 0;
  static constexpr char kDelimiters[] = {'\t', ',', ';', '|', 'B', '"', '\\', 'x'};
  format.delimiter = kDelimiters[(flags >> 2) & 7];
  if (format.csv) {
    format.quote = (flags & 0x20) != 0 ? '\'' : '"';
    format.escape = (flags & 0x40) != 0 ? '\\' : format.quote;
  }
  static constexpr std::string_view kNulls[] = {"\\N", "", "NULL", "\\x41"};
  format.null_string = std::string(kNulls[data[1] & 3]);
  const CopySplit split{(data[1] >> 2) & 3, "k",
                        static_cast<pgring::conf::KeyType>(((data[1] >> 4) & 3) % 3)};
  const uint8_t seed = data[2];
  const uint8_t pieces = data[3] & 15;
  const std::string_view copy(reinterpret_cast<const char*>(data + 4), size - 4);

  const Outcome whole = Split(format, split, copy, {});
  std::vector<size_t> cuts;
  uint32_t x = seed * 2654435761u + 1;
  for (int i = 0; i < pieces && !copy.empty(); ++i) {
    x = x * 1103515245u + 12345u;
    cuts.push_back((x >> 8) % (copy.size() + 1));
  }
  std::sort(cuts.begin(), cuts.end());
  if (!(Split(format, split, copy, cuts) == whole)) __builtin_trap();
  if (copy.size() <= 512) {
    std::vector<size_t> each;
    for (size_t i = 1; i < copy.size(); ++i) each.push_back(i);
    if (!(Split(format, split, copy, each) == whole)) __builtin_trap();
  }
  // Rows are forwarded once; only the header line is copied to every shard.
  size_t forwarded = 0;
  for (const std::string& s : whole.shards) forwarded += s.size();
  if (forwarded > copy.size() * (format.header ? whole.shards.size() : 1)) __builtin_trap();
  return 0;
}
