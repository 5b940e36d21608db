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

}  // namespace
}  // namespace pgring::proxy
