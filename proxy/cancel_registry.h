// Maps the (process id, secret key) pair pgring gave each client in BackendKeyData to
// that client's session, so a CancelRequest arriving on any connection and any worker
// finds the session in O(1). Thread-safe (one mutex; cancels are rare and the critical
// sections are a hash-map operation).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <random>

#include "absl/container/flat_hash_map.h"
#include "proxy/asio.h"

namespace pgring::proxy {

class ClientSession;

class CancelRegistry {
 public:
  struct Key {
    int32_t pid = 0;
    int32_t secret = 0;
  };
  // Where a cancel goes: the session, reached on its worker's thread. The session is
  // locked only there, so a cancel never ends up destroying it on another thread. (Two
  // pointers rather than a std::function: one entry per connected client, kept small.)
  struct Target {
    asio::io_context* io = nullptr;
    std::weak_ptr<ClientSession> session;
  };

  // Allocates a unique key for a new client and registers its target.
  Key Register(Target target);
  void Unregister(Key key);
  // If pid and secret match, posts ClientSession::ForwardCancel to the session's thread
  // and returns true; false otherwise.
  bool Cancel(Key key);
  size_t size() const;

 private:
  mutable std::mutex mu_;
  absl::flat_hash_map<int32_t, std::pair<int32_t, Target>> by_pid_;
  std::mt19937 rng_{std::random_device{}()};
  int32_t next_pid_ = 1;
};

}  // namespace pgring::proxy
