#include "conf/scram_verifier.h"

#include <catch2/catch.hpp>
#include <string>

namespace pgring::conf {
namespace {

// The verifier of password "reporting-secret" with salt "pgring-example-salt", 4096
// iterations, as PostgreSQL would store it.
constexpr std::string_view kValid =
    "SCRAM-SHA-256$4096:cGdyaW5nLWV4YW1wbGUtc2FsdA==$"
    "LWuIsjWCle6AmGQVAo6NO4NvEZrLm5JQRndNY7zFmUk=:qF0OK6ZP8gsJl7aAg8PTEd0MIq2tcTXi1ICrytl7HSU=";

constexpr std::string_view kKey = "LWuIsjWCle6AmGQVAo6NO4NvEZrLm5JQRndNY7zFmUk=";

std::string Message(std::string_view text) {
  absl::StatusOr<ScramVerifier> v = ParseScramVerifier(text);
  REQUIRE_FALSE(v.ok());
  std::string m(v.status().message());
  // The message must never echo the verifier or any base64 part of it.
  CHECK(m.find("cGdy") == std::string::npos);
  CHECK(m.find("LWuI") == std::string::npos);
  return m;
}

TEST_CASE("ParseScramVerifier decodes a PostgreSQL verifier", "[conf][scram]") {
  absl::StatusOr<ScramVerifier> v = ParseScramVerifier(kValid);
  REQUIRE(v.ok());
  CHECK(v->iterations == 4096);
  CHECK(v->salt == "pgring-example-salt");
  CHECK(v->stored_key.size() == 32);
  CHECK(v->server_key.size() == 32);
  CHECK(static_cast<unsigned char>(v->stored_key[0]) == 0x2d);  // 'LWuI' -> 2d 6b 88
}

TEST_CASE("ParseScramVerifier names the broken part", "[conf][scram]") {
  const std::string key = std::string(kKey);
  CHECK(Message("md5abcdef") == "it does not start with 'SCRAM-SHA-256$'");
  CHECK(Message("scram-sha-256$4096:cGdy$" + key + ":" + key) ==
        "it does not start with 'SCRAM-SHA-256$'");
  CHECK(Message("SCRAM-SHA-256$4096:cGdy") ==
        "the '$' between <iterations>:<salt> and <StoredKey>:<ServerKey> is missing");
  CHECK(Message("SCRAM-SHA-256$4096$" + key + ":" + key) ==
        "the ':' after the iteration count is missing");
  CHECK(Message("SCRAM-SHA-256$abc:cGdy$" + key + ":" + key) ==
        "the iteration count is not a number");
  CHECK(Message("SCRAM-SHA-256$0:cGdy$" + key + ":" + key) ==
        "the iteration count must be at least 1");
  CHECK(Message("SCRAM-SHA-256$99999999999999999999999:cGdy$" + key + ":" + key) ==
        "the iteration count is larger than 2147483647");
  CHECK(Message("SCRAM-SHA-256$-1:cGdy$" + key + ":" + key) ==
        "the iteration count is not a number");
  CHECK(Message("SCRAM-SHA-256$4096:cGd$" + key + ":" + key) == "the salt is not valid base64");
  CHECK(Message("SCRAM-SHA-256$4096:$" + key + ":" + key) == "the salt is not valid base64");
  CHECK(Message("SCRAM-SHA-256$4096:cGdy$" + key) ==
        "the ':' between StoredKey and ServerKey is missing");
  CHECK(Message("SCRAM-SHA-256$4096:cGdy$" + key + ":*" + key.substr(1)) ==
        "ServerKey is not valid base64");
  CHECK(Message("SCRAM-SHA-256$4096:cGdy$=" + key.substr(1) + ":" + key) ==
        "StoredKey is not valid base64");
  CHECK(Message("SCRAM-SHA-256$4096:cGdy$cGdy:" + key) ==
        "StoredKey decodes to 3 bytes instead of 32");
  CHECK(Message("SCRAM-SHA-256$4096:cGdy$" + key + ":cGdy") ==
        "ServerKey decodes to 3 bytes instead of 32");
}

}  // namespace
}  // namespace pgring::conf
