// Bounded pool of server connections to one shard's primary, for one worker thread.
// Acquire() hands out an idle connection, opens a new one while under the limit, or
// waits in a FIFO queue until one is released or `query_wait_timeout` passes (then a
// clear 53300 error: load shedding, not a hang). Owned by its Worker; used only on the
// worker's io_context thread, so it needs no locking.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "conf/config.h"
#include "proxy/asio.h"
#include "proxy/pool_budget.h"
#include "proxy/server_connection.h"

namespace pgring::proxy {

struct PoolStats {
  uint64_t connects = 0;         // server connections opened
  uint64_t connect_failures = 0;
  uint64_t acquires = 0;
  uint64_t wait_timeouts = 0;    // clients shed after query_wait_timeout
  uint64_t total_wait_us = 0;    // time clients spent waiting for a connection
  uint64_t given = 0;            // idle connections handed to another worker's pool
  uint64_t adopted = 0;          // connections taken over from another worker's pool
};

class ServerPool {
 public:
  struct Options {
    std::string shard_name;
    conf::EndpointConfig endpoint;
    int max_size = 10;  // the shard's pool.size, for all workers together (see PoolBudget)
    conf::Duration wait_timeout{5000};
    conf::Duration connect_timeout{5000};
    conf::Duration idle_timeout{600000};
    conf::Duration lifetime{3600000};
    int min_idle = 0;  // idle connections kept open (this worker's share)
  };

  // Called (on this pool's thread) when the shard's limit is reached and a client has to
  // wait, and when this pool closed a connection and so gave back part of the limit.
  struct Hooks {
    std::function<void()> exhausted;
    std::function<void()> capacity_freed;
  };

  ServerPool(asio::any_io_executor ex, Options options, PoolBudget& budget, Hooks hooks)
      : ex_(std::move(ex)), options_(std::move(options)), budget_(budget),
        hooks_(std::move(hooks)) {}

  // Returns a ready connection (transaction status 'I'). `queued_since`: the client
  // already waited in the queue (Queue) since then, and counts as acquiring since then.
  awaitable<absl::StatusOr<std::unique_ptr<ServerConnection>>> Acquire(
      std::optional<Clock::time_point> queued_since = std::nullopt);
  // Acquire()'s wait without a coroutine, for a client that would otherwise wait in
  // Acquire(): queues `handoff`, which Release calls (posted) with the next connection.
  // A client still queued after a while, or when another worker's pool gave back part of
  // the limit, is called with null instead and goes on with Acquire(since). False, with
  // nothing queued, when Acquire() would not wait (a connection is idle or can be opened).
  using Handoff = absl::AnyInvocable<void(std::unique_ptr<ServerConnection>)>;
  bool Queue(Handoff handoff, Clock::time_point since);
  // Acquire() without waiting: an idle connection, or null when none is ready (or clients
  // already wait for one). The fast path of every transaction, so it is not a coroutine.
  // `now` is the caller's current time (the clock is read once per request).
  std::unique_ptr<ServerConnection> TakeIdle(Clock::time_point now);
  // Gives a connection back, last used at `now`. Broken, expired or not-idle connections
  // are closed.
  void Release(std::unique_ptr<ServerConnection> conn, Clock::time_point now);
  // Closes idle connections past idle_timeout or lifetime (called periodically).
  void Prune();
  // Closes every idle connection (used on shutdown and reload).
  void CloseIdle();
  // Opens connections until `min_idle` are idle (called periodically).
  awaitable<void> Prewarm();
  // Closes one idle connection, if any (another worker needs the room).
  // Gives up the least recently used idle connection for another worker's waiting client
  // (nullptr if none has been idle a moment); it stays counted in the shard's budget.
  std::unique_ptr<ServerConnection> GiveIdle();
  // Takes over a connection given up by another worker's pool.
  void Adopt(std::unique_ptr<ServerConnection> conn);
  // Another pool gave back part of the limit: wake a waiting client to try again.
  void OnCapacityFreed();

  const Options& options() const { return options_; }
  int total() const { return total_; }
  int idle() const { return static_cast<int>(idle_.size()); }
  int active() const { return total_ - idle(); }
  int waiting() const { return static_cast<int>(waiters_.size()); }
  const PoolStats& stats() const { return stats_; }
  Clock::duration max_wait() const;
  const std::deque<std::unique_ptr<ServerConnection>>& idle_connections() const { return idle_; }
  // Applies new limits and timeouts; a changed endpoint closes the idle connections so
  // new ones go to the new address.
  void Reconfigure(Options options);

 private:
  // The most recently used idle connection that is still usable (others are closed).
  std::unique_ptr<ServerConnection> PopIdle(Clock::time_point now);
  // A waiting Acquire() (wake, slot) or a client queued by Queue() (handoff).
  struct Waiter {
    asio::steady_timer* wake = nullptr;
    std::unique_ptr<ServerConnection>* slot = nullptr;
    Handoff handoff;
    Clock::time_point since;
    bool served = false;  // woken by Release; erased by the waiter itself when it resumes
  };
  std::list<Waiter>::iterator NextWaiter();
  // Gives `conn` (null: "go on with Acquire") to the first waiter that is not served yet;
  // false if there is none.
  bool HandToWaiter(std::unique_ptr<ServerConnection>& conn);
  // Calls hooks_.exhausted, at most once per kShedAfterIdle (other pools only give
  // connections idle that long).
  void AskOtherPools(Clock::time_point now);
  // Hands null to queued clients that waited kShedRetry (they go on in Acquire, which
  // asks the other pools again and times out); armed while any is queued.
  void StartQueueTimer();

  bool Expired(const ServerConnection& c, Clock::time_point now) const;
  void Close(std::unique_ptr<ServerConnection> conn);

  asio::any_io_executor ex_;
  Options options_;
  PoolBudget& budget_;
  Hooks hooks_;
  int total_ = 0;  // idle + lent + connecting
  std::deque<std::unique_ptr<ServerConnection>> idle_;  // most recently used at the back
  std::list<Waiter> waiters_;
  int queued_ = 0;  // waiters_ with a handoff
  std::unique_ptr<asio::steady_timer> queue_timer_;
  bool queue_timer_armed_ = false;
  Clock::time_point asked_others_{};
  PoolStats stats_;
  uint64_t next_id_ = 1;
  int connecting_ = 0;  // connections being opened by Prewarm
};

}  // namespace pgring::proxy
