// String helpers for proxy/. Debian's abseil has its own absl::string_view, which
// std::string_view does not convert to, so absl::StrCat is not used with standard
// views: Cat wraps fmt instead. StringMap (a map searchable by std::string_view) comes
// from sharding/string_map.h.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

#include "sharding/string_map.h"

namespace pgring::proxy {

template <typename... Args>
std::string Cat(const Args&... args) {
  std::string out;
  (fmt::format_to(std::back_inserter(out), "{}", args), ...);
  return out;
}

using sharding::StringMap;

}  // namespace pgring::proxy
