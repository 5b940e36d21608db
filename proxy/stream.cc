#include "proxy/stream.h"

namespace pgring::proxy {

awaitable<std::tuple<boost::system::error_code, size_t>> Stream::ReadSome(protocol::Buffer& buf,
                                                                         size_t min_room) {
  auto room = buf.Prepare(min_room);
  auto mb = asio::buffer(room.data(), room.size());
  auto [ec, n] = tls_ ? co_await tls_->async_read_some(mb, use_nothrow)
                      : co_await socket_.async_read_some(mb, use_nothrow);
  buf.Commit(n);
  co_return std::tuple{ec, n};
}

awaitable<boost::system::error_code> Stream::WriteAll(std::span<const std::byte> bytes) {
  auto cb = asio::buffer(bytes.data(), bytes.size());
  auto [ec, n] = tls_ ? co_await asio::async_write(*tls_, cb, use_nothrow)
                      : co_await asio::async_write(socket_, cb, use_nothrow);
  co_return ec;
}

awaitable<boost::system::error_code> Stream::WriteAll(const std::vector<asio::const_buffer>& bufs) {
  auto [ec, n] = tls_ ? co_await asio::async_write(*tls_, bufs, use_nothrow)
                      : co_await asio::async_write(socket_, bufs, use_nothrow);
  co_return ec;
}

awaitable<boost::system::error_code> Stream::WaitReadable() {
  // TLS may hold decrypted bytes already: only wait on the socket for plain streams.
  if (tls_) co_return boost::system::error_code{};
  auto [ec] = co_await socket_.async_wait(tcp::socket::wait_read, use_nothrow);
  co_return ec;
}

awaitable<boost::system::error_code> Stream::StartTls(asio::ssl::context& ctx,
                                                      asio::ssl::stream_base::handshake_type type) {
  tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, ctx);
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
  socket_ = tcp::socket(io, released.protocol, released.fd);
}

void Stream::Close() {
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace pgring::proxy
