// Compares pgring's hash functions with a live PostgreSQL 15 server, key by key: the ring
// is only correct if a shard computes exactly the same hash in SQL (rebalancing selects
// "the rows of range R" with hashint8extended/hashtextextended/uuid_hash_extended).
//
// Keys are generated on the server (edge values, generate_series, md5-derived values,
// text of every length 0..100 with 2-, 3- and 4-byte UTF-8 characters, gen_random_uuid)
// and each type is fetched as (key, hash) pairs with one query. Uses the first DSN of
// SHARD_DSNS from the env file named by PGRING_TEST_ENV.
#include <libpq-fe.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <charconv>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sharding/hash.h"
#include "sharding/ring.h"
#include "tests/integration/env.h"
#include "tests/integration/pq.h"

namespace pgring::sharding {
namespace {

constexpr int kMinKeysPerType = 100000;

using Conn = pgring::test::PgConn;
using Result = pgring::test::PgResult;

Conn ConnectToFirstShard() {
  const std::vector<std::string> dsns = pgring::test::ShardDsns();
  REQUIRE_FALSE(dsns.empty());
  Conn conn(PQconnectdb(dsns.front().c_str()));
  INFO(dsns.front() << ": " << PQerrorMessage(conn.get()));
  REQUIRE(PQstatus(conn.get()) == CONNECTION_OK);
  // The hash covers the bytes the server stores; fetching them in the server's own
  // encoding (UTF8 on the test cluster) makes the client see those very bytes.
  REQUIRE(std::string_view(PQparameterStatus(conn.get(), "server_encoding")) == "UTF8");
  REQUIRE(PQsetClientEncoding(conn.get(), "UTF8") == 0);
  return conn;
}

// Runs `sql` and returns its rows; every returned column must be non-null.
Result Query(PGconn* conn, const std::string& sql) {
  Result res(PQexec(conn, sql.c_str()));
  INFO(sql << "\n" << PQerrorMessage(conn));
  REQUIRE(PQresultStatus(res.get()) == PGRES_TUPLES_OK);
  return res;
}

std::string_view Value(const PGresult* res, int row, int col) {
  REQUIRE_FALSE(PQgetisnull(res, row, col));
  return {PQgetvalue(res, row, col), static_cast<size_t>(PQgetlength(res, row, col))};
}

int64_t Int64(const PGresult* res, int row, int col) {
  std::string_view text = Value(res, row, col);
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  REQUIRE(ec == std::errc());
  REQUIRE(end == text.data() + text.size());
  return value;
}

TEST_CASE("HashInt8 equals hashint8extended for every key", "[hash][postgres]") {
  Conn conn = ConnectToFirstShard();
  // 64-bit keys from md5 cover the whole range; the series covers small keys densely.
  Result res = Query(conn.get(), R"sql(
    WITH keys(k) AS (
      SELECT unnest(ARRAY[0, 1, -1, 2, -2, 42,
                          -9223372036854775808, -9223372036854775807,
                          9223372036854775807, 9223372036854775806,
                          -2147483649, -2147483648, -2147483647,
                          2147483646, 2147483647, 2147483648,
                          -4294967296, -4294967295, 4294967295, 4294967296,
                          -32768, 32767, 65535, 65536]::int8[])
      UNION ALL SELECT generate_series(-50000, 50000)::int8
      UNION ALL SELECT ('x' || md5(i::text))::bit(64)::int8 FROM generate_series(1, 100000) i
    )
    SELECT k, hashint8extended(k, 0) FROM keys)sql");
  const int rows = PQntuples(res.get());
  REQUIRE(rows >= 2 * kMinKeysPerType);
  int mismatches = 0;
  for (int row = 0; row < rows; ++row) {
    const int64_t key = Int64(res.get(), row, 0);
    const int64_t want = Int64(res.get(), row, 1);
    if (HashInt8(key) != want) {
      if (++mismatches <= 10) {
        FAIL_CHECK("key " << key << ": pgring " << HashInt8(key) << ", PostgreSQL " << want);
      }
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("integer and smallint keys hash like bigint on the server", "[hash][postgres]") {
  // docs/sharding.md tells users of int4/int2 keys to use hashint8extended(k, 0); this is
  // the server-side proof that hashint4extended/hashint2extended return the same.
  Conn conn = ConnectToFirstShard();
  Result res = Query(conn.get(), R"sql(
    WITH int4_keys(k) AS (
      SELECT unnest(ARRAY[-2147483648, -2147483647, -1, 0, 1, 2147483646, 2147483647]::int4[])
      UNION ALL SELECT ('x' || md5(i::text))::bit(32)::int4 FROM generate_series(1, 100000) i
    ), int2_keys(k) AS (
      SELECT generate_series(-32768, 32767)::int2
    )
    SELECT k::int8, hashint4extended(k, 0) FROM int4_keys
    UNION ALL
    SELECT k::int8, hashint2extended(k, 0) FROM int2_keys)sql");
  const int rows = PQntuples(res.get());
  REQUIRE(rows >= kMinKeysPerType + 65536);
  int mismatches = 0;
  for (int row = 0; row < rows; ++row) {
    const int64_t key = Int64(res.get(), row, 0);
    const int64_t want = Int64(res.get(), row, 1);
    if (HashInt8(key) != want) {
      if (++mismatches <= 10) {
        FAIL_CHECK("key " << key << ": pgring " << HashInt8(key) << ", PostgreSQL " << want);
      }
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("HashText equals hashtextextended for every key", "[hash][postgres]") {
  Conn conn = ConnectToFirstShard();
  // Lengths 0..100 characters; each 36-character unit is 32 hex digits, a 2-byte,
  // a 3-byte and a 4-byte UTF-8 character and a space, so byte lengths vary too and the
  // multibyte characters land at every offset within the 12-byte blocks.
  Result res = Query(conn.get(), R"sql(
    WITH keys(t) AS (
      SELECT unnest(ARRAY['', ' ', 'a', 'tenant-42', E'tab\there', E'back\\slash',
                          'quote''s', chr(1), chr(127), chr(233), chr(28450), chr(128024),
                          chr(1114111), repeat('x', 10000), repeat(chr(128024), 1000)])
      UNION ALL
      SELECT left(repeat(md5(i::text) || chr(233) || chr(28450) || chr(128024) || ' ', 3),
                  i % 101)
        FROM generate_series(1, 100000) i
      UNION ALL
      SELECT repeat(chr(1 + i % 55295), i % 7) || md5(i::text)
        FROM generate_series(1, 5000) i
    )
    SELECT t, hashtextextended(t, 0) FROM keys)sql");
  const int rows = PQntuples(res.get());
  REQUIRE(rows >= kMinKeysPerType);
  int mismatches = 0;
  size_t max_bytes = 0;
  bool saw_empty = false;
  for (int row = 0; row < rows; ++row) {
    const std::string_view key = Value(res.get(), row, 0);
    const int64_t want = Int64(res.get(), row, 1);
    max_bytes = std::max(max_bytes, key.size());
    saw_empty = saw_empty || key.empty();
    if (HashText(key) != want) {
      if (++mismatches <= 10) {
        FAIL_CHECK("key [" << key << "] (" << key.size() << " bytes): pgring " << HashText(key)
                           << ", PostgreSQL " << want);
      }
    }
  }
  CHECK(mismatches == 0);
  CHECK(saw_empty);
  CHECK(max_bytes == 10000);
}

TEST_CASE("HashUuid equals uuid_hash_extended for every key", "[hash][postgres]") {
  Conn conn = ConnectToFirstShard();
  Result res = Query(conn.get(), R"sql(
    WITH keys(u) AS (
      SELECT unnest(ARRAY['00000000-0000-0000-0000-000000000000',
                          'ffffffff-ffff-ffff-ffff-ffffffffffff',
                          '00000000-0000-0000-0000-000000000001',
                          '80000000-0000-0000-0000-000000000000',
                          '7fffffff-ffff-ffff-ffff-ffffffffffff']::uuid[])
      UNION ALL SELECT md5(i::text)::uuid FROM generate_series(1, 5000) i
      UNION ALL SELECT gen_random_uuid() FROM generate_series(1, 100000)
    )
    SELECT u, uuid_hash_extended(u, 0) FROM keys)sql");
  const int rows = PQntuples(res.get());
  REQUIRE(rows >= kMinKeysPerType);
  int mismatches = 0;
  for (int row = 0; row < rows; ++row) {
    const std::string_view text = Value(res.get(), row, 0);
    const auto key = ParseUuid(text);
    INFO("uuid " << text);
    REQUIRE(key.has_value());
    const int64_t want = Int64(res.get(), row, 1);
    if (HashUuid(*key) != want) {
      if (++mismatches <= 10) {
        FAIL_CHECK("key " << text << ": pgring " << HashUuid(*key) << ", PostgreSQL " << want);
      }
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("the ring's tokens and owners can be recomputed in SQL", "[ring][postgres]") {
  // The SQL below is the one docs/sharding.md gives to DBAs; it must agree with Ring.
  auto built = Ring::Build(RingVersion(1), {"shard-a", "shard-b", "shard-c"}, 64);
  REQUIRE(built.ok());
  const Ring& ring = **built;
  Conn conn = ConnectToFirstShard();

  Result tokens = Query(conn.get(), R"sql(
    SELECT hashtextextended(s.name || '#' || v, 0) AS token, s.name
      FROM unnest(ARRAY['shard-a', 'shard-b', 'shard-c']) AS s(name),
           generate_series(0, 63) AS v
     ORDER BY token, s.name COLLATE "C")sql");
  REQUIRE(PQntuples(tokens.get()) == static_cast<int>(ring.tokens().size()));
  for (int row = 0; row < PQntuples(tokens.get()); ++row) {
    const Token& token = ring.tokens()[static_cast<size_t>(row)];
    CHECK(Int64(tokens.get(), row, 0) == token.token);
    CHECK(Value(tokens.get(), row, 1) == ring.shard_name(token.shard));
  }

  Result owners = Query(conn.get(), R"sql(
    WITH tokens AS (
      SELECT hashtextextended(s.name || '#' || v, 0) AS token, s.name
        FROM unnest(ARRAY['shard-a', 'shard-b', 'shard-c']) AS s(name),
             generate_series(0, 63) AS v
    ), keys(k) AS (
      SELECT unnest(ARRAY[-9223372036854775808, 9223372036854775807]::int8[])
      UNION ALL SELECT ('x' || md5(i::text))::bit(64)::int8 FROM generate_series(1, 3000) i
    )
    SELECT k, coalesce(
             (SELECT name FROM tokens WHERE token >= hashint8extended(k, 0)
               ORDER BY token, name COLLATE "C" LIMIT 1),
             (SELECT name FROM tokens ORDER BY token, name COLLATE "C" LIMIT 1))
      FROM keys)sql");
  REQUIRE(PQntuples(owners.get()) == 3002);
  for (int row = 0; row < PQntuples(owners.get()); ++row) {
    const int64_t key = Int64(owners.get(), row, 0);
    INFO("key " << key);
    CHECK(Value(owners.get(), row, 1) == ring.shard_name(ring.Lookup(HashInt8(key))));
  }

  // RangesOf gives the BETWEEN bounds that select a shard's rows: a key satisfies the
  // predicate for shard-b exactly when the ring gives it to shard-b.
  std::string in_b_sql;
  for (const Range& range : ring.RangesOf(*ring.FindShard("shard-b"))) {
    if (!in_b_sql.empty()) in_b_sql += " OR ";
    in_b_sql += "hashint8extended(k, 0) BETWEEN " + std::to_string(range.lo) + " AND " +
                std::to_string(range.hi);
  }
  Result in_b = Query(conn.get(), "SELECT k, (" + in_b_sql + R"sql()::text
      FROM (SELECT ('x' || md5(i::text))::bit(64)::int8 FROM generate_series(1, 3000) i)
        AS keys(k))sql");
  REQUIRE(PQntuples(in_b.get()) == 3000);
  int selected = 0;
  for (int row = 0; row < PQntuples(in_b.get()); ++row) {
    const int64_t key = Int64(in_b.get(), row, 0);
    const bool want = ring.shard_name(ring.Lookup(HashInt8(key))) == "shard-b";
    INFO("key " << key);
    CHECK((Value(in_b.get(), row, 1) == "true") == want);
    selected += want ? 1 : 0;
  }
  CHECK(selected > 0);
}

}  // namespace
}  // namespace pgring::sharding
