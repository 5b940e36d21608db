// The admin database "pgring" on the admin port: a psql-compatible console that answers
// SHOW POOLS / CLIENTS / SERVERS / STATS / CONFIG / SHARDS / VERSION / HELP and runs
// RELOAD, PAUSE, RESUME and SHUTDOWN. Only users with `admin: true` may log in. Column
// names follow PgBouncer's where the concept is the same, so existing dashboards work.
// One coroutine per admin connection, on worker 0's thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "protocol/buffer.h"
#include "proxy/asio.h"
#include "proxy/stream.h"

namespace pgring::proxy {

class Worker;

// The rows of one admin command, as text.
struct AdminResult {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  std::string tag;  // CommandComplete tag, e.g. "SHOW" or "RELOAD"
};

class AdminSession : public std::enable_shared_from_this<AdminSession> {
 public:
  AdminSession(Worker& worker, tcp::socket socket);
  awaitable<void> Run();

 private:
  awaitable<absl::StatusOr<AdminResult>> Execute(std::string_view command);

  Worker& worker_;
  Stream stream_;
  protocol::Buffer in_;
};

}  // namespace pgring::proxy
