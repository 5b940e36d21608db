// Growable byte buffer with a read and a write position, used for socket input and
// output. Bytes are appended at the back (Prepare/Commit or Append) and consumed from
// the front (Consume); Compact() moves unread bytes to the front so the storage is
// reused without reallocation in steady state.
#pragma once

#include <cstddef>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace pgring::protocol {

class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t reserve) { storage_.reserve(reserve); }

  // Unread bytes.
  std::span<const std::byte> Readable() const {
    return {storage_.data() + read_, write_ - read_};
  }
  size_t size() const { return write_ - read_; }
  bool empty() const { return write_ == read_; }

  // Returns at least `n` writable bytes at the back; call Commit with how many were used.
  std::span<std::byte> Prepare(size_t n) {
    if (storage_.size() - write_ < n) Grow(n);
    return {storage_.data() + write_, storage_.size() - write_};
  }
  void Commit(size_t n) { write_ += n; }

  void Append(std::span<const std::byte> bytes) {
    auto dst = Prepare(bytes.size());
    if (!bytes.empty()) std::memcpy(dst.data(), bytes.data(), bytes.size());
    Commit(bytes.size());
  }
  void Append(std::string_view s) { Append(std::as_bytes(std::span(s.data(), s.size()))); }

  void Consume(size_t n) {
    read_ += n;
    if (read_ == write_) read_ = write_ = 0;
  }
  void Clear() { read_ = write_ = 0; }
  // Drops all storage (used for idle clients so they hold no buffer memory).
  void Release() {
    Clear();
    std::vector<std::byte>().swap(storage_);
  }
  size_t capacity() const { return storage_.size(); }

  // Writable view of already-committed bytes at offset `pos` from the read position
  // (used to patch a length field after the body is written).
  std::byte* MutableAt(size_t pos) { return storage_.data() + read_ + pos; }

 private:
  void Grow(size_t n) {
    if (read_ > 0) {  // compact first
      std::memmove(storage_.data(), storage_.data() + read_, write_ - read_);
      write_ -= read_;
      read_ = 0;
      if (storage_.size() - write_ >= n) return;
    }
    size_t want = write_ + n;
    size_t cap = storage_.size() < 256 ? 256 : storage_.size();
    while (cap < want) cap *= 2;
    storage_.resize(cap);
  }

  std::vector<std::byte> storage_;
  size_t read_ = 0;
  size_t write_ = 0;
};

}  // namespace pgring::protocol
