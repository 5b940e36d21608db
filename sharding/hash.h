// PostgreSQL-compatible 64-bit hashing of shard keys.
//
// Each function returns exactly what PostgreSQL 15 returns for the SQL expression named
// beside it, so the owner of a key (and "the rows of ring range R") can be computed on a
// shard in plain SQL with built-in immutable functions:
//
//   HashInt8(k)   == hashint8extended(k::bigint, 0)
//   HashText(k)   == hashtextextended(k::text, 0)      (deterministic collation)
//   HashUuid(k)   == uuid_hash_extended(k::uuid, 0)
//   HashBytes(b)  == the hash_any_extended(b, len, 0) that text and uuid both use
//
// smallint and integer keys: PostgreSQL's hashint2extended(k, 0) and hashint4extended(k, 0)
// equal hashint8extended(k::bigint, 0) for every value, so callers widen them to int64_t
// and call HashInt8. Text keys are hashed as the bytes the server stores, i.e. UTF-8 in a
// UTF8 database; char(n) (bpchar) keys are not covered (PostgreSQL strips trailing blanks).
//
// The values are those of a little-endian server (x86_64, arm64): PostgreSQL's byte hash
// reads the data as native 32-bit words, so a big-endian server computes different values.
// The functions are pure, thread-safe and do not allocate.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace pgring::sharding {

// Returns hashint8extended(key, 0).
int64_t HashInt8(int64_t key);

// Returns hashtextextended(key, 0) for a text value whose bytes are `key`.
int64_t HashText(std::string_view key);

// Returns uuid_hash_extended(key, 0) for the uuid with these 16 bytes (network order, as
// written in the text form).
int64_t HashUuid(std::span<const uint8_t, 16> key);

// Returns PostgreSQL's hash_any_extended(bytes, size, 0).
int64_t HashBytes(std::span<const uint8_t> bytes);

// Parses a uuid the way PostgreSQL's uuid input function does: 32 hex digits (either
// case), optionally wrapped in one pair of braces, with an optional single '-' after any
// group of four digits except the last. Returns nullopt for anything else (including
// surrounding white space, which PostgreSQL rejects too).
std::optional<std::array<uint8_t, 16>> ParseUuid(std::string_view text);

}  // namespace pgring::sharding
