// A mutex for coroutines on one io_context thread: Lock() suspends instead of blocking.
// Used to keep writes to one socket from interleaving when two coroutines of a session
// (the client reader and a server pump) both answer the client.
#pragma once

#include <list>

#include "proxy/asio.h"

namespace pgring::proxy {

class AsyncLock {
 public:
  awaitable<void> Lock() {
    while (locked_) {
      asio::steady_timer wake(co_await asio::this_coro::executor, Clock::time_point::max());
      waiters_.push_back(&wake);
      co_await wake.async_wait(use_nothrow);
    }
    locked_ = true;
  }
  void Unlock() {
    locked_ = false;
    if (!waiters_.empty()) {
      waiters_.front()->cancel();
      waiters_.pop_front();
    }
  }
  // Lock() without waiting (and without a coroutine frame): false when it is held.
  bool TryLock() {
    if (locked_) return false;
    locked_ = true;
    return true;
  }
  bool locked() const { return locked_; }

 private:
  bool locked_ = false;
  std::list<asio::steady_timer*> waiters_;  // a list: no allocation until someone waits
};

}  // namespace pgring::proxy
