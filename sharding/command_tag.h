// Combines the CommandComplete tags of one statement that ran on several shards into the
// tag one database would have sent.
//
//   CommandTagMerger tags;
//   for each shard: tags.Add(tag_of_shard);          // "UPDATE 3", "UPDATE 0", ...
//   absl::StatusOr<std::string> tag = tags.Result();  // "UPDATE 3"
//
// Tags that count rows ("INSERT 0 n", "UPDATE n", "DELETE n", "SELECT n", "COPY n",
// "MERGE n", "MOVE n", "FETCH n") add up their counts; INSERT's object id is always 0 in
// the result (PostgreSQL 12 and later always send 0). Every other tag ("CREATE TABLE",
// "SET", "BEGIN"...) must be the same on all shards and is returned once. Different
// commands, or a malformed count, are an Internal error with SQLSTATE XX000: the proxy sent
// one statement, so differing answers mean the shards are out of step.
//
// Pure and cheap; a CommandTagMerger belongs to one session.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pgring::sharding {

// A CommandComplete tag split into its command and, for counting commands, the row count.
// `command` borrows from the parsed tag.
struct CommandTag {
  std::string_view command;      // "INSERT", "UPDATE", "CREATE TABLE", ...
  std::optional<uint64_t> rows;  // set for the counting commands listed above
  uint32_t insert_oid = 0;       // INSERT only: the object id field
};

// Parses `tag`. Counting commands must carry their numbers (INSERT: oid and count), else
// nullopt; any other text is a non-counting command (rows unset).
std::optional<CommandTag> ParseCommandTag(std::string_view tag);

class CommandTagMerger {
 public:
  // Adds one shard's tag. Fails if it is malformed or differs in command from earlier ones;
  // the merger then keeps failing.
  absl::Status Add(std::string_view tag);

  // Returns the combined tag; FailedPrecondition if no tag was added.
  absl::StatusOr<std::string> Result() const;

 private:
  absl::Status status_;
  bool any_ = false;
  bool counting_ = false;
  std::string command_;  // the whole tag for non-counting commands
  uint64_t rows_ = 0;
};

// Returns the combination of `tags` (see CommandTagMerger).
absl::StatusOr<std::string> MergeCommandTags(std::span<const std::string_view> tags);

}  // namespace pgring::sharding
