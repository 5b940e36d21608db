// The sends of one io_context's sockets, batched into io_uring submissions.
//
// A relayed transaction sends twice (the query to the server, the answer to the client),
// and each send() is a system call whose fixed cost (entering and leaving the kernel)
// can be as large as the send itself, above all in virtual machines with page-table
// isolation. A SendRing takes the bytes a socket would send now (a copy: the caller's
// buffer is free at once) and hands everything the handlers of one event batch queued to
// the kernel in one io_uring_enter, posted to run after them. Per socket the bytes leave
// in the order they were given: one send in flight at a time, later bytes wait behind it.
//
// Sends that complete on the spot (the usual case) are reaped right after the submission;
// a send the kernel has to hold (the peer is not reading) completes through a wait on the
// ring's descriptor. A queue that holds `kLimit` bytes or more takes no more: the caller
// waits with AsyncWaitSpace, as it would wait for a full socket to drain.
//
// One per io_context (an Asio service), used only on that io_context's thread. Created by
// the worker when the configuration enables it and the kernel provides io_uring; without
// it sockets send with plain system calls.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>

#include "proxy/asio.h"

struct io_uring;

namespace pgring::proxy {

class SendRing : public asio::execution_context::service {
 public:
  using key_type = SendRing;
  static inline asio::execution_context::id id;

  // Bytes a socket's queue holds before it takes no more.
  static constexpr size_t kLimit = 256 * 1024;

  // Writes closer together than this are batched (Batching).
  static constexpr Clock::duration kBurst = std::chrono::microseconds(50);

  // Sets up the ring (`entries` submission slots); throws boost::system::system_error when
  // the kernel refuses (no io_uring, or a seccomp filter denies it).
  SendRing(asio::execution_context& ctx, unsigned entries = 1024,
           Clock::duration burst = kBurst);
  ~SendRing() override;

  // When what a Send takes goes to the kernel: with the other sends of the handlers that
  // run before the posted flush (the hot path's writes), or at once (a coroutine's write,
  // a login's step: a plain send() when nothing waits before it in the queue, else one
  // submission; no flush posted that would cost an epoll_wait).
  enum class When { kBatch, kNow };

  // Takes all of `bytes` for `fd` (and empties the span), or none when fd's queue is
  // full. Returns the error of an earlier send on fd that failed (then takes nothing).
  boost::system::error_code Send(int fd, std::span<const std::byte>& bytes,
                                 When when = When::kBatch);
  // The same for a sequence of buffers (cleared when taken).
  boost::system::error_code Send(int fd, std::vector<asio::const_buffer>& bufs,
                                 When when = When::kBatch);

  // Calls handler(ec) when fd's queue has room again (ec empty), a send on it failed (ec
  // that error) or Cancel(fd) ran (operation_aborted). One waiter per fd.
  template <typename Token>
  auto AsyncWaitSpace(int fd, Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code)>(
        [this, fd](auto handler) { StartWait(fd, Waiter(std::move(handler))); }, token);
  }

  // Completes fd's space waiter with operation_aborted (the socket's cancel()).
  void Cancel(int fd);

  // Before fd is closed or given up: what is queued for it goes to the kernel now; a send
  // that cannot complete now (the peer does not read) is cancelled. Afterwards the ring
  // knows nothing of fd (a new socket may get the same number).
  void Detach(int fd);

  // Whether a write on fd goes through the queue now: fd has bytes in it (they go first),
  // or this worker wrote something within the last `burst` (a busy worker, whose sends
  // are batched). After a quiet spell a write is a plain system call, which costs less
  // than a submission of one send and posts no flush (an epoll_wait).
  bool Batching(int fd) {
    const auto now = Clock::now();
    const bool burst = now - last_send_ < burst_;
    last_send_ = now;
    return burst || Busy(fd);
  }

  // Whether fd has bytes queued or in flight.
  bool Busy(int fd) const;

  // Submitted sends whose completion has not been reaped (for tests).
  size_t in_flight() const { return in_flight_; }

 private:
  struct Queue;
  using Waiter = asio::any_completion_handler<void(boost::system::error_code)>;

  void shutdown() override;

  Queue* Find(int fd) const;
  Queue& Get(int fd);
  // fd's queue when it takes bytes now; null when it is full, or with `ec` set when fd is
  // closed, the ring shut down or an earlier send on fd failed.
  Queue* Taker(int fd, boost::system::error_code& ec);
  bool Full(const Queue& q) const;
  void Append(Queue& q, const void* data, size_t size);
  void Took(When when);
  void StartWait(int fd, Waiter waiter);
  void List(Queue& q);
  void ScheduleFlush();
  void Flush();
  bool PrepareSends();
  void Reap();
  void Completed(Queue& q, int res);
  void Notify(Queue& q, boost::system::error_code ec);
  void Drop(Queue* q);
  void Recycle(Queue* q);
  void WatchRing();

  asio::io_context& io_;
  std::unique_ptr<io_uring> ring_;
  asio::posix::stream_descriptor ring_fd_;
  std::vector<Queue*> by_fd_;   // the queue of each fd that has one
  std::vector<Queue*> listed_;  // queues with bytes to hand to the kernel at the next flush
  std::vector<Queue*> detached_;  // queues of closed sockets whose send is being cancelled
  std::vector<Queue*> spare_;     // emptied queues kept for reuse
  size_t in_flight_ = 0;        // submitted sends whose completion has not been reaped
  const Clock::duration burst_;
  Clock::time_point last_send_{};
  bool flush_posted_ = false;
  bool watching_ = false;
  bool flushing_ = false;
};

}  // namespace pgring::proxy
