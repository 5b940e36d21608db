// Carries a PostgreSQL SQLSTATE (and an optional hint) inside an absl::Status, so that
// expected failures anywhere in pgring become correct ErrorResponses at the edge.
//
//   return SqlError(absl::StatusCode::kUnavailable, "53300", "no server connection ...",
//                   "raise pool.size");
//   ...
//   WriteError(out, status);  // proxy/: SQLSTATE and hint come from the payload
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/cord.h"

namespace pgring::protocol {

// Note: Debian's abseil has its own absl::string_view (not std::string_view), so the
// payload keys are C strings and messages are passed as std::string.
inline constexpr const char* kSqlStatePayload = "pgring.dev/sqlstate";
inline constexpr const char* kHintPayload = "pgring.dev/hint";

inline absl::Status SqlError(absl::StatusCode code, std::string_view sqlstate,
                             std::string_view message, std::string_view hint = {}) {
  absl::Status st(code, std::string(message));
  st.SetPayload(kSqlStatePayload, absl::Cord(std::string(sqlstate)));
  if (!hint.empty()) st.SetPayload(kHintPayload, absl::Cord(std::string(hint)));
  return st;
}

// The message of a status as a std::string_view.
inline std::string_view MessageOf(const absl::Status& st) {
  auto m = st.message();
  return {m.data(), m.size()};
}

// The SQLSTATE of a status: its payload, else one derived from the canonical code.
inline std::string SqlStateOf(const absl::Status& st) {
  if (auto p = st.GetPayload(kSqlStatePayload)) return std::string(*p);
  switch (st.code()) {
    case absl::StatusCode::kInvalidArgument: return "42601";
    case absl::StatusCode::kPermissionDenied: return "28000";
    case absl::StatusCode::kUnauthenticated: return "28P01";
    case absl::StatusCode::kNotFound: return "42P01";
    case absl::StatusCode::kUnimplemented: return "0A000";
    case absl::StatusCode::kDeadlineExceeded: return "57014";
    case absl::StatusCode::kResourceExhausted: return "53300";
    case absl::StatusCode::kUnavailable: return "08006";
    default: return "XX000";
  }
}

inline std::string HintOf(const absl::Status& st) {
  if (auto p = st.GetPayload(kHintPayload)) return std::string(*p);
  return {};
}

}  // namespace pgring::protocol
