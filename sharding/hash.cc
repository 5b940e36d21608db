#include "sharding/hash.h"

#include <bit>
#include <cstddef>

namespace pgring::sharding {
namespace {

// PostgreSQL hashes with Bob Jenkins' lookup3 (src/common/hashfn.c), returning the
// 64 bits (b << 32) | c of the final state. The constant, the rotation amounts and the
// order of the steps below are part of the on-disk contract: a shard computes the same
// function in SQL, so none of them may change.
constexpr uint32_t kInitial = 0x9e3779b9u + 3923095u;

struct State {
  uint32_t a;
  uint32_t b;
  uint32_t c;
};

constexpr void Mix(State& s) {
  s.a -= s.c;
  s.a ^= std::rotl(s.c, 4);
  s.c += s.b;
  s.b -= s.a;
  s.b ^= std::rotl(s.a, 6);
  s.a += s.c;
  s.c -= s.b;
  s.c ^= std::rotl(s.b, 8);
  s.b += s.a;
  s.a -= s.c;
  s.a ^= std::rotl(s.c, 16);
  s.c += s.b;
  s.b -= s.a;
  s.b ^= std::rotl(s.a, 19);
  s.a += s.c;
  s.c -= s.b;
  s.c ^= std::rotl(s.b, 4);
  s.b += s.a;
}

constexpr void Final(State& s) {
  s.c ^= s.b;
  s.c -= std::rotl(s.b, 14);
  s.a ^= s.c;
  s.a -= std::rotl(s.c, 11);
  s.b ^= s.a;
  s.b -= std::rotl(s.a, 25);
  s.c ^= s.b;
  s.c -= std::rotl(s.b, 16);
  s.a ^= s.c;
  s.a -= std::rotl(s.c, 4);
  s.b ^= s.a;
  s.b -= std::rotl(s.a, 14);
  s.c ^= s.b;
  s.c -= std::rotl(s.b, 24);
}

constexpr int64_t Result(const State& s) {
  // uint64 -> int64 is modular in C++20, which is how PostgreSQL's bigint result
  // reinterprets the same bits.
  return static_cast<int64_t>((static_cast<uint64_t>(s.b) << 32) | s.c);
}

// Reads up to four bytes as a little-endian word. PostgreSQL loads native words; the
// values it produces on the little-endian servers pgring supports are these, and
// assembling the bytes explicitly gives the same values on any host.
constexpr uint32_t LoadLe(const uint8_t* p, size_t n) {
  uint32_t word = 0;
  for (size_t i = 0; i < n; ++i) word |= static_cast<uint32_t>(p[i]) << (8 * i);
  return word;
}

// hash_uint32_extended(k, 0).
constexpr int64_t HashUint32(uint32_t k) {
  const uint32_t init = kInitial + static_cast<uint32_t>(sizeof(uint32_t));
  State s{init, init, init};
  s.a += k;
  Final(s);
  return Result(s);
}

}  // namespace

int64_t HashBytes(std::span<const uint8_t> bytes) {
  // The length enters the initial state modulo 2^32, as PostgreSQL's uint32 arithmetic.
  const uint32_t init = kInitial + static_cast<uint32_t>(bytes.size());
  State s{init, init, init};
  const uint8_t* p = bytes.data();
  size_t left = bytes.size();
  while (left >= 12) {
    s.a += LoadLe(p, 4);
    s.b += LoadLe(p + 4, 4);
    s.c += LoadLe(p + 8, 4);
    Mix(s);
    p += 12;
    left -= 12;
  }
  // The tail fills a, then b, then c, but c's lowest byte stays zero (lookup3 reserves it
  // for the length, which PostgreSQL mixes into the initial state instead): tail bytes 8,
  // 9 and 10 land in c's bytes 1, 2 and 3. An empty tail still gets the final mix.
  if (left > 8) {
    s.c += LoadLe(p + 8, left - 8) << 8;
  }
  if (left > 4) {
    s.b += LoadLe(p + 4, (left > 8 ? 8 : left) - 4);
  }
  s.a += LoadLe(p, left > 4 ? 4 : left);
  Final(s);
  return Result(s);
}

int64_t HashInt8(int64_t key) {
  // hashint8extended folds the high half into the low half (complemented for negative
  // keys) so that an int8 equal to an int4 or int2 hashes like it; the folded value is
  // then hashed as a uint32.
  const auto bits = static_cast<uint64_t>(key);
  auto low = static_cast<uint32_t>(bits);
  const auto high = static_cast<uint32_t>(bits >> 32);
  low ^= key >= 0 ? high : ~high;
  return HashUint32(low);
}

int64_t HashText(std::string_view key) {
  return HashBytes({reinterpret_cast<const uint8_t*>(key.data()), key.size()});
}

int64_t HashUuid(std::span<const uint8_t, 16> key) { return HashBytes(key); }

std::optional<std::array<uint8_t, 16>> ParseUuid(std::string_view text) {
  auto hex = [](char ch) -> int {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
  };
  size_t pos = 0;
  const bool braces = !text.empty() && text.front() == '{';
  if (braces) ++pos;
  std::array<uint8_t, 16> uuid{};
  for (size_t i = 0; i < uuid.size(); ++i) {
    if (text.size() - pos < 2) return std::nullopt;
    const int high = hex(text[pos]);
    const int low = hex(text[pos + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    uuid[i] = static_cast<uint8_t>(high << 4 | low);
    pos += 2;
    // One hyphen may follow each group of four digits, never the last group: the same
    // leniency as PostgreSQL's uuid_in, so every key PostgreSQL accepts routes here too.
    if (i % 2 == 1 && i + 1 < uuid.size() && pos < text.size() && text[pos] == '-') ++pos;
  }
  if (braces) {
    if (pos >= text.size() || text[pos] != '}') return std::nullopt;
    ++pos;
  }
  if (pos != text.size()) return std::nullopt;
  return uuid;
}

}  // namespace pgring::sharding
