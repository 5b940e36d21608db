// Immutable pgring configuration, as loaded and validated from YAML by conf::LoadFile.
// Plain structs: they carry no yaml-cpp types and are safe to share read-only
// between threads (proxy keeps them in std::shared_ptr<const Config>).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgring::conf {

using Duration = std::chrono::milliseconds;

enum class PoolMode { kTransaction, kSession };
enum class AuthMethod { kScramSha256, kMd5, kTrust };
// Client-side TLS policy: disable (refuse SSLRequest), allow (accept TLS if a client
// asks), require (refuse clients that do not use TLS).
enum class ClientTlsMode { kDisable, kAllow, kRequire };
// Server-side TLS, as libpq's sslmode.
enum class SslMode { kDisable, kPrefer, kRequire };
enum class KeyType { kInt, kText, kUuid };
enum class TableKind { kSharded, kReference };
enum class LogFormat { kText, kJson };

// Return the configuration spelling of each value ("transaction", "scram-sha-256",
// "bigint" for kInt, ...), for logs and the admin console.
std::string_view ToString(PoolMode mode);
std::string_view ToString(AuthMethod method);
std::string_view ToString(ClientTlsMode mode);
std::string_view ToString(SslMode mode);
std::string_view ToString(KeyType type);
std::string_view ToString(TableKind kind);
std::string_view ToString(LogFormat format);

// Where a secret comes from: exactly one of the three is set after loading, and
// `value` holds the resolved secret (read from the file or the environment at load time).
struct Secret {
  std::string value;
  enum class Source { kInline, kFile, kEnv } source = Source::kInline;
  std::string origin;  // file path or environment variable name; empty for inline
};

struct ListenConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 6432;         // client connections
  uint16_t admin_port = 6433;   // admin database "pgring"
  uint16_t metrics_port = 9187; // Prometheus /metrics over HTTP; 0 disables
  std::string database = "app"; // database name clients connect to
};

struct PoolConfig {
  PoolMode mode = PoolMode::kTransaction;
  int size = 20;                  // server connections per shard and role, all workers together
  int min_idle = 0;               // idle server connections kept open per shard
  int max_clients = 10000;        // concurrent client connections
  Duration query_wait_timeout{5000};         // waiting for a server connection; never 0
  Duration server_idle_timeout{600000};      // close server connections idle this long; 0: never
  Duration server_lifetime{3600000};         // close server connections older than this; 0: never
  Duration server_connect_timeout{5000};     // never 0
  Duration client_idle_timeout{0};           // 0: never
  Duration idle_in_transaction_timeout{0};   // 0: never
  Duration startup_timeout{10000};           // startup + authentication of a client; never 0
  int prepared_statement_cache = 1024;       // server-side prepared statements per connection
};

struct UserConfig {
  std::string name;
  // Exactly one of password (cleartext secret) or scram_verifier
  // ("SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>") is set.
  std::optional<Secret> password;
  std::optional<std::string> scram_verifier;
  bool admin = false;  // may connect to the admin database
};

struct AuthConfig {
  AuthMethod method = AuthMethod::kScramSha256;
  std::vector<UserConfig> users;
};

struct TlsConfig {
  ClientTlsMode client_mode = ClientTlsMode::kDisable;
  std::string cert_file;  // required unless client_mode is disable
  std::string key_file;
  std::string ca_file;    // optional: verify server certificates with it
};

struct EndpointConfig {
  std::string host;
  uint16_t port = 5432;
  std::string dbname;
  std::string user;
  Secret password;
  SslMode sslmode = SslMode::kPrefer;
};

struct ShardConfig {
  std::string name;
  EndpointConfig primary;
  std::vector<EndpointConfig> replicas;
};

struct RingConfig {
  int vnodes = 256;  // virtual nodes per shard
};

struct TableConfig {
  // Optionally schema-qualified ("public.orders"); folded to lower case at load time, as
  // PostgreSQL folds unquoted identifiers. Use Config::FindTable to look a table up.
  std::string name;
  TableKind kind = TableKind::kSharded;
  std::string shard_key;  // sharded tables only; folded to lower case
  KeyType key_type = KeyType::kInt;
};

struct LoggingConfig {
  std::string level = "info";  // trace, debug, info, warn, error
  LogFormat format = LogFormat::kText;
};

struct Config {
  std::string path;  // the file it was loaded from
  ListenConfig listen;
  int workers = 0;  // 0: one per CPU core
  bool io_uring = true;  // batch the workers' sends through io_uring (when the kernel allows)
  PoolConfig pool;
  AuthConfig auth;
  TlsConfig tls;
  std::vector<ShardConfig> shards;
  RingConfig ring;
  std::vector<TableConfig> tables;
  std::string default_shard;  // empty: tables not named in `tables` are an error
  LoggingConfig logging;

  const ShardConfig* FindShard(std::string_view name) const {
    for (const auto& s : shards)
      if (s.name == name) return &s;
    return nullptr;
  }
  const UserConfig* FindUser(std::string_view name) const {
    for (const auto& u : auth.users)
      if (u.name == name) return &u;
    return nullptr;
  }
  // Finds a table by name as a query spells it ("orders", "Public.Orders"), ignoring case;
  // an unqualified name means schema public, so "orders" and "public.orders" match
  // each other. Returns nullptr when the table is not configured.
  const TableConfig* FindTable(std::string_view name) const;
};

}  // namespace pgring::conf
