#include "sharding/shard_sql.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "protocol/sql_error.h"
#include "sharding/sql_scan.h"

namespace pgring::sharding {
namespace {

using protocol::SqlError;
using K = SqlToken::Kind;

constexpr std::string_view kPinAdvice =
    "add a shard-key condition that selects one shard, or pin the statement with "
    "/* pgring: shard_key=... */ or SET pgring.shard_key";

absl::Status Unsupported(const std::string& message, std::string_view hint = kPinAdvice) {
  return SqlError(absl::StatusCode::kUnimplemented, "0A000", message, hint);
}

absl::Status Internal(const std::string& message) {
  return SqlError(absl::StatusCode::kInternal, "XX000", "pgring: " + message);
}

absl::Status CheckRange(std::string_view sql, std::pair<size_t, size_t> range) {
  if (range.first > sql.size() || range.second > sql.size() - range.first) {
    return Internal(fmt::format("statement range ({}, {}) is outside the {}-byte query text",
                                range.first, range.second, sql.size()));
  }
  return absl::OkStatus();
}

// A replacement of sql[begin, end) (absolute offsets; begin == end inserts).
struct Edit {
  size_t begin = 0;
  size_t end = 0;
  std::string text;
};

// Returns sql[from, to) with `edits` applied. Edits at one offset apply in the order given.
absl::StatusOr<std::string> ApplyEdits(std::string_view sql, size_t from, size_t to,
                                       std::vector<Edit> edits) {
  // An insertion goes before a replacement that starts at the same offset.
  std::stable_sort(edits.begin(), edits.end(), [](const Edit& a, const Edit& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::string out;
  out.reserve(to - from + 64);
  size_t pos = from;
  for (const Edit& e : edits) {
    if (e.begin < pos || e.end < e.begin || e.end > to) {
      return Internal("overlapping or misplaced rewrites of the statement text");
    }
    out.append(sql.substr(pos, e.begin - pos));
    out += e.text;
    pos = e.end;
  }
  out.append(sql.substr(pos, to - pos));
  return out;
}

// The end of the LIMIT / OFFSET / FETCH value expression that starts at `begin`: up to the
// next clause keyword, comma, semicolon or unmatched ')' outside parentheses. The analyzer
// only accepts constants and $n there (possibly cast), so no such keyword can be inside.
std::optional<size_t> ValueEnd(std::string_view sql, size_t begin, size_t limit) {
  SqlScanner scan(sql, begin, limit);
  int depth = 0;
  size_t end = begin;
  for (SqlToken t = scan.Next(); t.kind != K::kEnd && t.kind != K::kError; t = scan.Next()) {
    if (depth == 0) {
      if (t.kind == K::kClose || t.kind == K::kComma || t.kind == K::kSemicolon) break;
      bool clause = false;
      for (std::string_view w : {"offset", "limit", "fetch", "for", "row", "rows", "only", "with",
                                 "union", "intersect", "except", "order", "window", "into"}) {
        clause = clause || IsWord(sql, t, w);
      }
      if (clause) break;
    }
    if (t.kind == K::kOpen) ++depth;
    if (t.kind == K::kClose) --depth;
    end = t.end;
  }
  if (end == begin) return std::nullopt;
  return end;
}

// True if the nearest non-blank byte before `pos` is '+' (FETCH FIRST +5 ROWS, where only a
// constant may follow the sign).
bool AfterPlusSign(std::string_view sql, size_t pos) {
  while (pos > 0 && (sql[pos - 1] == ' ' || sql[pos - 1] == '\t' || sql[pos - 1] == '\n' ||
                     sql[pos - 1] == '\r')) {
    --pos;
  }
  return pos > 0 && sql[pos - 1] == '+';
}

// The pieces of an aggregate call `name(args) [FILTER (WHERE ...)]` whose name starts at
// `begin`.
struct CallText {
  size_t name_begin = 0;
  size_t last_name_begin = 0;  // the unqualified name (after schema.)
  size_t last_name_end = 0;
  size_t args_begin = 0;                    // '(' of the arguments
  size_t args_end = 0;                      // after their ')'
  size_t filter_begin = 0, filter_end = 0;  // FILTER (...), empty if none
  size_t end = 0;                           // after the whole call
};

// Skips a parenthesized group whose '(' was just read; returns its ')' token.
std::optional<SqlToken> SkipGroup(SqlScanner& scan) {
  int depth = 1;
  while (true) {
    SqlToken t = scan.Next();
    if (t.kind == K::kEnd || t.kind == K::kError) return std::nullopt;
    if (t.kind == K::kOpen) ++depth;
    if (t.kind == K::kClose && --depth == 0) return t;
  }
}

std::optional<CallText> ScanCall(std::string_view sql, size_t begin, size_t limit) {
  CallText c;
  SqlScanner scan(sql, begin, limit);
  SqlToken t = scan.Next();
  if ((t.kind != K::kWord && t.kind != K::kQuotedIdentifier) || t.begin != begin) {
    return std::nullopt;
  }
  c.name_begin = t.begin;
  c.last_name_begin = t.begin;
  c.last_name_end = t.end;
  while (true) {
    t = scan.Next();
    if (t.kind == K::kOther && TokenText(sql, t) == ".") {
      t = scan.Next();
      if (t.kind != K::kWord && t.kind != K::kQuotedIdentifier) return std::nullopt;
      c.last_name_begin = t.begin;
      c.last_name_end = t.end;
      continue;
    }
    break;
  }
  if (t.kind != K::kOpen || sql[t.begin] != '(') return std::nullopt;
  c.args_begin = t.begin;
  std::optional<SqlToken> close = SkipGroup(scan);
  if (!close) return std::nullopt;
  c.args_end = c.end = close->end;
  SqlScanner peek = scan;
  t = peek.Next();
  if (IsWord(sql, t, "filter")) {
    SqlToken open = peek.Next();
    if (open.kind != K::kOpen || sql[open.begin] != '(') return std::nullopt;
    close = SkipGroup(peek);
    if (!close) return std::nullopt;
    c.filter_begin = t.begin;
    c.filter_end = c.end = close->end;
    scan = peek;
    t = peek.Next();
  }
  // A window function or an ordered-set aggregate is not a plain aggregate.
  if (IsWord(sql, t, "over") || IsWord(sql, t, "within")) return std::nullopt;
  return c;
}

// The end of a select-list entry that starts at `begin` and is the call `call`, possibly in
// parentheses: `avg(x)`, `(avg(x))`.
std::optional<size_t> TargetEnd(std::string_view sql, size_t begin,
                                const std::optional<CallText>& call, size_t limit) {
  if (!call) return std::nullopt;
  if (begin == call->name_begin) return call->end;
  SqlScanner scan(sql, begin, limit);
  SqlToken open = scan.Next();
  if (open.kind != K::kOpen || open.begin != begin || sql[begin] != '(') return std::nullopt;
  std::optional<SqlToken> close = SkipGroup(scan);
  if (!close || close->begin < call->end) return std::nullopt;
  return close->end;
}

// Reads the Bind value of $n as a bigint, the type PostgreSQL gives a LIMIT / OFFSET
// parameter: text as int8in reads it, binary as a big-endian int8 (or int4 / int2 when the
// client declared those). nullopt for NULL.
absl::StatusOr<std::optional<int64_t>> BindInt(const protocol::BindParams* params, int n) {
  if (params == nullptr || n < 1 || static_cast<size_t>(n) > params->values.size()) {
    return SqlError(absl::StatusCode::kInvalidArgument, "08P01",
                    fmt::format("no Bind value for parameter ${}", n));
  }
  const auto& value = params->values[static_cast<size_t>(n - 1)];
  if (!value.has_value()) return std::optional<int64_t>();
  std::span<const std::byte> bytes = *value;
  if (params->FormatOf(static_cast<size_t>(n - 1)) == 1) {
    if (bytes.size() != 8 && bytes.size() != 4 && bytes.size() != 2) {
      return SqlError(absl::StatusCode::kInvalidArgument, "22P03",
                      fmt::format("incorrect binary data format in bind parameter {}", n));
    }
    uint64_t u = 0;
    for (std::byte b : bytes) u = (u << 8) | static_cast<uint8_t>(b);
    int64_t v = 0;
    if (bytes.size() == 8) v = static_cast<int64_t>(u);
    if (bytes.size() == 4) v = static_cast<int32_t>(static_cast<uint32_t>(u));
    if (bytes.size() == 2) v = static_cast<int16_t>(static_cast<uint16_t>(u));
    return std::optional<int64_t>(v);
  }
  std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  auto invalid = [&] {
    return SqlError(absl::StatusCode::kInvalidArgument, "22P02",
                    fmt::format("invalid input syntax for type bigint: \"{}\"", text));
  };
  auto space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  };
  std::string_view s = text;
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  bool negative = false;
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return invalid();
  // Accumulate negatively: INT64_MIN has no positive counterpart.
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return invalid();
    int d = c - '0';
    if (v < (std::numeric_limits<int64_t>::min() + d) / 10) {
      return SqlError(absl::StatusCode::kOutOfRange, "22003",
                      fmt::format("value \"{}\" is out of range for type bigint", text));
    }
    v = v * 10 - d;
  }
  if (!negative) {
    if (v == std::numeric_limits<int64_t>::min()) {
      return SqlError(absl::StatusCode::kOutOfRange, "22003",
                      fmt::format("value \"{}\" is out of range for type bigint", text));
    }
    v = -v;
  }
  return std::optional<int64_t>(v);
}

absl::Status NegativeLimit() {
  return SqlError(absl::StatusCode::kInvalidArgument, "2201W", "LIMIT must not be negative");
}
absl::Status NegativeOffset() {
  return SqlError(absl::StatusCode::kInvalidArgument, "2201X", "OFFSET must not be negative");
}

}  // namespace

// ---- INSERT split ----------------------------------------------------------------------------

absl::StatusOr<std::string> InsertRowsSql(std::string_view sql, std::pair<size_t, size_t> range,
                                          const Statement& s, std::span<const size_t> rows) {
  if (auto st = CheckRange(sql, range); !st.ok()) return st;
  if (!s.insert.has_value() || s.insert->rows.empty()) {
    return Internal("InsertRowsSql needs an INSERT ... VALUES statement");
  }
  const InsertInfo& ins = *s.insert;
  if (ins.row_ranges.size() != ins.rows.size()) {
    return Unsupported(
        "pgring cannot locate the VALUES rows of this INSERT to split it between shards",
        "send the rows of each shard in their own INSERT, or pin the statement to one shard");
  }
  if (rows.empty()) return Internal("InsertRowsSql needs at least one row");
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] >= ins.rows.size() || (i > 0 && rows[i] <= rows[i - 1])) {
      return Internal("InsertRowsSql needs ascending row numbers below the row count");
    }
  }
  const size_t end = range.first + range.second;
  const auto& first = ins.row_ranges.front();
  const auto& last = ins.row_ranges.back();
  if (first.first < range.first || last.first + last.second > end) {
    return Internal("the VALUES rows lie outside the statement's range");
  }
  std::string out(sql.substr(range.first, first.first - range.first));
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i > 0) out += ", ";
    const auto& r = ins.row_ranges[rows[i]];
    out.append(sql.substr(r.first, r.second));
  }
  size_t tail = last.first + last.second;
  out.append(sql.substr(tail, end - tail));
  return out;
}

absl::StatusOr<InsertPart> InsertRowsPart(std::string_view sql, std::pair<size_t, size_t> range,
                                          const Statement& s, std::span<const size_t> rows) {
  absl::StatusOr<std::string> text = InsertRowsSql(sql, range, s, rows);
  if (!text.ok()) return text.status();
  InsertPart part;
  if (s.num_params == 0) {
    part.sql = *std::move(text);
    return part;
  }
  // The part's text starts and ends at token boundaries of the original, and rows are
  // joined at theirs, so scanning it finds exactly the original's $n tokens.
  std::vector<std::pair<size_t, size_t>> tokens;  // (begin, end) of each $n
  std::vector<int> numbers;
  SqlScanner scan(*text);
  for (SqlToken t = scan.Next(); t.kind != K::kEnd; t = scan.Next()) {
    if (t.kind == K::kError) return Internal("cannot rescan the INSERT text");
    if (t.kind != K::kParam) continue;
    std::string_view digits = TokenText(*text, t).substr(1);
    if (digits.size() > 9) return Internal("parameter number out of range");
    tokens.emplace_back(t.begin, t.end);
    numbers.push_back(std::stoi(std::string(digits)));
  }
  part.params = numbers;
  std::sort(part.params.begin(), part.params.end());
  part.params.erase(std::unique(part.params.begin(), part.params.end()), part.params.end());
  std::vector<Edit> edits;
  for (size_t i = 0; i < tokens.size(); ++i) {
    auto it = std::lower_bound(part.params.begin(), part.params.end(), numbers[i]);
    int renumbered = static_cast<int>(it - part.params.begin()) + 1;
    if (renumbered != numbers[i]) {
      edits.push_back({tokens[i].first, tokens[i].second, fmt::format("${}", renumbered)});
    }
  }
  absl::StatusOr<std::string> renamed = ApplyEdits(*text, 0, text->size(), std::move(edits));
  if (!renamed.ok()) return renamed.status();
  part.sql = *std::move(renamed);
  return part;
}

// ---- scatter-gather ----------------------------------------------------------------------------

absl::StatusOr<ScatterQuery> PlanScatter(std::string_view sql, std::pair<size_t, size_t> range,
                                         const Statement& s, const MergeFacts& facts) {
  if (auto st = CheckRange(sql, range); !st.ok()) return st;
  const size_t stmt_end = range.first + range.second;
  ScatterQuery q;
  MergeSpec& spec = q.spec;
  ScatterQuery::Pending& p = q.pending;
  const std::vector<TargetInfo>& targets = facts.targets;
  // Only a SELECT's own text carries the locations below (an EXECUTE names a prepared
  // statement whose text the shards already hold).
  const bool own_text = s.kind == StatementKind::kSelect;
  std::vector<Edit> edits;
  auto needs_text = [&](std::string_view what) {
    return Unsupported(
        fmt::format("pgring must rewrite {} for the shards, which it cannot do for EXECUTE of "
                    "a prepared statement",
                    what),
        "send the query itself (or use the extended protocol), or pin it to one shard");
  };

  if (facts.limit_with_ties) return Unsupported("FETCH FIRST ... WITH TIES over several shards");
  // The router refuses these first; they are checked again because a wrong merge is
  // never acceptable.
  for (auto [present, what] :
       {std::pair{s.has_window_functions, "window functions"}, std::pair{s.has_having, "HAVING"},
        std::pair{s.has_distinct_on, "DISTINCT ON"},
        std::pair{s.has_set_operation, "UNION, INTERSECT or EXCEPT"}}) {
    if (present) return Unsupported(fmt::format("{} over several shards", what));
  }
  const bool grouping = facts.has_aggregates || facts.has_group_by || facts.has_distinct;

  p.items = static_cast<int>(targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    if (targets[i].kind == TargetInfo::Kind::kStar) p.star_items.push_back(static_cast<int>(i) + 1);
  }
  const bool star = !p.star_items.empty();
  int hidden = 0;
  for (const TargetInfo& t : targets) {
    if (t.kind == TargetInfo::Kind::kAggregate && t.aggregate == AggregateFunc::kAvg) ++hidden;
  }
  if (star && (hidden > 0 || facts.has_aggregates)) {
    return Unsupported("* next to aggregates over several shards");
  }
  p.hidden_prefix = hidden;

  // Aggregates. avg(x) runs as sum(x) with count(x) in a hidden column before the select
  // list: the first entry's location is exact, while the end of the last entry is not known.
  std::string hidden_text;
  int next_hidden = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    const TargetInfo& t = targets[i];
    if (t.kind != TargetInfo::Kind::kAggregate) continue;
    const std::string& label = t.text.empty() ? t.name : t.text;
    if (t.agg_distinct) {
      return Unsupported(
          fmt::format("{} (an aggregate over DISTINCT values) over several shards", label));
    }
    const int column = hidden + static_cast<int>(i);
    switch (t.aggregate) {
      case AggregateFunc::kCount:
        spec.aggregates.push_back({column, MergeFunction::kCount});
        break;
      case AggregateFunc::kSum:
        spec.aggregates.push_back({column, MergeFunction::kSum});
        break;
      case AggregateFunc::kMin:
        spec.aggregates.push_back({column, MergeFunction::kMin});
        break;
      case AggregateFunc::kMax:
        spec.aggregates.push_back({column, MergeFunction::kMax});
        break;
      case AggregateFunc::kAvg: {
        if (!own_text) return needs_text("avg()");
        std::optional<CallText> call;
        std::optional<size_t> target_end;
        if (t.func_location >= 0 && t.location >= 0 &&
            static_cast<size_t>(t.location) >= range.first && t.func_location >= t.location) {
          call = ScanCall(sql, static_cast<size_t>(t.func_location), stmt_end);
          target_end = TargetEnd(sql, static_cast<size_t>(t.location), call, stmt_end);
        }
        if (!call || !target_end) return Internal(fmt::format("cannot find the text of {}", label));
        std::string_view qualifier =
            sql.substr(call->name_begin, call->last_name_begin - call->name_begin);
        std::string_view args = sql.substr(call->args_begin, call->args_end - call->args_begin);
        std::string_view filter =
            sql.substr(call->filter_begin, call->filter_end - call->filter_begin);
        edits.push_back({call->last_name_begin, call->last_name_end, "sum"});
        // sum() would be labelled "sum"; the client must see avg's label.
        if (!t.has_alias) edits.push_back({*target_end, *target_end, " AS avg"});
        hidden_text += fmt::format("{}count{}{}{} AS \"pgring:avg_count_{}\", ", qualifier, args,
                                   filter.empty() ? "" : " ", filter, next_hidden + 1);
        spec.aggregates.push_back({column, MergeFunction::kAvg, next_hidden});
        spec.hidden_columns.push_back(next_hidden);
        ++next_hidden;
        break;
      }
      default:
        return Unsupported(fmt::format(
            "the aggregate {} over several shards (only count, sum, min, max and avg are merged)",
            label));
    }
  }
  if (hidden > 0) {
    edits.push_back({static_cast<size_t>(targets.front().location),
                     static_cast<size_t>(targets.front().location), std::move(hidden_text)});
  }
  // Output column numbers in GROUP BY n / ORDER BY n move past the hidden columns.
  auto shift_number = [&](int location, int number) -> absl::Status {
    if (hidden == 0) return absl::OkStatus();
    if (location < 0 || static_cast<size_t>(location) < range.first) {
      return Internal("cannot find a column number in GROUP BY or ORDER BY");
    }
    SqlScanner scan(sql, static_cast<size_t>(location), stmt_end);
    SqlToken tok = scan.Next();
    if (tok.kind != K::kNumber || tok.begin != static_cast<size_t>(location)) {
      return Internal("cannot find a column number in GROUP BY or ORDER BY");
    }
    edits.push_back({tok.begin, tok.end, std::to_string(number + hidden)});
    return absl::OkStatus();
  };

  // Grouping.
  if (facts.has_aggregates && !facts.has_group_by) {
    // One group: an entry that is not an aggregate call would keep one shard's value.
    for (const TargetInfo& t : targets) {
      if (t.kind != TargetInfo::Kind::kAggregate) {
        return Unsupported(fmt::format(
            "the select-list item {} next to aggregates over several shards (each item must be "
            "a count, sum, min, max or avg call)",
            t.text.empty() ? t.name : t.text));
      }
    }
  }
  if (facts.has_distinct) {
    if (facts.has_aggregates) return Unsupported("DISTINCT together with aggregates");
    // Deduplicating rows is grouping by every output column.
    if (star) {
      p.group_all = true;
    } else {
      for (int i = 0; i < p.items; ++i) spec.group_by.push_back(i);
    }
  }
  if (facts.has_group_by && !facts.has_distinct) {
    if (!own_text) return needs_text("GROUP BY");
    // Merging regroups the shards' rows by the select list's non-aggregate columns; that is
    // the query's grouping only if every GROUP BY item is one of them.
    for (const GroupKey& g : s.group_by) {
      if (g.is_number) {
        if (g.position < 1) return Unsupported("GROUP BY 0 or a negative column number");
        if (!star && (g.position > p.items || targets[static_cast<size_t>(g.position - 1)].kind ==
                                                  TargetInfo::Kind::kAggregate)) {
          return Unsupported(fmt::format("GROUP BY {} over several shards", g.position));
        }
        if (auto st = shift_number(g.number_location, g.position); !st.ok()) return st;
      } else if (g.position > 0) {
        if (targets[static_cast<size_t>(g.position - 1)].kind == TargetInfo::Kind::kAggregate) {
          return Unsupported("GROUP BY an aggregate");
        }
      } else if (star && !g.name.empty()) {
        p.group_names.push_back(g.name);
      } else {
        return Unsupported(
            fmt::format("a GROUP BY item that is not in the select list{} over several shards",
                        g.name.empty() ? "" : " (" + g.name + ")"),
            "group by exactly the columns you select, written as in the select list or by "
            "number (GROUP BY 1), add a shard-key condition that selects one shard, or pin "
            "the statement to one shard");
      }
    }
    if (s.group_by.empty()) {
      return Unsupported("GROUP BY ROLLUP, CUBE, GROUPING SETS or () over several shards");
    }
    if (facts.has_aggregates) {
      for (size_t i = 0; i < targets.size(); ++i) {
        if (targets[i].kind == TargetInfo::Kind::kAggregate) continue;
        // A plain column is a key or depends on the keys (PostgreSQL checks). Any other
        // entry must itself be a key: it might hold an aggregate (`sum(x) / count(*)`).
        const int item = static_cast<int>(i) + 1;
        if (targets[i].kind != TargetInfo::Kind::kColumn &&
            std::none_of(s.group_by.begin(), s.group_by.end(),
                         [&](const GroupKey& g) { return g.position == item; })) {
          return Unsupported(fmt::format(
              "the select-list item {} next to aggregates over several shards (with aggregates, "
              "each item must be a plain column, a GROUP BY expression or a count, sum, min, "
              "max or avg call)",
              targets[i].text.empty() ? targets[i].name : targets[i].text));
        }
        spec.group_by.push_back(hidden + static_cast<int>(i));
      }
    } else if (star) {
      p.group_all = true;
    } else {
      for (int i = 0; i < p.items; ++i) spec.group_by.push_back(i);
    }
  }

  // ORDER BY.
  for (size_t j = 0; j < facts.order_by.size(); ++j) {
    const OrderKey& k = facts.order_by[j];
    if (k.using_operator) return Unsupported(fmt::format("ORDER BY {} USING an operator", k.text));
    MergeOrderKey key{0, k.descending, k.nulls_first};
    if (k.number_location >= 0) {
      // An output column number, counted after * is expanded.
      if (k.position < 1) return Unsupported("ORDER BY 0 or a negative column number");
      key.column = hidden + k.position - 1;
      if (own_text) {
        if (auto st = shift_number(k.number_location, k.position); !st.ok()) return st;
      } else if (hidden > 0) {
        return needs_text("ORDER BY");
      }
    } else if (k.position > 0 && k.position <= p.items) {
      if (!star || k.position < p.star_items.front()) {
        key.column = hidden + k.position - 1;
      } else {
        p.order_keys.push_back({j, k.position, targets[static_cast<size_t>(k.position - 1)].name});
      }
    } else if (star && !k.text.empty() && k.text.find_first_of(".()' \"") == std::string::npos) {
      p.order_keys.push_back({j, 0, k.text});
    } else {
      return Unsupported(fmt::format("ORDER BY {}, which is not in the select list", k.text));
    }
    spec.order_by.push_back(key);
  }
  spec.input_order = grouping ? InputOrder::kUnsorted : InputOrder::kSorted;

  // LIMIT and OFFSET apply to the merged rows.
  if (own_text && s.has_limit && !facts.limit.has_value() && facts.limit_param == 0) {
    return Unsupported("a LIMIT that is neither a constant nor a $n parameter over several shards",
                       "write LIMIT as a number or a $n parameter");
  }
  if (own_text && s.has_offset && !facts.offset.has_value() && facts.offset_param == 0) {
    return Unsupported(
        "an OFFSET that is neither a constant nor a $n parameter over several "
        "shards",
        "write OFFSET as a number or a $n parameter");
  }
  if (facts.limit.has_value() && *facts.limit < 0) return NegativeLimit();
  if (facts.offset.has_value() && *facts.offset < 0) return NegativeOffset();
  spec.limit = facts.limit;
  if (facts.offset.has_value() && *facts.offset > 0) spec.offset = facts.offset;
  p.limit_param = facts.limit_param;
  p.offset_param = facts.offset_param;

  const bool has_limit = facts.limit.has_value() || facts.limit_param > 0;
  const bool skips = facts.offset_param > 0 || spec.offset.has_value();
  struct Value {
    size_t begin = 0, end = 0;
    std::string_view text;
  };
  auto value_at = [&](int location, std::string_view what) -> absl::StatusOr<Value> {
    if (!own_text) return needs_text(what);
    if (location < 0) {
      return Unsupported(fmt::format("{} without an explicit count over several shards", what),
                         "write FETCH FIRST 1 ROW ONLY with the number");
    }
    auto begin = static_cast<size_t>(location);
    std::optional<size_t> end;
    if (begin >= range.first) end = ValueEnd(sql, begin, stmt_end);
    if (!end) return Internal(fmt::format("cannot find the {} value", what));
    return Value{begin, *end, sql.substr(begin, *end - begin)};
  };
  std::optional<Value> limit_value, offset_value;
  if (skips) {
    auto v = value_at(s.offset_location, "OFFSET");
    if (!v.ok()) return v.status();
    offset_value = *v;
  }
  if (has_limit && (grouping || skips)) {
    auto v = value_at(s.limit_location, "LIMIT");
    if (!v.ok()) return v.status();
    limit_value = *v;
  }
  if (offset_value) {
    // The shards skip nothing. A parameter stays referenced (and typed bigint, as in
    // `OFFSET $n`): a Bind value whose parameter the text no longer uses fails when its type
    // was left to the server to infer.
    edits.push_back({offset_value->begin, offset_value->end,
                     facts.offset_param > 0 ? fmt::format("(0 * ({})::int8)", offset_value->text)
                                            : std::string("0")});
  }
  if (limit_value && grouping) {
    // Groups may be split over shards: every shard returns all its groups.
    std::string text;
    if (facts.limit_param > 0) {
      text = fmt::format("(NULL + 0 * ({})::int8)", limit_value->text);
    } else {
      text = AfterPlusSign(sql, limit_value->begin) ? "9223372036854775807" : "NULL";
    }
    edits.push_back({limit_value->begin, limit_value->end, std::move(text)});
  } else if (limit_value) {
    // Each shard returns its first offset + limit rows: the merged first offset + limit
    // rows are among them. NULL (no limit) stays NULL; the sum cannot overflow.
    std::string text;
    if (facts.limit_param == 0 && facts.offset_param == 0) {
      int64_t sum = 0;
      if (__builtin_add_overflow(*facts.limit, spec.offset.value_or(0), &sum)) {
        text = "9223372036854775807";
      } else {
        text = std::to_string(sum);
      }
    } else {
      text = fmt::format("(least(({0})::int8, 9223372036854775807 - ({1})::int8) + ({1})::int8)",
                         limit_value->text, offset_value->text);
    }
    edits.push_back({limit_value->begin, limit_value->end, std::move(text)});
  }

  if (edits.empty()) {
    q.sql.assign(sql.substr(range.first, range.second));
    return q;
  }
  if (!own_text) return needs_text("the statement");
  absl::StatusOr<std::string> text = ApplyEdits(sql, range.first, stmt_end, std::move(edits));
  if (!text.ok()) return text.status();
  q.sql = *std::move(text);
  q.rewritten = true;
  return q;
}

absl::StatusOr<MergeSpec> CompleteSpec(const ScatterQuery& q,
                                       std::span<const protocol::RowField> fields,
                                       const protocol::BindParams* params) {
  MergeSpec spec = q.spec;
  const ScatterQuery::Pending& p = q.pending;
  const int n = static_cast<int>(fields.size());
  const int hidden = p.hidden_prefix;
  const int stars = static_cast<int>(p.star_items.size());
  if (n - hidden < p.items - stars || (stars == 0 && n - hidden != p.items)) {
    return Internal(
        fmt::format("the shards return {} columns for a select list of {} entries", n, p.items));
  }
  // The column of a select-list entry: before the first * and after the last one the
  // position is known; between two *, only a unique name tells.
  auto by_name = [&](std::string_view name, std::string_view what) -> absl::StatusOr<int> {
    int found = -1;
    for (int c = hidden; c < n; ++c) {
      if (fields[static_cast<size_t>(c)].name != name) continue;
      if (found >= 0) {
        return Unsupported(fmt::format("{} {} matches several columns of the result", what, name),
                           "name the column through an alias that is unique");
      }
      found = c;
    }
    if (found < 0) {
      return Unsupported(fmt::format("{} {}, which is not a column of the result", what, name),
                         "select the column, add a shard-key condition that selects one shard, "
                         "or pin the statement to one shard");
    }
    return found;
  };
  for (const ScatterQuery::Pending::Key& key : p.order_keys) {
    int column = -1;
    if (key.item > 0 && stars > 0 && key.item > p.star_items.back()) {
      column = n - 1 - (p.items - key.item);
    } else if (key.item > 0 && (stars == 0 || key.item < p.star_items.front())) {
      column = hidden + key.item - 1;
    } else {
      absl::StatusOr<int> c = by_name(key.name, "ORDER BY");
      if (!c.ok()) return c.status();
      column = *c;
    }
    if (key.index >= spec.order_by.size()) return Internal("ORDER BY key out of range");
    spec.order_by[key.index].column = column;
  }
  for (const std::string& name : p.group_names) {
    absl::StatusOr<int> c = by_name(name, "GROUP BY");
    if (!c.ok()) return c.status();
  }
  if (p.group_all) {
    spec.group_by.clear();
    for (int c = hidden; c < n; ++c) spec.group_by.push_back(c);
  }
  for (const MergeAggregate& agg : spec.aggregates) {
    if (agg.column < 0 || agg.column >= n) return Internal("aggregate column out of range");
    if (agg.function == MergeFunction::kAvg &&
        fields[static_cast<size_t>(agg.column)].type_oid == 700) {
      return Unsupported(
          fmt::format("avg() of a real column ({}) over several shards: the shards' sum(real) "
                      "is less precise than avg(real)",
                      fields[static_cast<size_t>(agg.column)].name),
          "write avg(x::float8), which gives the same result");
    }
  }
  for (const MergeOrderKey& key : spec.order_by) {
    if (key.column < 0 || key.column >= n) {
      return Unsupported(
          fmt::format("ORDER BY {}, which is not in the select list", key.column - hidden + 1));
    }
  }
  if (p.limit_param > 0) {
    absl::StatusOr<std::optional<int64_t>> v = BindInt(params, p.limit_param);
    if (!v.ok()) return v.status();
    if (v->has_value() && **v < 0) return NegativeLimit();
    spec.limit = *v;
  }
  if (p.offset_param > 0) {
    absl::StatusOr<std::optional<int64_t>> v = BindInt(params, p.offset_param);
    if (!v.ok()) return v.status();
    if (v->has_value() && **v < 0) return NegativeOffset();
    spec.offset = v->has_value() && **v > 0 ? *v : std::nullopt;
  }
  return spec;
}

}  // namespace pgring::sharding
