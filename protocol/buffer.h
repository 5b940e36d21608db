// Growable byte buffer with a read and a write position, used for socket input and
// output. Bytes are appended at the back (Prepare/Commit or Append) and consumed from
// the front (Consume); Compact() moves unread bytes to the front so the storage is
// reused without reallocation in steady state.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <utility>

namespace pgring::protocol {

class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t reserve) { Grow(reserve); }
  Buffer(Buffer&& other) noexcept { *this = std::move(other); }
  Buffer& operator=(Buffer&& other) noexcept {
    storage_ = std::move(other.storage_);
    capacity_ = std::exchange(other.capacity_, 0);
    read_ = std::exchange(other.read_, 0);
    write_ = std::exchange(other.write_, 0);
    return *this;
  }
  Buffer(const Buffer& other) { *this = other; }
  Buffer& operator=(const Buffer& other) {
    if (this != &other) {
      Clear();
      Append(other.Readable());
    }
    return *this;
  }

  // Unread bytes.
  std::span<const std::byte> Readable() const {
    return {storage_.get() + read_, write_ - read_};
  }
  size_t size() const { return write_ - read_; }
  bool empty() const { return write_ == read_; }

  // Returns at least `n` writable bytes at the back; call Commit with how many were used.
  std::span<std::byte> Prepare(size_t n) {
    if (capacity_ - write_ < n) Grow(n);
    return {storage_.get() + write_, capacity_ - write_};
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
    storage_.reset();
    capacity_ = 0;
  }
  size_t capacity() const { return capacity_; }

  // Writable view of already-committed bytes at offset `pos` from the read position
  // (used to patch a length field after the body is written).
  std::byte* MutableAt(size_t pos) { return storage_.get() + read_ + pos; }

 private:
  void Grow(size_t n) {
    if (read_ > 0) {  // compact first
      std::memmove(storage_.get(), storage_.get() + read_, write_ - read_);
      write_ -= read_;
      read_ = 0;
      if (capacity_ - write_ >= n) return;
    }
    size_t want = write_ + n;
    size_t cap = capacity_ < 256 ? 256 : capacity_;
    while (cap < want) cap *= 2;
    // Not zero-filled: a socket read writes it (a 16 KiB read would otherwise clear 16 KiB).
    std::unique_ptr<std::byte[]> grown(new std::byte[cap]);
    if (write_ > 0) std::memcpy(grown.get(), storage_.get(), write_);
    storage_ = std::move(grown);
    capacity_ = cap;
  }

  std::unique_ptr<std::byte[]> storage_;
  size_t capacity_ = 0;
  size_t read_ = 0;
  size_t write_ = 0;
};

}  // namespace pgring::protocol
