#include "protocol/frame.h"

namespace pgring::protocol {
namespace {

uint32_t ReadBigEndian32(std::span<const std::byte> b) {
  return (static_cast<uint32_t>(b[0]) << 24) | (static_cast<uint32_t>(b[1]) << 16) |
         (static_cast<uint32_t>(b[2]) << 8) | static_cast<uint32_t>(b[3]);
}

// Shared by both frame kinds: `header` is 1 for typed frames (the type byte precedes the
// length) and 0 for startup-phase frames.
FrameResult ParseFrame(std::span<const std::byte> buf, size_t header, size_t max_len) {
  FrameResult result;
  if (buf.size() < header + 4) return result;  // kNeedMore
  const uint32_t len = ReadBigEndian32(buf.subspan(header, 4));
  result.declared_length = len;
  // The length is judged before any body byte is looked at or waited for, so a peer that
  // announces 1 GB is rejected at once instead of making us buffer it.
  if (len < 4 || len > max_len) {
    result.status = FrameStatus::kInvalid;
    return result;
  }
  const size_t total = header + len;
  if (buf.size() < total) return result;  // kNeedMore
  result.status = FrameStatus::kComplete;
  result.frame.type = header == 1 ? static_cast<char>(buf[0]) : 0;
  result.frame.body = buf.subspan(header + 4, len - 4);
  result.frame.size = total;
  result.frame.raw = buf.first(total);
  return result;
}

}  // namespace

FrameResult ParseTypedFrame(std::span<const std::byte> buf, size_t max_len) {
  return ParseFrame(buf, 1, max_len);
}

FrameResult ParseStartupFrame(std::span<const std::byte> buf, size_t max_len) {
  return ParseFrame(buf, 0, max_len);
}

}  // namespace pgring::protocol
