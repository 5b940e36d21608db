#include "sharding/analyzer_cache.h"

#include <algorithm>

namespace pgring::sharding {

AnalyzerCache::AnalyzerCache(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {
  index_.reserve(capacity_);
}

absl::StatusOr<std::shared_ptr<const Analysis>> AnalyzerCache::Get(std::string_view sql,
                                                                   RouteMemo** memo) {
  if (auto it = index_.find(sql); it != index_.end()) {
    ++hits_;
    // splice keeps the node (and the string the key views) in place.
    lru_.splice(lru_.begin(), lru_, it->second);
    if (memo != nullptr) *memo = &it->second->memo;
    return it->second->analysis;
  }
  ++misses_;
  absl::StatusOr<Analysis> analysis = Analyze(sql);
  if (!analysis.ok()) return analysis.status();
  auto shared = std::make_shared<const Analysis>(*std::move(analysis));
  if (lru_.size() >= capacity_) {
    index_.erase(lru_.back().sql);
    lru_.pop_back();
  }
  lru_.push_front(Entry{std::string(sql), shared, {}});
  index_.emplace(lru_.front().sql, lru_.begin());
  if (memo != nullptr) *memo = &lru_.front().memo;
  return shared;
}

void AnalyzerCache::Clear() {
  index_.clear();
  lru_.clear();
}

}  // namespace pgring::sharding
