// Analyzes SQL text with PostgreSQL's own parser (libpg_query) into Statement descriptions
// (statement.h) that the router combines with the table map.
//
//   absl::StatusOr<Analysis> a = Analyze("SELECT * FROM orders WHERE tenant_id = $1");
//   if (!a.ok()) SendError(a.status());  // 42601, with SyntaxErrorPosition()
//   for (size_t i = 0; i < a->statements.size(); ++i) Route(a->statements[i], a->ranges[i]);
//
// Analyze() is pure and thread-safe; results depend only on the text, so they are cached
// by text (analyzer_cache.h). No libpg_query type appears in this interface.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sharding/statement.h"

namespace pgring::sharding {

// A query string split into statements.
struct Analysis {
  std::vector<Statement> statements;
  // Byte range (start, length) of each statement in the analyzed text, without the
  // separating ';' and surrounding white space; leading comments stay in the range.
  std::vector<std::pair<size_t, size_t>> ranges;
};

// Status payload holding the 1-based character position of a syntax error (PostgreSQL's
// ErrorResponse field 'P'), as decimal text.
inline constexpr std::string_view kPositionPayload = "pgring.dev/position";

// Parses `sql`, which may hold several statements separated by ';', and describes each.
// A string with no statement (empty, blanks, comments, lone ';') gives one kEmpty
// statement. A syntax error gives InvalidArgumentError carrying PostgreSQL's message,
// SQLSTATE 42601 (protocol/sql_error.h) and the error position (kPositionPayload).
absl::StatusOr<Analysis> Analyze(std::string_view sql);

// Returns the 1-based character position of a syntax error returned by Analyze(), if any.
std::optional<int> SyntaxErrorPosition(const absl::Status& status);

}  // namespace pgring::sharding
