// Framing of the PostgreSQL v3 protocol
// (https://www.postgresql.org/docs/15/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS).
// A typed frame is: 1 type byte, Int32 length (counting itself, not the type), body.
// An untyped startup-phase frame (StartupMessage, SSLRequest, GSSENCRequest,
// CancelRequest) is: Int32 length (counting itself), body.
// The length is checked (4 <= len <= max) before anything else; parsers only ever see
// whole frames.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace pgring::protocol {

inline constexpr size_t kMaxStartupPacket = 10000;  // as PostgreSQL (MAX_STARTUP_PACKET_LENGTH)
inline constexpr size_t kDefaultMaxMessage = 256u << 20;  // 256 MiB, for any typed message

enum class FrameStatus {
  kComplete,  // `frame` is valid
  kNeedMore,  // the buffer holds a prefix of a frame; read more
  kInvalid,   // length below 4 or above the maximum: close the connection
};

// One whole frame, borrowing from the buffer it was parsed from.
struct Frame {
  char type = 0;                    // 0 for startup-phase frames
  std::span<const std::byte> body;  // after the length field
  size_t size = 0;                  // whole frame: type byte (if any) + length field + body
  // Whole frame bytes (for forwarding unchanged).
  std::span<const std::byte> raw;
};

struct FrameResult {
  FrameStatus status = FrameStatus::kNeedMore;
  Frame frame;
  uint32_t declared_length = 0;  // the length field as read, for error messages
};

namespace frame_internal {

// Shared by both frame kinds: `header` is 1 for typed frames (the type byte precedes the
// length) and 0 for startup-phase frames. Inline: it runs for every message relayed.
inline FrameResult ParseFrame(std::span<const std::byte> buf, size_t header, size_t max_len) {
  FrameResult result;
  if (buf.size() < header + 4) return result;  // kNeedMore
  const uint32_t len = (static_cast<uint32_t>(buf[header]) << 24) |
                       (static_cast<uint32_t>(buf[header + 1]) << 16) |
                       (static_cast<uint32_t>(buf[header + 2]) << 8) |
                       static_cast<uint32_t>(buf[header + 3]);
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

}  // namespace frame_internal

// Parses one typed frame at the start of `buf`.
inline FrameResult ParseTypedFrame(std::span<const std::byte> buf,
                                   size_t max_len = kDefaultMaxMessage) {
  return frame_internal::ParseFrame(buf, 1, max_len);
}
// Parses one startup-phase (untyped) frame at the start of `buf`.
inline FrameResult ParseStartupFrame(std::span<const std::byte> buf,
                                     size_t max_len = kMaxStartupPacket) {
  return frame_internal::ParseFrame(buf, 0, max_len);
}

}  // namespace pgring::protocol
