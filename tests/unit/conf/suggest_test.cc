#include "conf/suggest.h"

#include <array>
#include <catch2/catch.hpp>

namespace pgring::conf {
namespace {

TEST_CASE("EditDistance counts edits, with adjacent swaps as one", "[conf][suggest]") {
  CHECK(EditDistance("", "") == 0);
  CHECK(EditDistance("port", "port") == 0);
  CHECK(EditDistance("", "port") == 4);
  CHECK(EditDistance("prot", "port") == 1);   // transposition
  CHECK(EditDistance("pot", "port") == 1);    // deletion
  CHECK(EditDistance("poort", "port") == 1);  // insertion
  CHECK(EditDistance("part", "port") == 1);   // substitution
  CHECK(EditDistance("PORT", "port") == 0);   // case-insensitive
  CHECK(EditDistance("kitten", "sitting") == 3);
  CHECK(EditDistance("ca", "abc") == 3);  // OSA: no edits inside a swapped pair
}

TEST_CASE("ClosestMatch suggests plausible typos only", "[conf][suggest]") {
  constexpr std::array<std::string_view, 5> keys = {"host", "port", "admin_port", "metrics_port",
                                                    "database"};
  CHECK(ClosestMatch("prot", keys) == "port");
  CHECK(ClosestMatch("adminport", keys) == "admin_port");
  CHECK(ClosestMatch("metric_ports", keys) == "metrics_port");
  CHECK(ClosestMatch("databse", keys) == "database");
  CHECK(ClosestMatch("Host", keys) == "host");
  CHECK_FALSE(ClosestMatch("replicas", keys).has_value());
  CHECK_FALSE(ClosestMatch("x", keys).has_value());
  CHECK_FALSE(ClosestMatch("", keys).has_value());
  CHECK_FALSE(ClosestMatch("anything", std::span<const std::string_view>()).has_value());
}

}  // namespace
}  // namespace pgring::conf
