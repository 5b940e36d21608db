#include "proxy/admin_console.h"

#include <ctime>
#include <map>

#include "proxy/str.h"
#include "conf/config.h"
#include "protocol/messages.h"
#include "protocol/sql_error.h"
#include "proxy/client_handshake.h"
#include "proxy/frame_io.h"
#include "proxy/proxy.h"
#include "proxy/version.h"
#include "proxy/worker.h"

namespace pgring::proxy {
namespace {

using namespace asio::experimental::awaitable_operators;
using Row = std::vector<std::optional<std::string>>;

std::string FormatTime(Clock::time_point tp) {
  auto sys = std::chrono::system_clock::now() -
             std::chrono::duration_cast<std::chrono::system_clock::duration>(Clock::now() - tp);
  std::time_t t = std::chrono::system_clock::to_time_t(sys);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string Ms(conf::Duration d) { return Cat(d.count(), "ms"); }

std::string PoolModeName(conf::PoolMode m) {
  return m == conf::PoolMode::kTransaction ? "transaction" : "session";
}

AdminResult ShowPools(const conf::Config& config, const std::vector<WorkerSnapshot>& snaps) {
  AdminResult r{{"database", "user", "shard", "cl_active", "cl_waiting", "sv_active", "sv_idle",
                 "sv_used", "sv_tested", "sv_login", "maxwait", "maxwait_us", "pool_mode",
                 "pool_size"},
                {},
                "SHOW"};
  for (size_t i = 0; i < config.shards.size(); ++i) {
    int active = 0, waiting = 0, idle = 0, size = 0;
    int64_t maxwait = 0;
    for (const auto& s : snaps) {
      if (i >= s.pools.size()) continue;
      const auto& p = s.pools[i];
      active += p.active;
      waiting += p.waiting;
      idle += p.idle;
      size = p.max_size;
      maxwait = std::max(maxwait, p.maxwait_us);
    }
    const auto& shard = config.shards[i];
    r.rows.push_back(Row{config.listen.database, shard.primary.user, shard.name,
                         std::to_string(active), std::to_string(waiting), std::to_string(active),
                         std::to_string(idle), "0", "0", "0", std::to_string(maxwait / 1000000),
                         std::to_string(maxwait % 1000000), PoolModeName(config.pool.mode),
                         std::to_string(size)});
  }
  return r;
}

AdminResult ShowClients(const std::vector<WorkerSnapshot>& snaps) {
  AdminResult r{{"type", "user", "database", "state", "addr", "port", "connect_time",
                 "request_time", "wait", "wait_us", "close_needed", "ptr", "link", "remote_pid",
                 "tls", "application_name", "prepared_statements", "pinned", "worker"},
                {},
                "SHOW"};
  for (const auto& s : snaps) {
    for (const auto& c : s.clients) {
      r.rows.push_back(Row{"C", c.user, c.database, c.state, c.addr, std::to_string(c.port),
                           FormatTime(c.connect_time), FormatTime(c.request_time), "0", "0", "0",
                           Cat(c.pid),
                           c.server_id ? std::optional<std::string>(Cat(c.server_id))
                                       : std::nullopt,
                           std::to_string(c.pid), c.tls ? "TLS" : "",
                           c.application_name, std::to_string(c.prepared_statements),
                           c.pinned ? "yes" : "no", std::to_string(s.index)});
    }
  }
  return r;
}

AdminResult ShowServers(const conf::Config& config, const std::vector<WorkerSnapshot>& snaps) {
  AdminResult r{{"type", "user", "database", "state", "addr", "port", "connect_time",
                 "request_time", "ptr", "link", "remote_pid", "tls", "prepared_statements",
                 "shard", "worker"},
                {},
                "SHOW"};
  for (const auto& s : snaps) {
    for (const auto& v : s.servers) {
      const auto* shard = config.FindShard(v.shard);
      r.rows.push_back(Row{"S", shard ? shard->primary.user : "", shard ? shard->primary.dbname : "",
                           v.state, v.addr, std::to_string(v.port), FormatTime(v.connect_time),
                           FormatTime(v.last_used), Cat(v.id),
                           v.client_pid ? std::optional<std::string>(Cat(v.client_pid))
                                        : std::nullopt,
                           std::to_string(v.remote_pid), v.tls ? "TLS" : "",
                           std::to_string(v.prepared_statements), v.shard,
                           std::to_string(s.index)});
    }
  }
  return r;
}

AdminResult ShowStats(const conf::Config& config, const std::vector<WorkerSnapshot>& snaps,
                      Clock::time_point started) {
  WorkerSnapshot t;
  for (const auto& s : snaps) {
    t.transactions += s.transactions;
    t.queries += s.queries;
    t.bytes_received += s.bytes_received;
    t.bytes_sent += s.bytes_sent;
    t.transaction_us += s.transaction_us;
    t.query_us += s.query_us;
    t.errors += s.errors;
    t.prepares += s.prepares;
    t.prepare_hits += s.prepare_hits;
    t.protocol_errors += s.protocol_errors;
    t.clients_rejected += s.clients_rejected;
    t.clients_accepted += s.clients_accepted;
    t.statements += s.statements;
    for (const auto& p : s.pools) {
      t.wait_us += p.stats.total_wait_us;
    }
  }
  double secs = std::max(1.0, std::chrono::duration<double>(Clock::now() - started).count());
  auto per_sec = [&](uint64_t v) { return std::to_string(static_cast<uint64_t>(v / secs)); };
  auto avg = [](uint64_t total, uint64_t n) { return std::to_string(n ? total / n : 0); };
  AdminResult r{{"database", "total_xact_count", "total_query_count", "total_received",
                 "total_sent", "total_xact_time", "total_query_time", "total_wait_time",
                 "avg_xact_count", "avg_query_count", "avg_recv", "avg_sent", "avg_xact_time",
                 "avg_query_time", "avg_wait_time", "total_errors", "total_server_prepares",
                 "total_prepare_cache_hits", "statements_cached", "clients_accepted",
                 "clients_rejected", "protocol_errors"},
                {},
                "SHOW"};
  r.rows.push_back(Row{config.listen.database, std::to_string(t.transactions),
                       std::to_string(t.queries), std::to_string(t.bytes_received),
                       std::to_string(t.bytes_sent), std::to_string(t.transaction_us),
                       std::to_string(t.query_us), std::to_string(t.wait_us),
                       per_sec(t.transactions), per_sec(t.queries), per_sec(t.bytes_received),
                       per_sec(t.bytes_sent), avg(t.transaction_us, t.transactions),
                       avg(t.query_us, t.queries), avg(t.wait_us, t.transactions),
                       std::to_string(t.errors), std::to_string(t.prepares),
                       std::to_string(t.prepare_hits), std::to_string(t.statements),
                       std::to_string(t.clients_accepted), std::to_string(t.clients_rejected),
                       std::to_string(t.protocol_errors)});
  return r;
}

AdminResult ShowConfig(const conf::Config& c) {
  AdminResult r{{"key", "value", "changeable"}, {}, "SHOW"};
  auto add = [&](std::string k, std::string v, bool changeable) {
    r.rows.push_back(Row{std::move(k), std::move(v), changeable ? "yes" : "no"});
  };
  add("config_file", c.path, false);
  add("listen.host", c.listen.host, false);
  add("listen.port", std::to_string(c.listen.port), false);
  add("listen.admin_port", std::to_string(c.listen.admin_port), false);
  add("listen.metrics_port", std::to_string(c.listen.metrics_port), false);
  add("listen.database", c.listen.database, false);
  add("workers", std::to_string(c.workers), false);
  add("pool.mode", PoolModeName(c.pool.mode), true);
  add("pool.size", std::to_string(c.pool.size), true);
  add("pool.min_idle", std::to_string(c.pool.min_idle), true);
  add("pool.max_clients", std::to_string(c.pool.max_clients), true);
  add("pool.query_wait_timeout", Ms(c.pool.query_wait_timeout), true);
  add("pool.server_idle_timeout", Ms(c.pool.server_idle_timeout), true);
  add("pool.server_lifetime", Ms(c.pool.server_lifetime), true);
  add("pool.server_connect_timeout", Ms(c.pool.server_connect_timeout), true);
  add("pool.client_idle_timeout", Ms(c.pool.client_idle_timeout), true);
  add("pool.idle_in_transaction_timeout", Ms(c.pool.idle_in_transaction_timeout), true);
  add("pool.startup_timeout", Ms(c.pool.startup_timeout), true);
  add("pool.prepared_statement_cache", std::to_string(c.pool.prepared_statement_cache), true);
  const char* methods[] = {"scram-sha-256", "md5", "trust"};
  add("auth.method", methods[static_cast<int>(c.auth.method)], true);
  add("auth.users", std::to_string(c.auth.users.size()), true);
  const char* tls_modes[] = {"disable", "allow", "require"};
  add("tls.client_mode", tls_modes[static_cast<int>(c.tls.client_mode)], false);
  add("ring.vnodes", std::to_string(c.ring.vnodes), false);
  add("shards", std::to_string(c.shards.size()), false);
  add("tables", std::to_string(c.tables.size()), false);
  add("default_shard", c.default_shard, false);
  add("logging.level", c.logging.level, true);
  add("logging.format", c.logging.format == conf::LogFormat::kJson ? "json" : "text", false);
  return r;
}

AdminResult ShowShards(const conf::Config& c) {
  AdminResult r{{"name", "host", "port", "dbname", "user", "sslmode", "replicas", "is_default"},
                {},
                "SHOW"};
  const char* modes[] = {"disable", "prefer", "require"};
  for (const auto& s : c.shards) {
    r.rows.push_back(Row{s.name, s.primary.host, std::to_string(s.primary.port), s.primary.dbname,
                         s.primary.user, modes[static_cast<int>(s.primary.sslmode)],
                         std::to_string(s.replicas.size()),
                         s.name == c.default_shard ? "yes" : "no"});
  }
  return r;
}

AdminResult Help() {
  AdminResult r{{"command", "description"}, {}, "SHOW"};
  auto add = [&](const char* c, const char* d) { r.rows.push_back(Row{c, d}); };
  add("SHOW POOLS", "server connection pools per shard");
  add("SHOW CLIENTS", "client connections");
  add("SHOW SERVERS", "server connections");
  add("SHOW STATS", "traffic and timing totals since start");
  add("SHOW CONFIG", "the running configuration");
  add("SHOW SHARDS", "configured shards");
  add("SHOW VERSION", "pgring version");
  add("RELOAD", "re-read the configuration file (as SIGHUP)");
  add("PAUSE", "hold new transactions and wait until running ones finish");
  add("RESUME", "release paused clients");
  add("SHUTDOWN", "stop accepting, let transactions finish, exit");
  return r;
}

// Splits "SHOW POOLS; SHOW STATS" into trimmed, non-empty commands.
std::vector<std::string_view> SplitCommands(std::string_view sql) {
  std::vector<std::string_view> out;
  while (!sql.empty()) {
    auto semi = sql.find(';');
    auto part = sql.substr(0, semi);
    while (!part.empty() && std::isspace(static_cast<unsigned char>(part.front()))) part.remove_prefix(1);
    while (!part.empty() && std::isspace(static_cast<unsigned char>(part.back()))) part.remove_suffix(1);
    if (!part.empty()) out.push_back(part);
    if (semi == std::string_view::npos) break;
    sql.remove_prefix(semi + 1);
  }
  return out;
}

void WriteResult(protocol::Buffer& out, const AdminResult& r) {
  if (!r.columns.empty()) {
    std::vector<std::string_view> cols(r.columns.begin(), r.columns.end());
    protocol::WriteRowDescriptionText(out, cols);
    std::vector<std::optional<std::string_view>> vals;
    for (const auto& row : r.rows) {
      vals.clear();
      for (const auto& v : row) vals.push_back(v ? std::optional<std::string_view>(*v) : std::nullopt);
      protocol::WriteDataRow(out, vals);
    }
  }
  std::string tag = r.tag == "SHOW" ? "SHOW" : r.tag;
  protocol::WriteCommandComplete(out, tag);
}

}  // namespace

AdminSession::AdminSession(Worker& worker, tcp::socket socket)
    : worker_(worker), stream_(std::move(socket)) {}

awaitable<void> AdminSession::Run() {
  auto config = worker_.config_ptr();
  asio::steady_timer deadline(co_await asio::this_coro::executor, config->pool.startup_timeout);
  auto hs = co_await (ClientHandshake(stream_, in_, *config, Port::kAdmin,
                                      worker_.proxy().tls_context(), worker_.proxy().cancels(),
                                      worker_.verifiers()) ||
                      deadline.async_wait(use_nothrow));
  if (hs.index() == 1 || !std::get<0>(hs).ok() ||
      std::get<0>(hs)->outcome != HandshakeOutcome::kReady) {
    stream_.Close();
    co_return;
  }
  protocol::Buffer out;
  std::pair<std::string_view, std::string_view> params[] = {
      {"server_version", kServerVersion}, {"server_encoding", "UTF8"},
      {"client_encoding", "UTF8"},        {"DateStyle", "ISO, MDY"},
      {"integer_datetimes", "on"},        {"standard_conforming_strings", "on"},
      {"TimeZone", "UTC"},                {"application_name", "pgring"},
  };
  for (const auto& [k, v] : params) protocol::WriteParameterStatus(out, k, v);
  protocol::WriteBackendKeyData(out, 0, 0);
  protocol::WriteReadyForQuery(out, 'I');
  if (co_await stream_.WriteAll(out.Readable())) co_return;
  out.Clear();

  bool skipping = false;
  for (;;) {
    auto frame = co_await ReadFrame(stream_, in_, FrameKind::kTyped, 1 << 20);
    if (!frame.ok()) {
      if (frame.status().code() == absl::StatusCode::kInvalidArgument) {
        co_await SendFatal(stream_, "08P01", protocol::MessageOf(frame.status()));
      }
      break;
    }
    char type = frame->type;
    std::string sql;
    if (type == protocol::fe::kQuery) {
      auto q = protocol::ParseQuery(frame->body);
      if (q) sql = std::string(q->sql);
    }
    in_.Consume(frame->size);
    if (type == protocol::fe::kTerminate) break;
    if (type == protocol::fe::kSync) {
      skipping = false;
      protocol::WriteReadyForQuery(out, 'I');
    } else if (type != protocol::fe::kQuery) {
      if (!skipping) {
        protocol::WriteErrorResponse(out, protocol::Severity::kError, "0A000",
                                     "the pgring admin console accepts simple queries only",
                                     {}, "use psql, or a driver's simple query mode");
        skipping = true;
      }
      if (type == protocol::fe::kFlush || type == protocol::fe::kParse ||
          type == protocol::fe::kBind || type == protocol::fe::kDescribe ||
          type == protocol::fe::kExecute || type == protocol::fe::kClose) {
        // wait for Sync
      } else {
        protocol::WriteReadyForQuery(out, 'I');
        skipping = false;
      }
    } else {
      bool any = false;
      for (std::string_view cmd : SplitCommands(sql)) {
        any = true;
        auto result = co_await Execute(cmd);
        if (!result.ok()) {
          protocol::WriteErrorResponse(out, protocol::Severity::kError,
                                       protocol::SqlStateOf(result.status()),
                                       protocol::MessageOf(result.status()), {},
                                       protocol::HintOf(result.status()));
          break;
        }
        WriteResult(out, *result);
      }
      if (!any) protocol::WriteEmptyQueryResponse(out);
      protocol::WriteReadyForQuery(out, 'I');
    }
    if (co_await stream_.WriteAll(out.Readable())) break;
    out.Clear();
  }
  stream_.Close();
}

awaitable<absl::StatusOr<AdminResult>> AdminSession::Execute(std::string_view command) {
  // Upper-case and collapse runs of white space so "show   pools" works.
  std::string norm;
  for (char c : command) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!norm.empty() && norm.back() != ' ') norm.push_back(' ');
    } else {
      norm.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    }
  }
  auto& proxy = worker_.proxy();
  auto config = proxy.config();
  if (norm == "SHOW POOLS") co_return ShowPools(*config, co_await proxy.SnapshotAsync(false));
  if (norm == "SHOW CLIENTS") co_return ShowClients(co_await proxy.SnapshotAsync(true));
  if (norm == "SHOW SERVERS") co_return ShowServers(*config, co_await proxy.SnapshotAsync(true));
  if (norm == "SHOW STATS") {
    co_return ShowStats(*config, co_await proxy.SnapshotAsync(false), proxy.started());
  }
  if (norm == "SHOW CONFIG") co_return ShowConfig(*config);
  if (norm == "SHOW SHARDS") co_return ShowShards(*config);
  if (norm == "SHOW VERSION") {
    co_return AdminResult{{"version"}, {Row{std::string(kVersionString)}}, "SHOW"};
  }
  if (norm == "SHOW HELP" || norm == "SHOW" || norm == "HELP") co_return Help();
  if (norm == "RELOAD") {
    if (auto st = proxy.Reload(); !st.ok()) {
      co_return protocol::SqlError(absl::StatusCode::kInvalidArgument, "F0000", protocol::MessageOf(st),
                                   "fix the configuration file and run RELOAD again");
    }
    co_return AdminResult{{}, {}, "RELOAD"};
  }
  if (norm == "PAUSE") {
    proxy.Pause();
    // Wait until no client holds a server connection (their transactions ended).
    asio::steady_timer t(co_await asio::this_coro::executor);
    for (;;) {
      int active = 0;
      for (const auto& s : co_await proxy.SnapshotAsync(false))
        for (const auto& p : s.pools) active += p.active;
      if (active == 0 || !proxy.paused()) break;
      t.expires_after(std::chrono::milliseconds(20));
      co_await t.async_wait(use_nothrow);
    }
    co_return AdminResult{{}, {}, "PAUSE"};
  }
  if (norm == "RESUME") {
    proxy.Resume();
    co_return AdminResult{{}, {}, "RESUME"};
  }
  if (norm == "SHUTDOWN") {
    proxy.Shutdown();
    co_return AdminResult{{}, {}, "SHUTDOWN"};
  }
  co_return protocol::SqlError(
      absl::StatusCode::kInvalidArgument, "42601",
      Cat("unknown admin command \"", command, "\""),
      "SHOW HELP lists the commands: SHOW POOLS|CLIENTS|SERVERS|STATS|CONFIG|SHARDS|VERSION, "
      "RELOAD, PAUSE, RESUME, SHUTDOWN");
}

}  // namespace pgring::proxy
