// Deduplicates protocol-level prepared statements across the clients of one worker.
// Each distinct (query text, parameter types) gets one id and one server-side name
// ("pgring_<id>"); a server connection prepares it once and every client's named
// statement with that text maps onto it, so transaction pooling can hand any server
// connection to any client. Owned by a Worker; used on its thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "protocol/messages.h"

namespace pgring::proxy {

struct PreparedStatement {
  uint64_t id = 0;
  std::string server_name;  // "pgring_<id>"
  std::string query;
  std::vector<uint32_t> param_types;
};

class StatementRegistry {
 public:
  // Returns the statement for this Parse's text and parameter types, creating it once.
  std::shared_ptr<const PreparedStatement> Intern(const protocol::Parse& parse);
  // Forgets statements no client refers to any more (bounded memory).
  void Collect();
  size_t size() const { return by_key_.size(); }

 private:
  absl::flat_hash_map<std::string, std::shared_ptr<const PreparedStatement>> by_key_;
  uint64_t next_id_ = 1;
  std::string key_;  // reused lookup key buffer
};

}  // namespace pgring::proxy
