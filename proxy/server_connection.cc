#include "proxy/server_connection.h"

#include "proxy/str.h"
#include "protocol/auth.h"
#include "protocol/messages.h"
#include "protocol/sql_error.h"
#include "proxy/frame_io.h"

namespace pgring::proxy {
namespace {

using namespace asio::experimental::awaitable_operators;
using protocol::SqlError;

absl::Status ConnectError(const conf::EndpointConfig& ep, std::string_view what) {
  return SqlError(absl::StatusCode::kUnavailable, "08006",
                  Cat("cannot connect to server ", ep.host, ":", ep.port, ": ", what),
                  "check that the shard is running and reachable, and its host/port in the "
                  "pgring configuration");
}

// TLS toward servers without certificate verification (sslmode prefer/require, as in
// libpq: encryption without authentication of the server).
asio::ssl::context& DefaultClientTls() {
  static asio::ssl::context ctx = [] {
    asio::ssl::context c(asio::ssl::context::tls_client);
    c.set_verify_mode(asio::ssl::verify_none);
    return c;
  }();
  return ctx;
}

}  // namespace

uint64_t ServerConnection::EvictLeastRecent() {
  uint64_t victim = 0, oldest = UINT64_MAX;
  for (const auto& [sid, t] : prepared_) {
    if (t < oldest) {
      oldest = t;
      victim = sid;
    }
  }
  if (victim != 0) prepared_.erase(victim);
  return victim;
}

awaitable<absl::StatusOr<std::unique_ptr<ServerConnection>>> ServerConnection::Connect(
    const conf::EndpointConfig& ep, conf::Duration timeout, asio::ssl::context* tls_ctx,
    std::string_view application_name) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer deadline(ex, timeout);

  boost::system::error_code ec;
  std::vector<tcp::endpoint> endpoints;
  auto addr = asio::ip::make_address(ep.host, ec);
  if (!ec) {
    endpoints.emplace_back(addr, ep.port);
  } else {
    tcp::resolver resolver(ex);
    auto [rec, results] =
        co_await resolver.async_resolve(ep.host, std::to_string(ep.port), use_nothrow);
    if (rec) co_return ConnectError(ep, Cat("cannot resolve host: ", rec.message()));
    for (const auto& r : results) endpoints.push_back(r.endpoint());
  }

  TcpSocket socket(IoContextOf(ex));
  auto connected = co_await (asio::async_connect(socket, endpoints, use_nothrow) ||
                             deadline.async_wait(use_nothrow));
  if (connected.index() == 1) co_return ConnectError(ep, "connect timed out");
  auto [cec, unused] = std::get<0>(connected);
  if (cec) co_return ConnectError(ep, cec.message());
  socket.set_option(tcp::no_delay(true), ec);

  auto conn = std::make_unique<ServerConnection>(std::move(socket));
  conn->host_ = ep.host;
  conn->port_ = ep.port;
  asio::ssl::context* ctx = tls_ctx != nullptr ? tls_ctx : &DefaultClientTls();
  auto login =
      co_await (conn->Login(ep, application_name, *ctx) || deadline.async_wait(use_nothrow));
  if (login.index() == 1) co_return ConnectError(ep, "login timed out");
  if (auto st = std::get<0>(login); !st.ok()) co_return st;
  co_return conn;
}

awaitable<absl::Status> ServerConnection::Login(const conf::EndpointConfig& ep,
                                                std::string_view application_name,
                                                asio::ssl::context& tls_ctx) {
  protocol::Buffer out;
  if (ep.sslmode != conf::SslMode::kDisable) {
    protocol::WriteSslRequest(out);
    if (auto ec = co_await stream_.WriteAll(out.Readable())) co_return ConnectError(ep, ec.message());
    out.Clear();
    auto [ec, n] = co_await stream_.ReadSome(in_, 1);
    if (ec || n == 0) co_return ConnectError(ep, "connection closed during SSL negotiation");
    auto answer = static_cast<char>(in_.Readable()[0]);
    in_.Consume(1);
    if (answer == 'S') {
      if (auto hec = co_await stream_.StartTls(tls_ctx, asio::ssl::stream_base::client)) {
        co_return ConnectError(ep, Cat("TLS handshake failed: ", hec.message()));
      }
    } else if (ep.sslmode == conf::SslMode::kRequire) {
      co_return ConnectError(ep, "server does not support TLS but sslmode is require");
    }
  }

  std::pair<std::string_view, std::string_view> params[] = {
      {"user", ep.user},
      {"database", ep.dbname},
      {"application_name", application_name},
      {"client_encoding", "UTF8"},
  };
  protocol::WriteStartupMessage(out, params);
  if (auto ec = co_await stream_.WriteAll(out.Readable())) co_return ConnectError(ep, ec.message());
  out.Clear();

  std::optional<protocol::ScramClient> scram;
  for (;;) {
    auto frame = co_await ReadFrame(stream_, in_, FrameKind::kTyped);
    if (!frame.ok()) co_return ConnectError(ep, protocol::MessageOf(frame.status()));
    const auto& f = *frame;
    switch (f.type) {
      case protocol::be::kAuthentication: {
        auto auth = protocol::ParseAuthentication(f.body);
        if (!auth) co_return ConnectError(ep, "malformed authentication request");
        switch (auth->code) {
          case protocol::AuthCode::kOk:
            break;
          case protocol::AuthCode::kCleartextPassword:
            protocol::WritePasswordMessage(out, ep.password.value);
            break;
          case protocol::AuthCode::kMd5Password: {
            if (auth->data.size() != 4) co_return ConnectError(ep, "malformed MD5 salt");
            std::span<const std::byte, 4> salt(auth->data.data(), 4);
            protocol::WritePasswordMessage(
                out, protocol::Md5PasswordResponse(ep.user, ep.password.value, salt));
            break;
          }
          case protocol::AuthCode::kSasl: {
            scram.emplace(ep.password.value);
            protocol::WriteSaslInitialResponse(out, protocol::kScramSha256, scram->ClientFirst());
            break;
          }
          case protocol::AuthCode::kSaslContinue: {
            if (!scram) co_return ConnectError(ep, "unexpected SASL continue");
            std::string_view data(reinterpret_cast<const char*>(auth->data.data()),
                                  auth->data.size());
            auto final_msg = scram->HandleServerFirst(data);
            if (!final_msg.ok()) co_return ConnectError(ep, protocol::MessageOf(final_msg.status()));
            protocol::WriteSaslResponse(out, *final_msg);
            break;
          }
          case protocol::AuthCode::kSaslFinal: {
            if (!scram) co_return ConnectError(ep, "unexpected SASL final");
            std::string_view data(reinterpret_cast<const char*>(auth->data.data()),
                                  auth->data.size());
            if (auto st = scram->VerifyServerFinal(data); !st.ok()) {
              co_return ConnectError(ep, Cat("server signature mismatch: ", protocol::MessageOf(st)));
            }
            break;
          }
          default:
            co_return ConnectError(
                ep, Cat("unsupported authentication method ",
                                 static_cast<int32_t>(auth->code),
                                 " requested by the server; use scram-sha-256, md5 or password"));
        }
        break;
      }
      case protocol::be::kErrorResponse: {
        auto fields = protocol::ParseErrorFields(f.body);
        std::string msg = fields ? std::string(fields->message()) : "malformed error";
        std::string state = fields ? std::string(fields->sqlstate()) : "08006";
        co_return SqlError(absl::StatusCode::kUnavailable, state.empty() ? "08006" : state,
                           Cat("server ", ep.host, ":", ep.port, " refused login as \"",
                                        ep.user, "\": ", msg),
                           "check the shard's user and password source in the pgring "
                           "configuration");
      }
      case protocol::be::kParameterStatus: {
        if (auto ps = protocol::ParseParameterStatus(f.body)) {
          parameters_.emplace_back(std::string(ps->name), std::string(ps->value));
        }
        break;
      }
      case protocol::be::kBackendKeyData: {
        if (auto k = protocol::ParseBackendKeyData(f.body)) {
          backend_pid_ = k->pid;
          backend_secret_ = k->secret;
        }
        break;
      }
      case protocol::be::kReadyForQuery: {
        in_.Consume(f.size);
        co_return absl::OkStatus();
      }
      default:
        break;  // NoticeResponse, NegotiateProtocolVersion: nothing to do
    }
    in_.Consume(f.size);
    if (!out.empty()) {
      if (auto ec = co_await stream_.WriteAll(out.Readable())) co_return ConnectError(ep, ec.message());
      out.Clear();
    }
  }
}

}  // namespace pgring::proxy
