#include "proxy/socket.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace pgring::proxy {
namespace {

using namespace std::chrono_literals;

// A connected pair over loopback TCP: `peer` writes, `socket` (a Socket) reads.
struct Pair {
  asio::io_context io{1};
  Socket socket{io};
  tcp::socket peer{io};

  Pair() {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    peer.connect(acceptor.local_endpoint());
    socket = acceptor.accept(io.get_executor());
  }
  void Send(const std::string& s) { asio::write(peer, asio::buffer(s)); }
};

struct Read {
  std::optional<boost::system::error_code> ec;
  size_t n = 0;
};

// Starts a read into `room` and runs the io_context until it completes (or 5 s pass).
Read ReadOnce(Pair& p, std::string& room) {
  Read r;
  p.socket.ReadWhenReady(asio::buffer(room), [&r](boost::system::error_code ec, size_t n) {
    r.ec = ec;
    r.n = n;
  });
  p.io.restart();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!r.ec && std::chrono::steady_clock::now() < deadline) p.io.run_one_for(100ms);
  REQUIRE(r.ec.has_value());
  return r;
}

TEST_CASE("Socket::ReadWhenReady reads what is waiting and what arrives later") {
  Pair p;
  std::string room(16, '\0');

  p.Send("hello");  // waiting before the first read: read on the spot
  auto r = ReadOnce(p, room);
  REQUIRE_FALSE(*r.ec);
  REQUIRE(room.substr(0, r.n) == "hello");

  // That short read emptied the socket: the next read waits until data arrives.
  Read later;
  p.socket.ReadWhenReady(asio::buffer(room), [&later](boost::system::error_code ec, size_t n) {
    later.ec = ec;
    later.n = n;
  });
  p.io.restart();
  p.io.poll();
  REQUIRE_FALSE(later.ec.has_value());  // nothing arrived: still waiting
  p.Send("world");
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!later.ec && std::chrono::steady_clock::now() < deadline) p.io.run_one_for(100ms);
  REQUIRE(later.ec.has_value());
  REQUIRE_FALSE(*later.ec);
  REQUIRE(room.substr(0, later.n) == "world");
}

TEST_CASE("Socket::ReadWhenReady gets data whose readiness event came while no read waited") {
  Pair p;
  std::string room(16, '\0');
  p.Send("one");
  auto r = ReadOnce(p, room);  // short read: the next one would not try before an event
  REQUIRE(room.substr(0, r.n) == "one");

  // The data arrives and the reactor sees its event while no read is pending; the read
  // started afterwards must still get it rather than wait for an event that already came.
  p.Send("two");
  p.io.restart();
  p.io.poll();
  r = ReadOnce(p, room);
  REQUIRE_FALSE(*r.ec);
  REQUIRE(room.substr(0, r.n) == "two");
}

TEST_CASE("Socket::ReadWhenReady reads more than its room in several reads") {
  Pair p;
  const std::string sent(1000, 'x');
  p.Send(sent);
  std::string room(64, '\0');
  std::string got;
  while (got.size() < sent.size()) {
    auto r = ReadOnce(p, room);
    REQUIRE_FALSE(*r.ec);
    REQUIRE(r.n > 0);
    got += room.substr(0, r.n);
  }
  REQUIRE(got == sent);
}

TEST_CASE("Socket::ReadWhenReady reports the peer's close as eof") {
  Pair p;
  std::string room(16, '\0');
  p.Send("last");
  p.peer.close();
  auto r = ReadOnce(p, room);
  REQUIRE_FALSE(*r.ec);
  REQUIRE(room.substr(0, r.n) == "last");
  r = ReadOnce(p, room);
  REQUIRE(*r.ec == asio::error::eof);
  REQUIRE(r.n == 0);
}

TEST_CASE("Socket::ReadWhenReady completes with operation_aborted on cancel") {
  Pair p;
  std::string room(16, '\0');
  Read r;
  p.socket.ReadWhenReady(asio::buffer(room), [&r](boost::system::error_code ec, size_t n) {
    r.ec = ec;
    r.n = n;
  });
  p.io.poll();
  REQUIRE_FALSE(r.ec.has_value());
  p.socket.cancel();
  p.io.restart();
  p.io.run_for(1s);
  REQUIRE(r.ec.has_value());
  REQUIRE(*r.ec == asio::error::operation_aborted);
  REQUIRE(r.n == 0);
}

TEST_CASE("Socket::ReadWhenArrived asks for room only once bytes or a close arrive") {
  Pair p;
  std::string room(16, '\0');
  int asked = 0;
  int unused = 0;
  struct CountingRoom {
    std::string* room;
    int* asked;
    int* unused;
    asio::mutable_buffer Get() const {
      ++*asked;
      return asio::buffer(*room);
    }
    void Unused() const { ++*unused; }
  } room_fn{&room, &asked, &unused};
  Read r;
  auto handler = [&r](boost::system::error_code ec, size_t n) {
    r.ec = ec;
    r.n = n;
  };
  p.socket.ReadWhenArrived(room_fn, handler);
  p.io.poll();
  REQUIRE_FALSE(r.ec.has_value());  // nothing sent: still waiting
  // Only the try on the spot may have asked, and it gave the room back.
  REQUIRE(asked <= 1);
  REQUIRE(unused == asked);
  const int asked_while_quiet = asked;
  p.Send("ping");
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!r.ec && std::chrono::steady_clock::now() < deadline) p.io.run_one_for(100ms);
  REQUIRE(r.ec.has_value());
  REQUIRE_FALSE(*r.ec);
  REQUIRE(asked == asked_while_quiet + 1);
  REQUIRE(room.substr(0, r.n) == "ping");

  // A close completes it too, as eof.
  r = Read{};
  p.socket.ReadWhenArrived(room_fn, handler);
  p.peer.close();
  p.io.restart();
  while (!r.ec && std::chrono::steady_clock::now() < deadline + 5s) p.io.run_one_for(100ms);
  REQUIRE(r.ec.has_value());
  REQUIRE(*r.ec == asio::error::eof);
  REQUIRE(r.n == 0);
}

TEST_CASE("Socket::AsyncReadWhenReady is cancelled by an awaitable operator, losing nothing") {
  using namespace asio::experimental::awaitable_operators;
  Pair p;
  std::string room(16, '\0');
  std::optional<size_t> timer_won;
  std::optional<std::string> next_read;
  asio::co_spawn(
      p.io,
      [&]() -> awaitable<void> {
        // Nothing arrives: the timer ends the race and the read must be cancelled (else
        // the parallel group would wait for it forever).
        asio::steady_timer timer(p.io, 50ms);
        auto r = co_await (p.socket.AsyncReadWhenReady(asio::buffer(room), use_nothrow) ||
                           timer.async_wait(use_nothrow));
        timer_won = r.index();
        // Data sent after the cancelled read goes to the next read.
        p.Send("after");
        auto [ec, n] = co_await p.socket.AsyncReadWhenReady(asio::buffer(room), use_nothrow);
        if (!ec) next_read = room.substr(0, n);
      },
      asio::detached);
  p.io.run_for(5s);
  REQUIRE(timer_won == size_t{1});
  REQUIRE(next_read == std::string("after"));
}

TEST_CASE("Socket::ReadWhenReady's handler is destroyed, not called, with its io_context") {
  auto owned = std::make_shared<int>(0);
  std::weak_ptr<int> watch = owned;
  bool called = false;
  {
    Pair p;
    std::string room(16, '\0');
    p.socket.ReadWhenReady(asio::buffer(room),
                           [owned = std::move(owned), &called](boost::system::error_code, size_t) {
                             called = true;
                           });
    p.io.poll();
    REQUIRE_FALSE(watch.expired());
  }
  REQUIRE(watch.expired());
  REQUIRE_FALSE(called);
}

TEST_CASE("Socket keeps reading after taking over another socket (Stream::Adopt)") {
  Pair q;  // destroyed after p, whose socket ends up on q's io_context
  Pair p;
  // Assigning a socket resets what the Socket remembered about its reactor.
  p.socket = TcpSocket(std::move(q.socket));
  std::string room(16, '\0');
  q.Send("moved");
  Read r;
  p.socket.ReadWhenReady(asio::buffer(room), [&r](boost::system::error_code ec, size_t n) {
    r.ec = ec;
    r.n = n;
  });
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!r.ec && std::chrono::steady_clock::now() < deadline) q.io.run_one_for(100ms);
  REQUIRE(r.ec.has_value());
  REQUIRE_FALSE(*r.ec);
  REQUIRE(room.substr(0, r.n) == "moved");
}

}  // namespace
}  // namespace pgring::proxy
