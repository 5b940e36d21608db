#include "sharding/command_tag.h"

#include <array>
#include <charconv>

#include "protocol/sql_error.h"

namespace pgring::sharding {
namespace {

constexpr std::array<std::string_view, 8> kCountingCommands = {
    "INSERT", "UPDATE", "DELETE", "SELECT", "COPY", "MERGE", "MOVE", "FETCH"};

template <typename T>
std::optional<T> ParseUnsigned(std::string_view s) {
  T v = 0;
  if (s.empty() || s[0] < '0' || s[0] > '9') return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

absl::Status Mismatch(const std::string& message) {
  return protocol::SqlError(absl::StatusCode::kInternal, "XX000", message);
}

}  // namespace

std::optional<CommandTag> ParseCommandTag(std::string_view tag) {
  CommandTag parsed;
  size_t space = tag.find(' ');
  std::string_view first = tag.substr(0, space);
  bool counting = false;
  for (std::string_view c : kCountingCommands) counting = counting || first == c;
  if (!counting) {
    parsed.command = tag;
    return parsed;
  }
  if (space == std::string_view::npos) return std::nullopt;
  parsed.command = first;
  std::string_view rest = tag.substr(space + 1);
  if (first == "INSERT") {
    size_t second = rest.find(' ');
    if (second == std::string_view::npos) return std::nullopt;
    auto oid = ParseUnsigned<uint32_t>(rest.substr(0, second));
    if (!oid) return std::nullopt;
    parsed.insert_oid = *oid;
    rest = rest.substr(second + 1);
  }
  parsed.rows = ParseUnsigned<uint64_t>(rest);
  if (!parsed.rows) return std::nullopt;
  return parsed;
}

absl::Status CommandTagMerger::Add(std::string_view tag) {
  if (!status_.ok()) return status_;
  std::optional<CommandTag> parsed = ParseCommandTag(tag);
  if (!parsed) {
    status_ = Mismatch("a shard sent a malformed command tag \"" + std::string(tag) + "\"");
    return status_;
  }
  if (!any_) {
    any_ = true;
    counting_ = parsed->rows.has_value();
    command_ = std::string(parsed->command);
    rows_ = parsed->rows.value_or(0);
    return absl::OkStatus();
  }
  if (parsed->rows.has_value() != counting_ || parsed->command != command_) {
    status_ = Mismatch("shards answered one statement with different commands: \"" + command_ +
                       "\" and \"" + std::string(parsed->command) + "\"");
    return status_;
  }
  if (counting_ && __builtin_add_overflow(rows_, *parsed->rows, &rows_)) {
    status_ = Mismatch("the row counts of the shards overflow");
    return status_;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> CommandTagMerger::Result() const {
  if (!status_.ok()) return status_;
  if (!any_) {
    return protocol::SqlError(absl::StatusCode::kFailedPrecondition, "XX000",
                              "no command tag to merge");
  }
  if (!counting_) return command_;
  if (command_ == "INSERT") return "INSERT 0 " + std::to_string(rows_);
  return command_ + " " + std::to_string(rows_);
}

absl::StatusOr<std::string> MergeCommandTags(std::span<const std::string_view> tags) {
  CommandTagMerger merger;
  for (std::string_view tag : tags) {
    if (auto st = merger.Add(tag); !st.ok()) return st;
  }
  return merger.Result();
}

}  // namespace pgring::sharding
