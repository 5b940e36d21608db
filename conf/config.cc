#include "conf/config.h"

#include <algorithm>
#include <utility>

namespace pgring::conf {
namespace {

// Splits "schema.table" into its parts; an unqualified name lives in schema public,
// which is where PostgreSQL's default search_path resolves it.
std::pair<std::string_view, std::string_view> SplitQualified(std::string_view name) {
  const size_t dot = name.find('.');
  if (dot == std::string_view::npos) return {"public", name};
  return {name.substr(0, dot), name.substr(dot + 1)};
}

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return Lower(x) == Lower(y); });
}

}  // namespace

std::string_view ToString(PoolMode mode) {
  switch (mode) {
    case PoolMode::kTransaction:
      return "transaction";
    case PoolMode::kSession:
      return "session";
  }
  return "?";
}

std::string_view ToString(AuthMethod method) {
  switch (method) {
    case AuthMethod::kScramSha256:
      return "scram-sha-256";
    case AuthMethod::kMd5:
      return "md5";
    case AuthMethod::kTrust:
      return "trust";
  }
  return "?";
}

std::string_view ToString(ClientTlsMode mode) {
  switch (mode) {
    case ClientTlsMode::kDisable:
      return "disable";
    case ClientTlsMode::kAllow:
      return "allow";
    case ClientTlsMode::kRequire:
      return "require";
  }
  return "?";
}

std::string_view ToString(SslMode mode) {
  switch (mode) {
    case SslMode::kDisable:
      return "disable";
    case SslMode::kPrefer:
      return "prefer";
    case SslMode::kRequire:
      return "require";
  }
  return "?";
}

std::string_view ToString(KeyType type) {
  switch (type) {
    case KeyType::kInt:
      return "bigint";
    case KeyType::kText:
      return "text";
    case KeyType::kUuid:
      return "uuid";
  }
  return "?";
}

std::string_view ToString(TableKind kind) {
  switch (kind) {
    case TableKind::kSharded:
      return "sharded";
    case TableKind::kReference:
      return "reference";
  }
  return "?";
}

std::string_view ToString(LogFormat format) {
  switch (format) {
    case LogFormat::kText:
      return "text";
    case LogFormat::kJson:
      return "json";
  }
  return "?";
}

const TableConfig* Config::FindTable(std::string_view name) const {
  const auto [schema, table] = SplitQualified(name);
  for (const auto& t : tables) {
    const auto [t_schema, t_table] = SplitQualified(t.name);
    if (EqualsIgnoreCase(schema, t_schema) && EqualsIgnoreCase(table, t_table)) {
      return &t;
    }
  }
  return nullptr;
}

}  // namespace pgring::conf
