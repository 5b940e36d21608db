// Bounds-checked, zero-copy reader over a message body. Every accessor returns
// std::nullopt instead of reading past the end; strings are views into the body.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>

namespace pgring::protocol {

class Reader {
 public:
  explicit Reader(std::span<const std::byte> data) : data_(data) {}

  std::optional<uint8_t> Byte() {
    if (remaining() < 1) return std::nullopt;
    return static_cast<uint8_t>(data_[pos_++]);
  }
  // Network byte order. Unsigned to signed conversion is modular since C++20, so these
  // are the two's complement values of the wire fields.
  std::optional<int16_t> Int16() { return Fixed<int16_t, uint16_t>(); }
  std::optional<int32_t> Int32() { return Fixed<int32_t, uint32_t>(); }
  std::optional<int64_t> Int64() { return Fixed<int64_t, uint64_t>(); }
  // A NUL-terminated string; the view excludes the NUL. nullopt if no NUL before the end.
  std::optional<std::string_view> CString() {
    if (AtEnd()) return std::nullopt;
    const auto* start = data_.data() + pos_;
    if (*start == std::byte{0}) {  // the empty name of an unnamed statement or portal
      ++pos_;
      return std::string_view(reinterpret_cast<const char*>(start), 0);
    }
    const void* nul = std::memchr(start, 0, remaining());
    if (nul == nullptr) return std::nullopt;
    const auto len = static_cast<size_t>(static_cast<const std::byte*>(nul) - start);
    pos_ += len + 1;
    return std::string_view(reinterpret_cast<const char*>(start), len);
  }
  // The next n bytes.
  std::optional<std::span<const std::byte>> Bytes(size_t n) {
    if (remaining() < n) return std::nullopt;
    auto b = data_.subspan(pos_, n);
    pos_ += n;
    return b;
  }
  // Everything left.
  std::span<const std::byte> Rest() {
    auto b = data_.subspan(pos_);
    pos_ = data_.size();
    return b;
  }

  size_t remaining() const { return data_.size() - pos_; }
  size_t position() const { return pos_; }
  bool AtEnd() const { return pos_ == data_.size(); }

 private:
  // sizeof(U) bytes assembled most significant first, never touching memory past the span.
  template <typename T, typename U>
  std::optional<T> Fixed() {
    if (remaining() < sizeof(U)) return std::nullopt;
    U v = 0;
    for (size_t i = 0; i < sizeof(U); ++i) {
      v = static_cast<U>((uint64_t{v} << 8) | static_cast<uint8_t>(data_[pos_ + i]));
    }
    pos_ += sizeof(U);
    return static_cast<T>(v);
  }

  std::span<const std::byte> data_;
  size_t pos_ = 0;
};

}  // namespace pgring::protocol
