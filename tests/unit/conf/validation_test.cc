// One test (or more) per validation rule: each asserts the exact FILE:LINE:COLUMN and a
// message that names the problem and the fix.
#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "conf/loader.h"
#include "conf_test_util.h"

namespace pgring::conf {
namespace {

using testing::Errors;
using testing::kAuth;
using testing::kShards;
using testing::TempDir;
using testing::WithBase;
using Lines = std::vector<std::string>;

std::string Cat(std::string_view a, std::string_view b) { return std::string(a) + std::string(b); }

TEST_CASE("the minimal base configuration is valid", "[conf][validate]") {
  CHECK(Errors(WithBase("")).empty());
}

TEST_CASE("unknown keys are reported with a spelling suggestion", "[conf][validate]") {
  CHECK(Errors(WithBase("listen:\n  prot: 6432\n")) ==
        Lines{"t.yaml:2:3: listen: unknown key 'prot'; did you mean 'port'?"});
  CHECK(Errors(WithBase("tabels: []\n")) ==
        Lines{"t.yaml:1:1: unknown top-level key 'tabels'; did you mean 'tables'?"});
  CHECK(Errors(WithBase("pool:\n  max_client: 5\n")) ==
        Lines{"t.yaml:2:3: pool: unknown key 'max_client'; did you mean 'max_clients'?"});
  CHECK(Errors(Cat(kShards,
                   "auth:\n  users:\n    - name: app\n      password: x\n"
                   "      admn: true\n")) ==
        Lines{"t.yaml:12:7: auth.users[0]: unknown key 'admn'; did you mean 'admin'?"});
}

TEST_CASE("a section key written at the top level points to its section", "[conf][validate]") {
  CHECK(Errors(WithBase("port: 7000\n")) ==
        Lines{"t.yaml:1:1: unknown top-level key 'port'; did you mean 'listen.port'? Move it, "
              "indented, below 'listen:'"});
}

TEST_CASE("unknown keys without a close match list the allowed keys", "[conf][validate]") {
  CHECK(Errors(WithBase("listen:\n  replicas: 2\n")) ==
        Lines{"t.yaml:2:3: listen: unknown key 'replicas'; remove it or use one of: host, port, "
              "admin_port, metrics_port, database"});
}

TEST_CASE("an unknown key deep inside a shard is reported where it is", "[conf][validate]") {
  const std::string yaml = Cat(R"(shards:
  - name: s0
    primary:
      hots: 127.0.0.1
      dbname: app
      user: app
      password: pw
)",
                               kAuth);
  CHECK(Errors(yaml) ==
        Lines{"t.yaml:4:7: shards[0].primary: unknown key 'hots'; did you mean 'host'?",
              "t.yaml:4:7: shards[0].primary: missing required key 'host'; add the server's "
              "host name or IP address, such as 'host: 10.0.0.5'"});
}

TEST_CASE("a key set twice in one map is reported at the second", "[conf][validate]") {
  CHECK(Errors(WithBase("listen:\n  port: 7000\n  port: 7001\n")) ==
        Lines{"t.yaml:3:3: listen.port: set twice (first at line 2); remove one of them"});
}

TEST_CASE("wrong types name what was expected and what was found", "[conf][validate]") {
  SECTION("a string where an integer is expected") {
    CHECK(Errors(WithBase("listen:\n  port: abc\n")) ==
          Lines{"t.yaml:2:9: listen.port: expected an integer from 1 to 65535, got 'abc'"});
    CHECK(Errors(WithBase("pool:\n  size: 1.5\n")) ==
          Lines{"t.yaml:2:9: pool.size: expected an integer from 1 to 10000, got '1.5'"});
  }
  SECTION("no value where an integer is expected") {
    CHECK(Errors(WithBase("listen:\n  port:\n")) ==
          Lines{"t.yaml:2:3: listen.port: expected an integer from 1 to 65535, got nothing; "
                "write a number or remove the key"});
  }
  SECTION("a list where an integer is expected") {
    CHECK(Errors(WithBase("listen:\n  port: [1]\n")) ==
          Lines{"t.yaml:2:9: listen.port: expected an integer from 1 to 65535, got a list"});
  }
  SECTION("a scalar where a map is expected") {
    CHECK(Errors(WithBase("listen: 6432\n")) ==
          Lines{"t.yaml:1:9: listen: expected a map of settings (host, port, admin_port, "
                "metrics_port, database), got '6432'; write them as 'key: value' lines indented "
                "below it"});
  }
  SECTION("a map where a list is expected") {
    CHECK(Errors(Cat("shards:\n  name: s0\n", kAuth)) ==
          Lines{"t.yaml:2:3: shards: expected a list, got a map; start each entry with '- ', "
                "for example '- name: shard0'"});
  }
  SECTION("a list where a string is expected") {
    CHECK(Errors(WithBase("listen:\n  host: [a, b]\n")) ==
          Lines{"t.yaml:2:9: listen.host: expected an address to listen on, such as 127.0.0.1 "
                "or 0.0.0.0, got a list"});
  }
  SECTION("something else where a boolean is expected") {
    CHECK(Errors(Cat(kShards,
                     "auth:\n  users:\n    - name: app\n      password: x\n"
                     "      admin: maybe\n")) ==
          Lines{"t.yaml:12:14: auth.users[0].admin: expected true or false, got 'maybe'"});
  }
  SECTION("the top level is a list") {
    CHECK(Errors("- a\n- b\n") ==
          Lines{"t.yaml:1:1: expected a map of settings (listen, pool, auth, tls, shards, ...) "
                "at the top level, got a list; write one 'key: value' per line"});
  }
}

TEST_CASE("numbers outside their range name the range", "[conf][validate]") {
  CHECK(Errors(WithBase("listen:\n  port: 0\n")) ==
        Lines{"t.yaml:2:9: listen.port: 0 is out of range; use an integer from 1 to 65535"});
  CHECK(Errors(WithBase("listen:\n  port: 65536\n")) ==
        Lines{"t.yaml:2:9: listen.port: 65536 is out of range; use an integer from 1 to 65535"});
  CHECK(Errors(WithBase("listen:\n  port: 99999999999999999999999\n")) ==
        Lines{"t.yaml:2:9: listen.port: 99999999999999999999999 is out of range; use an "
              "integer from 1 to 65535"});
  CHECK(Errors(WithBase("listen:\n  admin_port: 0\n")) ==
        Lines{"t.yaml:2:15: listen.admin_port: 0 is out of range; use an integer from 1 to "
              "65535"});
  CHECK(Errors(WithBase("listen:\n  metrics_port: -1\n")) ==
        Lines{"t.yaml:2:17: listen.metrics_port: -1 is out of range; use an integer from 0 to "
              "65535 (0 disables metrics)"});
  CHECK(Errors(WithBase("workers: 1025\n")) ==
        Lines{"t.yaml:1:10: workers: 1025 is out of range; use an integer from 0 to 1024 (0 "
              "starts one io thread per CPU core)"});
  CHECK(Errors(WithBase("workers: -1\n")).size() == 1);
  CHECK(Errors(WithBase("io_uring: sometimes\n")) ==
        Lines{"t.yaml:1:11: io_uring: expected true or false, got 'sometimes'"});
  CHECK(Errors(WithBase("pool:\n  size: 0\n")) ==
        Lines{"t.yaml:2:9: pool.size: 0 is out of range; use an integer from 1 to 10000"});
  CHECK(Errors(WithBase("pool:\n  max_clients: 0\n")) ==
        Lines{"t.yaml:2:16: pool.max_clients: 0 is out of range; use an integer from 1 to "
              "1000000"});
  CHECK(Errors(WithBase("ring:\n  vnodes: 0\n")) ==
        Lines{"t.yaml:2:11: ring.vnodes: 0 is out of range; use an integer from 1 to 65536 "
              "(virtual nodes per shard)"});
  CHECK(Errors(WithBase("ring:\n  vnodes: 65537\n")) ==
        Lines{"t.yaml:2:11: ring.vnodes: 65537 is out of range; use an integer from 1 to 65536 "
              "(virtual nodes per shard)"});
  CHECK(Errors(Cat(R"(shards:
  - name: s0
    primary:
      host: h
      port: 70000
      dbname: app
      user: app
      password: pw
)",
                   kAuth)) ==
        Lines{"t.yaml:5:13: shards[0].primary.port: 70000 is out of range; use an integer from 1 "
              "to 65535"});
}

TEST_CASE("the limits themselves are accepted", "[conf][validate]") {
  const LoadResult r = LoadString(WithBase(R"(listen:
  port: 65535
  admin_port: 1
  metrics_port: 0
workers: 1024
pool:
  size: 1
  min_idle: 1
ring:
  vnodes: 65536
)"));
  REQUIRE(r.ok());
  CHECK(r.config->listen.port == 65535);
  CHECK(r.config->listen.admin_port == 1);
  CHECK(r.config->listen.metrics_port == 0);
  CHECK(r.config->workers == 1024);
  CHECK(r.config->pool.min_idle == 1);
  CHECK(r.config->ring.vnodes == 65536);
}

TEST_CASE("min_idle may not exceed the pool size", "[conf][validate]") {
  CHECK(Errors(WithBase("pool:\n  size: 5\n  min_idle: 6\n")) ==
        Lines{"t.yaml:3:13: pool.min_idle: 6 is more than pool.size (5); lower min_idle or raise "
              "size"});
  CHECK(Errors(WithBase("pool:\n  min_idle: 21\n")) ==
        Lines{"t.yaml:2:13: pool.min_idle: 21 is more than pool.size (20); lower min_idle or "
              "raise size"});
  // An invalid size is reported once, not compared.
  CHECK(Errors(WithBase("pool:\n  size: 0\n  min_idle: 6\n")).size() == 1);
}

TEST_CASE("bad enum values list the allowed ones", "[conf][validate]") {
  CHECK(Errors(WithBase("pool:\n  mode: transactions\n")) ==
        Lines{"t.yaml:2:9: pool.mode: 'transactions' is not allowed; use one of: transaction, "
              "session (did you mean 'transaction'?)"});
  CHECK(Errors(Cat("auth:\n  method: scram\n  users:\n    - name: app\n      password: x\n",
                   kShards)) ==
        Lines{"t.yaml:2:11: auth.method: 'scram' is not allowed; use one of: scram-sha-256, "
              "md5, trust"});
  CHECK(Errors(WithBase("tls:\n  client_mode: on\n")) ==
        Lines{"t.yaml:2:16: tls.client_mode: 'on' is not allowed; use one of: disable, allow, "
              "require"});
  CHECK(Errors(WithBase("logging:\n  level: inf\n")) ==
        Lines{"t.yaml:2:10: logging.level: 'inf' is not allowed; use one of: trace, debug, "
              "info, warn, error (did you mean 'info'?)"});
  CHECK(Errors(WithBase("logging:\n  format: xml\n")) ==
        Lines{"t.yaml:2:11: logging.format: 'xml' is not allowed; use one of: text, json"});
  CHECK(Errors(WithBase("tables:\n  - name: t\n    shard_key: k\n    key_type: string\n")) ==
        Lines{"t.yaml:4:15: tables[0].key_type: 'string' is not allowed; use one of: smallint, "
              "int, integer, bigint, int2, int4, int8, text, varchar, uuid"});
  CHECK(Errors(WithBase("tables:\n  - name: t\n    kind: refrence\n")) ==
        Lines{"t.yaml:3:11: tables[0].kind: 'refrence' is not allowed; use one of: sharded, "
              "reference (did you mean 'reference'?)"});
  CHECK(Errors(Cat(R"(shards:
  - name: s0
    primary:
      host: h
      dbname: app
      user: app
      password: pw
      sslmode: verify-full
)",
                   kAuth)) ==
        Lines{"t.yaml:8:16: shards[0].primary.sslmode: 'verify-full' is not allowed; use one "
              "of: disable, prefer, require"});
}

TEST_CASE("bad durations say what a duration looks like", "[conf][validate]") {
  CHECK(Errors(WithBase("pool:\n  query_wait_timeout: 5 sec\n")) ==
        Lines{"t.yaml:2:23: pool.query_wait_timeout: '5 sec' has an unknown unit 'sec'; write "
              "an integer and a unit, one of ms, s, m, h (for example 250ms, 5s, 10m, 1h), or "
              "0"});
  CHECK(Errors(WithBase("pool:\n  server_lifetime: 5000\n")) ==
        Lines{"t.yaml:2:20: pool.server_lifetime: '5000' has no unit; write 5000ms, 5000s, "
              "5000m or 5000h"});
  CHECK(Errors(WithBase("pool:\n  server_idle_timeout: -1s\n")) ==
        Lines{"t.yaml:2:24: pool.server_idle_timeout: '-1s' is negative; durations are 0 or "
              "more (write an integer and a unit, one of ms, s, m, h (for example 250ms, 5s, "
              "10m, 1h), or 0)"});
  CHECK(Errors(WithBase("pool:\n  client_idle_timeout: [5s]\n")) ==
        Lines{"t.yaml:2:24: pool.client_idle_timeout: expected a duration such as 5s, got a "
              "list"});
  CHECK(Errors(WithBase("pool:\n  idle_in_transaction_timeout: 9000h\n")) ==
        Lines{"t.yaml:2:32: pool.idle_in_transaction_timeout: '9000h' is longer than the "
              "maximum of 8760h"});
}

TEST_CASE("0 is refused for timeouts where it has no meaning", "[conf][validate]") {
  CHECK(Errors(WithBase("pool:\n  startup_timeout: 0\n")) ==
        Lines{"t.yaml:2:20: pool.startup_timeout: must be greater than 0; write a duration such "
              "as 5s"});
  CHECK(Errors(WithBase("pool:\n  server_connect_timeout: 0s\n")) ==
        Lines{"t.yaml:2:27: pool.server_connect_timeout: must be greater than 0; write a "
              "duration such as 5s"});
  CHECK(Errors(WithBase("pool:\n  query_wait_timeout: 0ms\n")) ==
        Lines{"t.yaml:2:23: pool.query_wait_timeout: must be greater than 0; write a duration "
              "such as 5s"});
  CHECK(Errors(WithBase(R"(pool:
  server_idle_timeout: 0
  server_lifetime: 0
  client_idle_timeout: 0
  idle_in_transaction_timeout: 0
)"))
            .empty());
}

TEST_CASE("a duplicate shard name points at the second and names the first's line",
          "[conf][validate]") {
  const std::string yaml = Cat(R"(shards:
  - name: s0
    primary:
      host: h1
      dbname: app
      user: app
      password: pw
  - name: s0
    primary:
      host: h2
      dbname: app
      user: app
      password: pw
)",
                               kAuth);
  CHECK(Errors(yaml) ==
        Lines{"t.yaml:8:11: shards[1].name: duplicate shard name 's0' (first defined at line 2); "
              "give every shard a unique name"});
}

TEST_CASE("shard names are checked", "[conf][validate]") {
  const std::string yaml = Cat(R"(shards:
  - name: "shard 0"
    primary:
      host: h1
      dbname: app
      user: app
      password: pw
)",
                               kAuth);
  CHECK(Errors(yaml) == Lines{"t.yaml:2:11: shards[0].name: 'shard 0' is not a valid shard name; "
                              "use 1 to 63 letters, digits, '_' or '-'"});
}

TEST_CASE("two shards on the same server and database are refused", "[conf][validate]") {
  const std::string yaml = Cat(R"(shards:
  - name: s0
    primary: {host: DB1, dbname: app, user: app, password: pw}
  - name: s1
    primary: {host: db1, port: 5432, dbname: app, user: app, password: pw}
)",
                               kAuth);
  CHECK(Errors(yaml) ==
        Lines{"t.yaml:5:14: shards[1].primary: the same server and database (db1:5432/app) as "
              "the primary of shard 's0' (line 3); every shard needs a database of its own"});
}

TEST_CASE("a duplicate table is found ignoring case and the public schema", "[conf][validate]") {
  CHECK(Errors(WithBase(R"(tables:
  - name: orders
    shard_key: tenant_id
  - name: Public.ORDERS
    shard_key: tenant_id
)")) == Lines{"t.yaml:4:11: tables[1].name: duplicate table 'public.orders' (first defined at "
              "line 2); list each table once"});
  // The same name in another schema is another table.
  CHECK(Errors(WithBase(R"(tables:
  - name: orders
    shard_key: tenant_id
  - name: archive.orders
    shard_key: tenant_id
)"))
            .empty());
}

TEST_CASE("table names and shard keys must be identifiers", "[conf][validate]") {
  CHECK(Errors(WithBase("tables:\n  - name: my table\n    shard_key: id\n")) ==
        Lines{"t.yaml:2:11: tables[0].name: 'my table' is not a valid table name; write name or "
              "schema.name, each part a letter or '_' followed by letters, digits or '_'"});
  CHECK(Errors(WithBase("tables:\n  - name: a.b.c\n    shard_key: id\n")).size() == 1);
  CHECK(Errors(WithBase("tables:\n  - name: t\n    shard_key: 1id\n")) ==
        Lines{"t.yaml:3:16: tables[0].shard_key: '1id' is not a valid column name; use a letter "
              "or '_' followed by letters, digits or '_'"});
}

TEST_CASE("a duplicate user points at the second and names the first's line", "[conf][validate]") {
  const std::string yaml = Cat(R"(auth:
  users:
    - name: app
      password: a
    - name: app
      password: b
)",
                               kShards);
  CHECK(Errors(yaml) == Lines{"t.yaml:5:13: auth.users[1].name: duplicate user 'app' (first "
                              "defined at line 3); list each user once"});
}

TEST_CASE("listen ports may not clash", "[conf][validate]") {
  CHECK(Errors(WithBase("listen:\n  port: 7000\n  admin_port: 7000\n")) ==
        Lines{"t.yaml:3:15: listen.admin_port: port 7000 is already used by listen.port (line "
              "2); give each listener its own port"});
  CHECK(Errors(WithBase("listen:\n  admin_port: 6432\n")) ==
        Lines{"t.yaml:2:15: listen.admin_port: port 6432 is already used by listen.port (its "
              "default); give each listener its own port"});
  CHECK(Errors(WithBase("listen:\n  metrics_port: 6433\n")) ==
        Lines{"t.yaml:2:17: listen.metrics_port: port 6433 is already used by listen.admin_port "
              "(its default); give each listener its own port"});
  // Reported at the key written later, whatever the order of the keys.
  CHECK(Errors(WithBase("listen:\n  metrics_port: 7000\n  admin_port: 7000\n")) ==
        Lines{"t.yaml:3:15: listen.admin_port: port 7000 is already used by listen.metrics_port "
              "(line 2); give each listener its own port"});
  // One error per port even when all three clash.
  CHECK(Errors(WithBase("listen:\n  port: 7000\n  admin_port: 7000\n  metrics_port: 7000\n"))
            .size() == 2);
  // metrics_port 0 disables metrics and clashes with nothing.
  CHECK(Errors(WithBase("listen:\n  metrics_port: 0\n")).empty());
}

TEST_CASE("the client database may not be called pgring", "[conf][validate]") {
  CHECK(Errors(WithBase("listen:\n  database: pgring\n")) ==
        Lines{"t.yaml:2:13: listen.database: 'pgring' is the name of the admin database; choose "
              "another name"});
}

TEST_CASE("missing required keys say what to add", "[conf][validate]") {
  SECTION("shards") {
    CHECK(Errors(kAuth) == Lines{"t.yaml:1:1: missing required key 'shards'; add a list of "
                                 "shards, each with a name and a primary server"});
    CHECK(Errors(Cat("shards: []\n", kAuth)) ==
          Lines{"t.yaml:1:9: shards: the list is empty; add at least one shard with a name and "
                "a primary"});
  }
  SECTION("a shard's name and primary") {
    CHECK(Errors(Cat("shards:\n  - primary: {host: h, dbname: d, user: u, password: p}\n",
                     kAuth)) == Lines{"t.yaml:2:5: shards[0]: missing required key 'name'; add a "
                                      "unique name such as 'name: shard0'"});
    CHECK(Errors(Cat("shards:\n  - name: s0\n", kAuth)) ==
          Lines{"t.yaml:2:5: shards[0]: missing required key 'primary'; add the primary server: "
                "host, port, dbname, user and a password"});
  }
  SECTION("a server's dbname and user") {
    CHECK(Errors(Cat("shards:\n  - name: s0\n    primary:\n      host: h\n      password: p\n",
                     kAuth)) ==
          Lines{"t.yaml:4:7: shards[0].primary: missing required key 'dbname'; add the database "
                "to use on that server, such as 'dbname: app'",
                "t.yaml:4:7: shards[0].primary: missing required key 'user'; add the role pgring "
                "logs in as, such as 'user: app'"});
  }
  SECTION("a replica's host") {
    CHECK(Errors(Cat(R"(shards:
  - name: s0
    primary: {host: h, dbname: d, user: u, password: p}
    replicas:
      - dbname: d
        user: u
        password: p
)",
                     kAuth)) == Lines{"t.yaml:5:9: shards[0].replicas[0]: missing required key "
                                      "'host'; add the server's host name or IP address, such as "
                                      "'host: 10.0.0.5'"});
  }
  SECTION("a user's and a table's name") {
    CHECK(Errors(Cat("auth:\n  users:\n    - password: p\n", kShards)) ==
          Lines{"t.yaml:3:7: auth.users[0]: missing required key 'name'; add the role name "
                "clients log in with, such as 'name: app'"});
    CHECK(Errors(WithBase("tables:\n  - shard_key: id\n")) ==
          Lines{"t.yaml:2:5: tables[0]: missing required key 'name'; add the table's name, such "
                "as 'name: orders'"});
  }
  SECTION("users, unless the method is trust") {
    CHECK(Errors(kShards) == Lines{"t.yaml:1:1: auth.users: no users, so no client can log in "
                                   "with scram-sha-256; add at least one user with a password, "
                                   "or set auth.method: trust"});
    CHECK(Errors(Cat("auth:\n  method: md5\n", kShards)) ==
          Lines{"t.yaml:1:1: auth.users: no users, so no client can log in with md5; add at "
                "least one user with a password, or set auth.method: trust"});
    CHECK(Errors(Cat("auth:\n  method: trust\n", kShards)).empty());
  }
}

TEST_CASE("a value left empty is reported at its key", "[conf][validate]") {
  CHECK(Errors(WithBase("listen:\n  host:\n")) ==
        Lines{"t.yaml:2:3: listen.host: has no value; write an address to listen on, such as "
              "127.0.0.1 or 0.0.0.0 after the colon or remove the key"});
  CHECK(Errors(WithBase("listen:\n  host: \"\"\n")) ==
        Lines{"t.yaml:2:9: listen.host: is empty; write an address to listen on, such as "
              "127.0.0.1 or 0.0.0.0"});
}

TEST_CASE("every user and server needs exactly one password source", "[conf][validate]") {
  SECTION("a user without one") {
    CHECK(Errors(Cat("auth:\n  users:\n    - name: app\n      admin: true\n", kShards)) ==
          Lines{"t.yaml:3:7: auth.users[0]: no password; add exactly one of password, "
                "password_file, password_env, scram_verifier"});
  }
  SECTION("a user with two") {
    ::setenv("PGRING_TEST_PW", "env-secret", 1);
    CHECK(Errors(Cat("auth:\n  users:\n    - name: app\n      password: a\n"
                     "      password_env: PGRING_TEST_PW\n",
                     kShards)) == Lines{"t.yaml:5:7: auth.users[0]: more than one password source "
                                        "(password, password_env); keep exactly one of them"});
    ::unsetenv("PGRING_TEST_PW");
  }
  SECTION("a server without one") {
    CHECK(Errors(Cat("shards:\n  - name: s0\n    primary:\n      host: h\n      dbname: d\n"
                     "      user: u\n",
                     kAuth)) == Lines{"t.yaml:4:7: shards[0].primary: no password; add exactly "
                                      "one of password, password_file, password_env"});
  }
  SECTION("a server may not use a scram_verifier") {
    CHECK(Errors(Cat("shards:\n  - name: s0\n    primary:\n      host: h\n      dbname: d\n"
                     "      user: u\n      scram_verifier: x\n",
                     kAuth)) ==
          Lines{"t.yaml:4:7: shards[0].primary: no password; add exactly one of password, "
                "password_file, password_env",
                "t.yaml:7:7: shards[0].primary: unknown key 'scram_verifier'; remove it or use "
                "one of: host, port, dbname, user, password, password_file, password_env, "
                "sslmode"});
  }
  SECTION("under trust a user needs none") {
    const LoadResult r =
        LoadString(Cat("auth:\n  method: trust\n  users:\n    - name: app\n", kShards));
    REQUIRE(r.ok());
    CHECK_FALSE(r.config->auth.users[0].password.has_value());
  }
}

TEST_CASE("an unreadable password_file names the path and the errno text", "[conf][validate]") {
  TempDir dir;
  const std::string missing = dir.path() + "/missing.pw";
  CHECK(Errors(Cat("auth:\n  users:\n    - name: app\n      password_file: " + missing + "\n",
                   kShards)) ==
        Lines{"t.yaml:4:22: auth.users[0].password_file: cannot read '" + missing +
              "': No such file or directory; fix the path or the file's permissions, or choose "
              "another password source"});
  const std::string sub = dir.MakeDir("sub");
  CHECK(Errors(
            Cat("auth:\n  users:\n    - name: app\n      password_file: " + sub + "\n", kShards)) ==
        Lines{"t.yaml:4:22: auth.users[0].password_file: cannot read '" + sub +
              "': Is a directory; fix the path or the file's permissions, or choose another "
              "password source"});
  if (::geteuid() != 0) {  // root reads any file
    const std::string locked = dir.Write("locked.pw", "secret");
    ::chmod(locked.c_str(), 0);
    CHECK(Errors(Cat("auth:\n  users:\n    - name: app\n      password_file: " + locked + "\n",
                     kShards)) ==
          Lines{"t.yaml:4:22: auth.users[0].password_file: cannot read '" + locked +
                "': Permission denied; fix the path or the file's permissions, or choose "
                "another password source"});
  }
}

TEST_CASE("an unset password_env variable is named", "[conf][validate]") {
  ::unsetenv("PGRING_TEST_UNSET_VAR");
  const std::string yaml = Cat(R"(shards:
  - name: s0
    primary:
      host: h
      dbname: d
      user: u
      password_env: PGRING_TEST_UNSET_VAR
)",
                               kAuth);
  CHECK(Errors(yaml) ==
        Lines{"t.yaml:7:21: shards[0].primary.password_env: environment variable "
              "PGRING_TEST_UNSET_VAR is not set; export PGRING_TEST_UNSET_VAR in pgring's "
              "environment or choose another password source"});
  CHECK(Errors(Cat("auth:\n  users:\n    - name: app\n      password_env: $HOME\n", kShards)) ==
        Lines{"t.yaml:4:21: auth.users[0].password_env: '$HOME' is not an environment variable "
              "name; use letters, digits and '_', such as PGRING_PASSWORD"});
}

TEST_CASE("sharded tables need a shard_key and reference tables refuse one", "[conf][validate]") {
  CHECK(Errors(WithBase("tables:\n  - name: orders\n")) ==
        Lines{"t.yaml:2:5: tables[0]: sharded table 'orders' has no shard_key; add 'shard_key: "
              "<column>' naming the column that picks the shard, or set kind: reference"});
  CHECK(Errors(WithBase("tables:\n  - name: orders\n    kind: sharded\n")).size() == 1);
  CHECK(Errors(WithBase("tables:\n  - name: plans\n    kind: reference\n    shard_key: id\n")) ==
        Lines{"t.yaml:4:5: tables[0]: reference table 'plans' cannot have a shard_key (it is "
              "copied in full to every shard); remove shard_key or set kind: sharded"});
  CHECK(Errors(WithBase("tables:\n  - name: plans\n    kind: reference\n    key_type: text\n")) ==
        Lines{"t.yaml:4:5: tables[0]: reference table 'plans' cannot have a key_type; remove "
              "key_type or set kind: sharded"});
}

TEST_CASE("default_shard must name a shard", "[conf][validate]") {
  CHECK(Errors(WithBase("default_shard: s9\n")) ==
        Lines{"t.yaml:1:16: default_shard: 's9' is not the name of a shard; use one of: s0, or "
              "remove default_shard (did you mean 's0'?)"});
  CHECK(Errors(WithBase("default_shard: s0\n")).empty());
  CHECK(Errors(WithBase("default_shard: \"\"\n")).empty());
  CHECK(Errors(WithBase("default_shard:\n")).empty());
}

TEST_CASE("scram_verifier must be a SCRAM-SHA-256 verifier", "[conf][validate]") {
  const std::string yaml =
      Cat("auth:\n  users:\n    - name: app\n"
          "      scram_verifier: \"SCRAM-SHA-256$4096:c2FsdA==$c2hvcnQ=:c2hvcnQ=\"\n",
          kShards);
  const Lines errors = Errors(yaml);
  CHECK(errors ==
        Lines{"t.yaml:4:23: auth.users[0].scram_verifier: invalid SCRAM-SHA-256 verifier: "
              "StoredKey decodes to 5 bytes instead of 32; copy the verifier from "
              "pg_authid.rolpassword, whose form is "
              "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"});
  CHECK(Errors(Cat("auth:\n  users:\n    - name: app\n      scram_verifier: md5abc\n", kShards))
            .at(0)
            .find("t.yaml:4:23: auth.users[0].scram_verifier: invalid SCRAM-SHA-256 verifier: "
                  "it does not start with 'SCRAM-SHA-256$'") == 0);
}

TEST_CASE("md5 authentication cannot use a SCRAM verifier", "[conf][validate]") {
  const std::string yaml =
      Cat("auth:\n  method: md5\n  users:\n    - name: app\n"
          "      scram_verifier: \"SCRAM-SHA-256$4096:cGdyaW5nLWV4YW1wbGUtc2FsdA==$"
          "LWuIsjWCle6AmGQVAo6NO4NvEZrLm5JQRndNY7zFmUk=:"
          "qF0OK6ZP8gsJl7aAg8PTEd0MIq2tcTXi1ICrytl7HSU=\"\n",
          kShards);
  CHECK(Errors(yaml) ==
        Lines{"t.yaml:5:7: auth.users[0]: auth.method md5 needs the user's password, which a "
              "SCRAM verifier cannot provide; use password, password_file or password_env, or "
              "set auth.method: scram-sha-256"});
}

TEST_CASE("client TLS needs readable certificate and key files", "[conf][validate]") {
  TempDir dir;
  const std::string crt = dir.Write("server.crt", "-----BEGIN CERTIFICATE-----\n");
  const std::string key = dir.Write("server.key", "-----BEGIN PRIVATE KEY-----\n");
  const std::string missing = dir.path() + "/missing.crt";

  CHECK(Errors(WithBase("tls:\n  client_mode: require\n")) ==
        Lines{"t.yaml:2:16: tls.client_mode: 'require' needs tls.cert_file and tls.key_file; add "
              "them (PEM files) or set client_mode: disable"});
  CHECK(Errors(WithBase("tls:\n  client_mode: allow\n  cert_file: " + crt + "\n")) ==
        Lines{"t.yaml:2:16: tls.client_mode: 'allow' needs tls.key_file; add it (PEM files) or "
              "set client_mode: disable"});
  CHECK(Errors(WithBase("tls:\n  client_mode: require\n  cert_file: " + missing +
                        "\n  key_file: " + key + "\n")) ==
        Lines{"t.yaml:3:14: tls.cert_file: cannot read '" + missing +
              "': No such file or directory; fix the path or the file's permissions"});
  CHECK(Errors(WithBase("tls:\n  ca_file: " + missing + "\n")) ==
        Lines{"t.yaml:2:12: tls.ca_file: cannot read '" + missing +
              "': No such file or directory; fix the path or the file's permissions"});
  // With TLS off, certificate and key are not needed and not read.
  CHECK(Errors(WithBase("tls:\n  client_mode: disable\n  cert_file: " + missing + "\n")).empty());

  const LoadResult r = LoadString(WithBase("tls:\n  client_mode: require\n  cert_file: " + crt +
                                           "\n  key_file: " + key + "\n  ca_file: " + crt + "\n"));
  REQUIRE(r.ok());
  CHECK(r.config->tls.client_mode == ClientTlsMode::kRequire);
  CHECK(r.config->tls.cert_file == crt);
  CHECK(r.config->tls.key_file == key);
  CHECK(r.config->tls.ca_file == crt);
}

TEST_CASE("YAML syntax errors carry yaml-cpp's position", "[conf][validate]") {
  CHECK(Errors("listen:\n  port: 1\n\tadmin_port: 2\n") ==
        Lines{"t.yaml:3:1: YAML syntax error: illegal tab when looking for indentation; check "
              "the indentation (spaces only, no tabs), colons and quotes on this line and the "
              "one before"});
  CHECK(Errors("shards: [a, b\n") ==
        Lines{"t.yaml:2:1: YAML syntax error: end of sequence flow not found; check the "
              "indentation (spaces only, no tabs), colons and quotes on this line and the one "
              "before"});
  CHECK(Errors("listen:\n  port: 1\n port: 2\n") ==
        Lines{"t.yaml:3:2: YAML syntax error: end of map not found; check the indentation "
              "(spaces only, no tabs), colons and quotes on this line and the one before"});
  CHECK(Errors("a: 1\n---\nb: 2\n") ==
        Lines{"t.yaml:3:1: more than one YAML document ('---'); keep the whole configuration in "
              "one document"});
}

TEST_CASE("an empty file is one clear error", "[conf][validate]") {
  const Lines expected = {
      "t.yaml:1:1: the configuration is empty; it needs at least a 'shards' list (see "
      "conf/pgring.example.yaml for every setting)"};
  CHECK(Errors("") == expected);
  CHECK(Errors("\n\n") == expected);
  CHECK(Errors("# only a comment\n") == expected);
  CHECK(Errors("---\n") == expected);
}

TEST_CASE("no error message contains a secret", "[conf][validate]") {
  TempDir dir;
  const std::string pw_file = dir.Write("pw", "hunter2-file\n");
  ::setenv("PGRING_TEST_SECRET", "hunter2-env", 1);
  const std::string yaml = R"(auth:
  method: md5
  users:
    - name: a
      password: hunter2-inline
      password_env: PGRING_TEST_SECRET
    - name: b
      password: [hunter2-list]
    - name: c
      scram_verifier: "SCRAM-SHA-256$4096:aHVudGVyMg==$hunter2-verifier"
    - name: d
      password_file: )" + pw_file +
                           R"(
      scram_verifier: hunter2-both
    - name: e
      password: {hunter2: map}
shards:
  - name: s0
    primary:
      host: h
      dbname: d
      user: u
      password: hunter2-server
      password_file: )" + pw_file +
                           R"(
)";
  const Lines errors = Errors(yaml);
  CHECK(errors.size() >= 5);
  for (const std::string& e : errors) {
    INFO(e);
    CHECK(e.find("hunter2") == std::string::npos);
    CHECK(e.find("aHVudGVyMg") == std::string::npos);
  }
  ::unsetenv("PGRING_TEST_SECRET");
}

TEST_CASE("three mistakes in one file give three precise errors", "[conf][validate]") {
  const std::string yaml = R"(listen:
  prot: 6432
auth:
  users:
    - name: app
      password: pw
shards:
  - name: s0
    primary:
      host: h1
      port: 99999
      dbname: app
      user: app
      password: pw
  - name: s0
    primary:
      host: h2
      dbname: app
      user: app
      password: pw
)";
  CHECK(Errors(yaml) ==
        Lines{"t.yaml:2:3: listen: unknown key 'prot'; did you mean 'port'?",
              "t.yaml:11:13: shards[0].primary.port: 99999 is out of range; use an integer from "
              "1 to 65535",
              "t.yaml:15:11: shards[1].name: duplicate shard name 's0' (first defined at line "
              "8); give every shard a unique name"});
}

TEST_CASE("errors come sorted by position whatever order they were found in", "[conf][validate]") {
  // default_shard is checked after the shards, but comes first in the file.
  const Lines errors = Errors(Cat("default_shard: nope\nworkers: x\n", kShards));
  REQUIRE(errors.size() == 3);
  CHECK(errors[0].find("t.yaml:1:1: auth.users: no users") == 0);
  CHECK(errors[1].find("t.yaml:1:16: default_shard: 'nope'") == 0);
  CHECK(errors[2].find("t.yaml:2:10: workers:") == 0);
}

}  // namespace
}  // namespace pgring::conf
