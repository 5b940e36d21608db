#include "proxy/client_handshake.h"

#include <openssl/rand.h>

#include "proxy/str.h"
#include "absl/strings/str_join.h"
#include "protocol/auth.h"
#include "protocol/messages.h"
#include "protocol/sql_error.h"
#include "proxy/cancel_registry.h"
#include "proxy/frame_io.h"

namespace pgring::proxy {
namespace {

using protocol::SqlError;

std::string_view AsText(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

absl::Status Fail(std::string_view sqlstate, std::string_view message, std::string_view hint = {}) {
  return SqlError(absl::StatusCode::kPermissionDenied, sqlstate, message, hint);
}

// Reads one typed password-phase message ('p') and returns its body.
awaitable<absl::StatusOr<std::string>> ReadPasswordFrame(Stream& stream, protocol::Buffer& in) {
  auto frame = co_await ReadFrame(stream, in, FrameKind::kTyped, 64 * 1024);
  if (!frame.ok()) co_return frame.status();
  if (frame->type != protocol::fe::kPassword) {
    auto type = frame->type;
    in.Consume(frame->size);
    co_return Fail("08P01", Cat("expected a password message, got message type '",
                                         std::string(1, type), "'"));
  }
  std::string body(AsText(frame->body));
  in.Consume(frame->size);
  co_return body;
}

// On success AuthenticationSASLFinal is in `greeting`, not sent yet.
awaitable<absl::Status> AuthScram(Stream& stream, protocol::Buffer& in, std::string_view user_name,
                                  const protocol::ScramVerifier& verifier,
                                  protocol::Buffer& greeting) {
  protocol::Buffer out;
  std::string_view mechs[] = {protocol::kScramSha256};
  protocol::WriteAuthenticationSasl(out, mechs);
  if (auto ec = co_await stream.WriteAll(out.Readable())) co_return Fail("08006", ec.message());
  out.Clear();

  auto first = co_await ReadPasswordFrame(stream, in);
  if (!first.ok()) co_return first.status();
  auto init = protocol::ParseSaslInitialResponse(
      std::as_bytes(std::span(first->data(), first->size())));
  if (!init) co_return Fail("08P01", "malformed SASLInitialResponse");
  if (init->mechanism != protocol::kScramSha256) {
    co_return Fail("28000", Cat("unsupported SASL mechanism \"", init->mechanism,
                                         "\"; pgring offers SCRAM-SHA-256"));
  }
  protocol::ScramServer server(verifier);
  auto server_first = server.HandleClientFirst(AsText(init->data));
  if (!server_first.ok()) co_return Fail("08P01", protocol::MessageOf(server_first.status()));
  protocol::WriteAuthenticationSaslContinue(out, *server_first);
  if (auto ec = co_await stream.WriteAll(out.Readable())) co_return Fail("08006", ec.message());
  out.Clear();

  auto final_msg = co_await ReadPasswordFrame(stream, in);
  if (!final_msg.ok()) co_return final_msg.status();
  auto server_final = server.HandleClientFinal(*final_msg);
  if (!server_final.ok()) {
    if (server_final.status().code() != absl::StatusCode::kPermissionDenied) {
      co_return Fail("08P01", Cat("malformed SCRAM message: ",
                                  protocol::MessageOf(server_final.status())));
    }
    co_return Fail("28P01",
                   Cat("password authentication failed for user \"", user_name, "\""));
  }
  protocol::WriteAuthenticationSaslFinal(greeting, *server_final);
  co_return absl::OkStatus();
}

awaitable<absl::Status> AuthMd5(Stream& stream, protocol::Buffer& in,
                                const conf::UserConfig& user) {
  if (!user.password) {
    co_return Fail("28000",
                   Cat("user \"", user.name, "\" has only a SCRAM verifier; md5 "
                                "authentication needs a password"),
                   "configure a password (or password_file / password_env) for this user, or "
                   "use auth.method: scram-sha-256");
  }
  std::array<std::byte, 4> salt;
  RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), 4);
  protocol::Buffer out;
  protocol::WriteAuthenticationMd5(out, salt);
  if (auto ec = co_await stream.WriteAll(out.Readable())) co_return Fail("08006", ec.message());
  auto pw = co_await ReadPasswordFrame(stream, in);
  if (!pw.ok()) co_return pw.status();
  auto resp = protocol::ParsePasswordMessage(std::as_bytes(std::span(pw->data(), pw->size())));
  if (!resp || !protocol::CheckMd5Response(*resp, user.name, user.password->value, salt)) {
    co_return Fail("28P01",
                   Cat("password authentication failed for user \"", user.name, "\""));
  }
  co_return absl::OkStatus();
}

// A verifier for a user pgring does not know: random key material from a per-process
// secret, with a salt that stays the same for each name (as a real user's would).
protocol::ScramVerifier UnknownUserVerifier(std::string_view user) {
  static const std::string secret = [] {
    std::string s(32, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(s.data()), static_cast<int>(s.size()));
    return s;
  }();
  protocol::ScramVerifier v;
  v.salt = protocol::Md5PasswordResponse(user, secret, std::span<const std::byte, 4>(
                                                            reinterpret_cast<const std::byte*>(
                                                                secret.data()),
                                                            4))
               .substr(3, 16);
  v.stored_key = secret;
  v.server_key = secret;
  return v;
}

}  // namespace

VerifierMap BuildVerifiers(const conf::Config& config) {
  VerifierMap map;
  for (const auto& u : config.auth.users) {
    if (u.scram_verifier) {
      if (auto v = protocol::ParseScramVerifier(*u.scram_verifier); v.ok()) map[u.name] = *v;
    } else if (u.password) {
      map[u.name] = protocol::MakeScramVerifier(u.password->value);
    }
  }
  return map;
}

awaitable<void> SendFatal(Stream& stream, std::string_view sqlstate, std::string_view message,
                          std::string_view hint) {
  protocol::Buffer out;
  protocol::WriteErrorResponse(out, protocol::Severity::kFatal, sqlstate, message, {}, hint);
  co_await stream.WriteAll(out.Readable());
}

awaitable<absl::StatusOr<HandshakeResult>> ClientHandshake(Stream& stream, protocol::Buffer& in,
                                                           const conf::Config& config, Port port,
                                                           asio::ssl::context* tls_ctx,
                                                           CancelRegistry& cancels,
                                                           const VerifierMap& verifiers) {
  bool tls_done = false;
  for (;;) {
    auto frame = co_await ReadFrame(stream, in, FrameKind::kStartup, protocol::kMaxStartupPacket);
    if (!frame.ok()) {
      if (frame.status().code() == absl::StatusCode::kInvalidArgument) {
        co_await SendFatal(stream, "08P01", Cat("invalid startup packet: ",
                                                         protocol::MessageOf(frame.status())));
      }
      co_return frame.status();
    }
    auto packet = protocol::ParseStartupPacket(frame->body);
    in.Consume(frame->size);
    if (!packet) {
      co_await SendFatal(stream, "08P01", "malformed startup packet");
      co_return SqlError(absl::StatusCode::kInvalidArgument, "08P01", "malformed startup packet");
    }
    switch (packet->kind) {
      case protocol::StartupKind::kSslRequest: {
        protocol::Buffer out;
        bool accept = tls_ctx != nullptr && !tls_done;
        protocol::WriteSslResponse(out, accept);
        if (auto ec = co_await stream.WriteAll(out.Readable())) co_return Fail("08006", ec.message());
        if (accept) {
          if (!in.empty()) {
            co_return Fail("08P01", "unencrypted data after SSL request");
          }
          if (auto ec = co_await stream.StartTls(*tls_ctx, asio::ssl::stream_base::server)) {
            co_return Fail("08006", Cat("TLS handshake failed: ", ec.message()));
          }
          tls_done = true;
        }
        continue;
      }
      case protocol::StartupKind::kGssEncRequest: {
        protocol::Buffer out;
        protocol::WriteSslResponse(out, false);  // 'N': GSSAPI encryption is not offered
        if (auto ec = co_await stream.WriteAll(out.Readable())) co_return Fail("08006", ec.message());
        continue;
      }
      case protocol::StartupKind::kCancel: {
        cancels.Cancel({packet->cancel.pid, packet->cancel.secret});
        co_return HandshakeResult{HandshakeOutcome::kCancelHandled, {}};
      }
      case protocol::StartupKind::kUnsupportedVersion: {
        auto v = packet->startup.protocol_version;
        std::string msg = Cat("unsupported frontend protocol ", v >> 16, ".", v & 0xffff,
                                       ": pgring supports protocol 3.0");
        co_await SendFatal(stream, "0A000", msg);
        co_return SqlError(absl::StatusCode::kUnimplemented, "0A000", msg);
      }
      case protocol::StartupKind::kStartup:
        break;
    }

    if (config.tls.client_mode == conf::ClientTlsMode::kRequire && !tls_done) {
      std::string msg = "pgring requires TLS for client connections";
      co_await SendFatal(stream, "28000", msg, "connect with sslmode=require");
      co_return Fail("28000", msg);
    }

    HandshakeResult result;
    auto& id = result.identity;
    for (const auto& [k, v] : packet->startup.params) {
      if (k == "user") {
        id.user = std::string(v);
      } else if (k == "database") {
        id.database = std::string(v);
      } else {
        id.params.emplace_back(std::string(k), std::string(v));
      }
    }
    if (id.user.empty()) {
      co_await SendFatal(stream, "28000", "no PostgreSQL user name specified in startup packet");
      co_return Fail("28000", "no user name");
    }
    if (id.database.empty()) id.database = id.user;

    std::string expected_db = port == Port::kAdmin ? "pgring" : config.listen.database;
    if (id.database != expected_db) {
      std::string msg = Cat("database \"", id.database, "\" does not exist");
      std::string hint =
          port == Port::kAdmin
              ? std::string("the admin port serves only the database \"pgring\"")
              : Cat("connect to database \"", expected_db,
                             "\" (pgring serves one logical database; the admin database "
                             "\"pgring\" is on port ",
                             config.listen.admin_port, ")");
      co_await SendFatal(stream, "3D000", msg, hint);
      co_return Fail("3D000", msg);
    }

    const conf::UserConfig* user = config.FindUser(id.user);
    id.is_admin = user != nullptr && user->admin;
    if (port == Port::kAdmin && !id.is_admin) {
      std::string msg = Cat("user \"", id.user, "\" is not an admin user of pgring");
      co_await SendFatal(stream, "28000", msg, "set admin: true for this user in auth.users");
      co_return Fail("28000", msg);
    }

    absl::Status auth = absl::OkStatus();
    if (config.auth.method == conf::AuthMethod::kTrust) {
      // trust: any configured user (or any user at all when none are configured).
      if (user == nullptr && !config.auth.users.empty()) {
        auth = Fail("28000", Cat("role \"", id.user, "\" is not a pgring user"));
      }
    } else if (config.auth.method == conf::AuthMethod::kScramSha256) {
      auto v = user != nullptr ? verifiers.find(user->name) : verifiers.end();
      if (v == verifiers.end()) {
        // Unknown user: run the exchange against a verifier nobody knows the password
        // of, so the failure looks like a wrong password and user names cannot be probed.
        auth = co_await AuthScram(stream, in, id.user, UnknownUserVerifier(id.user),
                                 result.greeting);
      } else {
        auth = co_await AuthScram(stream, in, id.user, v->second, result.greeting);
      }
    } else if (user == nullptr) {
      auth = Fail("28P01", Cat("password authentication failed for user \"", id.user, "\""));
    } else {
      auth = co_await AuthMd5(stream, in, *user);
    }
    if (!auth.ok()) {
      // A failed or cancelled read (kUnavailable, ReadFrame) is not the client's mistake:
      // the connection is gone, or the caller ends it (pool.startup_timeout) and says why.
      if (auth.code() != absl::StatusCode::kUnavailable) {
        co_await SendFatal(stream, protocol::SqlStateOf(auth), protocol::MessageOf(auth),
                           protocol::HintOf(auth));
      }
      co_return auth;
    }
    protocol::WriteAuthenticationOk(result.greeting);
    co_return result;
  }
}

}  // namespace pgring::proxy
