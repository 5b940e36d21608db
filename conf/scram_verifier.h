// Parses SCRAM-SHA-256 verifiers in PostgreSQL's pg_authid.rolpassword format.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace pgring::conf {

// A decoded verifier: "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>" with
// the three binary fields base64-decoded (RFC 5802, RFC 7677).
struct ScramVerifier {
  int iterations = 0;
  std::string salt;        // raw bytes, at least 1
  std::string stored_key;  // raw bytes, exactly 32 (SHA-256)
  std::string server_key;  // raw bytes, exactly 32 (SHA-256)
};

// Parses and checks a verifier. On failure the message says which part is wrong and
// never contains the verifier or any part of it.
absl::StatusOr<ScramVerifier> ParseScramVerifier(std::string_view text);

}  // namespace pgring::conf
