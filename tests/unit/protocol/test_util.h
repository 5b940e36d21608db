// Helpers shared by the protocol unit tests: byte-string builders and views.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>

#include "protocol/buffer.h"

namespace pgring::protocol::testing {

inline std::span<const std::byte> AsBytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

inline std::string AsString(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

inline std::string AsString(const Buffer& b) { return AsString(b.Readable()); }

// True if `inner` lies entirely inside `outer` (parsed views must borrow from the input).
inline bool Within(std::span<const std::byte> inner, std::span<const std::byte> outer) {
  if (inner.empty()) return true;
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}
inline bool Within(std::string_view inner, std::span<const std::byte> outer) {
  return Within(AsBytes(inner), outer);
}

// Builds wire bytes by hand, independently of MessageWriter.
class Wire {
 public:
  Wire& U8(uint8_t v) {
    s_ += static_cast<char>(v);
    return *this;
  }
  Wire& I16(int32_t v) {
    const auto u = static_cast<uint16_t>(v);
    s_ += static_cast<char>(u >> 8);
    s_ += static_cast<char>(u & 0xff);
    return *this;
  }
  Wire& I32(int64_t v) {
    const auto u = static_cast<uint32_t>(v);
    for (int shift = 24; shift >= 0; shift -= 8) s_ += static_cast<char>((u >> shift) & 0xff);
    return *this;
  }
  Wire& Str(std::string_view v) {  // with NUL
    s_.append(v);
    s_ += '\0';
    return *this;
  }
  Wire& Raw(std::string_view v) {
    s_.append(v);
    return *this;
  }
  // Wraps the bytes so far as a typed frame (type 0: untyped startup frame).
  std::string Frame(char type) const {
    Wire w;
    if (type != 0) w.U8(static_cast<uint8_t>(type));
    w.I32(static_cast<int64_t>(s_.size()) + 4);
    return w.s_ + s_;
  }
  const std::string& str() const { return s_; }
  std::span<const std::byte> bytes() const { return AsBytes(s_); }

 private:
  std::string s_;
};

// Random bytes drawn mostly from a small alphabet rich in 0x00 and 0xff, so that NULs,
// small counts and -1 lengths are common and random input often gets deep into parsers.
inline std::string RandomBody(std::mt19937& rng, size_t max_len) {
  static constexpr uint8_t kAlphabet[] = {0, 0, 0, 0, 1, 2, 3, 4, 'S', 'P', 'I', 'a', 0xff, 0xff};
  std::uniform_int_distribution<size_t> len_dist(0, max_len);
  std::uniform_int_distribution<int> pick(0, 99);
  std::uniform_int_distribution<size_t> alpha(0, sizeof(kAlphabet) - 1);
  std::uniform_int_distribution<int> any(0, 255);
  std::string s(len_dist(rng), '\0');
  for (char& c : s) c = static_cast<char>(pick(rng) < 70 ? kAlphabet[alpha(rng)] : any(rng));
  return s;
}

}  // namespace pgring::protocol::testing
