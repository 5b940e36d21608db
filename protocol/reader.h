// Bounds-checked, zero-copy reader over a message body. Every accessor returns
// std::nullopt instead of reading past the end; strings are views into the body.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace pgring::protocol {

class Reader {
 public:
  explicit Reader(std::span<const std::byte> data) : data_(data) {}

  std::optional<uint8_t> Byte();
  std::optional<int16_t> Int16();   // network byte order
  std::optional<int32_t> Int32();
  std::optional<int64_t> Int64();
  // A NUL-terminated string; the view excludes the NUL. nullopt if no NUL before the end.
  std::optional<std::string_view> CString();
  // The next n bytes.
  std::optional<std::span<const std::byte>> Bytes(size_t n);
  // Everything left.
  std::span<const std::byte> Rest();

  size_t remaining() const { return data_.size() - pos_; }
  size_t position() const { return pos_; }
  bool AtEnd() const { return pos_ == data_.size(); }

 private:
  std::span<const std::byte> data_;
  size_t pos_ = 0;
};

}  // namespace pgring::protocol
