#include "conf/loader.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include "conf_test_util.h"

namespace pgring::conf {
namespace {

using testing::kAuth;
using testing::kShards;
using testing::TempDir;
using testing::WithBase;

constexpr const char* kExample = PGRING_SOURCE_DIR "/conf/pgring.example.yaml";

TEST_CASE("FormatError prints FILE:LINE:COLUMN: MESSAGE", "[conf][loader]") {
  CHECK(FormatError({"pgring.yaml", 3, 9, "listen.port: bad"}) ==
        "pgring.yaml:3:9: listen.port: bad");
  CHECK(FormatError({"/etc/pgring.yaml", 0, 0, "cannot read"}) == "/etc/pgring.yaml: cannot read");
}

TEST_CASE("absent keys keep the defaults of config.h", "[conf][loader]") {
  const LoadResult r = LoadString(WithBase(""));
  REQUIRE(r.ok());
  const Config& c = *r.config;
  const Config defaults;
  CHECK(c.path.empty());
  CHECK(c.listen.host == defaults.listen.host);
  CHECK(c.listen.port == 6432);
  CHECK(c.listen.admin_port == 6433);
  CHECK(c.listen.metrics_port == 9187);
  CHECK(c.listen.database == "app");
  CHECK(c.workers == 0);
  CHECK(c.io_uring);
  CHECK(c.pool.mode == PoolMode::kTransaction);
  CHECK(c.pool.size == 20);
  CHECK(c.pool.query_wait_timeout == Duration{5000});
  CHECK(c.pool.server_idle_timeout == Duration{600000});
  CHECK(c.pool.server_lifetime == Duration{3600000});
  CHECK(c.pool.startup_timeout == Duration{10000});
  CHECK(c.pool.prepared_statement_cache == 1024);
  CHECK(c.auth.method == AuthMethod::kScramSha256);
  CHECK(c.tls.client_mode == ClientTlsMode::kDisable);
  CHECK(c.ring.vnodes == 256);
  CHECK(c.tables.empty());
  CHECK(c.default_shard.empty());
  CHECK(c.logging.level == "info");
  CHECK(c.logging.format == LogFormat::kText);
  REQUIRE(c.shards.size() == 1);
  CHECK(c.shards[0].primary.port == 5432);
  CHECK(c.shards[0].primary.sslmode == SslMode::kPrefer);
  CHECK(c.shards[0].replicas.empty());
}

TEST_CASE("every key lands in its field", "[conf][loader]") {
  ::setenv("PGRING_TEST_REPLICA_PW", "replica-secret", 1);
  const LoadResult r = LoadString(R"(listen:
  host: 0.0.0.0
  port: 7432
  admin_port: 7433
  metrics_port: 0
  database: shop
workers: 4
io_uring: false
pool:
  mode: Session
  size: 50
  min_idle: 5
  max_clients: 200
  query_wait_timeout: 250ms
  server_idle_timeout: 2m
  server_lifetime: 2h
  server_connect_timeout: 3s
  client_idle_timeout: 30m
  idle_in_transaction_timeout: 1m
  startup_timeout: 20s
  prepared_statement_cache: 64
auth:
  method: md5
  users:
    - name: app
      password: "app secret"
      admin: false
    - name: boss
      password: boss
      admin: TRUE
tls:
  client_mode: disable
shards:
  - name: east-1
    primary:
      host: 10.0.0.1
      port: 5433
      dbname: shop1
      user: pgring
      password: p1
      sslmode: require
    replicas:
      - host: 10.0.0.2
        dbname: shop1
        user: pgring
        password_env: PGRING_TEST_REPLICA_PW
        sslmode: disable
  - name: west_2
    primary: {host: 10.0.1.1, dbname: shop2, user: pgring, password: p2}
    replicas:
ring:
  vnodes: 64
tables:
  - name: Orders
    shard_key: Tenant_ID
    key_type: INT4
  - name: sales.events
    shard_key: id
    key_type: uuid
  - name: sessions
    kind: sharded
    shard_key: token
    key_type: varchar
  - name: plans
    kind: reference
default_shard: west_2
logging:
  level: debug
  format: json
)");
  ::unsetenv("PGRING_TEST_REPLICA_PW");
  for (const auto& e : r.errors) UNSCOPED_INFO(FormatError(e));
  REQUIRE(r.ok());
  const Config& c = *r.config;
  CHECK(c.listen.host == "0.0.0.0");
  CHECK(c.listen.port == 7432);
  CHECK(c.listen.admin_port == 7433);
  CHECK(c.listen.metrics_port == 0);
  CHECK(c.listen.database == "shop");
  CHECK(c.workers == 4);
  CHECK_FALSE(c.io_uring);
  CHECK(c.pool.mode == PoolMode::kSession);
  CHECK(c.pool.size == 50);
  CHECK(c.pool.min_idle == 5);
  CHECK(c.pool.max_clients == 200);
  CHECK(c.pool.query_wait_timeout == Duration{250});
  CHECK(c.pool.server_idle_timeout == Duration{120000});
  CHECK(c.pool.server_lifetime == Duration{7200000});
  CHECK(c.pool.server_connect_timeout == Duration{3000});
  CHECK(c.pool.client_idle_timeout == Duration{1800000});
  CHECK(c.pool.idle_in_transaction_timeout == Duration{60000});
  CHECK(c.pool.startup_timeout == Duration{20000});
  CHECK(c.pool.prepared_statement_cache == 64);

  CHECK(c.auth.method == AuthMethod::kMd5);
  REQUIRE(c.auth.users.size() == 2);
  CHECK(c.auth.users[0].name == "app");
  REQUIRE(c.auth.users[0].password.has_value());
  CHECK(c.auth.users[0].password->value == "app secret");
  CHECK(c.auth.users[0].password->source == Secret::Source::kInline);
  CHECK_FALSE(c.auth.users[0].admin);
  CHECK(c.auth.users[1].admin);
  CHECK(c.FindUser("boss") == &c.auth.users[1]);

  REQUIRE(c.shards.size() == 2);
  const ShardConfig& east = c.shards[0];
  CHECK(east.name == "east-1");
  CHECK(east.primary.host == "10.0.0.1");
  CHECK(east.primary.port == 5433);
  CHECK(east.primary.dbname == "shop1");
  CHECK(east.primary.user == "pgring");
  CHECK(east.primary.password.value == "p1");
  CHECK(east.primary.sslmode == SslMode::kRequire);
  REQUIRE(east.replicas.size() == 1);
  CHECK(east.replicas[0].host == "10.0.0.2");
  CHECK(east.replicas[0].port == 5432);
  CHECK(east.replicas[0].password.value == "replica-secret");
  CHECK(east.replicas[0].password.source == Secret::Source::kEnv);
  CHECK(east.replicas[0].password.origin == "PGRING_TEST_REPLICA_PW");
  CHECK(east.replicas[0].sslmode == SslMode::kDisable);
  CHECK(c.shards[1].name == "west_2");
  CHECK(c.shards[1].primary.password.value == "p2");
  CHECK(c.shards[1].replicas.empty());
  CHECK(c.FindShard("west_2") == &c.shards[1]);

  CHECK(c.ring.vnodes == 64);
  REQUIRE(c.tables.size() == 4);
  CHECK(c.tables[0].name == "orders");
  CHECK(c.tables[0].kind == TableKind::kSharded);
  CHECK(c.tables[0].shard_key == "tenant_id");
  CHECK(c.tables[0].key_type == KeyType::kInt);
  CHECK(c.tables[1].name == "sales.events");
  CHECK(c.tables[1].key_type == KeyType::kUuid);
  CHECK(c.tables[2].key_type == KeyType::kText);
  CHECK(c.tables[3].kind == TableKind::kReference);
  CHECK(c.tables[3].shard_key.empty());
  CHECK(c.default_shard == "west_2");
  CHECK(c.logging.level == "debug");
  CHECK(c.logging.format == LogFormat::kJson);
  CHECK(FormatSummary(c) == "configuration OK: 2 shards, 4 tables");
}

TEST_CASE("every integer key type name maps to its KeyType", "[conf][loader]") {
  const std::pair<const char*, KeyType> cases[] = {
      {"smallint", KeyType::kInt}, {"int", KeyType::kInt},   {"integer", KeyType::kInt},
      {"bigint", KeyType::kInt},   {"int2", KeyType::kInt},  {"int4", KeyType::kInt},
      {"int8", KeyType::kInt},     {"text", KeyType::kText}, {"varchar", KeyType::kText},
      {"uuid", KeyType::kUuid},    {"UUID", KeyType::kUuid}, {"Text", KeyType::kText}};
  for (const auto& [name, type] : cases) {
    INFO(name);
    const LoadResult r = LoadString(WithBase(
        std::string("tables:\n  - name: t\n    shard_key: k\n    key_type: ") + name + "\n"));
    REQUIRE(r.ok());
    CHECK(r.config->tables[0].key_type == type);
  }
}

TEST_CASE("FindTable ignores case and treats public as the default schema", "[conf][loader]") {
  const LoadResult r = LoadString(WithBase(R"(tables:
  - name: orders
    shard_key: tenant_id
  - name: Public.Items
    shard_key: tenant_id
  - name: sales.orders
    shard_key: id
)"));
  REQUIRE(r.ok());
  const Config& c = *r.config;
  CHECK(c.FindTable("orders") == &c.tables[0]);
  CHECK(c.FindTable("ORDERS") == &c.tables[0]);
  CHECK(c.FindTable("public.orders") == &c.tables[0]);
  CHECK(c.FindTable("items") == &c.tables[1]);
  CHECK(c.FindTable("public.items") == &c.tables[1]);
  CHECK(c.FindTable("sales.orders") == &c.tables[2]);
  CHECK(c.FindTable("sales.items") == nullptr);
  CHECK(c.FindTable("other") == nullptr);
}

TEST_CASE("ToString gives the configuration spelling", "[conf][loader]") {
  CHECK(ToString(PoolMode::kSession) == "session");
  CHECK(ToString(AuthMethod::kScramSha256) == "scram-sha-256");
  CHECK(ToString(ClientTlsMode::kAllow) == "allow");
  CHECK(ToString(SslMode::kPrefer) == "prefer");
  CHECK(ToString(KeyType::kInt) == "bigint");
  CHECK(ToString(KeyType::kUuid) == "uuid");
  CHECK(ToString(TableKind::kReference) == "reference");
  CHECK(ToString(LogFormat::kJson) == "json");
}

TEST_CASE("LoadFile resolves password files relative to the configuration file", "[conf][loader]") {
  TempDir dir;
  dir.MakeDir("secrets");
  dir.Write("secrets/app.pw", "file-secret\n");
  const std::string path =
      dir.Write("pgring.yaml", std::string("auth:\n  users:\n    - name: app\n"
                                           "      password_file: secrets/app.pw\n") +
                                   std::string(kShards));
  const LoadResult r = LoadFile(path);
  for (const auto& e : r.errors) UNSCOPED_INFO(FormatError(e));
  REQUIRE(r.ok());
  CHECK(r.config->path == path);
  const Secret& s = *r.config->auth.users[0].password;
  CHECK(s.value == "file-secret");
  CHECK(s.source == Secret::Source::kFile);
  CHECK(s.origin == dir.path() + "/secrets/app.pw");
}

TEST_CASE("LoadFile stores absolute paths when given a relative one", "[conf][loader]") {
  TempDir dir;
  dir.MakeDir("secrets");
  dir.Write("secrets/app.pw", "file-secret");
  dir.Write("pgring.yaml", std::string("auth:\n  users:\n    - name: app\n"
                                       "      password_file: secrets/app.pw\n") +
                               std::string(kShards));
  char old_cwd[4096];
  REQUIRE(::getcwd(old_cwd, sizeof old_cwd) != nullptr);
  REQUIRE(::chdir(dir.path().c_str()) == 0);
  const LoadResult r = LoadFile("pgring.yaml");
  REQUIRE(::chdir(old_cwd) == 0);
  REQUIRE(r.ok());
  CHECK(r.config->path == "pgring.yaml");
  CHECK(r.config->auth.users[0].password->origin == dir.path() + "/secrets/app.pw");
}

TEST_CASE("LoadFile names the file in every error", "[conf][loader]") {
  TempDir dir;
  const std::string path = dir.Write("bad.yaml", "listen:\n  port: x\n");
  const LoadResult r = LoadFile(path);
  REQUIRE_FALSE(r.ok());
  CHECK(r.config == nullptr);
  REQUIRE(r.errors.size() == 3);
  CHECK(FormatError(r.errors[0]) == path +
                                        ":1:1: auth.users: no users, so no client can log in "
                                        "with scram-sha-256; add at least one user with a "
                                        "password, or set auth.method: trust");
  CHECK(FormatError(r.errors[1]) == path +
                                        ":1:1: missing required key 'shards'; add a list of "
                                        "shards, each with a name and a primary server");
  CHECK(FormatError(r.errors[2]) ==
        path + ":2:9: listen.port: expected an integer from 1 to 65535, got 'x'");
}

TEST_CASE("LoadFile reports an unreadable file without a position", "[conf][loader]") {
  TempDir dir;
  const std::string missing = dir.path() + "/nope.yaml";
  LoadResult r = LoadFile(missing);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].line == 0);
  CHECK(r.errors[0].column == 0);
  CHECK(FormatError(r.errors[0]) ==
        missing +
            ": cannot read the configuration file: No such file or directory; check the "
            "path");
  r = LoadFile(dir.path());
  REQUIRE(r.errors.size() == 1);
  CHECK(FormatError(r.errors[0]) ==
        dir.path() + ": cannot read the configuration file: Is a directory");
}

TEST_CASE("the example configuration loads without error", "[conf][loader][example]") {
  ::setenv("PGRING_ADMIN_PASSWORD", "admin-secret", 1);
  ::setenv("PGRING_SHARD_PASSWORD", "replica-secret", 1);
  const LoadResult r = LoadFile(kExample);
  ::unsetenv("PGRING_ADMIN_PASSWORD");
  ::unsetenv("PGRING_SHARD_PASSWORD");
  for (const auto& e : r.errors) UNSCOPED_INFO(FormatError(e));
  REQUIRE(r.ok());
  const Config& c = *r.config;
  CHECK(FormatSummary(c) == "configuration OK: 2 shards, 3 tables");
  CHECK(c.FindUser("pgring_admin")->password->value == "admin-secret");
  CHECK(c.FindUser("pgring_admin")->admin);
  CHECK(c.FindUser("reporting")->scram_verifier.has_value());
  CHECK(c.FindShard("shard0")->replicas.at(0).password.value == "replica-secret");
  CHECK(c.FindTable("order_items")->shard_key == "tenant_id");
  CHECK(c.default_shard == "shard0");
}

TEST_CASE("the example configuration documents every key", "[conf][loader][example]") {
  std::ifstream in(kExample);
  std::stringstream text;
  text << in.rdbuf();
  const std::string example = text.str();
  const char* keys[] = {"listen:",
                        "host:",
                        "port:",
                        "admin_port:",
                        "metrics_port:",
                        "database:",
                        "workers:",
                        "io_uring:",
                        "pool:",
                        "mode:",
                        "size:",
                        "min_idle:",
                        "max_clients:",
                        "query_wait_timeout:",
                        "server_idle_timeout:",
                        "server_lifetime:",
                        "server_connect_timeout:",
                        "client_idle_timeout:",
                        "idle_in_transaction_timeout:",
                        "startup_timeout:",
                        "prepared_statement_cache:",
                        "auth:",
                        "method:",
                        "users:",
                        "name:",
                        "password:",
                        "password_file:",
                        "password_env:",
                        "scram_verifier:",
                        "admin:",
                        "tls:",
                        "client_mode:",
                        "cert_file:",
                        "key_file:",
                        "ca_file:",
                        "shards:",
                        "primary:",
                        "dbname:",
                        "user:",
                        "sslmode:",
                        "replicas:",
                        "ring:",
                        "vnodes:",
                        "tables:",
                        "kind:",
                        "shard_key:",
                        "key_type:",
                        "default_shard:",
                        "logging:",
                        "level:",
                        "format:"};
  for (const char* key : keys) {
    INFO(key);
    CHECK(example.find(key) != std::string::npos);
  }
}

}  // namespace
}  // namespace pgring::conf

namespace pgring::conf {
namespace {

TEST_CASE("mangled configurations give errors, never a crash", "[conf][loader][robustness]") {
  ::setenv("PGRING_ADMIN_PASSWORD", "admin-secret", 1);
  ::setenv("PGRING_SHARD_PASSWORD", "replica-secret", 1);
  std::ifstream in(kExample);
  std::stringstream text;
  text << in.rdbuf();
  const std::string example = text.str();
  const int lines = static_cast<int>(std::count(example.begin(), example.end(), '\n')) + 1;
  // A fixed linear congruential generator keeps the cases the same on every run.
  uint64_t state = 0x5eed;
  const auto next = [&state](uint64_t bound) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (state >> 33) % bound;
  };
  const std::string alphabet = ":-[]{}#'\"\n\t !&*|>%@`,?0a";
  for (int i = 0; i < 500; ++i) {
    std::string mangled = example;
    const int edits = 1 + static_cast<int>(next(4));
    for (int e = 0; e < edits; ++e) {
      const size_t at = next(mangled.size());
      switch (next(3)) {
        case 0:
          mangled[at] = alphabet[next(alphabet.size())];
          break;
        case 1:
          mangled.erase(at, 1 + next(8));
          break;
        default:
          mangled.resize(at);
          break;
      }
      if (mangled.empty()) break;
    }
    const LoadResult r = LoadString(mangled, "m.yaml");
    INFO(mangled);
    CHECK(r.ok() == r.errors.empty());
    for (const ConfigError& e : r.errors) {
      CHECK(e.file == "m.yaml");
      CHECK(e.line >= 0);
      CHECK(e.line <= lines + 1);
      CHECK(!e.message.empty());
      CHECK(e.message.find("admin-secret") == std::string::npos);
      CHECK(e.message.find("app-secret") == std::string::npos);
    }
  }
  ::unsetenv("PGRING_ADMIN_PASSWORD");
  ::unsetenv("PGRING_SHARD_PASSWORD");
}

}  // namespace
}  // namespace pgring::conf
