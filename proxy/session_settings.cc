#include "proxy/session_settings.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "absl/hash/hash.h"
#include "proxy/str.h"

namespace pgring::proxy {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Skips white space and SQL comments ("--" to end of line, nested "/* */").
std::string_view SkipSpace(std::string_view s) {
  for (;;) {
    size_t i = 0;
    while (i < s.size() && IsSpace(s[i])) ++i;
    s.remove_prefix(i);
    if (s.starts_with("--")) {
      auto nl = s.find('\n');
      s.remove_prefix(nl == std::string_view::npos ? s.size() : nl + 1);
    } else if (s.starts_with("/*")) {
      int depth = 0;
      size_t j = 0;
      while (j + 1 < s.size()) {
        if (s[j] == '/' && s[j + 1] == '*') {
          ++depth;
          j += 2;
        } else if (s[j] == '*' && s[j + 1] == '/') {
          j += 2;
          if (--depth == 0) break;
        } else {
          ++j;
        }
      }
      s.remove_prefix(std::min(j, s.size()));
      if (depth != 0) return {};
    } else {
      return s;
    }
  }
}

// Reads one word (identifier characters, or a double-quoted identifier) lower-cased.
std::string NextWord(std::string_view& s) {
  s = SkipSpace(s);
  std::string w;
  if (!s.empty() && s[0] == '"') {
    size_t i = 1;
    for (; i < s.size(); ++i) {
      if (s[i] == '"') {
        if (i + 1 < s.size() && s[i + 1] == '"') {
          w.push_back('"');
          ++i;
          continue;
        }
        break;
      }
      w.push_back(s[i]);
    }
    s.remove_prefix(std::min(i + 1, s.size()));
    return w;
  }
  size_t i = 0;
  while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_' ||
                          s[i] == '.' || s[i] == '$')) {
    w.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(s[i]))));
    ++i;
  }
  s.remove_prefix(i);
  return w;
}

std::string_view TrimStatement(std::string_view s) {
  s = SkipSpace(s);
  while (!s.empty() && (s.back() == ';' || std::isspace(static_cast<unsigned char>(s.back()))))
    s.remove_suffix(1);
  return s;
}

// ASCII case-insensitive search; `needle` is lower case. Runs on every statement text,
// so it avoids locale calls.
inline char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c | 0x20) : c; }

size_t FindCI(std::string_view haystack, std::string_view needle, size_t from = 0) {
  if (needle.empty() || haystack.size() < needle.size()) return std::string_view::npos;
  const char first = needle[0];
  for (size_t i = from; i + needle.size() <= haystack.size(); ++i) {
    if (AsciiLower(haystack[i]) != first) continue;
    size_t j = 1;
    while (j < needle.size() && AsciiLower(haystack[i + j]) == needle[j]) ++j;
    if (j == needle.size()) return i;
  }
  return std::string_view::npos;
}

// ASCII case-insensitive equality; `lower` is lower case.
bool EqualsCI(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (AsciiLower(s[i]) != lower[i]) return false;
  }
  return true;
}

bool ContainsWordCI(std::string_view haystack, std::string_view needle) {
  return FindCI(haystack, needle) != std::string_view::npos;
}

inline bool AsciiAlpha(char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }

// The statement's first keyword, lower-cased into `buf` without allocating ("" if it is
// longer than the buffer: no keyword pgring looks for is).
std::string_view FirstWord(std::string_view sql, char (&buf)[16]) {
  std::string_view s = SkipSpace(sql);
  size_t n = 0;
  while (n < s.size() && AsciiAlpha(s[n])) {
    if (n == sizeof(buf)) return {};
    buf[n] = AsciiLower(s[n]);
    ++n;
  }
  return {buf, n};
}

// Session advisory locks: pg_advisory_lock[_shared], pg_try_advisory_lock[_shared] (the
// _xact_ variants end with the transaction and need no pinning). Runs on every statement
// text: it visits only the underscores (memchr) and compares around them.
bool CallsSessionAdvisoryLock(std::string_view s) {
  constexpr std::string_view kBefore = "advisory";
  constexpr std::string_view kAfter = "lock";
  const char* const begin = s.data();
  const char* const end = begin + s.size();
  for (const char* p = begin; p < end;) {
    p = static_cast<const char*>(std::memchr(p, '_', static_cast<size_t>(end - p)));
    if (p == nullptr) return false;
    const size_t at = static_cast<size_t>(p - begin);  // "advisory_lock": '_' at 8
    ++p;
    if (at < kBefore.size() || s.size() - at - 1 < kAfter.size()) continue;
    const size_t start = at - kBefore.size();
    if (!EqualsCI(s.substr(start, kBefore.size()), kBefore) ||
        !EqualsCI(s.substr(at + 1, kAfter.size()), kAfter)) {
      continue;
    }
    const bool xact = start >= 5 && EqualsCI(s.substr(start - 5, 5), "xact_");
    if (!xact) return true;
  }
  return false;
}

}  // namespace

std::optional<SettingChange> ClassifySetting(std::string_view sql) {
  char buf[16];
  auto verb0 = FirstWord(sql, buf);
  if (verb0 != "set" && verb0 != "reset") return std::nullopt;
  std::string_view s = TrimStatement(sql);
  // Several statements in one string: not a single setting change.
  if (s.find(';') != std::string_view::npos) return std::nullopt;
  std::string_view rest = s;
  std::string verb = NextWord(rest);
  if (verb == "set") {
    std::string_view after = rest;
    std::string name = NextWord(after);
    if (name == "local" || name == "transaction" || name.empty()) return std::nullopt;
    if (name == "session") {
      std::string_view probe = after;
      std::string next = NextWord(probe);
      if (next == "characteristics" || next == "authorization") {
        return std::nullopt;
      }
      name = NextWord(after);
    }
    if (name == "time") {  // SET TIME ZONE ...
      std::string_view probe = after;
      if (NextWord(probe) == "zone") name = "timezone";
    }
    if (name == "names") name = "client_encoding";
    if (name == "role" || name == "constraints") return std::nullopt;
    return SettingChange{SettingChange::Kind::kSet, name, std::string(s)};
  }
  if (verb == "reset") {
    std::string name = NextWord(rest);
    if (name.empty()) return std::nullopt;
    if (name == "all") return SettingChange{SettingChange::Kind::kResetAll, "", std::string(s)};
    if (name == "session") return std::nullopt;  // RESET SESSION AUTHORIZATION
    return SettingChange{SettingChange::Kind::kReset, name, std::string(s)};
  }
  return std::nullopt;
}

std::optional<std::string_view> SessionPinReason(std::string_view sql) {
  std::string_view s = SkipSpace(sql);
  if (CallsSessionAdvisoryLock(s)) return "session advisory lock";
  char buf[16];
  auto verb0 = FirstWord(s, buf);
  if (verb0 != "listen" && verb0 != "prepare" && verb0 != "declare" && verb0 != "create") {
    return std::nullopt;
  }
  std::string_view rest = s;
  std::string verb = NextWord(rest);
  if (verb == "listen") return "LISTEN";
  if (verb == "prepare") {
    std::string_view probe = rest;
    if (NextWord(probe) != "transaction") return "SQL-level PREPARE";
  }
  if (verb == "declare" && ContainsWordCI(s, "with hold")) return "cursor WITH HOLD";
  if (verb == "create") {
    std::string_view probe = rest;
    std::string w = NextWord(probe);
    if (w == "temp" || w == "temporary") return "temporary table";
    if (w == "global" || w == "local") {
      w = NextWord(probe);
      if (w == "temp" || w == "temporary") return "temporary table";
    }
  }
  return std::nullopt;
}

bool MayChangeSession(std::string_view sql) {
  char buf[16];
  const auto verb = FirstWord(sql, buf);
  for (std::string_view v : {"set", "reset", "listen", "prepare", "declare", "create", "discard",
                             "deallocate"}) {
    if (verb == v) return true;
  }
  return CallsSessionAdvisoryLock(sql);
}

bool DropsPreparedStatements(std::string_view sql) {
  char buf[16];
  auto verb0 = FirstWord(sql, buf);
  if (verb0 != "discard" && verb0 != "deallocate") return false;
  std::string_view rest = SkipSpace(sql);
  std::string verb = NextWord(rest);
  if (verb == "discard") {
    std::string what = NextWord(rest);
    return what == "all";
  }
  if (verb == "deallocate") {
    std::string what = NextWord(rest);
    if (what == "prepare") what = NextWord(rest);
    return what == "all";
  }
  return false;
}

std::optional<std::string> DeallocateName(std::string_view sql) {
  char buf[16];
  if (FirstWord(sql, buf) != "deallocate") return std::nullopt;
  std::string_view s = TrimStatement(sql);
  if (s.find(';') != std::string_view::npos) return std::nullopt;
  std::string_view rest = s;
  if (NextWord(rest) != "deallocate") return std::nullopt;
  std::string_view probe = rest;
  std::string name = NextWord(probe);
  if (name == "prepare") {
    rest = probe;
    name = NextWord(rest);
  } else {
    rest = probe;
  }
  if (name.empty() || name == "all" || !SkipSpace(rest).empty()) return std::nullopt;
  return name;
}

const SessionSettings::Entries& SessionSettings::entries() const {
  static const Entries kNone;
  return entries_ ? *entries_ : kNone;
}

const SessionSettings& StartupSettingsCache::Get(const Params& params) {
  if (!filled_ || params != params_) {
    SessionSettings settings;
    for (const auto& [k, v] : params) {
      if (k == "options" || k == "replication") continue;
      settings.SetStartupParameter(k, v);
    }
    params_ = params;
    settings_ = std::move(settings);
    filled_ = true;
  }
  return settings_;
}

void SessionSettings::Apply(const SettingChange& change) {
  Entries entries = this->entries();
  switch (change.kind) {
    case SettingChange::Kind::kResetAll:
      entries.clear();
      break;
    case SettingChange::Kind::kReset: {
      auto it = std::find_if(entries.begin(), entries.end(),
                             [&](const auto& e) { return e.first == change.name; });
      if (it != entries.end()) entries.erase(it);
      break;
    }
    case SettingChange::Kind::kSet: {
      auto it = std::lower_bound(entries.begin(), entries.end(), change.name,
                                 [](const auto& e, const std::string& n) { return e.first < n; });
      if (it != entries.end() && it->first == change.name) {
        it->second = change.sql;
      } else {
        entries.insert(it, {change.name, change.sql});
      }
      break;
    }
  }
  entries_ = entries.empty() ? nullptr : std::make_shared<const Entries>(std::move(entries));
  Recompute();
}

void SessionSettings::SetStartupParameter(std::string_view name, std::string_view value) {
  std::string lname(name);
  for (auto& c : lname) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  Apply(SettingChange{SettingChange::Kind::kSet, lname,
                      Cat("SET ", lname, " TO ", QuoteLiteral(value))});
}

std::string SessionSettings::ReplaySql() const {
  std::string sql = "RESET ALL";
  for (const auto& [name, stmt] : entries()) sql += Cat("; ", stmt);
  return sql;
}

void SessionSettings::Recompute() {
  if (!entries_) {
    fingerprint_ = 0;
    return;
  }
  fingerprint_ = absl::Hash<Entries>{}(*entries_);
  if (fingerprint_ == 0) fingerprint_ = 1;
}

std::string QuoteLiteral(std::string_view s) {
  bool backslash = s.find('\\') != std::string_view::npos;
  std::string out = backslash ? "E'" : "'";
  for (char c : s) {
    if (c == '\'') out.push_back('\'');
    if (c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

}  // namespace pgring::proxy
