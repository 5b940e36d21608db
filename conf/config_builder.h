// Turns a parsed YAML document into a Config, checking the schema and every validation
// rule. Internal to conf/ (callers use loader.h): this is the only file that reads
// yaml-cpp nodes, so yaml-cpp types never reach the rest of pgring.
#pragma once

#include <string>
#include <vector>

#include "conf/config.h"
#include "conf/loader.h"

namespace YAML {
class Node;
}  // namespace YAML

namespace pgring::conf {

// Fills `config` from the document `root` and returns every problem found, in no
// particular order; `config` is only meaningful when none is returned. `file` names the
// source in errors; relative file paths in the document are resolved against `base_dir`
// (left as written when it is empty). Reads password files and environment variables.
std::vector<ConfigError> BuildConfig(const YAML::Node& root, const std::string& file,
                                     const std::string& base_dir, Config& config);

}  // namespace pgring::conf
