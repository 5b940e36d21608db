// The connection limit of one shard (pool.size), shared by the pools of all workers.
// A worker may open a connection while the shard's total is under the limit; when it is
// not, the worker asks the others to close an idle connection, so a busy worker is
// never refused while another holds idle connections. Thread-safe (atomics only).
#pragma once

#include <atomic>

namespace pgring::proxy {

class PoolBudget {
 public:
  explicit PoolBudget(int max) : max_(max) {}

  // Takes one connection's worth of the limit; false when the limit is reached.
  bool TryReserve() {
    int n = used_.load(std::memory_order_relaxed);
    while (n < max_.load(std::memory_order_relaxed)) {
      if (used_.compare_exchange_weak(n, n + 1, std::memory_order_acq_rel)) return true;
    }
    return false;
  }
  // Gives back what TryReserve took (a connection closed or never opened).
  void Return() { used_.fetch_sub(1, std::memory_order_acq_rel); }
  void SetMax(int max) { max_.store(max, std::memory_order_relaxed); }
  int used() const { return used_.load(std::memory_order_relaxed); }
  int max() const { return max_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int> used_{0};
  std::atomic<int> max_;
};

}  // namespace pgring::proxy
