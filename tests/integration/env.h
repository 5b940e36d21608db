// Reads the env file of the integration-test cluster and exposes its values to C++ tests.
//
// scripts/cluster start writes DIR/env as lines `export NAME='value'`; CTest passes the
// file's path in PGRING_TEST_ENV (see tests/integration/CMakeLists.txt). When
// PGRING_TEST_ENV is not set (a binary run by hand after `. .cluster/env`), the values
// come from the process environment instead.
//
//   std::string dsn = pgring::test::Get("PGRING_DSN");
//   for (const std::string& shard : pgring::test::ShardDsns()) { ... }
//
// Missing files or names throw std::runtime_error, which Catch2 reports as a failure with
// the message. Header-only; the parsed file is cached for the life of the process.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <istream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pgring::test {

using EnvMap = std::map<std::string, std::string, std::less<>>;

namespace env_internal {

inline bool IsNameChar(char c, bool first) {
  return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (!first && c >= '0' && c <= '9');
}

// Decodes one shell word made of 'single-quoted' parts, \-escaped characters and plain
// characters (the forms a POSIX shell accepts after NAME=). Returns nullopt on an
// unterminated quote or on text after the word other than a comment.
inline std::optional<std::string> ShellWord(std::string_view s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == '\'') {
      size_t end = s.find('\'', i + 1);
      if (end == std::string_view::npos) return std::nullopt;
      out.append(s.substr(i + 1, end - i - 1));
      i = end + 1;
    } else if (c == '\\') {
      if (i + 1 >= s.size()) return std::nullopt;
      out.push_back(s[i + 1]);
      i += 2;
    } else if (c == ' ' || c == '\t') {
      size_t rest = s.find_first_not_of(" \t", i);
      if (rest != std::string_view::npos && s[rest] != '#') return std::nullopt;
      break;
    } else if (c == '"' || c == '$' || c == '`') {
      return std::nullopt;  // never written by scripts/cluster; refuse to guess
    } else {
      out.push_back(c);
      ++i;
    }
  }
  return out;
}

}  // namespace env_internal

// Parses `export NAME='value'` lines (also `NAME=value`); blank lines and # comments are
// skipped. Throws std::runtime_error naming `origin` and the line on anything else.
inline EnvMap ParseEnvFile(std::istream& in, std::string_view origin = "env file") {
  EnvMap values;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string_view s = line;
    size_t start = s.find_first_not_of(" \t");
    if (start == std::string_view::npos || s[start] == '#') continue;
    s.remove_prefix(start);
    if (s.substr(0, 7) == "export " || s.substr(0, 7) == "export\t") {
      s.remove_prefix(7);
      s.remove_prefix(std::min(s.find_first_not_of(" \t"), s.size()));
    }
    size_t eq = s.find('=');
    bool valid_name = eq != std::string_view::npos && eq > 0;
    for (size_t k = 0; valid_name && k < eq; ++k) {
      valid_name = env_internal::IsNameChar(s[k], k == 0);
    }
    std::optional<std::string> value;
    if (valid_name) value = env_internal::ShellWord(s.substr(eq + 1));
    if (!value) {
      std::ostringstream msg;
      msg << origin << ":" << line_no << ": expected export NAME='value', got: " << line;
      throw std::runtime_error(msg.str());
    }
    values.insert_or_assign(std::string(s.substr(0, eq)), std::move(*value));
  }
  return values;
}

// Splits a space-separated list (SHARD_DSNS, SHARD_PORTS, ...) into its items.
inline std::vector<std::string> SplitList(std::string_view s) {
  std::vector<std::string> items;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = s.find_first_not_of(" \t\n", i);
    if (start == std::string_view::npos) break;
    size_t end = s.find_first_of(" \t\n", start);
    if (end == std::string_view::npos) end = s.size();
    items.emplace_back(s.substr(start, end - start));
    i = end;
  }
  return items;
}

// Returns the path named by PGRING_TEST_ENV, or an empty string when it is not set.
inline std::string EnvFilePath() {
  const char* path = std::getenv("PGRING_TEST_ENV");
  return path == nullptr ? std::string() : std::string(path);
}

// Returns the values of the env file named by PGRING_TEST_ENV (read once), or an empty
// map when PGRING_TEST_ENV is not set.
inline const EnvMap& Values() {
  static const EnvMap values = [] {
    std::string path = EnvFilePath();
    if (path.empty()) return EnvMap();
    std::ifstream in(path);
    if (!in) {
      throw std::runtime_error("cannot read the test cluster's env file " + path +
                               " (PGRING_TEST_ENV); did the integration/cluster_setup "
                               "test run? (ctest runs it first as a fixture)");
    }
    return ParseEnvFile(in, path);
  }();
  return values;
}

// Returns the value of `name`, or nullopt when the cluster does not define it.
inline std::optional<std::string> Find(std::string_view name) {
  if (!EnvFilePath().empty()) {
    const EnvMap& values = Values();
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  }
  const char* value = std::getenv(std::string(name).c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

// Returns the value of `name`; throws std::runtime_error if it is not defined.
inline std::string Get(std::string_view name) {
  std::optional<std::string> value = Find(name);
  if (!value) {
    std::string where = EnvFilePath().empty()
                            ? std::string("the environment (PGRING_TEST_ENV is not set)")
                            : "env file " + EnvFilePath();
    throw std::runtime_error(std::string(name) + " is not defined in " + where);
  }
  return *value;
}

// Returns the direct DSNs (role app, database app) of the shards, shard 0 first.
inline std::vector<std::string> ShardDsns() { return SplitList(Get("SHARD_DSNS")); }

// Returns the superuser (postgres) DSNs of the shards, in the order of ShardDsns().
inline std::vector<std::string> ShardSuperuserDsns() {
  return SplitList(Get("SHARD_SUPERUSER_DSNS"));
}

// Returns the DSN of the pgring proxy (role app, database app).
inline std::string ProxyDsn() { return Get("PGRING_DSN"); }

// Returns the DSN of the proxy's admin console (database pgring).
inline std::string AdminDsn() { return Get("PGRING_ADMIN_DSN"); }

}  // namespace pgring::test
