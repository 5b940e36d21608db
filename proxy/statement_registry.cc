#include "proxy/statement_registry.h"

#include "proxy/str.h"

namespace pgring::proxy {

std::shared_ptr<const PreparedStatement> StatementRegistry::Intern(const protocol::Parse& parse) {
  types_.clear();
  for (int i = 0; i < parse.num_param_types; ++i) types_.push_back(parse.ParamType(i));
  return Intern(parse.query, types_);
}

std::shared_ptr<const PreparedStatement> StatementRegistry::Intern(
    std::string_view query, std::span<const uint32_t> param_types) {
  // Key: the query, a NUL, then the parameter type OIDs.
  key_.assign(query);
  key_.push_back('\0');
  key_.append(reinterpret_cast<const char*>(param_types.data()), param_types.size_bytes());
  if (auto it = by_key_.find(key_); it != by_key_.end()) return it->second;

  auto stmt = std::make_shared<PreparedStatement>();
  stmt->id = next_id_++;
  stmt->server_name = Cat("pgring_", stmt->id);
  stmt->query = std::string(query);
  stmt->param_types.assign(param_types.begin(), param_types.end());
  by_key_.emplace(key_, stmt);
  if (by_key_.size() > 4 * 65536) Collect();
  return stmt;
}

void StatementRegistry::Collect() {
  absl::erase_if(by_key_, [](const auto& kv) { return kv.second.use_count() == 1; });
}

}  // namespace pgring::proxy
