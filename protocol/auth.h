// Password authentication of the PostgreSQL protocol: SCRAM-SHA-256 (RFC 5802 / 7677,
// as PostgreSQL implements it, without channel binding) on both sides, and MD5.
// https://www.postgresql.org/docs/15/sasl-authentication.html
// Pure: no I/O. Randomness comes from OpenSSL's RAND_bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace pgring::protocol {

inline constexpr std::string_view kScramSha256 = "SCRAM-SHA-256";

// A stored SCRAM verifier, as in pg_authid.rolpassword:
// "SCRAM-SHA-256$<iterations>:<salt base64>$<StoredKey base64>:<ServerKey base64>".
struct ScramVerifier {
  int iterations = 4096;
  std::string salt;        // raw bytes
  std::string stored_key;  // raw 32 bytes
  std::string server_key;  // raw 32 bytes
};
absl::StatusOr<ScramVerifier> ParseScramVerifier(std::string_view text);
std::string FormatScramVerifier(const ScramVerifier& v);
// Parses the pg_authid text form. InvalidArgument unless the prefix is "SCRAM-SHA-256$",
// iterations a positive decimal integer, every part valid base64 and both keys 32 bytes.
// Builds a verifier from a cleartext password (SASLprep is applied as PostgreSQL does for
// ASCII passwords; non-ASCII passwords are used as-is, as PostgreSQL does when SASLprep
// fails). `salt` empty: 16 random bytes. `iterations` below 1 means 4096.
ScramVerifier MakeScramVerifier(std::string_view password, int iterations = 4096,
                                std::string_view salt = {});

// Server side of one SCRAM-SHA-256 exchange (pgring authenticating a client).
//   ScramServer s(verifier);
//   auto first = s.HandleClientFirst(client_first);     // -> AuthenticationSASLContinue
//   auto final = s.HandleClientFinal(client_final);     // -> AuthenticationSASLFinal
// Errors are InvalidArgument (malformed message, channel binding "p=" requested, an
// authorization identity or a mandatory extension), PermissionDenied (wrong password),
// FailedPrecondition (calls out of order, or a verifier that is not 32-byte keys and
// positive iterations) or Internal (no randomness). Any error ends the exchange.
// The user name in client-first is ignored (as PostgreSQL does): the caller authenticates
// the user of the StartupMessage. One object per exchange; not thread-safe.
class ScramServer {
 public:
  explicit ScramServer(ScramVerifier verifier);
  // For tests: uses `server_nonce` (printable ASCII, no ',') instead of a random one.
  ScramServer(ScramVerifier verifier, std::string server_nonce);
  absl::StatusOr<std::string> HandleClientFirst(std::string_view client_first);
  absl::StatusOr<std::string> HandleClientFinal(std::string_view client_final);

 private:
  enum class State { kExpectClientFirst, kExpectClientFinal, kDone };

  ScramVerifier verifier_;
  std::string client_first_bare_;
  std::string server_first_;
  std::string nonce_;  // client nonce + server nonce
  std::string fixed_server_nonce_;
  char cbind_flag_ = 'n';  // gs2 header flag of client-first: 'n' or 'y'
  State state_ = State::kExpectClientFirst;
};

// Client side of one SCRAM-SHA-256 exchange (pgring authenticating to a server).
//   ScramClient c(password);
//   send c.ClientFirst();                                // SASLInitialResponse
//   send c.HandleServerFirst(server_first).value();      // SASLResponse
//   c.VerifyServerFinal(server_final);                   // after AuthenticationSASLFinal
// ClientFirst sends "n,,n=,r=<nonce>" as libpq does (no channel binding, empty user name:
// the server uses the user of the StartupMessage). HandleServerFirst returns InvalidArgument
// for a malformed or foreign-nonce server-first; VerifyServerFinal returns PermissionDenied
// when the server sent "e=..." or a signature that proves it does not know the password.
// Calls out of order give FailedPrecondition. One object per exchange; not thread-safe.
//
// The keys derived from the password (PBKDF2, a few milliseconds of CPU with PostgreSQL's
// 4096 iterations) are cached per thread by the password's SHA-256, the salt and the
// iteration count, so a second connection toward the same role derives nothing.
class ScramClient {
 public:
  explicit ScramClient(std::string password);
  // For tests: uses `client_nonce` (printable ASCII, no ',') instead of a random one and
  // sends `user` as the SCRAM user name (escaped as RFC 5802 requires).
  ScramClient(std::string password, std::string client_nonce, std::string_view user = {});
  std::string ClientFirst();
  absl::StatusOr<std::string> HandleServerFirst(std::string_view server_first);
  absl::Status VerifyServerFinal(std::string_view server_final);

 private:
  std::string password_;
  std::string user_;
  std::string client_nonce_;
  std::string client_first_bare_;
  std::string expected_server_signature_;
};

// How often this thread's ScramClient exchanges found their keys in the cache (for tests).
struct ScramClientKeyCacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
};
ScramClientKeyCacheStats ScramClientKeyCacheStatsForThread();

// "md5" + md5hex(md5hex(password + user) + salt), as a client answers AuthenticationMD5Password.
// Empty if MD5 is unavailable (an OpenSSL in FIPS mode).
std::string Md5PasswordResponse(std::string_view user, std::string_view password,
                                std::span<const std::byte, 4> salt);
// Checks a client's MD5 response against a cleartext password (constant-time compare).
bool CheckMd5Response(std::string_view response, std::string_view user, std::string_view password,
                      std::span<const std::byte, 4> salt);
// "md5" + md5hex(password + user): the form pg_authid stores for MD5 passwords.
std::string Md5PasswordHash(std::string_view user, std::string_view password);
// Checks a client's MD5 response against a stored "md5..." hash (35 characters), so a
// cleartext password need not be known. False for a malformed hash.
bool CheckMd5ResponseWithHash(std::string_view response, std::string_view stored_hash,
                              std::span<const std::byte, 4> salt);

}  // namespace pgring::protocol
