#include "conf/config_builder.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

#include "conf/duration.h"
#include "conf/scram_verifier.h"
#include "conf/secret_source.h"
#include "conf/suggest.h"

namespace pgring::conf {
namespace {

// PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes.
constexpr size_t kMaxIdentifier = 63;

// Allowed keys of every map in the schema, in the order the documentation lists them.
constexpr std::array<std::string_view, 11> kTopKeys = {
    "listen", "workers", "io_uring", "pool",          "auth",   "tls",
    "shards", "ring",    "tables",   "default_shard", "logging"};
constexpr std::array<std::string_view, 5> kListenKeys = {"host", "port", "admin_port",
                                                         "metrics_port", "database"};
constexpr std::array<std::string_view, 12> kPoolKeys = {"mode",
                                                        "size",
                                                        "min_idle",
                                                        "max_clients",
                                                        "query_wait_timeout",
                                                        "server_idle_timeout",
                                                        "server_lifetime",
                                                        "server_connect_timeout",
                                                        "client_idle_timeout",
                                                        "idle_in_transaction_timeout",
                                                        "startup_timeout",
                                                        "prepared_statement_cache"};
constexpr std::array<std::string_view, 2> kAuthKeys = {"method", "users"};
constexpr std::array<std::string_view, 6> kUserKeys = {
    "name", "password", "password_file", "password_env", "scram_verifier", "admin"};
constexpr std::array<std::string_view, 4> kTlsKeys = {"client_mode", "cert_file", "key_file",
                                                      "ca_file"};
constexpr std::array<std::string_view, 3> kShardKeys = {"name", "primary", "replicas"};
constexpr std::array<std::string_view, 8> kEndpointKeys = {
    "host", "port", "dbname", "user", "password", "password_file", "password_env", "sslmode"};
constexpr std::array<std::string_view, 1> kRingKeys = {"vnodes"};
constexpr std::array<std::string_view, 4> kTableKeys = {"name", "kind", "shard_key", "key_type"};
constexpr std::array<std::string_view, 2> kLoggingKeys = {"level", "format"};

// Sections whose keys are sometimes written at the top level by mistake.
constexpr std::array<std::pair<std::string_view, std::span<const std::string_view>>, 6>
    kNestedSections = {{{"listen", kListenKeys},
                        {"pool", kPoolKeys},
                        {"auth", kAuthKeys},
                        {"tls", kTlsKeys},
                        {"ring", kRingKeys},
                        {"logging", kLoggingKeys}}};

template <typename T>
struct EnumName {
  std::string_view name;
  T value;
};

constexpr std::array<EnumName<PoolMode>, 2> kPoolModes = {
    {{"transaction", PoolMode::kTransaction}, {"session", PoolMode::kSession}}};
constexpr std::array<EnumName<AuthMethod>, 3> kAuthMethods = {
    {{"scram-sha-256", AuthMethod::kScramSha256},
     {"md5", AuthMethod::kMd5},
     {"trust", AuthMethod::kTrust}}};
constexpr std::array<EnumName<ClientTlsMode>, 3> kClientTlsModes = {
    {{"disable", ClientTlsMode::kDisable},
     {"allow", ClientTlsMode::kAllow},
     {"require", ClientTlsMode::kRequire}}};
constexpr std::array<EnumName<SslMode>, 3> kSslModes = {
    {{"disable", SslMode::kDisable}, {"prefer", SslMode::kPrefer}, {"require", SslMode::kRequire}}};
constexpr std::array<EnumName<TableKind>, 2> kTableKinds = {
    {{"sharded", TableKind::kSharded}, {"reference", TableKind::kReference}}};
constexpr std::array<EnumName<KeyType>, 10> kKeyTypes = {{{"smallint", KeyType::kInt},
                                                          {"int", KeyType::kInt},
                                                          {"integer", KeyType::kInt},
                                                          {"bigint", KeyType::kInt},
                                                          {"int2", KeyType::kInt},
                                                          {"int4", KeyType::kInt},
                                                          {"int8", KeyType::kInt},
                                                          {"text", KeyType::kText},
                                                          {"varchar", KeyType::kText},
                                                          {"uuid", KeyType::kUuid}}};
constexpr std::array<EnumName<std::string_view>, 5> kLogLevels = {{{"trace", "trace"},
                                                                   {"debug", "debug"},
                                                                   {"info", "info"},
                                                                   {"warn", "warn"},
                                                                   {"error", "error"}}};
constexpr std::array<EnumName<LogFormat>, 2> kLogFormats = {
    {{"text", LogFormat::kText}, {"json", LogFormat::kJson}}};

struct Pos {
  int line = 0;
  int column = 0;
};

Pos PosOf(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  if (mark.line < 0 || mark.column < 0) return {};
  return {mark.line + 1, mark.column + 1};
}

// One key of a YAML map, with everything needed to report a problem with it.
struct Field {
  std::string key;
  std::string path;  // "listen.port", "shards[0].primary.host"
  Pos key_pos;
  // Where a problem with the value is reported: the value itself, or its key when the
  // value is empty (yaml-cpp marks an empty value at whatever token follows it).
  Pos value_pos;
  YAML::Node value;
};

// The checked keys of one YAML map.
struct Section {
  std::string path;
  Pos pos;  // where "missing key" problems are reported
  std::vector<Field> fields;

  const Field* Get(std::string_view key) const {
    for (const auto& f : fields)
      if (f.key == key) return &f;
    return nullptr;
  }
};

// A list item: its path ("shards[1]"), node and position.
struct Item {
  std::string path;
  Pos pos;
  YAML::Node node;
};

std::string Join(std::span<const std::string_view> names, std::string_view sep = ", ") {
  return fmt::format("{}", fmt::join(names.begin(), names.end(), sep));
}

std::string Child(std::string_view parent, std::string_view key) {
  return parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Lower(c);
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return Lower(x) == Lower(y); });
}

// Describes a node for "expected X, got Y" messages. Scalars are quoted unless they may
// be secret; long ones are shortened.
std::string Describe(const YAML::Node& node, bool secret = false) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar: {
      if (secret) return "a value";
      const std::string& text = node.Scalar();
      if (text.size() > 40) return fmt::format("'{}...'", text.substr(0, 37));
      return fmt::format("'{}'", text);
    }
    default:
      return "nothing";
  }
}

bool IsIdentifier(std::string_view s) {
  if (s.empty() || s.size() > kMaxIdentifier) return false;
  if (!IsAlpha(s[0]) && s[0] != '_') return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsAlpha(c) || IsDigit(c) || c == '_' || c == '$'; });
}

bool IsShardName(std::string_view s) {
  if (s.empty() || s.size() > kMaxIdentifier) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsAlpha(c) || IsDigit(c) || c == '_' || c == '-'; });
}

bool IsEnvName(std::string_view s) {
  if (s.empty() || IsDigit(s[0])) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsAlpha(c) || IsDigit(c) || c == '_'; });
}

// "orders" and "public.orders" name the same table: PostgreSQL resolves an unqualified
// name through the default search_path, whose first schema is public.
std::string TableIdentity(std::string_view lower_name) {
  if (lower_name.find('.') == std::string_view::npos) return fmt::format("public.{}", lower_name);
  return std::string(lower_name);
}

class Builder {
 public:
  Builder(std::string file, std::string base_dir)
      : file_(std::move(file)), base_dir_(std::move(base_dir)) {}

  std::vector<ConfigError> Build(const YAML::Node& root, Config& c) {
    if (!root.IsDefined() || root.IsNull()) {
      Error({1, 1},
            "the configuration is empty; it needs at least a 'shards' list (see "
            "conf/pgring.example.yaml for every setting)");
      return std::move(errors_);
    }
    if (!root.IsMap()) {
      Error(PosOf(root), fmt::format("expected a map of settings (listen, pool, auth, tls, "
                                     "shards, ...) at the top level, got {}; write one "
                                     "'key: value' per line",
                                     Describe(root)));
      return std::move(errors_);
    }
    const std::optional<Section> s = ReadMap(root, PosOf(root), "", kTopKeys);
    if (!s) return std::move(errors_);

    ParseListen(s->Get("listen"), c.listen);
    ReadInt(s->Get("workers"), 0, 1024, "0 starts one io thread per CPU core", c.workers);
    ReadBool(s->Get("io_uring"), c.io_uring);
    ParsePool(s->Get("pool"), c.pool);
    ParseAuth(*s, c.auth);
    ParseTls(s->Get("tls"), c.tls);
    ParseShards(*s, c.shards);
    ParseRing(s->Get("ring"), c.ring);
    ParseTables(s->Get("tables"), c.tables);
    ParseDefaultShard(s->Get("default_shard"), c);
    ParseLogging(s->Get("logging"), c.logging);
    return std::move(errors_);
  }

 private:
  void Error(Pos pos, std::string message) {
    errors_.push_back(ConfigError{file_, pos.line, pos.column, std::move(message)});
  }

  // Returns `path` resolved against the configuration file's directory.
  std::string Resolve(const std::string& path) const {
    if (base_dir_.empty() || path.empty() || path[0] == '/') return path;
    return fmt::format("{}/{}", base_dir_, path);
  }

  // --- Generic readers -------------------------------------------------------------

  // Reads `node` as a map, reporting keys that are not in `allowed` (with a spelling
  // suggestion) and keys that appear twice. An empty value counts as an empty map.
  std::optional<Section> ReadMap(const YAML::Node& node, Pos pos, std::string path,
                                 std::span<const std::string_view> allowed) {
    Section section{std::move(path), pos, {}};
    if (node.IsNull()) return section;
    if (!node.IsMap()) {
      Error(pos, fmt::format("{}: expected a map of settings ({}), got {}; write them as "
                             "'key: value' lines indented below it",
                             section.path, Join(allowed), Describe(node)));
      return std::nullopt;
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
      // Copies, not references: yaml-cpp's iterator hands out a temporary pair.
      const YAML::Node key = it->first;
      const YAML::Node value = it->second;
      const Pos key_pos = PosOf(key);
      if (!key.IsScalar()) {
        Error(key_pos,
              fmt::format("{}: keys must be plain names, got {}",
                          section.path.empty() ? "top level" : section.path, Describe(key)));
        continue;
      }
      const std::string& name = key.Scalar();
      if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        ReportUnknownKey(section.path, name, key_pos, allowed);
        continue;
      }
      if (const Field* first = section.Get(name)) {
        Error(key_pos, fmt::format("{}: set twice (first at line {}); remove one of them",
                                   Child(section.path, name), first->key_pos.line));
        continue;
      }
      Field f;
      f.key = name;
      f.path = Child(section.path, name);
      f.key_pos = key_pos;
      f.value = value;
      f.value_pos = value.IsNull() ? key_pos : PosOf(value);
      section.fields.push_back(std::move(f));
    }
    return section;
  }

  void ReportUnknownKey(const std::string& path, const std::string& name, Pos pos,
                        std::span<const std::string_view> allowed) {
    const std::string where =
        path.empty() ? std::string("unknown top-level key") : path + ": unknown key";
    // A key of a section written at the top level is a misplaced key, not a typo.
    if (path.empty()) {
      for (const auto& [section, keys] : kNestedSections) {
        if (std::find(keys.begin(), keys.end(), name) != keys.end()) {
          Error(pos, fmt::format("{} '{}'; did you mean '{}.{}'? Move it, indented, below "
                                 "'{}:'",
                                 where, name, section, name, section));
          return;
        }
      }
    }
    if (std::optional<std::string> match = ClosestMatch(name, allowed)) {
      Error(pos, fmt::format("{} '{}'; did you mean '{}'?", where, name, *match));
      return;
    }
    Error(pos, fmt::format("{} '{}'; remove it or use one of: {}", where, name, Join(allowed)));
  }

  // Reads a map-valued field; an absent field gives an empty section at `missing_pos`.
  std::optional<Section> ReadSection(const Field* f, Pos missing_pos, std::string path,
                                     std::span<const std::string_view> allowed) {
    if (f == nullptr) return Section{std::move(path), missing_pos, {}};
    return ReadMap(f->value, f->value_pos, std::move(path), allowed);
  }

  // Reads a list-valued field. An empty value is an empty list.
  std::optional<std::vector<Item>> ReadList(const Field& f, std::string_view item_example) {
    std::vector<Item> items;
    if (f.value.IsNull()) return items;
    if (!f.value.IsSequence()) {
      Error(f.value_pos, fmt::format("{}: expected a list, got {}; start each entry with '- ', "
                                     "for example '- {}'",
                                     f.path, Describe(f.value), item_example));
      return std::nullopt;
    }
    size_t i = 0;
    for (const YAML::Node& n : f.value) {
      items.push_back(Item{fmt::format("{}[{}]", f.path, i++), PosOf(n), n});
      if (n.IsNull()) items.back().pos = f.value_pos;
    }
    return items;
  }

  // The Read* functions below leave `out` alone when the field is absent (the default
  // stays) and return false only when they reported a problem.

  // Reads an integer in [min, max]; `note` explains special values.
  template <typename T>
  bool ReadInt(const Field* f, int64_t min, int64_t max, std::string_view note, T& out) {
    if (f == nullptr) return true;
    const std::string expected = fmt::format("an integer from {} to {}", min, max);
    const std::string note_text = note.empty() ? "" : fmt::format(" ({})", note);
    bool numeric = f->value.IsScalar();
    std::string_view digits;
    bool negative = false;
    if (numeric) {
      digits = f->value.Scalar();
      negative = !digits.empty() && digits[0] == '-';
      if (negative || (!digits.empty() && digits[0] == '+')) digits.remove_prefix(1);
      numeric = !digits.empty() && std::all_of(digits.begin(), digits.end(), IsDigit);
    }
    if (!numeric) {
      Error(f->value_pos,
            fmt::format("{}: expected {}, got {}{}{}", f->path, expected, Describe(f->value),
                        note_text, f->value.IsNull() ? "; write a number or remove the key" : ""));
      return false;
    }
    // Longer numbers are out of every range here; stopping early avoids overflow.
    const bool too_long = digits.size() > 18;
    int64_t value = 0;
    for (size_t i = 0; !too_long && i < digits.size(); ++i) value = value * 10 + (digits[i] - '0');
    if (negative) value = -value;
    if (too_long || value < min || value > max) {
      Error(f->value_pos, fmt::format("{}: {} is out of range; use {}{}", f->path,
                                      f->value.Scalar(), expected, note_text));
      return false;
    }
    out = static_cast<T>(value);
    return true;
  }

  // Reads a non-empty string; `what` describes the expected value for the fix.
  bool ReadString(const Field* f, std::string_view what, std::string& out, bool secret = false) {
    if (f == nullptr) return true;
    if (f->value.IsNull()) {
      Error(f->value_pos, fmt::format("{}: has no value; write {} after the colon or remove "
                                      "the key",
                                      f->path, what));
      return false;
    }
    if (!f->value.IsScalar()) {
      Error(f->value_pos,
            fmt::format("{}: expected {}, got {}", f->path, what, Describe(f->value, secret)));
      return false;
    }
    if (f->value.Scalar().empty()) {
      Error(f->value_pos, fmt::format("{}: is empty; write {}", f->path, what));
      return false;
    }
    out = f->value.Scalar();
    return true;
  }

  bool ReadBool(const Field* f, bool& out) {
    if (f == nullptr) return true;
    if (f->value.IsScalar()) {
      if (EqualsIgnoreCase(f->value.Scalar(), "true")) {
        out = true;
        return true;
      }
      if (EqualsIgnoreCase(f->value.Scalar(), "false")) {
        out = false;
        return true;
      }
    }
    Error(f->value_pos,
          fmt::format("{}: expected true or false, got {}", f->path, Describe(f->value)));
    return false;
  }

  // Reads one of `names`, ignoring case; lists them all (with a suggestion) otherwise.
  template <typename T, size_t N>
  bool ReadEnum(const Field* f, const std::array<EnumName<T>, N>& names, T& out) {
    if (f == nullptr) return true;
    std::array<std::string_view, N> allowed;
    for (size_t i = 0; i < N; ++i) allowed[i] = names[i].name;
    if (!f->value.IsScalar()) {
      Error(f->value_pos, fmt::format("{}: expected one of {}, got {}", f->path, Join(allowed),
                                      Describe(f->value)));
      return false;
    }
    const std::string& text = f->value.Scalar();
    for (const auto& n : names) {
      if (EqualsIgnoreCase(n.name, text)) {
        out = n.value;
        return true;
      }
    }
    std::string message =
        fmt::format("{}: '{}' is not allowed; use one of: {}", f->path, text, Join(allowed));
    if (std::optional<std::string> match = ClosestMatch(text, allowed)) {
      message += fmt::format(" (did you mean '{}'?)", *match);
    }
    Error(f->value_pos, std::move(message));
    return false;
  }

  enum class Zero { kAllowed, kRefused };

  bool ReadDuration(const Field* f, Zero zero, Duration& out) {
    if (f == nullptr) return true;
    if (!f->value.IsScalar()) {
      Error(f->value_pos,
            fmt::format("{}: expected a duration such as 5s, got {}", f->path, Describe(f->value)));
      return false;
    }
    absl::StatusOr<Duration> d = ParseDuration(f->value.Scalar());
    if (!d.ok()) {
      Error(f->value_pos, fmt::format("{}: {}", f->path, std::string(d.status().message())));
      return false;
    }
    if (d->count() == 0 && zero == Zero::kRefused) {
      Error(f->value_pos,
            fmt::format("{}: must be greater than 0; write a duration such as 5s", f->path));
      return false;
    }
    out = *d;
    return true;
  }

  // Reports a required key that `s` lacks; `fix` says what to add.
  bool Require(const Section& s, std::string_view key, std::string_view fix) {
    if (s.Get(key) != nullptr) return true;
    Error(s.pos, fmt::format("{}: missing required key '{}'; add {}", s.path, key, fix));
    return false;
  }

  // Checks that a file exists and can be read, naming the path and errno text if not.
  void CheckReadable(const Field& f, const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      Error(f.value_pos, fmt::format("{}: cannot read '{}': {}; fix the path or the file's "
                                     "permissions",
                                     f.path, path, std::strerror(errno)));
      return;
    }
    ::close(fd);
  }

  // --- Password sources -------------------------------------------------------------

  enum class Verifier { kAllowed, kRefused };
  enum class Required { kYes, kNo };

  // Reads the one password source of `s`: password, password_file, password_env and,
  // for client users, scram_verifier. Reports none (when required) and several.
  void ReadPasswordSource(const Section& s, Verifier verifier_ok, Required required,
                          std::optional<Secret>& secret, std::optional<std::string>* verifier) {
    std::vector<std::string_view> names = {"password", "password_file", "password_env"};
    if (verifier_ok == Verifier::kAllowed) names.push_back("scram_verifier");
    std::vector<const Field*> present;
    for (const Field& f : s.fields) {
      if (std::find(names.begin(), names.end(), f.key) != names.end()) present.push_back(&f);
    }
    if (present.empty()) {
      if (required == Required::kYes) {
        Error(s.pos,
              fmt::format("{}: no password; add exactly one of {}", s.path, Join(names, ", ")));
      }
      return;
    }
    if (present.size() > 1) {
      std::vector<std::string_view> keys;
      for (const Field* f : present) keys.push_back(f->key);
      Error(present[1]->key_pos,
            fmt::format("{}: more than one password source ({}); keep exactly one of them", s.path,
                        Join(keys)));
      return;
    }
    const Field& f = *present[0];
    if (f.key == "password") {
      std::string value;
      if (ReadString(&f, "the password", value, /*secret=*/true)) {
        secret = Secret{std::move(value), Secret::Source::kInline, ""};
      }
    } else if (f.key == "password_file") {
      std::string path;
      if (!ReadString(&f, "the path of a file holding the password", path)) return;
      path = Resolve(path);
      absl::StatusOr<std::string> value = ReadSecretFile(path);
      if (!value.ok()) {
        Error(f.value_pos, fmt::format("{}: {}; fix the path or the file's permissions, or "
                                       "choose another password source",
                                       f.path, std::string(value.status().message())));
        return;
      }
      secret = Secret{*std::move(value), Secret::Source::kFile, path};
    } else if (f.key == "password_env") {
      std::string name;
      if (!ReadString(&f, "the name of an environment variable", name)) return;
      if (!IsEnvName(name)) {
        Error(f.value_pos, fmt::format("{}: '{}' is not an environment variable name; use "
                                       "letters, digits and '_', such as PGRING_PASSWORD",
                                       f.path, name));
        return;
      }
      absl::StatusOr<std::string> value = ReadSecretEnv(name);
      if (!value.ok()) {
        Error(f.value_pos,
              fmt::format("{}: {}; export {} in pgring's environment or choose another "
                          "password source",
                          f.path, std::string(value.status().message()), name));
        return;
      }
      secret = Secret{*std::move(value), Secret::Source::kEnv, name};
    } else {
      std::string text;
      if (!ReadString(&f, "a SCRAM-SHA-256 verifier", text, /*secret=*/true)) return;
      absl::StatusOr<ScramVerifier> parsed = ParseScramVerifier(text);
      if (!parsed.ok()) {
        Error(f.value_pos,
              fmt::format("{}: invalid SCRAM-SHA-256 verifier: {}; copy the verifier from "
                          "pg_authid.rolpassword, whose form is "
                          "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>",
                          f.path, std::string(parsed.status().message())));
        return;
      }
      *verifier = std::move(text);
    }
  }

  // --- Sections ---------------------------------------------------------------------

  void ParseListen(const Field* f, ListenConfig& l) {
    const std::optional<Section> s = ReadSection(f, {}, "listen", kListenKeys);
    if (!s) return;
    ReadString(s->Get("host"), "an address to listen on, such as 127.0.0.1 or 0.0.0.0", l.host);
    const bool port_ok = ReadInt(s->Get("port"), 1, 65535, "", l.port);
    const bool admin_ok = ReadInt(s->Get("admin_port"), 1, 65535, "", l.admin_port);
    const bool metrics_ok =
        ReadInt(s->Get("metrics_port"), 0, 65535, "0 disables metrics", l.metrics_port);
    if (ReadString(s->Get("database"), "the database name clients connect to", l.database) &&
        l.database == "pgring") {
      Error(s->Get("database")->value_pos,
            "listen.database: 'pgring' is the name of the admin database; choose another name");
    }

    struct Port {
      std::string_view key;
      uint16_t value;
      const Field* field;  // nullptr: the default
      bool ok;
    };
    const std::array<Port, 3> ports = {
        {{"port", l.port, s->Get("port"), port_ok},
         {"admin_port", l.admin_port, s->Get("admin_port"), admin_ok},
         {"metrics_port", l.metrics_port, s->Get("metrics_port"), metrics_ok}}};
    std::array<bool, 3> reported = {false, false, false};  // one error per port is enough
    for (size_t i = 0; i < ports.size(); ++i) {
      for (size_t j = i + 1; j < ports.size(); ++j) {
        size_t a = i;
        size_t b = j;
        if (ports[a].value == 0 || ports[a].value != ports[b].value || !ports[a].ok ||
            !ports[b].ok) {
          continue;
        }
        // Report at the key written later; a default has no position of its own.
        if (ports[b].field == nullptr ||
            (ports[a].field != nullptr &&
             ports[a].field->key_pos.line > ports[b].field->key_pos.line)) {
          std::swap(a, b);
        }
        const Port* first = &ports[a];
        const Port* second = &ports[b];
        if (second->field == nullptr || reported[b]) continue;
        reported[b] = true;
        const std::string first_where = first->field != nullptr
                                            ? fmt::format("line {}", first->field->key_pos.line)
                                            : std::string("its default");
        Error(second->field->value_pos,
              fmt::format("listen.{}: port {} is already used by listen.{} ({}); give each "
                          "listener its own port",
                          second->key, second->value, first->key, first_where));
      }
    }
  }

  void ParsePool(const Field* f, PoolConfig& p) {
    const std::optional<Section> s = ReadSection(f, {}, "pool", kPoolKeys);
    if (!s) return;
    ReadEnum(s->Get("mode"), kPoolModes, p.mode);
    const bool size_ok = ReadInt(s->Get("size"), 1, 10000, "", p.size);
    if (ReadInt(s->Get("min_idle"), 0, 10000, "", p.min_idle) && size_ok && p.min_idle > p.size) {
      Error(s->Get("min_idle")->value_pos,
            fmt::format("pool.min_idle: {} is more than pool.size ({}); lower min_idle or "
                        "raise size",
                        p.min_idle, p.size));
    }
    ReadInt(s->Get("max_clients"), 1, 1000000, "", p.max_clients);
    ReadDuration(s->Get("query_wait_timeout"), Zero::kRefused, p.query_wait_timeout);
    ReadDuration(s->Get("server_idle_timeout"), Zero::kAllowed, p.server_idle_timeout);
    ReadDuration(s->Get("server_lifetime"), Zero::kAllowed, p.server_lifetime);
    ReadDuration(s->Get("server_connect_timeout"), Zero::kRefused, p.server_connect_timeout);
    ReadDuration(s->Get("client_idle_timeout"), Zero::kAllowed, p.client_idle_timeout);
    ReadDuration(s->Get("idle_in_transaction_timeout"), Zero::kAllowed,
                 p.idle_in_transaction_timeout);
    ReadDuration(s->Get("startup_timeout"), Zero::kRefused, p.startup_timeout);
    ReadInt(s->Get("prepared_statement_cache"), 1, 1000000, "", p.prepared_statement_cache);
  }

  void ParseAuth(const Section& top, AuthConfig& a) {
    const Field* auth = top.Get("auth");
    const std::optional<Section> s = ReadSection(auth, top.pos, "auth", kAuthKeys);
    if (!s) return;
    const bool method_ok = ReadEnum(s->Get("method"), kAuthMethods, a.method);
    const bool trust = method_ok && a.method == AuthMethod::kTrust;
    const Field* users_field = s->Get("users");
    std::optional<std::vector<Item>> items;
    if (users_field != nullptr) items = ReadList(*users_field, "name: app");
    const bool users_ok = items.has_value() || users_field == nullptr;
    if (!items) items.emplace();

    std::map<std::string, Pos> seen;
    for (const Item& item : *items) {
      const std::optional<Section> u = ReadMap(item.node, item.pos, item.path, kUserKeys);
      if (!u) continue;
      UserConfig user;
      if (Require(*u, "name", "the role name clients log in with, such as 'name: app'") &&
          ReadString(u->Get("name"), "a user name", user.name)) {
        const Field* name = u->Get("name");
        if (user.name.size() > kMaxIdentifier) {
          Error(name->value_pos, fmt::format("{}: longer than {} bytes, which PostgreSQL does "
                                             "not allow; shorten it",
                                             name->path, kMaxIdentifier));
        } else if (auto [it, inserted] = seen.emplace(user.name, name->value_pos); !inserted) {
          Error(name->value_pos, fmt::format("{}: duplicate user '{}' (first defined at line "
                                             "{}); list each user once",
                                             name->path, user.name, it->second.line));
        }
      }
      ReadPasswordSource(*u, Verifier::kAllowed, trust ? Required::kNo : Required::kYes,
                         user.password, &user.scram_verifier);
      ReadBool(u->Get("admin"), user.admin);
      if (method_ok && a.method == AuthMethod::kMd5 && user.scram_verifier) {
        Error(u->Get("scram_verifier")->key_pos,
              fmt::format("{}: auth.method md5 needs the user's password, which a SCRAM "
                          "verifier cannot provide; use password, password_file or "
                          "password_env, or set auth.method: scram-sha-256",
                          item.path));
      }
      a.users.push_back(std::move(user));
    }

    if (method_ok && !trust && users_ok && items->empty()) {
      const Pos pos = users_field != nullptr ? users_field->key_pos
                      : auth != nullptr      ? auth->key_pos
                                             : top.pos;
      Error(pos, fmt::format("auth.users: no users, so no client can log in with {}; add at "
                             "least one user with a password, or set auth.method: trust",
                             ToString(a.method)));
    }
  }

  void ParseTls(const Field* f, TlsConfig& t) {
    const std::optional<Section> s = ReadSection(f, {}, "tls", kTlsKeys);
    if (!s) return;
    const bool mode_ok = ReadEnum(s->Get("client_mode"), kClientTlsModes, t.client_mode);
    const bool cert_ok =
        ReadString(s->Get("cert_file"), "the path of a PEM certificate file", t.cert_file);
    const bool key_ok =
        ReadString(s->Get("key_file"), "the path of a PEM private key file", t.key_file);
    const bool ca_ok =
        ReadString(s->Get("ca_file"), "the path of a PEM CA certificate file", t.ca_file);
    t.cert_file = Resolve(t.cert_file);
    t.key_file = Resolve(t.key_file);
    t.ca_file = Resolve(t.ca_file);

    if (mode_ok && t.client_mode != ClientTlsMode::kDisable) {
      std::vector<std::string_view> missing;
      if (s->Get("cert_file") == nullptr) missing.push_back("tls.cert_file");
      if (s->Get("key_file") == nullptr) missing.push_back("tls.key_file");
      if (!missing.empty()) {
        Error(s->Get("client_mode")->value_pos,
              fmt::format("tls.client_mode: '{}' needs {}; add {} (PEM files) or set "
                          "client_mode: disable",
                          ToString(t.client_mode), Join(missing, " and "),
                          missing.size() == 1 ? "it" : "them"));
      }
      if (cert_ok && !t.cert_file.empty()) CheckReadable(*s->Get("cert_file"), t.cert_file);
      if (key_ok && !t.key_file.empty()) CheckReadable(*s->Get("key_file"), t.key_file);
    }
    if (ca_ok && !t.ca_file.empty()) CheckReadable(*s->Get("ca_file"), t.ca_file);
  }

  void ParseEndpoint(const YAML::Node& node, Pos pos, const std::string& path, EndpointConfig& e) {
    const std::optional<Section> s = ReadMap(node, pos, path, kEndpointKeys);
    if (!s) return;
    if (Require(*s, "host", "the server's host name or IP address, such as 'host: 10.0.0.5'")) {
      ReadString(s->Get("host"), "a host name or IP address", e.host);
    }
    ReadInt(s->Get("port"), 1, 65535, "", e.port);
    if (Require(*s, "dbname", "the database to use on that server, such as 'dbname: app'")) {
      ReadString(s->Get("dbname"), "a database name", e.dbname);
    }
    if (Require(*s, "user", "the role pgring logs in as, such as 'user: app'")) {
      ReadString(s->Get("user"), "a user name", e.user);
    }
    std::optional<Secret> secret;
    ReadPasswordSource(*s, Verifier::kRefused, Required::kYes, secret, nullptr);
    if (secret) e.password = *std::move(secret);
    ReadEnum(s->Get("sslmode"), kSslModes, e.sslmode);
  }

  void ParseShards(const Section& top, std::vector<ShardConfig>& shards) {
    const Field* f = top.Get("shards");
    if (f == nullptr) {
      Error(top.pos,
            "missing required key 'shards'; add a list of shards, each with a name and a "
            "primary server");
      return;
    }
    std::optional<std::vector<Item>> items = ReadList(*f, "name: shard0");
    if (!items) return;
    if (items->empty()) {
      Error(f->value_pos,
            "shards: the list is empty; add at least one shard with a name and a primary");
      return;
    }
    std::map<std::string, Pos> names;
    std::map<std::string, std::pair<std::string, Pos>> servers;  // "host:port/dbname"
    for (const Item& item : *items) {
      const std::optional<Section> s = ReadMap(item.node, item.pos, item.path, kShardKeys);
      if (!s) continue;
      ShardConfig& shard = shards.emplace_back();
      if (Require(*s, "name", "a unique name such as 'name: shard0'") &&
          ReadString(s->Get("name"), "a shard name", shard.name)) {
        const Field* name = s->Get("name");
        if (!IsShardName(shard.name)) {
          Error(name->value_pos, fmt::format("{}: '{}' is not a valid shard name; use 1 to 63 "
                                             "letters, digits, '_' or '-'",
                                             name->path, shard.name));
        } else if (auto [it, inserted] = names.emplace(shard.name, name->value_pos); !inserted) {
          Error(name->value_pos, fmt::format("{}: duplicate shard name '{}' (first defined at "
                                             "line {}); give every shard a unique name",
                                             name->path, shard.name, it->second.line));
        }
      }
      if (Require(*s, "primary", "the primary server: host, port, dbname, user and a password")) {
        const Field* p = s->Get("primary");
        ParseEndpoint(p->value, p->value_pos, p->path, shard.primary);
        const EndpointConfig& e = shard.primary;
        if (!e.host.empty() && !e.dbname.empty()) {
          const std::string server = fmt::format("{}:{}/{}", ToLower(e.host), e.port, e.dbname);
          auto [it, inserted] = servers.emplace(server, std::pair(shard.name, p->value_pos));
          if (!inserted) {
            Error(p->value_pos,
                  fmt::format("{}: the same server and database ({}) as the "
                              "primary of shard '{}' (line {}); every shard "
                              "needs a database of its own",
                              p->path, server, it->second.first, it->second.second.line));
          }
        }
      }
      if (const Field* r = s->Get("replicas")) {
        if (std::optional<std::vector<Item>> replicas = ReadList(*r, "host: 10.0.0.6")) {
          for (const Item& ri : *replicas) {
            ParseEndpoint(ri.node, ri.pos, ri.path, shard.replicas.emplace_back());
          }
        }
      }
    }
  }

  void ParseRing(const Field* f, RingConfig& r) {
    const std::optional<Section> s = ReadSection(f, {}, "ring", kRingKeys);
    if (!s) return;
    ReadInt(s->Get("vnodes"), 1, 65536, "virtual nodes per shard", r.vnodes);
  }

  void ParseTables(const Field* f, std::vector<TableConfig>& tables) {
    if (f == nullptr) return;
    std::optional<std::vector<Item>> items = ReadList(*f, "name: orders");
    if (!items) return;
    std::map<std::string, Pos> seen;
    for (const Item& item : *items) {
      const std::optional<Section> s = ReadMap(item.node, item.pos, item.path, kTableKeys);
      if (!s) continue;
      TableConfig& t = tables.emplace_back();
      std::string label = "table";
      if (Require(*s, "name", "the table's name, such as 'name: orders'") &&
          ReadString(s->Get("name"), "a table name", t.name)) {
        const Field* name = s->Get("name");
        t.name = ToLower(t.name);
        label = fmt::format("table '{}'", t.name);
        const std::string_view n = t.name;
        const size_t dot = n.find('.');
        const bool valid = dot == std::string_view::npos
                               ? IsIdentifier(n)
                               : IsIdentifier(n.substr(0, dot)) && IsIdentifier(n.substr(dot + 1));
        if (!valid) {
          Error(name->value_pos,
                fmt::format("{}: '{}' is not a valid table name; write name or schema.name, "
                            "each part a letter or '_' followed by letters, digits or '_'",
                            name->path, t.name));
        } else if (auto [it, inserted] = seen.emplace(TableIdentity(t.name), name->value_pos);
                   !inserted) {
          Error(name->value_pos, fmt::format("{}: duplicate table '{}' (first defined at line "
                                             "{}); list each table once",
                                             name->path, t.name, it->second.line));
        }
      }
      const bool kind_ok = ReadEnum(s->Get("kind"), kTableKinds, t.kind);
      const Field* key = s->Get("shard_key");
      const Field* type = s->Get("key_type");
      if (!kind_ok) continue;
      if (t.kind == TableKind::kReference) {
        if (key != nullptr) {
          Error(key->key_pos, fmt::format("{}: reference {} cannot have a shard_key (it is "
                                          "copied in full to every shard); remove shard_key "
                                          "or set kind: sharded",
                                          item.path, label));
        }
        if (type != nullptr) {
          Error(type->key_pos, fmt::format("{}: reference {} cannot have a key_type; remove "
                                           "key_type or set kind: sharded",
                                           item.path, label));
        }
        continue;
      }
      if (key == nullptr) {
        Error(s->pos, fmt::format("{}: sharded {} has no shard_key; add 'shard_key: <column>' "
                                  "naming the column that picks the shard, or set kind: "
                                  "reference",
                                  item.path, label));
      } else if (ReadString(key, "a column name", t.shard_key)) {
        t.shard_key = ToLower(t.shard_key);
        if (!IsIdentifier(t.shard_key)) {
          Error(key->value_pos,
                fmt::format("{}: '{}' is not a valid column name; use a letter or '_' "
                            "followed by letters, digits or '_'",
                            key->path, t.shard_key));
        }
      }
      ReadEnum(type, kKeyTypes, t.key_type);
    }
  }

  void ParseDefaultShard(const Field* f, Config& c) {
    // An empty value means the same as no key: unknown tables are an error.
    if (f == nullptr || f->value.IsNull()) return;
    if (!f->value.IsScalar()) {
      Error(f->value_pos,
            fmt::format("default_shard: expected a shard name, got {}", Describe(f->value)));
      return;
    }
    c.default_shard = f->value.Scalar();
    if (c.default_shard.empty() || c.shards.empty() || c.FindShard(c.default_shard) != nullptr) {
      return;
    }
    std::vector<std::string_view> names;
    for (const auto& s : c.shards) {
      if (IsShardName(s.name) && std::find(names.begin(), names.end(), s.name) == names.end()) {
        names.push_back(s.name);
      }
    }
    std::string message = fmt::format(
        "default_shard: '{}' is not the name of a shard; use one of: {}, or remove "
        "default_shard",
        c.default_shard, Join(names));
    if (std::optional<std::string> match = ClosestMatch(c.default_shard, names)) {
      message += fmt::format(" (did you mean '{}'?)", *match);
    }
    Error(f->value_pos, std::move(message));
  }

  void ParseLogging(const Field* f, LoggingConfig& l) {
    const std::optional<Section> s = ReadSection(f, {}, "logging", kLoggingKeys);
    if (!s) return;
    std::string_view level = l.level;
    if (ReadEnum(s->Get("level"), kLogLevels, level)) l.level = std::string(level);
    ReadEnum(s->Get("format"), kLogFormats, l.format);
  }

  std::string file_;
  std::string base_dir_;
  std::vector<ConfigError> errors_;
};

}  // namespace

std::vector<ConfigError> BuildConfig(const YAML::Node& root, const std::string& file,
                                     const std::string& base_dir, Config& config) {
  return Builder(file, base_dir).Build(root, config);
}

}  // namespace pgring::conf
