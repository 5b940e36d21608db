#include "conf/duration.h"

#include <catch2/catch.hpp>

namespace pgring::conf {
namespace {

TEST_CASE("ParseDuration accepts an integer with ms, s, m or h, and bare 0", "[conf][duration]") {
  CHECK(*ParseDuration("0") == Duration{0});
  CHECK(*ParseDuration("0s") == Duration{0});
  CHECK(*ParseDuration("250ms") == Duration{250});
  CHECK(*ParseDuration("5s") == Duration{5000});
  CHECK(*ParseDuration("10m") == Duration{600000});
  CHECK(*ParseDuration("1h") == Duration{3600000});
  CHECK(*ParseDuration("8760h") == kMaxDuration);
}

TEST_CASE("ParseDuration rejects what is not an integer and a unit", "[conf][duration]") {
  const auto message = [](std::string_view text) {
    return std::string(ParseDuration(text).status().message());
  };
  CHECK(message("") ==
        "'' is not a duration; write an integer and a unit, one of ms, s, m, h "
        "(for example 250ms, 5s, 10m, 1h), or 0");
  CHECK(message("5000") == "'5000' has no unit; write 5000ms, 5000s, 5000m or 5000h");
  CHECK(message("5 s") == "'5 s' has a space before the unit; write 5s");
  CHECK(message("5sec") ==
        "'5sec' has an unknown unit 'sec'; write an integer and a unit, one of ms, s, m, h "
        "(for example 250ms, 5s, 10m, 1h), or 0");
  CHECK(message("1.5s").find("unknown unit '.5s'") != std::string::npos);
  CHECK(message("-1s").find("'-1s' is negative") == 0);
  CHECK(message("s").find("is not a duration") != std::string::npos);
  CHECK(message("5S").find("unknown unit 'S'") != std::string::npos);
  CHECK(ParseDuration("5s ").status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("ParseDuration rejects durations over a year without overflowing", "[conf][duration]") {
  CHECK(ParseDuration("8761h").status().code() == absl::StatusCode::kOutOfRange);
  CHECK(std::string(ParseDuration("8761h").status().message()) ==
        "'8761h' is longer than the maximum of 8760h");
  CHECK(ParseDuration("9223372036854775807ms").status().code() == absl::StatusCode::kOutOfRange);
  CHECK(ParseDuration("99999999999999999999999h").status().code() == absl::StatusCode::kOutOfRange);
  CHECK(ParseDuration("31536000001ms").status().code() == absl::StatusCode::kOutOfRange);
  CHECK(*ParseDuration("31536000000ms") == kMaxDuration);
}

TEST_CASE("FormatDuration uses the largest exact unit and round-trips", "[conf][duration]") {
  CHECK(FormatDuration(Duration{0}) == "0");
  CHECK(FormatDuration(Duration{250}) == "250ms");
  CHECK(FormatDuration(Duration{1500}) == "1500ms");
  CHECK(FormatDuration(Duration{5000}) == "5s");
  CHECK(FormatDuration(Duration{90000}) == "90s");
  CHECK(FormatDuration(Duration{600000}) == "10m");
  CHECK(FormatDuration(Duration{7200000}) == "2h");
  for (int64_t ms : {0LL, 1LL, 999LL, 1000LL, 61000LL, 3600000LL, 86400000LL, 31536000000LL}) {
    CHECK(*ParseDuration(FormatDuration(Duration{ms})) == Duration{ms});
  }
}

}  // namespace
}  // namespace pgring::conf
