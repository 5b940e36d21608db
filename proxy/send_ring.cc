#include "proxy/send_ring.h"

#include <liburing.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "proxy/socket.h"

namespace pgring::proxy {

struct SendRing::Queue {
  explicit Queue(int f) : fd(f) {}
  int fd;
  std::vector<std::byte> sending;  // handed to the kernel from `sent` on
  size_t sent = 0;
  std::vector<std::byte> waiting;  // taken while `sending` was in flight
  bool in_flight = false;          // a submitted send refers to `sending`
  bool listed = false;             // in listed_: `sending` goes out at the next flush
  bool detached = false;           // the socket is gone; freed when its send completes
  int error = 0;                   // errno of a failed send: the connection is broken
  Waiter waiter;

  size_t queued() const { return sending.size() - sent + waiting.size(); }
};

namespace {

boost::system::error_code Errno(int e) { return {e, boost::system::system_category()}; }

}  // namespace

SendRing::SendRing(asio::execution_context& ctx, unsigned entries, Clock::duration burst)
    : asio::execution_context::service(ctx),
      io_(static_cast<asio::io_context&>(ctx)),
      ring_(std::make_unique<io_uring>()),
      ring_fd_(io_),
      burst_(burst) {
  if (const int r = io_uring_queue_init(entries, ring_.get(), 0); r < 0) {
    ring_.reset();
    throw boost::system::system_error(Errno(-r), "io_uring_queue_init");
  }
  // The descriptor stays the ring's: the stream_descriptor only waits on it.
  ring_fd_.assign(::dup(ring_->ring_fd));
}

SendRing::~SendRing() { shutdown(); }

void SendRing::shutdown() {
  if (!ring_) return;
  boost::system::error_code ignored;
  ring_fd_.close(ignored);
  // Ends (cancels) every send still in the kernel before the buffers go.
  io_uring_queue_exit(ring_.get());
  ring_.reset();
  for (Queue*& q : by_fd_) {
    delete q;
    q = nullptr;
  }
  for (Queue* q : detached_) delete q;
  detached_.clear();
  for (Queue* q : spare_) delete q;
  spare_.clear();
  listed_.clear();
}

SendRing::Queue* SendRing::Find(int fd) const {
  return fd >= 0 && static_cast<size_t>(fd) < by_fd_.size() ? by_fd_[fd] : nullptr;
}

SendRing::Queue& SendRing::Get(int fd) {
  if (static_cast<size_t>(fd) >= by_fd_.size()) by_fd_.resize(static_cast<size_t>(fd) + 64);
  Queue*& q = by_fd_[fd];
  if (q == nullptr) {
    if (spare_.empty()) {
      q = new Queue(fd);
    } else {
      q = spare_.back();
      spare_.pop_back();
      q->fd = fd;
    }
  }
  return *q;
}

void SendRing::Recycle(Queue* q) {
  // A busy worker drains and refills a queue per transaction: keep a few, with their
  // buffers if they are small, rather than allocate three blocks per send.
  constexpr size_t kSpares = 64;
  constexpr size_t kKeepCapacity = 16 * 1024;
  if (spare_.size() >= kSpares || q->sending.capacity() > kKeepCapacity ||
      q->waiting.capacity() > kKeepCapacity) {
    delete q;
    return;
  }
  q->sending.clear();
  q->sent = 0;
  q->waiting.clear();
  q->in_flight = q->listed = q->detached = false;
  q->error = 0;
  q->waiter = nullptr;
  spare_.push_back(q);
}

bool SendRing::Full(const Queue& q) const { return q.queued() >= kLimit; }

bool SendRing::Busy(int fd) const {
  const Queue* q = Find(fd);
  return q != nullptr && (q->in_flight || q->queued() > 0);
}

void SendRing::Append(Queue& q, const void* data, size_t size) {
  // While a send refers to `sending` it must not move: later bytes wait behind it.
  auto& to = q.in_flight ? q.waiting : q.sending;
  const auto* p = static_cast<const std::byte*>(data);
  to.insert(to.end(), p, p + size);
  if (!q.in_flight) List(q);
}

SendRing::Queue* SendRing::Taker(int fd, boost::system::error_code& ec) {
  ec = {};
  if (!ring_) {
    ec = asio::error::shut_down;
    return nullptr;
  }
  if (fd < 0) {
    ec = asio::error::bad_descriptor;  // closed
    return nullptr;
  }
  Queue& q = Get(fd);
  if (q.error != 0) ec = Errno(q.error);
  return ec || Full(q) ? nullptr : &q;
}

boost::system::error_code SendRing::Send(int fd, std::span<const std::byte>& bytes, When when) {
  if (bytes.empty()) return {};
  boost::system::error_code ec;
  Queue* taker = Taker(fd, ec);
  if (taker == nullptr) return ec;
  Queue& q = *taker;
  if (when == When::kNow && !q.in_flight && q.queued() == 0) {
    // Nothing waits before these bytes: one send() costs less than an io_uring_enter for
    // one send. What the socket does not take now goes through the ring.
    if (const int e = socket_detail::SendSome(fd, bytes); e != 0 || bytes.empty()) {
      Drop(&q);
      return e == 0 ? boost::system::error_code{} : Errno(e);
    }
  }
  Append(q, bytes.data(), bytes.size());
  bytes = {};
  Took(when);
  return {};
}

boost::system::error_code SendRing::Send(int fd, std::vector<asio::const_buffer>& bufs,
                                         When when) {
  if (bufs.empty()) return {};
  boost::system::error_code ec;
  Queue* taker = Taker(fd, ec);
  if (taker == nullptr) return ec;
  Queue& q = *taker;
  for (const auto& b : bufs) {
    if (b.size() > 0) Append(q, b.data(), b.size());
  }
  bufs.clear();
  if (q.queued() == 0 && !q.in_flight) {
    Drop(&q);  // only empty pieces
  } else {
    Took(when);
  }
  return {};
}

void SendRing::Took(When when) {
  if (when == When::kNow) {
    Flush();
  } else {
    ScheduleFlush();
  }
}

void SendRing::StartWait(int fd, Waiter waiter) {
  Queue* q = Find(fd);
  if (q == nullptr || q->error != 0 || !Full(*q)) {
    const auto ec = q != nullptr && q->error != 0 ? Errno(q->error) : boost::system::error_code{};
    asio::post(io_, [w = std::move(waiter), ec]() mutable { std::move(w)(ec); });
    return;
  }
  // Not move assignment: Boost 1.81's wraps the handler in itself without end.
  q->waiter.swap(waiter);
}

void SendRing::Notify(Queue& q, boost::system::error_code ec) {
  if (!q.waiter) return;
  asio::post(io_, [w = std::move(q.waiter), ec]() mutable { std::move(w)(ec); });
  q.waiter = nullptr;
}

void SendRing::Cancel(int fd) {
  if (Queue* q = Find(fd)) Notify(*q, asio::error::operation_aborted);
}

void SendRing::List(Queue& q) {
  if (q.listed) return;
  q.listed = true;
  listed_.push_back(&q);
}

void SendRing::ScheduleFlush() {
  if (flush_posted_ || flushing_) return;
  flush_posted_ = true;
  asio::post(io_, [this] {
    flush_posted_ = false;
    Flush();
  });
}

void SendRing::Flush() {
  if (!ring_ || flushing_) return;
  flushing_ = true;
  // A send the socket took only in part is listed again for its rest: a few rounds, then
  // the rest waits for the next flush (the socket is filling up).
  for (int round = 0; round < 4 && !listed_.empty(); ++round) {
    if (!PrepareSends()) break;
    io_uring_submit(ring_.get());
    Reap();
  }
  flushing_ = false;
  if (!listed_.empty()) ScheduleFlush();
  WatchRing();
}

bool SendRing::PrepareSends() {
  bool any = false;
  const size_t n = listed_.size();  // List() below appends behind these
  for (size_t i = 0; i < n; ++i) {
    Queue* q = listed_[i];
    q->listed = false;
    if (q->error != 0 || q->in_flight || q->sent == q->sending.size()) continue;
    io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
    if (sqe == nullptr) {
      io_uring_submit(ring_.get());
      sqe = io_uring_get_sqe(ring_.get());
    }
    if (sqe == nullptr) {  // the kernel holds every slot's entry: try again next flush
      List(*q);
      continue;
    }
    io_uring_prep_send(sqe, q->fd, q->sending.data() + q->sent, q->sending.size() - q->sent,
                       MSG_NOSIGNAL);
    io_uring_sqe_set_data(sqe, q);
    q->in_flight = true;
    ++in_flight_;
    any = true;
  }
  listed_.erase(listed_.begin(), listed_.begin() + static_cast<std::ptrdiff_t>(n));
  return any;
}

void SendRing::Reap() {
  io_uring_cqe* cqe = nullptr;
  while (io_uring_peek_cqe(ring_.get(), &cqe) == 0) {
    auto* q = static_cast<Queue*>(io_uring_cqe_get_data(cqe));
    const int res = cqe->res;
    io_uring_cqe_seen(ring_.get(), cqe);
    if (q == nullptr) continue;  // a cancellation's own completion
    --in_flight_;
    Completed(*q, res);
  }
}

void SendRing::Completed(Queue& q, int res) {
  q.in_flight = false;
  if (q.detached) {
    detached_.erase(std::find(detached_.begin(), detached_.end(), &q));
    Recycle(&q);
    return;
  }
  if (res == -EINTR || res == -EAGAIN) {
    List(q);
    return;
  }
  if (res <= 0) {
    q.error = res == 0 ? EPIPE : -res;
    q.sending.clear();
    q.sent = 0;
    q.waiting.clear();
    Notify(q, Errno(q.error));
    return;
  }
  q.sent += static_cast<size_t>(res);
  if (q.sent == q.sending.size()) {
    q.sending.clear();
    q.sent = 0;
    q.sending.swap(q.waiting);
  }
  if (!q.sending.empty()) List(q);
  if (!Full(q)) Notify(q, {});
  if (!q.listed) Drop(&q);  // all sent: the socket holds nothing while it is quiet
}

void SendRing::Drop(Queue* q) {
  if (q->waiter) return;
  by_fd_[q->fd] = nullptr;
  Recycle(q);
}

void SendRing::Detach(int fd) {
  if (Find(fd) == nullptr || !ring_) return;
  // What is queued goes now (usually the socket takes it on the spot).
  if (Busy(fd)) Flush();
  Queue* q = Find(fd);
  if (q == nullptr) return;
  by_fd_[fd] = nullptr;
  Notify(*q, asio::error::operation_aborted);
  if (q->listed) listed_.erase(std::find(listed_.begin(), listed_.end(), q));
  if (!q->in_flight) {
    Recycle(q);
    return;
  }
  // The peer does not read: what the kernel could not take is dropped, as close() drops it.
  q->detached = true;
  detached_.push_back(q);
  if (io_uring_sqe* sqe = io_uring_get_sqe(ring_.get())) {
    io_uring_prep_cancel64(sqe, reinterpret_cast<uint64_t>(q), 0);
    io_uring_sqe_set_data(sqe, nullptr);
    io_uring_submit(ring_.get());
  }
}

void SendRing::WatchRing() {
  if (watching_ || in_flight_ == 0 || !ring_) return;
  watching_ = true;
  ring_fd_.async_wait(asio::posix::descriptor_base::wait_read,
                      [this](boost::system::error_code ec) {
                        watching_ = false;
                        if (ec == asio::error::operation_aborted || !ring_) return;
                        Reap();
                        if (!listed_.empty()) {
                          Flush();
                        } else {
                          WatchRing();
                        }
                      });
}

}  // namespace pgring::proxy
