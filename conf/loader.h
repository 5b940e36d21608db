// Loads and validates pgring's YAML configuration into an immutable Config.
//
//   conf::LoadResult r = conf::LoadFile("/etc/pgring/pgring.yaml");
//   if (!r.ok()) {
//     for (const auto& e : r.errors) std::cerr << conf::FormatError(e) << "\n";
//     return 1;
//   }
//   std::shared_ptr<const conf::Config> config = r.config;
//
// Loading reports every problem it finds, not only the first, each with the position
// of the offending YAML node, what is wrong and how to fix it. Secrets named by
// password_file and password_env are resolved while loading; no error message ever
// contains a secret.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.h"
#include "conf/duration.h"

namespace pgring::conf {

// One problem in a configuration. `line` and `column` are 1-based and point at the
// offending key or value; both are 0 when no position applies (an unreadable file).
struct ConfigError {
  std::string file;
  int line = 0;
  int column = 0;
  std::string message;
};

// Formats as "FILE:LINE:COLUMN: MESSAGE", the form compilers use and editors jump to.
// Without a position (line 0) it formats as "FILE: MESSAGE".
std::string FormatError(const ConfigError& error);

// The outcome of a load: `config` is set exactly when `errors` is empty.
struct LoadResult {
  std::shared_ptr<const Config> config;
  std::vector<ConfigError> errors;  // sorted by position

  bool ok() const { return config != nullptr && errors.empty(); }
};

// Reads and validates the file at `path`. Relative paths inside it (password_file,
// tls.cert_file, tls.key_file, tls.ca_file) are resolved against the file's directory and
// stored as absolute paths. Config::path is set to `path` as given.
LoadResult LoadFile(const std::string& path);

// Validates YAML text; `name` stands for the file in errors. Relative paths inside it
// are resolved against the current directory. Config::path is left empty.
LoadResult LoadString(std::string_view yaml, std::string_view name = "<string>");

// Returns the one-line summary `pgring --check-config` prints for a valid
// configuration: "configuration OK: 2 shards, 3 tables".
std::string FormatSummary(const Config& config);

}  // namespace pgring::conf
