// Deduplicates protocol-level prepared statements across the clients of one worker.
// Each distinct (query text, parameter types) gets one id and one server-side name
// ("pgring_<id>"); a server connection prepares it once and every client's named
// statement with that text maps onto it, so transaction pooling can hand any server
// connection to any client. Owned by a Worker; used on its thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "protocol/messages.h"
#include "sharding/analyzer.h"
#include "sharding/router.h"

namespace pgring::proxy {

struct PreparedStatement {
  uint64_t id = 0;
  std::string server_name;  // "pgring_<id>"
  std::string query;
  std::vector<uint32_t> param_types;
  // The query's analysis, filled by the first session that routes it (worker thread only;
  // null until then).
  mutable std::shared_ptr<const sharding::Analysis> analysis;
  // The route memo of the analysis's statement (same thread as `analysis`).
  mutable sharding::RouteMemo memo;
  // MayChangeSession(query), filled the same way (unset until then).
  mutable std::optional<bool> may_change_session;
};

class StatementRegistry {
 public:
  // Returns the statement for this Parse's text and parameter types, creating it once.
  std::shared_ptr<const PreparedStatement> Intern(const protocol::Parse& parse);
  std::shared_ptr<const PreparedStatement> Intern(std::string_view query,
                                                  std::span<const uint32_t> param_types);
  // Forgets statements no client refers to any more (bounded memory).
  void Collect();
  size_t size() const { return by_key_.size(); }

 private:
  absl::flat_hash_map<std::string, std::shared_ptr<const PreparedStatement>> by_key_;
  uint64_t next_id_ = 1;
  std::string key_;  // reused lookup key buffer
  std::vector<uint32_t> types_;
};

}  // namespace pgring::proxy
