// Helpers shared by the routing unit tests: Bind parameter values as the proxy hands them
// to the router.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "protocol/messages.h"

namespace pgring::sharding::testing {

// Keeps Bind values alive for the spans in BindParams.
class Binds {
 public:
  Binds& Text(std::string_view s) {
    std::vector<std::byte>& b = storage_.emplace_back();
    for (char c : s) b.push_back(static_cast<std::byte>(c));
    params_.values.emplace_back(std::span<const std::byte>(b));
    formats_.push_back(0);
    return *this;
  }
  Binds& Binary(std::vector<std::byte> bytes) {
    std::vector<std::byte>& b = storage_.emplace_back(std::move(bytes));
    params_.values.emplace_back(std::span<const std::byte>(b));
    formats_.push_back(1);
    return *this;
  }
  Binds& Null() {
    params_.values.emplace_back(std::nullopt);
    formats_.push_back(0);
    return *this;
  }
  const protocol::BindParams& params() {
    params_.formats = formats_;
    return params_;
  }

 private:
  std::deque<std::vector<std::byte>> storage_;
  decltype(protocol::BindParams::formats) formats_;
  protocol::BindParams params_;
};

// `v` in `width` bytes, most significant first (PostgreSQL's binary integer layout).
inline std::vector<std::byte> BigEndian(int64_t v, int width) {
  std::vector<std::byte> out;
  for (int k = width - 1; k >= 0; --k) {
    out.push_back(static_cast<std::byte>((static_cast<uint64_t>(v) >> (8 * k)) & 0xff));
  }
  return out;
}

}  // namespace pgring::sharding::testing
