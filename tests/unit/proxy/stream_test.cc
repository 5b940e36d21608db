#include "proxy/stream.h"

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace pgring::proxy {
namespace {

// A connected loopback pair: `stream` writes, `peer` reads.
struct StreamPair {
  asio::io_context io{1};
  tcp::socket peer{io};
  std::optional<Stream> stream;

  StreamPair() {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    peer.connect(acceptor.local_endpoint());
    stream.emplace(acceptor.accept(io.get_executor()));
  }

  // Reads exactly n bytes from the peer.
  std::string Receive(size_t n) {
    std::string got(n, '\0');
    asio::read(peer, asio::buffer(got));
    return got;
  }
};

std::vector<asio::const_buffer> Pieces(const std::vector<std::string>& parts) {
  std::vector<asio::const_buffer> bufs;
  for (const auto& p : parts) bufs.emplace_back(p.data(), p.size());
  return bufs;
}

TEST_CASE("Stream::WriteNow writes one piece or several in order and empties the list") {
  StreamPair p;
  for (const std::vector<std::string>& parts :
       {std::vector<std::string>{"one piece"}, std::vector<std::string>{"a", "bc", "", "def"}}) {
    auto bufs = Pieces(parts);
    REQUIRE_FALSE(p.stream->WriteNow(bufs));
    CHECK(bufs.empty());
    std::string want;
    for (const auto& s : parts) want += s;
    CHECK(p.Receive(want.size()) == want);
  }
}

TEST_CASE("Stream::WriteNow leaves what the socket did not take, from the right byte on") {
  // The peer reads nothing while the stream writes more than the socket buffers hold:
  // WriteNow must stop without an error and leave exactly the unwritten tail.
  for (size_t pieces : {size_t{1}, size_t{3}}) {
    // 16 MiB a piece: far more than the socket buffers hold while the peer reads nothing
    // (they start at tcp_wmem's and tcp_rmem's defaults, 16 and 128 KiB, and the receive
    // buffer grows only as its reader reads). Both keep their default sizes: shrinking
    // them on an open connection can stall its window for seconds.
    StreamPair p;
    std::vector<std::string> parts;
    std::string all;
    for (size_t i = 0; i < pieces; ++i) {
      std::string part(16u << 20, '\0');
      for (size_t k = 0; k < part.size(); ++k) part[k] = static_cast<char>('a' + (k * 7 + i) % 26);
      all += part;
      parts.push_back(std::move(part));
    }
    auto bufs = Pieces(parts);
    REQUIRE_FALSE(p.stream->WriteNow(bufs));
    REQUIRE_FALSE(bufs.empty());
    size_t left = 0;
    for (const auto& b : bufs) left += b.size();
    const size_t written = all.size() - left;
    CHECK(written > 0);
    // The first piece left starts right after the written bytes.
    CHECK(static_cast<const char*>(bufs[0].data()) - parts[parts.size() - bufs.size()].data() ==
          static_cast<std::ptrdiff_t>(parts[parts.size() - bufs.size()].size() - bufs[0].size()));
    // Write the rest with a blocking writer while reading: the peer gets every byte in order.
    std::string got;
    std::thread reader([&] { got = p.Receive(all.size()); });
    for (const auto& b : bufs) asio::write(p.stream->socket(), asio::buffer(b.data(), b.size()));
    reader.join();
    CHECK(got == all);
  }
}

TEST_CASE("Stream::ReadSome sees a close that came with the first part of a message") {
  // The peer sends part of a message and closes while the stream waits: one readiness
  // event covers both, and the read that takes the part is short. The next ReadSome, in
  // the middle of the message, must report the close rather than wait for another event.
  using namespace std::chrono_literals;
  StreamPair p;
  const std::string part = "partial";
  protocol::Buffer buf;
  std::vector<std::pair<boost::system::error_code, size_t>> reads;
  asio::co_spawn(
      p.io,
      [&]() -> awaitable<void> {
        for (int i = 0; i < 2; ++i) {
          auto [ec, n] = co_await p.stream->ReadSome(buf, 64);
          reads.emplace_back(ec, n);
          if (ec) break;
        }
      },
      asio::detached);
  // The first read waits in the reactor; then both arrive before it looks again.
  p.io.poll();
  REQUIRE(reads.empty());
  asio::write(p.peer, asio::buffer(part));
  p.peer.shutdown(tcp::socket::shutdown_send);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (reads.size() < 2 && std::chrono::steady_clock::now() < deadline) p.io.run_one_for(100ms);
  REQUIRE(reads.size() == 2);
  CHECK(reads[0] == std::pair{boost::system::error_code{}, part.size()});
  CHECK(reads[1].first == asio::error::eof);
  CHECK(buf.size() == part.size());
}

}  // namespace
}  // namespace pgring::proxy
