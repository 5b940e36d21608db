#include "sharding/merge.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "protocol/sql_error.h"

namespace pgring::sharding {
namespace {

using Bytes = std::span<const std::byte>;
using protocol::SqlError;

absl::Status Internal(const std::string& message) {
  return SqlError(absl::StatusCode::kInternal, "XX000", message);
}

absl::Status Unsupported(const std::string& message) {
  return SqlError(absl::StatusCode::kUnimplemented, "0A000", message);
}

absl::Status ProtocolViolation(const std::string& message) {
  return SqlError(absl::StatusCode::kInternal, "08P01", message);
}

absl::Status OutOfRange(const std::string& type) {
  return SqlError(absl::StatusCode::kOutOfRange, "22003", type + " out of range");
}

uint32_t ReadUint32(const std::byte* p) {
  return (uint32_t{static_cast<uint8_t>(p[0])} << 24) |
         (uint32_t{static_cast<uint8_t>(p[1])} << 16) |
         (uint32_t{static_cast<uint8_t>(p[2])} << 8) | uint32_t{static_cast<uint8_t>(p[3])};
}

void PutUint32(std::byte* p, uint32_t v) {
  p[0] = static_cast<std::byte>(v >> 24);
  p[1] = static_cast<std::byte>(v >> 16);
  p[2] = static_cast<std::byte>(v >> 8);
  p[3] = static_cast<std::byte>(v);
}

void AppendUint32(protocol::Buffer& out, uint32_t v) {
  std::byte b[4];
  PutUint32(b, v);
  out.Append(std::span<const std::byte>(b, 4));
}

void AppendUint16(protocol::Buffer& out, uint16_t v) {
  std::byte b[2] = {static_cast<std::byte>(v >> 8), static_cast<std::byte>(v)};
  out.Append(std::span<const std::byte>(b, 2));
}

Bytes AsBytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

bool IsInteger(uint32_t t) {
  return t == pg_type::kInt2 || t == pg_type::kInt4 || t == pg_type::kInt8;
}
bool IsFloat(uint32_t t) { return t == pg_type::kFloat4 || t == pg_type::kFloat8; }

// Adds two float sums as float4pl/float8pl do, including their overflow check.
std::optional<double> AddFloats(uint32_t type, double a, double b) {
  double r = type == pg_type::kFloat4
                 ? static_cast<double>(static_cast<float>(a) + static_cast<float>(b))
                 : a + b;
  bool overflow = type == pg_type::kFloat4 ? std::isinf(static_cast<float>(r)) : std::isinf(r);
  if (overflow && !std::isinf(a) && !std::isinf(b)) return std::nullopt;
  return r;
}

const char* FunctionName(MergeFunction f) {
  switch (f) {
    case MergeFunction::kCount:
      return "count";
    case MergeFunction::kSum:
      return "sum";
    case MergeFunction::kMin:
      return "min";
    case MergeFunction::kMax:
      return "max";
    case MergeFunction::kAvg:
      return "avg";
  }
  return "?";
}

}  // namespace

Merger::Merger(MergeSpec spec, int num_shards) : spec_(std::move(spec)) {
  shards_.resize(static_cast<size_t>(std::max(num_shards, 0)));
  if (!spec_.aggregates.empty() || !spec_.group_by.empty()) {
    mode_ = Mode::kGroup;
  } else if (!spec_.order_by.empty()) {
    mode_ = spec_.input_order == InputOrder::kSorted ? Mode::kSortedMerge : Mode::kSortAll;
  } else {
    mode_ = Mode::kStream;
  }
  if (num_shards <= 0) failed_ = Internal("a merge needs at least one shard");
  if ((spec_.limit && *spec_.limit < 0) || (spec_.offset && *spec_.offset < 0)) {
    failed_ = Internal("LIMIT and OFFSET of a merge must not be negative");
  }
}

absl::Status Merger::Fail(absl::Status status) {
  if (failed_.ok()) failed_ = status;
  return status;
}

absl::Status Merger::CheckShard(int shard) const {
  if (shard < 0 || static_cast<size_t>(shard) >= shards_.size()) {
    return Internal("merge: shard index " + std::to_string(shard) + " out of range");
  }
  return absl::OkStatus();
}

// ---- RowDescription -------------------------------------------------------------------------

absl::Status Merger::SetRowDescription(int shard, std::span<const protocol::RowField> fields) {
  if (!failed_.ok()) return failed_;
  if (auto st = CheckShard(shard); !st.ok()) return Fail(st);
  ShardState& s = shards_[static_cast<size_t>(shard)];
  if (!described_) {
    if (auto st = ValidateSpec(fields); !st.ok()) return Fail(st);
    described_ = true;
    s.described = true;
    return absl::OkStatus();
  }
  auto mismatch = [&](const std::string& what) {
    return Fail(SqlError(absl::StatusCode::kFailedPrecondition, "42804",
                         "shards disagree on the result columns: " + what,
                         "make the table definitions equal on every shard"));
  };
  if (fields.size() != fields_.size()) {
    return mismatch("one returns " + std::to_string(fields_.size()) + " columns, another " +
                    std::to_string(fields.size()));
  }
  for (size_t i = 0; i < fields.size(); ++i) {
    const protocol::RowField& a = fields_[i];
    const protocol::RowField& b = fields[i];
    std::string col = "column " + std::to_string(i + 1) + " (\"" + names_[i] + "\")";
    if (a.name != b.name) {
      return mismatch(col + " is named \"" + std::string(b.name) + "\" on another shard");
    }
    if (a.type_oid != b.type_oid) {
      return mismatch(col + " is " + TypeName(a.type_oid) + " on one shard and " +
                      TypeName(b.type_oid) + " on another");
    }
    if (a.format != b.format) return mismatch(col + " comes in different formats");
  }
  s.described = true;
  return absl::OkStatus();
}

absl::Status Merger::ValidateSpec(std::span<const protocol::RowField> fields) {
  const size_t n = fields.size();
  names_.reserve(n);
  for (const protocol::RowField& f : fields) names_.emplace_back(f.name);
  fields_.assign(fields.begin(), fields.end());
  for (size_t i = 0; i < n; ++i) fields_[i].name = names_[i];  // names_ is never resized
  columns_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    auto format = ValueFormatFromCode(fields[i].format);
    if (!format) {
      return ProtocolViolation("column " + std::to_string(i + 1) + " has format code " +
                               std::to_string(fields[i].format));
    }
    columns_[i].type_oid = columns_[i].output_type_oid = fields[i].type_oid;
    columns_[i].format = *format;
  }
  auto in_range = [&](int column, const char* what) -> absl::Status {
    if (column < 0 || static_cast<size_t>(column) >= n) {
      return Internal(std::string("merge: ") + what + " column " + std::to_string(column) +
                      " out of range (the shards return " + std::to_string(n) + " columns)");
    }
    return absl::OkStatus();
  };
  auto column_name = [&](int column) { return "\"" + names_[static_cast<size_t>(column)] + "\""; };

  for (int c : spec_.hidden_columns) {
    if (auto st = in_range(c, "hidden"); !st.ok()) return st;
    if (columns_[static_cast<size_t>(c)].hidden) return Internal("merge: column hidden twice");
    columns_[static_cast<size_t>(c)].hidden = true;
    any_hidden_ = true;
  }

  std::vector<bool> aggregated(n, false);
  for (const MergeAggregate& agg : spec_.aggregates) {
    if (auto st = in_range(agg.column, "aggregate"); !st.ok()) return st;
    auto c = static_cast<size_t>(agg.column);
    if (aggregated[c]) return Internal("merge: column aggregated twice");
    aggregated[c] = true;
    ColumnInfo& col = columns_[c];
    const uint32_t t = col.type_oid;
    auto cannot = [&](const std::string& why) {
      return Unsupported(std::string("pgring cannot merge ") + FunctionName(agg.function) +
                         "() results of type " + TypeName(t) + " (column " +
                         column_name(agg.column) + ") across shards" + why);
    };
    switch (agg.function) {
      case MergeFunction::kCount:
        if (t != pg_type::kInt8) return cannot(": count() returns bigint");
        break;
      case MergeFunction::kSum:
        if (!IsInteger(t) && !IsFloat(t) && t != pg_type::kNumeric) return cannot("");
        break;
      case MergeFunction::kMin:
      case MergeFunction::kMax: {
        auto cmp = ValueComparator::For(t, col.format);
        if (!cmp.ok()) return cmp.status();
        col.input_comparator = *cmp;
        break;
      }
      case MergeFunction::kAvg: {
        if (!IsInteger(t) && !IsFloat(t) && t != pg_type::kNumeric) return cannot("");
        if (auto st = in_range(agg.count_column, "avg count"); !st.ok()) return st;
        if (agg.count_column == agg.column ||
            !IsInteger(columns_[static_cast<size_t>(agg.count_column)].type_oid)) {
          return Internal("merge: the count column of avg " + column_name(agg.column) +
                          " must be another integer column");
        }
        col.output_type_oid = IsFloat(t) ? pg_type::kFloat8 : pg_type::kNumeric;
        break;
      }
    }
  }

  std::vector<bool> grouped(n, false);
  for (int c : spec_.group_by) {
    if (auto st = in_range(c, "GROUP BY"); !st.ok()) return st;
    auto i = static_cast<size_t>(c);
    if (grouped[i] || aggregated[i]) {
      return Internal("merge: GROUP BY column " + column_name(c) + " is repeated or aggregated");
    }
    grouped[i] = true;
    auto cmp = ValueComparator::For(columns_[i].type_oid, columns_[i].format);
    if (!cmp.ok()) return cmp.status();
    columns_[i].input_comparator = *cmp;
  }

  for (const MergeOrderKey& key : spec_.order_by) {
    if (auto st = in_range(key.column, "ORDER BY"); !st.ok()) return st;
    ColumnInfo& col = columns_[static_cast<size_t>(key.column)];
    auto cmp = ValueComparator::For(col.output_type_oid, col.format);
    if (!cmp.ok()) return cmp.status();
    col.output_comparator = *cmp;
  }
  for (ShardState& s : shards_) s.last_keys.resize(spec_.order_by.size());
  return absl::OkStatus();
}

std::vector<protocol::RowField> Merger::OutputFields() const {
  std::vector<protocol::RowField> out;
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (columns_[i].hidden) continue;
    protocol::RowField f = fields_[i];
    if (columns_[i].output_type_oid != columns_[i].type_oid) {
      // avg(): a computed column of numeric or float8, as PostgreSQL describes it.
      f.table_oid = 0;
      f.column = 0;
      f.type_oid = columns_[i].output_type_oid;
      f.type_size = f.type_oid == pg_type::kFloat8 ? 8 : -1;
      f.type_modifier = -1;
    }
    out.push_back(f);
  }
  return out;
}

void Merger::WriteRowDescription(protocol::Buffer& out) const {
  std::vector<protocol::RowField> fields = OutputFields();
  protocol::WriteRowDescription(out, fields);
}

// ---- rows -----------------------------------------------------------------------------------

absl::Status Merger::SplitRow(int shard, Bytes body, std::vector<Cell>& cells) {
  cells.clear();
  auto bad = [&](const char* what) {
    return ProtocolViolation("shard " + std::to_string(shard) + " sent a malformed DataRow (" +
                             what + ")");
  };
  if (body.size() < 2) return bad("no column count");
  size_t count =
      (static_cast<size_t>(static_cast<uint8_t>(body[0])) << 8) | static_cast<uint8_t>(body[1]);
  if (count != columns_.size()) {
    return bad("column count differs from its RowDescription");
  }
  size_t pos = 2;
  for (size_t i = 0; i < count; ++i) {
    if (body.size() - pos < 4) return bad("truncated");
    auto length = static_cast<int32_t>(ReadUint32(body.data() + pos));
    pos += 4;
    Cell cell;
    cell.offset = static_cast<uint32_t>(pos);
    cell.length = length;
    if (length < -1) return bad("negative value length");
    if (length >= 0) {
      if (body.size() - pos < static_cast<size_t>(length)) return bad("truncated");
      pos += static_cast<size_t>(length);
    }
    cells.push_back(cell);
  }
  if (pos != body.size()) return bad("trailing bytes");
  return absl::OkStatus();
}

absl::Status Merger::AddRow(int shard, Bytes data_row, protocol::Buffer& out) {
  if (!failed_.ok()) return failed_;
  if (auto st = CheckShard(shard); !st.ok()) return Fail(st);
  ShardState& s = shards_[static_cast<size_t>(shard)];
  if (!s.described) {
    return Fail(Internal("merge: shard " + std::to_string(shard) +
                         " sent a row before its RowDescription"));
  }
  if (s.ended) return Fail(Internal("merge: shard " + std::to_string(shard) + " has ended"));
  if (finished_) return Fail(Internal("merge: row after Finish"));
  switch (mode_) {
    case Mode::kStream: {
      if (Done()) return absl::OkStatus();
      if (auto st = SplitRow(shard, data_row, cells_); !st.ok()) return Fail(st);
      if (TakeSlot()) EmitBody(data_row, cells_, out);
      return absl::OkStatus();
    }
    case Mode::kSortedMerge:
      if (auto st = AddSortedRow(shard, data_row, out); !st.ok()) return Fail(st);
      return absl::OkStatus();
    case Mode::kSortAll: {
      if (Done()) return absl::OkStatus();
      if (auto st = SplitRow(shard, data_row, cells_); !st.ok()) return Fail(st);
      OwnedRow row;
      row.seq = next_seq_++;
      row.values.reserve(cells_.size());
      for (const Cell& c : cells_) {
        if (c.length < 0) {
          row.values.emplace_back(std::nullopt);
        } else {
          row.values.emplace_back(std::in_place,
                                  reinterpret_cast<const char*>(data_row.data()) + c.offset,
                                  static_cast<size_t>(c.length));
        }
      }
      rows_.push_back(std::move(row));
      // With a LIMIT only the first offset + limit rows can reach the client: prune the
      // buffer to them whenever it has doubled.
      constexpr int64_t kMaxPrunedKeep = int64_t{1} << 40;
      int64_t offset = spec_.offset.value_or(0);
      if (spec_.limit && *spec_.limit < kMaxPrunedKeep && offset < kMaxPrunedKeep) {
        auto keep = static_cast<size_t>(*spec_.limit + offset);
        if (rows_.size() >= 2 * keep + 1024) {
          if (auto st = SortRows(keep); !st.ok()) return Fail(st);
        }
      }
      return absl::OkStatus();
    }
    case Mode::kGroup:
      if (auto st = AddGroupedRow(shard, data_row); !st.ok()) return Fail(st);
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

absl::Status Merger::EndShard(int shard, protocol::Buffer& out) {
  if (!failed_.ok()) return failed_;
  if (auto st = CheckShard(shard); !st.ok()) return Fail(st);
  shards_[static_cast<size_t>(shard)].ended = true;
  if (mode_ == Mode::kSortedMerge) {
    if (auto st = DrainSorted(out); !st.ok()) return Fail(st);
  }
  return absl::OkStatus();
}

absl::Status Merger::Finish(protocol::Buffer& out) {
  if (!failed_.ok()) return failed_;
  if (finished_) return Fail(Internal("merge: Finish called twice"));
  for (ShardState& s : shards_) s.ended = true;
  switch (mode_) {
    case Mode::kStream:
      break;
    case Mode::kSortedMerge:
      if (auto st = DrainSorted(out); !st.ok()) return Fail(st);
      break;
    case Mode::kSortAll:
      if (auto st = SortRows(std::nullopt); !st.ok()) return Fail(st);
      if (auto st = EmitRows(out); !st.ok()) return Fail(st);
      break;
    case Mode::kGroup:
      if (!described_) {
        if (!spec_.group_by.empty()) break;  // no rows at all: no groups
        return Fail(Internal("merge: no shard described the aggregate's columns"));
      }
      if (auto st = FinalizeGroups(); !st.ok()) return Fail(st);
      if (!spec_.order_by.empty()) {
        if (auto st = SortRows(std::nullopt); !st.ok()) return Fail(st);
      }
      if (auto st = EmitRows(out); !st.ok()) return Fail(st);
      break;
  }
  finished_ = true;
  protocol::WriteCommandComplete(out, "SELECT " + std::to_string(rows_sent_));
  return absl::OkStatus();
}

// ---- output ---------------------------------------------------------------------------------

bool Merger::TakeSlot() {
  if (Done()) return false;
  if (rows_skipped_ < spec_.offset.value_or(0)) {
    ++rows_skipped_;
    return false;
  }
  ++rows_sent_;
  return true;
}

void Merger::EmitBody(Bytes body, std::span<const Cell> cells, protocol::Buffer& out) {
  out.Append(std::string_view("D", 1));
  if (!any_hidden_) {
    AppendUint32(out, static_cast<uint32_t>(body.size() + 4));
    out.Append(body);
    return;
  }
  size_t length = 4 + 2;
  uint16_t count = 0;
  for (size_t i = 0; i < cells.size(); ++i) {
    if (columns_[i].hidden) continue;
    ++count;
    length += 4 + static_cast<size_t>(std::max(cells[i].length, 0));
  }
  AppendUint32(out, static_cast<uint32_t>(length));
  AppendUint16(out, count);
  for (size_t i = 0; i < cells.size(); ++i) {
    if (columns_[i].hidden) continue;
    AppendUint32(out, static_cast<uint32_t>(cells[i].length));
    if (cells[i].length > 0) {
      out.Append(body.subspan(cells[i].offset, static_cast<size_t>(cells[i].length)));
    }
  }
}

void Merger::EmitOwned(const OwnedRow& row, protocol::Buffer& out) {
  size_t length = 4 + 2;
  uint16_t count = 0;
  for (size_t i = 0; i < row.values.size(); ++i) {
    if (columns_[i].hidden) continue;
    ++count;
    length += 4 + (row.values[i] ? row.values[i]->size() : 0);
  }
  out.Append(std::string_view("D", 1));
  AppendUint32(out, static_cast<uint32_t>(length));
  AppendUint16(out, count);
  for (size_t i = 0; i < row.values.size(); ++i) {
    if (columns_[i].hidden) continue;
    if (!row.values[i]) {
      AppendUint32(out, 0xFFFFFFFFu);
      continue;
    }
    AppendUint32(out, static_cast<uint32_t>(row.values[i]->size()));
    out.Append(*row.values[i]);
  }
}

absl::Status Merger::EmitRows(protocol::Buffer& out) {
  for (const OwnedRow& row : rows_) {
    if (Done()) break;
    if (TakeSlot()) EmitOwned(row, out);
  }
  rows_.clear();
  return absl::OkStatus();
}

// ---- ordering -------------------------------------------------------------------------------

absl::StatusOr<int> Merger::CompareKeys(std::span<const std::optional<Bytes>> a,
                                        std::span<const std::optional<Bytes>> b) {
  for (size_t k = 0; k < spec_.order_by.size(); ++k) {
    const MergeOrderKey& key = spec_.order_by[k];
    const std::optional<Bytes>& x = a[k];
    const std::optional<Bytes>& y = b[k];
    if (!x || !y) {
      if (!x && !y) continue;
      // NULLS FIRST / LAST place NULLs regardless of the direction.
      return (!x) == key.nulls_first ? -1 : 1;
    }
    const ColumnInfo& col = columns_[static_cast<size_t>(key.column)];
    absl::StatusOr<int> c = col.output_comparator->Compare(*x, *y);
    if (!c.ok()) return c.status();
    if (*c != 0) return key.descending ? -*c : *c;
  }
  return 0;
}

void Merger::HeadKeys(const ShardState& s, std::vector<std::optional<Bytes>>& keys) {
  keys.clear();
  Bytes queue = s.queue.Readable();
  Bytes body = queue.subspan(4, ReadUint32(queue.data()));
  for (const MergeOrderKey& key : spec_.order_by) {
    const Cell& c = s.head[static_cast<size_t>(key.column)];
    if (c.length < 0) {
      keys.emplace_back(std::nullopt);
    } else {
      keys.emplace_back(body.subspan(c.offset, static_cast<size_t>(c.length)));
    }
  }
}

void Merger::RowKeys(const OwnedRow& row, std::vector<std::optional<Bytes>>& keys) {
  keys.clear();
  for (const MergeOrderKey& key : spec_.order_by) {
    const auto& v = row.values[static_cast<size_t>(key.column)];
    if (v) {
      keys.emplace_back(AsBytes(*v));
    } else {
      keys.emplace_back(std::nullopt);
    }
  }
}

absl::Status Merger::SortRows(std::optional<size_t> keep) {
  // Check every key value first, so the comparator below cannot fail halfway through a
  // sort (a comparator that errs is not a strict weak order).
  for (const OwnedRow& row : rows_) {
    for (const MergeOrderKey& key : spec_.order_by) {
      const auto& v = row.values[static_cast<size_t>(key.column)];
      if (!v) continue;
      const ColumnInfo& col = columns_[static_cast<size_t>(key.column)];
      absl::StatusOr<int> c = col.output_comparator->Compare(AsBytes(*v), AsBytes(*v));
      if (!c.ok()) return c.status();
    }
  }
  auto less = [this](const OwnedRow& a, const OwnedRow& b) {
    RowKeys(a, keys_a_);
    RowKeys(b, keys_b_);
    absl::StatusOr<int> c = CompareKeys(keys_a_, keys_b_);
    int order = c.ok() ? *c : 0;
    return order != 0 ? order < 0 : a.seq < b.seq;
  };
  if (keep && rows_.size() > *keep) {
    std::nth_element(rows_.begin(), rows_.begin() + static_cast<std::ptrdiff_t>(*keep), rows_.end(),
                     less);
    rows_.resize(*keep);
    return absl::OkStatus();  // sorted at Finish
  }
  std::sort(rows_.begin(), rows_.end(), less);
  return absl::OkStatus();
}

// ---- k-way merge of sorted shards -------------------------------------------------------------

absl::Status Merger::AddSortedRow(int shard, Bytes body, protocol::Buffer& out) {
  ShardState& s = shards_[static_cast<size_t>(shard)];
  if (Done()) return absl::OkStatus();
  if (auto st = SplitRow(shard, body, cells_); !st.ok()) return st;
  // The shard must have sent its rows in the merge's order; else the merge would be wrong.
  keys_a_.clear();
  for (const MergeOrderKey& key : spec_.order_by) {
    const Cell& c = cells_[static_cast<size_t>(key.column)];
    if (c.length < 0) {
      keys_a_.emplace_back(std::nullopt);
    } else {
      keys_a_.emplace_back(body.subspan(c.offset, static_cast<size_t>(c.length)));
    }
  }
  if (s.has_last) {
    keys_b_.clear();
    for (const auto& v : s.last_keys) {
      if (v) {
        keys_b_.emplace_back(AsBytes(*v));
      } else {
        keys_b_.emplace_back(std::nullopt);
      }
    }
    absl::StatusOr<int> c = CompareKeys(keys_b_, keys_a_);
    if (!c.ok()) return c.status();
    if (*c > 0) {
      return SqlError(absl::StatusCode::kUnimplemented, "0A000",
                      "shard " + std::to_string(shard) +
                          " returned rows in an order pgring cannot merge (text is merged in "
                          "\"C\" collation order only)",
                      "add COLLATE \"C\" to text keys in ORDER BY");
    }
  } else {
    // The first row's keys are checked here, as later rows are checked against them.
    absl::StatusOr<int> c = CompareKeys(keys_a_, keys_a_);
    if (!c.ok()) return c.status();
  }
  for (size_t k = 0; k < keys_a_.size(); ++k) {
    if (keys_a_[k]) {
      auto text = reinterpret_cast<const char*>(keys_a_[k]->data());
      if (s.last_keys[k]) {
        s.last_keys[k]->assign(text, keys_a_[k]->size());
      } else {
        s.last_keys[k].emplace(text, keys_a_[k]->size());
      }
    } else {
      s.last_keys[k].reset();
    }
  }
  s.has_last = true;

  AppendUint32(s.queue, static_cast<uint32_t>(body.size()));
  s.queue.Append(body);
  if (s.queued++ == 0) s.head = cells_;
  return DrainSorted(out);
}

void Merger::PopHead(ShardState& s) {
  Bytes queue = s.queue.Readable();
  s.queue.Consume(4 + ReadUint32(queue.data()));
  if (--s.queued == 0) return;
  // Rows in the queue were split when they were added; split the new head again to find
  // its cells (cheap: a walk over the length prefixes).
  queue = s.queue.Readable();
  Bytes body = queue.subspan(4, ReadUint32(queue.data()));
  s.head.clear();
  size_t pos = 2;
  for (size_t i = 0; i < columns_.size(); ++i) {
    auto length = static_cast<int32_t>(ReadUint32(body.data() + pos));
    pos += 4;
    s.head.push_back(Cell{static_cast<uint32_t>(pos), length});
    if (length > 0) pos += static_cast<size_t>(length);
  }
}

absl::Status Merger::DrainSorted(protocol::Buffer& out) {
  while (!Done()) {
    ShardState* best = nullptr;
    for (ShardState& s : shards_) {
      if (s.queued == 0) {
        if (!s.ended) return absl::OkStatus();  // its next row may sort first: wait
        continue;
      }
      if (best == nullptr) {
        best = &s;
        continue;
      }
      HeadKeys(s, keys_a_);
      HeadKeys(*best, keys_b_);
      absl::StatusOr<int> c = CompareKeys(keys_a_, keys_b_);
      if (!c.ok()) return c.status();
      if (*c < 0) best = &s;  // ties go to the lower shard: a stable merge
    }
    if (best == nullptr) return absl::OkStatus();
    Bytes queue = best->queue.Readable();
    Bytes body = queue.subspan(4, ReadUint32(queue.data()));
    if (TakeSlot()) EmitBody(body, best->head, out);
    PopHead(*best);
  }
  // LIMIT reached: nothing queued can be sent any more.
  for (ShardState& s : shards_) {
    s.queue.Release();
    s.queued = 0;
  }
  return absl::OkStatus();
}

// ---- grouping and aggregates ------------------------------------------------------------------

absl::Status Merger::AddGroupedRow(int shard, Bytes body) {
  if (auto st = SplitRow(shard, body, cells_); !st.ok()) return st;
  auto value = [&](int column) -> std::optional<Bytes> {
    const Cell& c = cells_[static_cast<size_t>(column)];
    if (c.length < 0) return std::nullopt;
    return body.subspan(c.offset, static_cast<size_t>(c.length));
  };

  key_.clear();
  for (int column : spec_.group_by) {
    std::optional<Bytes> v = value(column);
    if (!v) {
      key_.push_back('N');  // NULLs form one group, as in PostgreSQL
      continue;
    }
    key_.push_back('V');
    const ColumnInfo& col = columns_[static_cast<size_t>(column)];
    if (auto st = col.input_comparator->AppendEqualityKey(*v, key_); !st.ok()) return st;
  }
  auto [it, inserted] = group_index_.try_emplace(key_, groups_.size());
  if (inserted) {
    Group g;
    g.row.seq = next_seq_++;
    g.row.values.resize(cells_.size());
    for (size_t i = 0; i < cells_.size(); ++i) {
      if (auto v = value(static_cast<int>(i))) {
        g.row.values[i].emplace(reinterpret_cast<const char*>(v->data()), v->size());
      }
    }
    g.aggs.resize(spec_.aggregates.size());
    groups_.push_back(std::move(g));
  }
  Group& group = groups_[it->second];

  for (size_t a = 0; a < spec_.aggregates.size(); ++a) {
    const MergeAggregate& agg = spec_.aggregates[a];
    const ColumnInfo& col = columns_[static_cast<size_t>(agg.column)];
    AggState& state = group.aggs[a];
    std::optional<Bytes> v = value(agg.column);
    auto malformed = [&]() {
      return Internal("a shard returned a malformed " + TypeName(col.type_oid) + " value for " +
                      FunctionName(agg.function) + "()");
    };
    switch (agg.function) {
      case MergeFunction::kCount: {
        if (!v) break;
        auto n = ReadInteger(col.type_oid, col.format, *v);
        if (!n) return malformed();
        if (__builtin_add_overflow(state.count, *n, &state.count)) return OutOfRange("bigint");
        break;
      }
      case MergeFunction::kSum:
      case MergeFunction::kAvg: {
        if (agg.function == MergeFunction::kAvg) {
          const ColumnInfo& count_col = columns_[static_cast<size_t>(agg.count_column)];
          if (std::optional<Bytes> cv = value(agg.count_column)) {
            auto n = ReadInteger(count_col.type_oid, count_col.format, *cv);
            if (!n) return malformed();
            if (__builtin_add_overflow(state.count, *n, &state.count)) {
              return OutOfRange("bigint");
            }
          }
        }
        if (!v) break;
        if (IsFloat(col.type_oid)) {
          auto f = ReadFloat(col.type_oid, col.format, *v);
          if (!f) return malformed();
          // avg() accumulates in float8 even for float4 input, as float4_accum does.
          uint32_t type = agg.function == MergeFunction::kAvg ? pg_type::kFloat8 : col.type_oid;
          auto sum = state.has_value ? AddFloats(type, state.float_sum, *f) : f;
          if (!sum) {
            return SqlError(absl::StatusCode::kOutOfRange, "22003", "value out of range: overflow");
          }
          state.float_sum = *sum;
        } else if (col.type_oid == pg_type::kNumeric) {
          auto n = ReadNumeric(col.format, *v);
          if (!n) return malformed();
          if (state.has_value) {
            state.numeric_sum.Add(*n);
          } else {
            state.numeric_sum = std::move(*n);
          }
        } else {
          auto n = ReadInteger(col.type_oid, col.format, *v);
          if (!n) return malformed();
          if (agg.function == MergeFunction::kAvg) {
            state.numeric_sum.Add(Numeric::FromInt64(*n));  // avg() divides as numeric
          } else if (__builtin_add_overflow(state.int_sum, *n, &state.int_sum)) {
            return OutOfRange(TypeName(col.type_oid));
          }
        }
        state.has_value = true;
        break;
      }
      case MergeFunction::kMin:
      case MergeFunction::kMax: {
        if (!v) break;
        bool replace = !state.has_value;
        if (state.has_value) {
          absl::StatusOr<int> c = col.input_comparator->Compare(*v, AsBytes(state.extreme));
          if (!c.ok()) return c.status();
          replace = agg.function == MergeFunction::kMin ? *c < 0 : *c > 0;
        } else {
          absl::StatusOr<int> c = col.input_comparator->Compare(*v, *v);  // validates it
          if (!c.ok()) return c.status();
        }
        if (replace) state.extreme.assign(reinterpret_cast<const char*>(v->data()), v->size());
        state.has_value = true;
        break;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Merger::FinalizeGroups() {
  if (groups_.empty() && spec_.group_by.empty()) {
    // An aggregate without GROUP BY returns one row even when no shard returned one.
    Group g;
    g.row.values.resize(columns_.size());
    g.aggs.resize(spec_.aggregates.size());
    groups_.push_back(std::move(g));
  }
  rows_.reserve(groups_.size());
  for (Group& group : groups_) {
    for (size_t a = 0; a < spec_.aggregates.size(); ++a) {
      const MergeAggregate& agg = spec_.aggregates[a];
      const ColumnInfo& col = columns_[static_cast<size_t>(agg.column)];
      const AggState& state = group.aggs[a];
      std::optional<std::string> result;
      switch (agg.function) {
        case MergeFunction::kCount:
          result.emplace();
          AppendInteger(pg_type::kInt8, col.format, state.count, *result);
          break;
        case MergeFunction::kSum:
          if (!state.has_value) break;
          result.emplace();
          if (IsFloat(col.type_oid)) {
            AppendFloat(col.type_oid, col.format, state.float_sum, *result);
          } else if (col.type_oid == pg_type::kNumeric) {
            if (col.format == ValueFormat::kText) {
              *result = state.numeric_sum.ToText();
            } else {
              state.numeric_sum.AppendBinary(*result);
            }
          } else if (!AppendInteger(col.type_oid, col.format, state.int_sum, *result)) {
            return OutOfRange(TypeName(col.type_oid));
          }
          break;
        case MergeFunction::kMin:
        case MergeFunction::kMax:
          if (state.has_value) result = state.extreme;
          break;
        case MergeFunction::kAvg:
          if (state.count <= 0 || !state.has_value) break;  // no non-NULL input
          result.emplace();
          if (IsFloat(col.type_oid)) {
            AppendFloat(pg_type::kFloat8, col.format,
                        state.float_sum / static_cast<double>(state.count), *result);
          } else {
            Numeric avg = state.numeric_sum.DivideBy(state.count);
            if (col.format == ValueFormat::kText) {
              *result = avg.ToText();
            } else {
              avg.AppendBinary(*result);
            }
          }
          break;
      }
      group.row.values[static_cast<size_t>(agg.column)] = std::move(result);
    }
    rows_.push_back(std::move(group.row));
  }
  groups_.clear();
  group_index_.clear();
  return absl::OkStatus();
}

}  // namespace pgring::sharding
