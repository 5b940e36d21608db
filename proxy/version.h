// pgring's version, and the server_version it reports to clients.
#pragma once

#include <string_view>

namespace pgring::proxy {

inline constexpr std::string_view kVersion = "0.1.0";
inline constexpr std::string_view kVersionString = "pgring 0.1.0";
// Clients parse server_version for feature checks; pgring speaks for PostgreSQL 15 shards.
inline constexpr std::string_view kServerVersion = "15.0 (pgring 0.1.0)";

}  // namespace pgring::proxy
