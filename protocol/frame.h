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

// Parses one typed frame at the start of `buf`.
FrameResult ParseTypedFrame(std::span<const std::byte> buf, size_t max_len = kDefaultMaxMessage);
// Parses one startup-phase (untyped) frame at the start of `buf`.
FrameResult ParseStartupFrame(std::span<const std::byte> buf, size_t max_len = kMaxStartupPacket);

}  // namespace pgring::protocol
