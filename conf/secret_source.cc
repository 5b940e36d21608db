#include "conf/secret_source.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/status/status.h"

namespace pgring::conf {
namespace {

absl::Status FileError(const std::string& path, int err) {
  return absl::NotFoundError(fmt::format("cannot read '{}': {}", path, std::strerror(err)));
}

}  // namespace

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  // POSIX calls rather than iostreams: they report errno, which the operator needs to
  // tell a missing file from a permission problem.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return FileError(path, errno);
  std::string data;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return FileError(path, err);
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > kMaxSecretFileBytes) {
      ::close(fd);
      return absl::InvalidArgumentError(
          fmt::format("'{}' is larger than {} bytes; a password file holds the password on "
                      "one line",
                      path, kMaxSecretFileBytes));
    }
  }
  ::close(fd);
  // Editors and `echo secret > file` add a final newline that is not part of the secret.
  if (!data.empty() && data.back() == '\n') {
    data.pop_back();
    if (!data.empty() && data.back() == '\r') data.pop_back();
  }
  if (data.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("'{}' is empty; write the password into it", path));
  }
  return data;
}

absl::StatusOr<std::string> ReadSecretEnv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) {
    return absl::NotFoundError(fmt::format("environment variable {} is not set", name));
  }
  if (*value == '\0') {
    return absl::InvalidArgumentError(fmt::format("environment variable {} is empty", name));
  }
  return std::string(value);
}

}  // namespace pgring::conf
