// Tells the router what pgring knows about a table: sharded (by which column, of which key
// type), reference (a full copy on every shard), a PostgreSQL system catalog, or unknown.
//
//   TableMap map(config);                                   // conf::Config tables + default_shard
//   const TableInfo* t = map.Find("", "orders");            // "" = unqualified = public
//   if (t != nullptr && t->kind == conf::TableKind::kSharded) Use(t->key_column, t->key_type);
//   switch (map.Classify("pg_catalog", "pg_class")) { ... }  // TableClass::kCatalog
//
// Names are compared as PostgreSQL compares identifiers after folding: exactly, byte for
// byte. The analyzer folds unquoted names in a statement to lower case and keeps quoted
// ones verbatim; the configuration folds its names to lower case when it is loaded. So
// `Orders` and `orders` in a query both find the configured table `orders`, and `"Orders"`
// (quoted) is a different table, as it is in PostgreSQL. A statement's unqualified name
// means schema `public` (pgring does not follow search_path); a configured name may be
// `orders` or `public.orders`. Names longer than 63 bytes are cut to 63 bytes, as
// PostgreSQL cuts identifiers (NAMEDATALEN).
//
// A TableMap is immutable after construction and may be read from any thread. The
// TableInfo pointers it returns live as long as the map.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "conf/config.h"
#include "sharding/string_map.h"

namespace pgring::sharding {

// What a table is to the router.
enum class TableClass {
  kSharded,    // configured, kind: sharded
  kReference,  // configured, kind: reference
  kCatalog,    // pg_catalog / information_schema (or an unqualified pg_* name): on every shard
  kUnknown,    // not configured: lives on the default shard, if one is configured
};

// One configured table.
struct TableInfo {
  std::string schema;  // "public" when the configuration names none
  std::string name;
  conf::TableKind kind = conf::TableKind::kSharded;
  std::string key_column;  // sharded tables only
  conf::KeyType key_type = conf::KeyType::kInt;

  // Returns "name" for schema public, else "schema.name" (for messages).
  std::string DisplayName() const;
};

// Returns `id` as PostgreSQL keeps it: cut to its first 63 bytes.
std::string_view TruncateIdentifier(std::string_view id);

class TableMap {
 public:
  // An empty map: every table is unknown and there is no default shard.
  TableMap() = default;
  // Builds the map from config.tables and config.default_shard.
  explicit TableMap(const conf::Config& config);
  // Builds the map from a table list (names as conf::Config holds them: lower case,
  // optionally "schema.name") and a default shard name ("" for none). When a table is
  // listed twice (the configuration loader rejects that), the first entry counts.
  TableMap(const std::vector<conf::TableConfig>& tables, std::string default_shard);

  // Returns the configured table named `name` in `schema` (empty schema = public), or
  // nullptr when the table is not configured. Does not allocate.
  const TableInfo* Find(std::string_view schema, std::string_view name) const;

  // Returns the class of a table as a statement names it: the configuration first, then
  // system catalogs (schema pg_catalog or information_schema, or an unqualified name
  // starting with "pg_", which PostgreSQL looks up in pg_catalog first), else kUnknown.
  TableClass Classify(std::string_view schema, std::string_view name) const;
  // Classify that also sets `info` to the table's entry (null unless the table is sharded
  // or a reference table): one lookup for both.
  TableClass Classify(std::string_view schema, std::string_view name, const TableInfo*& info) const;

  // The configured default shard name, or "" when tables outside the map are an error.
  const std::string& default_shard() const { return default_shard_; }

  // The key type shared by every sharded table, or nullopt if there is no sharded table
  // or the types differ. Used to read a shard-key hint that no table in the statement
  // types.
  std::optional<conf::KeyType> common_key_type() const { return common_key_type_; }

  // Number of configured tables.
  size_t size() const { return size_; }

  // Names this map's content: maps built separately have different ids (a copy keeps its
  // source's). What is worked out from a map (a RouteMemo) records the id it was made for.
  uint64_t id() const { return id_; }

 private:
  void Add(const conf::TableConfig& table);

  // Keyed by table name; the vector holds one entry per schema with a table of that name
  // (usually one). Vector storage keeps TableInfo addresses stable when the map moves.
  StringMap<std::vector<TableInfo>> by_name_;
  std::string default_shard_;
  std::optional<conf::KeyType> common_key_type_;
  bool any_sharded_ = false;
  bool mixed_key_types_ = false;
  size_t size_ = 0;
  uint64_t id_ = NextId();

  static uint64_t NextId();
};

}  // namespace pgring::sharding
