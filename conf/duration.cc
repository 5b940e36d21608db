#include "conf/duration.h"

#include <fmt/format.h>

#include <cstdint>

#include "absl/status/status.h"

namespace pgring::conf {
namespace {

constexpr std::string_view kDurationHelp =
    "write an integer and a unit, one of ms, s, m, h (for example 250ms, 5s, 10m, 1h), or 0";

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

absl::Status TooLong(std::string_view text) {
  return absl::OutOfRangeError(
      fmt::format("'{}' is longer than the maximum of {}", text, FormatDuration(kMaxDuration)));
}

}  // namespace

absl::StatusOr<Duration> ParseDuration(std::string_view text) {
  if (!text.empty() && text[0] == '-') {
    return absl::InvalidArgumentError(
        fmt::format("'{}' is negative; durations are 0 or more ({})", text, kDurationHelp));
  }
  size_t digits = 0;
  while (digits < text.size() && IsDigit(text[digits])) ++digits;
  if (digits == 0) {
    return absl::InvalidArgumentError(
        fmt::format("'{}' is not a duration; {}", text, kDurationHelp));
  }
  // 18 digits always fit in int64_t; anything longer is far above the maximum anyway.
  if (digits > 18) return TooLong(text);
  int64_t count = 0;
  for (size_t i = 0; i < digits; ++i) count = count * 10 + (text[i] - '0');
  const std::string_view unit = text.substr(digits);
  int64_t unit_ms = 0;
  if (unit == "ms") {
    unit_ms = 1;
  } else if (unit == "s") {
    unit_ms = 1000;
  } else if (unit == "m") {
    unit_ms = 60 * 1000;
  } else if (unit == "h") {
    unit_ms = 60 * 60 * 1000;
  } else if (unit.empty() && count == 0) {
    return Duration{0};
  } else if (unit.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("'{0}' has no unit; write {0}ms, {0}s, {0}m or {0}h", text));
  } else {
    const size_t start = unit.find_first_not_of(" \t");
    const std::string_view word = start == std::string_view::npos ? "" : unit.substr(start);
    if (start != 0 && (word == "ms" || word == "s" || word == "m" || word == "h")) {
      return absl::InvalidArgumentError(fmt::format("'{}' has a space before the unit; write {}{}",
                                                    text, text.substr(0, digits), word));
    }
    return absl::InvalidArgumentError(
        fmt::format("'{}' has an unknown unit '{}'; {}", text, word, kDurationHelp));
  }
  if (count > kMaxDuration.count() / unit_ms) return TooLong(text);
  return Duration{count * unit_ms};
}

std::string FormatDuration(Duration d) {
  constexpr int64_t kSecond = 1000;
  constexpr int64_t kMinute = 60 * kSecond;
  constexpr int64_t kHour = 60 * kMinute;
  const int64_t ms = d.count();
  if (ms == 0) return "0";
  if (ms % kHour == 0) return fmt::format("{}h", ms / kHour);
  if (ms % kMinute == 0) return fmt::format("{}m", ms / kMinute);
  if (ms % kSecond == 0) return fmt::format("{}s", ms / kSecond);
  return fmt::format("{}ms", ms);
}

}  // namespace pgring::conf
