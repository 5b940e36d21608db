// Appends protocol messages to a Buffer. Begin() writes the type byte and a length
// placeholder, End() patches the length; nothing is allocated when the buffer has room.
//
//   MessageWriter w(out);
//   w.Begin('Z'); w.Byte('I'); w.End();
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "protocol/buffer.h"

namespace pgring::protocol {

class MessageWriter {
 public:
  explicit MessageWriter(Buffer& out) : out_(out) {}

  // Starts a typed message; type 0 starts an untyped startup-phase message.
  void Begin(char type);
  void Byte(uint8_t v);
  void Int16(int16_t v);
  void Int32(int32_t v);
  void Int64(int64_t v);
  // Writes s and a NUL. An embedded NUL cuts s there, so the frame stays well-formed.
  void CString(std::string_view s);
  void Bytes(std::span<const std::byte> b);
  void Bytes(std::string_view b);
  // Patches the length of the message started by Begin (one message at a time; a message
  // must stay below 2 GiB). Bytes must not be consumed from the buffer in between.
  void End();

 private:
  Buffer& out_;
  size_t start_ = 0;  // offset of the length field from the buffer's read position
};

}  // namespace pgring::protocol
