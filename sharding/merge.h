// Merges the results of one SELECT that ran on several shards into the result one database
// would have returned: concatenation, ORDER BY (k-way merge of the shards' sorted streams),
// LIMIT/OFFSET after the merge, count/sum/min/max/avg with or without GROUP BY, and helper
// columns that the client never sees. The user-facing description is docs/merge.md.
//
//   MergeSpec spec;
//   spec.order_by = {MergeOrderKey::Descending(1), MergeOrderKey::Ascending(0)};
//   spec.limit = 10;
//   Merger merger(std::move(spec), /*num_shards=*/3);
//   for each shard s:  merger.SetRowDescription(s, fields_of_s);      // once per shard
//   merger.WriteRowDescription(client_out);                          // what the client sees
//   for each DataRow of shard s, as it arrives:  merger.AddRow(s, body, client_out);
//   after shard s's CommandComplete:             merger.EndShard(s, client_out);
//   merger.Finish(client_out);   // remaining DataRows, then CommandComplete "SELECT n"
//
// Column indexes in a MergeSpec are 0-based positions in the shards' rows (helper columns
// included); the client sees the shards' columns minus `hidden_columns`, in order.
//
// Modes, chosen from the spec:
// - no ORDER BY, no aggregate, no GROUP BY: rows pass through as they arrive, byte for byte
//   (re-encoded only to drop hidden columns); nothing is buffered.
// - ORDER BY, input sorted (the shards ran the same ORDER BY): a streaming k-way merge.
//   A row is written as soon as every shard that has not ended has a row queued, so memory
//   holds at most the rows that arrived ahead of the slowest shard. Each shard's rows are
//   checked to be in order; out-of-order input (a shard that sorted text with a non-"C"
//   collation) is an error, never a silently wrong result.
// - ORDER BY, input unsorted: every row is buffered and sorted at Finish (stable; ties keep
//   shard, then arrival, order). With a LIMIT only offset + limit rows are kept.
// - aggregates and/or GROUP BY: one row per group, kept until Finish; with ORDER BY the
//   groups are sorted by their final values, else they come in order of first arrival.
// LIMIT and OFFSET always apply to the merged result. Once the limit is reached, Done() is
// true and further rows are discarded; the proxy may push `LIMIT offset + limit` (without
// OFFSET) down to the shards when there is no GROUP BY or aggregate.
//
// Errors are absl::Status values carrying a SQLSTATE (protocol/sql_error.h); after the
// first error every call returns it again. A Merger belongs to one client session (one
// thread); it borrows nothing: row bytes that must wait are copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "protocol/buffer.h"
#include "protocol/messages.h"
#include "sharding/value_compare.h"

namespace pgring::sharding {

// One ORDER BY key.
struct MergeOrderKey {
  int column = 0;  // 0-based column of the shards' rows
  bool descending = false;
  // NULLs before all other values (else after). PostgreSQL's default: NULLS LAST for ASC,
  // NULLS FIRST for DESC.
  bool nulls_first = false;

  static MergeOrderKey Ascending(int column) { return {column, false, false}; }
  static MergeOrderKey Descending(int column) { return {column, true, true}; }
};

enum class MergeFunction : uint8_t {
  kCount,  // int8 column of count(...) per shard: the sum of the counts
  kSum,    // sum(...) per shard (int2/int4/int8/numeric/float4/float8): their sum, NULL if
           // every shard's is NULL; the type stays the shards' type
  kMin,    // min(...) / max(...) per shard: the least / greatest non-NULL value
  kMax,
  kAvg,  // the column holds sum(x) per shard and `count_column` count(x): the result is
         // sum of sums / sum of counts, NULL if the total count is 0, typed as avg(x):
         // numeric for integer and numeric sums, float8 for float sums
};

// How the shards' values of `column` combine into one value per group.
struct MergeAggregate {
  int column = 0;
  MergeFunction function = MergeFunction::kCount;
  int count_column = -1;  // kAvg only: the column holding count(x) (usually hidden)
};

// Whether each shard returns its rows already in ORDER BY order.
enum class InputOrder : uint8_t { kSorted, kUnsorted };

// What the client asked for, in terms of the shards' columns.
struct MergeSpec {
  std::vector<MergeOrderKey> order_by;
  InputOrder input_order = InputOrder::kSorted;
  std::optional<int64_t> limit;   // >= 0
  std::optional<int64_t> offset;  // >= 0
  // Aggregated columns; each column at most once. Any aggregate, or a non-empty group_by,
  // makes the merge group rows: one output row per distinct group_by key (one row in all
  // without group_by, as PostgreSQL returns for an aggregate without GROUP BY).
  std::vector<MergeAggregate> aggregates;
  // Grouping-key columns. Columns that are neither keys nor aggregated take the value of
  // the group's first row.
  std::vector<int> group_by;
  // Columns the shards return only for the merge (count for avg, a sort key that is not
  // in the select list); dropped from the client's rows and RowDescription.
  std::vector<int> hidden_columns;
};

class Merger {
 public:
  // `num_shards` shards take part, numbered 0 .. num_shards - 1 in every call.
  Merger(MergeSpec spec, int num_shards);
  Merger(const Merger&) = delete;
  Merger& operator=(const Merger&) = delete;

  // Records shard `shard`'s RowDescription. The first one fixes the columns and checks the
  // spec against them (column indexes, types that can be compared or aggregated); every
  // other shard must agree on the column count and each column's name, type OID and format
  // code, else FailedPrecondition with SQLSTATE 42804. Call before the shard's rows.
  absl::Status SetRowDescription(int shard, std::span<const protocol::RowField> fields);

  // Returns the columns the client sees (after a successful SetRowDescription): the first
  // shard's fields without hidden columns, avg columns retyped as numeric or float8. The
  // names point into this Merger.
  std::vector<protocol::RowField> OutputFields() const;
  // Writes a RowDescription of OutputFields() to `out`.
  void WriteRowDescription(protocol::Buffer& out) const;

  // Adds one DataRow (the message body, after type and length) of `shard`. Rows that can be
  // sent already are appended to `out` as DataRow messages.
  absl::Status AddRow(int shard, std::span<const std::byte> data_row, protocol::Buffer& out);

  // Marks `shard` as finished (after its CommandComplete); may release queued rows to `out`.
  absl::Status EndShard(int shard, protocol::Buffer& out);

  // Ends every shard, writes the remaining DataRows and CommandComplete "SELECT n" to `out`.
  absl::Status Finish(protocol::Buffer& out);

  // True once LIMIT rows have been written: the remaining rows can only be discarded.
  bool Done() const { return spec_.limit.has_value() && rows_sent_ >= *spec_.limit; }
  // Rows written to the client so far.
  int64_t rows_sent() const { return rows_sent_; }

 private:
  // A column value inside a DataRow body: offset and length, length -1 for NULL.
  struct Cell {
    uint32_t offset = 0;
    int32_t length = -1;
  };
  // A row owned by the Merger (sort-all and grouping modes), in the shards' column layout.
  struct OwnedRow {
    std::vector<std::optional<std::string>> values;
    uint64_t seq = 0;  // arrival order, for stable sorting
  };
  struct AggState {
    int64_t count = 0;  // kCount: the total; kAvg: total of the count column
    int64_t int_sum = 0;
    double float_sum = 0;
    Numeric numeric_sum;
    bool has_value = false;  // a non-NULL input was seen
    std::string extreme;     // kMin / kMax: the best value so far
  };
  struct Group {
    OwnedRow row;  // the first row's values (aggregated columns are replaced at Finish)
    std::vector<AggState> aggs;
  };
  struct ShardState {
    bool described = false;
    bool ended = false;
    protocol::Buffer queue;  // sorted mode: queued rows as [int32 length][DataRow body]
    size_t queued = 0;
    std::vector<Cell> head;                             // cells of the oldest queued row
    std::vector<std::optional<std::string>> last_keys;  // order keys of the newest row
    bool has_last = false;
  };
  enum class Mode : uint8_t { kStream, kSortedMerge, kSortAll, kGroup };
  // Which type a column has in the merged result, and how to order it.
  struct ColumnInfo {
    uint32_t type_oid = 0;
    ValueFormat format = ValueFormat::kText;
    uint32_t output_type_oid = 0;
    std::optional<ValueComparator> output_comparator;  // for ORDER BY
    std::optional<ValueComparator> input_comparator;   // for GROUP BY keys, min and max
    bool hidden = false;
  };

  absl::Status Fail(absl::Status status);
  absl::Status CheckShard(int shard) const;
  absl::Status ValidateSpec(std::span<const protocol::RowField> fields);
  absl::Status SplitRow(int shard, std::span<const std::byte> body, std::vector<Cell>& cells);

  // Compares two rows by the ORDER BY keys; `a` and `b` hold one value per key.
  absl::StatusOr<int> CompareKeys(std::span<const std::optional<std::span<const std::byte>>> a,
                                  std::span<const std::optional<std::span<const std::byte>>> b);
  void HeadKeys(const ShardState& s, std::vector<std::optional<std::span<const std::byte>>>& k);
  void RowKeys(const OwnedRow& row, std::vector<std::optional<std::span<const std::byte>>>& k);
  // Sorts rows_ by the ORDER BY keys, stable by seq; keeps only the first `keep` if given.
  absl::Status SortRows(std::optional<size_t> keep);

  absl::Status AddSortedRow(int shard, std::span<const std::byte> body, protocol::Buffer& out);
  absl::Status DrainSorted(protocol::Buffer& out);
  void PopHead(ShardState& s);
  absl::Status AddGroupedRow(int shard, std::span<const std::byte> body);
  absl::Status FinalizeGroups();

  // Returns true if the next merged row goes to the client (counting it), false if OFFSET
  // skips it or LIMIT is reached.
  bool TakeSlot();
  // Writes a DataRow: the body as is, or re-encoded without hidden columns.
  void EmitBody(std::span<const std::byte> body, std::span<const Cell> cells,
                protocol::Buffer& out);
  void EmitOwned(const OwnedRow& row, protocol::Buffer& out);
  absl::Status EmitRows(protocol::Buffer& out);

  MergeSpec spec_;
  Mode mode_ = Mode::kStream;
  std::vector<ShardState> shards_;
  bool described_ = false;
  bool finished_ = false;
  absl::Status failed_;
  std::vector<protocol::RowField> fields_;  // first shard's fields; names point into names_
  std::vector<std::string> names_;
  std::vector<ColumnInfo> columns_;
  bool any_hidden_ = false;
  int64_t rows_sent_ = 0;
  int64_t rows_skipped_ = 0;
  uint64_t next_seq_ = 0;

  std::vector<OwnedRow> rows_;  // sort-all mode, and finalized groups
  absl::flat_hash_map<std::string, size_t> group_index_;
  std::vector<Group> groups_;

  // Scratch space reused across rows.
  std::vector<Cell> cells_;
  std::string key_;
  std::vector<std::optional<std::span<const std::byte>>> keys_a_, keys_b_;
};

}  // namespace pgring::sharding
