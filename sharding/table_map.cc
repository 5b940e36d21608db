#include "sharding/table_map.h"

#include <fmt/format.h>

#include <atomic>
#include <utility>

namespace pgring::sharding {
namespace {

constexpr std::string_view kPublic = "public";
// PostgreSQL's NAMEDATALEN - 1: longer identifiers are truncated by the server.
constexpr size_t kMaxIdentifierBytes = 63;

}  // namespace

std::string_view TruncateIdentifier(std::string_view id) {
  return id.size() > kMaxIdentifierBytes ? id.substr(0, kMaxIdentifierBytes) : id;
}

std::string TableInfo::DisplayName() const {
  if (schema == kPublic) return name;
  return fmt::format("{}.{}", schema, name);
}

uint64_t TableMap::NextId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

TableMap::TableMap(const conf::Config& config) : TableMap(config.tables, config.default_shard) {}

TableMap::TableMap(const std::vector<conf::TableConfig>& tables, std::string default_shard)
    : default_shard_(std::move(default_shard)) {
  for (const conf::TableConfig& t : tables) Add(t);
  if (any_sharded_ && !mixed_key_types_) {
    for (const auto& [name, infos] : by_name_) {
      for (const TableInfo& info : infos) {
        if (info.kind == conf::TableKind::kSharded) common_key_type_ = info.key_type;
      }
    }
  }
}

void TableMap::Add(const conf::TableConfig& table) {
  TableInfo info;
  const std::string_view full = table.name;
  const size_t dot = full.find('.');
  const std::string_view schema = dot == std::string_view::npos ? kPublic : full.substr(0, dot);
  const std::string_view name = dot == std::string_view::npos ? full : full.substr(dot + 1);
  info.schema = std::string(TruncateIdentifier(schema));
  info.name = std::string(TruncateIdentifier(name));
  if (Find(info.schema, info.name) != nullptr) return;  // the first entry counts
  info.kind = table.kind;
  if (table.kind == conf::TableKind::kSharded) {
    info.key_column = std::string(TruncateIdentifier(table.shard_key));
    info.key_type = table.key_type;
    for (const auto& [other_name, infos] : by_name_) {
      for (const TableInfo& other : infos) {
        if (other.kind == conf::TableKind::kSharded && other.key_type != info.key_type) {
          mixed_key_types_ = true;
        }
      }
    }
    any_sharded_ = true;
  }
  by_name_[info.name].push_back(std::move(info));
  ++size_;
}

const TableInfo* TableMap::Find(std::string_view schema, std::string_view name) const {
  if (schema.empty()) schema = kPublic;
  schema = TruncateIdentifier(schema);
  auto it = by_name_.find(TruncateIdentifier(name));
  if (it == by_name_.end()) return nullptr;
  for (const TableInfo& info : it->second) {
    if (info.schema == schema) return &info;
  }
  return nullptr;
}

TableClass TableMap::Classify(std::string_view schema, std::string_view name) const {
  const TableInfo* info = nullptr;
  return Classify(schema, name, info);
}

TableClass TableMap::Classify(std::string_view schema, std::string_view name,
                              const TableInfo*& info) const {
  info = Find(schema, name);
  if (info != nullptr) {
    return info->kind == conf::TableKind::kSharded ? TableClass::kSharded : TableClass::kReference;
  }
  if (schema == "pg_catalog" || schema == "information_schema") return TableClass::kCatalog;
  if (schema.empty() && name.starts_with("pg_")) return TableClass::kCatalog;
  return TableClass::kUnknown;
}

}  // namespace pgring::sharding
