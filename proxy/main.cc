// pgring: the PostgreSQL sharding proxy.
//   pgring --config FILE         run the proxy
//   pgring --check-config FILE   validate a configuration and exit
#include <cstdio>
#include <cstring>
#include <string>

#include "conf/loader.h"
#include "proxy/proxy.h"
#include "proxy/version.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace {

constexpr const char* kUsage = R"(pgring - PostgreSQL sharding proxy

Usage:
  pgring --config FILE          run the proxy with the configuration in FILE
  pgring --check-config FILE    validate FILE, print every problem found, and exit
                                (0 when valid, 1 otherwise)
  pgring --version              print the version
  pgring --help                 print this help

Signals: SIGTERM/SIGINT stop accepting clients, let running transactions finish and
exit; SIGHUP re-reads the configuration file (as RELOAD in the admin console).
See docs/configuration.md for the configuration reference.
)";

int PrintErrors(const pgring::conf::LoadResult& r) {
  for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", pgring::conf::FormatError(e).c_str());
  std::fprintf(stderr, "%zu error%s\n", r.errors.size(), r.errors.size() == 1 ? "" : "s");
  return 1;
}

void SetupLogging(const pgring::conf::Config& config) {
  auto logger = spdlog::stderr_logger_mt("pgring");
  spdlog::set_default_logger(logger);
  if (config.logging.format == pgring::conf::LogFormat::kJson) {
    spdlog::set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","thread":%t,"msg":"%v"})");
  } else {
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %z [%l] %v");
  }
  spdlog::set_level(spdlog::level::from_str(config.logging.level));
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--version") {
      std::printf("%s\n", std::string(pgring::proxy::kVersionString).c_str());
      return 0;
    }
    if ((arg == "--config" || arg == "-c" || arg == "--check-config") && i + 1 < argc) {
      check_only = arg == "--check-config";
      config_path = argv[++i];
      continue;
    }
    std::fprintf(stderr, "pgring: unknown or incomplete argument \"%s\"\n\n%s", arg.c_str(), kUsage);
    return 2;
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "pgring: --config FILE is required\n\n%s", kUsage);
    return 2;
  }

  auto loaded = pgring::conf::LoadFile(config_path);
  if (!loaded.ok()) return PrintErrors(loaded);
  if (check_only) {
    std::printf("configuration OK: %zu shards, %zu tables\n", loaded.config->shards.size(),
                loaded.config->tables.size());
    return 0;
  }
  SetupLogging(*loaded.config);
  signal(SIGPIPE, SIG_IGN);
  pgring::proxy::Proxy proxy(loaded.config);
  return proxy.Run();
}
