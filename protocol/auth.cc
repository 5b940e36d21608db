#include "protocol/auth.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <array>
#include <charconv>
#include <cstring>
#include <memory>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace pgring::protocol {
namespace {

constexpr size_t kKeyLen = SHA256_DIGEST_LENGTH;  // 32
constexpr size_t kRawNonceLen = 18;               // as PostgreSQL (SCRAM_RAW_NONCE_LEN)
constexpr size_t kDefaultSaltLen = 16;            // as PostgreSQL (SCRAM_DEFAULT_SALT_LEN)
constexpr int kDefaultIterations = 4096;
constexpr std::string_view kVerifierPrefix = "SCRAM-SHA-256$";

// Concatenates views. (absl::StrCat does not take std::string_view with Debian's abseil,
// which is built with its own absl::string_view.)
std::string Cat(std::initializer_list<std::string_view> parts) {
  size_t n = 0;
  for (std::string_view p : parts) n += p.size();
  std::string out;
  out.reserve(n);
  for (std::string_view p : parts) out.append(p);
  return out;
}

// OpenSSL's hash primitives fail only when memory runs out or the library is broken; going
// on with a zero key would let anyone in, so such a failure stops the process.
[[noreturn]] void CryptoFailure(const char* what) {
  std::fprintf(stderr, "pgring: OpenSSL %s failed\n", what);
  std::abort();
}

// ---- Base64 (RFC 4648, with padding). Strict: no whitespace (SCRAM and pg_authid never
// carry any) and only the canonical encoding.

constexpr char kB64Alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64Encode(std::string_view in) {
  // Written in place (a SCRAM login encodes a nonce, a salt and a signature).
  std::string out((in.size() + 2) / 3 * 4, '\0');
  char* o = out.data();
  const auto byte = [&in](size_t k) { return uint32_t{static_cast<uint8_t>(in[k])}; };
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3, o += 4) {
    const uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    o[0] = kB64Alphabet[(v >> 18) & 63];
    o[1] = kB64Alphabet[(v >> 12) & 63];
    o[2] = kB64Alphabet[(v >> 6) & 63];
    o[3] = kB64Alphabet[v & 63];
  }
  const size_t left = in.size() - i;
  if (left > 0) {
    uint32_t v = byte(i) << 16;
    if (left == 2) v |= byte(i + 1) << 8;
    o[0] = kB64Alphabet[(v >> 18) & 63];
    o[1] = kB64Alphabet[(v >> 12) & 63];
    o[2] = left == 2 ? kB64Alphabet[(v >> 6) & 63] : '=';
    o[3] = '=';
  }
  return out;
}

// Each character's 6-bit value; -1 for a character outside the alphabet.
constexpr std::array<int8_t, 256> kB64Values = [] {
  std::array<int8_t, 256> t{};
  t.fill(-1);
  for (int k = 0; k < 64; ++k) t[static_cast<uint8_t>(kB64Alphabet[k])] = static_cast<int8_t>(k);
  return t;
}();

std::optional<std::string> Base64Decode(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  const int pad = in.empty() || in.back() != '=' ? 0 : in[in.size() - 2] == '=' ? 2 : 1;
  std::string out(in.size() / 4 * 3 - static_cast<size_t>(pad), '\0');
  char* o = out.data();
  for (size_t i = 0; i < in.size(); i += 4) {
    const int used = i + 4 == in.size() ? 4 - pad : 4;  // characters that carry bits
    uint32_t v = 0;
    for (int j = 0; j < 4; ++j) {
      int d = 0;
      if (j < used) {
        d = kB64Values[static_cast<uint8_t>(in[i + static_cast<size_t>(j)])];
        if (d < 0) return std::nullopt;  // includes '=' anywhere but the end
      }
      v = (v << 6) | static_cast<uint32_t>(d);
    }
    // Unused low bits must be zero, so every byte string has exactly one accepted encoding.
    if ((used == 2 && (v & 0xffff) != 0) || (used == 3 && (v & 0xff) != 0)) return std::nullopt;
    *o++ = static_cast<char>(v >> 16);
    if (used > 2) *o++ = static_cast<char>(v >> 8);
    if (used > 3) *o++ = static_cast<char>(v);
  }
  return out;
}

// ---- Hash primitives ---------------------------------------------------------------------------

// An HMAC-SHA-256 context under one key. OpenSSL 3's one-shot HMAC() looks the MAC and
// the digest up by name on every call, which costs several times the hashing itself
// (about 20,000 instructions of a 25,000-instruction HMAC); and keying a context hashes
// the key's two padded blocks (RFC 2104) each time. Keyed once, a context starts each
// MAC again from those two blocks' state (EVP_MAC_init without a key).
class HmacSha256Context {
 public:
  HmacSha256Context() {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
    if (mac != nullptr) ctx_ = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);  // the context holds its own reference
    char digest[] = OSSL_DIGEST_NAME_SHA2_256;
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end()};
    if (ctx_ == nullptr || EVP_MAC_CTX_set_params(ctx_, params) != 1) {
      CryptoFailure("HMAC-SHA-256 set-up");
    }
  }
  ~HmacSha256Context() { EVP_MAC_CTX_free(ctx_); }
  HmacSha256Context(const HmacSha256Context&) = delete;
  HmacSha256Context& operator=(const HmacSha256Context&) = delete;

  void SetKey(std::string_view key) {
    // A null key would mean "the previous key" to EVP_MAC_init.
    static const unsigned char kNoKey = 0;
    const auto* k = key.empty() ? &kNoKey : reinterpret_cast<const unsigned char*>(key.data());
    if (EVP_MAC_init(ctx_, k, key.size(), nullptr) != 1) CryptoFailure("HMAC-SHA-256 key");
    key_ = key;
  }
  const std::string& key() const { return key_; }

  std::string Mac(std::string_view data) {
    const auto* message = reinterpret_cast<const unsigned char*>(data.data());
    std::string out(kKeyLen, '\0');
    auto* mac = reinterpret_cast<unsigned char*>(out.data());
    size_t len = 0;
    if (EVP_MAC_init(ctx_, nullptr, 0, nullptr) != 1 ||
        EVP_MAC_update(ctx_, message, data.size()) != 1 ||
        EVP_MAC_final(ctx_, mac, &len, out.size()) != 1 || len != kKeyLen) {
      CryptoFailure("HMAC-SHA-256");
    }
    return out;
  }

 private:
  EVP_MAC_CTX* ctx_ = nullptr;
  std::string key_;
};

// Contexts keyed with the keys a thread used last: a SCRAM login MACs with its user's
// StoredKey and ServerKey, the same two keys for every login of that user.
class HmacSha256Contexts {
 public:
  HmacSha256Context& For(std::string_view key) {
    for (auto& c : contexts_)
      if (c && c->key() == key) return *c;
    auto& c = contexts_[next_];
    next_ = (next_ + 1) % contexts_.size();
    if (!c) c = std::make_unique<HmacSha256Context>();
    c->SetKey(key);
    return *c;
  }

 private:
  std::array<std::unique_ptr<HmacSha256Context>, 8> contexts_;
  size_t next_ = 0;
};

std::string HmacSha256(std::string_view key, std::string_view data) {
  static thread_local HmacSha256Contexts contexts;
  return contexts.For(key).Mac(data);
}

std::string Sha256(std::string_view data) {
  // Fetched once (the one-shot SHA256() fetches the digest by name on every call).
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, OSSL_DIGEST_NAME_SHA2_256, nullptr);
  std::string out(kKeyLen, '\0');
  unsigned int len = 0;
  if (kSha256 == nullptr ||
      EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(out.data()), &len,
                 kSha256, nullptr) != 1 ||
      len != kKeyLen) {
    CryptoFailure("SHA-256");
  }
  return out;
}

std::string SaltedPassword(std::string_view password, std::string_view salt, int iterations) {
  std::string out(kKeyLen, '\0');
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(),
                        static_cast<int>(kKeyLen),
                        reinterpret_cast<unsigned char*>(out.data())) != 1) {
    CryptoFailure("PBKDF2-HMAC-SHA-256");
  }
  return out;
}

// OpenSSL's generator output, drawn 1 KiB at a time per thread: a RAND_bytes call costs
// several thousand instructions of locking and set-up whatever its size, and a login needs
// 18 bytes. Bytes handed out are wiped from the pool.
class RandomPool {
 public:
  bool Take(unsigned char* out, size_t n) {
    if (n > sizeof(pool_)) return RAND_bytes(out, static_cast<int>(n)) == 1;
    if (left_ < n) {
      if (RAND_bytes(pool_, static_cast<int>(sizeof(pool_))) != 1) return false;
      left_ = sizeof(pool_);
    }
    unsigned char* from = pool_ + sizeof(pool_) - left_;
    std::memcpy(out, from, n);
    OPENSSL_cleanse(from, n);
    left_ -= n;
    return true;
  }

 private:
  unsigned char pool_[1024];
  size_t left_ = 0;
};

bool RandomBytes(std::string& out, size_t n) {
  static thread_local RandomPool pool;
  out.assign(n, '\0');
  return pool.Take(reinterpret_cast<unsigned char*>(out.data()), n);
}

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string Xor(std::string_view a, std::string_view b) {
  std::string out(a);
  for (size_t i = 0; i < out.size() && i < b.size(); ++i) out[i] = static_cast<char>(out[i] ^ b[i]);
  return out;
}

// SASLprep (RFC 4013) as PostgreSQL's pg_saslprep applies it: an ASCII password is returned
// unchanged. Full SASLprep of non-ASCII input needs Unicode NFKC tables, which pgring does
// not carry; the bytes are used as they are, which is also what PostgreSQL does when
// normalization fails (invalid UTF-8, prohibited characters). The result differs from
// PostgreSQL's only for non-ASCII passwords that NFKC or the RFC 4013 mapping would change.
std::string_view SaslPrep(std::string_view password) { return password; }

// The SCRAM keys of one password: ClientKey, StoredKey = H(ClientKey), ServerKey.
struct ScramKeys {
  std::string client_key;
  std::string stored_key;
  std::string server_key;
};

ScramKeys DeriveKeys(std::string_view password, std::string_view salt, int iterations) {
  const std::string salted = SaltedPassword(SaslPrep(password), salt, iterations);
  ScramKeys k;
  k.client_key = HmacSha256(salted, "Client Key");
  k.stored_key = Sha256(k.client_key);
  k.server_key = HmacSha256(salted, "Server Key");
  return k;
}

// The keys a client derived from (password, salt, iterations), kept per thread: PBKDF2 with
// PostgreSQL's 4096 iterations costs a few milliseconds of CPU, and a PostgreSQL role keeps
// its salt until its password changes, so every connection pgring opens toward the same
// server and role would derive the same keys again. Entries are found by the password's
// SHA-256 (the cache holds no copy of the password), the salt and the iteration count; a
// changed password or salt misses. A few entries cover every (shard, role) a pool uses;
// when full, the oldest is replaced.
class ClientKeyCache {
 public:
  ScramKeys Get(std::string_view password, std::string_view salt, int iterations) {
    std::string password_digest = Sha256(password);
    for (const Entry& e : entries_) {
      if (e.iterations == iterations && e.salt == salt &&
          ConstantTimeEqual(e.password_digest, password_digest)) {
        ++stats_.hits;
        return e.keys;
      }
    }
    ++stats_.misses;
    ScramKeys keys = DeriveKeys(password, salt, iterations);
    Entry entry{std::move(password_digest), std::string(salt), iterations, keys};
    if (entries_.size() < kCapacity) {
      entries_.push_back(std::move(entry));
    } else {
      entries_[next_victim_] = std::move(entry);
      next_victim_ = (next_victim_ + 1) % kCapacity;
    }
    return keys;
  }

  ScramClientKeyCacheStats stats() const { return stats_; }

  static ClientKeyCache& ForThread() {
    static thread_local ClientKeyCache cache;
    return cache;
  }

 private:
  static constexpr size_t kCapacity = 16;
  struct Entry {
    std::string password_digest;
    std::string salt;
    int iterations;
    ScramKeys keys;
  };
  std::vector<Entry> entries_;
  size_t next_victim_ = 0;
  ScramClientKeyCacheStats stats_;
};

// ---- SCRAM attribute syntax (RFC 5802 section 7) ----------------------------------------------

// Printable per RFC 5802: %x21-2B / %x2D-7E (no ',').
bool IsPrintable(std::string_view s) {
  for (char c : s) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

// Reads "<attr>=<value>" up to the next ',' (consumed) or the end.
std::optional<std::string_view> ReadAttr(std::string_view& in, char attr) {
  if (in.size() < 2 || in[0] != attr || in[1] != '=') return std::nullopt;
  in.remove_prefix(2);
  const size_t comma = in.find(',');
  std::string_view value = in.substr(0, comma);
  in.remove_prefix(comma == std::string_view::npos ? in.size() : comma + 1);
  return value;
}

// Reads any attribute (a letter, '=', value); returns the letter.
std::optional<char> ReadAnyAttr(std::string_view& in) {
  if (in.empty()) return std::nullopt;
  const char c = in[0];
  if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return std::nullopt;
  if (!ReadAttr(in, c)) return std::nullopt;
  return c;
}

std::optional<int> ParsePositiveInt(std::string_view s) {
  int v = 0;
  if (s.empty() || s[0] < '0' || s[0] > '9') return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v <= 0) return std::nullopt;
  return v;
}

// RFC 5802 saslname: ',' and '=' are escaped.
std::string EscapeSaslName(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out += c;
    }
  }
  return out;
}

absl::Status Malformed(std::string_view what) {
  return absl::InvalidArgumentError(Cat({"malformed SCRAM message: ", what}));
}

bool ValidVerifier(const ScramVerifier& v) {
  return v.iterations > 0 && v.stored_key.size() == kKeyLen && v.server_key.size() == kKeyLen;
}

std::string Md5Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_md5(), nullptr) != 1 || len != 16) {
    return {};
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(32);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

// "md5" + md5hex(inner_hex + salt), the second round of MD5 authentication.
std::string Md5Salted(std::string_view inner_hex, std::span<const std::byte, 4> salt) {
  std::string data(inner_hex);
  data.append(reinterpret_cast<const char*>(salt.data()), salt.size());
  std::string outer = Md5Hex(data);
  if (outer.empty()) return {};
  return "md5" + outer;
}

}  // namespace

// ---- Verifier --------------------------------------------------------------------------------

absl::StatusOr<ScramVerifier> ParseScramVerifier(std::string_view text) {
  auto invalid = [] { return absl::InvalidArgumentError("invalid SCRAM-SHA-256 verifier"); };
  if (!text.starts_with(kVerifierPrefix)) return invalid();
  text.remove_prefix(kVerifierPrefix.size());
  const size_t colon1 = text.find(':');
  const size_t dollar = text.find('$');
  if (colon1 == std::string_view::npos || dollar == std::string_view::npos || dollar < colon1) {
    return invalid();
  }
  const size_t colon2 = text.find(':', dollar);
  if (colon2 == std::string_view::npos) return invalid();
  auto iterations = ParsePositiveInt(text.substr(0, colon1));
  auto salt = Base64Decode(text.substr(colon1 + 1, dollar - colon1 - 1));
  auto stored = Base64Decode(text.substr(dollar + 1, colon2 - dollar - 1));
  auto server = Base64Decode(text.substr(colon2 + 1));
  if (!iterations || !salt || !stored || !server) return invalid();
  ScramVerifier v;
  v.iterations = *iterations;
  v.salt = std::move(*salt);
  v.stored_key = std::move(*stored);
  v.server_key = std::move(*server);
  if (!ValidVerifier(v)) return invalid();
  return v;
}

std::string FormatScramVerifier(const ScramVerifier& v) {
  return Cat({kVerifierPrefix, std::to_string(v.iterations), ":", Base64Encode(v.salt), "$",
              Base64Encode(v.stored_key), ":", Base64Encode(v.server_key)});
}

ScramVerifier MakeScramVerifier(std::string_view password, int iterations, std::string_view salt) {
  ScramVerifier v;
  v.iterations = iterations > 0 ? iterations : kDefaultIterations;
  if (salt.empty()) {
    if (!RandomBytes(v.salt, kDefaultSaltLen)) CryptoFailure("RAND_bytes");
  } else {
    v.salt = std::string(salt);
  }
  ScramKeys k = DeriveKeys(password, v.salt, v.iterations);
  v.stored_key = std::move(k.stored_key);
  v.server_key = std::move(k.server_key);
  return v;
}

// ---- Server ----------------------------------------------------------------------------------

ScramServer::ScramServer(ScramVerifier verifier) : verifier_(std::move(verifier)) {}

ScramServer::ScramServer(ScramVerifier verifier, std::string server_nonce)
    : verifier_(std::move(verifier)), fixed_server_nonce_(std::move(server_nonce)) {}

absl::StatusOr<std::string> ScramServer::HandleClientFirst(std::string_view client_first) {
  if (state_ != State::kExpectClientFirst) {
    return absl::FailedPreconditionError("SCRAM client-first-message out of order");
  }
  // Any failure below ends the exchange; success moves on to kExpectClientFinal.
  state_ = State::kDone;
  if (!ValidVerifier(verifier_)) return absl::FailedPreconditionError("invalid SCRAM verifier");
  if (client_first.find('\0') != std::string_view::npos) return Malformed("contains NUL");

  std::string_view in = client_first;
  // gs2-header: cbind-flag "," [authzid] ","
  if (in.empty()) return Malformed("empty client-first-message");
  const char flag = in[0];
  if (flag == 'p') {
    return absl::InvalidArgumentError(
        "SCRAM channel binding (\"p=\") was requested, but pgring offers only SCRAM-SHA-256 "
        "without channel binding, not SCRAM-SHA-256-PLUS");
  }
  if (flag != 'n' && flag != 'y') return Malformed("unexpected channel-binding flag");
  if (in.size() < 2 || in[1] != ',') return Malformed("comma expected after channel-binding flag");
  in.remove_prefix(2);
  if (in.starts_with("a=")) {
    return absl::InvalidArgumentError("SCRAM authorization identity (\"a=\") is not supported");
  }
  if (in.empty() || in[0] != ',') return Malformed("comma expected after gs2 header");
  in.remove_prefix(1);

  client_first_bare_ = std::string(in);
  if (in.starts_with("m=")) {
    return absl::InvalidArgumentError("SCRAM mandatory extension (\"m=\") is not supported");
  }
  // The user name is ignored, as PostgreSQL ignores it: the startup packet names the user.
  if (!ReadAttr(in, 'n')) return Malformed("user name (\"n=\") expected");
  auto client_nonce = ReadAttr(in, 'r');
  if (!client_nonce || client_nonce->empty() || !IsPrintable(*client_nonce)) {
    return Malformed("printable nonce (\"r=\") expected");
  }
  while (!in.empty()) {  // optional extensions, none of which pgring supports
    if (!ReadAnyAttr(in)) return Malformed("garbage after nonce");
  }

  std::string server_nonce = fixed_server_nonce_;
  if (server_nonce.empty()) {
    std::string raw;
    if (!RandomBytes(raw, kRawNonceLen)) return absl::InternalError("RAND_bytes failed");
    server_nonce = Base64Encode(raw);
  }
  nonce_ = Cat({*client_nonce, server_nonce});
  server_first_ = Cat({"r=", nonce_, ",s=", Base64Encode(verifier_.salt),
                       ",i=", std::to_string(verifier_.iterations)});
  cbind_flag_ = flag;
  state_ = State::kExpectClientFinal;
  return server_first_;
}

absl::StatusOr<std::string> ScramServer::HandleClientFinal(std::string_view client_final) {
  if (state_ != State::kExpectClientFinal) {
    return absl::FailedPreconditionError("SCRAM client-final-message out of order");
  }
  state_ = State::kDone;
  if (client_final.find('\0') != std::string_view::npos) return Malformed("contains NUL");

  std::string_view in = client_final;
  auto cbind = ReadAttr(in, 'c');
  if (!cbind) return Malformed("channel binding (\"c=\") expected");
  // Without channel binding the attribute is the base64 of the gs2 header the client sent
  // first: "n,," is "biws", "y,," is "eSws". A mismatch means a tampered exchange.
  const std::string_view expected_cbind = cbind_flag_ == 'y' ? "eSws" : "biws";
  if (*cbind != expected_cbind) return Malformed("unexpected channel-binding attribute");
  auto nonce = ReadAttr(in, 'r');
  if (!nonce || *nonce != nonce_) return Malformed("nonce does not match");

  // Extensions may come before the proof, which must be the last attribute.
  std::string_view without_proof;
  std::string_view proof_b64;
  for (;;) {
    const size_t proof_at = client_final.size() - in.size();
    if (in.starts_with("p=")) {
      without_proof = client_final.substr(0, proof_at - 1);  // drop the ',' before "p="
      proof_b64 = *ReadAttr(in, 'p');
      break;
    }
    if (!ReadAnyAttr(in)) return Malformed("proof (\"p=\") expected");
  }
  // ReadAttr stops at a ',', so anything left after the proof is garbage.
  if (!in.empty() || client_final.back() == ',') return Malformed("garbage after proof");
  auto proof = Base64Decode(proof_b64);
  if (!proof || proof->size() != kKeyLen) return Malformed("invalid proof");

  const std::string auth_message =
      Cat({client_first_bare_, ",", server_first_, ",", without_proof});
  const std::string client_signature = HmacSha256(verifier_.stored_key, auth_message);
  const std::string client_key = Xor(*proof, client_signature);
  if (!ConstantTimeEqual(Sha256(client_key), verifier_.stored_key)) {
    return absl::PermissionDeniedError("password authentication failed");
  }
  return Cat({"v=", Base64Encode(HmacSha256(verifier_.server_key, auth_message))});
}

// ---- Client ----------------------------------------------------------------------------------

ScramClient::ScramClient(std::string password) : password_(std::move(password)) {}

ScramClient::ScramClient(std::string password, std::string client_nonce, std::string_view user)
    : password_(std::move(password)), user_(user), client_nonce_(std::move(client_nonce)) {}

ScramClientKeyCacheStats ScramClientKeyCacheStatsForThread() {
  return ClientKeyCache::ForThread().stats();
}

std::string ScramClient::ClientFirst() {
  if (client_nonce_.empty()) {
    std::string raw;
    if (!RandomBytes(raw, kRawNonceLen)) CryptoFailure("RAND_bytes");
    client_nonce_ = Base64Encode(raw);
  }
  client_first_bare_ = Cat({"n=", EscapeSaslName(user_), ",r=", client_nonce_});
  expected_server_signature_.clear();
  return Cat({"n,,", client_first_bare_});
}

absl::StatusOr<std::string> ScramClient::HandleServerFirst(std::string_view server_first) {
  if (client_first_bare_.empty() || !expected_server_signature_.empty()) {
    return absl::FailedPreconditionError("SCRAM server-first-message out of order");
  }
  if (server_first.find('\0') != std::string_view::npos) return Malformed("contains NUL");
  std::string_view in = server_first;
  if (in.starts_with("m=")) {
    return absl::InvalidArgumentError("SCRAM mandatory extension (\"m=\") is not supported");
  }
  auto nonce = ReadAttr(in, 'r');
  if (!nonce || !IsPrintable(*nonce) || nonce->size() <= client_nonce_.size() ||
      !nonce->starts_with(client_nonce_)) {
    return Malformed("server nonce does not extend the client nonce");
  }
  auto salt_b64 = ReadAttr(in, 's');
  auto salt = salt_b64 ? Base64Decode(*salt_b64) : std::nullopt;
  if (!salt) return Malformed("invalid salt (\"s=\")");
  auto iterations_text = ReadAttr(in, 'i');
  auto iterations = iterations_text ? ParsePositiveInt(*iterations_text) : std::nullopt;
  if (!iterations) return Malformed("invalid iteration count (\"i=\")");
  if (!in.empty() || server_first.back() == ',') {
    return Malformed("garbage at end of server-first-message");
  }

  const ScramKeys keys = ClientKeyCache::ForThread().Get(password_, *salt, *iterations);
  const std::string without_proof = Cat({"c=biws,r=", *nonce});
  const std::string auth_message = Cat({client_first_bare_, ",", server_first, ",", without_proof});
  const std::string proof = Xor(keys.client_key, HmacSha256(keys.stored_key, auth_message));
  expected_server_signature_ = HmacSha256(keys.server_key, auth_message);
  return Cat({without_proof, ",p=", Base64Encode(proof)});
}

absl::Status ScramClient::VerifyServerFinal(std::string_view server_final) {
  if (expected_server_signature_.empty()) {
    return absl::FailedPreconditionError("SCRAM server-final-message out of order");
  }
  const std::string expected = std::exchange(expected_server_signature_, {});
  std::string_view in = server_final;
  if (auto error = ReadAttr(in, 'e')) {
    return absl::PermissionDeniedError(Cat({"server rejected SCRAM authentication: ", *error}));
  }
  auto signature_b64 = ReadAttr(in, 'v');
  if (!signature_b64 || !in.empty() || server_final.back() == ',') {
    return Malformed("server signature (\"v=\") expected");
  }
  auto signature = Base64Decode(*signature_b64);
  if (!signature || !ConstantTimeEqual(*signature, expected)) {
    return absl::PermissionDeniedError("SCRAM server signature does not match");
  }
  return absl::OkStatus();
}

// ---- MD5 -------------------------------------------------------------------------------------

std::string Md5PasswordHash(std::string_view user, std::string_view password) {
  std::string inner = Md5Hex(Cat({password, user}));
  if (inner.empty()) return {};
  return "md5" + inner;
}

std::string Md5PasswordResponse(std::string_view user, std::string_view password,
                                std::span<const std::byte, 4> salt) {
  std::string inner = Md5Hex(Cat({password, user}));
  if (inner.empty()) return {};
  return Md5Salted(inner, salt);
}

bool CheckMd5Response(std::string_view response, std::string_view user, std::string_view password,
                      std::span<const std::byte, 4> salt) {
  const std::string expected = Md5PasswordResponse(user, password, salt);
  return !expected.empty() && ConstantTimeEqual(response, expected);
}

bool CheckMd5ResponseWithHash(std::string_view response, std::string_view stored_hash,
                              std::span<const std::byte, 4> salt) {
  if (stored_hash.size() != 35 || !stored_hash.starts_with("md5")) return false;
  const std::string expected = Md5Salted(stored_hash.substr(3), salt);
  return !expected.empty() && ConstantTimeEqual(response, expected);
}

}  // namespace pgring::protocol
