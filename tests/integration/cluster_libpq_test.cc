// Connects to every shard of the test cluster with libpq, using the DSNs that
// tests/integration/env.h reads from the cluster's env file.
#include <libpq-fe.h>

#include <catch2/catch.hpp>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/env.h"
#include "tests/integration/pq.h"

namespace {

using Conn = pgring::test::PgConn;
using Result = pgring::test::PgResult;

Conn Connect(const std::string& dsn) { return Conn(PQconnectdb(dsn.c_str())); }

// Runs `sql`, which must return one row, and returns that row's text values.
std::vector<std::string> QueryRow(PGconn* conn, const char* sql) {
  Result res(PQexec(conn, sql));
  INFO(sql << ": " << PQerrorMessage(conn));
  REQUIRE(PQresultStatus(res.get()) == PGRES_TUPLES_OK);
  REQUIRE(PQntuples(res.get()) == 1);
  std::vector<std::string> row;
  for (int col = 0; col < PQnfields(res.get()); ++col) {
    row.emplace_back(PQgetvalue(res.get(), 0, col));
  }
  return row;
}

}  // namespace

TEST_CASE("every shard accepts role app on database app with its password") {
  const std::vector<std::string> dsns = pgring::test::ShardDsns();
  REQUIRE(dsns.size() == std::stoul(pgring::test::Get("PGRING_SHARD_COUNT")));
  const std::vector<std::string> ports = pgring::test::SplitList(pgring::test::Get("SHARD_PORTS"));
  REQUIRE(ports.size() == dsns.size());

  std::set<std::string> seen_ports;
  for (size_t i = 0; i < dsns.size(); ++i) {
    INFO("shard" << i << " " << dsns[i]);
    Conn conn = Connect(dsns[i]);
    INFO(PQerrorMessage(conn.get()));
    REQUIRE(PQstatus(conn.get()) == CONNECTION_OK);
    CHECK(PQconnectionUsedPassword(conn.get()) == 1);

    std::vector<std::string> row = QueryRow(
        conn.get(), "SELECT current_user, current_database(), current_setting('port')");
    CHECK(row[0] == "app");
    CHECK(row[1] == "app");
    CHECK(row[2] == ports[i]);
    seen_ports.insert(row[2]);
  }
  // Each DSN reaches a different server.
  CHECK(seen_ports.size() == dsns.size());
}

TEST_CASE("a shard rejects role app with a wrong password") {
  const std::vector<std::string> dsns = pgring::test::ShardDsns();
  REQUIRE_FALSE(dsns.empty());
  // postgresql://app:PASSWORD@host:port/app -> a different password
  std::string dsn = dsns[0];
  size_t at = dsn.find('@');
  size_t colon = dsn.rfind(':', at);
  REQUIRE(at != std::string::npos);
  REQUIRE(colon != std::string::npos);
  dsn.replace(colon + 1, at - colon - 1, "not-the-password");
  Conn conn = Connect(dsn);
  CHECK(PQstatus(conn.get()) == CONNECTION_BAD);
  CHECK(std::string(PQerrorMessage(conn.get())).find("password authentication failed") !=
        std::string::npos);
}

TEST_CASE("ParseEnvFile decodes the lines scripts/cluster writes") {
  std::istringstream in(
      "# comment\n"
      "\n"
      "export PGRING_DSN='postgresql://app:pw@127.0.0.1:15532/app'\n"
      "export SHARD_DSNS='a b  c'\n"
      "export QUOTED='it'\\''s'\n"
      "PLAIN=value # trailing comment\n"
      "export EMPTY=''\n");
  pgring::test::EnvMap env = pgring::test::ParseEnvFile(in);
  CHECK(env.at("PGRING_DSN") == "postgresql://app:pw@127.0.0.1:15532/app");
  CHECK(pgring::test::SplitList(env.at("SHARD_DSNS")) ==
        std::vector<std::string>{"a", "b", "c"});
  CHECK(env.at("QUOTED") == "it's");
  CHECK(env.at("PLAIN") == "value");
  CHECK(env.at("EMPTY").empty());
  CHECK(env.size() == 5);

  for (const char* bad : {"export X='unterminated\n", "export 1X='a'\n", "just words\n",
                          "export X='a' b\n", "export X=\"double\"\n"}) {
    std::istringstream bad_in(bad);
    INFO(bad);
    CHECK_THROWS_AS(pgring::test::ParseEnvFile(bad_in), std::runtime_error);
  }
}
