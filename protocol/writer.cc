#include "protocol/writer.h"

#include <cstring>

namespace pgring::protocol {
namespace {

void AppendBigEndian(Buffer& out, uint64_t v, size_t n) {
  std::byte tmp[8];
  for (size_t i = 0; i < n; ++i) tmp[i] = static_cast<std::byte>(v >> (8 * (n - 1 - i)));
  out.Append(std::span<const std::byte>(tmp, n));
}

}  // namespace

void MessageWriter::Begin(char type) {
  if (type != 0) Byte(static_cast<uint8_t>(type));
  // An offset from the read position, not a pointer: the buffer may grow (and move or
  // compact its storage) while the body is written; MutableAt takes exactly this offset.
  start_ = out_.size();
  AppendBigEndian(out_, 0, 4);
}

void MessageWriter::Byte(uint8_t v) {
  const auto b = static_cast<std::byte>(v);
  out_.Append(std::span<const std::byte>(&b, 1));
}

void MessageWriter::Int16(int16_t v) { AppendBigEndian(out_, static_cast<uint16_t>(v), 2); }
void MessageWriter::Int32(int32_t v) { AppendBigEndian(out_, static_cast<uint32_t>(v), 4); }
void MessageWriter::Int64(int64_t v) { AppendBigEndian(out_, static_cast<uint64_t>(v), 8); }

void MessageWriter::CString(std::string_view s) {
  // A NUL inside `s` would end the string early on the peer's side and shift every field
  // after it; cutting there keeps the frame well-formed.
  if (auto nul = s.find('\0'); nul != std::string_view::npos) s = s.substr(0, nul);
  out_.Append(s);
  Byte(0);
}

void MessageWriter::Bytes(std::span<const std::byte> b) { out_.Append(b); }
void MessageWriter::Bytes(std::string_view b) { out_.Append(b); }

void MessageWriter::End() {
  const auto len = static_cast<uint32_t>(out_.size() - start_);
  std::byte* p = out_.MutableAt(start_);
  p[0] = static_cast<std::byte>(len >> 24);
  p[1] = static_cast<std::byte>(len >> 16);
  p[2] = static_cast<std::byte>(len >> 8);
  p[3] = static_cast<std::byte>(len);
}

}  // namespace pgring::protocol
