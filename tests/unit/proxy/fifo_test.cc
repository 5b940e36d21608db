#include "proxy/fifo.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>

namespace pgring::proxy {
namespace {

TEST_CASE("Fifo returns entries in order across ring wrap-around and growth") {
  Fifo<std::string> q;
  REQUIRE(q.empty());
  int next_in = 0;
  int next_out = 0;
  // Each round leaves one more entry queued: the head walks around the ring and the ring
  // grows while it is wrapped.
  for (int round = 1; round <= 9; ++round) {
    for (int i = 0; i < round; ++i) q.push_back(std::to_string(next_in++));
    REQUIRE(q.size() == static_cast<size_t>(next_in - next_out));
    REQUIRE(q.back() == std::to_string(next_in - 1));
    for (int i = 0; i < round - 1; ++i) {
      REQUIRE(q.front() == std::to_string(next_out++));
      q.pop_front();
    }
  }
  while (!q.empty()) {
    REQUIRE(q.front() == std::to_string(next_out++));
    q.pop_front();
  }
  REQUIRE(next_out == next_in);
}

TEST_CASE("Fifo frees what an entry owns when it is popped or cleared") {
  Fifo<std::shared_ptr<int>> q;
  auto a = std::make_shared<int>(1);
  auto b = std::make_shared<int>(2);
  q.push_back(a);
  q.push_back(b);
  REQUIRE(a.use_count() == 2);
  q.pop_front();
  REQUIRE(a.use_count() == 1);
  q.clear();
  REQUIRE(b.use_count() == 1);
  REQUIRE(q.empty());
  q.push_back(a);
  REQUIRE(*q.front() == 1);
}

}  // namespace
}  // namespace pgring::proxy
