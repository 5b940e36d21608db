#include "proxy/server_pool.h"

#include <sys/socket.h>

#include "proxy/str.h"
#include "protocol/sql_error.h"
#include "spdlog/spdlog.h"

namespace pgring::proxy {
namespace {

// A connection that sat idle may have been closed by the server (restart,
// pg_terminate_backend). Peeking costs one syscall, so only connections idle for a while
// are checked.
constexpr auto kCheckAfterIdle = std::chrono::seconds(1);
// Sharing pool.size between workers: a worker hands an idle connection over to another
// worker (GiveIdle/Adopt: the socket moves, no new login) only when it has not used it for
// kShedAfterIdle; a waiting client asks again every kShedRetry.
constexpr auto kShedAfterIdle = std::chrono::milliseconds(10);
constexpr auto kShedRetry = std::chrono::milliseconds(100);

bool LooksAlive(ServerConnection& c) {
  char b;
  ssize_t n = ::recv(c.stream().socket().native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

bool ServerPool::Expired(const ServerConnection& c, Clock::time_point now) const {
  if (options_.lifetime.count() > 0 && now - c.created_at > options_.lifetime) return true;
  if (options_.idle_timeout.count() > 0 && now - c.last_used > options_.idle_timeout) return true;
  return false;
}

void ServerPool::Close(std::unique_ptr<ServerConnection> conn) {
  if (!conn) return;
  conn->stream().Close();
  --total_;
  budget_.Return();
  if (hooks_.capacity_freed) hooks_.capacity_freed();
}

std::unique_ptr<ServerConnection> ServerPool::PopIdle(Clock::time_point now) {
  while (!idle_.empty()) {
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    if (Expired(*conn, now) || (now - conn->last_used > kCheckAfterIdle && !LooksAlive(*conn))) {
      Close(std::move(conn));
      continue;
    }
    return conn;
  }
  return nullptr;
}

std::unique_ptr<ServerConnection> ServerPool::TakeIdle() {
  if (!waiters_.empty()) return nullptr;  // they come first
  auto conn = PopIdle(Clock::now());
  if (conn) ++stats_.acquires;
  return conn;
}

awaitable<absl::StatusOr<std::unique_ptr<ServerConnection>>> ServerPool::Acquire() {
  if (auto conn = TakeIdle()) co_return conn;
  ++stats_.acquires;
  const auto start = Clock::now();
  const auto deadline = start + options_.wait_timeout;
  // The waiter keeps its place in the FIFO queue across retries.
  asio::steady_timer wake(ex_);
  std::unique_ptr<ServerConnection> slot;
  std::optional<std::list<Waiter>::iterator> place;
  auto leave = [&] {
    if (place) waiters_.erase(*place);
    place.reset();
    stats_.total_wait_us +=
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
  };
  for (;;) {
    if (slot) {
      leave();
      co_return std::move(slot);
    }
    auto now = Clock::now();
    if (auto conn = PopIdle(now)) {
      leave();
      co_return conn;
    }
    if (budget_.TryReserve()) {
      leave();
      ++total_;
      auto conn = co_await ServerConnection::Connect(options_.endpoint, options_.connect_timeout,
                                                     nullptr, "pgring");
      if (!conn.ok()) {
        --total_;
        budget_.Return();
        ++stats_.connect_failures;
        spdlog::warn("shard {}: {}", options_.shard_name, protocol::MessageOf(conn.status()));
        co_return conn.status();
      }
      ++stats_.connects;
      (*conn)->id = next_id_++;
      co_return std::move(*conn);
    }
    if (now >= deadline) break;

    // Wait for a release here, or for room given back by another worker's pool (asked
    // again now and then: the other pools shed only connections idle for a while).
    if (hooks_.exhausted) hooks_.exhausted();
    if (!place) place = waiters_.insert(waiters_.end(), Waiter{&wake, &slot, start});
    (*place)->served = false;
    wake.expires_at(std::min(deadline, now + kShedRetry));
    co_await wake.async_wait(use_nothrow);
  }
  leave();
  ++stats_.wait_timeouts;
  co_return protocol::SqlError(
      absl::StatusCode::kResourceExhausted, "53300",
      Cat("no server connection to shard \"", options_.shard_name,
          "\" became free within query_wait_timeout (", options_.wait_timeout.count(),
          " ms); all ", options_.max_size, " connections (pool.size) are busy"),
      "raise pool.size or pool.query_wait_timeout, or shorten long transactions");
}

ServerPool::Waiter* ServerPool::NextWaiter() {
  for (auto& w : waiters_)
    if (!w.served) return &w;
  return nullptr;
}

void ServerPool::Release(std::unique_ptr<ServerConnection> conn) {
  if (!conn) return;
  auto now = Clock::now();
  if (conn->broken || conn->tx_status != 'I' || Expired(*conn, now)) {
    Close(std::move(conn));  // gives the room back; a waiter (here or elsewhere) retries
    return;
  }
  conn->last_used = now;
  if (auto* w = NextWaiter()) {
    *w->slot = std::move(conn);
    w->served = true;
    w->wake->cancel();
    return;
  }
  idle_.push_back(std::move(conn));
}

void ServerPool::Prune() {
  auto now = Clock::now();
  std::deque<std::unique_ptr<ServerConnection>> keep;
  for (auto& c : idle_) {
    if (Expired(*c, now)) {
      Close(std::move(c));
    } else {
      keep.push_back(std::move(c));
    }
  }
  idle_.swap(keep);
}

awaitable<void> ServerPool::Prewarm() {
  while (idle() + connecting_ < options_.min_idle && budget_.TryReserve()) {
    ++total_;
    ++connecting_;
    auto conn = co_await ServerConnection::Connect(options_.endpoint, options_.connect_timeout,
                                                   nullptr, "pgring");
    --connecting_;
    if (!conn.ok()) {
      --total_;
      budget_.Return();
      ++stats_.connect_failures;
      co_return;  // retried at the next maintenance tick
    }
    ++stats_.connects;
    (*conn)->id = next_id_++;
    Release(std::move(*conn));
  }
}

std::unique_ptr<ServerConnection> ServerPool::GiveIdle() {
  // Only a connection this worker has not needed for a moment: one idle for less is
  // about to be reused here.
  if (idle_.empty() || Clock::now() - idle_.front()->last_used < kShedAfterIdle) return nullptr;
  auto conn = std::move(idle_.front());  // the least recently used
  idle_.pop_front();
  --total_;
  ++stats_.given;
  return conn;
}

void ServerPool::Adopt(std::unique_ptr<ServerConnection> conn) {
  ++total_;
  ++stats_.adopted;
  Release(std::move(conn));
}

void ServerPool::OnCapacityFreed() {
  if (auto* w = NextWaiter()) {
    w->served = true;  // empty slot: it tries again to open a connection
    w->wake->cancel();
  }
}

void ServerPool::CloseIdle() {
  while (!idle_.empty()) {
    Close(std::move(idle_.back()));
    idle_.pop_back();
  }
}

void ServerPool::Reconfigure(Options options) {
  const auto& a = options_.endpoint;
  const auto& b = options.endpoint;
  bool moved = a.host != b.host || a.port != b.port || a.dbname != b.dbname || a.user != b.user ||
               a.password.value != b.password.value || a.sslmode != b.sslmode;
  options_ = std::move(options);
  if (moved) CloseIdle();
}

Clock::duration ServerPool::max_wait() const {
  if (waiters_.empty()) return {};
  return Clock::now() - waiters_.front().since;
}

}  // namespace pgring::proxy
