// Strong id types shared by the sharding component: ShardId names a shard by its index in
// a ring's shard list, RingVersion names one immutable ring. Both are plain values, cheap
// to copy, comparable, hashable with absl::Hash and printable with operator<<.
#pragma once

#include <compare>
#include <cstdint>
#include <ostream>
#include <utility>

namespace pgring::sharding {

// Index of a shard in a Ring's shard list (0 .. shard_count-1, in the order the shard
// names were given to Ring::Build). A ShardId is only meaningful together with the ring
// that issued it: compare shard names, not ids, across ring versions.
class ShardId {
 public:
  constexpr ShardId() = default;
  constexpr explicit ShardId(uint32_t value) : value_(value) {}

  constexpr uint32_t value() const { return value_; }

  friend constexpr auto operator<=>(ShardId, ShardId) = default;

  template <typename H>
  friend H AbslHashValue(H h, ShardId id) {
    return H::combine(std::move(h), id.value_);
  }
  friend std::ostream& operator<<(std::ostream& os, ShardId id) {
    return os << "shard#" << id.value_;
  }

 private:
  uint32_t value_ = 0;
};

// Version of a ring. Every change of ownership produces a new ring with a higher version;
// proxies compare versions to tell a stale ring from the current one.
class RingVersion {
 public:
  constexpr RingVersion() = default;
  constexpr explicit RingVersion(uint64_t value) : value_(value) {}

  constexpr uint64_t value() const { return value_; }
  // Returns the version that follows this one.
  constexpr RingVersion Next() const { return RingVersion(value_ + 1); }

  friend constexpr auto operator<=>(RingVersion, RingVersion) = default;

  template <typename H>
  friend H AbslHashValue(H h, RingVersion version) {
    return H::combine(std::move(h), version.value_);
  }
  friend std::ostream& operator<<(std::ostream& os, RingVersion version) {
    return os << "v" << version.value_;
  }

 private:
  uint64_t value_ = 0;
};

}  // namespace pgring::sharding
