// Router::Route with a RouteMemo must give exactly what planning gives: every statement
// below is routed with many Bind values, once through a memo kept across the calls and
// once without, and the plans (or errors) must be equal.
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "bind_values.h"
#include "protocol/sql_error.h"
#include "sharding/analyzer.h"
#include "sharding/router.h"
#include "sharding/table_map.h"

namespace pgring::sharding {
namespace {

using conf::KeyType;
using conf::TableConfig;
using conf::TableKind;
using testing::BigEndian;
using testing::Binds;

TableConfig Table(std::string name, TableKind kind, std::string key = "",
                  KeyType type = KeyType::kInt) {
  TableConfig t;
  t.name = std::move(name);
  t.kind = kind;
  t.shard_key = std::move(key);
  t.key_type = type;
  return t;
}

std::vector<TableConfig> Tables() {
  return {Table("orders", TableKind::kSharded, "tenant_id"),
          Table("items", TableKind::kSharded, "tenant_id"),
          Table("accounts", TableKind::kSharded, "email", KeyType::kText),
          Table("sessions", TableKind::kSharded, "sid", KeyType::kUuid),
          Table("countries", TableKind::kReference)};
}

// Statements whose routing depends on their values in every way the planner knows.
constexpr std::string_view kStatements[] = {
    "SELECT * FROM orders WHERE tenant_id = $1",
    "SELECT * FROM orders WHERE tenant_id = 42",
    "SELECT * FROM orders WHERE tenant_id = $1 AND status = $2",
    "SELECT * FROM orders WHERE tenant_id = $1 AND tenant_id = $2",
    "SELECT * FROM orders WHERE tenant_id = $1 OR tenant_id = $2",
    "SELECT * FROM orders WHERE tenant_id IN ($1, $2)",
    "SELECT * FROM orders WHERE tenant_id = ANY($1)",
    "SELECT * FROM orders WHERE tenant_id = $1::int4",
    "SELECT * FROM orders WHERE tenant_id = $1::text",
    "SELECT * FROM orders WHERE tenant_id = NULL",
    "SELECT count(*), sum(amount) FROM orders WHERE tenant_id = $1",
    "SELECT * FROM orders WHERE tenant_id = $1 ORDER BY id LIMIT 10",
    "SELECT * FROM orders WHERE tenant_id = $1 FOR UPDATE",
    "SELECT * FROM orders o JOIN items i ON i.tenant_id = o.tenant_id WHERE o.tenant_id = $1",
    "SELECT * FROM orders o JOIN items i ON i.tenant_id = o.tenant_id "
    "WHERE o.tenant_id = $1 AND i.tenant_id = $2",
    "SELECT * FROM orders o JOIN items i ON i.id = o.id WHERE o.tenant_id = $1 AND i.tenant_id = $2",
    "SELECT * FROM orders a JOIN orders b ON a.tenant_id = b.tenant_id WHERE a.tenant_id = $1",
    "SELECT * FROM orders a, orders b WHERE a.tenant_id = $1",
    "SELECT * FROM orders o JOIN countries c ON c.id = o.country WHERE o.tenant_id = $1",
    "SELECT * FROM orders o JOIN unknown_table u ON u.id = o.id WHERE o.tenant_id = $1",
    "SELECT * FROM orders WHERE tenant_id = $1 AND id IN (SELECT id FROM items WHERE tenant_id = $2)",
    "SELECT * FROM countries WHERE id = $1",
    "SELECT * FROM unknown_table WHERE id = $1",
    "SELECT * FROM accounts WHERE email = $1",
    "SELECT * FROM sessions WHERE sid = $1",
    "SELECT * FROM orders",
    "/* pgring: shard_key=7 */ SELECT * FROM orders WHERE tenant_id = $1",
    "UPDATE orders SET amount = $2 WHERE tenant_id = $1",
    "UPDATE orders SET tenant_id = $2 WHERE tenant_id = $1",
    "UPDATE orders o SET amount = 1 FROM items i WHERE o.tenant_id = $1 AND i.tenant_id = $2",
    "UPDATE orders o SET amount = 1 FROM countries c WHERE o.tenant_id = $1 AND c.id = o.country",
    "UPDATE countries SET name = $2 WHERE id = $1",
    "DELETE FROM orders WHERE tenant_id = $1",
    "DELETE FROM orders WHERE tenant_id = $1 RETURNING *",
    "INSERT INTO orders (tenant_id, amount) VALUES ($1, $2)",
    "INSERT INTO orders (amount, tenant_id) VALUES ($2, $1)",
    "INSERT INTO orders (tenant_id, amount) VALUES ($1, 1), ($2, 2)",
    "INSERT INTO orders (tenant_id, amount) VALUES (DEFAULT, $1)",
    "INSERT INTO orders (tenant_id) VALUES ($1) ON CONFLICT (tenant_id) DO UPDATE SET amount = 1",
    "INSERT INTO orders (tenant_id) VALUES ($1) ON CONFLICT (tenant_id) DO UPDATE SET tenant_id = $2",
    "INSERT INTO orders (amount) VALUES ($1)",
    "INSERT INTO orders VALUES ($1, $2)",
    "INSERT INTO orders (tenant_id, amount) VALUES ($1, (SELECT max(amount) FROM items "
    "WHERE tenant_id = $2))",
    "INSERT INTO orders (tenant_id, amount) VALUES ($1, (SELECT max(amount) FROM orders "
    "WHERE tenant_id = $2))",
    "INSERT INTO orders (tenant_id) SELECT tenant_id FROM items WHERE tenant_id = $1",
    "INSERT INTO countries (id, name) VALUES ($1, $2)",
    "INSERT INTO accounts (email, name) VALUES ($1, $2)",
    "WITH x AS (SELECT * FROM orders WHERE tenant_id = $1) UPDATE items SET a = 1 "
    "WHERE tenant_id = $2",
    "WITH x AS (UPDATE countries SET name = 'n' RETURNING id) SELECT * FROM orders "
    "WHERE tenant_id = $1",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT s",
    "PREPARE TRANSACTION 'gid'",
    "SET search_path = app",
    "SET LOCAL statement_timeout = 5",
    "RESET ALL",
    "SET pgring.shard_key = 7",
    "PREPARE p (bigint) AS SELECT * FROM orders WHERE tenant_id = $1",
    "DEALLOCATE p",
    "DISCARD ALL",
    "",
    "SHOW search_path",
};

// One Bind value: mostly small integer keys (so two keys often share a shard and often do
// not), sometimes NULL, arrays, text and uuid keys, or values that are not valid keys.
void AddValue(std::mt19937& rng, Binds& v) {
  const int pick = static_cast<int>(rng() % 20);
  const auto key = [&] { return static_cast<int64_t>(rng() % 40) + 1; };
  switch (pick) {
    case 0:
      v.Null();
      break;
    case 1:
      v.Text("not a number");
      break;
    case 2:
      v.Text("99999999999999999999");
      break;
    case 3:
      v.Text("{" + std::to_string(key()) + "," + std::to_string(key()) + "}");
      break;
    case 4:
      v.Text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd38" + std::to_string(100 + key()));
      break;
    case 5:
      v.Text("user" + std::to_string(key()) + "@example.com");
      break;
    case 6:
    case 7:
      v.Binary(BigEndian(key(), 8));
      break;
    default:
      v.Text(std::to_string(key()));
      break;
  }
}

std::string Describe(const absl::StatusOr<RoutePlan>& p) {
  if (!p.ok()) {
    return "error " + std::string(protocol::SqlStateOf(p.status())) + ": " +
           std::string(protocol::MessageOf(p.status()));
  }
  std::string out = std::string(ToString(p->kind)) + " shards";
  for (ShardId s : p->shards) out += " " + std::to_string(s.value());
  out += " rows";
  for (const auto& rows : p->insert_rows) {
    out += " [";
    for (size_t r : rows) out += std::to_string(r) + ",";
    out += "]";
  }
  out += p->any_shard ? " any" : "";
  out += p->is_write ? " write" : "";
  out += p->needs_merge ? " merge" : "";
  out += p->used_hint ? " hint" : "";
  out += p->copy_split ? " copy" : "";
  return out;
}

TEST_CASE("RouteMemo: routing through a memo equals planning, for every value", "[router]") {
  auto ring = Ring::Build(RingVersion(1), {"shard-a", "shard-b", "shard-c"}, 64);
  REQUIRE(ring.ok());
  // Two maps: the memo is remade when the map changes.
  const TableMap strict(Tables(), "");
  const TableMap with_default(Tables(), "shard-b");
  std::mt19937 rng(20261206);
  int routed_without_values = 0;
  for (std::string_view sql : kStatements) {
    absl::StatusOr<Analysis> a = Analyze(sql);
    INFO(sql);
    REQUIRE(a.ok());
    REQUIRE(a->statements.size() == 1);
    const Statement& s = a->statements[0];
    RouteMemo memo;
    for (int round = 0; round < 400; ++round) {
      const TableMap& map = (round / 100) % 2 == 0 ? strict : with_default;
      Binds values;
      AddValue(rng, values);
      AddValue(rng, values);
      RouteInputs in;
      in.params = &values.params();
      if (rng() % 8 == 0) in.session_shard_key = "17";
      const absl::StatusOr<RoutePlan> planned = Router::Route(s, map, **ring, in);
      in.memo = &memo;
      const absl::StatusOr<RoutePlan> memoized = Router::Route(s, map, **ring, in);
      INFO("round " << round);
      REQUIRE(memo.tables_id == map.id());
      REQUIRE(Describe(memoized) == Describe(planned));
      if (!memo.NeedsValues(map.id())) {
        // The memo says the values decide nothing: routing without them gives the same.
        RouteInputs no_values = in;
        no_values.params = nullptr;
        REQUIRE(Describe(Router::Route(s, map, **ring, no_values)) == Describe(planned));
        ++routed_without_values;
      }
    }
  }
  CHECK(routed_without_values > 0);
}

TEST_CASE("RouteMemo: keyed statements route from their values alone", "[router]") {
  auto ring = Ring::Build(RingVersion(1), {"shard-a", "shard-b"}, 64);
  REQUIRE(ring.ok());
  const TableMap map(Tables(), "shard-a");
  const auto memo_of = [&](std::string_view sql) {
    absl::StatusOr<Analysis> a = Analyze(sql);
    REQUIRE(a.ok());
    Binds values;
    values.Text("5");
    values.Text("5");
    RouteMemo memo;
    RouteInputs in;
    in.params = &values.params();
    in.memo = &memo;
    (void)Router::Route(a->statements[0], map, **ring, in);
    return memo;
  };
  using Kind = RouteMemo::Kind;
  CHECK(memo_of("SELECT * FROM orders WHERE tenant_id = $1").kind == Kind::kKeyed);
  CHECK(memo_of("SELECT * FROM orders WHERE tenant_id = $1").sources.size() == 1);
  CHECK(memo_of("SELECT * FROM orders o JOIN items i ON i.tenant_id = o.tenant_id JOIN "
                "countries c ON c.id = o.country WHERE o.tenant_id = $1 AND i.tenant_id = $2")
            .sources.size() == 2);
  CHECK(memo_of("UPDATE orders SET amount = 1 WHERE tenant_id = $1").kind == Kind::kKeyed);
  RouteMemo insert = memo_of("INSERT INTO orders (amount, tenant_id) VALUES ($2, $1)");
  CHECK(insert.kind == Kind::kKeyed);
  CHECK(insert.insert_row);
  CHECK(memo_of("SELECT * FROM unknown_table WHERE id = $1").kind == Kind::kDefault);
  // Which memos need the Bind values (BindNow reads them only then).
  CHECK_FALSE(memo_of("SELECT * FROM unknown_table WHERE id = $1").NeedsValues(map.id()));
  CHECK_FALSE(memo_of("BEGIN").NeedsValues(map.id()));
  CHECK(memo_of("SELECT * FROM unknown_table WHERE id = $1").NeedsValues(map.id() + 1));
  CHECK(memo_of("SELECT * FROM orders WHERE tenant_id = $1").NeedsValues(map.id()));
  CHECK(memo_of("SELECT * FROM countries").NeedsValues(map.id()));
  CHECK(RouteMemo().NeedsValues(map.id()));
  CHECK(memo_of("SELECT * FROM orders WHERE tenant_id IN ($1, $2)").kind == Kind::kGeneral);
  CHECK(memo_of("SELECT * FROM countries").kind == Kind::kGeneral);
  CHECK(memo_of("/* pgring: shard_key=5 */ SELECT * FROM orders WHERE tenant_id = $1").kind ==
        Kind::kGeneral);
  CHECK(memo_of("UPDATE orders SET tenant_id = 1 WHERE tenant_id = $1").kind == Kind::kGeneral);
  CHECK(memo_of("BEGIN").kind == Kind::kSession);
  CHECK(memo_of("SET pgring.shard_key = 5").kind == Kind::kLocal);
  CHECK(memo_of("COMMIT PREPARED 'gid'").kind == Kind::kGeneral);
}

}  // namespace
}  // namespace pgring::sharding
