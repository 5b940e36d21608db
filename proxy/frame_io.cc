#include "proxy/frame_io.h"

#include "proxy/str.h"
#include "protocol/sql_error.h"

namespace pgring::proxy {

awaitable<absl::StatusOr<protocol::Frame>> ReadFrame(Stream& stream, protocol::Buffer& buf,
                                                     FrameKind kind, size_t max_len) {
  for (;;) {
    auto r = kind == FrameKind::kTyped ? protocol::ParseTypedFrame(buf.Readable(), max_len)
                                       : protocol::ParseStartupFrame(buf.Readable(), max_len);
    if (r.status == protocol::FrameStatus::kComplete) co_return r.frame;
    if (r.status == protocol::FrameStatus::kInvalid) {
      co_return protocol::SqlError(
          absl::StatusCode::kInvalidArgument, "08P01",
          Cat("invalid message length ", r.declared_length, " (allowed 4 to ", max_len,
                       " bytes)"));
    }
    auto [ec, n] = co_await stream.ReadSome(buf, 4096);
    if (ec || n == 0) {
      co_return protocol::SqlError(absl::StatusCode::kUnavailable, "08006",
                                   ec ? ec.message() : "connection closed by peer");
    }
  }
}

}  // namespace pgring::proxy
