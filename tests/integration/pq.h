// Owning handles for libpq objects in the C++ integration tests.
//
//   pgring::test::PgConn conn(PQconnectdb(dsn.c_str()));
//   pgring::test::PgResult res(PQexec(conn.get(), "SELECT 1"));
#pragma once

#include <libpq-fe.h>

#include <memory>

namespace pgring::test {

struct PgConnCloser {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct PgResultClearer {
  void operator()(PGresult* res) const { PQclear(res); }
};
using PgConn = std::unique_ptr<PGconn, PgConnCloser>;
using PgResult = std::unique_ptr<PGresult, PgResultClearer>;

}  // namespace pgring::test
