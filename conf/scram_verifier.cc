#include "conf/scram_verifier.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"

namespace pgring::conf {
namespace {

constexpr std::string_view kPrefix = "SCRAM-SHA-256$";
constexpr size_t kSha256Bytes = 32;

// absl::Base64Unescape tolerates missing padding and stray characters that PostgreSQL
// would reject, so the alphabet and length are checked first.
bool StrictBase64Decode(std::string_view in, std::string* out) {
  if (in.empty() || in.size() % 4 != 0) return false;
  size_t padding = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(in[i]);
    if (c == '=') {
      ++padding;
      continue;
    }
    if (padding > 0) return false;  // data after padding
    if (!absl::ascii_isalnum(c) && c != '+' && c != '/') return false;
  }
  if (padding > 2) return false;
  return absl::Base64Unescape(std::string(in), out);
}

absl::Status Invalid(std::string_view what) {
  return absl::InvalidArgumentError(std::string(what));
}

}  // namespace

absl::StatusOr<ScramVerifier> ParseScramVerifier(std::string_view text) {
  if (text.substr(0, kPrefix.size()) != kPrefix) {
    return Invalid("it does not start with 'SCRAM-SHA-256$'");
  }
  text.remove_prefix(kPrefix.size());
  const size_t dollar = text.find('$');
  if (dollar == std::string_view::npos) {
    return Invalid("the '$' between <iterations>:<salt> and <StoredKey>:<ServerKey> is missing");
  }
  const std::string_view params = text.substr(0, dollar);
  const std::string_view keys = text.substr(dollar + 1);

  const size_t colon1 = params.find(':');
  if (colon1 == std::string_view::npos)
    return Invalid("the ':' after the iteration count is missing");
  const std::string_view iter_text = params.substr(0, colon1);
  if (iter_text.empty()) return Invalid("the iteration count is not a number");
  int64_t iterations = 0;
  for (char c : iter_text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return Invalid("the iteration count is not a number");
    }
    // Saturate instead of overflowing; anything above INT_MAX is rejected below.
    iterations = std::min<int64_t>(iterations * 10 + (c - '0'), int64_t{1} << 40);
  }
  if (iterations < 1) return Invalid("the iteration count must be at least 1");
  if (iterations > std::numeric_limits<int>::max()) {
    return Invalid("the iteration count is larger than 2147483647");
  }
  ScramVerifier v;
  v.iterations = static_cast<int>(iterations);
  if (!StrictBase64Decode(params.substr(colon1 + 1), &v.salt) || v.salt.empty()) {
    return Invalid("the salt is not valid base64");
  }

  const size_t colon2 = keys.find(':');
  if (colon2 == std::string_view::npos)
    return Invalid("the ':' between StoredKey and ServerKey is missing");
  if (!StrictBase64Decode(keys.substr(0, colon2), &v.stored_key)) {
    return Invalid("StoredKey is not valid base64");
  }
  if (!StrictBase64Decode(keys.substr(colon2 + 1), &v.server_key)) {
    return Invalid("ServerKey is not valid base64");
  }
  if (v.stored_key.size() != kSha256Bytes) {
    return Invalid(fmt::format("StoredKey decodes to {} bytes instead of 32", v.stored_key.size()));
  }
  if (v.server_key.size() != kSha256Bytes) {
    return Invalid(fmt::format("ServerKey decodes to {} bytes instead of 32", v.server_key.size()));
  }
  return v;
}

}  // namespace pgring::conf
