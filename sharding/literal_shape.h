// The *shape* of a DML statement: its text with the literal values that can carry a shard
// key replaced by parameters ($1, $2...), so that statements differing only in those values
// share one analysis in the cache (AnalyzerCache) and are routed with the values as
// text-format parameters.
//
//   LiteralShape shape;
//   if (ShapeOf("SELECT * FROM orders WHERE tenant_id = 42", shape)) {
//     // shape.text == "SELECT * FROM orders WHERE tenant_id = $1", shape.values == {"42"}
//   }
//
// Only values that are certainly the same to the router as a parameter are replaced: an
// integer of at most 18 digits (with its sign when a `-` right before it is one) or a plain
// '...' string without doubled quotes, right after `=`, `(` or `,`; integers also as the
// operand of another operator without a minus in it (`amount + 5`), where the analyzer
// sees an expression either way. A parameter of unknown type is read as the shard key's
// type, as the literal would be, and a cast after it stays in the text. Everything else
// (floats, E'' strings, LIMIT counts, ORDER BY positions, `x - 5`...) keeps its text. Only SELECT, INSERT, UPDATE, DELETE and WITH statements without
// parameters of their own are shaped; a shape that PostgreSQL's parser rejects (a literal
// where the grammar wants a constant) means analyzing the text itself instead.
//
// The shape is for analysis and routing only: the statement's own text is what runs.
// Pure; allocates only when the shape's buffer or value list must grow.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pgring::sharding {

// Filled by ShapeOf; meant to be reused from statement to statement (its buffer then
// stops growing), so it cannot be copied.
struct LiteralShape {
  LiteralShape() = default;
  LiteralShape(const LiteralShape&) = delete;
  LiteralShape& operator=(const LiteralShape&) = delete;

  // The shape's text, in `buffer`: valid until the next ShapeOf into this object.
  std::string_view text;
  // The replaced values in parameter order: $n is values[n - 1], the literal's text without
  // its quotes; views into the statement text.
  std::vector<std::string_view> values;
  // Storage of `text`.
  std::string buffer;
};

// Fills `out` and returns true if `sql` is one statement of the kinds above with at least
// one replaceable literal.
bool ShapeOf(std::string_view sql, LiteralShape& out);

namespace shape_internal {
// ShapeOf over SqlScanner's tokens. ShapeOf scans the usual statement in one pass and
// leaves the rest (comments, quoted identifiers, E'' and dollar-quoted strings) to this;
// the two agree on every statement (a unit test compares them).
bool ShapeByTokens(std::string_view sql, LiteralShape& out);
}  // namespace shape_internal

}  // namespace pgring::sharding
