// ShapeMemo: ShapeOf for statements of a form seen before, by comparison instead of a scan.
//
// Applications that put their values into the query text send the same few statement
// forms again and again with other values. The memo keeps the forms it shaped recently
// (the shape's text and, for each replaced literal, its kind and where its parameter
// stands); a statement whose text outside the literals matches a form byte for byte,
// with a literal of the same kind in each place, gets that form's shape and its own
// values without being scanned.
//
//   ShapeMemo memo;
//   LiteralShape shape;
//   memo.Shape("SELECT * FROM orders WHERE tenant_id = 42", shape);  // scanned, remembered
//   memo.Shape("SELECT * FROM orders WHERE tenant_id = 7", shape);   // matched
//   // shape.text == "SELECT * FROM orders WHERE tenant_id = $1", shape.values == {"7"}
//
// Shape(sql, out) returns exactly what ShapeOf(sql, out) returns, with the same text and
// values (a unit test compares them on random statements): a literal of the same kind (an
// integer of at most 18 digits, with a minus or not unless an operator comes right before
// it, or a plain '...' string) between the same bytes is scanned as the same token, and
// the bytes around it as the same tokens too. Forms are found by their first 16 bytes, so
// a form with a literal among them is not kept, nor one with an integer that a letter,
// digit, `_` or `.` follows (so that no rule of a later PostgreSQL, such as 0x1F or
// 1_000, could join them). Bounded: at most kBuckets * kWays forms of at most 4 KiB, the
// least recently used of a bucket replaced. Not thread-safe: one per thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sharding/literal_shape.h"

namespace pgring::sharding {

class ShapeMemo {
 public:
  static constexpr size_t kBuckets = 64;
  static constexpr size_t kWays = 4;
  // Statements shorter than this are shaped by ShapeOf alone.
  static constexpr size_t kKeyBytes = 16;

  ShapeMemo();
  ~ShapeMemo();
  ShapeMemo(const ShapeMemo&) = delete;
  ShapeMemo& operator=(const ShapeMemo&) = delete;

  // ShapeOf(sql, out). out.text may point into the memo: it is valid until the next Shape.
  bool Shape(std::string_view sql, LiteralShape& out);

  // Statements shaped from a remembered form, and by a scan.
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

 private:
  struct Form;

  static size_t Bucket(std::string_view sql);
  static std::unique_ptr<Form> MakeForm(std::string_view sql, const LiteralShape& shape);
  static bool Match(const Form& form, std::string_view sql, LiteralShape& out);

  // Most recently used first.
  std::array<std::array<std::unique_ptr<Form>, kWays>, kBuckets> buckets_;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
};

}  // namespace pgring::sharding
