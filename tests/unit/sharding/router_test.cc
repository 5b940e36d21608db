#include "sharding/router.h"

#include <array>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bind_values.h"
#include "protocol/sql_error.h"
#include "sharding/analyzer.h"
#include "sharding/hash.h"
#include "sharding/table_map.h"

namespace pgring::sharding {
namespace {

using conf::KeyType;
using conf::TableConfig;
using conf::TableKind;
using Shards = ShardList;
using testing::BigEndian;
using testing::Binds;

constexpr std::string_view kUuidA = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";

TableConfig Sharded(std::string name, std::string key, KeyType type = KeyType::kInt) {
  TableConfig t;
  t.name = std::move(name);
  t.kind = TableKind::kSharded;
  t.shard_key = std::move(key);
  t.key_type = type;
  return t;
}

TableConfig Reference(std::string name) {
  TableConfig t;
  t.name = std::move(name);
  t.kind = TableKind::kReference;
  return t;
}

std::vector<TableConfig> Tables() {
  return {Sharded("orders", "tenant_id"),
          Sharded("items", "tenant_id"),
          Sharded("public.customers", "tenant_id"),
          Sharded("app.events", "tenant_id"),
          Sharded("accounts", "email", KeyType::kText),
          Sharded("sessions", "sid", KeyType::kUuid),
          Reference("countries"),
          Reference("plans")};
}

std::shared_ptr<const Ring> MakeRing(std::vector<std::string> names = {"shard-a", "shard-b",
                                                                       "shard-c"}) {
  auto ring = Ring::Build(RingVersion(1), std::move(names), 64);
  REQUIRE(ring.ok());
  return *ring;
}

void Append(std::vector<std::byte>& out, const std::vector<std::byte>& more) {
  out.insert(out.end(), more.begin(), more.end());
}

// PostgreSQL's binary array layout, one dimension. nullopt elements are NULL.
std::vector<std::byte> BinaryArray(
    uint32_t elem_oid, const std::vector<std::optional<std::vector<std::byte>>>& elems) {
  std::vector<std::byte> out;
  bool has_null = false;
  for (const auto& e : elems) has_null = has_null || !e.has_value();
  Append(out, BigEndian(1, 4));
  Append(out, BigEndian(has_null ? 1 : 0, 4));
  Append(out, BigEndian(elem_oid, 4));
  Append(out, BigEndian(static_cast<int64_t>(elems.size()), 4));
  Append(out, BigEndian(1, 4));
  for (const auto& e : elems) {
    if (!e) {
      Append(out, BigEndian(-1, 4));
      continue;
    }
    Append(out, BigEndian(static_cast<int64_t>(e->size()), 4));
    Append(out, *e);
  }
  return out;
}

std::vector<std::byte> Bytes(std::string_view s) {
  std::vector<std::byte> out;
  for (char c : s) out.push_back(static_cast<std::byte>(c));
  return out;
}

class Fixture {
 public:
  Fixture() : ring_(MakeRing()), map_(Tables(), "") {}
  explicit Fixture(std::string default_shard) : ring_(MakeRing()), map_(Tables(), default_shard) {}

  const Ring& ring() const { return *ring_; }
  const TableMap& map() const { return map_; }

  Statement One(std::string_view sql) const {
    absl::StatusOr<Analysis> a = Analyze(sql);
    INFO(sql);
    REQUIRE(a.ok());
    REQUIRE(a->statements.size() == 1);
    return a->statements[0];
  }

  absl::StatusOr<RoutePlan> Route(std::string_view sql, RouteInputs in = {}) const {
    in.explain = true;
    return Router::Route(One(sql), map_, *ring_, in);
  }

  RoutePlan Ok(std::string_view sql, RouteInputs in = {}) const {
    absl::StatusOr<RoutePlan> p = Route(sql, std::move(in));
    INFO(sql);
    INFO((p.ok() ? std::string() : std::string(protocol::MessageOf(p.status()))));
    REQUIRE(p.ok());
    return *std::move(p);
  }

  // The SQLSTATE of a rejected statement.
  std::string Fails(std::string_view sql, RouteInputs in = {}) const {
    absl::StatusOr<RoutePlan> p = Route(sql, std::move(in));
    INFO(sql);
    REQUIRE_FALSE(p.ok());
    return protocol::SqlStateOf(p.status());
  }

  std::string Message(std::string_view sql, RouteInputs in = {}) const {
    absl::StatusOr<RoutePlan> p = Route(sql, std::move(in));
    INFO(sql);
    REQUIRE_FALSE(p.ok());
    return std::string(protocol::MessageOf(p.status()));
  }

  ShardId IntOwner(int64_t k) const { return ring_->Lookup(HashInt8(k)); }
  ShardId TextOwner(std::string_view k) const { return ring_->Lookup(HashText(k)); }
  ShardId UuidOwner(std::string_view k) const {
    auto u = ParseUuid(k);
    REQUIRE(u.has_value());
    return ring_->Lookup(HashUuid(*u));
  }

  // The first positive integer key owned by `shard`, above `after`.
  int64_t KeyOn(ShardId shard, int64_t after = 0) const {
    for (int64_t k = after + 1;; ++k) {
      if (IntOwner(k) == shard) return k;
    }
  }

  Shards All() const { return {ShardId(0), ShardId(1), ShardId(2)}; }

 private:
  std::shared_ptr<const Ring> ring_;
  TableMap map_;
};

Shards Sorted(std::set<ShardId> s) { return Shards(s.begin(), s.end()); }

// ---------------------------------------------------------------------------------------
// TableMap

TEST_CASE("TableMap finds tables by folded name with public as the default schema",
          "[router][table_map]") {
  TableMap map(Tables(), "");
  const TableInfo* orders = map.Find("", "orders");
  REQUIRE(orders != nullptr);
  CHECK(orders->schema == "public");
  CHECK(orders->key_column == "tenant_id");
  CHECK(orders->key_type == KeyType::kInt);
  CHECK(map.Find("public", "orders") == orders);
  // Configured as "public.customers", found unqualified and qualified.
  CHECK(map.Find("", "customers") != nullptr);
  CHECK(map.Find("public", "customers") == map.Find("", "customers"));
  // A schema-qualified config entry is not found in public.
  CHECK(map.Find("", "events") == nullptr);
  REQUIRE(map.Find("app", "events") != nullptr);
  CHECK(map.Find("app", "events")->DisplayName() == "app.events");
  CHECK(map.Find("", "orders")->DisplayName() == "orders");
  // A quoted mixed-case name is another table in PostgreSQL.
  CHECK(map.Find("", "Orders") == nullptr);
  CHECK(map.Find("other", "orders") == nullptr);
  CHECK(map.size() == 8);
  CHECK(map.default_shard().empty());
}

TEST_CASE("TableMap cuts identifiers to 63 bytes like PostgreSQL", "[router][table_map]") {
  const std::string long_name(70, 'x');
  TableMap map({Sharded(long_name, "k")}, "");
  CHECK(map.Find("", long_name) != nullptr);
  CHECK(map.Find("", std::string(63, 'x')) != nullptr);
  CHECK(map.Find("", std::string(62, 'x')) == nullptr);
}

TEST_CASE("TableMap classifies catalogs and unknown tables; first entry wins",
          "[router][table_map]") {
  TableMap map({Sharded("orders", "tenant_id"), Reference("orders"), Reference("pg_special")},
               "shard-b");
  CHECK(map.Classify("", "orders") == TableClass::kSharded);
  CHECK(map.size() == 2);
  CHECK(map.Classify("pg_catalog", "pg_class") == TableClass::kCatalog);
  CHECK(map.Classify("information_schema", "tables") == TableClass::kCatalog);
  CHECK(map.Classify("", "pg_stat_activity") == TableClass::kCatalog);
  CHECK(map.Classify("", "pg_special") == TableClass::kReference);
  CHECK(map.Classify("app", "pg_x") == TableClass::kUnknown);
  CHECK(map.Classify("", "audit") == TableClass::kUnknown);
  CHECK(map.default_shard() == "shard-b");
}

TEST_CASE("TableMap reports the key type shared by all sharded tables", "[router][table_map]") {
  CHECK(TableMap({Sharded("a", "k"), Sharded("b", "k"), Reference("r")}, "").common_key_type() ==
        KeyType::kInt);
  CHECK_FALSE(TableMap(Tables(), "").common_key_type().has_value());
  CHECK_FALSE(TableMap({Reference("r")}, "").common_key_type().has_value());
  conf::Config config;
  config.tables = {Sharded("a", "k", KeyType::kUuid)};
  config.default_shard = "shard-a";
  TableMap from_config(config);
  CHECK(from_config.common_key_type() == KeyType::kUuid);
  CHECK(from_config.default_shard() == "shard-a");
}

// ---------------------------------------------------------------------------------------
// Literals

TEST_CASE("an integer literal routes to the owner of hashint8extended(key, 0)", "[router]") {
  Fixture f;
  RoutePlan p = f.Ok("SELECT * FROM orders WHERE tenant_id = 42");
  CHECK(p.kind == RouteKind::kSingle);
  CHECK(p.shards == Shards{f.IntOwner(42)});
  CHECK_FALSE(p.is_write);
  CHECK_FALSE(p.needs_merge);
  CHECK_FALSE(p.used_hint);
  CHECK(p.reason == "orders.tenant_id = 42 -> hash " + std::to_string(HashInt8(42)) + " -> " +
                        f.ring().shard_name(f.IntOwner(42)));
  CHECK(f.Ok("SELECT * FROM orders WHERE tenant_id = -7").shards == Shards{f.IntOwner(-7)});
  CHECK(f.Ok("SELECT * FROM orders WHERE tenant_id = 9223372036854775807").shards ==
        Shards{f.IntOwner(INT64_MAX)});
}

TEST_CASE("a quoted integer is read like PostgreSQL's implicit cast", "[router]") {
  Fixture f;
  CHECK(f.Ok("SELECT * FROM orders WHERE tenant_id = '42'").shards == Shards{f.IntOwner(42)});
  CHECK(f.Ok("SELECT * FROM orders WHERE tenant_id = '  -42 '").shards == Shards{f.IntOwner(-42)});
  CHECK(f.Ok("SELECT * FROM orders WHERE tenant_id = '5'::bigint").shards == Shards{f.IntOwner(5)});
  CHECK(f.Ok("SELECT * FROM orders WHERE tenant_id = CAST('6' AS int4)").shards ==
        Shards{f.IntOwner(6)});
  CHECK(f.Fails("SELECT * FROM orders WHERE tenant_id = '4x2'") == "22P02");
  CHECK(f.Message("SELECT * FROM orders WHERE tenant_id = '4x2'") ==
        "invalid input syntax for type bigint: \"4x2\"");
  CHECK(f.Fails("SELECT * FROM orders WHERE tenant_id = '99999999999999999999'") == "22003");
  CHECK(f.Fails("SELECT * FROM orders WHERE tenant_id = '70000'::int2") == "22003");
  CHECK(f.Fails("SELECT * FROM orders WHERE tenant_id = ''") == "22P02");
}

TEST_CASE("values pgring cannot read as a key leave the table unconstrained", "[router]") {
  Fixture f;
  for (std::string_view sql : {"SELECT * FROM orders WHERE tenant_id = 99999999999999999999",
                               "SELECT * FROM orders WHERE tenant_id = 1.5",
                               "SELECT * FROM orders WHERE tenant_id = 5::numeric",
                               "SELECT * FROM orders WHERE tenant_id IN (1, 2.5)"}) {
    RoutePlan p = f.Ok(sql);
    INFO(sql);
    CHECK(p.kind == RouteKind::kAll);
    CHECK(p.shards == f.All());
    CHECK(p.reason.find("pgring cannot read") != std::string::npos);
  }
}

TEST_CASE("text and uuid keys hash with hashtextextended and uuid_hash_extended", "[router]") {
  Fixture f;
  CHECK(f.Ok("SELECT * FROM accounts WHERE email = 'ann@example.com'").shards ==
        Shards{f.TextOwner("ann@example.com")});
  CHECK(f.Ok("SELECT * FROM accounts WHERE email = 'it''s'").shards == Shards{f.TextOwner("it's")});
  // An integer written for a text key is its decimal text.
  CHECK(f.Ok("INSERT INTO accounts (email) VALUES (42)").shards == Shards{f.TextOwner("42")});
  RoutePlan u =
      f.Ok(std::string("SELECT * FROM sessions WHERE sid = '") + std::string(kUuidA) + "'");
  CHECK(u.shards == Shards{f.UuidOwner(kUuidA)});
  // Every spelling PostgreSQL accepts is the same uuid.
  CHECK(f.Ok("SELECT * FROM sessions WHERE sid = '{A0EEBC999C0B4EF8BB6D6BB9BD380A11}'::uuid")
            .shards == u.shards);
  CHECK(f.Fails("SELECT * FROM sessions WHERE sid = 'not-a-uuid'") == "22P02");
  // An integer never equals a uuid: no routing on it.
  CHECK(f.Ok("SELECT * FROM sessions WHERE sid = 5").kind == RouteKind::kAll);
}

// ---------------------------------------------------------------------------------------
// Bind parameters

TEST_CASE("text-format parameters are read by the key type or the Parse type", "[router]") {
  Fixture f;
  Binds b;
  b.Text("1234");
  RouteInputs in;
  in.params = &b.params();
  RoutePlan p = f.Ok("SELECT * FROM orders WHERE tenant_id = $1", in);
  CHECK(p.shards == Shards{f.IntOwner(1234)});
  CHECK(p.reason.find("$1=1234") != std::string::npos);

  const std::array<uint32_t, 1> int4{23};
  in.param_types = int4;
  CHECK(f.Ok("SELECT * FROM orders WHERE tenant_id = $1", in).shards == Shards{f.IntOwner(1234)});

  Binds big;
  big.Text("3000000000");
  in.params = &big.params();
  CHECK(f.Fails("SELECT * FROM orders WHERE tenant_id = $1", in) == "22003");  // int4 range
  const std::array<uint32_t, 1> int8{20};
  in.param_types = int8;
  CHECK(f.Ok("SELECT * FROM orders WHERE tenant_id = $1", in).shards ==
        Shards{f.IntOwner(3000000000)});

  Binds text;
  text.Text("bob@example.com");
  RouteInputs tin;
  tin.params = &text.params();
  CHECK(f.Ok("SELECT * FROM accounts WHERE email = $1", tin).shards ==
        Shards{f.TextOwner("bob@example.com")});
  Binds uuid;
  uuid.Text(kUuidA);
  RouteInputs uin;
  uin.params = &uuid.params();
  CHECK(f.Ok("SELECT * FROM sessions WHERE sid = $1", uin).shards == Shards{f.UuidOwner(kUuidA)});
}

TEST_CASE("binary int2, int4 and int8 parameters with their Parse types", "[router]") {
  Fixture f;
  struct Case {
    uint32_t oid;
    int width;
    int64_t value;
  };
  for (const Case& c : {Case{21, 2, -300}, Case{23, 4, 70000}, Case{23, 4, -2147483648LL},
                        Case{20, 8, 5000000000LL}, Case{20, 8, -1}}) {
    INFO(c.oid << " " << c.value);
    Binds b;
    b.Binary(BigEndian(c.value, c.width));
    RouteInputs in;
    in.params = &b.params();
    const std::array<uint32_t, 1> types{c.oid};
    in.param_types = types;
    CHECK(f.Ok("SELECT * FROM orders WHERE tenant_id = $1", in).shards ==
          Shards{f.IntOwner(c.value)});
    // Without a Parse type the width says which integer it is.
    in.param_types = {};
    CHECK(f.Ok("SELECT * FROM orders WHERE tenant_id = $1", in).shards ==
          Shards{f.IntOwner(c.value)});
  }
}

TEST_CASE("a binary value of the wrong length is 22P03", "[router]") {
  Fixture f;
  Binds b;
  b.Binary(BigEndian(7, 4));
  RouteInputs in;
  in.params = &b.params();
  const std::array<uint32_t, 1> int8{20};
  in.param_types = int8;
  CHECK(f.Fails("SELECT * FROM orders WHERE tenant_id = $1", in) == "22P03");
  // No type, and a width no integer has.
  Binds three;
  three.Binary({std::byte{1}, std::byte{2}, std::byte{3}});
  RouteInputs in3;
  in3.params = &three.params();
  CHECK(f.Fails("SELECT * FROM orders WHERE tenant_id = $1", in3) == "22P03");
  Binds short_uuid;
  short_uuid.Binary(BigEndian(1, 8));
  RouteInputs uin;
  uin.params = &short_uuid.params();
  CHECK(f.Fails("SELECT * FROM sessions WHERE sid = $1", uin) == "22P03");
}

TEST_CASE("binary text, varchar and uuid parameters", "[router]") {
  Fixture f;
  for (uint32_t oid : {25u, 1043u, 0u}) {
    Binds b;
    b.Binary(Bytes("carol@example.com"));
    RouteInputs in;
    in.params = &b.params();
    const std::array<uint32_t, 1> types{oid};
    in.param_types = types;
    CHECK(f.Ok("SELECT * FROM accounts WHERE email = $1", in).shards ==
          Shards{f.TextOwner("carol@example.com")});
  }
  auto u = ParseUuid(kUuidA);
  REQUIRE(u.has_value());
  std::vector<std::byte> raw;
  for (uint8_t x : *u) raw.push_back(static_cast<std::byte>(x));
  Binds b;
  b.Binary(raw);
  RouteInputs in;
  in.params = &b.params();
  const std::array<uint32_t, 1> types{2950};
  in.param_types = types;
  RoutePlan p = f.Ok("SELECT * FROM sessions WHERE sid = $1", in);
  CHECK(p.shards == Shards{f.UuidOwner(kUuidA)});
  CHECK(p.reason.find(std::string(kUuidA)) != std::string::npos);
}

TEST_CASE("per-parameter format codes pick the right parameter", "[router]") {
  Fixture f;
  Binds b;
  b.Text("ignored").Binary(BigEndian(77, 8));
  RouteInputs in;
  in.params = &b.params();
  CHECK(in.params->formats == decltype(in.params->formats){0, 1});
  CHECK(f.Ok("SELECT * FROM orders WHERE note = $1 AND tenant_id = $2", in).shards ==
        Shards{f.IntOwner(77)});
}

TEST_CASE("parameters of a type that cannot hold the key do not route", "[router]") {
  Fixture f;
  Binds b;
  b.Text("5");
  RouteInputs in;
  in.params = &b.params();
  const std::array<uint32_t, 1> numeric{1700};
  in.param_types = numeric;
  CHECK(f.Ok("SELECT * FROM orders WHERE tenant_id = $1", in).kind == RouteKind::kAll);
  const std::array<uint32_t, 1> text{25};
  in.param_types = text;
  CHECK(f.Ok("SELECT * FROM orders WHERE tenant_id = $1", in).kind == RouteKind::kAll);
}

TEST_CASE("NULL keys match no row and go to one shard", "[router]") {
  Fixture f;
  Binds b;
  b.Null();
  RouteInputs in;
  in.params = &b.params();
  RoutePlan p = f.Ok("SELECT * FROM orders WHERE tenant_id = $1", in);
  CHECK(p.kind == RouteKind::kSingle);
  CHECK(p.shards == Shards{ShardId(0)});  // no default shard: the first
  CHECK(p.reason.find("no row can match") != std::string::npos);
  CHECK(f.Ok("SELECT * FROM orders WHERE tenant_id = NULL").shards == Shards{ShardId(0)});
  // With a default shard, that one.
  Fixture d("shard-c");
  CHECK(d.Ok("SELECT * FROM orders WHERE tenant_id = NULL").shards == Shards{ShardId(2)});
  // NULL inside a list is dropped.
  CHECK(f.Ok("SELECT * FROM orders WHERE tenant_id IN (NULL, 8)").shards == Shards{f.IntOwner(8)});
}

TEST_CASE("missing parameter values: unknown without a Bind, 08P01 when too few", "[router]") {
  Fixture f;
  RoutePlan p = f.Ok("SELECT * FROM orders WHERE tenant_id = $1");
  CHECK(p.kind == RouteKind::kAll);
  CHECK(p.reason.find("no parameter values") != std::string::npos);
  Binds b;
  b.Text("1");
  RouteInputs in;
  in.params = &b.params();
  CHECK(f.Fails("SELECT * FROM orders WHERE tenant_id = $2", in) == "08P01");
}

// ---------------------------------------------------------------------------------------
// IN, OR, ANY

TEST_CASE("IN lists and ORs of equalities route to every owner", "[router]") {
  Fixture f;
  const int64_t a = f.KeyOn(ShardId(0));
  const int64_t b = f.KeyOn(ShardId(1));
  const int64_t a2 = f.KeyOn(ShardId(0), a);
  RoutePlan p = f.Ok("SELECT id FROM orders WHERE tenant_id IN (" + std::to_string(a) + ", " +
                     std::to_string(b) + ")");
  CHECK(p.kind == RouteKind::kMulti);
  CHECK(p.shards == Shards{ShardId(0), ShardId(1)});
  CHECK(p.needs_merge);
  CHECK(p.reason.find("IN (") != std::string::npos);
  RoutePlan same = f.Ok("SELECT * FROM orders WHERE tenant_id = " + std::to_string(a) +
                        " OR tenant_id = " + std::to_string(a2));
  CHECK(same.kind == RouteKind::kSingle);
  CHECK(same.shards == Shards{ShardId(0)});
  CHECK_FALSE(same.needs_merge);
}

TEST_CASE("= ANY($1) with a text-format array", "[router]") {
  Fixture f;
  std::set<ShardId> want;
  for (int64_t k : {1, 2, 3, 4, 5}) want.insert(f.IntOwner(k));
  Binds b;
  b.Text("{1,2,3,4,5}");
  RouteInputs in;
  in.params = &b.params();
  RoutePlan p = f.Ok("SELECT id FROM orders WHERE tenant_id = ANY($1)", in);
  CHECK(p.shards == Sorted(want));
  CHECK(p.kind == (want.size() == 1 ? RouteKind::kSingle : RouteKind::kMulti));

  // Quotes, white space, NULL, nesting and a dimension decoration.
  Binds fancy;
  fancy.Text("[1:2][1:2]={{ \"7\" , NULL }, {  8 ,\"9\"}}");
  RouteInputs fin;
  fin.params = &fancy.params();
  CHECK(f.Ok("SELECT id FROM orders WHERE tenant_id = ANY($1)", fin).shards ==
        Sorted({f.IntOwner(7), f.IntOwner(8), f.IntOwner(9)}));

  Binds texts;
  texts.Text("{\"a b\",c\\,d,\"e\\\"f\"}");
  RouteInputs tin;
  tin.params = &texts.params();
  CHECK(f.Ok("SELECT * FROM accounts WHERE email = ANY($1)", tin).shards ==
        Sorted({f.TextOwner("a b"), f.TextOwner("c,d"), f.TextOwner("e\"f")}));

  Binds bad;
  bad.Text("{1,2");
  RouteInputs bin;
  bin.params = &bad.params();
  CHECK(f.Fails("SELECT id FROM orders WHERE tenant_id = ANY($1)", bin) == "22P02");
}

TEST_CASE("an empty array matches no row", "[router]") {
  Fixture f;
  Binds b;
  b.Text("{}");
  RouteInputs in;
  in.params = &b.params();
  RoutePlan p = f.Ok("SELECT id FROM orders WHERE tenant_id = ANY($1)", in);
  CHECK(p.kind == RouteKind::kSingle);
  CHECK(p.shards == Shards{ShardId(0)});
}

TEST_CASE("= ANY($1) with a binary array, typed by Parse or by its header", "[router]") {
  Fixture f;
  std::vector<std::optional<std::vector<std::byte>>> elems = {BigEndian(11, 8), std::nullopt,
                                                              BigEndian(12, 8), BigEndian(13, 8)};
  Binds b;
  b.Binary(BinaryArray(20, elems));
  RouteInputs in;
  in.params = &b.params();
  const Shards want = Sorted({f.IntOwner(11), f.IntOwner(12), f.IntOwner(13)});
  CHECK(f.Ok("SELECT id FROM orders WHERE tenant_id = ANY($1)", in).shards == want);
  const std::array<uint32_t, 1> int8_array{1016};
  in.param_types = int8_array;
  CHECK(f.Ok("SELECT id FROM orders WHERE tenant_id = ANY($1)", in).shards == want);

  Binds int4;
  int4.Binary(BinaryArray(23, {BigEndian(21, 4), BigEndian(22, 4)}));
  RouteInputs in4;
  in4.params = &int4.params();
  const std::array<uint32_t, 1> int4_array{1007};
  in4.param_types = int4_array;
  CHECK(f.Ok("SELECT id FROM orders WHERE tenant_id = ANY($1)", in4).shards ==
        Sorted({f.IntOwner(21), f.IntOwner(22)}));
  // The header says int4 but Parse declared int8[]: PostgreSQL rejects it too.
  in4.param_types = int8_array;
  CHECK(f.Fails("SELECT id FROM orders WHERE tenant_id = ANY($1)", in4) == "22P03");

  auto u = ParseUuid(kUuidA);
  REQUIRE(u.has_value());
  std::vector<std::byte> raw;
  for (uint8_t x : *u) raw.push_back(static_cast<std::byte>(x));
  Binds uuids;
  uuids.Binary(BinaryArray(2950, {raw}));
  RouteInputs uin;
  uin.params = &uuids.params();
  CHECK(f.Ok("SELECT * FROM sessions WHERE sid = ANY($1)", uin).shards ==
        Shards{f.UuidOwner(kUuidA)});

  Binds texts;
  texts.Binary(BinaryArray(25, {Bytes("x@y"), Bytes("z@w")}));
  RouteInputs tin;
  tin.params = &texts.params();
  CHECK(f.Ok("SELECT * FROM accounts WHERE email = ANY($1)", tin).shards ==
        Sorted({f.TextOwner("x@y"), f.TextOwner("z@w")}));
}

TEST_CASE("malformed binary arrays are 22P03, never a crash", "[router]") {
  Fixture f;
  const std::vector<std::byte> good = BinaryArray(20, {BigEndian(1, 8), BigEndian(2, 8)});
  // Every truncation of a valid array, and bytes added at the end.
  for (size_t n = 0; n < good.size(); ++n) {
    Binds b;
    b.Binary(std::vector<std::byte>(good.begin(), good.begin() + static_cast<ptrdiff_t>(n)));
    RouteInputs in;
    in.params = &b.params();
    INFO(n);
    CHECK(f.Fails("SELECT * FROM orders WHERE tenant_id = ANY($1)", in) == "22P03");
  }
  std::vector<std::byte> trailing = good;
  trailing.push_back(std::byte{0});
  Binds t;
  t.Binary(trailing);
  RouteInputs tin;
  tin.params = &t.params();
  CHECK(f.Fails("SELECT * FROM orders WHERE tenant_id = ANY($1)", tin) == "22P03");
  // A dimension claiming far more elements than the value holds.
  std::vector<std::byte> huge;
  for (int64_t v : {1, 0, 20, 0x7fffffff, 1}) Append(huge, BigEndian(v, 4));
  Binds h;
  h.Binary(huge);
  RouteInputs hin;
  hin.params = &h.params();
  CHECK(f.Fails("SELECT * FROM orders WHERE tenant_id = ANY($1)", hin) == "22P03");
  // Seven dimensions.
  std::vector<std::byte> deep;
  for (int64_t v : {7, 0, 20}) Append(deep, BigEndian(v, 4));
  Binds d;
  d.Binary(deep);
  RouteInputs din;
  din.params = &d.params();
  CHECK(f.Fails("SELECT * FROM orders WHERE tenant_id = ANY($1)", din) == "22P03");
}

TEST_CASE("array literals: '{...}'::bigint[] and ARRAY[...]", "[router]") {
  Fixture f;
  const Shards want = Sorted({f.IntOwner(31), f.IntOwner(32), f.IntOwner(33)});
  CHECK(f.Ok("SELECT * FROM orders WHERE tenant_id = ANY('{31,32,33}'::bigint[])").shards == want);
  CHECK(f.Ok("SELECT * FROM orders WHERE tenant_id = ANY(ARRAY[31, 32, 33])").shards == want);
}

// ---------------------------------------------------------------------------------------
// INSERT

TEST_CASE("a one-row INSERT goes to the key's owner", "[router]") {
  Fixture f;
  RoutePlan p = f.Ok("INSERT INTO orders (tenant_id, note) VALUES (42, 'hi')");
  CHECK(p.kind == RouteKind::kSingle);
  CHECK(p.shards == Shards{f.IntOwner(42)});
  CHECK(p.is_write);
  CHECK(p.insert_rows == std::vector<std::vector<size_t>>{{0}});
  CHECK_FALSE(p.needs_merge);
}

TEST_CASE("a multi-row INSERT is split per shard", "[router]") {
  Fixture f;
  std::vector<int64_t> keys;
  for (int64_t k = 100; k < 130; ++k) keys.push_back(k);
  std::string sql = "INSERT INTO orders (note, tenant_id) VALUES ";
  for (size_t r = 0; r < keys.size(); ++r) {
    sql += (r ? ", " : "") + std::string("('n', ") + std::to_string(keys[r]) + ")";
  }
  RoutePlan p = f.Ok(sql);
  // Expected split computed independently from the hash and the ring.
  std::vector<std::vector<size_t>> per_shard(3);
  for (size_t r = 0; r < keys.size(); ++r) {
    per_shard[f.ring().Lookup(HashInt8(keys[r])).value()].push_back(r);
  }
  Shards want_shards;
  std::vector<std::vector<size_t>> want_rows;
  for (uint32_t s = 0; s < 3; ++s) {
    if (per_shard[s].empty()) continue;
    want_shards.push_back(ShardId(s));
    want_rows.push_back(per_shard[s]);
  }
  REQUIRE(want_shards.size() == 3);  // 30 keys over 3 shards
  CHECK(p.kind == RouteKind::kMulti);
  CHECK(p.shards == want_shards);
  CHECK(p.insert_rows == want_rows);
  CHECK(p.is_write);
}

TEST_CASE("a multi-row INSERT with parameters is split by the Bind values", "[router]") {
  Fixture f;
  const int64_t a = f.KeyOn(ShardId(2));
  const int64_t b = f.KeyOn(ShardId(0));
  Binds binds;
  binds.Text(std::to_string(a)).Binary(BigEndian(b, 8)).Text(std::to_string(a));
  RouteInputs in;
  in.params = &binds.params();
  RoutePlan p =
      f.Ok("INSERT INTO orders (tenant_id, note) VALUES ($1, 'x'), ($2, 'y'), ($3, 'z')", in);
  CHECK(p.shards == Shards{ShardId(0), ShardId(2)});
  CHECK(p.insert_rows == std::vector<std::vector<size_t>>{{1}, {0, 2}});
}

TEST_CASE("INSERT without a column list needs the column order", "[router]") {
  Fixture f;
  CHECK(f.Fails("INSERT INTO orders VALUES (1, 'x')") == "0A000");
  CHECK(f.Message("INSERT INTO orders VALUES (1, 'x')")
            .starts_with("INSERT without a column list into a sharded table needs the key column "
                         "position"));
  RouteInputs in;
  std::vector<std::string> columns = {"id", "tenant_id", "note"};
  std::string seen;
  in.column_order = [&](std::string_view schema,
                        std::string_view table) -> const std::vector<std::string>* {
    seen = std::string(schema) + "." + std::string(table);
    return table == "orders" ? &columns : nullptr;
  };
  RoutePlan p = f.Ok("INSERT INTO orders VALUES (1, 55, 'x'), (2, 56, 'y')", in);
  CHECK(seen == "public.orders");
  CHECK(p.shards == Sorted({f.IntOwner(55), f.IntOwner(56)}));
  // A row shorter than the key position gives the key its DEFAULT.
  CHECK(f.Fails("INSERT INTO orders VALUES (1)", in) == "0A000");
}

TEST_CASE("INSERT rows must give a readable, non-NULL key", "[router]") {
  Fixture f;
  CHECK(f.Fails("INSERT INTO orders (tenant_id) VALUES (DEFAULT)") == "0A000");
  CHECK(f.Message("INSERT INTO orders (tenant_id) VALUES (1), (DEFAULT)")
            .starts_with("row 2 of the INSERT into orders sets shard key tenant_id to DEFAULT"));
  CHECK(f.Fails("INSERT INTO orders (tenant_id) VALUES (nextval('s'))") == "0A000");
  CHECK(f.Message("INSERT INTO orders (tenant_id) VALUES (nextval('s'))").find("an expression") !=
        std::string::npos);
  CHECK(f.Fails("INSERT INTO orders (tenant_id) VALUES (1.5)") == "0A000");
  CHECK(f.Fails("INSERT INTO orders (tenant_id) VALUES (NULL)") == "23502");
  Binds b;
  b.Null();
  RouteInputs in;
  in.params = &b.params();
  CHECK(f.Fails("INSERT INTO orders (tenant_id) VALUES ($1)", in) == "23502");
  CHECK(f.Fails("INSERT INTO orders (note) VALUES ('no key')") == "0A000");
  CHECK(f.Message("INSERT INTO orders (note) VALUES ('no key')")
            .starts_with("INSERT into orders does not set its shard key tenant_id"));
  CHECK(f.Fails("INSERT INTO orders DEFAULT VALUES") == "0A000");
  CHECK(f.Fails("INSERT INTO orders (tenant_id) VALUES ('abc')") == "22P02");
  // A hint does not place a row whose key pgring cannot see.
  CHECK(f.Fails("/* pgring: shard_key=5 */ INSERT INTO orders (tenant_id) VALUES (DEFAULT)") ==
        "0A000");
}

TEST_CASE("INSERT with text and uuid keys", "[router]") {
  Fixture f;
  RoutePlan p = f.Ok(std::string("INSERT INTO sessions (sid, data) VALUES ('") +
                     std::string(kUuidA) + "', 'x')");
  CHECK(p.shards == Shards{f.UuidOwner(kUuidA)});
  CHECK(f.Ok("INSERT INTO accounts (email) VALUES ('d@e'), ('f@g')").shards ==
        Sorted({f.TextOwner("d@e"), f.TextOwner("f@g")}));
}

TEST_CASE("ON CONFLICT DO UPDATE may not change the shard key", "[router]") {
  Fixture f;
  CHECK(f.Ok("INSERT INTO orders (tenant_id, n) VALUES (1, 2) ON CONFLICT (tenant_id) DO UPDATE "
             "SET n = EXCLUDED.n")
            .shards == Shards{f.IntOwner(1)});
  CHECK(f.Fails("INSERT INTO orders (tenant_id, n) VALUES (1, 2) ON CONFLICT (n) DO UPDATE SET "
                "tenant_id = EXCLUDED.tenant_id") == "0A000");
}

TEST_CASE("INSERT ... SELECT runs on one shard only when the SELECT is limited to it", "[router]") {
  Fixture f;
  RoutePlan p = f.Ok(
      "INSERT INTO items (tenant_id, v) SELECT tenant_id, v FROM orders "
      "WHERE tenant_id = 9");
  CHECK(p.kind == RouteKind::kSingle);
  CHECK(p.shards == Shards{f.IntOwner(9)});
  CHECK(p.is_write);
  CHECK(p.insert_rows.empty());

  CHECK(f.Fails("INSERT INTO items (tenant_id, v) SELECT tenant_id, v FROM orders") == "0A000");
  CHECK(f.Message("INSERT INTO items (tenant_id, v) SELECT tenant_id, v FROM orders")
            .starts_with("INSERT ... SELECT into sharded table items must read co-located"));
  CHECK(f.Fails("INSERT INTO items (tenant_id) SELECT 5") == "0A000");
  CHECK(f.Fails("INSERT INTO items (tenant_id) SELECT id FROM countries") == "0A000");
  // Key values of another type never share a shard.
  CHECK(f.Fails("INSERT INTO items (tenant_id) SELECT 1 FROM accounts WHERE email = 'a'") ==
        "0A000");
  // With a hint the user states which shard the rows belong to.
  RoutePlan h = f.Ok("/* pgring: shard_key=12 */ INSERT INTO items (tenant_id) SELECT 12");
  CHECK(h.shards == Shards{f.IntOwner(12)});
  CHECK(h.used_hint);
}

// ---------------------------------------------------------------------------------------
// UPDATE, DELETE

TEST_CASE("UPDATE of the shard key is rejected", "[router]") {
  Fixture f;
  const std::string sql = "UPDATE orders SET tenant_id = 4 WHERE tenant_id = 3";
  CHECK(f.Fails(sql) == "0A000");
  CHECK(f.Message(sql) ==
        "changing the shard key of a row is not supported; delete and insert the row instead");
  absl::StatusOr<RoutePlan> p = f.Route(sql);
  CHECK(protocol::HintOf(p.status()).find("orders.tenant_id") != std::string::npos);
  CHECK(f.Fails("UPDATE orders o SET (note, tenant_id) = ('x', 1)") == "0A000");
  // Another table's column of the same name is fine.
  CHECK(f.Ok("UPDATE plans SET tenant_id = 1").kind == RouteKind::kAll);
}

TEST_CASE("UPDATE and DELETE by key go to the owner; without a key to every shard", "[router]") {
  Fixture f;
  RoutePlan u = f.Ok("UPDATE orders SET note = 'x' WHERE tenant_id = 17 AND id = 3");
  CHECK(u.kind == RouteKind::kSingle);
  CHECK(u.shards == Shards{f.IntOwner(17)});
  CHECK(u.is_write);
  RoutePlan all = f.Ok("UPDATE orders SET note = 'x' WHERE id = 3 RETURNING id");
  CHECK(all.kind == RouteKind::kAll);
  CHECK(all.shards == f.All());
  CHECK(all.is_write);
  CHECK_FALSE(all.needs_merge);
  RoutePlan d = f.Ok(
      "DELETE FROM items i USING orders o WHERE i.tenant_id = o.tenant_id AND "
      "o.tenant_id = 18 AND i.order_id = o.id");
  CHECK(d.shards == Shards{f.IntOwner(18)});
  CHECK(d.is_write);
  CHECK(f.Ok("DELETE FROM orders").kind == RouteKind::kAll);
}

// ---------------------------------------------------------------------------------------
// Joins and co-location

TEST_CASE("joins on the shard keys are co-located", "[router]") {
  Fixture f;
  RoutePlan keyed = f.Ok(
      "SELECT o.id, i.id FROM orders o JOIN items i ON o.tenant_id = "
      "i.tenant_id AND o.id = i.order_id WHERE o.tenant_id = 5");
  CHECK(keyed.kind == RouteKind::kSingle);
  CHECK(keyed.shards == Shards{f.IntOwner(5)});
  RoutePlan scatter = f.Ok("SELECT o.id, i.id FROM orders o JOIN items i USING (tenant_id)");
  CHECK(scatter.kind == RouteKind::kAll);
  CHECK(scatter.needs_merge);
  CHECK(f.Ok("SELECT count(*) FROM orders o, items i, customers c WHERE o.tenant_id = "
             "i.tenant_id AND c.tenant_id = i.tenant_id")
            .kind == RouteKind::kAll);
}

TEST_CASE("joins that are not on the shard keys are rejected", "[router]") {
  Fixture f;
  const std::string sql = "SELECT * FROM orders o JOIN customers c ON o.customer_id = c.id";
  CHECK(f.Fails(sql) == "0A000");
  const std::string msg = f.Message(sql);
  CHECK(msg.find("orders") != std::string::npos);
  CHECK(msg.find("customers") != std::string::npos);
  absl::StatusOr<RoutePlan> p = f.Route(sql);
  const std::string hint = protocol::HintOf(p.status());
  CHECK(hint.find("orders.tenant_id = customers.tenant_id") != std::string::npos);
  CHECK(hint.find("shard_key") != std::string::npos);
  // Only one side limited: the other side's rows may be anywhere.
  CHECK(f.Fails("SELECT * FROM orders o JOIN customers c ON o.customer_id = c.id WHERE "
                "o.tenant_id = 1") == "0A000");
  // Keys of different types.
  CHECK(f.Message("SELECT * FROM orders o JOIN accounts a ON o.tenant_id = a.email")
            .find("different types") != std::string::npos);
}

TEST_CASE("tables limited to the same shard may join on anything", "[router]") {
  Fixture f;
  const int64_t a = f.KeyOn(ShardId(1));
  const int64_t b = f.KeyOn(ShardId(1), a);
  const int64_t c = f.KeyOn(ShardId(2));
  RoutePlan p = f.Ok(
      "SELECT * FROM orders o JOIN customers c ON o.customer_id = c.id WHERE "
      "o.tenant_id = " +
      std::to_string(a) + " AND c.tenant_id = " + std::to_string(b));
  CHECK(p.kind == RouteKind::kSingle);
  CHECK(p.shards == Shards{ShardId(1)});
  CHECK(f.Fails("SELECT * FROM orders o JOIN customers c ON o.customer_id = c.id WHERE "
                "o.tenant_id = " +
                std::to_string(a) + " AND c.tenant_id = " + std::to_string(c)) == "0A000");
}

TEST_CASE("reference tables join anything", "[router]") {
  Fixture f;
  RoutePlan p = f.Ok(
      "SELECT * FROM orders o JOIN countries c ON o.country = c.code WHERE "
      "o.tenant_id = 3");
  CHECK(p.shards == Shards{f.IntOwner(3)});
  CHECK(f.Ok("SELECT o.id FROM orders o JOIN plans p ON o.plan = p.id").kind == RouteKind::kAll);
  CHECK(f.Ok("SELECT * FROM orders WHERE plan IN (SELECT id FROM plans)").kind == RouteKind::kAll);
}

TEST_CASE("a self-join must be on the shard key", "[router]") {
  Fixture f;
  CHECK(f.Fails("SELECT * FROM orders a JOIN orders b ON a.parent = b.id") == "0A000");
  CHECK(f.Message("SELECT * FROM orders a JOIN orders b ON a.parent = b.id").find("used twice") !=
        std::string::npos);
  CHECK(f.Ok("SELECT * FROM orders a JOIN orders b ON a.tenant_id = b.tenant_id AND a.parent = "
             "b.id")
            .kind == RouteKind::kAll);
  CHECK(f.Ok("SELECT * FROM orders a JOIN orders b ON a.parent = b.id WHERE a.tenant_id = 1 AND "
             "b.tenant_id = 1")
            .kind == RouteKind::kSingle);
}

TEST_CASE("subqueries follow the same co-location rule", "[router]") {
  Fixture f;
  CHECK(f.Fails("SELECT * FROM orders WHERE customer_id IN (SELECT id FROM customers)") == "0A000");
  CHECK(f.Fails("SELECT *, (SELECT max(total) FROM items) FROM orders") == "0A000");
  CHECK(f.Ok("SELECT * FROM orders WHERE tenant_id = 3 AND customer_id IN (SELECT id FROM "
             "customers WHERE tenant_id = 3)")
            .kind == RouteKind::kSingle);
  CHECK(f.Ok("SELECT * FROM orders o WHERE EXISTS (SELECT 1 FROM items i WHERE i.tenant_id = "
             "o.tenant_id AND i.order_id = o.id)")
            .kind == RouteKind::kAll);
}

TEST_CASE("a one-shard ring co-locates everything", "[router]") {
  auto ring = MakeRing({"only"});
  TableMap map(Tables(), "");
  auto s = Analyze("SELECT * FROM orders o JOIN customers c ON o.customer_id = c.id");
  REQUIRE(s.ok());
  absl::StatusOr<RoutePlan> p = Router::Route(s->statements[0], map, *ring, {});
  REQUIRE(p.ok());
  CHECK(p->shards == Shards{ShardId(0)});
}

// ---------------------------------------------------------------------------------------
// Scatter-gather reads

TEST_CASE("a read without a key goes to every shard with its merge facts", "[router]") {
  Fixture f;
  RoutePlan p = f.Ok(
      "SELECT status, count(*), sum(total), avg(total) FROM orders GROUP BY "
      "status ORDER BY 2 DESC LIMIT 10 OFFSET 5");
  CHECK(p.kind == RouteKind::kAll);
  CHECK(p.shards == f.All());
  CHECK_FALSE(p.is_write);
  CHECK(p.needs_merge);
  CHECK(p.merge.has_aggregates);
  CHECK(p.merge.has_group_by);
  CHECK(p.merge.limit == std::optional<int64_t>(10));
  CHECK(p.merge.offset == std::optional<int64_t>(5));
  REQUIRE(p.merge.order_by.size() == 1);
  CHECK(p.merge.order_by[0].position == 2);
  CHECK(p.merge.order_by[0].descending);
  REQUIRE(p.merge.targets.size() == 4);
  CHECK(p.merge.targets[3].aggregate == AggregateFunc::kAvg);
  CHECK(p.reason.find("no condition on shard key tenant_id") != std::string::npos);
  CHECK(p.reason.find("(results merged)") != std::string::npos);

  // SELECT * ... ORDER BY a column: the column is in the output.
  RoutePlan star = f.Ok("SELECT * FROM orders ORDER BY created_at DESC LIMIT 10");
  CHECK(star.needs_merge);
  REQUIRE(star.merge.order_by.size() == 1);
  CHECK(star.merge.order_by[0].position == 0);
  CHECK(star.merge.order_by[0].text == "created_at");
  CHECK(f.Fails("SELECT * FROM orders ORDER BY lower(note)") == "0A000");

  RoutePlan d = f.Ok("SELECT DISTINCT status FROM orders LIMIT $1");
  CHECK(d.merge.has_distinct);
  CHECK(d.merge.limit_param == 1);
  CHECK(f.Ok("SELECT * FROM orders FOR UPDATE").kind == RouteKind::kAll);
}

TEST_CASE("results that cannot be merged exactly are rejected across shards", "[router]") {
  Fixture f;
  const std::vector<std::string> rejected = {
      "SELECT id, row_number() OVER () FROM orders",
      "SELECT status, count(*) FROM orders GROUP BY status HAVING count(*) > 1",
      "SELECT DISTINCT ON (status) status, id FROM orders ORDER BY status, id",
      "SELECT count(DISTINCT customer_id) FROM orders",
      "SELECT string_agg(note, ',') FROM orders",
      "SELECT DISTINCT count(*) FROM orders GROUP BY status",
      "SELECT id FROM orders ORDER BY created_at",
      "SELECT sum(total) / count(*) FROM orders",
      "SELECT id FROM orders ORDER BY id USING <",
      "SELECT id FROM orders ORDER BY id FETCH FIRST 3 ROWS WITH TIES",
      "SELECT count(*) FROM orders GROUP BY status",
      "SELECT id FROM plans UNION ALL SELECT id FROM orders",
  };
  for (const std::string& sql : rejected) {
    INFO(sql);
    CHECK(f.Fails(sql) == "0A000");
    CHECK(f.Message(sql).find("cannot merge across shards") != std::string::npos);
    // On one shard nothing needs merging.
    const std::string keyed = sql.find("ORDER BY") != std::string::npos
                                  ? sql.substr(0, sql.find("ORDER BY")) + "WHERE tenant_id = 1 " +
                                        sql.substr(sql.find("ORDER BY"))
                              : sql.find("GROUP BY") != std::string::npos
                                  ? sql.substr(0, sql.find("GROUP BY")) + "WHERE tenant_id = 1 " +
                                        sql.substr(sql.find("GROUP BY"))
                                  : sql + " WHERE tenant_id = 1";
    INFO(keyed);
    CHECK(f.Ok(keyed).kind == RouteKind::kSingle);
  }
  // avg, count/sum/min/max with FILTER, plain DISTINCT are merged.
  CHECK(f.Ok("SELECT avg(total), min(total), max(total), count(*) FILTER (WHERE total > 0) FROM "
             "orders")
            .needs_merge);
}

// ---------------------------------------------------------------------------------------
// Reference tables, catalogs, unknown tables

TEST_CASE("reference reads go to one shard, writes to all", "[router]") {
  Fixture f;
  RoutePlan r = f.Ok("SELECT * FROM countries WHERE code = 'de'");
  CHECK(r.kind == RouteKind::kSingle);
  CHECK(r.shards == Shards{ShardId(0)});
  CHECK(r.any_shard);
  CHECK_FALSE(r.is_write);
  Fixture d("shard-b");
  CHECK(d.Ok("SELECT * FROM countries c JOIN plans p ON c.id = p.country").shards ==
        Shards{ShardId(1)});

  for (std::string_view sql : {"INSERT INTO countries (code) VALUES ('fr'), ('it')",
                               "UPDATE countries SET name = 'x' WHERE code = 'fr'",
                               "DELETE FROM plans", "COPY countries FROM STDIN"}) {
    INFO(sql);
    RoutePlan w = f.Ok(sql);
    CHECK(w.kind == RouteKind::kAll);
    CHECK(w.shards == f.All());
    CHECK(w.is_write);
    CHECK(w.insert_rows.empty());
  }
}

TEST_CASE("a reference write may not read sharded rows", "[router]") {
  Fixture f;
  CHECK(f.Fails("INSERT INTO plans (id) SELECT plan FROM orders") == "0A000");
  CHECK(f.Message("UPDATE plans p SET n = o.n FROM orders o WHERE o.plan = p.id")
            .find("would diverge") != std::string::npos);
  // A WITH query hides which table is written.
  CHECK(f.Fails("WITH p AS (SELECT id FROM plans) UPDATE orders SET plan = 1 WHERE tenant_id = 1 "
                "AND plan IN (SELECT id FROM p)") == "0A000");
  CHECK(f.Ok("WITH p AS (SELECT id FROM plans) UPDATE plans SET n = 1 WHERE id IN (SELECT id "
             "FROM p)")
            .kind == RouteKind::kAll);
}

TEST_CASE("locks on reference tables go to one fixed shard", "[router]") {
  Fixture f("shard-c");
  RoutePlan p = f.Ok("SELECT * FROM plans WHERE id = 1 FOR UPDATE");
  CHECK(p.shards == Shards{ShardId(2)});
  CHECK_FALSE(p.any_shard);
  RoutePlan l = f.Ok("LOCK TABLE plans IN EXCLUSIVE MODE");
  CHECK(l.shards == Shards{ShardId(2)});
  CHECK_FALSE(l.any_shard);
  CHECK(f.Ok("LOCK TABLE orders").kind == RouteKind::kAll);
}

TEST_CASE("catalog queries run on any one shard", "[router]") {
  Fixture f;
  for (std::string_view sql :
       {"SELECT relname FROM pg_catalog.pg_class", "SELECT * FROM information_schema.tables",
        "SELECT * FROM pg_stat_activity"}) {
    INFO(sql);
    RoutePlan p = f.Ok(sql);
    CHECK(p.kind == RouteKind::kSingle);
    CHECK(p.any_shard);
  }
}

TEST_CASE("unknown tables: 42P01 without a default shard, else the default shard", "[router]") {
  Fixture f;
  CHECK(f.Fails("SELECT * FROM audit") == "42P01");
  CHECK(f.Message("SELECT * FROM audit") ==
        "table audit is not in the pgring configuration; add it under tables: or set "
        "default_shard");
  CHECK(f.Fails("SELECT * FROM \"Orders\"") == "42P01");
  CHECK(f.Fails("SELECT * FROM other.orders") == "42P01");

  Fixture d("shard-b");
  RoutePlan p = d.Ok("SELECT * FROM audit WHERE x = 1");
  CHECK(p.kind == RouteKind::kDefault);
  CHECK(p.shards == Shards{ShardId(1)});
  CHECK_FALSE(p.any_shard);
  RoutePlan w = d.Ok("INSERT INTO audit VALUES (1)");
  CHECK(w.kind == RouteKind::kDefault);
  CHECK(w.is_write);
  // With a sharded table: only keys of the default shard.
  const int64_t on_b = d.KeyOn(ShardId(1));
  const int64_t on_a = d.KeyOn(ShardId(0));
  CHECK(d.Ok("SELECT * FROM audit a JOIN orders o ON a.id = o.id WHERE o.tenant_id = " +
             std::to_string(on_b))
            .shards == Shards{ShardId(1)});
  CHECK(d.Fails("SELECT * FROM audit a JOIN orders o ON a.id = o.id WHERE o.tenant_id = " +
                std::to_string(on_a)) == "0A000");
  CHECK(d.Message("SELECT * FROM audit a JOIN orders o ON a.id = o.id")
            .find("lives only on the default shard shard-b") != std::string::npos);
}

TEST_CASE("routing without explain text plans as routing with it", "[router]") {
  // The hot path (explain off) takes short cuts, e.g. for statements that name only
  // unconfigured tables; the plans must not differ from the general path's.
  for (std::string default_shard : {"", "shard-b"}) {
    Fixture f(default_shard);
    for (std::string_view sql :
         {"SELECT * FROM audit WHERE x = 1", "INSERT INTO audit VALUES (1)",
          "UPDATE audit SET tenant_id = 3 WHERE id = 1", "DELETE FROM audit",
          "/* pgring: shard_key=7 */ SELECT * FROM audit", "SELECT * FROM audit a, log l",
          "SELECT * FROM audit a JOIN orders o ON a.id = o.id WHERE o.tenant_id = 1",
          "SELECT * FROM audit a JOIN countries c ON a.c = c.id", "SELECT * FROM pg_class",
          "SELECT * FROM audit WHERE id IN (SELECT id FROM pg_class)", "SELECT 1",
          "WITH a AS (SELECT * FROM audit) SELECT * FROM a",
          "INSERT INTO audit SELECT * FROM orders WHERE tenant_id = 2",
          "SELECT * FROM orders WHERE tenant_id = 5", "LOCK TABLE audit"}) {
      INFO(sql << " (default shard \"" << default_shard << "\")");
      const Statement st = f.One(sql);
      RouteInputs fast;
      RouteInputs explained;
      explained.explain = true;
      for (std::optional<std::string_view> session_key :
           {std::optional<std::string_view>(), std::optional<std::string_view>("9")}) {
        fast.session_shard_key = explained.session_shard_key = session_key;
        absl::StatusOr<RoutePlan> a = Router::Route(st, f.map(), f.ring(), fast);
        absl::StatusOr<RoutePlan> b = Router::Route(st, f.map(), f.ring(), explained);
        REQUIRE(a.ok() == b.ok());
        if (!a.ok()) {
          CHECK(a.status() == b.status());
          continue;
        }
        CHECK(a->kind == b->kind);
        CHECK(a->shards == b->shards);
        CHECK(a->is_write == b->is_write);
        CHECK(a->any_shard == b->any_shard);
        CHECK(a->used_hint == b->used_hint);
        CHECK(a->needs_merge == b->needs_merge);
        CHECK(a->insert_rows == b->insert_rows);
        CHECK(a->reason.empty());
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// DDL, session, local, misc statements

TEST_CASE("DDL runs on every shard", "[router]") {
  Fixture f;
  for (std::string_view sql :
       {"CREATE TABLE orders (tenant_id bigint, id bigint)", "ALTER TABLE orders ADD COLUMN x int",
        "CREATE INDEX CONCURRENTLY oi ON orders (id)", "TRUNCATE orders, countries",
        "DROP TABLE IF EXISTS audit", "CREATE SCHEMA app"}) {
    INFO(sql);
    RoutePlan p = f.Ok(sql);
    CHECK(p.kind == RouteKind::kAll);
    CHECK(p.shards == f.All());
    CHECK(p.is_write);
  }
}

TEST_CASE("session commands apply to every connection; pgring settings are local", "[router]") {
  Fixture f;
  for (std::string_view sql :
       {"SET search_path = app", "SET LOCAL statement_timeout = 5", "RESET ALL", "BEGIN", "COMMIT",
        "ROLLBACK", "SAVEPOINT s", "RELEASE SAVEPOINT s", "ROLLBACK TO SAVEPOINT s", "DISCARD ALL",
        "DEALLOCATE ALL", "PREPARE p AS SELECT * FROM orders WHERE tenant_id = $1",
        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"}) {
    INFO(sql);
    RoutePlan p = f.Ok(sql);
    CHECK(p.kind == RouteKind::kSession);
    CHECK(p.shards.empty());
  }
  for (std::string_view sql :
       {"SET pgring.shard_key = '42'", "RESET pgring.shard_key", "SHOW pgring.shard_key", ""}) {
    INFO(sql);
    CHECK(f.Ok(sql).kind == RouteKind::kLocal);
  }
  RoutePlan show = f.Ok("SHOW search_path");
  CHECK(show.kind == RouteKind::kDefault);
  CHECK(show.any_shard);
  for (std::string_view sql :
       {"PREPARE TRANSACTION 'g'", "COMMIT PREPARED 'g'", "ROLLBACK PREPARED 'g'"}) {
    INFO(sql);
    CHECK(f.Fails(sql) == "0A000");
  }
}

TEST_CASE("statements without tables go to the default shard", "[router]") {
  Fixture f("shard-b");
  RoutePlan one = f.Ok("SELECT 1");
  CHECK(one.kind == RouteKind::kDefault);
  CHECK(one.shards == Shards{ShardId(1)});
  CHECK(one.any_shard);
  RoutePlan lock = f.Ok("SELECT pg_advisory_lock(7)");
  CHECK(lock.kind == RouteKind::kDefault);
  CHECK_FALSE(lock.any_shard);  // lockers must meet on one server
  for (std::string_view sql :
       {"LISTEN jobs", "NOTIFY jobs", "CALL refresh()", "DO $$ BEGIN END $$"}) {
    INFO(sql);
    RoutePlan p = f.Ok(sql);
    CHECK(p.kind == RouteKind::kDefault);
    CHECK(p.shards == Shards{ShardId(1)});
    CHECK_FALSE(p.any_shard);
  }
  CHECK(f.Ok("FETCH 10 FROM c").kind == RouteKind::kSession);
  CHECK(f.Ok("SELECT 1").is_write == false);
  CHECK(f.Ok("CALL refresh()").is_write);
}

TEST_CASE("a cursor may not span shards", "[router]") {
  Fixture f;
  CHECK(f.Fails("DECLARE c CURSOR FOR SELECT * FROM orders") == "0A000");
  // The analyzer names a cursor query's tables but not its conditions: a hint pins it.
  CHECK(f.Fails("DECLARE c CURSOR FOR SELECT * FROM orders WHERE tenant_id = 2") == "0A000");
  CHECK(f.Ok("/* pgring: shard_key=2 */ DECLARE c CURSOR FOR SELECT * FROM orders").shards ==
        Shards{f.IntOwner(2)});
  CHECK(f.Ok("DECLARE c CURSOR FOR SELECT * FROM countries").shards.size() == 1);
}

// ---------------------------------------------------------------------------------------
// Hints

TEST_CASE("a comment hint pins a statement without a key", "[router]") {
  Fixture f;
  RoutePlan p = f.Ok("/* pgring: shard_key=42 */ SELECT id, row_number() OVER () FROM orders");
  CHECK(p.kind == RouteKind::kSingle);
  CHECK(p.shards == Shards{f.IntOwner(42)});
  CHECK(p.used_hint);
  CHECK_FALSE(p.needs_merge);
  CHECK(p.reason.find("hint shard_key=42 (statement comment)") != std::string::npos);
  // A join that is not co-located runs where the hint says.
  CHECK(f.Ok("/* pgring: shard_key=42 */ SELECT * FROM orders o JOIN customers c ON "
             "o.customer_id = c.id")
            .shards == Shards{f.IntOwner(42)});
}

TEST_CASE("the session hint pins writes and reads; the comment wins over it", "[router]") {
  Fixture f;
  RouteInputs in;
  in.session_shard_key = "77";
  RoutePlan u = f.Ok("UPDATE orders SET note = 'x'", in);
  CHECK(u.kind == RouteKind::kSingle);
  CHECK(u.shards == Shards{f.IntOwner(77)});
  CHECK(u.is_write);
  CHECK(u.used_hint);
  CHECK(u.reason.find("SET pgring.shard_key") != std::string::npos);
  CHECK(f.Ok("/* pgring: shard_key=5 */ SELECT * FROM orders", in).shards == Shards{f.IntOwner(5)});
  // Reference reads follow the session hint, so a pinned session stays on one shard.
  CHECK(f.Ok("SELECT * FROM countries", in).shards == Shards{f.IntOwner(77)});
  CHECK(f.Ok("SELECT now()", in).shards == Shards{f.IntOwner(77)});
  // Reference writes still go everywhere, DDL too.
  CHECK(f.Ok("DELETE FROM countries", in).kind == RouteKind::kAll);
  CHECK(f.Ok("CREATE INDEX x ON orders (id)", in).kind == RouteKind::kAll);
}

TEST_CASE("keys in the statement win over a hint; a contradicting pin is rejected", "[router]") {
  Fixture f;
  const int64_t a = f.KeyOn(ShardId(0));
  const int64_t b = f.KeyOn(ShardId(1));
  RouteInputs in;
  const std::string hint = std::to_string(a);
  in.session_shard_key = hint;
  RoutePlan p = f.Ok("SELECT * FROM orders WHERE tenant_id = " + std::to_string(b), in);
  CHECK(p.shards == Shards{ShardId(1)});
  CHECK_FALSE(p.used_hint);
  CHECK(p.reason.find("ignored") != std::string::npos);
  // The hint is needed (join not on keys) but the key says another shard.
  CHECK(f.Fails("SELECT * FROM orders o JOIN customers c ON o.customer_id = c.id WHERE "
                "o.tenant_id = " +
                    std::to_string(b),
                in) == "0A000");
  CHECK(f.Ok("SELECT * FROM orders o JOIN customers c ON o.customer_id = c.id WHERE "
             "o.tenant_id = " +
                 std::to_string(a),
             in)
            .shards == Shards{ShardId(0)});
}

TEST_CASE("hints are read with the key type of the statement's tables", "[router]") {
  Fixture f;
  CHECK(f.Ok("/* pgring: shard_key='ann@x' */ SELECT * FROM accounts").shards ==
        Shards{f.TextOwner("ann@x")});
  CHECK(f.Ok(std::string("/* pgring: shard_key=") + std::string(kUuidA) +
             " */ SELECT * FROM sessions")
            .shards == Shards{f.UuidOwner(kUuidA)});
  // Mixed key types: read as an integer.
  CHECK(f.Ok("/* pgring: shard_key=9 */ SELECT * FROM orders o, accounts a").shards ==
        Shards{f.IntOwner(9)});
  CHECK(f.Fails("/* pgring: shard_key=abc */ SELECT * FROM orders") == "22P02");
  // No sharded table types the hint and the configuration mixes key types: a session hint
  // that is no integer is ignored there, a comment hint is an error.
  RouteInputs in;
  in.session_shard_key = "ann@x";
  RoutePlan ref = f.Ok("SELECT * FROM countries", in);
  CHECK_FALSE(ref.used_hint);
  CHECK(ref.any_shard);
  CHECK(f.Ok("SELECT 1", in).kind == RouteKind::kDefault);
  CHECK(f.Ok("SELECT * FROM accounts", in).shards == Shards{f.TextOwner("ann@x")});
  CHECK(f.Fails("/* pgring: shard_key=ann@x */ SELECT 1") == "22P02");
  CHECK(f.Message("/* pgring: shard_key=abc */ SELECT * FROM orders")
            .starts_with("invalid shard-key hint from statement comment"));
}

// ---------------------------------------------------------------------------------------
// EXECUTE, EXPLAIN, COPY

TEST_CASE("EXECUTE routes the prepared statement with its arguments", "[router]") {
  Fixture f;
  Statement prepared = f.One("PREPARE p AS SELECT * FROM orders WHERE tenant_id = $1");
  REQUIRE(prepared.inner != nullptr);
  RouteInputs in;
  in.prepared = prepared.inner.get();
  RoutePlan p = f.Ok("EXECUTE p(314)", in);
  CHECK(p.shards == Shards{f.IntOwner(314)});
  CHECK(p.reason.starts_with("EXECUTE p: "));
  // An argument may itself be a Bind parameter.
  Binds b;
  b.Text("271");
  in.params = &b.params();
  CHECK(f.Ok("EXECUTE p($1)", in).shards == Shards{f.IntOwner(271)});
  CHECK(f.Fails("EXECUTE p", in) == "42601");
  CHECK(f.Fails("EXECUTE p(1)") == "26000");
}

TEST_CASE("EXPLAIN shows one shard's plan; EXPLAIN ANALYZE must stay on one shard", "[router]") {
  Fixture f;
  RoutePlan p = f.Ok("EXPLAIN SELECT * FROM orders");
  CHECK(p.kind == RouteKind::kSingle);
  CHECK(p.shards.size() == 1);
  CHECK_FALSE(p.needs_merge);
  CHECK(f.Ok("EXPLAIN DELETE FROM orders").is_write == false);
  CHECK(f.Fails("EXPLAIN ANALYZE DELETE FROM orders") == "0A000");
  RoutePlan a = f.Ok("EXPLAIN ANALYZE DELETE FROM orders WHERE tenant_id = 4");
  CHECK(a.shards == Shards{f.IntOwner(4)});
  CHECK(a.is_write);
}

TEST_CASE("COPY FROM STDIN into a sharded table is split by the key field", "[router]") {
  Fixture f;
  RoutePlan p = f.Ok("COPY orders (note, tenant_id) FROM STDIN WITH (FORMAT csv)");
  CHECK(p.kind == RouteKind::kAll);
  CHECK(p.is_write);
  REQUIRE(p.copy_split.has_value());
  CHECK(p.copy_split->key_index == 1);
  CHECK(p.copy_split->key_column == "tenant_id");
  CHECK(p.copy_split->key_type == KeyType::kInt);
  CHECK(f.Fails("COPY orders FROM STDIN") == "0A000");
  RouteInputs in;
  std::vector<std::string> columns = {"id", "note", "x", "tenant_id"};
  in.column_order = [&](std::string_view, std::string_view) { return &columns; };
  CHECK(f.Ok("COPY orders FROM STDIN", in).copy_split->key_index == 3);
  CHECK(f.Fails("COPY orders FROM '/tmp/x'") == "0A000");
  CHECK(f.Fails("COPY orders TO PROGRAM 'cat'") == "0A000");
  RoutePlan out = f.Ok("COPY orders TO STDOUT");
  CHECK(out.kind == RouteKind::kAll);
  CHECK_FALSE(out.needs_merge);
  RoutePlan ref = f.Ok("COPY countries TO STDOUT");
  CHECK(ref.kind == RouteKind::kSingle);
  CHECK(ref.any_shard);
  CHECK(f.Ok("COPY (SELECT * FROM orders WHERE tenant_id = 2) TO STDOUT").shards ==
        Shards{f.IntOwner(2)});
  CHECK(f.Ok("COPY (SELECT * FROM orders) TO STDOUT").kind == RouteKind::kAll);
  CHECK(f.Fails("COPY (SELECT * FROM orders ORDER BY id) TO STDOUT") == "0A000");
}

TEST_CASE("HashKeyText reads keys as PostgreSQL's input functions do", "[router]") {
  CHECK(Router::HashKeyText("42", KeyType::kInt).value() == HashInt8(42));
  CHECK(Router::HashKeyText(" +42 ", KeyType::kInt).value() == HashInt8(42));
  CHECK(Router::HashKeyText("-9223372036854775808", KeyType::kInt).value() == HashInt8(INT64_MIN));
  CHECK(protocol::SqlStateOf(Router::HashKeyText("9223372036854775808", KeyType::kInt).status()) ==
        "22003");
  CHECK(protocol::SqlStateOf(Router::HashKeyText("4 2", KeyType::kInt).status()) == "22P02");
  CHECK(protocol::SqlStateOf(Router::HashKeyText("-", KeyType::kInt).status()) == "22P02");
  CHECK(Router::HashKeyText("tenant-42", KeyType::kText).value() == 2308422559236963683);
  CHECK(Router::HashKeyText(kUuidA, KeyType::kUuid).value() == 7543054272012930821);
  CHECK(protocol::SqlStateOf(Router::HashKeyText("x", KeyType::kUuid).status()) == "22P02");
}

TEST_CASE("reasons are filled only when asked for", "[router]") {
  Fixture f;
  auto s = Analyze("SELECT * FROM orders WHERE tenant_id = 1");
  REQUIRE(s.ok());
  absl::StatusOr<RoutePlan> p = Router::Route(s->statements[0], f.map(), f.ring(), {});
  REQUIRE(p.ok());
  CHECK(p->reason.empty());
  CHECK(p->shards == Shards{f.IntOwner(1)});
  CHECK(ToString(RouteKind::kMulti) == "multi");
  CHECK(ToString(RouteKind::kSession) == "session");
}

}  // namespace
}  // namespace pgring::sharding
