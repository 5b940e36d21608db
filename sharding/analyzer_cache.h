// Caches Analyze() results by statement text, so each distinct text is parsed once.
//
//   AnalyzerCache cache(4096);
//   absl::StatusOr<std::shared_ptr<const Analysis>> a = cache.Get(sql);
//
// Each entry also keeps the RouteMemo of its first statement (Get's `memo`), so that a
// statement seen again is routed by its key values without planning it again.
//
// Threading: none. Each proxy worker thread owns its own cache (no locks on the hot path);
// the returned Analysis is immutable and may outlive its eviction and be read anywhere.
// Syntax errors are not cached.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "sharding/analyzer.h"
#include "sharding/router.h"
#include "sharding/string_map.h"

namespace pgring::sharding {

// A bounded least-recently-used map from SQL text to its Analysis.
class AnalyzerCache {
 public:
  // Holds at most `capacity` texts (at least 1).
  explicit AnalyzerCache(size_t capacity);

  AnalyzerCache(const AnalyzerCache&) = delete;
  AnalyzerCache& operator=(const AnalyzerCache&) = delete;

  // Returns the cached analysis of `sql`, analyzing and inserting it on a miss (evicting
  // the least recently used text when full). Errors are returned, counted as misses and not
  // cached. With `memo`, sets *memo to the entry's RouteMemo for the analysis's first
  // statement, valid until the next Get or Clear.
  absl::StatusOr<std::shared_ptr<const Analysis>> Get(std::string_view sql,
                                                      RouteMemo** memo = nullptr);

  // Drops every entry; the counters keep counting.
  void Clear();

  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }
  size_t size() const { return lru_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  struct Entry {
    std::string sql;
    std::shared_ptr<const Analysis> analysis;
    RouteMemo memo;
  };

  size_t capacity_;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
  // Most recently used first. The map's keys view the strings owned by the list nodes,
  // which never move.
  std::list<Entry> lru_;
  absl::flat_hash_map<std::string_view, std::list<Entry>::iterator, ViewHash, ViewEq> index_;
};

}  // namespace pgring::sharding
