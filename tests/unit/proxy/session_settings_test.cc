// Unit tests of proxy/session_settings: which statements change session settings, which
// pin a client to its server connection, and the replay SQL.
#include "proxy/session_settings.h"

#include <catch2/catch.hpp>

using pgring::proxy::ClassifySetting;
using pgring::proxy::DeallocateName;
using pgring::proxy::DropsPreparedStatements;
using pgring::proxy::SessionPinReason;
using pgring::proxy::SessionSettings;
using pgring::proxy::SettingChange;
using pgring::proxy::StartupSettingsCache;

TEST_CASE("SET and RESET are classified with the parameter name") {
  auto c = ClassifySetting("  SET search_path TO a, b;");
  REQUIRE(c);
  CHECK(c->kind == SettingChange::Kind::kSet);
  CHECK(c->name == "search_path");
  CHECK(c->sql == "SET search_path TO a, b");
  CHECK(ClassifySetting("set SESSION application_name = 'x'")->name == "application_name");
  CHECK(ClassifySetting("SET TIME ZONE 'UTC'")->name == "timezone");
  CHECK(ClassifySetting("SET NAMES 'LATIN1'")->name == "client_encoding");
  CHECK(ClassifySetting("/* c */ RESET work_mem")->kind == SettingChange::Kind::kReset);
  CHECK(ClassifySetting("reset all")->kind == SettingChange::Kind::kResetAll);
}

TEST_CASE("statements that do not outlive the transaction are not tracked") {
  CHECK_FALSE(ClassifySetting("SET LOCAL work_mem = '1MB'"));
  CHECK_FALSE(ClassifySetting("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"));
  CHECK_FALSE(ClassifySetting("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"));
  CHECK_FALSE(ClassifySetting("SELECT 1"));
  CHECK_FALSE(ClassifySetting("SET a = 1; SELECT 1"));
  CHECK_FALSE(ClassifySetting("settings_table_select"));
}

TEST_CASE("MayChangeSession is false only where the three checks find nothing") {
  using pgring::proxy::MayChangeSession;
  for (std::string_view sql :
       {"SET search_path = a", "reset all", "LISTEN c", "PREPARE q AS SELECT 1",
        "declare c cursor with hold for select 1", "CREATE TEMP TABLE t (a int)",
        "DISCARD ALL", "deallocate all", "select pg_advisory_lock(1)",
        "  /* c */ Set x = 1"}) {
    CHECK(MayChangeSession(sql));
  }
  for (std::string_view sql :
       {"SELECT abalance FROM pgbench_accounts WHERE aid = 5", "UPDATE t SET a = 1",
        "INSERT INTO settings VALUES (1)", "select pg_advisory_xact_lock(1)", "", "BEGIN"}) {
    CHECK_FALSE(MayChangeSession(sql));
    CHECK_FALSE(ClassifySetting(sql));
    CHECK_FALSE(SessionPinReason(sql));
    CHECK_FALSE(DropsPreparedStatements(sql));
  }
}

TEST_CASE("session state pins the client, transaction-scoped state does not") {
  CHECK(SessionPinReason("LISTEN chan") == std::optional<std::string_view>("LISTEN"));
  CHECK(SessionPinReason("select PG_ADVISORY_LOCK(1)"));
  CHECK(SessionPinReason("select pg_try_advisory_lock_shared(1)"));
  CHECK_FALSE(SessionPinReason("select pg_advisory_xact_lock(1)"));
  CHECK_FALSE(SessionPinReason("select pg_try_advisory_xact_lock_shared(1)"));
  CHECK(SessionPinReason("select a_b, pg_advisory_lock(1) from t_x"));
  CHECK(SessionPinReason("select pg_advisory_xact_lock(1), pg_advisory_lock(2)"));
  CHECK_FALSE(SessionPinReason("select advisory_ from _lock where advisory_loc = 1"));
  CHECK_FALSE(SessionPinReason("_lock"));
  CHECK_FALSE(SessionPinReason("advisory_"));
  CHECK(SessionPinReason("PREPARE q AS SELECT 1"));
  CHECK_FALSE(SessionPinReason("PREPARE TRANSACTION 'gid'"));
  CHECK(SessionPinReason("declare c cursor with hold for select 1"));
  CHECK_FALSE(SessionPinReason("declare c cursor for select 1"));
  CHECK(SessionPinReason("CREATE TEMP TABLE t (a int)"));
  CHECK(SessionPinReason("create global temporary table t (a int)"));
  CHECK_FALSE(SessionPinReason("CREATE TABLE t (a int)"));
  CHECK_FALSE(SessionPinReason("SELECT abalance FROM pgbench_accounts WHERE aid = 1"));
}

TEST_CASE("DISCARD ALL and DEALLOCATE ALL drop prepared statements; DEALLOCATE name is found") {
  CHECK(DropsPreparedStatements("DISCARD ALL"));
  CHECK(DropsPreparedStatements("deallocate prepare all"));
  CHECK_FALSE(DropsPreparedStatements("DISCARD TEMP"));
  CHECK_FALSE(DropsPreparedStatements("DEALLOCATE q1"));
  CHECK(DeallocateName("DEALLOCATE _pg3_0") == std::optional<std::string>("_pg3_0"));
  CHECK(DeallocateName("deallocate prepare \"Q\";") == std::optional<std::string>("Q"));
  CHECK_FALSE(DeallocateName("DEALLOCATE ALL"));
  CHECK_FALSE(DeallocateName("DEALLOCATE a; SELECT 1"));
}

TEST_CASE("replay SQL restores exactly the tracked settings; fingerprints compare them") {
  SessionSettings a, b;
  CHECK(a.fingerprint() == 0);
  a.SetStartupParameter("application_name", "it's");
  CHECK(a.ReplaySql() == "RESET ALL; SET application_name TO 'it''s'");
  b.Apply(*ClassifySetting("SET application_name TO 'it''s'"));
  CHECK(a.fingerprint() != 0);
  CHECK(a.fingerprint() == b.fingerprint());
  a.Apply(*ClassifySetting("SET search_path TO x"));
  CHECK(a.ReplaySql() == "RESET ALL; SET application_name TO 'it''s'; SET search_path TO x");
  CHECK(a.fingerprint() != b.fingerprint());
  a.Apply(*ClassifySetting("RESET search_path"));
  CHECK(a.ReplaySql() == "RESET ALL; SET application_name TO 'it''s'");
  a.Apply(*ClassifySetting("RESET ALL"));
  CHECK(a.fingerprint() == 0);
  CHECK(a.ReplaySql() == "RESET ALL");
}

TEST_CASE("sessions with equal startup parameters share one copy, and a change stays their own") {
  StartupSettingsCache cache;
  const StartupSettingsCache::Params shop = {{"application_name", "shop"}, {"options", "-c x=1"}};
  SessionSettings a = cache.Get(shop);
  SessionSettings b = cache.Get(shop);
  CHECK(&a.entries() == &b.entries());
  CHECK(b.fingerprint() == a.fingerprint());
  // options is not a setting (as with SetStartupParameter for each of the others).
  SessionSettings by_hand;
  by_hand.SetStartupParameter("application_name", "shop");
  CHECK(a.ReplaySql() == by_hand.ReplaySql());
  CHECK(a.fingerprint() == by_hand.fingerprint());

  b.Apply(*ClassifySetting("SET search_path = s1"));
  CHECK(a.entries().size() == 1);
  CHECK(b.entries().size() == 2);
  CHECK(b.fingerprint() != a.fingerprint());
  CHECK(a.ReplaySql() == "RESET ALL; SET application_name TO 'shop'");
  CHECK(cache.Get(shop).ReplaySql() == "RESET ALL; SET application_name TO 'shop'");

  // Other parameters make their own settings, and the cache follows them.
  SessionSettings c = cache.Get({{"application_name", "other"}, {"DateStyle", "ISO"}});
  CHECK(&c.entries() != &a.entries());
  CHECK(c.ReplaySql() == "RESET ALL; SET application_name TO 'other'; SET datestyle TO 'ISO'");
  SessionSettings d = cache.Get({{"application_name", "other"}, {"DateStyle", "ISO"}});
  CHECK(&d.entries() == &c.entries());
  CHECK(cache.Get({}).fingerprint() == 0);
}
