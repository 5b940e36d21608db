// The admin database "pgring" on the admin port: a psql-compatible console that answers
// SHOW POOLS / CLIENTS / SERVERS / STATS / CONFIG / SHARDS / RING / VERSION / HELP,
// explains routing (SHOW ROUTE <statements>, SHOW ROUTE KEY <table> <value>) and runs
// RELOAD, PAUSE, RESUME and SHUTDOWN. Only users with `admin: true` may log in. Column
// names follow PgBouncer's where the concept is the same, so existing dashboards work.
// One coroutine per admin connection, on worker 0's thread; SHOW RING and SHOW ROUTE read
// worker 0's topology snapshot (docs/admin.md).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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
  // Type OID of each column (20 bigint, 16 boolean, 25 text); empty means all text.
  std::vector<uint32_t> types;
};

class AdminSession : public std::enable_shared_from_this<AdminSession> {
 public:
  AdminSession(Worker& worker, TcpSocket socket);
  awaitable<void> Run();

 private:
  // Runs one command; `command` is a view into `query`, the whole query string (for the
  // position of a syntax error in SHOW ROUTE).
  awaitable<absl::StatusOr<AdminResult>> Execute(std::string_view command,
                                                 std::string_view query);

  Worker& worker_;
  Stream stream_;
  protocol::Buffer in_;
};

}  // namespace pgring::proxy
