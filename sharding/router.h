// Decides where a statement runs: combines a Statement (analyzer.h) with the table map
// (table_map.h), the ring (ring.h) and the values only known at execution time (Bind
// parameters, the session's shard-key hint) into a RoutePlan.
//
//   RouteInputs in;
//   in.params = &bind_params;            // optional: Bind values ($1 ...)
//   in.param_types = parse_param_oids;   // optional: type OIDs from Parse (0 = unspecified)
//   in.session_shard_key = session.shard_key();  // SET pgring.shard_key, if set
//   absl::StatusOr<RoutePlan> plan = Router::Route(statement, table_map, *ring, in);
//   if (!plan.ok()) SendError(plan.status());  // SQLSTATE and hint in the payload
//
// The rules (docs/sharding.md, "Routing"), in short: a shard key in the statement (`=`,
// IN, `= ANY($1)`, OR of equalities, INSERT row values) routes to the shards owning the
// keys; a multi-row INSERT is split per shard; no key means every shard (reads are merged,
// writes run in one distributed transaction); joins must be on the shard keys of
// co-located tables or pinned to one shard; reference tables are read on one shard and
// written on all; DDL runs on all shards; session commands apply to every connection the
// client holds; statements that cannot run correctly fail with SQLSTATE 0A000 and a
// message naming the fix. Errors are protocol::SqlError statuses.
//
// Router is pure: no I/O, no clocks, no state. Route() only reads its arguments, which it
// borrows for the duration of the call; it is thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "conf/config.h"
#include "protocol/messages.h"
#include "sharding/ring.h"
#include "sharding/statement.h"
#include "sharding/table_map.h"
#include "sharding/types.h"

namespace pgring::sharding {

enum class RouteKind {
  kSingle,   // exactly one shard (`shards` has one entry)
  kMulti,    // the shards owning the statement's keys (two or more)
  kAll,      // every shard of the ring: no shard key (scatter), reference writes, DDL
  kDefault,  // no sharded or reference table: the default shard (or the first shard)
  kSession,  // session or transaction state (SET, BEGIN/COMMIT, DISCARD...): applies to
             // every server connection the client holds, and to those it takes later
  kLocal,    // answered by pgring itself, sent to no shard (SET/SHOW pgring.*, empty query)
};

// Returns "single", "multi", "all", "default", "session" or "local".
std::string_view ToString(RouteKind kind);

// Facts about the result of a read that runs on several shards, copied from the
// Statement, for merging the per-shard results (the merger's input).
struct MergeFacts {
  std::vector<TargetInfo> targets;
  std::vector<OrderKey> order_by;
  std::optional<int64_t> limit;
  std::optional<int64_t> offset;
  int limit_param = 0;   // LIMIT $n
  int offset_param = 0;  // OFFSET $n
  bool limit_with_ties = false;
  bool has_aggregates = false;
  bool has_group_by = false;
  bool has_distinct = false;  // SELECT DISTINCT or UNION (not ALL): deduplicate
};

// For COPY ... FROM STDIN into a sharded table: how the proxy splits the data rows.
struct CopySplit {
  int key_index = 0;  // 0-based field of the shard key in each data row
  std::string key_column;
  conf::KeyType key_type = conf::KeyType::kInt;
};

// The shards of a plan: usually one, kept inline (routing a statement allocates nothing).
using ShardList = absl::InlinedVector<ShardId, 2>;

struct RoutePlan {
  RouteKind kind = RouteKind::kDefault;
  // Where to run: sorted, unique ids of `ring`. Empty only for kSession and kLocal.
  ShardList shards;
  // INSERT ... VALUES into a sharded table: insert_rows[i] lists the (0-based, ascending)
  // VALUES rows that belong to shards[i]. Empty for every other statement.
  std::vector<std::vector<size_t>> insert_rows;
  // The statement may run on any one shard (a read of reference tables or catalogs only,
  // or a read without tables): `shards` names the preferred one, and the proxy may use a
  // shard the client already holds instead.
  bool any_shard = false;
  bool is_write = false;
  // A SELECT whose result rows come from several shards; `merge` holds the merge facts.
  bool needs_merge = false;
  MergeFacts merge;
  // The shard-key hint (statement comment or session) decided the shard.
  bool used_hint = false;
  std::optional<CopySplit> copy_split;
  // Why, for SHOW ROUTE / pgringctl route, e.g.
  // "orders.tenant_id = 42 -> hash 8010225493015854792 -> shard-2". Filled only when
  // RouteInputs::explain is set.
  std::string reason;
};

// What Route() worked out about one statement under one table map, so that routing it
// again costs reading its key values, not planning it. Route() makes it on first use (see
// RouteInputs::memo) and remakes it when the table map changed; only Route() reads or
// writes its fields. It points into the Statement it describes: keep it next to that
// Statement (in the analyzer cache entry, the prepared statement), and use it from one
// thread at a time.
struct RouteMemo {
  enum class Kind : uint8_t {
    kUnmade,   // not made yet
    kGeneral,  // planned on every route
    kDefault,  // names only tables outside the map: the default shard, whatever the values
    kKeyed,    // one shard-key value per sharded table (`sources`) decides: the shard that
               // owns them all, when each is one non-NULL key and they agree; else planned
    kSession,  // transaction control, SET, PREPARE, DEALLOCATE, DISCARD: RouteKind::kSession
    kLocal,    // answered by pgring (SET pgring.*, the empty query): RouteKind::kLocal
  };
  struct Source {
    const KeyValue* value = nullptr;  // in the Statement
    conf::KeyType type = conf::KeyType::kInt;
  };
  Kind kind = Kind::kUnmade;
  uint64_t tables_id = 0;   // TableMap::id() it was made for
  bool insert_row = false;  // kKeyed INSERT of one VALUES row: insert_rows is {{0}}
  absl::InlinedVector<Source, 2> sources;

  // False when this memo, made for the table map `tables_id`, routes the statement the
  // same whatever its parameter values are (RouteInputs::params may then be null): the
  // kinds RouteByMemo (router.cc) answers without reading the inputs. route_memo_test
  // holds the two to each other.
  bool NeedsValues(uint64_t current_tables_id) const {
    return current_tables_id != tables_id ||
           (kind != Kind::kDefault && kind != Kind::kSession && kind != Kind::kLocal);
  }
};

// Values known only when the statement runs.
struct RouteInputs {
  // Bind parameter values and formats ($n is values[n-1]); nullptr when there are none
  // (simple query, or routing for display without values).
  const protocol::BindParams* params = nullptr;
  // Parameter type OIDs from Parse (0 = unspecified; shorter than the parameter list is
  // fine). Read: 20 int8, 21 int2, 23 int4, 25 text, 1043 varchar, 2950 uuid, 705 unknown,
  // and the array types 1016, 1005, 1007, 1009, 1015, 2951. Unspecified types are taken
  // from a cast in the statement ($1::bigint), else from the shard key's type.
  std::span<const uint32_t> param_types;
  // SET pgring.shard_key value of the session or transaction, if any.
  std::optional<std::string_view> session_shard_key;
  // For EXECUTE name(args): the statement prepared under that name (Statement::inner of
  // the PREPARE). The EXECUTE arguments become its $1, $2...
  const Statement* prepared = nullptr;
  // Column names of a table in table order, for INSERT (and COPY) without a column list;
  // nullptr when unknown. Called with the table's schema ("public" when unqualified).
  std::function<const std::vector<std::string>*(std::string_view schema, std::string_view table)>
      column_order;
  // Fill RoutePlan::reason (costs a few allocations; off on the hot path).
  bool explain = false;
  // The statement's memo, or nullptr: Route() makes or remakes it as needed and routes by
  // it when it applies (never with `explain`), with the same result as planning.
  RouteMemo* memo = nullptr;
};

class Router {
 public:
  // Routes one statement. Errors are protocol::SqlError statuses:
  //   0A000 statement that cannot run correctly on the shards (the message names the fix),
  //   42P01 table not in the configuration and no default shard,
  //   22P02 / 22003 / 22P03 a shard-key value that is not valid for the key type,
  //   23502 an INSERT row whose shard key is NULL,
  //   08P01 a $n without a Bind value, 26000 EXECUTE without its prepared statement.
  static absl::StatusOr<RoutePlan> Route(const Statement& statement, const TableMap& tables,
                                         const Ring& ring, const RouteInputs& inputs);

  // Returns the ring hash of a shard-key value written as text (a hint, SET
  // pgring.shard_key, a COPY text field): HashInt8 / HashText / HashUuid of the value read
  // as PostgreSQL reads a bigint / text / uuid. 22P02 or 22003 when it is not valid.
  static absl::StatusOr<int64_t> HashKeyText(std::string_view text, conf::KeyType type);
};

}  // namespace pgring::sharding
