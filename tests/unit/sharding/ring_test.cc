#include "sharding/ring.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sharding/hash.h"

// Counts heap allocations made by this thread while counting is on, to show that
// Ring::Lookup never allocates. Replacing the global allocation functions is the only
// way to observe allocations from inside the standard library too. Every non-aligned
// form is replaced and all of them forward to malloc/free, so each allocation is freed
// by its matching function (sanitizers check that pairing) and the rest of the test
// binary behaves as before; the aligned forms keep their defaults, which pair with each
// other. The functions stay out of line so the compiler pairs them as new/delete.
namespace {
thread_local bool g_count_allocations = false;
thread_local int64_t g_allocations = 0;

void* CountedAlloc(std::size_t size) noexcept {
  if (g_count_allocations) ++g_allocations;
  return std::malloc(size == 0 ? 1 : size);
}
}  // namespace

[[gnu::noinline]] void* operator new(std::size_t size) {
  if (void* p = CountedAlloc(size)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new[](std::size_t size) {
  if (void* p = CountedAlloc(size)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return CountedAlloc(size);
}
[[gnu::noinline]] void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return CountedAlloc(size);
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace pgring::sharding {
namespace {

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

std::vector<std::string> Names(int count, int first = 1) {
  std::vector<std::string> names;
  for (int i = first; i < first + count; ++i) names.push_back(absl::StrCat("shard-", i));
  return names;
}

std::shared_ptr<const Ring> MustBuild(std::vector<std::string> names, int vnodes,
                                      RingVersion version = RingVersion(1)) {
  auto ring = Ring::Build(version, std::move(names), vnodes);
  REQUIRE(ring.ok());
  return *std::move(ring);
}

std::shared_ptr<const Ring> MustFromTokens(std::vector<std::string> names,
                                           std::vector<Token> tokens) {
  auto ring = Ring::FromTokens(RingVersion(1), std::move(names), std::move(tokens));
  REQUIRE(ring.ok());
  return *std::move(ring);
}

// Hashes of random bigint keys, as the router would compute them. Fixed seed: the test
// is deterministic, the randomness only avoids hand-picked keys.
std::vector<int64_t> RandomKeyHashes(size_t count) {
  std::mt19937_64 rng(20240611);
  std::vector<int64_t> hashes;
  hashes.reserve(count);
  for (size_t i = 0; i < count; ++i) hashes.push_back(HashInt8(static_cast<int64_t>(rng())));
  return hashes;
}

const std::string& OwnerName(const Ring& ring, int64_t hash) {
  return ring.shard_name(ring.Lookup(hash));
}

// Checks that `ranges` are sorted, disjoint and cover [INT64_MIN, INT64_MAX] exactly once.
void RequireExactCover(std::vector<Range> ranges) {
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& x, const Range& y) { return x.lo < y.lo; });
  REQUIRE_FALSE(ranges.empty());
  CHECK(ranges.front().lo == kMin);
  CHECK(ranges.back().hi == kMax);
  for (size_t i = 0; i < ranges.size(); ++i) {
    CHECK(ranges[i].lo <= ranges[i].hi);
    if (i > 0) {
      REQUIRE(ranges[i - 1].hi < kMax);
      CHECK(ranges[i].lo == ranges[i - 1].hi + 1);
    }
  }
}

TEST_CASE("Build rejects invalid input with InvalidArgument", "[ring]") {
  auto code = [](std::vector<std::string> names, int vnodes) {
    return Ring::Build(RingVersion(1), std::move(names), vnodes).status().code();
  };
  CHECK(code({}, 16) == absl::StatusCode::kInvalidArgument);
  CHECK(code({"a", ""}, 16) == absl::StatusCode::kInvalidArgument);
  CHECK(code({"a", "b", "a"}, 16) == absl::StatusCode::kInvalidArgument);
  CHECK(code({"a"}, 0) == absl::StatusCode::kInvalidArgument);
  CHECK(code({"a"}, -1) == absl::StatusCode::kInvalidArgument);
  CHECK(code({"a"}, Ring::kMaxVnodesPerShard + 1) == absl::StatusCode::kInvalidArgument);
  CHECK(code(Names(1000), Ring::kMaxVnodesPerShard) == absl::StatusCode::kInvalidArgument);
  CHECK(code({"a"}, 1) == absl::StatusCode::kOk);

  auto from_tokens = [](std::vector<std::string> names, std::vector<Token> tokens) {
    return Ring::FromTokens(RingVersion(1), std::move(names), std::move(tokens)).status().code();
  };
  CHECK(from_tokens({"a"}, {}) == absl::StatusCode::kInvalidArgument);
  CHECK(from_tokens({}, {{0, ShardId(0)}}) == absl::StatusCode::kInvalidArgument);
  CHECK(from_tokens({"a"}, {{0, ShardId(1)}}) == absl::StatusCode::kInvalidArgument);
  CHECK(from_tokens({"a", "a"}, {{0, ShardId(0)}}) == absl::StatusCode::kInvalidArgument);
  CHECK(from_tokens({"a", "b"}, {{0, ShardId(0)}}) == absl::StatusCode::kOk);
}

TEST_CASE("tokens follow the documented SQL formula", "[ring]") {
  // hashtextextended('shard1' || '#' || 0, 0) in PostgreSQL 15.
  CHECK(Ring::TokenFor("shard1", 0) == 5458105870523849688);
  CHECK(Ring::TokenFor("shard-7", 12) == HashText("shard-7#12"));

  auto ring = MustBuild({"alpha", "beta", "gamma"}, 64, RingVersion(7));
  CHECK(ring->version() == RingVersion(7));
  CHECK(ring->shard_count() == 3);
  CHECK(ring->shard_name(ShardId(1)) == "beta");
  CHECK(ring->FindShard("gamma") == ShardId(2));
  CHECK_FALSE(ring->FindShard("delta").has_value());

  std::vector<Token> want;
  for (uint32_t s = 0; s < 3; ++s) {
    for (int i = 0; i < 64; ++i) {
      want.push_back({Ring::TokenFor(ring->shard_name(ShardId(s)), i), ShardId(s)});
    }
  }
  std::sort(want.begin(), want.end(),
            [](const Token& x, const Token& y) { return x.token < y.token; });
  REQUIRE(ring->tokens().size() == want.size());
  CHECK(std::equal(want.begin(), want.end(), ring->tokens().begin()));
}

TEST_CASE("Build is deterministic and independent of the order of the names", "[ring]") {
  auto first = MustBuild(Names(5), 128);
  auto again = MustBuild(Names(5), 128);
  auto names = Names(5);
  std::reverse(names.begin(), names.end());
  auto reversed = MustBuild(names, 128);

  REQUIRE(first->tokens().size() == again->tokens().size());
  CHECK(std::equal(first->tokens().begin(), first->tokens().end(), again->tokens().begin()));
  for (int64_t hash : RandomKeyHashes(20000)) {
    REQUIRE(OwnerName(*first, hash) == OwnerName(*reversed, hash));
  }
  // Ids follow the order of the names given; names, not ids, are stable across builds.
  CHECK(reversed->shard_name(ShardId(0)) == "shard-5");
}

TEST_CASE("Lookup returns the first token at or after the hash, wrapping", "[ring]") {
  auto ring =
      MustFromTokens({"a", "b", "c"}, {{100, ShardId(2)}, {-100, ShardId(0)}, {0, ShardId(1)}});
  REQUIRE(ring->tokens().size() == 3);
  CHECK(ring->tokens()[0] == Token{-100, ShardId(0)});

  CHECK(ring->Lookup(kMin) == ShardId(0));
  CHECK(ring->Lookup(-101) == ShardId(0));
  CHECK(ring->Lookup(-100) == ShardId(0));
  CHECK(ring->Lookup(-99) == ShardId(1));
  CHECK(ring->Lookup(0) == ShardId(1));
  CHECK(ring->Lookup(1) == ShardId(2));
  CHECK(ring->Lookup(100) == ShardId(2));
  CHECK(ring->Lookup(101) == ShardId(0));  // past the last token: wraps to the first
  CHECK(ring->Lookup(kMax) == ShardId(0));

  CHECK(ring->OwnedRanges() == std::vector<OwnedRange>{{{kMin, -100}, ShardId(0)},
                                                       {{-99, 0}, ShardId(1)},
                                                       {{1, 100}, ShardId(2)},
                                                       {{101, kMax}, ShardId(0)}});
  CHECK(ring->RangesOf(ShardId(0)) == std::vector<Range>{{kMin, -100}, {101, kMax}});
  CHECK(ring->RangesOf(ShardId(1)) == std::vector<Range>{{-99, 0}});
  CHECK(ring->Fraction(ShardId(1)) == 100.0 / 0x1p64);
}

TEST_CASE("ranges at the ends of the ring", "[ring]") {
  SECTION("one token owns everything") {
    auto ring = MustFromTokens({"only"}, {{42, ShardId(0)}});
    CHECK(ring->Lookup(kMin) == ShardId(0));
    CHECK(ring->Lookup(kMax) == ShardId(0));
    CHECK(ring->RangesOf(ShardId(0)) == std::vector<Range>{{kMin, kMax}});
    CHECK(ring->Fraction(ShardId(0)) == 1.0);
  }
  SECTION("a token at INT64_MAX leaves nothing to wrap") {
    auto ring = MustFromTokens({"a", "b"}, {{0, ShardId(0)}, {kMax, ShardId(1)}});
    CHECK(ring->Lookup(kMax) == ShardId(1));
    CHECK(ring->OwnedRanges() ==
          std::vector<OwnedRange>{{{kMin, 0}, ShardId(0)}, {{1, kMax}, ShardId(1)}});
  }
  SECTION("a token at INT64_MIN owns just INT64_MIN") {
    auto ring = MustFromTokens({"a", "b"}, {{kMin, ShardId(0)}, {0, ShardId(1)}});
    CHECK(ring->Lookup(kMin) == ShardId(0));
    CHECK(ring->Lookup(kMin + 1) == ShardId(1));
    CHECK(ring->Lookup(1) == ShardId(0));
    CHECK(ring->RangesOf(ShardId(0)) == std::vector<Range>{{kMin, kMin}, {1, kMax}});
  }
  SECTION("adjacent tokens of one shard merge into one range") {
    auto ring = MustFromTokens(
        {"a", "b"}, {{-100, ShardId(0)}, {0, ShardId(0)}, {100, ShardId(1)}, {200, ShardId(1)}});
    CHECK(ring->OwnedRanges() == std::vector<OwnedRange>{{{kMin, 0}, ShardId(0)},
                                                         {{1, 200}, ShardId(1)},
                                                         {{201, kMax}, ShardId(0)}});
  }
  SECTION("a shard without tokens owns nothing") {
    auto ring = MustFromTokens({"a", "drained"}, {{0, ShardId(0)}});
    CHECK(ring->RangesOf(ShardId(1)).empty());
    CHECK(ring->Fraction(ShardId(1)) == 0.0);
  }
}

TEST_CASE("equal tokens go to the shard whose name sorts first", "[ring]") {
  // Whatever the ids and the input order, "apple" wins the token at 5 over "banana".
  auto ring1 =
      MustFromTokens({"banana", "apple"}, {{5, ShardId(0)}, {5, ShardId(1)}, {50, ShardId(0)}});
  auto ring2 =
      MustFromTokens({"apple", "banana"}, {{50, ShardId(1)}, {5, ShardId(1)}, {5, ShardId(0)}});
  for (const auto& ring : {ring1, ring2}) {
    REQUIRE(ring->tokens().size() == 2);
    CHECK(ring->shard_name(ring->tokens()[0].shard) == "apple");
    CHECK(OwnerName(*ring, 5) == "apple");
    CHECK(OwnerName(*ring, 6) == "banana");
  }
  // The comparison is byte-wise (COLLATE "C"): upper case sorts before lower case.
  auto ring3 = MustFromTokens({"b", "B"}, {{7, ShardId(0)}, {7, ShardId(1)}});
  REQUIRE(ring3->tokens().size() == 1);
  CHECK(OwnerName(*ring3, 7) == "B");
  // Two equal tokens of one shard collapse into one.
  auto ring4 = MustFromTokens({"a"}, {{7, ShardId(0)}, {7, ShardId(0)}});
  CHECK(ring4->tokens().size() == 1);
}

TEST_CASE("every hash has exactly one owner and the ranges say which", "[ring]") {
  for (int shards : {1, 2, 3, 7, 10}) {
    auto ring = MustBuild(Names(shards), 256);
    INFO(shards << " shards");
    REQUIRE(ring->tokens().size() == static_cast<size_t>(shards) * 256);
    for (size_t i = 1; i < ring->tokens().size(); ++i) {
      REQUIRE(ring->tokens()[i - 1].token < ring->tokens()[i].token);
    }

    // The shards' ranges together cover the whole ring exactly once...
    std::vector<Range> all;
    double fractions = 0;
    for (uint32_t s = 0; s < ring->shard_count(); ++s) {
      auto ranges = ring->RangesOf(ShardId(s));
      all.insert(all.end(), ranges.begin(), ranges.end());
      fractions += ring->Fraction(ShardId(s));
    }
    RequireExactCover(all);
    CHECK(fractions == Approx(1.0).epsilon(1e-12));

    // ...and agree with Lookup, at both ends of every range and for random hashes.
    auto owned = ring->OwnedRanges();
    for (const OwnedRange& o : owned) {
      REQUIRE(ring->Lookup(o.range.lo) == o.shard);
      REQUIRE(ring->Lookup(o.range.hi) == o.shard);
    }
    for (int64_t hash : RandomKeyHashes(20000)) {
      auto it = std::upper_bound(owned.begin(), owned.end(), hash,
                                 [](int64_t h, const OwnedRange& o) { return h < o.range.lo; });
      REQUIRE(it != owned.begin());
      --it;
      REQUIRE(it->range.lo <= hash);
      REQUIRE(hash <= it->range.hi);
      REQUIRE(ring->Lookup(hash) == it->shard);
    }
  }
}

TEST_CASE("adding a shard moves about 1/(N+1) of the keys, all to the new shard", "[ring]") {
  constexpr int kVnodes = 256;
  constexpr size_t kKeys = 200000;
  const std::vector<int64_t> hashes = RandomKeyHashes(kKeys);
  for (int n = 1; n <= 10; ++n) {
    INFO(n << " shards + 1");
    auto before = MustBuild(Names(n), kVnodes);
    auto after = MustBuild(Names(n + 1), kVnodes);
    const std::string& added = after->shard_name(ShardId(n));
    size_t moved = 0;
    for (int64_t hash : hashes) {
      const std::string& old_owner = OwnerName(*before, hash);
      const std::string& new_owner = OwnerName(*after, hash);
      if (old_owner == new_owner) continue;
      REQUIRE(new_owner == added);  // never between two old shards
      ++moved;
    }
    const double moved_fraction = static_cast<double>(moved) / kKeys;
    const double owned = after->Fraction(ShardId(n));
    const double ideal = 1.0 / (n + 1);
    // Every key in the new shard's ranges moved, so `moved` is a binomial sample of
    // `owned`: with 200,000 keys its standard deviation is below 0.0011; 5 of those
    // bounds it.
    const double sampling_sd = std::sqrt(owned * (1 - owned) / kKeys);
    CHECK(std::abs(moved_fraction - owned) <= 5 * sampling_sd);
    // The new shard's share is the sum of 256 gaps between random tokens; its relative
    // standard deviation is about 1/sqrt(256) = 6.25%, so 30% is about 5 of those (and
    // the names are fixed, so the outcome is too).
    CHECK(std::abs(moved_fraction - ideal) <= 0.30 * ideal);
  }
}

TEST_CASE("removing a shard moves only that shard's keys", "[ring]") {
  constexpr int kVnodes = 256;
  const std::vector<int64_t> hashes = RandomKeyHashes(50000);
  for (int m : {2, 3, 5, 11}) {
    auto before = MustBuild(Names(m), kVnodes);
    for (int removed = 0; removed < m; ++removed) {
      INFO(m << " shards, removing shard-" << removed + 1);
      auto names = Names(m);
      const std::string gone = names[removed];
      names.erase(names.begin() + removed);
      auto after = MustBuild(names, kVnodes);
      size_t moved = 0;
      for (int64_t hash : hashes) {
        const std::string& old_owner = OwnerName(*before, hash);
        const std::string& new_owner = OwnerName(*after, hash);
        REQUIRE(new_owner != gone);
        if (old_owner == gone) {
          ++moved;
        } else {
          REQUIRE(new_owner == old_owner);
        }
      }
      CHECK(moved > 0);
    }
  }
}

TEST_CASE("Lookup does not allocate", "[ring]") {
  auto ring = MustBuild(Names(8), 256);
  static_assert(noexcept(ring->Lookup(0)));
  const std::vector<int64_t> hashes = RandomKeyHashes(10000);

  // The counter works: a direct call of the allocation function (which, unlike a
  // new-expression, the compiler may not elide) is seen.
  g_allocations = 0;
  g_count_allocations = true;
  void* probe = ::operator new(64);
  g_count_allocations = false;
  ::operator delete(probe);
  REQUIRE(g_allocations == 1);

  uint64_t sink = 0;
  g_allocations = 0;
  g_count_allocations = true;
  for (int64_t hash : hashes) sink += ring->Lookup(hash).value();
  sink += ring->Lookup(kMin).value() + ring->Lookup(kMax).value();
  g_count_allocations = false;
  CHECK(g_allocations == 0);
  CHECK(sink > 0);
}

}  // namespace
}  // namespace pgring::sharding
