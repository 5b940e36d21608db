#include "sharding/ring.h"

#include <algorithm>
#include <cassert>
#include <limits>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sharding/hash.h"

namespace pgring::sharding {
namespace {

constexpr int64_t kMinHash = std::numeric_limits<int64_t>::min();
constexpr int64_t kMaxHash = std::numeric_limits<int64_t>::max();

absl::Status ValidateNames(const std::vector<std::string>& names) {
  if (names.empty()) {
    return absl::InvalidArgumentError("a ring needs at least one shard; list one or more shards");
  }
  if (names.size() > Ring::kMaxTokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("a ring holds at most ", Ring::kMaxTokens, " shards, got ", names.size()));
  }
  absl::flat_hash_set<std::string_view> seen;
  for (const std::string& name : names) {
    if (name.empty()) {
      return absl::InvalidArgumentError("shard names must not be empty; give every shard a name");
    }
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("shard name \"", name, "\" appears twice; shard names must be unique"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

double Range::Size() const {
  // hi - lo can be 2^64 - 1, which only fits unsigned; the +1 is done in double so the
  // full ring (2^64 values) does not wrap to zero.
  return static_cast<double>(static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo)) + 1.0;
}

int64_t Ring::TokenFor(std::string_view name, int index) {
  std::string text(name);
  text += '#';
  text += std::to_string(index);
  return HashText(text);
}

absl::StatusOr<std::shared_ptr<const Ring>> Ring::Build(RingVersion version,
                                                        std::vector<std::string> shard_names,
                                                        int vnodes_per_shard) {
  if (vnodes_per_shard < 1 || vnodes_per_shard > kMaxVnodesPerShard) {
    return absl::InvalidArgumentError(absl::StrCat(
        "vnodes per shard must be in [1, ", kMaxVnodesPerShard, "], got ", vnodes_per_shard));
  }
  if (absl::Status status = ValidateNames(shard_names); !status.ok()) return status;
  const size_t count = shard_names.size() * static_cast<size_t>(vnodes_per_shard);
  if (count > kMaxTokens) {
    return absl::InvalidArgumentError(absl::StrCat(shard_names.size(), " shards x ",
                                                   vnodes_per_shard, " vnodes is more than ",
                                                   kMaxTokens, " tokens; use fewer vnodes"));
  }
  std::vector<Token> tokens;
  tokens.reserve(count);
  for (size_t s = 0; s < shard_names.size(); ++s) {
    for (int i = 0; i < vnodes_per_shard; ++i) {
      tokens.push_back({TokenFor(shard_names[s], i), ShardId(static_cast<uint32_t>(s))});
    }
  }
  return FromTokens(version, std::move(shard_names), std::move(tokens));
}

absl::StatusOr<std::shared_ptr<const Ring>> Ring::FromTokens(RingVersion version,
                                                             std::vector<std::string> shard_names,
                                                             std::vector<Token> tokens) {
  if (absl::Status status = ValidateNames(shard_names); !status.ok()) return status;
  if (tokens.empty()) {
    return absl::InvalidArgumentError("a ring needs at least one token");
  }
  if (tokens.size() > kMaxTokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("a ring holds at most ", kMaxTokens, " tokens, got ", tokens.size()));
  }
  for (const Token& token : tokens) {
    if (token.shard.value() >= shard_names.size()) {
      return absl::InvalidArgumentError(absl::StrCat("token ", token.token, " names shard #",
                                                     token.shard.value(), " but the ring has ",
                                                     shard_names.size(), " shards"));
    }
  }
  // Sorting equal tokens by shard name (not by id) makes the collision winner a function
  // of the set of names alone, so proxies that list the shards in different orders, and
  // a DBA recomputing the ring in SQL, agree on every owner.
  std::sort(tokens.begin(), tokens.end(), [&shard_names](const Token& x, const Token& y) {
    if (x.token != y.token) return x.token < y.token;
    return shard_names[x.shard.value()] < shard_names[y.shard.value()];
  });
  tokens.erase(std::unique(tokens.begin(), tokens.end(),
                           [](const Token& x, const Token& y) { return x.token == y.token; }),
               tokens.end());
  tokens.shrink_to_fit();
  return std::shared_ptr<const Ring>(new Ring(version, std::move(shard_names), std::move(tokens)));
}

ShardId Ring::Lookup(int64_t hash) const noexcept {
  auto it = std::ranges::lower_bound(tokens_, hash, {}, &Token::token);
  if (it == tokens_.end()) it = tokens_.begin();
  return it->shard;
}

const std::string& Ring::shard_name(ShardId shard) const {
  assert(shard.value() < shard_names_.size());
  return shard_names_[shard.value()];
}

std::optional<ShardId> Ring::FindShard(std::string_view name) const {
  for (size_t i = 0; i < shard_names_.size(); ++i) {
    if (shard_names_[i] == name) return ShardId(static_cast<uint32_t>(i));
  }
  return std::nullopt;
}

std::vector<OwnedRange> Ring::OwnedRanges() const {
  std::vector<OwnedRange> ranges;
  ranges.reserve(tokens_.size() + 1);
  // The pieces are generated in increasing order and each starts right after the
  // previous one, so merging only has to look at the last piece.
  auto add = [&ranges](int64_t lo, int64_t hi, ShardId shard) {
    if (!ranges.empty() && ranges.back().shard == shard) {
      ranges.back().range.hi = hi;
    } else {
      ranges.push_back({{lo, hi}, shard});
    }
  };
  add(kMinHash, tokens_.front().token, tokens_.front().shard);
  for (size_t i = 1; i < tokens_.size(); ++i) {
    add(tokens_[i - 1].token + 1, tokens_[i].token, tokens_[i].shard);
  }
  // Hashes above the largest token wrap to the smallest token's shard.
  if (tokens_.back().token != kMaxHash) {
    add(tokens_.back().token + 1, kMaxHash, tokens_.front().shard);
  }
  return ranges;
}

std::vector<Range> Ring::RangesOf(ShardId shard) const {
  std::vector<Range> ranges;
  for (const OwnedRange& owned : OwnedRanges()) {
    if (owned.shard == shard) ranges.push_back(owned.range);
  }
  return ranges;
}

double Ring::Fraction(ShardId shard) const {
  double owned = 0;
  for (const Range& range : RangesOf(shard)) owned += range.Size();
  return owned / 0x1p64;
}

}  // namespace pgring::sharding
