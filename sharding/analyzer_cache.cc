#include "sharding/analyzer_cache.h"

#include <algorithm>

namespace pgring::sharding {

AnalyzerCache::AnalyzerCache(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {
  index_.reserve(capacity_);
}

absl::StatusOr<std::shared_ptr<const Analysis>> AnalyzerCache::Get(std::string_view sql) {
  if (auto it = index_.find(sql); it != index_.end()) {
    ++hits_;
    // splice keeps the node (and the string the key views) in place.
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->second;
  }
  ++misses_;
  absl::StatusOr<Analysis> analysis = Analyze(sql);
  if (!analysis.ok()) return analysis.status();
  auto shared = std::make_shared<const Analysis>(*std::move(analysis));
  if (lru_.size() >= capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  lru_.emplace_front(std::string(sql), shared);
  index_.emplace(lru_.front().first, lru_.begin());
  return shared;
}

void AnalyzerCache::Clear() {
  index_.clear();
  lru_.clear();
}

}  // namespace pgring::sharding
