// pgringctl: the admin CLI of pgring. A thin client of the admin database "pgring":
// each command is sent as an admin console statement and the answer printed as a table
// (route answers as labelled fields).
//   pgringctl [--admin DSN] show pools|clients|servers|stats|config|shards|ring|version
//   pgringctl [--admin DSN] route --table T --key K      (SHOW ROUTE KEY T 'K')
//   pgringctl [--admin DSN] route --sql 'SQL' | --sql -  (SHOW ROUTE SQL)
//   pgringctl [--admin DSN] reload|pause|resume|shutdown
// The DSN comes from --admin, else from the environment variable PGRING_ADMIN_DSN.
#include <libpq-fe.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

namespace {

constexpr const char* kUsage = R"(pgringctl - admin CLI for pgring

Usage:
  pgringctl [--admin DSN] show pools|clients|servers|stats|config|shards|ring|version|help
  pgringctl [--admin DSN] route --table TABLE --key VALUE
                          which shard owns VALUE of TABLE's shard key: the hash, the
                          owning token and the shard (reference tables: where reads
                          and writes go)
  pgringctl [--admin DSN] route --sql 'SQL'
                          where each statement of SQL would run and why; --sql - reads
                          SQL from stdin. Exit status 1 if pgring would reject one.
  pgringctl [--admin DSN] reload      re-read the proxy's configuration file
  pgringctl [--admin DSN] pause       hold new transactions until running ones finish
  pgringctl [--admin DSN] resume      release paused clients
  pgringctl [--admin DSN] shutdown    stop the proxy gracefully

Examples:
  pgringctl route --table orders --key 42
  pgringctl route --sql 'SELECT * FROM orders WHERE tenant_id = 42'
  pgringctl show ring

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

// Prints each row as "label: value" lines (NULLs left out), for answers with few rows and
// long values. `title` names the row: "statement N: <statement column>" when it is set.
// Returns how many rows have kind "error".
int PrintFields(PGresult* res, bool statement_titles) {
  const int cols = PQnfields(res), rows = PQntuples(res);
  int errors = 0;
  size_t width = 0;
  for (int c = 0; c < cols; ++c) width = std::max(width, std::string(PQfname(res, c)).size());
  const int statement_col = PQfnumber(res, "statement");
  const int kind_col = PQfnumber(res, "kind");
  for (int r = 0; r < rows; ++r) {
    if (r > 0) std::printf("\n");
    std::string indent;
    if (statement_titles && statement_col >= 0) {
      std::printf("statement %d: %s\n", r + 1, PQgetvalue(res, r, statement_col));
      indent = "  ";
    }
    if (kind_col >= 0 && std::string(PQgetvalue(res, r, kind_col)) == "error") ++errors;
    for (int c = 0; c < cols; ++c) {
      if (c == statement_col && statement_titles) continue;
      if (PQgetisnull(res, r, c)) continue;
      std::string name = PQfname(res, c);
      std::string value = PQgetvalue(res, r, c);
      if (PQftype(res, c) == 16) value = value == "t" ? "yes" : "no";  // boolean
      std::printf("%s%s:%s %s\n", indent.c_str(), name.c_str(),
                  std::string(width - name.size(), ' ').c_str(), value.c_str());
    }
  }
  return errors;
}

// Returns `s` as a single-quoted SQL string.
std::string QuoteLiteral(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

}  // namespace

int main(int argc, char** argv) {
  std::string dsn;
  if (const char* env = std::getenv("PGRING_ADMIN_DSN")) dsn = env;
  std::vector<std::string> words;
  std::string table, key, sql;
  bool has_table = false, has_key = false, has_sql = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    // --opt VALUE and --opt=VALUE; a VALUE may start with '-' (--key -5).
    auto option = [&](const char* name, std::string& value, bool& seen) {
      const std::string flag = name;
      if (a == flag && i + 1 < argc) {
        value = argv[++i];
      } else if (a.rfind(flag + "=", 0) == 0) {
        value = a.substr(flag.size() + 1);
      } else {
        return false;
      }
      seen = true;
      return true;
    };
    bool admin_seen = false;
    if (option("--admin", dsn, admin_seen) || option("--table", table, has_table) ||
        option("--key", key, has_key) || option("--sql", sql, has_sql)) {
      continue;
    }
    if (a.rfind("--", 0) == 0) {
      std::fprintf(stderr, "pgringctl: unknown or incomplete option \"%s\"\n\n%s", a.c_str(),
                   kUsage);
      return 2;
    }
    words.push_back(a);
  }
  if (words.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  enum class Output { kTable, kFields, kStatements };
  Output output = Output::kTable;
  std::string command;
  const std::vector<std::string> shows = {"pools",  "clients", "servers", "stats", "config",
                                          "shards", "ring",    "version", "help"};
  const std::vector<std::string> actions = {"reload", "pause", "resume", "shutdown"};
  auto usage_error = [&](const std::string& what) {
    std::fprintf(stderr, "pgringctl: %s\n\n%s", what.c_str(), kUsage);
    return 2;
  };
  if ((has_table || has_key || has_sql) && words[0] != "route") {
    return usage_error("--table, --key and --sql go with the route command");
  }
  if (words[0] == "route" && words.size() == 1) {
    if (has_sql && (has_table || has_key)) {
      return usage_error("route takes either --table and --key, or --sql");
    }
    if (has_sql) {
      if (sql == "-") {
        sql.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
      }
      if (sql.find_first_not_of(" \t\r\n;") == std::string::npos) {
        return usage_error("route --sql needs a statement");
      }
      command = "SHOW ROUTE " + sql;
      output = Output::kStatements;
    } else if (has_table && has_key) {
      if (table.empty() || table.find_first_of(" \t\r\n;'") != std::string::npos) {
        return usage_error("--table takes one table name, optionally schema-qualified");
      }
      command = "SHOW ROUTE KEY " + table + " " + QuoteLiteral(key);
      output = Output::kFields;
    } else {
      return usage_error("route needs --table TABLE --key VALUE, or --sql 'SQL'");
    }
  } else if (words[0] == "show" && words.size() == 2 &&
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
    if (output == Output::kTable) {
      PrintTable(res);
    } else if (PrintFields(res, output == Output::kStatements) > 0) {
      rc = 1;  // pgring would reject a statement
    }
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
