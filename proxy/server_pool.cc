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

std::unique_ptr<ServerConnection> ServerPool::TakeIdle(Clock::time_point now) {
  if (!waiters_.empty()) return nullptr;  // they come first
  auto conn = PopIdle(now);
  if (conn) ++stats_.acquires;
  return conn;
}

awaitable<absl::StatusOr<std::unique_ptr<ServerConnection>>> ServerPool::Acquire(
    std::optional<Clock::time_point> queued_since) {
  if (!queued_since) {
    if (auto conn = TakeIdle(Clock::now())) co_return conn;
    ++stats_.acquires;
  }
  const auto start = queued_since ? *queued_since : Clock::now();
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
    AskOtherPools(now);
    if (!place) {
      place = waiters_.insert(waiters_.end(), Waiter{});
      (*place)->wake = &wake;
      (*place)->slot = &slot;
      (*place)->since = start;
    }
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

bool ServerPool::Queue(Handoff handoff, Clock::time_point since) {
  // An idle connection left while a served waiter resumes: Acquire takes it now.
  if (!idle_.empty()) return false;
  // Room under the shard's limit: Acquire opens a connection (it takes the room itself).
  if (budget_.used() < budget_.max()) return false;
  ++stats_.acquires;
  AskOtherPools(since);
  Waiter w;
  w.handoff = std::move(handoff);
  w.since = since;
  waiters_.push_back(std::move(w));
  ++queued_;
  StartQueueTimer();
  return true;
}

void ServerPool::StartQueueTimer() {
  if (queue_timer_armed_) return;
  if (!queue_timer_) queue_timer_ = std::make_unique<asio::steady_timer>(ex_);
  queue_timer_armed_ = true;
  queue_timer_->expires_after(kShedRetry);
  queue_timer_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;  // the pool is gone (nothing else cancels this timer)
    queue_timer_armed_ = false;
    const auto now = Clock::now();
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      auto w = it++;
      if (!w->handoff || w->served || now - w->since < kShedRetry) continue;
      auto handoff = std::move(w->handoff);
      waiters_.erase(w);
      --queued_;
      asio::post(ex_, [h = std::move(handoff)]() mutable { h(nullptr); });
    }
    if (queued_ > 0) StartQueueTimer();
  });
}

void ServerPool::AskOtherPools(Clock::time_point now) {
  if (!hooks_.exhausted || now - asked_others_ < kShedAfterIdle) return;
  asked_others_ = now;
  hooks_.exhausted();
}

std::list<ServerPool::Waiter>::iterator ServerPool::NextWaiter() {
  auto it = waiters_.begin();
  while (it != waiters_.end() && it->served) ++it;
  return it;
}

bool ServerPool::HandToWaiter(std::unique_ptr<ServerConnection>& conn) {
  auto w = NextWaiter();
  if (w == waiters_.end()) return false;
  if (w->handoff) {
    if (conn) {
      stats_.total_wait_us +=
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - w->since).count();
    }
    auto handoff = std::move(w->handoff);
    waiters_.erase(w);
    --queued_;
    asio::post(ex_, [h = std::move(handoff), c = std::move(conn)]() mutable { h(std::move(c)); });
    return true;
  }
  if (conn) *w->slot = std::move(conn);  // an empty slot: it tries again to open one
  w->served = true;
  w->wake->cancel();
  return true;
}

void ServerPool::Release(std::unique_ptr<ServerConnection> conn, Clock::time_point now) {
  if (!conn) return;
  if (conn->broken || conn->tx_status != 'I' || Expired(*conn, now)) {
    Close(std::move(conn));  // gives the room back; a waiter (here or elsewhere) retries
    return;
  }
  conn->last_used = now;
  if (HandToWaiter(conn)) return;
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
    Release(std::move(*conn), Clock::now());
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
  Release(std::move(conn), Clock::now());
}

void ServerPool::OnCapacityFreed() {
  std::unique_ptr<ServerConnection> none;
  HandToWaiter(none);
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
