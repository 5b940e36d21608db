// String concatenation for proxy/. Debian's abseil has its own absl::string_view, which
// std::string_view does not convert to, so absl::StrCat is not used with standard
// views; this wraps fmt instead.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace pgring::proxy {

template <typename... Args>
std::string Cat(const Args&... args) {
  std::string out;
  (fmt::format_to(std::back_inserter(out), "{}", args), ...);
  return out;
}

}  // namespace pgring::proxy

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"

namespace pgring::proxy {

// Transparent hash and equality over std::string_view, so maps keyed by std::string can
// be searched with a view into a message without building a string.
struct ViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const {
    return absl::Hash<absl::string_view>{}(absl::string_view(s.data(), s.size()));
  }
};
struct ViewEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};
template <typename V>
using StringMap = absl::flat_hash_map<std::string, V, ViewHash, ViewEq>;

}  // namespace pgring::proxy
