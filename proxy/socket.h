// A TCP socket whose callback read costs no system call while the peer is quiet.
//
// Asio's async_read_some first tries a recv() on the spot and only then waits for epoll:
// on a request/response connection the socket is usually empty when the next read starts,
// so that first recv() fails with EAGAIN once per message (two wasted system calls per
// proxied transaction, one on each side). Socket::ReadWhenReady trusts a short read
// instead: a recv() that returned less than the room it was given emptied the socket, so
// the next read waits for epoll's next readiness event without trying first. With Asio's
// edge-triggered epoll registration every arrival of data after that recv() raises a new
// event, and the reactor tries again on it; but a close that came with the data raises
// none, so a reader in the middle of a message tries a recv() first (Socket::TryRead).
//
// With no room it is a wait without a read buffer: it peeks at one byte, and unlike
// Asio's async_wait it does not re-arm the epoll registration (one epoll_ctl system call)
// every time it starts. Socket::ReadWhenArrived waits without a buffer too but asks for
// one once the bytes are there and reads them in the same step: no peek, and a short read
// tells the reactor not to try the next read on the spot.
//
// Built on Asio's reactor (boost/asio/detail, as bundled by Boost 1.81): the operation is
// queued exactly like Asio's own reads, so cancel(), close() and the io_context's shutdown
// treat it like any other (cancel completes it with operation_aborted), and a handler's
// cancellation slot (an awaitable operator such as `read || timer`) cancels it as it
// cancels Asio's reads.
#pragma once

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <span>
#include <utility>

#include "proxy/asio.h"
#include "proxy/send_ring.h"

namespace pgring::proxy {

namespace socket_detail {

using asio::detail::reactor_op;

// recv/send/sendmsg on the data path, as plain system calls. glibc's wrappers are
// thread-cancellation points: in a process with several threads each call switches the
// thread's cancellation type on and off around the call, two atomic read-modify-writes
// per call (four calls per relayed transaction). pgring never cancels threads.
inline ssize_t SysRecv(int fd, void* buf, size_t len, int flags) {
  return ::syscall(SYS_recvfrom, fd, buf, len, flags, nullptr, nullptr);
}
inline ssize_t SysSend(int fd, const void* buf, size_t len, int flags) {
  return ::syscall(SYS_sendto, fd, buf, len, flags, nullptr, 0);
}
inline ssize_t SysSendmsg(int fd, const msghdr* msg, int flags) {
  return ::syscall(SYS_sendmsg, fd, msg, flags);
}

// Non-blocking send() of `bytes` until all went or the socket is full, dropping what went
// from the front of `bytes`. Returns 0, or errno when the connection failed.
inline int SendSome(int fd, std::span<const std::byte>& bytes) {
  while (!bytes.empty()) {
    const ssize_t n = SysSend(fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      bytes = bytes.subspan(static_cast<size_t>(n));
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return 0;
    } else if (errno != EINTR) {
      return errno;
    }
  }
  return 0;
}

enum class RecvStatus { kRead, kClosed, kEmpty, kFailed };

// One non-blocking recv() into `room` (EINTR retried): kRead with n > 0 bytes, kClosed
// when the peer closed, kEmpty when nothing has arrived, kFailed with errno set.
inline RecvStatus Recv(int fd, asio::mutable_buffer room, size_t& n) {
  for (;;) {
    const ssize_t r = SysRecv(fd, room.data(), room.size(), MSG_DONTWAIT);
    if (r > 0) {
      n = static_cast<size_t>(r);
      return RecvStatus::kRead;
    }
    if (r == 0) return RecvStatus::kClosed;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK ? RecvStatus::kEmpty : RecvStatus::kFailed;
  }
}

// Where a read puts what arrived: a buffer given up front. A Room's Get() is called when
// the read is tried; Unused() after a try that found nothing to read.
struct FixedRoom {
  asio::mutable_buffer room;
  asio::mutable_buffer Get() const { return room; }
  void Unused() const {}
};

// Receives what has arrived into room_.Get(); reports "exhausted" after a short read,
// which tells the reactor not to try the next read before the next readiness event. An
// empty room only waits: the operation is done when a byte can be read (MSG_PEEK leaves
// it in the socket) or the peer closed.
template <typename Handler, typename Room>
class ReadWhenReadyOp : public reactor_op {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(ReadWhenReadyOp);

  ReadWhenReadyOp(int fd, Room& room, Handler& handler)
      : reactor_op(boost::system::error_code{}, &Perform, &Complete),
        fd_(fd),
        room_(std::move(room)),
        handler_(std::move(handler)) {}

 private:
  static status Perform(reactor_op* base) {
    auto* op = static_cast<ReadWhenReadyOp*>(base);
    for (;;) {
      const asio::mutable_buffer room = op->room_.Get();
      if (room.size() == 0) {
        char byte;
        const ssize_t n = ::recv(op->fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n >= 0) return done;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return not_done;
        op->ec_ = boost::system::error_code(errno, boost::system::system_category());
        return done;
      }
      switch (Recv(op->fd_, room, op->bytes_transferred_)) {
        case RecvStatus::kRead:
          return op->bytes_transferred_ < room.size() ? done_and_exhausted : done;
        case RecvStatus::kClosed:
          op->ec_ = asio::error::eof;
          return done_and_exhausted;
        case RecvStatus::kEmpty:
          op->room_.Unused();
          return not_done;
        case RecvStatus::kFailed:
          break;
      }
      op->ec_ = boost::system::error_code(errno, boost::system::system_category());
      return done;
    }
  }

  // `owner` is null when the io_context is destroyed with the operation still queued:
  // the handler is then destroyed without being called.
  static void Complete(void* owner, asio::detail::operation* base,
                       const boost::system::error_code& /*ec*/, size_t /*n*/) {
    auto* op = static_cast<ReadWhenReadyOp*>(base);
    ptr p = {std::addressof(op->handler_), op, op};
    // Free the operation before the upcall (the handler may start the next read).
    Handler handler(std::move(op->handler_));
    const boost::system::error_code ec = op->ec_;
    const size_t n = op->bytes_transferred_;
    p.h = std::addressof(handler);
    p.reset();
    if (owner != nullptr) handler(ec, n);
  }

  int fd_;
  Room room_;
  Handler handler_;
};

// A cancellation slot's handler for a queued read (as Asio's own reads register one).
class ReadCancellation {
 public:
  ReadCancellation(asio::detail::reactor* reactor,
                   asio::detail::reactor::per_descriptor_data* data, int fd)
      : reactor_(reactor), data_(data), fd_(fd) {}

  void operator()(asio::cancellation_type_t type) {
    if (!!(type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                   asio::cancellation_type::total))) {
      reactor_->cancel_ops_by_key(fd_, *data_, asio::detail::reactor::read_op, this);
    }
  }

 private:
  asio::detail::reactor* reactor_;
  asio::detail::reactor::per_descriptor_data* data_;
  int fd_;
};

}  // namespace socket_detail

class Socket : public TcpSocket {
 public:
  using TcpSocket::basic_stream_socket;
  explicit Socket(TcpSocket&& s) : TcpSocket(std::move(s)) {}
  Socket(Socket&& s) noexcept
      : TcpSocket(std::move(s)), send_ring_(s.send_ring_), ring_known_(s.ring_known_) {}
  Socket& operator=(TcpSocket&& s) {
    DetachSends();
    TcpSocket::operator=(std::move(s));
    reactor_ = nullptr;
    send_ring_ = nullptr;
    ring_known_ = false;
    return *this;
  }
  ~Socket() { DetachSends(); }

  // The io_context's SendRing (proxy/send_ring.h), or null when sends are plain system
  // calls. Looked up once per socket.
  SendRing* send_ring() {
    if (!ring_known_) {
      auto& ctx = asio::query(get_executor(), asio::execution::context);
      send_ring_ = asio::has_service<SendRing>(ctx) ? &asio::use_service<SendRing>(ctx) : nullptr;
      ring_known_ = true;
    }
    return send_ring_;
  }

  // Asio's cancel, close and release, which also end what the SendRing holds for the
  // socket: cancel() ends a wait for room in its queue; close() and release() first hand
  // what is queued to the kernel.
  void cancel(boost::system::error_code& ec) {
    if (send_ring_ != nullptr && is_open()) send_ring_->Cancel(native_handle());
    TcpSocket::cancel(ec);
  }
  void close(boost::system::error_code& ec) {
    DetachSends();
    TcpSocket::close(ec);
  }
  native_handle_type release(boost::system::error_code& ec) {
    DetachSends();
    return TcpSocket::release(ec);
  }
  void cancel() {
    boost::system::error_code ec;
    cancel(ec);
    asio::detail::throw_error(ec, "cancel");
  }
  void close() {
    boost::system::error_code ec;
    close(ec);
    asio::detail::throw_error(ec, "close");
  }

  // Reads what arrives (at least one byte) into `room` and calls handler(ec, n) on the
  // socket's io_context thread; n == 0 with asio::error::eof when the peer closed.
  // Called on that thread, with no other read pending on the socket.
  template <typename Handler>
  void ReadWhenReady(asio::mutable_buffer room, Handler&& handler) {
    ReadWhenArrived(socket_detail::FixedRoom{room}, std::forward<Handler>(handler));
  }

  // ReadWhenReady with the buffer asked for when the read is tried (on the io_context
  // thread): room.Get() returns where to put what arrived, room.Unused() is called after
  // a try that found nothing (the try on the spot, or a spurious wakeup). For a reader
  // that should hold no buffer while the peer is quiet.
  template <typename Room, typename Handler>
  void ReadWhenArrived(Room&& room, Handler&& handler) {
    using Op = socket_detail::ReadWhenReadyOp<std::decay_t<Handler>, std::decay_t<Room>>;
    auto& impl = impl_.get_implementation();
    if (reactor_ == nullptr) {
      reactor_ = &asio::use_service<asio::detail::reactor>(
          asio::query(get_executor(), asio::execution::context));
    }
    auto slot = asio::get_associated_cancellation_slot(handler);
    typename Op::ptr p = {std::addressof(handler), Op::ptr::allocate(handler), nullptr};
    p.p = new (p.v) Op(impl.socket_, room, handler);
    if (slot.is_connected()) {
      p.p->cancellation_key_ = &slot.template emplace<socket_detail::ReadCancellation>(
          reactor_, &impl.reactor_data_, impl.socket_);
    }
    reactor_->start_op(asio::detail::reactor::read_op, impl.socket_, impl.reactor_data_, p.p,
                       /*is_continuation=*/false, /*allow_speculative=*/true);
    p.v = p.p = nullptr;
  }

  // One recv() on the spot, for a reader in the middle of a message: the rest of it, or
  // the peer's close, may have come with the part already read, in the one readiness event
  // that read consumed. True when the read completed: n > 0 bytes, or ec set (eof when the
  // peer closed); false when the socket is empty (then wait with ReadWhenReady).
  bool TryRead(asio::mutable_buffer room, boost::system::error_code& ec, size_t& n) {
    using socket_detail::RecvStatus;
    n = 0;
    switch (socket_detail::Recv(native_handle(), room, n)) {
      case RecvStatus::kRead:
        ec = {};
        return true;
      case RecvStatus::kClosed:
        ec = asio::error::eof;
        return true;
      case RecvStatus::kEmpty:
        return false;
      case RecvStatus::kFailed:
        break;
    }
    ec = boost::system::error_code(errno, boost::system::system_category());
    return true;
  }

  // The next read of a callback reader: ReadWhenReady, but in the middle of a message
  // (`mid_message`: part of it is in the reader's buffer) TryRead first, its result posted
  // to the handler so that a long message read piece by piece does not nest calls.
  // (Inlined: it runs for every read of a proxied transaction.)
  template <typename Handler>
  [[gnu::always_inline]] void ReadNext(asio::mutable_buffer room, bool mid_message,
                                       Handler&& handler) {
    if (mid_message) {
      boost::system::error_code ec;
      size_t n = 0;
      if (TryRead(room, ec, n)) {
        asio::post(get_executor(),
                   [h = std::forward<Handler>(handler), ec, n]() mutable { h(ec, n); });
        return;
      }
    }
    ReadWhenReady(room, std::forward<Handler>(handler));
  }

  // ReadWhenReady for coroutines: co_await s.AsyncReadWhenReady(room, use_nothrow).
  template <typename Token>
  auto AsyncReadWhenReady(asio::mutable_buffer room, Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code, size_t)>(
        [this](auto handler, asio::mutable_buffer r) { ReadWhenReady(r, std::move(handler)); },
        token, room);
  }

 private:
  void DetachSends() {
    if (send_ring_ != nullptr && is_open()) send_ring_->Detach(native_handle());
  }

  asio::detail::reactor* reactor_ = nullptr;
  SendRing* send_ring_ = nullptr;
  bool ring_known_ = false;
};

}  // namespace pgring::proxy
