// pgringctl: the admin CLI of pgring. A thin client of the admin database "pgring":
// each command is sent as an admin console statement and the answer printed as a table.
//   pgringctl [--admin DSN] show pools|clients|servers|stats|config|shards|version
//   pgringctl [--admin DSN] reload|pause|resume|shutdown
// The DSN comes from --admin, else from the environment variable PGRING_ADMIN_DSN.
#include <libpq-fe.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

constexpr const char* kUsage = R"(pgringctl - admin CLI for pgring

Usage:
  pgringctl [--admin DSN] show pools|clients|servers|stats|config|shards|version|help
  pgringctl [--admin DSN] reload      re-read the proxy's configuration file
  pgringctl [--admin DSN] pause       hold new transactions until running ones finish
  pgringctl [--admin DSN] resume      release paused clients
  pgringctl [--admin DSN] shutdown    stop the proxy gracefully

DSN: a libpq connection string or postgresql:// URI of the admin database "pgring"
(for example postgresql://pgring_admin:PASSWORD@127.0.0.1:6433/pgring). Without
--admin, PGRING_ADMIN_DSN is used (scripts/cluster writes it to its env file).
)";

void PrintTable(PGresult* res) {
  int cols = PQnfields(res), rows = PQntuples(res);
  if (cols == 0) return;
  std::vector<size_t> width(cols);
  for (int c = 0; c < cols; ++c) width[c] = std::string(PQfname(res, c)).size();
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) width[c] = std::max(width[c], std::string(PQgetvalue(res, r, c)).size());
  auto line = [&](auto get) {
    std::string out;
    for (int c = 0; c < cols; ++c) {
      std::string v = get(c);
      out += v + std::string(width[c] - v.size(), ' ');
      if (c + 1 < cols) out += " | ";
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    std::printf("%s\n", out.c_str());
  };
  line([&](int c) { return std::string(PQfname(res, c)); });
  std::string sep;
  for (int c = 0; c < cols; ++c) sep += std::string(width[c], '-') + (c + 1 < cols ? "-+-" : "");
  std::printf("%s\n", sep.c_str());
  for (int r = 0; r < rows; ++r) line([&](int c) { return std::string(PQgetvalue(res, r, c)); });
  std::printf("(%d row%s)\n", rows, rows == 1 ? "" : "s");
}

}  // namespace

int main(int argc, char** argv) {
  std::string dsn;
  if (const char* env = std::getenv("PGRING_ADMIN_DSN")) dsn = env;
  std::vector<std::string> words;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--admin" && i + 1 < argc) {
      dsn = argv[++i];
      continue;
    }
    words.push_back(a);
  }
  if (words.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string command;
  const std::vector<std::string> shows = {"pools", "clients", "servers", "stats",
                                          "config", "shards", "version", "help"};
  const std::vector<std::string> actions = {"reload", "pause", "resume", "shutdown"};
  if (words[0] == "show" && words.size() == 2 &&
      std::find(shows.begin(), shows.end(), words[1]) != shows.end()) {
    command = "SHOW " + words[1];
  } else if (words.size() == 1 &&
             std::find(actions.begin(), actions.end(), words[0]) != actions.end()) {
    command = words[0];
  } else {
    std::string joined;
    for (const auto& w : words) joined += (joined.empty() ? "" : " ") + w;
    std::fprintf(stderr, "pgringctl: unknown command \"%s\"\n\n%s", joined.c_str(), kUsage);
    return 2;
  }
  if (dsn.empty()) {
    std::fprintf(stderr,
                 "pgringctl: no admin DSN: pass --admin DSN or set PGRING_ADMIN_DSN "
                 "(source the env file written by scripts/cluster)\n");
    return 2;
  }
  PGconn* conn = PQconnectdb(dsn.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::fprintf(stderr, "pgringctl: cannot connect to the pgring admin database: %s",
                 PQerrorMessage(conn));
    PQfinish(conn);
    return 1;
  }
  PGresult* res = PQexec(conn, command.c_str());
  int rc = 0;
  if (PQresultStatus(res) == PGRES_TUPLES_OK) {
    PrintTable(res);
  } else if (PQresultStatus(res) == PGRES_COMMAND_OK) {
    std::printf("%s\n", PQcmdStatus(res));
  } else {
    std::fprintf(stderr, "pgringctl: %s", PQresultErrorMessage(res));
    rc = 1;
  }
  PQclear(res);
  PQfinish(conn);
  return rc;
}
