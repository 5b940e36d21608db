// The start of every client connection, before any query: SSLRequest/GSSENCRequest
// negotiation, CancelRequest handling, the StartupMessage and password authentication
// (scram-sha-256, md5 or trust, as configured). Used by both the client port and the
// admin port. Runs on the accepting worker's thread.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "protocol/auth.h"
#include "conf/config.h"
#include "protocol/buffer.h"
#include "proxy/asio.h"
#include "proxy/stream.h"

namespace pgring::proxy {

class CancelRegistry;
using VerifierMap = absl::flat_hash_map<std::string, protocol::ScramVerifier>;

struct ClientIdentity {
  std::string user;
  std::string database;
  std::vector<std::pair<std::string, std::string>> params;  // other startup parameters
  bool is_admin = false;
};

enum class HandshakeOutcome {
  kReady,         // authenticated: the caller sends `greeting`, then ParameterStatus etc.
  kCancelHandled, // the connection carried a CancelRequest and is done
};

struct HandshakeResult {
  HandshakeOutcome outcome = HandshakeOutcome::kReady;
  ClientIdentity identity;
  // kReady: the end of authentication (AuthenticationSASLFinal for SCRAM, then
  // AuthenticationOk), not sent yet: the caller sends it in one write with its
  // ParameterStatus, BackendKeyData and ReadyForQuery (or a FATAL error).
  protocol::Buffer greeting;
};

enum class Port { kClient, kAdmin };

// Runs the handshake. On a failure that the client should hear about, the error has
// already been sent as a FATAL ErrorResponse when this returns the status.
awaitable<absl::StatusOr<HandshakeResult>> ClientHandshake(Stream& stream, protocol::Buffer& in,
                                                           const conf::Config& config, Port port,
                                                           asio::ssl::context* tls_ctx,
                                                           CancelRegistry& cancels,
                                                           const VerifierMap& verifiers);

// SCRAM verifiers of the configured users, computed once (from the stored verifier or
// by salting and hashing the password) so a login does not redo 4096 PBKDF2 rounds.
VerifierMap BuildVerifiers(const conf::Config& config);

// Sends a FATAL ErrorResponse (and nothing else).
awaitable<void> SendFatal(Stream& stream, std::string_view sqlstate, std::string_view message,
                          std::string_view hint = {});

}  // namespace pgring::proxy
