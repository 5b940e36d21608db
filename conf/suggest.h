// Spelling suggestions for configuration keys and enum values ("did you mean 'port'?").
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace pgring::conf {

// Returns the optimal-string-alignment distance between `a` and `b`: the number of
// single-character insertions, deletions, substitutions and adjacent transpositions
// that turn one into the other. Compares ASCII letters case-insensitively.
size_t EditDistance(std::string_view a, std::string_view b);

// Returns the candidate closest to `word` if it is close enough to be a plausible typo
// (at most 2 edits, or a third of the word's length for long words, and fewer edits than
// the word has characters); nullopt otherwise. Ties go to the earlier candidate.
std::optional<std::string> ClosestMatch(std::string_view word,
                                        std::span<const std::string_view> candidates);

}  // namespace pgring::conf
