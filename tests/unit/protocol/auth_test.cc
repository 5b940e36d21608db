#include "protocol/auth.h"

#include <catch2/catch.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "test_util.h"

namespace pgring::protocol {
namespace {

// RFC 7677 section 3 example.
constexpr std::string_view kRfcClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const std::string kRfcSalt("\x5b\x6d\x99\x68\x9d\x12\x35\x8e\xec\xa0\x4b\x14\x12\x36\xfa\x81",
                           16);  // W22ZaJ0SNY7soEsUEjb6gQ==
constexpr std::string_view kRfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kRfcClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view kRfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

// Computed by PostgreSQL 15 (SET password_encryption = 'scram-sha-256'; CREATE ROLE x
// PASSWORD 'p'; SELECT rolpassword FROM pg_authid), and the same for 'pässwörd' (UTF-8).
constexpr std::string_view kPgVerifierP =
    "SCRAM-SHA-256$4096:KoPNFQSAUfiq30gBCPEpWg==$uplHOAM0zwlbVXpjfzYvfViAVZZNN+SQDPrnzr+jezk=:"
    "F7NIELA7Ghxk8a2L3dZ5qDmIBFmvVBrlwav6b/Oue/E=";
constexpr std::string_view kPgVerifierUmlaut =
    "SCRAM-SHA-256$4096:PII9XaNhNKHTXZfCw6Sl2g==$xfUMMav1l0KJYuwpGrXvNOyG4W8jjaa2QbKHSn/p4FI=:"
    "6jrUCd6DZykT6RZuQgdFyhYFh6JIYIN+/7AbrwiLhcw=";

ScramVerifier RfcVerifier() { return MakeScramVerifier("pencil", 4096, kRfcSalt); }

// Runs a whole exchange; returns the first error from either side.
absl::Status Exchange(const ScramVerifier& stored, const std::string& password) {
  ScramServer server(stored);
  ScramClient client(password);
  auto server_first = server.HandleClientFirst(client.ClientFirst());
  if (!server_first.ok()) return server_first.status();
  auto client_final = client.HandleServerFirst(*server_first);
  if (!client_final.ok()) return client_final.status();
  auto server_final = server.HandleClientFinal(*client_final);
  if (!server_final.ok()) return server_final.status();
  return client.VerifyServerFinal(*server_final);
}

TEST_CASE("SCRAM: RFC 7677 test vector, client and server", "[auth][scram]") {
  ScramClient client("pencil", std::string(kRfcClientNonce), "user");
  CHECK(client.ClientFirst() == kRfcClientFirst);

  ScramServer server(RfcVerifier(), std::string(kRfcServerNonce));
  auto server_first = server.HandleClientFirst(kRfcClientFirst);
  REQUIRE(server_first.ok());
  CHECK(*server_first == kRfcServerFirst);

  auto client_final = client.HandleServerFirst(kRfcServerFirst);
  REQUIRE(client_final.ok());
  CHECK(*client_final == kRfcClientFinal);

  auto server_final = server.HandleClientFinal(kRfcClientFinal);
  REQUIRE(server_final.ok());
  CHECK(*server_final == kRfcServerFinal);
  CHECK(client.VerifyServerFinal(kRfcServerFinal).ok());
}

TEST_CASE("SCRAM: wrong proof is PermissionDenied", "[auth][scram]") {
  ScramServer server(RfcVerifier(), std::string(kRfcServerNonce));
  REQUIRE(server.HandleClientFirst(kRfcClientFirst).ok());
  std::string tampered(kRfcClientFinal);
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  auto r = server.HandleClientFinal(tampered);
  CHECK(r.status().code() == absl::StatusCode::kPermissionDenied);
  // The exchange is over.
  CHECK(server.HandleClientFinal(kRfcClientFinal).status().code() ==
        absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("SCRAM: server and client against each other", "[auth][scram]") {
  const ScramVerifier v = MakeScramVerifier("correct horse");
  CHECK(v.salt.size() == 16);
  CHECK(v.iterations == 4096);
  CHECK(Exchange(v, "correct horse").ok());
  CHECK(Exchange(v, "correct horsE").code() == absl::StatusCode::kPermissionDenied);
  CHECK(Exchange(v, "").code() == absl::StatusCode::kPermissionDenied);
  // Two verifiers of one password differ (random salt) and both work.
  const ScramVerifier w = MakeScramVerifier("correct horse");
  CHECK(w.salt != v.salt);
  CHECK(Exchange(w, "correct horse").ok());
  // Other iteration counts.
  CHECK(Exchange(MakeScramVerifier("x", 1), "x").ok());
  CHECK(MakeScramVerifier("x", 0).iterations == 4096);
}

TEST_CASE("SCRAM: logins of many users interleaved, each with its own keys", "[auth][scram]") {
  // More users than the HMAC contexts a thread keeps keyed: contexts are reused for the
  // same key and re-keyed for others, and no login may use another user's keys.
  std::vector<std::string> passwords;
  std::vector<ScramVerifier> verifiers;
  for (int i = 0; i < 20; ++i) {
    passwords.push_back("password-" + std::to_string(i));
    verifiers.push_back(MakeScramVerifier(passwords.back(), 1));
  }
  for (int round = 0; round < 3; ++round) {
    for (size_t k = 0; k < verifiers.size(); ++k) {
      const size_t i = round == 1 ? verifiers.size() - 1 - k : (k * 7) % verifiers.size();
      INFO("round " << round << ", user " << i);
      CHECK(Exchange(verifiers[i], passwords[i]).ok());
      const size_t other = (i + 1) % verifiers.size();
      CHECK(Exchange(verifiers[i], passwords[other]).code() ==
            absl::StatusCode::kPermissionDenied);
    }
  }
  // The RFC 7677 exchange still gives its published proof and signature afterwards.
  ScramServer server(RfcVerifier(), std::string(kRfcServerNonce));
  REQUIRE(server.HandleClientFirst(kRfcClientFirst).ok());
  auto server_final = server.HandleClientFinal(kRfcClientFinal);
  REQUIRE(server_final.ok());
  CHECK(*server_final == kRfcServerFinal);
}

TEST_CASE("SCRAM client: derived keys are cached by password, salt and iterations",
          "[auth][scram]") {
  const ScramVerifier v = MakeScramVerifier("cached secret", 4096, "fixed salt 16 by");
  const auto before = ScramClientKeyCacheStatsForThread();
  REQUIRE(Exchange(v, "cached secret").ok());
  const auto first = ScramClientKeyCacheStatsForThread();
  CHECK(first.misses == before.misses + 1);
  // The same role again: no derivation, and the exchange still proves the password.
  REQUIRE(Exchange(v, "cached secret").ok());
  const auto second = ScramClientKeyCacheStatsForThread();
  CHECK(second.hits == first.hits + 1);
  CHECK(second.misses == first.misses);
  // Another password under the same salt and iterations is not served the cached keys.
  CHECK(Exchange(v, "cached secreT").code() == absl::StatusCode::kPermissionDenied);
  // Nor is the same password under another salt or iteration count.
  CHECK(Exchange(MakeScramVerifier("cached secret", 4096, "other salt 16 by"), "cached secret")
            .ok());
  CHECK(Exchange(MakeScramVerifier("cached secret", 2, "fixed salt 16 by"), "cached secret").ok());
  CHECK(Exchange(MakeScramVerifier("other", 4096, "fixed salt 16 by"), "cached secret").code() ==
        absl::StatusCode::kPermissionDenied);
  // More roles than the cache holds: old entries are replaced, every exchange still works.
  for (int i = 0; i < 40; ++i) {
    const std::string password = "role " + std::to_string(i);
    CHECK(Exchange(MakeScramVerifier(password, 2, "salt of every role"), password).ok());
  }
  CHECK(Exchange(v, "cached secret").ok());
}

TEST_CASE("SCRAM: verifiers computed by PostgreSQL 15", "[auth][scram][interop]") {
  auto pg = ParseScramVerifier(kPgVerifierP);
  REQUIRE(pg.ok());
  CHECK(pg->iterations == 4096);
  CHECK(Exchange(*pg, "p").ok());
  CHECK(Exchange(*pg, "q").code() == absl::StatusCode::kPermissionDenied);
  // MakeScramVerifier with PostgreSQL's salt gives PostgreSQL's verifier, byte for byte.
  CHECK(FormatScramVerifier(MakeScramVerifier("p", 4096, pg->salt)) == kPgVerifierP);

  // A non-ASCII password already in NFKC form: raw bytes equal PostgreSQL's SASLprep.
  auto umlaut = ParseScramVerifier(kPgVerifierUmlaut);
  REQUIRE(umlaut.ok());
  CHECK(Exchange(*umlaut, "p\xc3\xa4ssw\xc3\xb6rd").ok());
  CHECK(Exchange(*umlaut, "passwort").code() == absl::StatusCode::kPermissionDenied);
  CHECK(FormatScramVerifier(MakeScramVerifier("p\xc3\xa4ssw\xc3\xb6rd", 4096, umlaut->salt)) ==
        kPgVerifierUmlaut);
}

TEST_CASE("SCRAM server: every exchange gets a server nonce of its own", "[auth][scram]") {
  // Nonces come from a per-thread pool of generator output: across more than one refill
  // of it, no two are the same.
  const ScramVerifier v = MakeScramVerifier("pw");
  std::set<std::string> nonces;
  for (int i = 0; i < 500; ++i) {
    ScramServer server(v);
    auto first = server.HandleClientFirst("n,,n=,r=clientnonce");
    REQUIRE(first.ok());
    // "r=<client nonce><server nonce>,s=...,i=..."
    const std::string nonce = first->substr(2, first->find(',') - 2);
    REQUIRE(nonce.starts_with("clientnonce"));
    CHECK(nonce.size() > std::string_view("clientnonce").size() + 16);
    nonces.insert(nonce);
  }
  CHECK(nonces.size() == 500);
}

TEST_CASE("SCRAM verifier: format and parse round trip", "[auth][scram]") {
  const ScramVerifier v = RfcVerifier();
  const std::string text = FormatScramVerifier(v);
  CHECK(text.starts_with("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"));
  auto back = ParseScramVerifier(text);
  REQUIRE(back.ok());
  CHECK(back->iterations == v.iterations);
  CHECK(back->salt == v.salt);
  CHECK(back->stored_key == v.stored_key);
  CHECK(back->server_key == v.server_key);
  CHECK(back->stored_key.size() == 32);
  CHECK(FormatScramVerifier(*ParseScramVerifier(kPgVerifierP)) == kPgVerifierP);
}

TEST_CASE("SCRAM verifier: malformed text", "[auth][scram]") {
  const std::string good(kPgVerifierP);
  const std::string keys = good.substr(good.find('$', 14));  // "$stored:server"
  for (const std::string& bad : {
           std::string(""), std::string("md5a80a6c0967e923f0e3eba985228a4417"),
           "SCRAM-SHA-1$4096:KoPNFQSAUfiq30gBCPEpWg==" + keys,
           "SCRAM-SHA-256$0:KoPNFQSAUfiq30gBCPEpWg==" + keys,
           "SCRAM-SHA-256$-1:KoPNFQSAUfiq30gBCPEpWg==" + keys,
           "SCRAM-SHA-256$abc:KoPNFQSAUfiq30gBCPEpWg==" + keys,
           "SCRAM-SHA-256$99999999999:KoPNFQSAUfiq30gBCPEpWg==" + keys,
           "SCRAM-SHA-256$4096KoPNFQSAUfiq30gBCPEpWg==" + keys,   // no ':'
           "SCRAM-SHA-256$4096:KoPNFQSAUfiq30gBCPEpWg=" + keys,   // bad base64 length
           "SCRAM-SHA-256$4096:Ko!NFQSAUfiq30gBCPEpWg==" + keys,  // bad base64 character
           "SCRAM-SHA-256$4096:KoPNFQSAUfiq30gBCPEpWh==" + keys,  // non-canonical base64
           good.substr(0, good.rfind(':')),                       // no server key
           good.substr(0, good.size() - 4) + "AA==",              // server key 31 bytes
           good + "AAAA",                                         // server key 35 bytes
           std::string("SCRAM-SHA-256$4096:KoPNFQSAUfiq30gBCPEpWg==$c2hvcnQ=:c2hvcnQ="),  // short
       }) {
    INFO(bad);
    CHECK(ParseScramVerifier(bad).status().code() == absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("SCRAM server: channel binding and gs2 header", "[auth][scram]") {
  const ScramVerifier v = MakeScramVerifier("pw", 4096, "saltsalt");
  {
    ScramServer s(v);
    auto r = s.HandleClientFirst("p=tls-server-end-point,,n=,r=abcdef");
    REQUIRE(r.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(r.status().message().find("SCRAM-SHA-256-PLUS") != std::string_view::npos);
  }
  {
    // "y,,": the client could bind but thinks we cannot; the final message must say "eSws".
    ScramServer s(v, "SERVERNONCE");
    auto first = s.HandleClientFirst("y,,n=,r=abc");
    REQUIRE(first.ok());
    CHECK(*first == "r=abcSERVERNONCE,s=c2FsdHNhbHQ=,i=4096");
    CHECK(s.HandleClientFinal("c=biws,r=abcSERVERNONCE,p=AAAA").status().code() ==
          absl::StatusCode::kInvalidArgument);
  }
  {
    ScramServer s(v, "SERVERNONCE");
    REQUIRE(s.HandleClientFirst("n,,n=,r=abc").ok());
    CHECK(s.HandleClientFinal("c=eSws,r=abcSERVERNONCE,p=AAAA").status().code() ==
          absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("SCRAM server: malformed client-first", "[auth][scram]") {
  const ScramVerifier v = MakeScramVerifier("pw", 4096, "saltsalt");
  for (std::string_view bad :
       {std::string_view(""), std::string_view("n"), std::string_view("n,"),
        std::string_view("x,,n=,r=abc"), std::string_view("n,a=bob,n=,r=abc"),
        std::string_view("n,,m=ext,n=,r=abc"), std::string_view("n,,r=abc"),
        std::string_view("n,,n=,r="), std::string_view("n,,n=,"),
        std::string_view("n,,n=,r=ab\x01"
                         "c"),
        std::string_view("n,,n=,r=abc,!bad"), std::string_view("n,,n=,r=abc,x"),
        std::string_view("n,,n=,r=a\0c", 10), std::string_view("n,,n=user"),
        std::string_view("nn,n=,r=abc")}) {
    INFO(bad);
    ScramServer s(v);
    CHECK(s.HandleClientFirst(bad).status().code() == absl::StatusCode::kInvalidArgument);
    // After an error the exchange is over.
    CHECK(s.HandleClientFirst("n,,n=,r=abc").status().code() ==
          absl::StatusCode::kFailedPrecondition);
  }
  // Extensions after the nonce and a user name are accepted (and ignored).
  ScramServer s(v);
  CHECK(s.HandleClientFirst("n,,n=someone=2Celse,r=abc,x=ext").ok());
}

TEST_CASE("SCRAM server: malformed client-final and ordering", "[auth][scram]") {
  ScramServer early(RfcVerifier());
  CHECK(early.HandleClientFinal(kRfcClientFinal).status().code() ==
        absl::StatusCode::kFailedPrecondition);

  const std::string nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
  const std::string proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  for (const std::string& bad : {
           std::string(""),
           "r=" + nonce + "," + proof,                       // no channel binding
           "c=biws,r=" + nonce.substr(0, 20) + "," + proof,  // client nonce only
           "c=biws,r=" + nonce + "X," + proof,               // wrong nonce
           "c=biws,r=" + nonce,                              // no proof
           "c=biws,r=" + nonce + ",",                        // no proof
           "c=biws,r=" + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ",  // bad b64
           "c=biws,r=" + nonce + ",p=AAAA",             // proof too short
           "c=biws,r=" + nonce + "," + proof + ",x=1",  // proof not last
           "c=biws,r=" + nonce + "," + proof + ",",     // trailing comma
           "c=biws,r=" + nonce + ",!=x," + proof,       // bad extension
           std::string(kRfcClientFinal) + std::string(1, '\0'),
       }) {
    INFO(bad);
    ScramServer s(RfcVerifier(), std::string(kRfcServerNonce));
    REQUIRE(s.HandleClientFirst(kRfcClientFirst).ok());
    CHECK(s.HandleClientFinal(bad).status().code() == absl::StatusCode::kInvalidArgument);
  }
  ScramServer invalid(ScramVerifier{});
  CHECK(invalid.HandleClientFirst(kRfcClientFirst).status().code() ==
        absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("SCRAM client: defaults, malformed server messages, server signature", "[auth][scram]") {
  ScramClient a("pw");
  ScramClient b("pw");
  const std::string first_a = a.ClientFirst();
  const std::string first_b = b.ClientFirst();
  CHECK(first_a.starts_with("n,,n=,r="));
  CHECK(first_a.size() == 8 + 24);  // 18 random bytes, base64
  CHECK(first_a != first_b);

  ScramClient early("pw");
  CHECK(early.HandleServerFirst(kRfcServerFirst).status().code() ==
        absl::StatusCode::kFailedPrecondition);
  CHECK(early.VerifyServerFinal(kRfcServerFinal).code() == absl::StatusCode::kFailedPrecondition);

  for (std::string_view bad : {
           std::string_view(""),
           std::string_view("r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),  // no ext.
           std::string_view("r=XXXXNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
           std::string_view("r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096"),
           std::string_view("r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0"),
           std::string_view("r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1"),
           std::string_view("r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096x"),
           std::string_view("r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,x=1"),
           std::string_view("r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"),
           std::string_view("r=rOprNGfwEbeRWgbNEkqOabc,i=4096"),
           std::string_view("m=x,r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
       }) {
    INFO(bad);
    ScramClient c("pencil", std::string(kRfcClientNonce), "user");
    c.ClientFirst();
    CHECK(c.HandleServerFirst(bad).status().code() == absl::StatusCode::kInvalidArgument);
  }

  auto final_after = [](std::string_view server_final) {
    ScramClient c("pencil", std::string(kRfcClientNonce), "user");
    c.ClientFirst();
    REQUIRE(c.HandleServerFirst(kRfcServerFirst).ok());
    return c.VerifyServerFinal(server_final);
  };
  CHECK(final_after(kRfcServerFinal).ok());
  CHECK(final_after("e=invalid-proof").code() == absl::StatusCode::kPermissionDenied);
  CHECK(final_after("v=AAAAZUn/dB5nLTJRsjl95G4=").code() == absl::StatusCode::kPermissionDenied);
  CHECK(final_after("v=5rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").code() ==
        absl::StatusCode::kPermissionDenied);
  CHECK(final_after("").code() == absl::StatusCode::kInvalidArgument);
  CHECK(final_after(std::string(kRfcServerFinal) + ",x=1").code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("SCRAM client: user names are escaped", "[auth][scram]") {
  ScramClient c("pw", "nonce", "a,b=c");
  CHECK(c.ClientFirst() == "n,,n=a=2Cb=3Dc,r=nonce");
}

TEST_CASE("SCRAM server: 10,000 random and mutated client messages", "[auth][scram][random]") {
  const ScramVerifier v = RfcVerifier();
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> byte(0x20, 0x7e);
  for (int i = 0; i < 10000; ++i) {
    ScramServer s(v, std::string(kRfcServerNonce));
    std::string first(kRfcClientFirst);
    std::string final(kRfcClientFinal);
    // Mutate one of the two messages in one place (or replace it by random bytes).
    std::string& target = i % 2 == 0 ? first : final;
    if (i % 10 == 0) {
      target = testing::RandomBody(rng, 40);
    } else {
      target[rng() % target.size()] = static_cast<char>(byte(rng));
    }
    auto server_first = s.HandleClientFirst(first);
    if (!server_first.ok()) continue;
    auto server_final = s.HandleClientFinal(final);
    if (server_final.ok()) {
      // Only the unchanged exchange may succeed: even the (ignored) user name is covered by
      // the proof, through the AuthMessage.
      REQUIRE(final == kRfcClientFinal);
      REQUIRE(first == kRfcClientFirst);
    }
  }
}

TEST_CASE("MD5: response and checks", "[auth][md5]") {
  const std::byte salt[4] = {std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
  // python3: 'md5' + md5(md5(b'pencil' + b'user').hexdigest().encode() + b'\x01\x02\x03\x04')
  CHECK(Md5PasswordResponse("user", "pencil", salt) == "md54376eb6913b38f9aaff38dc7cf19ca76");
  CHECK(CheckMd5Response("md54376eb6913b38f9aaff38dc7cf19ca76", "user", "pencil", salt));
  CHECK_FALSE(CheckMd5Response("md54376eb6913b38f9aaff38dc7cf19ca76", "user", "pencil2", salt));
  CHECK_FALSE(CheckMd5Response("md54376eb6913b38f9aaff38dc7cf19ca76", "usr", "pencil", salt));
  CHECK_FALSE(CheckMd5Response("md54376eb6913b38f9aaff38dc7cf19ca7", "user", "pencil", salt));
  CHECK_FALSE(CheckMd5Response("", "user", "pencil", salt));
  const std::byte other_salt[4] = {std::byte{1}, std::byte{2}, std::byte{3}, std::byte{5}};
  CHECK_FALSE(
      CheckMd5Response("md54376eb6913b38f9aaff38dc7cf19ca76", "user", "pencil", other_salt));

  // pg_authid.rolpassword of role "y" with password 'pencil' (password_encryption = md5).
  constexpr std::string_view kPgStored = "md5a80a6c0967e923f0e3eba985228a4417";
  CHECK(Md5PasswordHash("y", "pencil") == kPgStored);
  const std::string response = Md5PasswordResponse("y", "pencil", salt);
  CHECK(CheckMd5ResponseWithHash(response, kPgStored, salt));
  CHECK_FALSE(CheckMd5ResponseWithHash(response, kPgStored, other_salt));
  CHECK_FALSE(CheckMd5ResponseWithHash(response, "md5a80a6c0967e923f0e3eba985228a441", salt));
  CHECK_FALSE(CheckMd5ResponseWithHash(response, "SCRAM-SHA-256$4096:abc", salt));
}

}  // namespace
}  // namespace pgring::protocol
