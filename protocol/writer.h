// Appends protocol messages to a Buffer. Begin() writes the type byte and a length
// placeholder, End() patches the length; nothing is allocated when the buffer has room.
//
//   MessageWriter w(out);
//   w.Begin('Z'); w.Byte('I'); w.End();
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "protocol/buffer.h"

namespace pgring::protocol {

class MessageWriter {
 public:
  explicit MessageWriter(Buffer& out) : out_(out) {}

  // Starts a typed message; type 0 starts an untyped startup-phase message.
  void Begin(char type) {
    if (type != 0) Byte(static_cast<uint8_t>(type));
    // An offset from the read position, not a pointer: the buffer may grow (and move or
    // compact its storage) while the body is written; MutableAt takes exactly this offset.
    start_ = out_.size();
    BigEndian<4>(0);
  }
  void Byte(uint8_t v) { BigEndian<1>(v); }
  void Int16(int16_t v) { BigEndian<2>(static_cast<uint16_t>(v)); }
  void Int32(int32_t v) { BigEndian<4>(static_cast<uint32_t>(v)); }
  void Int64(int64_t v) { BigEndian<8>(static_cast<uint64_t>(v)); }
  // Writes s and a NUL. An embedded NUL cuts s there, so the frame stays well-formed (it
  // would end the string early on the peer's side and shift every field after it).
  void CString(std::string_view s) {
    if (auto nul = s.find('\0'); nul != std::string_view::npos) s = s.substr(0, nul);
    out_.Append(s);
    Byte(0);
  }
  void Bytes(std::span<const std::byte> b) { out_.Append(b); }
  void Bytes(std::string_view b) { out_.Append(b); }
  // Patches the length of the message started by Begin (one message at a time; a message
  // must stay below 2 GiB). Bytes must not be consumed from the buffer in between.
  void End() {
    const auto len = static_cast<uint32_t>(out_.size() - start_);
    std::byte* p = out_.MutableAt(start_);
    p[0] = static_cast<std::byte>(len >> 24);
    p[1] = static_cast<std::byte>(len >> 16);
    p[2] = static_cast<std::byte>(len >> 8);
    p[3] = static_cast<std::byte>(len);
  }

 private:
  // The low N bytes of v, most significant first (inline stores, no memcpy call).
  template <size_t N>
  void BigEndian(uint64_t v) {
    std::byte* p = out_.Prepare(N).data();
    for (size_t i = 0; i < N; ++i) p[i] = static_cast<std::byte>(v >> (8 * (N - 1 - i)));
    out_.Commit(N);
  }

  Buffer& out_;
  size_t start_ = 0;  // offset of the length field from the buffer's read position
};

}  // namespace pgring::protocol
