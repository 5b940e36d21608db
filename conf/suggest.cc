#include "conf/suggest.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"

namespace pgring::conf {

size_t EditDistance(std::string_view a, std::string_view b) {
  // Three rolling rows suffice for the transposition term, which looks two rows back.
  const size_t n = b.size();
  std::vector<size_t> before(n + 1), prev(n + 1), cur(n + 1);
  for (size_t j = 0; j <= n; ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    const char ca = absl::ascii_tolower(static_cast<unsigned char>(a[i - 1]));
    for (size_t j = 1; j <= n; ++j) {
      const char cb = absl::ascii_tolower(static_cast<unsigned char>(b[j - 1]));
      const size_t cost = ca == cb ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && ca == absl::ascii_tolower(static_cast<unsigned char>(b[j - 2])) &&
          absl::ascii_tolower(static_cast<unsigned char>(a[i - 2])) == cb) {
        cur[j] = std::min(cur[j], before[j - 2] + 1);
      }
    }
    std::swap(before, prev);
    std::swap(prev, cur);
  }
  return prev[n];
}

std::optional<std::string> ClosestMatch(std::string_view word,
                                        std::span<const std::string_view> candidates) {
  // Two edits catch the usual slips (a missing, doubled or swapped letter); long names
  // get a little more room, but never so much that unrelated words match.
  const size_t limit = std::max<size_t>(2, word.size() / 3);
  std::optional<std::string> best;
  size_t best_distance = limit + 1;
  for (std::string_view candidate : candidates) {
    const size_t d = EditDistance(word, candidate);
    if (d < best_distance && d < word.size()) {
      best_distance = d;
      best = std::string(candidate);
    }
  }
  return best;
}

}  // namespace pgring::conf
