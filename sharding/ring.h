// The consistent-hash ring: which shard owns which 64-bit key hash.
//
// The ring is the signed 64-bit line [INT64_MIN, INT64_MAX] closed into a circle. Each
// shard places tokens on it; a hash h belongs to the shard of the first token >= h, and
// hashes above the largest token wrap around to the smallest token. Key hashes come from
// sharding/hash.h, so ownership can be recomputed in SQL on any shard.
//
// Ring::Build places `vnodes_per_shard` tokens per shard at
//
//   token(name, i) = HashText(name + "#" + decimal(i))   for i in [0, vnodes_per_shard)
//                  = hashtextextended(name || '#' || i, 0)   in SQL
//
// so a token depends only on its shard's name and index, never on the other shards:
// adding a shard moves keys only to it, removing one moves only its own keys. When two
// tokens are equal (a 64-bit hash collision) the token goes to the shard whose name sorts
// first byte-wise (COLLATE "C"); the other copy is dropped. Ring::FromTokens builds a ring
// from an explicit token list (as a catalog stores it after ranges have moved) with the
// same rule.
//
// A Ring is immutable and versioned: a change of ownership builds a new Ring with a new
// RingVersion and publishes it as a new std::shared_ptr<const Ring>. Readers on any
// thread may use a Ring concurrently without locking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "sharding/types.h"

namespace pgring::sharding {

// One token on the ring: hashes in (previous token, token] belong to `shard`.
struct Token {
  int64_t token = 0;
  ShardId shard;

  friend bool operator==(const Token&, const Token&) = default;
};

// An inclusive range [lo, hi] of hash values, lo <= hi. In SQL, the rows of a range are
// `WHERE hashint8extended(key, 0) BETWEEN lo AND hi` (or the text/uuid equivalent).
struct Range {
  int64_t lo = 0;
  int64_t hi = 0;

  // Returns how many hash values the range holds (1 .. 2^64, as a double).
  double Size() const;
  friend bool operator==(const Range&, const Range&) = default;
};

// A range together with the shard that owns it.
struct OwnedRange {
  Range range;
  ShardId shard;

  friend bool operator==(const OwnedRange&, const OwnedRange&) = default;
};

class Ring {
 public:
  // Largest vnodes_per_shard that Build accepts, and largest total token count.
  static constexpr int kMaxVnodesPerShard = 1 << 16;
  static constexpr size_t kMaxTokens = size_t{1} << 24;

  // Builds a ring with `vnodes_per_shard` tokens per shard placed by the formula above.
  // ShardId(i) names shard_names[i]. Fails with InvalidArgument if there are no shards,
  // a name is empty or repeated, or vnodes_per_shard is outside [1, kMaxVnodesPerShard]
  // or the token count exceeds kMaxTokens.
  static absl::StatusOr<std::shared_ptr<const Ring>> Build(RingVersion version,
                                                           std::vector<std::string> shard_names,
                                                           int vnodes_per_shard);

  // Builds a ring from explicit tokens, in any order. Equal tokens are resolved by shard
  // name as in Build. A shard may own no token (it then owns no hash). Fails with
  // InvalidArgument on no shards, an empty or repeated name, an empty token list, a token
  // naming a shard outside shard_names, or more than kMaxTokens tokens.
  static absl::StatusOr<std::shared_ptr<const Ring>> FromTokens(
      RingVersion version, std::vector<std::string> shard_names, std::vector<Token> tokens);

  // Returns the token that Build places for vnode `index` of shard `name`.
  static int64_t TokenFor(std::string_view name, int index);

  // Returns the shard owning `hash`: the shard of the first token >= hash, or of the
  // smallest token if hash is above them all. O(log tokens), allocation-free.
  ShardId Lookup(int64_t hash) const noexcept;

  RingVersion version() const { return version_; }
  size_t shard_count() const { return shard_names_.size(); }
  // Requires shard.value() < shard_count().
  const std::string& shard_name(ShardId shard) const;
  // Returns the id of the shard called `name`, or nullopt if the ring has none.
  std::optional<ShardId> FindShard(std::string_view name) const;

  // Returns the tokens sorted by token, all distinct.
  std::span<const Token> tokens() const { return tokens_; }

  // Returns the whole ring as sorted, disjoint ranges that cover [INT64_MIN, INT64_MAX]
  // exactly once. Adjacent ranges of the same shard are merged; the range that wraps
  // past INT64_MAX is split at INT64_MIN/INT64_MAX, so it appears as the first and the
  // last entry.
  std::vector<OwnedRange> OwnedRanges() const;

  // Returns the ranges `shard` owns, sorted by lo (empty for a shard without tokens).
  std::vector<Range> RangesOf(ShardId shard) const;

  // Returns the fraction of the 2^64 hash values that `shard` owns, in [0, 1].
  double Fraction(ShardId shard) const;

 private:
  Ring(RingVersion version, std::vector<std::string> shard_names, std::vector<Token> tokens)
      : version_(version), shard_names_(std::move(shard_names)), tokens_(std::move(tokens)) {}

  RingVersion version_;
  std::vector<std::string> shard_names_;
  std::vector<Token> tokens_;  // sorted by token, distinct, non-empty
};

}  // namespace pgring::sharding
