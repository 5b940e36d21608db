// Rewrites the text of one statement for the shards when it runs on several of them: the
// part of a multi-row INSERT that belongs to one shard, and the query every shard runs for
// a scatter-gather SELECT together with the MergeSpec (merge.h) that turns the shards'
// results into one database's answer. The user-facing rules are docs/merge.md and
// docs/sharding.md ("Routing").
//
//   // A multi-row INSERT split by the router (RoutePlan::insert_rows):
//   for (size_t i = 0; i < plan.shards.size(); ++i) {
//     absl::StatusOr<InsertPart> part = InsertRowsPart(sql, range, stmt, plan.insert_rows[i]);
//     // shards[i] runs part->sql; with Bind, its $k takes the original $(part->params[k-1])
//   }
//   // A read over several shards (RoutePlan::needs_merge):
//   absl::StatusOr<ScatterQuery> q = PlanScatter(sql, range, stmt, plan.merge);
//   // every shard runs q->sql; when the first shard's RowDescription arrives:
//   absl::StatusOr<MergeSpec> spec = CompleteSpec(*q, fields, bind_or_null);
//   Merger merger(*std::move(spec), num_shards);
//
// `sql` is always the whole text given to Analyze() and `range` the statement's entry of
// Analysis::ranges: the analyzer's locations are byte offsets into that whole text. The
// results hold only the statement (leading comments kept, no trailing ';').
//
// Errors are protocol::SqlError statuses: 0A000 for a statement pgring cannot rewrite
// exactly (the message names the feature, the hint the fix), 2201W / 2201X for a negative
// LIMIT / OFFSET, 22P02 / 22003 / 22P03 for a malformed LIMIT or OFFSET Bind value, 08P01
// for a missing one, XX000 for arguments that do not belong together.
//
// Pure functions: no I/O, no state; thread-safe. Results own their data.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "protocol/messages.h"
#include "sharding/merge.h"
#include "sharding/router.h"
#include "sharding/statement.h"

namespace pgring::sharding {

// Returns the text of the INSERT `s` with only its VALUES rows `rows` (0-based, ascending,
// non-empty) kept; everything else (column list, ON CONFLICT, RETURNING, comments before
// it) unchanged. Kept rows are joined with ", ". $n parameters keep their numbers, so a
// part that drops every use of some $n is valid only for a simple query or when Parse
// declared every parameter's type; with Bind parameters use InsertRowsPart().
absl::StatusOr<std::string> InsertRowsSql(std::string_view sql, std::pair<size_t, size_t> range,
                                          const Statement& s, std::span<const size_t> rows);

// One shard's part of a multi-row INSERT.
struct InsertPart {
  std::string sql;
  // `sql` numbers its parameters $1..$k in the order of the original numbers it uses:
  // its $k is the original $(params[k - 1]). The proxy sends the Bind values (and the
  // Parse types, if any) of those parameters in that order. Empty without parameters.
  std::vector<int> params;
};

// As InsertRowsSql(), with the parameters renumbered so that every $k of the part is used.
absl::StatusOr<InsertPart> InsertRowsPart(std::string_view sql, std::pair<size_t, size_t> range,
                                          const Statement& s, std::span<const size_t> rows);

// What every shard runs for a read over several shards, and how the results merge.
struct ScatterQuery {
  std::string sql;         // the text every shard runs (this statement only, no ';')
  bool rewritten = false;  // `sql` differs from the statement's own text
  // Complete except what needs the RowDescription (columns after `SELECT *`) or the Bind
  // values (LIMIT $n / OFFSET $n): CompleteSpec() fills those in.
  MergeSpec spec;

  // What CompleteSpec() still has to resolve; opaque to callers.
  struct Pending {
    // An ORDER BY key placed by its select-list entry after a `*` (the entry's column
    // depends on how many columns the * expands to), or by an output column name
    // (`SELECT * ... ORDER BY name`): spec.order_by[index].column is set from it.
    struct Key {
      size_t index = 0;
      int item = 0;      // 1-based select-list entry, 0 = by name
      std::string name;  // output column name
    };
    std::vector<Key> order_keys;
    // GROUP BY names after `SELECT *` that must be output columns.
    std::vector<std::string> group_names;
    // Group by every column the client sees (SELECT DISTINCT, or GROUP BY without
    // aggregates) when `*` hides how many there are.
    bool group_all = false;
    int hidden_prefix = 0;        // hidden columns placed before the select list
    int items = 0;                // select-list entries
    std::vector<int> star_items;  // 1-based entries that are `*` or `t.*`
    int limit_param = 0;          // spec.limit is the Bind value of $limit_param (0 = none)
    int offset_param = 0;         // spec.offset is the Bind value of $offset_param
  };
  Pending pending;
};

// Plans a SELECT whose RoutePlan says needs_merge, from its analysis `s` and the plan's
// merge facts:
// - avg(x) [FILTER (...)] runs as sum(x) [FILTER (...)] under avg's output name (the
//   user's alias, else "avg"), with count(x) [FILTER (...)] in a hidden column; hidden
//   columns come first, before the select list, and positional GROUP BY / ORDER BY
//   numbers are shifted past them. The merger drops them.
// - count/sum/min/max become MergeAggregates; with aggregates, GROUP BY groups by the
//   select list's plain columns, and every GROUP BY item must be one of them; SELECT
//   DISTINCT (and GROUP BY without aggregates) groups by every output column.
// - ORDER BY keys become MergeOrderKeys; with aggregates, GROUP BY or DISTINCT the shards'
//   order is not the final one (InputOrder::kUnsorted).
// - LIMIT / OFFSET apply to the merged rows: the shards never skip rows (OFFSET n becomes
//   OFFSET 0) and run no LIMIT with aggregates, GROUP BY or DISTINCT; otherwise they run
//   LIMIT offset + limit. A statement that needs none of this keeps its own text.
absl::StatusOr<ScatterQuery> PlanScatter(std::string_view sql, std::pair<size_t, size_t> range,
                                         const Statement& s, const MergeFacts& facts);

// Returns the complete spec for `q` once the first shard's RowDescription `fields` is
// known, with the Bind values for LIMIT $n / OFFSET $n (`params` may be nullptr for a
// simple query). Also refuses avg() of a real column (0A000: sum(real) is not exact; write
// avg(x::float8)).
absl::StatusOr<MergeSpec> CompleteSpec(const ScatterQuery& q,
                                       std::span<const protocol::RowField> fields,
                                       const protocol::BindParams* params);

}  // namespace pgring::sharding
