// A TCP connection that may be upgraded to TLS after the PostgreSQL SSLRequest
// handshake. Used for both client and server connections; owned by one session and
// used only on its io_context thread.
#pragma once

#include <memory>
#include <optional>

#include "protocol/buffer.h"
#include "proxy/asio.h"
#include "proxy/socket.h"

namespace pgring::proxy {

class Stream {
 public:
  explicit Stream(TcpSocket socket) : socket_(std::move(socket)) {}

  // Reads whatever is available (at least one byte) into `buf`. Returns 0 bytes and an
  // error code on EOF or failure.
  awaitable<std::tuple<boost::system::error_code, size_t>> ReadSome(protocol::Buffer& buf,
                                                                   size_t min_room = 8192);
  // Writes all of `bytes`.
  awaitable<boost::system::error_code> WriteAll(std::span<const std::byte> bytes);
  // Writes a sequence of buffers (gather write).
  awaitable<boost::system::error_code> WriteAll(const std::vector<asio::const_buffer>& bufs);
  // Waits until the peer sent something (or closed) without holding a read buffer.
  awaitable<boost::system::error_code> WaitReadable();

  // The same without waiting, for the hot path (no coroutine frame, no completion to
  // dispatch). Plain TCP only: on a TLS stream they do nothing. WriteNow writes what the
  // socket takes now and drops it from the front of `bytes`/`bufs` (whatever is left goes
  // through WriteAll; with a SendRing it is all or nothing, and an error may be that of
  // an earlier write whose send failed); ReadNow reads what has arrived, 0 bytes when
  // nothing has. Both return an error code only when the connection failed (or, for
  // ReadNow, was closed).
  boost::system::error_code WriteNow(std::span<const std::byte>& bytes);
  boost::system::error_code WriteNow(std::vector<asio::const_buffer>& bufs);
  std::tuple<boost::system::error_code, size_t> ReadNow(protocol::Buffer& buf,
                                                        size_t min_room = 8192);

  // Performs the TLS handshake on the existing connection.
  awaitable<boost::system::error_code> StartTls(asio::ssl::context& ctx,
                                                asio::ssl::stream_base::handshake_type type);
  bool tls() const { return tls_ != nullptr; }
  Socket& socket() { return socket_; }
  const Socket& socket() const { return socket_; }
  void Close();

  // Moves a plain TCP connection (not TLS, no operation pending) to another io_context:
  // Release() on the owning thread gives up the socket, Adopt() on the new owner's thread
  // takes it over. Returns false (and closes the socket) when the stream cannot move.
  struct Released {
    tcp::socket::native_handle_type fd;
    tcp protocol;
  };
  std::optional<Released> Release();
  void Adopt(asio::io_context& io, const Released& released);

 private:
  // Hands `rest` to the SendRing, waiting for room in the socket's queue as needed.
  template <typename Bytes>
  awaitable<boost::system::error_code> WriteRest(SendRing& ring, Bytes& rest);

  Socket socket_;
  std::unique_ptr<asio::ssl::stream<TcpSocket&>> tls_;
};

}  // namespace pgring::proxy
