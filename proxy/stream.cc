#include "proxy/stream.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>

namespace pgring::proxy {

awaitable<std::tuple<boost::system::error_code, size_t>> Stream::ReadSome(protocol::Buffer& buf,
                                                                         size_t min_room) {
  if (!tls_ && !buf.empty()) {
    // In the middle of a message (Socket::TryRead).
    if (auto [ec, n] = ReadNow(buf, min_room); ec || n > 0) co_return std::tuple{ec, n};
  }
  auto room = buf.Prepare(min_room);
  auto mb = asio::buffer(room.data(), room.size());
  // Otherwise a plain read trusts a short read (Socket::ReadWhenReady): the next one waits
  // for the peer's answer without a recv() that fails with EAGAIN first.
  auto [ec, n] = tls_ ? co_await tls_->async_read_some(mb, use_nothrow)
                      : co_await socket_.AsyncReadWhenReady(mb, use_nothrow);
  buf.Commit(n);
  co_return std::tuple{ec, n};
}

awaitable<boost::system::error_code> Stream::WriteAll(std::span<const std::byte> bytes) {
  // Usually the socket (or its SendRing queue) takes it all at once: then the coroutine
  // goes on without a completion to dispatch (Asio posts even a write that succeeded on
  // the spot, and the post costs the worker an extra epoll_wait before it runs).
  if (!tls_) {
    if (auto* ring = socket_.send_ring()) co_return co_await WriteRest(*ring, bytes);
    if (auto ec = WriteNow(bytes); ec || bytes.empty()) co_return ec;
  }
  auto cb = asio::buffer(bytes.data(), bytes.size());
  auto [ec, n] = tls_ ? co_await asio::async_write(*tls_, cb, use_nothrow)
                      : co_await asio::async_write(socket_, cb, use_nothrow);
  co_return ec;
}

awaitable<boost::system::error_code> Stream::WriteAll(const std::vector<asio::const_buffer>& bufs) {
  if (auto* ring = tls_ ? nullptr : socket_.send_ring()) {
    auto rest = bufs;
    co_return co_await WriteRest(*ring, rest);
  }
  auto [ec, n] = tls_ ? co_await asio::async_write(*tls_, bufs, use_nothrow)
                      : co_await asio::async_write(socket_, bufs, use_nothrow);
  co_return ec;
}

template <typename Bytes>
awaitable<boost::system::error_code> Stream::WriteRest(SendRing& ring, Bytes& rest) {
  // The queue takes all or nothing: wait for room until it took it all. A coroutine's
  // write is not one of a batch of handlers' writes: it goes to the kernel at once.
  const int fd = socket_.native_handle();
  for (;;) {
    if (auto ec = ring.Send(fd, rest, SendRing::When::kNow); ec || rest.empty()) co_return ec;
    auto [ec] = co_await ring.AsyncWaitSpace(fd, use_nothrow);
    if (ec) co_return ec;
  }
}

awaitable<boost::system::error_code> Stream::WaitReadable() {
  // TLS may hold decrypted bytes already: only wait on the socket for plain streams.
  if (tls_) co_return boost::system::error_code{};
  auto [ec, n] = co_await socket_.AsyncReadWhenReady(asio::mutable_buffer(), use_nothrow);
  co_return ec;
}

namespace {

// errno of a failed non-blocking call: would-block is not a failure.
bool WouldBlock(int e) { return e == EAGAIN || e == EWOULDBLOCK; }

boost::system::error_code Errno(int e) { return {e, boost::system::system_category()}; }

}  // namespace

boost::system::error_code Stream::WriteNow(std::span<const std::byte>& bytes) {
  if (tls_) return {};
  if (auto* ring = socket_.send_ring(); ring && ring->Batching(socket_.native_handle())) {
    return ring->Send(socket_.native_handle(), bytes);
  }
  const int e = socket_detail::SendSome(socket_.native_handle(), bytes);
  return e == 0 ? boost::system::error_code{} : Errno(e);
}

boost::system::error_code Stream::WriteNow(std::vector<asio::const_buffer>& bufs) {
  if (tls_) return {};
  if (auto* ring = socket_.send_ring(); ring && ring->Batching(socket_.native_handle())) {
    return ring->Send(socket_.native_handle(), bufs);
  }
  if (bufs.size() == 1) {
    // One piece (a server's answer forwarded whole): send() costs the kernel less than
    // sendmsg(), which first copies in the message header and the I/O vector.
    std::span<const std::byte> bytes(static_cast<const std::byte*>(bufs[0].data()),
                                     bufs[0].size());
    auto ec = WriteNow(bytes);
    if (bytes.empty()) {
      bufs.clear();
    } else {
      bufs[0] = asio::const_buffer(bytes.data(), bytes.size());
    }
    return ec;
  }
  constexpr size_t kMaxIov = 64;
  size_t first = 0;  // bufs[first...] are not written yet
  boost::system::error_code ec;
  while (first < bufs.size()) {
    iovec iov[kMaxIov];
    size_t count = 0;
    for (size_t i = first; i < bufs.size() && count < kMaxIov; ++i, ++count) {
      iov[count].iov_base = const_cast<void*>(bufs[i].data());
      iov[count].iov_len = bufs[i].size();
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    const ssize_t n =
        socket_detail::SysSendmsg(socket_.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (!WouldBlock(errno)) ec = Errno(errno);
      break;
    }
    auto left = static_cast<size_t>(n);
    while (first < bufs.size() && left >= bufs[first].size()) left -= bufs[first++].size();
    if (left > 0) bufs[first] += left;
  }
  bufs.erase(bufs.begin(), bufs.begin() + static_cast<std::ptrdiff_t>(first));
  return ec;
}

std::tuple<boost::system::error_code, size_t> Stream::ReadNow(protocol::Buffer& buf,
                                                              size_t min_room) {
  if (tls_) return {boost::system::error_code{}, 0};
  auto room = buf.Prepare(min_room);
  boost::system::error_code ec;
  size_t n = 0;
  socket_.TryRead(asio::buffer(room.data(), room.size()), ec, n);
  buf.Commit(n);
  return {ec, n};
}

awaitable<boost::system::error_code> Stream::StartTls(asio::ssl::context& ctx,
                                                      asio::ssl::stream_base::handshake_type type) {
  tls_ = std::make_unique<asio::ssl::stream<TcpSocket&>>(socket_, ctx);
  auto [ec] = co_await tls_->async_handshake(type, use_nothrow);
  co_return ec;
}

std::optional<Stream::Released> Stream::Release() {
  boost::system::error_code ec;
  auto ep = socket_.local_endpoint(ec);
  if (tls_ || ec) {
    Close();
    return std::nullopt;
  }
  auto fd = socket_.release(ec);
  if (ec) {
    Close();
    return std::nullopt;
  }
  return Released{fd, ep.protocol()};
}

void Stream::Adopt(asio::io_context& io, const Released& released) {
  socket_ = TcpSocket(io, released.protocol, released.fd);
}

void Stream::Close() {
  // close() alone sends the FIN and completes pending operations with operation_aborted
  // (a shutdown() first would only cost one more system call per connection).
  boost::system::error_code ignored;
  socket_.close(ignored);
}

}  // namespace pgring::proxy
