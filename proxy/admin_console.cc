#include "proxy/admin_console.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>

#include "proxy/str.h"
#include "conf/config.h"
#include "protocol/messages.h"
#include "protocol/sql_error.h"
#include "protocol/writer.h"
#include "proxy/client_handshake.h"
#include "proxy/frame_io.h"
#include "proxy/proxy.h"
#include "proxy/topology.h"
#include "proxy/version.h"
#include "proxy/worker.h"
#include "sharding/analyzer.h"
#include "sharding/router.h"

namespace pgring::proxy {
namespace {

using namespace asio::experimental::awaitable_operators;
using Row = std::vector<std::optional<std::string>>;

constexpr uint32_t kBoolOid = 16;
constexpr uint32_t kInt8Oid = 20;
constexpr uint32_t kTextOid = 25;

const char* Bool(bool b) { return b ? "t" : "f"; }

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
                 "tls", "application_name", "prepared_statements", "pinned", "worker", "parked"},
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
                           c.pinned ? "yes" : "no", std::to_string(s.index),
                           c.parked ? "yes" : "no"});
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
    t.analyzer_hits += s.analyzer_hits;
    t.analyzer_misses += s.analyzer_misses;
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
                 "clients_rejected", "protocol_errors", "analyzer_hits", "analyzer_misses",
                 "analyzer_hit_rate"},
                {},
                "SHOW"};
  const uint64_t lookups = t.analyzer_hits + t.analyzer_misses;
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
                       std::to_string(t.protocol_errors), std::to_string(t.analyzer_hits),
                       std::to_string(t.analyzer_misses),
                       fmt::format("{:.4f}", lookups ? static_cast<double>(t.analyzer_hits) /
                                                           static_cast<double>(lookups)
                                                     : 0.0)});
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
  add("SHOW RING", "the hash ring: one row per token (token, shard, ring_version)");
  add("SHOW ROUTE <statements>",
      "where each statement would run and why (kind, shards, writes, merge, reason)");
  add("SHOW ROUTE KEY <table> <value>",
      "the shard that owns one shard-key value, with its hash and owning token");
  add("SHOW VERSION", "pgring version");
  add("RELOAD", "re-read the configuration file (as SIGHUP)");
  add("PAUSE", "hold new transactions and wait until running ones finish");
  add("RESUME", "release paused clients");
  add("SHUTDOWN", "stop accepting, let transactions finish, exit");
  return r;
}

bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

bool IsIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '$' ||
         static_cast<unsigned char>(c) >= 0x80;
}

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Removes leading white space and then `word` (upper case, matched case-insensitively)
// from `s` when `s` starts with that whole word; leaves `s` alone otherwise.
bool ConsumeWord(std::string_view& s, std::string_view word) {
  std::string_view t = s;
  while (!t.empty() && IsSpace(t.front())) t.remove_prefix(1);
  if (t.size() < word.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(t[i])) != word[i]) return false;
  }
  if (t.size() > word.size() && IsIdentChar(t[word.size()])) return false;
  s = t.substr(word.size());
  return true;
}

// True for "SHOW ROUTE <statement>" (not SHOW ROUTE KEY), whose statement text may hold
// several statements and semicolons of its own.
bool IsShowRouteStatements(std::string_view s) {
  if (!ConsumeWord(s, "SHOW") || !ConsumeWord(s, "ROUTE")) return false;
  return !ConsumeWord(s, "KEY") && !TrimSpace(s).empty() && TrimSpace(s) != ";";
}

// Splits "SHOW POOLS; SHOW STATS" into trimmed, non-empty commands at ';' outside single
// and double quotes (SHOW ROUTE KEY users 'a;b'). "SHOW ROUTE <statement>" takes the rest
// of the string: pgring's SQL parser splits that into statements itself.
std::vector<std::string_view> SplitCommands(std::string_view sql) {
  std::vector<std::string_view> out;
  while (!sql.empty()) {
    while (!sql.empty() && IsSpace(sql.front())) sql.remove_prefix(1);
    if (sql.empty()) break;
    if (IsShowRouteStatements(sql)) {
      out.push_back(TrimSpace(sql));
      break;
    }
    size_t end = 0;
    char quote = 0;
    for (; end < sql.size(); ++end) {
      const char c = sql[end];
      if (quote != 0) {
        if (c == quote) quote = 0;  // a doubled quote closes and reopens: same effect
      } else if (c == '\'' || c == '"') {
        quote = c;
      } else if (c == ';') {
        break;
      }
    }
    std::string_view part = TrimSpace(sql.substr(0, end));
    if (!part.empty()) out.push_back(part);
    if (end >= sql.size()) break;
    sql.remove_prefix(end + 1);
  }
  return out;
}

std::string JoinShardNames(const sharding::Ring& ring, const sharding::ShardList& ids,
                           std::string_view separator) {
  std::string out;
  for (sharding::ShardId id : ids) {
    if (!out.empty()) out += separator;
    out += ring.shard_name(id);
  }
  return out;
}

AdminResult ShowRing(const Topology& topology) {
  AdminResult r{{"token", "shard", "ring_version"}, {}, "SHOW", {kInt8Oid, kTextOid, kInt8Oid}};
  const sharding::Ring& ring = *topology.ring;
  const std::string version = std::to_string(ring.version().value());
  r.rows.reserve(ring.tokens().size());
  for (const sharding::Token& t : ring.tokens()) {
    r.rows.push_back(Row{std::to_string(t.token), ring.shard_name(t.shard), version});
  }
  return r;
}

// Number of characters (UTF-8 code points) in `s`, for ErrorResponse positions.
size_t CharCount(std::string_view s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

// SHOW ROUTE <sql>: one row per statement of `sql`. `chars_before` is the number of
// characters of the query string before `sql`, so that a syntax error points into the
// query string the client sent.
absl::StatusOr<AdminResult> ShowRoute(std::string_view sql, size_t chars_before,
                                      const Topology& topology) {
  absl::StatusOr<sharding::Analysis> analysis = sharding::Analyze(sql);
  if (!analysis.ok()) {
    absl::Status st = analysis.status();
    if (std::optional<int> pos = sharding::SyntaxErrorPosition(st)) {
      st.SetPayload(std::string(sharding::kPositionPayload),
                    absl::Cord(std::to_string(*pos + static_cast<int>(chars_before))));
    }
    return st;
  }
  AdminResult r{{"statement", "kind", "shards", "writes", "merge", "reason", "sqlstate"},
                {},
                "SHOW",
                {kTextOid, kTextOid, kTextOid, kBoolOid, kBoolOid, kTextOid, kTextOid}};
  const sharding::Ring& ring = *topology.ring;
  // PREPARE earlier in the same text makes a later EXECUTE of that name routable, and
  // SET pgring.shard_key pins the statements after it, as in a client's session.
  std::map<std::string, std::shared_ptr<const sharding::Statement>, std::less<>> prepared;
  std::optional<std::string> session_key;
  for (size_t i = 0; i < analysis->statements.size(); ++i) {
    const sharding::Statement& st = analysis->statements[i];
    const auto [start, length] = analysis->ranges[i];
    std::string text(sql.substr(std::min(start, sql.size()), length));
    sharding::RouteInputs in;
    in.explain = true;
    if (session_key) in.session_shard_key = *session_key;
    if (st.kind == sharding::StatementKind::kExecute) {
      if (auto it = prepared.find(st.name); it != prepared.end()) in.prepared = it->second.get();
    }
    absl::StatusOr<sharding::RoutePlan> plan =
        sharding::Router::Route(st, topology.tables, ring, in);
    if (st.kind == sharding::StatementKind::kPrepare && st.inner != nullptr) {
      prepared[st.name] = st.inner;
    }
    if (st.kind == sharding::StatementKind::kSet && plan.ok() &&
        (st.set_name == "pgring.shard_key" || st.reset_all)) {
      if (st.is_reset || st.reset_all || st.set_default) {
        session_key.reset();
      } else {
        session_key = st.set_value;
      }
    }
    if (!plan.ok()) {
      std::string reason(protocol::MessageOf(plan.status()));
      if (std::string hint = protocol::HintOf(plan.status()); !hint.empty()) {
        reason += Cat(" (hint: ", hint, ")");
      }
      r.rows.push_back(Row{std::move(text), "error", std::nullopt, Bool(st.writes), Bool(false),
                           std::move(reason), protocol::SqlStateOf(plan.status())});
      continue;
    }
    r.rows.push_back(Row{std::move(text), std::string(sharding::ToString(plan->kind)),
                         JoinShardNames(ring, plan->shards, ","), Bool(plan->is_write),
                         Bool(plan->needs_merge), std::move(plan->reason), std::nullopt});
  }
  return r;
}

absl::Status RouteKeySyntax(std::string message) {
  return protocol::SqlError(absl::StatusCode::kInvalidArgument, "42601", message,
                            "write SHOW ROUTE KEY <table> <value>, for example SHOW ROUTE KEY "
                            "orders 42 or SHOW ROUTE KEY users 'alice' (quote text keys)");
}

// The arguments of SHOW ROUTE KEY: a table name as SQL writes it (optionally
// schema-qualified, unquoted parts folded to lower case) and one value, bare or as a
// single-quoted SQL string.
struct RouteKeyArgs {
  std::string schema;  // empty when unqualified
  std::string name;
  std::string value;
  bool quoted_value = false;
};

absl::StatusOr<RouteKeyArgs> ParseRouteKeyArgs(std::string_view s) {
  RouteKeyArgs args;
  std::vector<std::string> parts;
  s = TrimSpace(s);
  for (;;) {
    std::string part;
    if (!s.empty() && s.front() == '"') {
      size_t i = 1;
      for (;; ++i) {
        if (i >= s.size()) return RouteKeySyntax("unterminated quoted table name");
        if (s[i] == '"') {
          if (i + 1 < s.size() && s[i + 1] == '"') {
            part.push_back('"');
            ++i;
            continue;
          }
          break;
        }
        part.push_back(s[i]);
      }
      s.remove_prefix(i + 1);
    } else {
      size_t i = 0;
      while (i < s.size() && IsIdentChar(s[i])) {
        part.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(s[i]))));
        ++i;
      }
      s.remove_prefix(i);
    }
    if (part.empty()) return RouteKeySyntax("SHOW ROUTE KEY needs a table name");
    parts.push_back(std::move(part));
    if (s.empty() || s.front() != '.') break;
    s.remove_prefix(1);
  }
  if (parts.size() > 2) return RouteKeySyntax("the table name has more than two parts");
  if (parts.size() == 2) args.schema = parts[0];
  args.name = parts.back();
  if (!s.empty() && !IsSpace(s.front())) {
    return RouteKeySyntax(Cat("unexpected \"", s.front(), "\" after the table name"));
  }
  s = TrimSpace(s);
  if (s.empty()) return RouteKeySyntax("SHOW ROUTE KEY needs a key value after the table name");
  if (s.front() == '\'') {
    size_t i = 1;
    for (;; ++i) {
      if (i >= s.size()) return RouteKeySyntax("unterminated quoted key value");
      if (s[i] == '\'') {
        if (i + 1 < s.size() && s[i + 1] == '\'') {
          args.value.push_back('\'');
          ++i;
          continue;
        }
        break;
      }
      args.value.push_back(s[i]);
    }
    if (!TrimSpace(s.substr(i + 1)).empty()) {
      return RouteKeySyntax("unexpected text after the quoted key value");
    }
    args.quoted_value = true;
  } else {
    if (std::any_of(s.begin(), s.end(), IsSpace)) {
      return RouteKeySyntax("a key value with spaces must be quoted: 'a b'");
    }
    args.value = std::string(s);
  }
  return args;
}

std::string ConfiguredTableList(const conf::Config& config) {
  std::string out;
  for (const auto& t : config.tables) out += Cat(out.empty() ? "" : ", ", t.name);
  return out.empty() ? "none" : out;
}

// SHOW ROUTE KEY <table> <value>: the owner of one key value.
absl::StatusOr<AdminResult> ShowRouteKey(std::string_view arg_text, const Topology& topology) {
  absl::StatusOr<RouteKeyArgs> args = ParseRouteKeyArgs(arg_text);
  if (!args.ok()) return args.status();
  const sharding::Ring& ring = *topology.ring;
  const std::string display = args->schema.empty() ? args->name
                                                   : Cat(args->schema, ".", args->name);
  const sharding::TableInfo* info = topology.tables.Find(args->schema, args->name);
  if (info == nullptr) {
    const std::string& default_shard = topology.tables.default_shard();
    std::string where =
        default_shard.empty()
            ? std::string("pgring rejects statements on it")
            : Cat("its rows live on the default shard ", default_shard, ", not on the ring");
    return protocol::SqlError(
        absl::StatusCode::kNotFound, "42P01",
        Cat("table ", display, " is not in the pgring configuration (", where, ")"),
        Cat("configured tables: ", ConfiguredTableList(*topology.config),
            ". Add the table under tables: in ", topology.config->path,
            " (kind: sharded with shard_key and key_type, or kind: reference) and run RELOAD"));
  }
  AdminResult r{{"table", "kind", "key_column", "key_type", "key", "hash", "token", "shard",
                 "ring_version", "reason"},
                {},
                "SHOW",
                {kTextOid, kTextOid, kTextOid, kTextOid, kTextOid, kInt8Oid, kInt8Oid, kTextOid,
                 kInt8Oid, kTextOid}};
  const std::string version = std::to_string(ring.version().value());
  const std::string name = info->DisplayName();
  if (info->kind == conf::TableKind::kReference) {
    // Ask the router, so that the answer is the one statements get.
    sharding::Statement read;
    read.kind = sharding::StatementKind::kSelect;
    read.tables.push_back(sharding::TableRef{args->schema, args->name, "", 1});
    sharding::Statement write = read;
    write.kind = sharding::StatementKind::kUpdate;
    write.writes = true;
    sharding::RouteInputs in;
    absl::StatusOr<sharding::RoutePlan> read_plan =
        sharding::Router::Route(read, topology.tables, ring, in);
    absl::StatusOr<sharding::RoutePlan> write_plan =
        sharding::Router::Route(write, topology.tables, ring, in);
    if (!read_plan.ok()) return read_plan.status();
    if (!write_plan.ok()) return write_plan.status();
    const std::string read_shard =
        read_plan->shards.empty() ? "" : ring.shard_name(read_plan->shards.front());
    r.rows.push_back(Row{
        name, "reference", std::nullopt, std::nullopt, args->value, std::nullopt, std::nullopt,
        Cat("all shards for writes, ", read_shard, " for reads"), version,
        Cat("reference table ", name, " has a full copy on every shard: writes go to ",
            JoinShardNames(ring, write_plan->shards, ", "), ", reads to ", read_shard)});
    return r;
  }
  if (!args->quoted_value && (args->value == "NULL" || args->value == "null")) {
    return protocol::SqlError(absl::StatusCode::kInvalidArgument, "23502",
                              Cat("a NULL ", info->key_column, " belongs to no shard"),
                              "pgring rejects rows whose shard key is NULL; pass a key value");
  }
  absl::StatusOr<int64_t> hash = sharding::Router::HashKeyText(args->value, info->key_type);
  if (!hash.ok()) return hash.status();
  const auto tokens = ring.tokens();
  auto it = std::lower_bound(tokens.begin(), tokens.end(), *hash,
                             [](const sharding::Token& t, int64_t h) { return t.token < h; });
  const bool wrapped = it == tokens.end();
  if (wrapped) it = tokens.begin();
  const sharding::Token& owner = *it;
  const sharding::Token& previous = it == tokens.begin() ? tokens.back() : *(it - 1);
  const std::string& shard = ring.shard_name(ring.Lookup(*hash));
  const std::string shown_value =
      info->key_type == conf::KeyType::kInt ? args->value : Cat("'", args->value, "'");
  std::string arc =
      previous.token < owner.token
          ? Cat("owns hashes ", previous.token, " < h <= ", owner.token)
          : Cat("owns hashes above ", previous.token, " and up to ", owner.token,
                ", wrapping around the ring");
  r.rows.push_back(Row{
      name, "sharded", info->key_column, std::string(conf::ToString(info->key_type)),
      args->value, std::to_string(*hash), std::to_string(owner.token), shard, version,
      Cat(name, ".", info->key_column, " = ", shown_value, " -> hash ", *hash, " -> token ",
          owner.token, wrapped ? " (wrapped past the largest token)" : "", " (", arc,
          ") -> ", shard)});
  return r;
}

absl::Status NoRing() {
  return protocol::SqlError(absl::StatusCode::kUnavailable, "55000",
                            "pgring has no ring: the configuration's shards could not be built "
                            "into one",
                            "read the proxy log, fix the configuration and run RELOAD");
}

// ErrorResponse for a failed admin command, with the position of a syntax error.
void WriteAdminError(protocol::Buffer& out, const absl::Status& status) {
  protocol::MessageWriter w(out);
  w.Begin('E');
  w.Byte('S');
  w.CString("ERROR");
  w.Byte('V');
  w.CString("ERROR");
  w.Byte('C');
  w.CString(protocol::SqlStateOf(status));
  w.Byte('M');
  w.CString(protocol::MessageOf(status));
  if (std::string hint = protocol::HintOf(status); !hint.empty()) {
    w.Byte('H');
    w.CString(hint);
  }
  if (std::optional<int> pos = sharding::SyntaxErrorPosition(status)) {
    w.Byte('P');
    w.CString(std::to_string(*pos));
  }
  w.Byte(0);
  w.End();
}

void WriteResult(protocol::Buffer& out, const AdminResult& r) {
  if (!r.columns.empty()) {
    if (r.types.size() == r.columns.size()) {
      std::vector<protocol::RowField> fields(r.columns.size());
      for (size_t i = 0; i < fields.size(); ++i) {
        fields[i].name = r.columns[i];
        fields[i].type_oid = r.types[i];
        fields[i].type_size =
            r.types[i] == kInt8Oid ? 8 : r.types[i] == kBoolOid ? 1 : static_cast<int16_t>(-1);
        fields[i].type_modifier = -1;
      }
      protocol::WriteRowDescription(out, fields);
    } else {
      std::vector<std::string_view> cols(r.columns.begin(), r.columns.end());
      protocol::WriteRowDescriptionText(out, cols);
    }
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

AdminSession::AdminSession(Worker& worker, TcpSocket socket)
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
  protocol::Buffer out = std::move(std::get<0>(hs)->greeting);
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
        auto result = co_await Execute(cmd, sql);
        if (!result.ok()) {
          WriteAdminError(out, result.status());
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

awaitable<absl::StatusOr<AdminResult>> AdminSession::Execute(std::string_view command,
                                                             std::string_view query) {
  // SHOW ROUTE keeps its statement text as written (case, quotes, comments with hints).
  const std::shared_ptr<const Topology> topology = worker_.topology();
  if (std::string_view rest = command; ConsumeWord(rest, "SHOW") && ConsumeWord(rest, "ROUTE")) {
    if (topology == nullptr) co_return NoRing();
    if (ConsumeWord(rest, "KEY")) co_return ShowRouteKey(rest, *topology);
    rest = TrimSpace(rest);
    if (rest.empty()) {
      co_return protocol::SqlError(
          absl::StatusCode::kInvalidArgument, "42601", "SHOW ROUTE needs a statement",
          "SHOW ROUTE SELECT * FROM orders WHERE tenant_id = 42, or SHOW ROUTE KEY orders 42");
    }
    size_t before = 0;
    if (rest.data() >= query.data() && rest.data() <= query.data() + query.size()) {
      before = CharCount(query.substr(0, static_cast<size_t>(rest.data() - query.data())));
    }
    co_return ShowRoute(rest, before, *topology);
  }
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
  if (norm == "SHOW RING") {
    if (topology == nullptr) co_return NoRing();
    co_return ShowRing(*topology);
  }
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
      "SHOW HELP lists the commands: SHOW POOLS|CLIENTS|SERVERS|STATS|CONFIG|SHARDS|RING|"
      "VERSION, SHOW ROUTE <statement>, SHOW ROUTE KEY <table> <value>, RELOAD, PAUSE, "
      "RESUME, SHUTDOWN");
}

}  // namespace pgring::proxy
