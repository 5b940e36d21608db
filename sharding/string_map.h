// A flat_hash_map keyed by std::string that can be searched with a std::string_view
// (a view into a message) without building a string. Debian's abseil has its own
// absl::string_view, so abseil's default transparent hash does not accept
// std::string_view; this hash and equality do.
#pragma once

#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"

namespace pgring::sharding {

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

}  // namespace pgring::sharding
