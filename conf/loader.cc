#include "conf/loader.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <system_error>

#include "conf/config_builder.h"

namespace pgring::conf {
namespace {

// A configuration is a few kilobytes; anything this large is the wrong file.
constexpr size_t kMaxConfigBytes = 4 * 1024 * 1024;

LoadResult Fail(ConfigError error) {
  LoadResult r;
  r.errors.push_back(std::move(error));
  return r;
}

int OneBased(int zero_based) { return zero_based < 0 ? 0 : zero_based + 1; }

LoadResult Load(std::string_view yaml, const std::string& name, const std::string& base_dir,
                const std::string& path) {
  std::vector<YAML::Node> docs;
  // yaml-cpp reports syntax errors by throwing; they stop at this wrapper.
  try {
    docs = YAML::LoadAll(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return Fail({name, OneBased(e.mark.line), OneBased(e.mark.column),
                 fmt::format("YAML syntax error: {}; check the indentation (spaces only, no "
                             "tabs), colons and quotes on this line and the one before",
                             e.msg)});
  } catch (const std::exception& e) {
    return Fail({name, 0, 0, fmt::format("cannot parse YAML: {}", e.what())});
  }
  if (docs.size() > 1) {
    const YAML::Mark m = docs[1].Mark();
    return Fail({name, OneBased(m.line), OneBased(m.column),
                 "more than one YAML document ('---'); keep the whole configuration in one "
                 "document"});
  }

  auto config = std::make_shared<Config>();
  config->path = path;
  LoadResult r;
  try {
    r.errors = BuildConfig(docs.empty() ? YAML::Node() : docs[0], name, base_dir, *config);
  } catch (const std::exception& e) {
    // Not expected: the builder checks node types before reading them.
    r.errors.push_back({name, 0, 0, fmt::format("cannot read configuration: {}", e.what())});
  }
  std::stable_sort(r.errors.begin(), r.errors.end(),
                   [](const ConfigError& a, const ConfigError& b) {
                     return std::pair(a.line, a.column) < std::pair(b.line, b.column);
                   });
  if (r.errors.empty()) r.config = std::move(config);
  return r;
}

// Returns the absolute directory of `path`, so that files named relative to the
// configuration stay valid if the process later changes its working directory.
std::string AbsoluteDirName(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path, ec);
  if (ec) p = path;
  return p.lexically_normal().parent_path().string();
}

}  // namespace

std::string FormatError(const ConfigError& error) {
  if (error.line <= 0) return fmt::format("{}: {}", error.file, error.message);
  return fmt::format("{}:{}:{}: {}", error.file, error.line, error.column, error.message);
}

LoadResult LoadFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Fail({path, 0, 0,
                 fmt::format("cannot read the configuration file: {}; check the path",
                             std::strerror(errno))});
  }
  std::string text;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Fail(
          {path, 0, 0, fmt::format("cannot read the configuration file: {}", std::strerror(err))});
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxConfigBytes) {
      ::close(fd);
      return Fail({path, 0, 0,
                   fmt::format("the file is larger than {} bytes; is it the right file?",
                               kMaxConfigBytes)});
    }
  }
  ::close(fd);
  return Load(text, path, AbsoluteDirName(path), path);
}

LoadResult LoadString(std::string_view yaml, std::string_view name) {
  return Load(yaml, std::string(name), "", "");
}

std::string FormatSummary(const Config& config) {
  return fmt::format("configuration OK: {} shards, {} tables", config.shards.size(),
                     config.tables.size());
}

}  // namespace pgring::conf
