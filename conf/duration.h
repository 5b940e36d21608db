// Parsing and printing of configuration durations: "250ms", "5s", "10m", "1h" or "0".
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "conf/config.h"

namespace pgring::conf {

// The longest duration a configuration may hold (365 days); longer values are rejected
// so that adding a duration to a clock can never overflow.
inline constexpr Duration kMaxDuration = std::chrono::hours(24 * 365);

// Parses a non-negative integer followed by one unit (ms, s, m or h), with no spaces,
// or a bare "0". Returns InvalidArgument with a message that says what is accepted, or
// OutOfRange above kMaxDuration.
absl::StatusOr<Duration> ParseDuration(std::string_view text);

// Formats a duration in the largest unit that represents it exactly: "0", "250ms",
// "5s", "10m", "1h". ParseDuration(FormatDuration(d)) == d.
std::string FormatDuration(Duration d);

}  // namespace pgring::conf
