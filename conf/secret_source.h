// Reads secrets named by password_file and password_env at configuration load time.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace pgring::conf {

// Secret files larger than this are rejected: a password file holds one line.
inline constexpr size_t kMaxSecretFileBytes = 64 * 1024;

// Returns the contents of the file at `path` without one trailing newline ("\n" or
// "\r\n"). Fails with the path and the errno text when the file cannot be opened or read,
// and when it is empty or larger than kMaxSecretFileBytes. Messages never contain the
// file's contents.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path);

// Returns the value of environment variable `name`. Fails when it is unset or empty.
// Not thread-safe against concurrent setenv(): call during start-up or reload only.
absl::StatusOr<std::string> ReadSecretEnv(const std::string& name);

}  // namespace pgring::conf
