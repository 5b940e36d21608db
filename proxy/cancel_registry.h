// Maps the (process id, secret key) pair pgring gave each client in BackendKeyData to
// that client's session, so a CancelRequest arriving on any connection and any worker
// finds the session in O(1). Thread-safe (one mutex; cancels are rare and the critical
// sections are a hash-map operation).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>

#include "absl/container/flat_hash_map.h"

namespace pgring::proxy {

class CancelRegistry {
 public:
  struct Key {
    int32_t pid = 0;
    int32_t secret = 0;
  };
  // Called on the session's own thread to forward the cancel to its server.
  using CancelFn = std::function<void()>;

  // Allocates a unique key for a new client and registers `fn` (which must post to the
  // session's thread).
  Key Register(CancelFn fn);
  void Unregister(Key key);
  // Runs the registered function if pid and secret match; false otherwise.
  bool Cancel(Key key);
  size_t size() const;

 private:
  mutable std::mutex mu_;
  absl::flat_hash_map<int32_t, std::pair<int32_t, CancelFn>> by_pid_;
  std::mt19937 rng_{std::random_device{}()};
  int32_t next_pid_ = 1;
};

}  // namespace pgring::proxy
