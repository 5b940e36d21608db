// One connection from pgring to a PostgreSQL server (a shard primary), logged in and
// ready. Owned by its ServerPool; lent to one ClientSession at a time; used only on the
// io_context thread of the worker that created it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "conf/config.h"
#include "protocol/buffer.h"
#include "proxy/asio.h"
#include "proxy/stream.h"

namespace pgring::proxy {

class ServerPool;

class ServerConnection {
 public:
  // Connects, negotiates TLS per `ep.sslmode`, logs in (SCRAM-SHA-256, MD5 or cleartext,
  // as the server asks) and reads until the first ReadyForQuery.
  static awaitable<absl::StatusOr<std::unique_ptr<ServerConnection>>> Connect(
      const conf::EndpointConfig& ep, conf::Duration timeout, asio::ssl::context* tls_ctx,
      std::string_view application_name);

  ServerConnection(TcpSocket socket) : stream_(std::move(socket)) {}

  Stream& stream() { return stream_; }
  // Moves the connection to another worker: Release on the old worker's thread, Adopt on
  // the new one's (see Stream::Release).
  std::optional<Stream::Released> Release() { return stream_.Release(); }
  void Adopt(asio::io_context& io, const Stream::Released& r) { stream_.Adopt(io, r); }
  bool tls() const { return stream_.tls(); }
  protocol::Buffer& in() { return in_; }

  int32_t backend_pid() const { return backend_pid_; }
  int32_t backend_secret() const { return backend_secret_; }
  // ParameterStatus values the server sent during login (server_version, encodings...).
  const std::vector<std::pair<std::string, std::string>>& startup_parameters() const {
    return parameters_;
  }
  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }

  // Transaction status from the last ReadyForQuery: 'I', 'T' or 'E'.
  char tx_status = 'I';
  // Fingerprint of the session settings (SET statements) applied on this connection.
  uint64_t settings_fingerprint = 0;
  // Which of a client's unnamed statements the server holds (ClientSession ids; 0: none
  // known). A simple query or a new unnamed Parse replaces it.
  uint64_t unnamed_id = 0;
  // Set when the connection must not be reused (protocol error, unknown state).
  bool broken = false;
  Clock::time_point created_at = Clock::now();
  Clock::time_point last_used = Clock::now();
  uint64_t id = 0;

  // Server-side prepared statements (pgring-named, shared by all clients), with a use
  // tick for least-recently-used eviction.
  bool HasPrepared(uint64_t stmt_id) {
    auto it = prepared_.find(stmt_id);
    if (it == prepared_.end()) return false;
    it->second = ++tick_;
    return true;
  }
  void AddPrepared(uint64_t stmt_id) { prepared_[stmt_id] = ++tick_; }
  void RemovePrepared(uint64_t stmt_id) { prepared_.erase(stmt_id); }
  void ClearPrepared() { prepared_.clear(); }
  size_t prepared_count() const { return prepared_.size(); }
  // Removes and returns the least recently used statement id (0 if none).
  uint64_t EvictLeastRecent();

 private:
  awaitable<absl::Status> Login(const conf::EndpointConfig& ep, std::string_view application_name,
                                asio::ssl::context& tls_ctx);

  Stream stream_;
  protocol::Buffer in_;
  int32_t backend_pid_ = 0;
  int32_t backend_secret_ = 0;
  std::vector<std::pair<std::string, std::string>> parameters_;
  std::string host_;
  uint16_t port_ = 0;
  absl::flat_hash_map<uint64_t, uint64_t> prepared_;
  uint64_t tick_ = 0;
};

}  // namespace pgring::proxy
