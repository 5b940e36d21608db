// Whole backend messages as byte strings, for answers pgring queues or writes itself.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "protocol/buffer.h"
#include "protocol/messages.h"
#include "protocol/sql_error.h"

namespace pgring::proxy {

inline std::string BufferBytes(const protocol::Buffer& b) {
  auto r = b.Readable();
  return {reinterpret_cast<const char*>(r.data()), r.size()};
}

// The bytes of a message without fields (ParseComplete, BindComplete...).
inline std::string MessageBytes(void (*write)(protocol::Buffer&)) {
  protocol::Buffer b;
  write(b);
  return BufferBytes(b);
}

// An ErrorResponse (severity ERROR) carrying the SQLSTATE, message and hint of `st`.
inline std::string ErrorBytes(const absl::Status& st) {
  protocol::Buffer b;
  protocol::WriteErrorResponse(b, protocol::Severity::kError, protocol::SqlStateOf(st),
                               protocol::MessageOf(st), {}, protocol::HintOf(st));
  return BufferBytes(b);
}

}  // namespace pgring::proxy
