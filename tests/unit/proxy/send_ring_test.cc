#include "proxy/send_ring.h"

#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "proxy/stream.h"

namespace pgring::proxy {
namespace {

using namespace std::chrono_literals;

std::span<const std::byte> Bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// `size` bytes of a pattern that shows a lost, repeated or reordered piece.
std::string Pattern(size_t size, size_t seed) {
  std::string s(size, '\0');
  for (size_t k = 0; k < size; ++k) s[k] = static_cast<char>('a' + (k * 7 + seed) % 26);
  return s;
}

awaitable<void> WriteAllHolding(std::shared_ptr<Stream> stream, std::string bytes,
                                std::optional<boost::system::error_code>& wrote) {
  wrote = co_await stream->WriteAll(Bytes(bytes));
}

// A loopback pair on an io_context with a SendRing: `stream` writes, `peer` reads. Its
// writes are batched however far apart they come, unless `burst` says otherwise.
struct RingPair {
  asio::io_context io{1};
  SendRing& ring;
  tcp::socket peer{io};
  std::shared_ptr<Stream> stream;

  explicit RingPair(Clock::duration burst = Clock::duration::max())
      : ring(asio::make_service<SendRing>(io, 1024u, burst)) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    peer.connect(acceptor.local_endpoint());
    stream = std::make_shared<Stream>(acceptor.accept(io.get_executor()));
  }

  // Writes `chunk` until the queue takes no more (the peer reads nothing).
  void Fill(const std::string& chunk) {
    for (int i = 0; i < 1000; ++i) {
      auto bytes = Bytes(chunk);
      REQUIRE_FALSE(stream->WriteNow(bytes));
      Poll();
      if (!bytes.empty()) return;
    }
    FAIL("the queue took 1000 chunks");
  }

  // Starts a coroutine that writes `bytes` with WriteAll (holding the stream).
  void WriteAllLater(std::string bytes, std::optional<boost::system::error_code>& wrote) {
    asio::co_spawn(io, WriteAllHolding(stream, std::move(bytes), wrote), asio::detached);
    Poll();
  }

  int fd() { return stream->socket().native_handle(); }

  // Reads exactly n bytes from the peer.
  std::string Receive(size_t n) {
    std::string got(n, '\0');
    asio::read(peer, asio::buffer(got));
    return got;
  }

  // Runs what is ready (an io_context that ran out of work stops until restarted).
  void Poll() {
    io.restart();
    io.poll();
  }

  // Runs the io_context until `done` or 5 s passed.
  template <typename Pred>
  bool RunUntil(Pred done) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io.restart();
      io.run_one_for(50ms);
    }
    return done();
  }
};

TEST_CASE("SendRing: writes are taken at once and leave together, in order") {
  RingPair p;
  REQUIRE(p.stream->socket().send_ring() == &p.ring);
  std::string want;
  std::vector<std::string> keep;  // the callers' buffers are reused right away
  for (int i = 0; i < 50; ++i) {
    std::string piece = "piece " + std::to_string(i) + ";";
    auto bytes = Bytes(piece);
    REQUIRE_FALSE(p.stream->WriteNow(bytes));
    CHECK(bytes.empty());  // taken (copied)
    want += piece;
    std::fill(piece.begin(), piece.end(), 'X');  // the caller's buffer is free again
    std::vector<std::string> parts = {"g" + std::to_string(i), "", "h"};
    std::vector<asio::const_buffer> bufs;
    for (const auto& s : parts) bufs.emplace_back(s.data(), s.size());
    REQUIRE_FALSE(p.stream->WriteNow(bufs));
    CHECK(bufs.empty());
    want += parts[0] + parts[2];
  }
  // Nothing reached the kernel yet: the flush runs after the handlers of this batch.
  CHECK(p.ring.Busy(p.fd()));
  CHECK(p.peer.available() == 0);
  p.Poll();
  CHECK(p.Receive(want.size()) == want);
  CHECK_FALSE(p.ring.Busy(p.fd()));
  CHECK(p.ring.in_flight() == 0);
}

TEST_CASE("SendRing: a write after a quiet spell is a plain send; one in a burst is queued") {
  RingPair p(std::chrono::seconds(30));
  const std::string first = "first;";
  auto bytes = Bytes(first);
  REQUIRE_FALSE(p.stream->WriteNow(bytes));  // the worker's first write: after quiet
  CHECK(bytes.empty());
  CHECK_FALSE(p.ring.Busy(p.fd()));
  CHECK(p.Receive(first.size()) == first);  // sent without running the io_context
  const std::string second = "second;";
  bytes = Bytes(second);
  REQUIRE_FALSE(p.stream->WriteNow(bytes));  // right after: batched
  CHECK(bytes.empty());
  CHECK(p.ring.Busy(p.fd()));
  CHECK(p.peer.available() == 0);
  p.Poll();
  CHECK(p.Receive(second.size()) == second);
}

TEST_CASE("SendRing: a full queue takes nothing until the peer reads; WriteAll waits for room") {
  // The peer reads nothing at first: the kernel holds a send, bytes queue behind it until
  // the queue is full and takes no more.
  RingPair p;
  std::string all;
  std::string left;
  for (size_t i = 0; left.empty(); ++i) {
    REQUIRE(i < 1000);
    std::string chunk = Pattern(64 * 1024, i);
    auto bytes = Bytes(chunk);
    REQUIRE_FALSE(p.stream->WriteNow(bytes));
    if (!bytes.empty()) {
      CHECK(bytes.size() == chunk.size());  // all or nothing
      left = chunk;
    } else {
      all += chunk;
    }
    p.Poll();
  }
  CHECK(p.ring.in_flight() == 1);  // the send the kernel holds; the rest waits behind it
  // The rest goes through WriteAll, which waits for room while a thread reads it all.
  all += left;
  std::optional<boost::system::error_code> wrote;
  p.WriteAllLater(left, wrote);
  CHECK_FALSE(wrote.has_value());
  std::string got;
  std::thread reader([&] { got = p.Receive(all.size()); });
  const bool finished = p.RunUntil([&] { return wrote.has_value() && !p.ring.Busy(p.fd()); });
  reader.join();
  REQUIRE(finished);
  CHECK_FALSE(*wrote);
  CHECK(got == all);
}

TEST_CASE("SendRing: close hands what is queued to the kernel before the socket goes") {
  RingPair p;
  const std::string last = "last words";
  auto bytes = Bytes(last);
  REQUIRE_FALSE(p.stream->WriteNow(bytes));
  p.stream->Close();  // no poll in between: the flush has not run
  CHECK(p.Receive(last.size()) == last);
  boost::system::error_code ec;
  char byte;
  CHECK(p.peer.read_some(asio::buffer(&byte, 1), ec) == 0);
  CHECK(ec == asio::error::eof);
  p.Poll();  // the posted flush finds nothing to do
}

TEST_CASE("SendRing: a write to a closed stream fails with bad_descriptor") {
  RingPair p;
  p.stream->Close();
  const std::string msg = "late";
  auto bytes = Bytes(msg);
  CHECK(p.stream->WriteNow(bytes) == asio::error::bad_descriptor);
  std::vector<asio::const_buffer> bufs = {asio::buffer(msg)};
  CHECK(p.stream->WriteNow(bufs) == asio::error::bad_descriptor);
}

TEST_CASE("SendRing: a send that failed is reported by the next write") {
  RingPair p;
  // The peer resets the connection: sends on it fail.
  p.peer.set_option(asio::socket_base::linger(true, 0));
  p.peer.close();
  const std::string msg = "hello";
  boost::system::error_code ec;
  for (int i = 0; i < 100 && !ec; ++i) {
    auto bytes = Bytes(msg);
    ec = p.stream->WriteNow(bytes);
    p.Poll();
  }
  CHECK((ec == asio::error::connection_reset || ec == asio::error::broken_pipe));
  // A waiter for room learns it too.
  std::optional<boost::system::error_code> waited;
  p.ring.AsyncWaitSpace(p.fd(), [&](boost::system::error_code e) { waited = e; });
  p.Poll();
  REQUIRE(waited.has_value());
  CHECK(*waited == ec);
}

TEST_CASE("SendRing: cancel ends a wait for room; close drops what the peer does not take") {
  RingPair p;
  const std::string chunk = Pattern(256 * 1024, 1);
  p.Fill(chunk);
  std::optional<boost::system::error_code> wrote;
  p.WriteAllLater(chunk, wrote);
  REQUIRE_FALSE(wrote.has_value());
  boost::system::error_code ignored;
  p.stream->socket().cancel(ignored);
  p.Poll();
  REQUIRE(wrote.has_value());
  CHECK(*wrote == asio::error::operation_aborted);
  // Closing with a send the kernel holds cancels it: the ring forgets the descriptor (a
  // new socket may get the same number) and frees the queue once the cancel completes.
  const int fd = p.fd();
  p.stream->Close();
  CHECK_FALSE(p.ring.Busy(fd));
  CHECK(p.RunUntil([&] { return p.ring.in_flight() == 0; }));
}

TEST_CASE("SendRing: an io_context destroyed with queued bytes and a waiter frees them") {
  // As in a worker that stops: the socket belongs to a waiting coroutine, destroyed with
  // the io_context after the ring has shut down. ASan reports what leaks or is used after
  // it is freed.
  std::optional<boost::system::error_code> wrote;
  {
    RingPair p;
    p.Fill(Pattern(256 * 1024, 2));
    p.WriteAllLater(Pattern(256 * 1024, 3), wrote);
    REQUIRE_FALSE(wrote.has_value());
  }
  CHECK_FALSE(wrote.has_value());  // destroyed, not resumed
}

}  // namespace
}  // namespace pgring::proxy
