// Reads whole protocol frames from a Stream into a Buffer. The frame returned borrows
// from the buffer: use it, then Consume(frame.size) before the next read.
#pragma once

#include "absl/status/statusor.h"
#include "protocol/buffer.h"
#include "protocol/frame.h"
#include "proxy/asio.h"
#include "proxy/stream.h"

namespace pgring::proxy {

enum class FrameKind { kTyped, kStartup };

// Returns the next whole frame, reading as needed. Errors: kUnavailable when the peer
// closed or the socket failed, kInvalidArgument (SQLSTATE 08P01) for a bad length.
awaitable<absl::StatusOr<protocol::Frame>> ReadFrame(Stream& stream, protocol::Buffer& buf,
                                                     FrameKind kind,
                                                     size_t max_len = protocol::kDefaultMaxMessage);

}  // namespace pgring::proxy
