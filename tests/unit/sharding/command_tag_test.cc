#include "sharding/command_tag.h"

#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/sql_error.h"

namespace pgring::sharding {
namespace {

std::string Merged(std::vector<std::string_view> tags) {
  absl::StatusOr<std::string> r = MergeCommandTags(tags);
  INFO(r.status().message());
  REQUIRE(r.ok());
  return *r;
}

absl::Status MergeError(std::vector<std::string_view> tags) {
  absl::StatusOr<std::string> r = MergeCommandTags(tags);
  REQUIRE_FALSE(r.ok());
  return r.status();
}

TEST_CASE("ParseCommandTag splits command and count", "[command_tag]") {
  auto insert = ParseCommandTag("INSERT 0 17");
  REQUIRE(insert.has_value());
  CHECK(insert->command == "INSERT");
  CHECK(insert->rows == 17u);
  CHECK(insert->insert_oid == 0u);

  auto update = ParseCommandTag("UPDATE 18446744073709551615");
  REQUIRE(update.has_value());
  CHECK(update->rows == 18446744073709551615u);

  auto create = ParseCommandTag("CREATE TABLE");
  REQUIRE(create.has_value());
  CHECK(create->command == "CREATE TABLE");
  CHECK_FALSE(create->rows.has_value());

  for (std::string_view bad :
       {"INSERT 5", "INSERT", "UPDATE", "UPDATE x", "DELETE -1", "SELECT 1 2", "COPY ",
        "FETCH 18446744073709551616", "MOVE +3", "INSERT 0 1 "}) {
    INFO(bad);
    CHECK_FALSE(ParseCommandTag(bad).has_value());
  }
}

TEST_CASE("counting tags add up across shards", "[command_tag]") {
  CHECK(Merged({"INSERT 0 2", "INSERT 0 3"}) == "INSERT 0 5");
  CHECK(Merged({"UPDATE 0", "UPDATE 7", "UPDATE 1"}) == "UPDATE 8");
  CHECK(Merged({"DELETE 4", "DELETE 0"}) == "DELETE 4");
  CHECK(Merged({"SELECT 10", "SELECT 5"}) == "SELECT 15");
  CHECK(Merged({"COPY 100", "COPY 23"}) == "COPY 123");
  CHECK(Merged({"MERGE 1", "MERGE 2"}) == "MERGE 3");
  CHECK(Merged({"MOVE 3", "MOVE 4"}) == "MOVE 7");
  CHECK(Merged({"FETCH 2", "FETCH 0"}) == "FETCH 2");
  CHECK(Merged({"UPDATE 9"}) == "UPDATE 9");
  // An old server's INSERT object id is not a count: the merged id is 0.
  CHECK(Merged({"INSERT 16385 1", "INSERT 0 1"}) == "INSERT 0 2");
}

TEST_CASE("other tags must be equal on every shard", "[command_tag]") {
  CHECK(Merged({"CREATE TABLE", "CREATE TABLE", "CREATE TABLE"}) == "CREATE TABLE");
  CHECK(Merged({"SET", "SET"}) == "SET");
  CHECK(Merged({"BEGIN"}) == "BEGIN");

  absl::Status st = MergeError({"CREATE TABLE", "ALTER TABLE"});
  CHECK(st.code() == absl::StatusCode::kInternal);
  CHECK(protocol::SqlStateOf(st) == "XX000");
  CHECK(std::string(st.message()).find("ALTER TABLE") != std::string::npos);
}

TEST_CASE("different commands, malformed counts and overflow are errors", "[command_tag]") {
  CHECK(protocol::SqlStateOf(MergeError({"UPDATE 1", "DELETE 1"})) == "XX000");
  CHECK(protocol::SqlStateOf(MergeError({"UPDATE 1", "UPDATE"})) == "XX000");
  CHECK(protocol::SqlStateOf(MergeError({"SELECT 1", "CREATE TABLE"})) == "XX000");
  CHECK(protocol::SqlStateOf(MergeError({"CREATE TABLE", "SELECT 1"})) == "XX000");
  CHECK(protocol::SqlStateOf(MergeError({"UPDATE 18446744073709551615", "UPDATE 1"})) == "XX000");
  CHECK(MergeError({}).code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("CommandTagMerger keeps failing after an error", "[command_tag]") {
  CommandTagMerger m;
  REQUIRE(m.Add("DELETE 2").ok());
  CHECK_FALSE(m.Add("UPDATE 1").ok());
  CHECK_FALSE(m.Add("DELETE 1").ok());
  CHECK_FALSE(m.Result().ok());

  CommandTagMerger n;
  CHECK_FALSE(n.Result().ok());
  REQUIRE(n.Add("DELETE 2").ok());
  REQUIRE(n.Add("DELETE 3").ok());
  CHECK(*n.Result() == "DELETE 5");
}

}  // namespace
}  // namespace pgring::sharding
