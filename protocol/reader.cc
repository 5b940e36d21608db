#include "protocol/reader.h"

#include <cstring>

namespace pgring::protocol {
namespace {

// Every multi-byte read goes through here: `n` bytes are assembled most significant first
// (network byte order), never touching memory past the span.
uint64_t BigEndian(std::span<const std::byte> b) {
  uint64_t v = 0;
  for (std::byte x : b) v = (v << 8) | static_cast<uint64_t>(x);
  return v;
}

}  // namespace

std::optional<uint8_t> Reader::Byte() {
  if (remaining() < 1) return std::nullopt;
  return static_cast<uint8_t>(data_[pos_++]);
}

std::optional<int16_t> Reader::Int16() {
  if (remaining() < 2) return std::nullopt;
  // Unsigned to signed conversion is modular since C++20, so this is the two's complement
  // value of the wire field.
  auto v = static_cast<int16_t>(static_cast<uint16_t>(BigEndian(data_.subspan(pos_, 2))));
  pos_ += 2;
  return v;
}

std::optional<int32_t> Reader::Int32() {
  if (remaining() < 4) return std::nullopt;
  auto v = static_cast<int32_t>(static_cast<uint32_t>(BigEndian(data_.subspan(pos_, 4))));
  pos_ += 4;
  return v;
}

std::optional<int64_t> Reader::Int64() {
  if (remaining() < 8) return std::nullopt;
  auto v = static_cast<int64_t>(BigEndian(data_.subspan(pos_, 8)));
  pos_ += 8;
  return v;
}

std::optional<std::string_view> Reader::CString() {
  if (AtEnd()) return std::nullopt;
  const auto* start = data_.data() + pos_;
  const void* nul = std::memchr(start, 0, remaining());
  if (nul == nullptr) return std::nullopt;
  const auto len = static_cast<size_t>(static_cast<const std::byte*>(nul) - start);
  std::string_view s(reinterpret_cast<const char*>(start), len);
  pos_ += len + 1;
  return s;
}

std::optional<std::span<const std::byte>> Reader::Bytes(size_t n) {
  if (remaining() < n) return std::nullopt;
  auto b = data_.subspan(pos_, n);
  pos_ += n;
  return b;
}

std::span<const std::byte> Reader::Rest() {
  auto b = data_.subspan(pos_);
  pos_ = data_.size();
  return b;
}

}  // namespace pgring::protocol
