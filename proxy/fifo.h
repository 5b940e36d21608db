// A first-in first-out queue that keeps its storage: slots are reused in a ring, so a queue
// that never holds more than a few entries allocates once. (std::deque allocates and frees
// a block each time its entries walk across one: every few requests on the hot path.)
//
//   Fifo<Pending> q;
//   q.push_back(p);  q.front();  q.pop_front();
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace pgring::proxy {

template <typename T>
class Fifo {
 public:
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  T& front() { return slots_[head_]; }
  const T& front() const { return slots_[head_]; }
  T& back() { return slots_[Index(size_ - 1)]; }
  const T& back() const { return slots_[Index(size_ - 1)]; }

  void push_back(T value) {
    if (size_ == slots_.size()) Grow();
    slots_[Index(size_)] = std::move(value);
    ++size_;
  }
  // The slot is reset, so what the entry owns is freed now.
  void pop_front() {
    slots_[head_] = T{};
    head_ = Index(1);
    --size_;
  }
  void clear() {
    while (!empty()) pop_front();
    head_ = 0;
  }

 private:
  // slots_.size() is zero or a power of two.
  size_t Index(size_t i) const { return (head_ + i) & (slots_.size() - 1); }
  void Grow() {
    std::vector<T> bigger(slots_.empty() ? 4 : slots_.size() * 2);
    for (size_t i = 0; i < size_; ++i) bigger[i] = std::move(slots_[Index(i)]);
    slots_.swap(bigger);
    head_ = 0;
  }

  std::vector<T> slots_;
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace pgring::proxy
