// Helpers shared by the conf/ unit tests: loading YAML text and scratch files.
#pragma once

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "conf/loader.h"

namespace pgring::conf::testing {

// A minimal valid configuration without `auth` and `shards` prefixes; tests put the
// section under test first so that its line numbers start at 1.
inline constexpr std::string_view kAuth = R"(auth:
  users:
    - name: app
      password: app-pw
)";

inline constexpr std::string_view kShards = R"(shards:
  - name: s0
    primary:
      host: 127.0.0.1
      dbname: app
      user: app
      password: shard-pw
)";

inline std::string WithBase(std::string_view section) {
  return std::string(section) + std::string(kAuth) + std::string(kShards);
}

// Loads `yaml` as "t.yaml" and returns the formatted errors.
inline std::vector<std::string> Errors(std::string_view yaml) {
  std::vector<std::string> out;
  for (const ConfigError& e : LoadString(yaml, "t.yaml").errors) out.push_back(FormatError(e));
  return out;
}

// A scratch directory removed (with its files) when the object goes away.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/pgring-conf-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    for (const std::string& f : files_) ::unlink(f.c_str());
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) ::rmdir(it->c_str());
    ::rmdir(path_.c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

  // Writes `contents` to `name` inside the directory and returns its full path.
  std::string Write(const std::string& name, std::string_view contents) {
    const std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary) << contents;
    files_.push_back(p);
    return p;
  }

  std::string MakeDir(const std::string& name) {
    const std::string p = path_ + "/" + name;
    ::mkdir(p.c_str(), 0700);
    dirs_.push_back(p);
    return p;
  }

 private:
  std::string path_;
  std::vector<std::string> files_;
  std::vector<std::string> dirs_;
};

}  // namespace pgring::conf::testing
