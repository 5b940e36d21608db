// Tracks the session settings a client changed (SET, RESET, startup parameters) so that
// under transaction pooling they can be replayed on whichever server connection the
// client gets next, only when that connection's settings differ (compared by a
// fingerprint). Also recognises statements that tie a client to one server connection
// (session advisory locks, LISTEN, SQL-level PREPARE, WITH HOLD cursors, temporary
// tables). Pure; owned by one ClientSession.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgring::proxy {

struct SettingChange {
  enum class Kind { kSet, kReset, kResetAll } kind = Kind::kSet;
  std::string name;  // lower-cased parameter name
  std::string sql;   // statement that applies it, e.g. "SET search_path TO a, b"
};

// Classifies one SQL statement text. nullopt if it does not change session settings
// (SET LOCAL and SET TRANSACTION only last for the transaction and are not tracked).
std::optional<SettingChange> ClassifySetting(std::string_view sql);

// Returns a reason when `sql` creates state that lives on the server session beyond
// the transaction, so the client must keep its server connection; nullopt otherwise.
// The reason is a string literal.
std::optional<std::string_view> SessionPinReason(std::string_view sql);

// False when none of ClassifySetting, SessionPinReason and DropsPreparedStatements can
// find anything in `sql`: one keyword check and one scan, for the statements that do not
// touch session state (nearly all of them).
bool MayChangeSession(std::string_view sql);

// True for DISCARD ALL / DEALLOCATE ALL, which drop the server's prepared statements.
bool DropsPreparedStatements(std::string_view sql);

// For "DEALLOCATE [PREPARE] name" (one statement), the name as PostgreSQL folds it;
// nullopt otherwise. Drivers (psycopg) deallocate their protocol-level statements so.
std::optional<std::string> DeallocateName(std::string_view sql);

class SessionSettings {
 public:
  void Apply(const SettingChange& change);
  // Sets a startup parameter (as if by SET name TO 'value').
  void SetStartupParameter(std::string_view name, std::string_view value);
  // Statements that make a server session's settings equal to these:
  // "RESET ALL; SET ...; SET ...".
  std::string ReplaySql() const;
  // 0 when nothing is set; equal settings give equal fingerprints.
  uint64_t fingerprint() const { return fingerprint_; }
  using Entries = std::vector<std::pair<std::string, std::string>>;  // (name, SET statement)
  const Entries& entries() const;

 private:
  void Recompute();
  // Sorted by name; immutable once built (a change makes a new vector), so sessions with
  // equal settings can share one. Null when nothing is set.
  std::shared_ptr<const Entries> entries_;
  uint64_t fingerprint_ = 0;
};

// The settings a client's startup parameters make (each as SetStartupParameter; options
// and replication are not settings). Clients of one application send the same
// parameters: while they repeat, every session shares the settings made for the first
// (one copy of the entries, no work per login).
class StartupSettingsCache {
 public:
  using Params = std::vector<std::pair<std::string, std::string>>;
  const SessionSettings& Get(const Params& params);

 private:
  Params params_;
  SessionSettings settings_;
  bool filled_ = false;
};

// Quotes a string as a SQL literal ('...' with doubled quotes; E'' when it holds a backslash).
std::string QuoteLiteral(std::string_view s);

}  // namespace pgring::proxy
