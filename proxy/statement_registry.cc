#include "proxy/statement_registry.h"

#include "proxy/str.h"

namespace pgring::proxy {

std::shared_ptr<const PreparedStatement> StatementRegistry::Intern(const protocol::Parse& parse) {
  // Key: the query, a NUL, then the raw parameter type OIDs.
  key_.assign(parse.query);
  key_.push_back('\0');
  key_.append(reinterpret_cast<const char*>(parse.param_types.data()), parse.param_types.size());
  if (auto it = by_key_.find(key_); it != by_key_.end()) return it->second;

  auto stmt = std::make_shared<PreparedStatement>();
  stmt->id = next_id_++;
  stmt->server_name = Cat("pgring_", stmt->id);
  stmt->query = std::string(parse.query);
  stmt->param_types.reserve(parse.num_param_types);
  for (int i = 0; i < parse.num_param_types; ++i) stmt->param_types.push_back(parse.ParamType(i));
  by_key_.emplace(key_, stmt);
  if (by_key_.size() > 4 * 65536) Collect();
  return stmt;
}

void StatementRegistry::Collect() {
  absl::erase_if(by_key_, [](const auto& kv) { return kv.second.use_count() == 1; });
}

}  // namespace pgring::proxy
