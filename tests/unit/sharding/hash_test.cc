// Known values were computed with PostgreSQL 15.18 (x86_64, UTF8 database), e.g.
//   SELECT hashint8extended(k, 0), hashtextextended(t, 0), uuid_hash_extended(u, 0);
// tests/integration/hash_pg_test.cc compares against a live server for many more keys.
#include "sharding/hash.h"

#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <string>

namespace pgring::sharding {
namespace {

constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kInt32Min = std::numeric_limits<int32_t>::min();
constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

std::array<uint8_t, 16> Uuid(std::string_view text) {
  auto uuid = ParseUuid(text);
  REQUIRE(uuid.has_value());
  return *uuid;
}

TEST_CASE("HashInt8 equals hashint8extended(k, 0)", "[hash]") {
  struct Case {
    int64_t key;
    int64_t want;
  };
  const Case cases[] = {
      {0, 4154612158245552303},
      {-1, -1888257769727981238},
      {1, -3670598878359251130},
      {2, 3647684041653542134},
      {42, 8010225493015854792},
      {kInt64Min, -9109110466470504941},
      {kInt64Max, 1977219185673256887},
      {kInt32Min, 1977219185673256887},
      {kInt32Max, -9109110466470504941},
      {kInt32Max + 1, 1977219185673256887},
      {kInt32Min - 1, -9109110466470504941},
      {4294967295, -1888257769727981238},
      {4294967296, -3670598878359251130},
      {1234567890123, -6236938892533063859},
  };
  for (const Case& c : cases) {
    INFO("key " << c.key);
    CHECK(HashInt8(c.key) == c.want);
  }
}

TEST_CASE("smallint and integer keys hash like bigint", "[hash]") {
  // hashint4extended(k::int4, 0) and hashint2extended(k::int2, 0) as returned by
  // PostgreSQL: they equal hashint8extended of the widened value, which is why pgring has
  // no separate functions for them.
  CHECK(HashInt8(int64_t{std::numeric_limits<int32_t>::min()}) == 1977219185673256887);
  CHECK(HashInt8(int64_t{std::numeric_limits<int32_t>::max()}) == -9109110466470504941);
  CHECK(HashInt8(int64_t{std::numeric_limits<int16_t>::min()}) == 8455483389771436374);
  CHECK(HashInt8(int64_t{std::numeric_limits<int16_t>::max()}) == 1790040721271588170);
}

TEST_CASE("HashInt8 folds the high half into the low half", "[hash]") {
  // A consequence of PostgreSQL's int8 hash that docs/sharding.md states as a limit: a
  // non-negative key with high half h and low half l hashes like the 32-bit value l ^ h,
  // so bigint keys have at most 2^32 distinct hashes.
  CHECK(HashInt8(int64_t{1} << 32) == HashInt8(1));
  CHECK(HashInt8((int64_t{5} << 32) | 5) == HashInt8(0));
  CHECK(HashInt8(0) != HashInt8(1));
}

TEST_CASE("HashText equals hashtextextended(t, 0)", "[hash]") {
  struct Case {
    std::string key;
    int64_t want;
  };
  // Lengths 0..13 walk every tail case of the byte hash (0-11 leftover bytes, one full
  // 12-byte block, a block plus one byte); 24 and 25 cover two blocks.
  const Case cases[] = {
      {"", -6939563903564495251},
      {"a", 3591986179850072241},
      {"ab", 2833316173711343549},
      {"abc", -6747756470228489321},
      {"abcd", -1038429303365892052},
      {"abcde", 3076356108696143428},
      {"abcdefghijk", 3112909444737856467},
      {"abcdefghijkl", -7556637188122330412},
      {"abcdefghijklm", 8871624171452417744},
      {"abcdefghijklmnopqrstuvwx", -1933194731779935345},
      {"abcdefghijklmnopqrstuvwxy", 5649064133428767341},
      {"tenant-42", 2308422559236963683},
      {"shard1#0", 5458105870523849688},
      {"h\xc3\xa9llo w\xc3\xb6rld", 6639232088034648728},  // héllo wörld
      // 日本語テキスト
      {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88",
       7199576139645017696},
      // 🐘 PostgreSQL 🐘
      {"\xf0\x9f\x90\x98 PostgreSQL \xf0\x9f\x90\x98", 7746481995186340662},
      {std::string(100, 'x'), -6927006773748011226},
  };
  for (const Case& c : cases) {
    INFO("key [" << c.key << "] length " << c.key.size());
    CHECK(HashText(c.key) == c.want);
  }
  std::string long_text;
  for (int i = 0; i < 50; ++i) long_text += "pgring";
  CHECK(HashText(long_text) == 5943448656384613828);
}

TEST_CASE("HashText hashes bytes, not a C string", "[hash]") {
  // The view's length counts, and a view into a larger buffer hashes only its bytes.
  const std::string buffer = "abcdefghijklm";
  CHECK(HashText(std::string_view(buffer).substr(0, 1)) == 3591986179850072241);
  CHECK(HashText(std::string_view(buffer).substr(0, 12)) == -7556637188122330412);
  CHECK(HashText(std::string_view()) == -6939563903564495251);
}

TEST_CASE("HashUuid equals uuid_hash_extended(u, 0)", "[hash]") {
  struct Case {
    std::string_view key;
    int64_t want;
  };
  const Case cases[] = {
      {"00000000-0000-0000-0000-000000000000", -6859010066814654381},
      {"ffffffff-ffff-ffff-ffff-ffffffffffff", 293445543803463785},
      {"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", 7543054272012930821},
      {"00000000-0000-0000-0000-000000000001", 3419970005924668665},
      {"80000000-0000-0000-0000-000000000000", 9022107499229921510},
  };
  for (const Case& c : cases) {
    INFO("key " << c.key);
    CHECK(HashUuid(Uuid(c.key)) == c.want);
  }
  // uuid hashing is the byte hash over the 16 bytes, as text hashing is over its bytes.
  const auto uuid = Uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  CHECK(HashBytes(uuid) == 7543054272012930821);
}

TEST_CASE("ParseUuid accepts what PostgreSQL's uuid_in accepts", "[hash][uuid]") {
  const std::array<uint8_t, 16> want = {0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8,
                                        0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11};
  for (std::string_view text : {
           "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
           "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
           "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
           "a0eebc999c0b4ef8bb6d6bb9bd380a11",
           "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
           "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}",
           "{A0eEBc999c0b4ef8bb6d6bb9bd380a11}",
       }) {
    INFO(text);
    auto parsed = ParseUuid(text);
    REQUIRE(parsed.has_value());
    CHECK(*parsed == want);
  }
  CHECK(ParseUuid("00000000-0000-0000-0000-000000000000") == std::array<uint8_t, 16>{});
  std::array<uint8_t, 16> all_ones;
  all_ones.fill(0xff);
  CHECK(ParseUuid("ffffffff-ffff-ffff-ffff-ffffffffffff") == all_ones);
}

TEST_CASE("ParseUuid rejects what PostgreSQL's uuid_in rejects", "[hash][uuid]") {
  // Each of these fails in PostgreSQL 15 with "invalid input syntax for type uuid".
  for (std::string_view text : {
           "",
           "{}",
           "{",
           "-",
           " a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
           "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 ",
           "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",
           "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11",
           "a0eeb-c99-9c0b-4ef8-bb6d-6bb9bd380a11",
           "-a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
           "{a0eebc999c0b4ef8bb6d6bb9bd380a11",
           "a0eebc999c0b4ef8bb6d6bb9bd380a11}",
           "{a0eebc999c0b4ef8bb6d6bb9bd380a11}}",
           "a0eebc999c0b4ef8bb6d6bb9bd380a1",
           "a0eebc999c0b4ef8bb6d6bb9bd380a111",
           "g0eebc999c0b4ef8bb6d6bb9bd380a11",
           "0xeebc999c0b4ef8bb6d6bb9bd380a11",
       }) {
    INFO("[" << text << "]");
    CHECK_FALSE(ParseUuid(text).has_value());
  }
  // An embedded NUL ends the string for PostgreSQL; here it is simply not a hex digit.
  CHECK_FALSE(ParseUuid(std::string_view("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1\0", 36)));
  CHECK_FALSE(
      ParseUuid(std::string_view("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\0", 37)).has_value());
}

}  // namespace
}  // namespace pgring::sharding
