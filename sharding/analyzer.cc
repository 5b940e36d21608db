#include "sharding/analyzer.h"

#include <pg_query.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "protocol/sql_error.h"
#include "sharding/sql_scan.h"

// Why JSON and not the protobuf form of the parse tree: with libpg_query 15-4.0.0 (Debian
// bookworm), measured on a pgbench SELECT, pg_query_parse() takes 5 us while
// pg_query_parse_protobuf() takes 22 us and the protobuf-c unpack another 14 us.
// Statements with inline literals miss the cache every time, so the parse is on the hot
// path. The JSON is read by the small parser below into a flat tree of views; no
// libpg_query type leaves this file.

namespace pgring::sharding {
namespace {

// Debian's abseil has its own absl::string_view, distinct from std::string_view.
absl::string_view Av(std::string_view s) { return {s.data(), s.size()}; }

// ---------------------------------------------------------------------------------------
// A minimal JSON reader for libpg_query's output: one flat vector of values, the children
// of an array or object stored contiguously. Strings are views into the input unless they
// hold escapes.

class JsonDoc {
 public:
  enum class Type : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };
  struct Value {
    Type type = Type::kNull;
    bool boolean = false;
    std::string_view text;  // string contents or number text
    std::string_view key;   // member name inside an object
    uint32_t first = 0;     // index of the first child in values_
    uint32_t count = 0;
  };

  // Returns false if `json` is not well-formed.
  bool Parse(std::string_view json) {
    in_ = json;
    pos_ = 0;
    values_.clear();
    stack_.clear();
    values_.reserve(json.size() / 8);
    if (!ParseValue(root_)) return false;
    SkipSpace();
    return pos_ == in_.size();
  }

  const Value& root() const { return root_; }
  // Keeps `s` alive as long as the document.
  std::string_view Own(std::string s) { return unescaped_.emplace_back(std::move(s)); }
  const Value& child(uint32_t i) const { return values_[i]; }
  Value& mutable_child(uint32_t i) { return values_[i]; }

 private:
  void SkipSpace() {
    while (pos_ < in_.size() &&
           (in_[pos_] == ' ' || in_[pos_] == '\n' || in_[pos_] == '\r' || in_[pos_] == '\t')) {
      ++pos_;
    }
  }

  bool Consume(char c) {
    SkipSpace();
    if (pos_ < in_.size() && in_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  static int HexDigit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  static void AppendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  bool ReadHex4(uint32_t& cp) {
    if (pos_ + 4 > in_.size()) return false;
    cp = 0;
    for (int k = 0; k < 4; ++k) {
      int d = HexDigit(in_[pos_++]);
      if (d < 0) return false;
      cp = cp * 16 + static_cast<uint32_t>(d);
    }
    return true;
  }

  // Reads a string whose opening quote was consumed.
  bool ParseString(std::string_view& out) {
    size_t start = pos_;
    while (pos_ < in_.size() && in_[pos_] != '"' && in_[pos_] != '\\') ++pos_;
    if (pos_ >= in_.size()) return false;
    if (in_[pos_] == '"') {
      out = in_.substr(start, pos_ - start);
      ++pos_;
      return true;
    }
    std::string& s = unescaped_.emplace_back(in_.substr(start, pos_ - start));
    while (pos_ < in_.size() && in_[pos_] != '"') {
      char c = in_[pos_++];
      if (c != '\\') {
        s += c;
        continue;
      }
      if (pos_ >= in_.size()) return false;
      char e = in_[pos_++];
      switch (e) {
        case 'n':
          s += '\n';
          break;
        case 't':
          s += '\t';
          break;
        case 'r':
          s += '\r';
          break;
        case 'b':
          s += '\b';
          break;
        case 'f':
          s += '\f';
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!ReadHex4(cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00 && in_.substr(pos_, 2) == "\\u") {
            pos_ += 2;
            uint32_t low = 0;
            if (!ReadHex4(low)) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          AppendUtf8(s, cp);
          break;
        }
        default:
          s += e;
          break;  // \" \\ \/
      }
    }
    if (pos_ >= in_.size()) return false;
    ++pos_;
    out = s;
    return true;
  }

  bool ParseValue(Value& v) {
    SkipSpace();
    if (pos_ >= in_.size()) return false;
    char c = in_[pos_];
    if (c == '{' || c == '[') {
      ++pos_;
      bool object = c == '{';
      v.type = object ? Type::kObject : Type::kArray;
      size_t mark = stack_.size();
      if (!Consume(object ? '}' : ']')) {
        do {
          Value item;
          if (object) {
            if (!Consume('"') || !ParseString(item.key) || !Consume(':')) return false;
          }
          if (!ParseValue(item)) return false;
          stack_.push_back(item);
        } while (Consume(','));
        if (!Consume(object ? '}' : ']')) return false;
      }
      v.first = static_cast<uint32_t>(values_.size());
      v.count = static_cast<uint32_t>(stack_.size() - mark);
      values_.insert(values_.end(), stack_.begin() + static_cast<std::ptrdiff_t>(mark),
                     stack_.end());
      stack_.resize(mark);
      return true;
    }
    if (c == '"') {
      ++pos_;
      v.type = Type::kString;
      return ParseString(v.text);
    }
    size_t start = pos_;
    while (pos_ < in_.size() && in_[pos_] != ',' && in_[pos_] != '}' && in_[pos_] != ']' &&
           in_[pos_] != ' ' && in_[pos_] != '\n') {
      ++pos_;
    }
    std::string_view word = in_.substr(start, pos_ - start);
    if (word == "true" || word == "false") {
      v.type = Type::kBool;
      v.boolean = word == "true";
    } else if (word == "null") {
      v.type = Type::kNull;
    } else if (!word.empty()) {
      v.type = Type::kNumber;
      v.text = word;
    } else {
      return false;
    }
    return true;
  }

  std::string_view in_;
  size_t pos_ = 0;
  Value root_;
  std::vector<Value> values_;
  std::vector<Value> stack_;           // children of the containers being parsed
  std::deque<std::string> unescaped_;  // stable storage for strings with escapes
};

// A read-only handle on one JSON value; a default J stands for an absent value. A parse
// tree node is an object with one member named after the node type ({"SelectStmt":{...}});
// messages embedded without a Node wrapper (a RangeVar under "relation") are plain objects.
class J {
 public:
  J() = default;
  J(const JsonDoc* doc, const JsonDoc::Value* v) : doc_(doc), v_(v) {}

  bool present() const { return v_ != nullptr && v_->type != JsonDoc::Type::kNull; }
  bool IsObject() const { return v_ != nullptr && v_->type == JsonDoc::Type::kObject; }

  // The member named `key` of an object.
  J operator[](std::string_view key) const {
    if (!IsObject()) return {};
    for (uint32_t i = 0; i < v_->count; ++i) {
      const JsonDoc::Value& m = doc_->child(v_->first + i);
      if (m.key == key) return {doc_, &m};
    }
    return {};
  }

  // Elements of an array (0 for anything else).
  size_t Size() const { return v_ != nullptr && v_->type == JsonDoc::Type::kArray ? v_->count : 0; }
  J At(size_t i) const {
    return i < Size() ? J(doc_, &doc_->child(v_->first + static_cast<uint32_t>(i))) : J();
  }

  class Iterator {
   public:
    Iterator(const J* parent, size_t i) : parent_(parent), i_(i) {}
    J operator*() const { return parent_->At(i_); }
    Iterator& operator++() {
      ++i_;
      return *this;
    }
    bool operator!=(const Iterator& o) const { return i_ != o.i_; }

   private:
    const J* parent_;
    size_t i_;
  };
  // Range-for over array elements.
  Iterator begin() const { return {this, 0}; }
  Iterator end() const { return {this, Size()}; }

  std::string_view Str() const {
    return v_ != nullptr && v_->type == JsonDoc::Type::kString ? v_->text : std::string_view();
  }
  // Number text ("" if not a number).
  std::string_view NumberText() const {
    return v_ != nullptr && v_->type == JsonDoc::Type::kNumber ? v_->text : std::string_view();
  }
  int64_t Int() const {
    int64_t x = 0;
    if (!absl::SimpleAtoi(Av(NumberText()), &x)) return 0;
    return x;
  }
  bool Bool() const { return v_ != nullptr && v_->type == JsonDoc::Type::kBool && v_->boolean; }
  // The text stored on an object by FixIntegerConstants().
  std::string_view Note() const { return IsObject() ? v_->text : std::string_view(); }

  // Node type of a node ("" for plain objects, arrays and scalars).
  std::string_view Tag() const {
    if (!IsObject() || v_->count != 1) return {};
    std::string_view key = doc_->child(v_->first).key;
    return !key.empty() && key[0] >= 'A' && key[0] <= 'Z' ? key : std::string_view();
  }
  // The fields of a node.
  J Body() const {
    if (v_ == nullptr || Tag().empty()) return {};
    return {doc_, &doc_->child(v_->first)};
  }
  bool Is(std::string_view tag) const { return !tag.empty() && Tag() == tag; }

  // Children of an object or array, for generic walks.
  size_t ChildCount() const {
    return v_ != nullptr &&
                   (v_->type == JsonDoc::Type::kObject || v_->type == JsonDoc::Type::kArray)
               ? v_->count
               : 0;
  }
  J Child(size_t i) const {
    if (i >= ChildCount()) return {};
    return {doc_, &doc_->child(v_->first + static_cast<uint32_t>(i))};
  }

  const void* id() const { return v_; }
  // The member name of a value inside an object ("" otherwise).
  std::string_view Key() const { return v_ != nullptr ? v_->key : std::string_view(); }

 private:
  const JsonDoc* doc_ = nullptr;
  const JsonDoc::Value* v_ = nullptr;
};

// Calls visit(J node) on every node at or below `v`, pre-order; `visit` returns whether to
// descend. Plain embedded messages are walked through without a call.
template <typename Visit>
void Walk(J v, Visit& visit) {
  if (!v.present()) return;
  if (!v.Tag().empty()) {
    if (!visit(v)) return;
    Walk(v.Body(), visit);
    return;
  }
  for (size_t i = 0; i < v.ChildCount(); ++i) Walk(v.Child(i), visit);
}

template <typename Visit>
void VisitNodes(J v, Visit visit) {
  Walk(v, visit);
}

// The integer constant whose text starts at `location`: libpg_query 15-4.0.0 prints a
// negative or zero integer constant as "ival":{} (its JSON writer skips values <= 0), and the
// location points at the minus sign, so the value is read back from the query text.
// Returns "?" when the text shows a minus sign but no plain number after it.
std::string IntegerTextAt(std::string_view sql, int64_t location) {
  std::string_view rest =
      location >= 0 && static_cast<size_t>(location) < sql.size() ? sql.substr(location) : "";
  bool negative = false;
  bool saw_sign = false;
  size_t k = 0;
  // `- 5`, `-(5)` and `- -5` are folded into one constant by the grammar too.
  while (k < rest.size() && (rest[k] == '-' || rest[k] == '+' || rest[k] == '(' ||
                             absl::ascii_isspace(static_cast<unsigned char>(rest[k])))) {
    if (rest[k] == '-') negative = !negative;
    saw_sign = saw_sign || rest[k] == '-' || rest[k] == '+';
    ++k;
  }
  size_t end = k;
  while (end < rest.size() && absl::ascii_isdigit(static_cast<unsigned char>(rest[end]))) ++end;
  std::string_view digits = rest.substr(k, end - k);
  while (digits.size() > 1 && digits.front() == '0') digits.remove_prefix(1);
  if (digits.empty()) {
    // A constant the grammar made up (READ WRITE is transaction_read_only = 0).
    return saw_sign ? "?" : "0";
  }
  if (digits == "0") return "0";
  return negative ? absl::StrCat("-", Av(digits)) : std::string(digits);
}

// Notes the value of every "ival":{} on the empty object (see IntegerTextAt).
void FixIntegerConstants(JsonDoc& doc, const JsonDoc::Value& v, std::string_view sql) {
  if (v.type != JsonDoc::Type::kObject && v.type != JsonDoc::Type::kArray) return;
  for (uint32_t i = 0; i < v.count; ++i) {
    const JsonDoc::Value& m = doc.child(v.first + i);
    if (m.key == "A_Const" && m.type == JsonDoc::Type::kObject) {
      int64_t location = -1;
      uint32_t empty_ival = UINT32_MAX;
      for (uint32_t f = 0; f < m.count; ++f) {
        const JsonDoc::Value& field = doc.child(m.first + f);
        if (field.key == "location") {
          absl::SimpleAtoi(Av(field.text), &location);
        } else if (field.key == "ival" && field.type == JsonDoc::Type::kObject &&
                   field.count == 0) {
          empty_ival = m.first + f;
        }
      }
      if (empty_ival != UINT32_MAX) {
        doc.mutable_child(empty_ival).text = doc.Own(IntegerTextAt(sql, location));
      }
    }
    FixIntegerConstants(doc, m, sql);
  }
}

// ---------------------------------------------------------------------------------------
// Small accessors over the parse tree.

// The text of a String node (identifiers in name lists), "" for anything else.
std::string_view StringOf(J n) { return n.Is("String") ? n.Body()["sval"].Str() : ""; }

// Joins a list of String nodes with '.' (qualified names).
std::string JoinNames(J list) {
  std::string out;
  for (size_t i = 0; i < list.Size(); ++i) {
    if (i > 0) out += '.';
    out += StringOf(list.At(i));
  }
  return out;
}

std::string LastName(J list) {
  return list.Size() == 0 ? std::string() : std::string(StringOf(list.At(list.Size() - 1)));
}

// Operator name of an A_Expr body ("=" for `a = b`).
std::string_view OperatorOf(J e) {
  J name = e["name"];
  return name.Size() == 0 ? std::string_view() : StringOf(name.At(name.Size() - 1));
}

// The type name PostgreSQL uses internally (bigint -> "int8"), with "[]" for arrays.
std::string TypeNameText(J t) {
  if (!t.present()) return {};
  std::string name = LastName(t["names"]);
  if (t["arrayBounds"].Size() > 0) name += "[]";
  return name;
}

bool IsSetOperation(J select) {
  std::string_view op = select["op"].Str();
  return !op.empty() && op != "SETOP_NONE";
}

// Widens [lo, hi] to every token location (>= 0) in the nodes at or below `v`. The grammar
// gives each node the location of its first token, or of its operator, so the smallest is
// where the node's text starts. (libpg_query's JSON omits locations equal to 0.)
void LocationSpan(J v, int64_t& lo, int64_t& hi) {
  for (size_t i = 0; i < v.ChildCount(); ++i) {
    J c = v.Child(i);
    if (c.Key() == "location") {
      int64_t x = c.Int();
      if (x >= 0) {
        lo = lo < 0 ? x : std::min(lo, x);
        hi = std::max(hi, x);
      }
    } else {
      LocationSpan(c, lo, hi);
    }
  }
}

// Where the text of `v` starts, -1 if it holds no location.
int StartLocation(J v) {
  int64_t lo = -1, hi = -1;
  LocationSpan(v, lo, hi);
  return static_cast<int>(lo);
}

// ---------------------------------------------------------------------------------------
// Values.

bool AllDigits(std::string_view s) {
  if (!s.empty() && s[0] == '-') s.remove_prefix(1);
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Describes the body of an A_Const.
KeyValue ConstValue(J c) {
  KeyValue v;
  if (c["isnull"].Bool()) {
    v.kind = KeyValue::Kind::kNull;
    return v;
  }
  v.kind = KeyValue::Kind::kLiteral;
  if (J i = c["ival"]; i.present()) {
    v.literal_kind = LiteralKind::kInteger;
    if (i["ival"].present()) {
      v.literal = i["ival"].NumberText();
    } else if (i.Note() == "?") {
      v.kind = KeyValue::Kind::kExpression;  // a constant the text did not show
      v.literal_kind = LiteralKind::kNone;
    } else {
      v.literal = i.Note().empty() ? "0" : i.Note();
    }
  } else if (J f = c["fval"]; f.present()) {
    // The grammar stores integers too large for int4 as Float; PostgreSQL then types them
    // as bigint (or numeric), so for routing they are integers.
    v.literal = f["fval"].Str();
    v.literal_kind = AllDigits(v.literal) ? LiteralKind::kInteger : LiteralKind::kFloat;
  } else if (J s = c["sval"]; s.present()) {
    v.literal = s["sval"].Str();
    v.literal_kind = LiteralKind::kString;
  } else if (J b = c["boolval"]; b.present()) {
    v.literal = b["boolval"].Bool() ? "true" : "false";
    v.literal_kind = LiteralKind::kBoolean;
  } else if (J bs = c["bsval"]; bs.present()) {
    v.literal = bs["bsval"].Str();
    v.literal_kind = LiteralKind::kBitString;
  } else {
    v.kind = KeyValue::Kind::kExpression;
  }
  return v;
}

bool IsConstant(const KeyValue& v) {
  return v.kind == KeyValue::Kind::kLiteral || v.kind == KeyValue::Kind::kParam ||
         v.kind == KeyValue::Kind::kNull;
}

// Describes an expression used as a value: a constant, possibly cast and negated, a $n,
// NULL, DEFAULT, or kExpression for anything the server must evaluate.
KeyValue ValueOf(J n) {
  KeyValue v;
  std::string_view tag = n.Tag();
  J b = n.Body();
  if (tag == "A_Const") return ConstValue(b);
  if (tag == "ParamRef") {
    v.kind = KeyValue::Kind::kParam;
    v.param = static_cast<int>(b["number"].Int());
    return v;
  }
  if (tag == "SetToDefault") {
    v.kind = KeyValue::Kind::kDefault;
    return v;
  }
  if (tag == "TypeCast") {
    v = ValueOf(b["arg"]);
    if (IsConstant(v)) v.cast = TypeNameText(b["typeName"]);
    return v;
  }
  if (tag == "A_Expr") {
    // Unary minus over a cast or a parenthesized expression; the grammar folds plain `-5`
    // into the constant already.
    std::string_view op = OperatorOf(b);
    if (b["kind"].Str() != "AEXPR_OP" || b["lexpr"].present() || (op != "-" && op != "+")) {
      return v;
    }
    KeyValue inner = ValueOf(b["rexpr"]);
    if (inner.kind != KeyValue::Kind::kLiteral || (inner.literal_kind != LiteralKind::kInteger &&
                                                   inner.literal_kind != LiteralKind::kFloat)) {
      return v;
    }
    if (op == "-") {
      if (absl::StartsWith(inner.literal, "-")) {
        inner.literal.erase(0, 1);
      } else {
        inner.literal.insert(0, "-");
      }
    }
    return inner;
  }
  return v;
}

// Values of the right side of `col = ANY(...)`: ARRAY[...] elements, or one array value.
std::vector<KeyValue> AnyValues(J n) {
  std::vector<KeyValue> out;
  J arr = n;
  std::string cast;
  if (n.Is("TypeCast") && n.Body()["arg"].Is("A_ArrayExpr")) {
    arr = n.Body()["arg"];
    cast = TypeNameText(n.Body()["typeName"]);
    if (absl::EndsWith(cast, "[]")) cast.resize(cast.size() - 2);
  }
  if (arr.Is("A_ArrayExpr")) {
    for (J element : arr.Body()["elements"]) {
      KeyValue v = ValueOf(element);
      if (!cast.empty() && IsConstant(v)) v.cast = cast;
      out.push_back(std::move(v));
    }
    return out;
  }
  KeyValue v = ValueOf(n);
  if (v.kind == KeyValue::Kind::kParam ||
      (v.kind == KeyValue::Kind::kLiteral && v.literal_kind == LiteralKind::kString)) {
    v.is_array = true;
  } else {
    v.kind = KeyValue::Kind::kExpression;
  }
  out.push_back(std::move(v));
  return out;
}

bool SameValue(const KeyValue& a, const KeyValue& b) {
  return a.kind == b.kind && a.literal == b.literal && a.literal_kind == b.literal_kind &&
         a.param == b.param && a.cast == b.cast && a.is_array == b.is_array;
}

void AppendUnique(std::vector<KeyValue>& to, const std::vector<KeyValue>& from) {
  for (const KeyValue& v : from) {
    if (std::none_of(to.begin(), to.end(), [&](const KeyValue& w) { return SameValue(v, w); })) {
      to.push_back(v);
    }
  }
}

// How many shards a value list may touch, for choosing the tighter of two constraints.
size_t Breadth(const std::vector<KeyValue>& values) {
  size_t n = 0;
  for (const KeyValue& v : values) n += v.is_array ? 1000 : 1;
  return n;
}

// ---------------------------------------------------------------------------------------
// Expression text, for ORDER BY keys and select-list entries. It is a normalized
// rendering (not the user's spelling) so that equal expressions compare equal; "" means
// the expression holds something this printer does not render.

std::string ExprText(J n);

std::string ListText(J list) {
  std::vector<std::string> parts;
  for (J item : list) {
    std::string t = ExprText(item);
    if (t.empty()) return {};
    parts.push_back(std::move(t));
  }
  return absl::StrJoin(parts, ", ");
}

std::string QuoteLiteral(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string ExprText(J n) {
  std::string_view tag = n.Tag();
  J b = n.Body();
  if (tag == "ColumnRef") {
    std::vector<std::string> parts;
    for (J f : b["fields"]) parts.push_back(f.Is("A_Star") ? "*" : std::string(StringOf(f)));
    return absl::StrJoin(parts, ".");
  }
  if (tag == "A_Const") {
    KeyValue v = ConstValue(b);
    if (v.kind == KeyValue::Kind::kNull) return "NULL";
    if (v.kind != KeyValue::Kind::kLiteral) return {};
    if (v.literal_kind == LiteralKind::kString) return QuoteLiteral(v.literal);
    if (v.literal_kind == LiteralKind::kBitString && !v.literal.empty()) {
      return absl::StrCat(absl::AsciiStrToUpper(v.literal.substr(0, 1)), "'", v.literal.substr(1),
                          "'");
    }
    return v.literal;
  }
  if (tag == "ParamRef") return absl::StrCat("$", b["number"].Int());
  if (tag == "TypeCast") {
    std::string arg = ExprText(b["arg"]);
    if (arg.empty()) return {};
    return absl::StrCat(arg, "::", TypeNameText(b["typeName"]));
  }
  if (tag == "FuncCall") {
    if (b["over"].present() || b["agg_filter"].present() || b["agg_order"].Size() > 0) return {};
    std::string args;
    if (b["agg_star"].Bool()) {
      args = "*";
    } else {
      args = ListText(b["args"]);
      if (args.empty() && b["args"].Size() > 0) return {};
    }
    return absl::StrCat(JoinNames(b["funcname"]), "(", b["agg_distinct"].Bool() ? "DISTINCT " : "",
                        args, ")");
  }
  if (tag == "A_Expr") {
    if (b["kind"].Str() != "AEXPR_OP") return {};
    std::string r = ExprText(b["rexpr"]);
    if (r.empty()) return {};
    if (!b["lexpr"].present()) return absl::StrCat("(", Av(OperatorOf(b)), r, ")");
    std::string l = ExprText(b["lexpr"]);
    if (l.empty()) return {};
    return absl::StrCat("(", l, " ", Av(OperatorOf(b)), " ", r, ")");
  }
  if (tag == "BoolExpr") {
    std::string_view op = b["boolop"].Str();
    std::vector<std::string> parts;
    for (J a : b["args"]) {
      std::string t = ExprText(a);
      if (t.empty()) return {};
      parts.push_back(std::move(t));
    }
    if (op == "NOT_EXPR" && parts.size() == 1) return absl::StrCat("(NOT ", parts[0], ")");
    return absl::StrCat("(", absl::StrJoin(parts, op == "AND_EXPR" ? " AND " : " OR "), ")");
  }
  if (tag == "NullTest") {
    std::string a = ExprText(b["arg"]);
    if (a.empty()) return {};
    bool is_null = b["nulltesttype"].Str() == "IS_NULL";
    return absl::StrCat("(", a, is_null ? " IS NULL)" : " IS NOT NULL)");
  }
  return {};
}

// ---------------------------------------------------------------------------------------
// Select-list facts.

const absl::flat_hash_set<std::string_view>& AggregateNames() {
  static const auto* names = new absl::flat_hash_set<std::string_view>{"count",
                                                                       "sum",
                                                                       "min",
                                                                       "max",
                                                                       "avg",
                                                                       "array_agg",
                                                                       "string_agg",
                                                                       "bool_and",
                                                                       "bool_or",
                                                                       "every",
                                                                       "bit_and",
                                                                       "bit_or",
                                                                       "bit_xor",
                                                                       "json_agg",
                                                                       "jsonb_agg",
                                                                       "json_object_agg",
                                                                       "jsonb_object_agg",
                                                                       "xmlagg",
                                                                       "stddev",
                                                                       "stddev_pop",
                                                                       "stddev_samp",
                                                                       "variance",
                                                                       "var_pop",
                                                                       "var_samp",
                                                                       "corr",
                                                                       "covar_pop",
                                                                       "covar_samp",
                                                                       "regr_avgx",
                                                                       "regr_avgy",
                                                                       "regr_count",
                                                                       "regr_intercept",
                                                                       "regr_r2",
                                                                       "regr_slope",
                                                                       "regr_sxx",
                                                                       "regr_sxy",
                                                                       "regr_syy",
                                                                       "percentile_cont",
                                                                       "percentile_disc",
                                                                       "mode",
                                                                       "range_agg",
                                                                       "range_intersect_agg"};
  return *names;
}

// Classifies the body of a FuncCall.
AggregateFunc AggregateOf(J f) {
  if (f["over"].present()) return AggregateFunc::kNone;  // a window function
  J funcname = f["funcname"];
  std::string name = LastName(funcname);
  if (funcname.Size() == 2 && StringOf(funcname.At(0)) != "pg_catalog") {
    name.clear();  // a schema-qualified user function: only aggregate syntax tells
  }
  if (name == "count") return AggregateFunc::kCount;
  if (name == "sum") return AggregateFunc::kSum;
  if (name == "min") return AggregateFunc::kMin;
  if (name == "max") return AggregateFunc::kMax;
  if (name == "avg") return AggregateFunc::kAvg;
  // User-defined aggregates cannot be told from functions without the catalog unless the
  // call uses aggregate-only syntax.
  if (AggregateNames().contains(name) || f["agg_star"].Bool() || f["agg_distinct"].Bool() ||
      f["agg_within_group"].Bool() || f["agg_filter"].present() || f["agg_order"].Size() > 0) {
    return AggregateFunc::kOther;
  }
  return AggregateFunc::kNone;
}

// PostgreSQL's FigureColname(): the label of an unnamed select-list entry.
std::string ColumnLabel(J n) {
  std::string_view tag = n.Tag();
  J b = n.Body();
  if (tag == "ColumnRef") {
    J fields = b["fields"];
    J last = fields.At(fields.Size() - 1);
    return last.Is("String") ? std::string(StringOf(last)) : "?column?";
  }
  if (tag == "FuncCall") return LastName(b["funcname"]);
  if (tag == "TypeCast") {
    std::string inner = ColumnLabel(b["arg"]);
    if (inner != "?column?") return inner;
    J t = b["typeName"];
    return t.present() ? LastName(t["names"]) : inner;
  }
  if (tag == "CaseExpr") return "case";
  if (tag == "CoalesceExpr") return "coalesce";
  if (tag == "MinMaxExpr") return b["op"].Str() == "IS_GREATEST" ? "greatest" : "least";
  if (tag == "A_ArrayExpr") return "array";
  if (tag == "RowExpr") return "row";
  if (tag == "SubLink") {
    std::string_view type = b["subLinkType"].Str();
    if (type == "EXISTS_SUBLINK") return "exists";
    if (type == "ARRAY_SUBLINK") return "array";
  }
  return "?column?";
}

// ---------------------------------------------------------------------------------------
// Scope analysis: finds the tables each query level reads, resolves column references to
// them and gathers the constraints and equalities of their qualifications.

class ScopeAnalyzer {
 public:
  // Analyzes a query (SELECT, INSERT, UPDATE, DELETE node) as the top level of `out`.
  void AnalyzeTop(J query, Statement& out) { AnalyzeQuery(query, NewScope(-1), &out); }

  // Registers a table that is not read by a query (DDL target, LOCK, COPY): a RangeVar body.
  void AddNamedTable(J rv) {
    if (!rv.present()) return;
    AddTable(rv["schemaname"].Str(), rv["relname"].Str(), rv["alias"]["aliasname"].Str());
  }
  void AddNamedTable(std::string_view qualified) {
    size_t dot = qualified.rfind('.');
    if (dot == std::string_view::npos) {
      AddTable("", qualified, "");
    } else {
      AddTable(qualified.substr(0, dot), qualified.substr(dot + 1), "");
    }
  }

  void Finish(Statement& out) {
    Propagate();
    out.tables = tables_;
    out.joins = joins_;
    BuildConstraints(out);
  }

 private:
  struct Occurrence {
    std::string schema, name, alias;
    int scope = 0;
    bool insert_target = false;
    std::map<std::string, std::vector<KeyValue>> values;  // column -> allowed values
  };
  struct Scope {
    int parent = -1;
    std::vector<int> occurrences;
    std::vector<std::string> ctes;     // CTE names declared at this level
    std::vector<std::string> derived;  // names of subselects, functions, joins, CTE uses
  };
  // occ1.col1 = occ2.col2 restricts the rows of occ1 (into1) and/or occ2 (into2).
  struct Equality {
    int occ1;
    std::string col1;
    int occ2;
    std::string col2;
    bool into1, into2;
  };
  struct Resolved {
    std::vector<int> occurrences;  // candidates (several for an unqualified column)
    std::string column;
    bool local = false;  // the tables belong to the scope the reference is in
  };

  int NewScope(int parent) {
    scopes_.push_back(Scope{parent, {}, {}, {}});
    return static_cast<int>(scopes_.size()) - 1;
  }

  void AddTable(std::string_view schema, std::string_view name, std::string_view alias) {
    for (TableRef& t : tables_) {
      if (t.schema == schema && t.name == name) {
        ++t.references;
        return;
      }
    }
    tables_.push_back(TableRef{std::string(schema), std::string(name), std::string(alias), 1});
  }

  bool IsCte(std::string_view name, int scope) const {
    for (int s = scope; s >= 0; s = scopes_[s].parent) {
      const auto& ctes = scopes_[s].ctes;
      if (std::find(ctes.begin(), ctes.end(), name) != ctes.end()) return true;
    }
    return false;
  }

  int AddOccurrence(J rv, int scope, bool insert_target) {
    Occurrence o;
    o.schema = rv["schemaname"].Str();
    o.name = rv["relname"].Str();
    o.alias = rv["alias"]["aliasname"].Str();
    o.scope = scope;
    o.insert_target = insert_target;
    AddTable(o.schema, o.name, o.alias);
    occurrences_.push_back(std::move(o));
    int id = static_cast<int>(occurrences_.size()) - 1;
    scopes_[scope].occurrences.push_back(id);
    return id;
  }

  void DeclareCtes(J with, int scope) {
    for (J cte : with["ctes"]) {
      if (cte.Is("CommonTableExpr")) {
        scopes_[scope].ctes.emplace_back(cte.Body()["ctename"].Str());
      }
    }
    for (J cte : with["ctes"]) {
      if (cte.Is("CommonTableExpr")) AnalyzeQuery(cte.Body()["ctequery"], NewScope(scope), nullptr);
    }
  }

  // `top` receives INSERT rows and SET columns; it is null for nested queries.
  void AnalyzeQuery(J n, int scope, Statement* top) {
    std::string_view tag = n.Tag();
    if (tag == "SelectStmt") {
      AnalyzeSelect(n.Body(), scope);
    } else if (tag == "InsertStmt") {
      AnalyzeInsert(n.Body(), scope, top);
    } else if (tag == "UpdateStmt") {
      AnalyzeUpdate(n.Body(), scope, top);
    } else if (tag == "DeleteStmt") {
      AnalyzeDelete(n.Body(), scope);
    } else {
      WalkExpr(n, scope);
    }
  }

  // `s` is a SelectStmt body (set-operation arms are plain SelectStmt bodies too).
  void AnalyzeSelect(J s, int scope) {
    DeclareCtes(s["withClause"], scope);
    if (IsSetOperation(s)) {
      if (s["larg"].present()) AnalyzeSelect(s["larg"], NewScope(scope));
      if (s["rarg"].present()) AnalyzeSelect(s["rarg"], NewScope(scope));
      WalkExpr(s["sortClause"], scope);
      WalkExpr(s["limitCount"], scope);
      WalkExpr(s["limitOffset"], scope);
      return;
    }
    for (J item : s["fromClause"]) AddFromItem(item, scope);
    for (const char* clause :
         {"valuesLists", "targetList", "whereClause", "groupClause", "havingClause", "windowClause",
          "sortClause", "distinctClause", "limitCount", "limitOffset"}) {
      WalkExpr(s[clause], scope);
    }
    ProcessQual(s["whereClause"], scope, scopes_[scope].occurrences);
  }

  void AnalyzeInsert(J ins, int scope, Statement* top) {
    DeclareCtes(ins["withClause"], scope);
    // The target is not visible to the SELECT part, so it gets a scope of its own.
    int target_scope = NewScope(scope);
    J relation = ins["relation"];
    if (relation.present()) AddOccurrence(relation, target_scope, true);
    J src = ins["selectStmt"];
    J sel = src.Is("SelectStmt") ? src.Body() : J();
    bool plain_values = sel.present() && sel["valuesLists"].Size() > 0 &&
                        sel["fromClause"].Size() == 0 && !sel["withClause"].present() &&
                        !IsSetOperation(sel);
    if (src.present()) AnalyzeQuery(src, NewScope(scope), nullptr);
    J on_conflict = ins["onConflictClause"];
    WalkExpr(on_conflict["targetList"], target_scope);
    WalkExpr(on_conflict["whereClause"], target_scope);
    WalkExpr(ins["returningList"], target_scope);
    if (top == nullptr) return;

    InsertInfo info;
    info.table.schema = relation["schemaname"].Str();
    info.table.name = relation["relname"].Str();
    info.table.alias = relation["alias"]["aliasname"].Str();
    for (J col : ins["cols"]) {
      if (col.Is("ResTarget")) info.columns.emplace_back(col.Body()["name"].Str());
    }
    info.default_values = !src.present();
    info.from_select = src.present() && !plain_values;
    if (plain_values) {
      for (J row : sel["valuesLists"]) {
        if (!row.Is("List")) continue;
        std::vector<KeyValue> values;
        for (J item : row.Body()["items"]) values.push_back(ValueOf(item));
        info.rows.push_back(std::move(values));
      }
    }
    if (on_conflict.present()) {
      info.has_on_conflict = true;
      info.on_conflict_update = on_conflict["action"].Str() == "ONCONFLICT_UPDATE";
      AddUpdatedColumns(on_conflict["targetList"], *top);
    }
    top->insert = std::move(info);
  }

  void AnalyzeUpdate(J u, int scope, Statement* top) {
    DeclareCtes(u["withClause"], scope);
    if (u["relation"].present()) AddOccurrence(u["relation"], scope, false);
    for (J item : u["fromClause"]) AddFromItem(item, scope);
    WalkExpr(u["targetList"], scope);
    WalkExpr(u["whereClause"], scope);
    WalkExpr(u["returningList"], scope);
    ProcessQual(u["whereClause"], scope, scopes_[scope].occurrences);
    if (top != nullptr) AddUpdatedColumns(u["targetList"], *top);
  }

  void AnalyzeDelete(J d, int scope) {
    DeclareCtes(d["withClause"], scope);
    if (d["relation"].present()) AddOccurrence(d["relation"], scope, false);
    for (J item : d["usingClause"]) AddFromItem(item, scope);
    WalkExpr(d["whereClause"], scope);
    WalkExpr(d["returningList"], scope);
    ProcessQual(d["whereClause"], scope, scopes_[scope].occurrences);
  }

  static void AddUpdatedColumns(J targets, Statement& out) {
    for (J t : targets) {
      if (!t.Is("ResTarget")) continue;
      std::string name(t.Body()["name"].Str());
      if (std::find(out.updated_columns.begin(), out.updated_columns.end(), name) ==
          out.updated_columns.end()) {
        out.updated_columns.push_back(std::move(name));
      }
    }
  }

  // Adds a FROM-list item to `scope`; returns the table occurrences it contains.
  std::vector<int> AddFromItem(J n, int scope) {
    std::vector<int> occs;
    std::string_view tag = n.Tag();
    J b = n.Body();
    if (tag == "RangeVar") {
      std::string_view alias = b["alias"]["aliasname"].Str();
      if (b["schemaname"].Str().empty() && IsCte(b["relname"].Str(), scope)) {
        scopes_[scope].derived.emplace_back(alias.empty() ? b["relname"].Str() : alias);
      } else {
        occs.push_back(AddOccurrence(b, scope, false));
      }
    } else if (tag == "JoinExpr") {
      std::vector<int> left = AddFromItem(b["larg"], scope);
      std::vector<int> right = AddFromItem(b["rarg"], scope);
      occs = left;
      occs.insert(occs.end(), right.begin(), right.end());
      // An inner join's condition filters both sides; an outer join's only the side that
      // may be null-extended (the preserved side's rows appear regardless).
      std::vector<int> restricted;
      std::string_view type = b["jointype"].Str();
      if (type == "JOIN_INNER") {
        restricted = occs;
      } else if (type == "JOIN_LEFT") {
        restricted = right;
      } else if (type == "JOIN_RIGHT") {
        restricted = left;
      }
      WalkExpr(b["quals"], scope);
      ProcessQual(b["quals"], scope, restricted);
      if (left.size() == 1 && right.size() == 1) {
        for (J col : b["usingClause"]) {
          std::string name(StringOf(col));
          AddEquality(left[0], name, right[0], name, restricted);
        }
      }
      if (b["alias"].present()) scopes_[scope].derived.emplace_back(b["alias"]["aliasname"].Str());
    } else if (tag == "RangeSubselect") {
      AnalyzeQuery(b["subquery"], NewScope(scope), nullptr);
      if (b["alias"].present()) scopes_[scope].derived.emplace_back(b["alias"]["aliasname"].Str());
    } else if (tag == "RangeFunction") {
      WalkExpr(b["functions"], scope);
      if (b["alias"].present()) scopes_[scope].derived.emplace_back(b["alias"]["aliasname"].Str());
    } else if (tag == "RangeTableSample") {
      occs = AddFromItem(b["relation"], scope);
    } else {
      WalkExpr(n, scope);
    }
    return occs;
  }

  // Finds the queries nested in an expression (sublinks) and analyzes each in a child
  // scope, remembering which scope belongs to which sublink.
  void WalkExpr(J expr, int scope) {
    VisitNodes(expr, [&](J n) {
      std::string_view tag = n.Tag();
      if (tag == "SubLink") {
        WalkExpr(n.Body()["testexpr"], scope);
        int child = NewScope(scope);
        sublink_scopes_[n.Body().id()] = child;
        AnalyzeQuery(n.Body()["subselect"], child, nullptr);
        return false;
      }
      if (tag == "SelectStmt" || tag == "InsertStmt" || tag == "UpdateStmt" ||
          tag == "DeleteStmt") {
        AnalyzeQuery(n, NewScope(scope), nullptr);
        return false;
      }
      return true;
    });
  }

  // Resolves a column reference seen in `scope` to the table occurrences it may denote.
  Resolved Resolve(J n, int scope) const {
    Resolved r;
    if (!n.Is("ColumnRef")) return r;
    J fields = n.Body()["fields"];
    size_t count = fields.Size();
    for (J f : fields) {
      if (!f.Is("String")) return r;  // t.* and the like
    }
    if (count == 1) {
      // PostgreSQL accepts an unqualified column only if exactly one table of the level
      // has it (or a USING merged it), so every table of the level is a safe candidate.
      r.column = StringOf(fields.At(0));
      r.occurrences = scopes_[scope].occurrences;
      r.local = true;
      return r;
    }
    std::string_view schema, table;
    if (count == 2) {
      table = StringOf(fields.At(0));
    } else {
      schema = StringOf(fields.At(count - 3));
      table = StringOf(fields.At(count - 2));
    }
    r.column = StringOf(fields.At(count - 1));
    for (int s = scope; s >= 0; s = scopes_[s].parent) {
      for (int id : scopes_[s].occurrences) {
        const Occurrence& o = occurrences_[id];
        bool match = schema.empty() ? (o.alias.empty() ? o.name == table : o.alias == table)
                                    : (o.alias.empty() && o.schema == schema && o.name == table);
        if (match) r.occurrences.push_back(id);
      }
      const auto& derived = scopes_[s].derived;
      if (!r.occurrences.empty() ||
          (schema.empty() && std::find(derived.begin(), derived.end(), table) != derived.end())) {
        r.local = s == scope;
        break;
      }
    }
    return r;
  }

  static bool Contains(const std::vector<int>& v, int x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  }

  void AddEquality(int occ1, const std::string& col1, int occ2, const std::string& col2,
                   const std::vector<int>& restricted) {
    if (occ1 == occ2) return;
    equalities_.push_back(
        Equality{occ1, col1, occ2, col2, Contains(restricted, occ1), Contains(restricted, occ2)});
    const Occurrence& a = occurrences_[occ1];
    const Occurrence& b = occurrences_[occ2];
    ColumnEquality e{a.schema, a.name, col1, b.schema, b.name, col2};
    for (const ColumnEquality& j : joins_) {
      bool same = (j.schema1 == e.schema1 && j.table1 == e.table1 && j.column1 == e.column1 &&
                   j.schema2 == e.schema2 && j.table2 == e.table2 && j.column2 == e.column2) ||
                  (j.schema1 == e.schema2 && j.table1 == e.table2 && j.column1 == e.column2 &&
                   j.schema2 == e.schema1 && j.table2 == e.table1 && j.column2 == e.column1);
      if (same) return;
    }
    joins_.push_back(std::move(e));
  }

  // Records that every row of `occ` that matters has `column` in `values`.
  bool Constrain(int occ, const std::string& column, const std::vector<KeyValue>& values) {
    auto& slot = occurrences_[occ].values;
    auto it = slot.find(column);
    if (it == slot.end()) {
      slot.emplace(column, values);
      return true;
    }
    if (Breadth(values) < Breadth(it->second)) {
      it->second = values;
      return true;
    }
    return false;
  }

  // A single-column condition: `col = v`, `col IN (...)`, `col = ANY(...)`.
  struct Simple {
    J column;
    std::vector<KeyValue> values;
  };

  static bool SimpleCondition(J n, Simple& out) {
    J b = n.Body();
    if (n.Is("BoolExpr") && b["boolop"].Str() == "OR_EXPR") {
      // An OR of conditions on one column allows the union of their values.
      for (J arm_node : b["args"]) {
        Simple arm;
        if (!SimpleCondition(arm_node, arm)) return false;
        if (out.column.present() && ExprText(out.column) != ExprText(arm.column)) return false;
        out.column = arm.column;
        AppendUnique(out.values, arm.values);
      }
      return out.column.present();
    }
    if (!n.Is("A_Expr") || b["name"].Size() != 1 || OperatorOf(b) != "=") return false;
    std::vector<KeyValue> values;
    J col = b["lexpr"];
    std::string_view kind = b["kind"].Str();
    if (kind == "AEXPR_OP") {
      if (!col.Is("ColumnRef")) {
        col = b["rexpr"];
        values.push_back(ValueOf(b["lexpr"]));
      } else {
        values.push_back(ValueOf(b["rexpr"]));
      }
    } else if (kind == "AEXPR_IN") {
      if (!b["rexpr"].Is("List")) return false;
      for (J item : b["rexpr"].Body()["items"]) values.push_back(ValueOf(item));
    } else if (kind == "AEXPR_OP_ANY") {
      values = AnyValues(b["rexpr"]);
    } else {
      return false;
    }
    if (!col.Is("ColumnRef")) return false;
    for (const KeyValue& v : values) {
      if (!IsConstant(v)) return false;
    }
    out.column = col;
    AppendUnique(out.values, values);
    return true;
  }

  // Gathers constraints and equalities from the conjuncts of `qual`, a condition evaluated
  // in `scope` that filters the rows of the `restricted` occurrences.
  void ProcessQual(J qual, int scope, const std::vector<int>& restricted) {
    if (!qual.present()) return;
    J b = qual.Body();
    if (qual.Is("BoolExpr") && b["boolop"].Str() == "AND_EXPR") {
      for (J arg : b["args"]) ProcessQual(arg, scope, restricted);
      return;
    }
    if (qual.Is("A_Expr") && b["kind"].Str() == "AEXPR_OP" && OperatorOf(b) == "=" &&
        b["lexpr"].Is("ColumnRef") && b["rexpr"].Is("ColumnRef")) {
      Resolved l = Resolve(b["lexpr"], scope);
      Resolved r = Resolve(b["rexpr"], scope);
      if (l.occurrences.size() == 1 && r.occurrences.size() == 1) {
        AddEquality(l.occurrences[0], l.column, r.occurrences[0], r.column, restricted);
      }
      return;
    }
    if (qual.Is("SubLink")) {
      ProcessInSubquery(b, scope, restricted);
      return;
    }
    Simple cond;
    if (!SimpleCondition(qual, cond)) return;
    Resolved r = Resolve(cond.column, scope);
    if (!r.local) return;  // a condition on an outer query's table does not filter its rows
    for (int occ : r.occurrences) {
      if (Contains(restricted, occ)) Constrain(occ, r.column, cond.values);
    }
  }

  // `outer_col IN (SELECT inner_col FROM ...)` relates the two columns like a join, as long
  // as the subquery's rows are not cut by LIMIT or combined by a set operation.
  void ProcessInSubquery(J sublink, int scope, const std::vector<int>& restricted) {
    if (sublink["subLinkType"].Str() != "ANY_SUBLINK") return;
    J oper = sublink["operName"];
    if (oper.Size() > 1 || (oper.Size() == 1 && StringOf(oper.At(0)) != "=")) return;
    auto it = sublink_scopes_.find(sublink.id());
    if (it == sublink_scopes_.end() || !sublink["subselect"].Is("SelectStmt")) return;
    J sub = sublink["subselect"].Body();
    if (IsSetOperation(sub) || sub["limitCount"].present() || sub["limitOffset"].present() ||
        sub["targetList"].Size() != 1 || !sub["targetList"].At(0).Is("ResTarget")) {
      return;
    }
    Resolved outer = Resolve(sublink["testexpr"], scope);
    Resolved inner = Resolve(sub["targetList"].At(0).Body()["val"], it->second);
    if (outer.occurrences.size() != 1 || inner.occurrences.size() != 1 || !inner.local) return;
    std::vector<int> into = restricted;
    into.push_back(inner.occurrences[0]);
    AddEquality(outer.occurrences[0], outer.column, inner.occurrences[0], inner.column, into);
  }

  // Carries constraints across equalities until nothing changes.
  void Propagate() {
    for (size_t round = 0; round <= equalities_.size(); ++round) {
      bool changed = false;
      for (const Equality& e : equalities_) {
        if (e.into2) {
          auto it = occurrences_[e.occ1].values.find(e.col1);
          if (it != occurrences_[e.occ1].values.end()) {
            std::vector<KeyValue> v = it->second;
            changed |= Constrain(e.occ2, e.col2, v);
          }
        }
        if (e.into1) {
          auto it = occurrences_[e.occ2].values.find(e.col2);
          if (it != occurrences_[e.occ2].values.end()) {
            std::vector<KeyValue> v = it->second;
            changed |= Constrain(e.occ1, e.col1, v);
          }
        }
      }
      if (!changed) break;
    }
  }

  // A table's constraint on a column holds only if every reference to the table has one;
  // the allowed values are then the union over the references.
  void BuildConstraints(Statement& out) const {
    for (const TableRef& t : tables_) {
      std::vector<const Occurrence*> refs;
      for (const Occurrence& o : occurrences_) {
        if (o.schema == t.schema && o.name == t.name && !o.insert_target) refs.push_back(&o);
      }
      if (refs.empty()) continue;
      for (const auto& [column, values] : refs[0]->values) {
        ColumnConstraint c{t.schema, t.name, column, values};
        bool everywhere = true;
        for (size_t i = 1; i < refs.size() && everywhere; ++i) {
          auto it = refs[i]->values.find(column);
          if (it == refs[i]->values.end()) {
            everywhere = false;
          } else {
            AppendUnique(c.values, it->second);
          }
        }
        if (everywhere) out.constraints.push_back(std::move(c));
      }
    }
  }

  std::vector<Scope> scopes_;
  std::vector<Occurrence> occurrences_;
  std::vector<Equality> equalities_;
  std::vector<TableRef> tables_;
  std::vector<ColumnEquality> joins_;
  absl::flat_hash_map<const void*, int> sublink_scopes_;  // SubLink body -> its scope
};

// ---------------------------------------------------------------------------------------
// Whole-statement facts found anywhere in the tree.

bool IsSessionAdvisoryLock(std::string_view f) {
  return f == "pg_advisory_lock" || f == "pg_advisory_lock_shared" || f == "pg_try_advisory_lock" ||
         f == "pg_try_advisory_lock_shared" || f == "pg_advisory_unlock" ||
         f == "pg_advisory_unlock_shared" || f == "pg_advisory_unlock_all";
}

bool IsXactAdvisoryLock(std::string_view f) {
  return f == "pg_advisory_xact_lock" || f == "pg_advisory_xact_lock_shared" ||
         f == "pg_try_advisory_xact_lock" || f == "pg_try_advisory_xact_lock_shared";
}

void CollectTreeFacts(J root, Statement& out) {
  VisitNodes(root, [&](J n) {
    std::string_view tag = n.Tag();
    J b = n.Body();
    if (tag == "ParamRef") {
      out.num_params = std::max(out.num_params, static_cast<int>(b["number"].Int()));
    } else if (tag == "FuncCall") {
      std::string name = LastName(b["funcname"]);
      if (IsSessionAdvisoryLock(name)) {
        out.uses_advisory_lock = out.session_advisory_lock = true;
      } else if (IsXactAdvisoryLock(name)) {
        out.uses_advisory_lock = true;
      }
    } else if (tag == "SubLink" || tag == "RangeSubselect") {
      out.has_subquery = true;
    } else if (tag == "CommonTableExpr") {
      out.has_cte = true;
    } else if (tag == "LockingClause") {
      out.locks = true;
    } else if (tag == "InsertStmt" || tag == "UpdateStmt" || tag == "DeleteStmt" ||
               tag == "MergeStmt") {
      out.writes = true;
      if (b["returningList"].Size() > 0) out.has_returning = true;
    }
    return true;
  });
}

// Every table named anywhere in a statement the scope analysis does not cover. Some
// statements embed RangeVar without a node wrapper (VACUUM, GRANT...): any object with a
// "relname" is one.
void CollectRangeVars(J v, ScopeAnalyzer& scopes) {
  if (!v.present()) return;
  if (v.IsObject() && v["relname"].present()) scopes.AddNamedTable(v);
  for (size_t i = 0; i < v.ChildCount(); ++i) CollectRangeVars(v.Child(i), scopes);
}

// ---------------------------------------------------------------------------------------
// Top-level SELECT shape.

std::optional<int64_t> ConstInt(J n) {
  KeyValue v = ValueOf(n);
  int64_t x = 0;
  if (v.kind == KeyValue::Kind::kLiteral && v.literal_kind == LiteralKind::kInteger &&
      absl::SimpleAtoi(v.literal, &x)) {
    return x;
  }
  return std::nullopt;
}

void ScanShape(J root, Statement& out) {
  VisitNodes(root, [&](J n) {
    std::string_view tag = n.Tag();
    if (tag == "SubLink" || tag == "SelectStmt") {
      return false;  // facts of nested queries do not shape the top-level result
    }
    if (tag == "FuncCall") {
      if (n.Body()["over"].present()) {
        out.has_window_functions = true;
      } else if (AggregateOf(n.Body()) != AggregateFunc::kNone) {
        out.has_aggregates = true;
      }
    }
    return true;
  });
}

TargetInfo DescribeTarget(J rt) {
  TargetInfo info;
  J val = rt["val"];
  J b = val.Body();
  info.text = ExprText(val);
  info.has_alias = !rt["name"].Str().empty();
  info.location = rt["location"].present() ? static_cast<int>(rt["location"].Int()) : -1;
  if (val.Is("ColumnRef")) {
    J fields = b["fields"];
    size_t n = fields.Size();
    J last = fields.At(n - 1);
    if (n >= 2) info.table = StringOf(fields.At(n - 2));
    if (last.Is("A_Star")) {
      info.kind = TargetInfo::Kind::kStar;
    } else {
      info.kind = TargetInfo::Kind::kColumn;
      info.column = StringOf(last);
    }
  } else if (val.Is("FuncCall")) {
    info.aggregate = AggregateOf(b);
    if (info.aggregate != AggregateFunc::kNone) {
      info.kind = TargetInfo::Kind::kAggregate;
      info.agg_star = b["agg_star"].Bool();
      info.agg_distinct = b["agg_distinct"].Bool();
      info.agg_filter = b["agg_filter"].present();
      info.func_location = b["location"].present() ? static_cast<int>(b["location"].Int()) : -1;
    }
  }
  if (info.kind == TargetInfo::Kind::kStar) {
    info.name = "*";
  } else if (!rt["name"].Str().empty()) {
    info.name = rt["name"].Str();
  } else {
    info.name = ColumnLabel(val);
  }
  return info;
}

OrderKey DescribeOrderKey(J sb, const std::vector<TargetInfo>& targets) {
  OrderKey key;
  J node = sb["node"];
  key.text = ExprText(node);
  std::string_view dir = sb["sortby_dir"].Str();
  std::string_view nulls = sb["sortby_nulls"].Str();
  key.descending = dir == "SORTBY_DESC";
  key.using_operator = dir == "SORTBY_USING";
  if (nulls == "SORTBY_NULLS_FIRST") {
    key.nulls_first = true;
  } else if (nulls == "SORTBY_NULLS_LAST") {
    key.nulls_first = false;
  } else {
    key.nulls_first = key.descending;  // NULLs sort as larger than every value
  }
  // ORDER BY 2 names an output column; ORDER BY name matches an output name first, then an
  // identical select-list expression (PostgreSQL's own order of resolution).
  if (node.Is("A_Const") && node.Body()["ival"].present()) {
    key.position = static_cast<int>(ConstInt(node).value_or(0));
    key.number_location = static_cast<int>(node.Body()["location"].Int());
    return key;
  }
  if (node.Is("ColumnRef") && node.Body()["fields"].Size() == 1) {
    for (size_t t = 0; t < targets.size() && key.position == 0; ++t) {
      if (targets[t].name == key.text) key.position = static_cast<int>(t) + 1;
    }
  }
  for (size_t t = 0; t < targets.size() && key.position == 0 && !key.text.empty(); ++t) {
    if (targets[t].text == key.text) key.position = static_cast<int>(t) + 1;
  }
  return key;
}

// Resolves a GROUP BY item to a select-list entry. PostgreSQL reads a bare name in GROUP
// BY as an input column first and as an output name only when no input column has it;
// without the catalog pgring cannot tell which, so output names are not matched.
GroupKey DescribeGroupKey(J node, const std::vector<TargetInfo>& targets) {
  GroupKey key;
  auto set = [&](size_t t) {
    if (key.position == 0) key.position = static_cast<int>(t) + 1;
  };
  if (node.Is("A_Const") && node.Body()["ival"].present()) {
    key.is_number = true;
    key.position = static_cast<int>(ConstInt(node).value_or(0));
    key.number_location = static_cast<int>(node.Body()["location"].Int());
    return key;
  }
  if (node.Is("ColumnRef")) {
    J fields = node.Body()["fields"];
    size_t n = fields.Size();
    bool plain = n >= 1;
    for (J f : fields) plain = plain && f.Is("String");
    if (plain) {
      std::string column(StringOf(fields.At(n - 1)));
      std::string table = n >= 2 ? std::string(StringOf(fields.At(n - 2))) : std::string();
      if (n == 1) key.name = column;
      for (size_t t = 0; t < targets.size(); ++t) {
        const TargetInfo& target = targets[t];
        if (target.kind == TargetInfo::Kind::kColumn && target.column == column &&
            (table.empty() || target.table.empty() || target.table == table)) {
          set(t);
        }
      }
    }
  }
  std::string text = ExprText(node);
  for (size_t t = 0; t < targets.size() && !text.empty(); ++t) {
    if (targets[t].text == text) set(t);
  }
  return key;
}

// `top` is the SelectStmt body of the statement.
void DescribeSelect(J top, Statement& out) {
  J s = top;
  if (IsSetOperation(top)) {
    out.has_set_operation = true;
    while (IsSetOperation(s) && s["larg"].present()) s = s["larg"];
  }
  // The select list comes from the leftmost arm of a set operation, which names the columns.
  for (J t : s["targetList"]) {
    if (t.Is("ResTarget")) out.targets.push_back(DescribeTarget(t.Body()));
  }
  // Shape facts from every arm.
  std::vector<J> todo{top};
  while (!todo.empty()) {
    J a = todo.back();
    todo.pop_back();
    if (IsSetOperation(a)) {
      if (a["larg"].present()) todo.push_back(a["larg"]);
      if (a["rarg"].present()) todo.push_back(a["rarg"]);
      if (!a["all"].Bool()) out.has_distinct = true;  // UNION/INTERSECT/EXCEPT dedupe
      continue;
    }
    J distinct = a["distinctClause"];
    if (distinct.Size() > 0) {
      out.has_distinct = true;
      // Plain DISTINCT is a list holding one empty node; DISTINCT ON lists expressions.
      for (J d : distinct) {
        if (!d.Tag().empty()) out.has_distinct_on = true;
      }
    }
    if (a["groupClause"].Size() > 0) out.has_group_by = true;
    if (a["havingClause"].present()) {
      out.has_having = true;
      ScanShape(a["havingClause"], out);
    }
    ScanShape(a["targetList"], out);
  }
  if (!IsSetOperation(top)) {
    for (J g : top["groupClause"]) out.group_by.push_back(DescribeGroupKey(g, out.targets));
  }
  for (J sort : top["sortClause"]) {
    if (!sort.Is("SortBy")) continue;
    out.order_by.push_back(DescribeOrderKey(sort.Body(), out.targets));
    ScanShape(sort.Body()["node"], out);
  }
  out.has_order_by = !out.order_by.empty();
  J count = top["limitCount"];
  bool limit_all = count.Is("A_Const") && count.Body()["isnull"].Bool();
  if (count.present() && !limit_all) {
    out.has_limit = true;
    out.limit_location = StartLocation(count);
    out.limit = ConstInt(count);
    KeyValue v = ValueOf(count);
    if (v.kind == KeyValue::Kind::kParam) out.limit_param = v.param;
  }
  out.limit_with_ties = top["limitOption"].Str() == "LIMIT_OPTION_WITH_TIES";
  J offset = top["limitOffset"];
  bool offset_null = offset.Is("A_Const") && offset.Body()["isnull"].Bool();
  if (offset.present() && !offset_null) {  // OFFSET NULL skips nothing
    out.has_offset = true;
    out.offset_location = StartLocation(offset);
    out.offset = ConstInt(offset);
    KeyValue v = ValueOf(offset);
    if (v.kind == KeyValue::Kind::kParam) out.offset_param = v.param;
  }
}

// ---------------------------------------------------------------------------------------
// Utility statements.

// The value of a DefElem body's argument as text ("" when absent).
std::string DefElemText(J d) {
  J a = d["arg"];
  std::string_view tag = a.Tag();
  J b = a.Body();
  if (tag == "String") return std::string(b["sval"].Str());
  if (tag == "Integer") return b["ival"].present() ? std::string(b["ival"].NumberText()) : "0";
  if (tag == "Float") return std::string(b["fval"].Str());
  if (tag == "Boolean") return b["boolval"].Bool() ? "true" : "false";
  if (tag == "A_Const") return ValueOf(a).literal;
  if (tag == "TypeName") return TypeNameText(b);
  return ExprText(a);
}

// A boolean option: present without a value, or given as true/on/1/yes.
bool DefElemTrue(J d) {
  if (!d["arg"].present()) return true;
  std::string v = absl::AsciiStrToLower(DefElemText(d));
  return v == "true" || v == "on" || v == "1" || v == "yes" || v == "match";
}

void DescribeCopy(J c, Statement& out) {
  CopyInfo info;
  info.is_from = c["is_from"].Bool();
  info.is_program = c["is_program"].Bool();
  info.filename = c["filename"].Str();
  info.stdio = info.filename.empty() && !info.is_program;
  info.has_where = c["whereClause"].present();
  info.table.schema = c["relation"]["schemaname"].Str();
  info.table.name = c["relation"]["relname"].Str();
  for (J col : c["attlist"]) info.columns.emplace_back(StringOf(col));
  for (J option : c["options"]) {
    if (!option.Is("DefElem")) continue;
    J d = option.Body();
    std::string_view name = d["defname"].Str();
    if (name == "format") {
      info.format = absl::AsciiStrToLower(DefElemText(d));
    } else if (name == "header") {
      info.header = DefElemTrue(d);
    } else if (name == "delimiter") {
      info.delimiter = DefElemText(d);
    } else if (name == "null") {
      info.null_string = DefElemText(d);
    } else if (name == "quote") {
      info.quote = DefElemText(d);
    } else if (name == "escape") {
      info.escape = DefElemText(d);
    }
  }
  info.is_query = c["query"].present();
  out.copy = std::move(info);
  out.writes = out.writes || c["is_from"].Bool();
}

DdlObject ObjectOf(std::string_view t) {
  if (t == "OBJECT_TABLE" || t == "OBJECT_FOREIGN_TABLE" || t == "OBJECT_COLUMN" ||
      t == "OBJECT_TABCONSTRAINT") {
    return DdlObject::kTable;
  }
  if (t == "OBJECT_INDEX") return DdlObject::kIndex;
  if (t == "OBJECT_SCHEMA") return DdlObject::kSchema;
  if (t == "OBJECT_SEQUENCE") return DdlObject::kSequence;
  if (t == "OBJECT_VIEW") return DdlObject::kView;
  if (t == "OBJECT_MATVIEW") return DdlObject::kMaterializedView;
  return DdlObject::kOther;
}

// "schema.name" of a RangeVar body.
std::string QualifiedName(J rv) {
  std::string_view schema = rv["schemaname"].Str();
  std::string_view name = rv["relname"].Str();
  return schema.empty() ? std::string(name) : absl::StrCat(Av(schema), ".", Av(name));
}

const absl::flat_hash_set<std::string_view>& OtherDdlTags() {
  static const auto* tags = new absl::flat_hash_set<std::string_view>{
      "CreateFunctionStmt",    "AlterFunctionStmt", "CreateExtensionStmt",   "AlterExtensionStmt",
      "CommentStmt",           "GrantStmt",         "CreateEnumStmt",        "AlterEnumStmt",
      "CompositeTypeStmt",     "CreateDomainStmt",  "AlterDomainStmt",       "DefineStmt",
      "CreateTrigStmt",        "RuleStmt",          "CreatePolicyStmt",      "AlterPolicyStmt",
      "AlterObjectSchemaStmt", "AlterOwnerStmt",    "CreateStatsStmt",       "RefreshMatViewStmt",
      "CreateRangeStmt",       "AlterTypeStmt",     "CreateForeignTableStmt"};
  return *tags;
}

// Returns false when `n` is not a DDL statement.
bool DescribeDdl(J n, Statement& out, ScopeAnalyzer& scopes) {
  std::string_view tag = n.Tag();
  J b = n.Body();
  DdlInfo ddl;
  if (tag == "CreateStmt") {
    ddl.action = DdlAction::kCreate;
    ddl.object = DdlObject::kTable;
    ddl.if_exists = b["if_not_exists"].Bool();
    scopes.AddNamedTable(b["relation"]);
    for (J parent : b["inhRelations"]) {
      if (parent.Is("RangeVar")) scopes.AddNamedTable(parent.Body());
    }
  } else if (tag == "CreateTableAsStmt") {
    ddl.action = DdlAction::kCreate;
    ddl.object = ObjectOf(b["objtype"].Str());
    ddl.if_exists = b["if_not_exists"].Bool();
    J rel = b["into"]["rel"];
    if (ddl.object == DdlObject::kTable) {
      scopes.AddNamedTable(rel);
    } else if (rel.present()) {
      ddl.objects.push_back(QualifiedName(rel));
    }
  } else if (tag == "ViewStmt") {
    ddl.action = DdlAction::kCreate;
    ddl.object = DdlObject::kView;
    ddl.objects.push_back(QualifiedName(b["view"]));
  } else if (tag == "IndexStmt") {
    ddl.action = DdlAction::kCreate;
    ddl.object = DdlObject::kIndex;
    ddl.if_exists = b["if_not_exists"].Bool();
    ddl.concurrently = b["concurrent"].Bool();
    if (!b["idxname"].Str().empty()) ddl.objects.emplace_back(b["idxname"].Str());
    scopes.AddNamedTable(b["relation"]);
  } else if (tag == "CreateSchemaStmt") {
    ddl.action = DdlAction::kCreate;
    ddl.object = DdlObject::kSchema;
    ddl.if_exists = b["if_not_exists"].Bool();
    ddl.objects.emplace_back(b["schemaname"].Str());
  } else if (tag == "CreateSeqStmt" || tag == "AlterSeqStmt") {
    ddl.action = tag == "CreateSeqStmt" ? DdlAction::kCreate : DdlAction::kAlter;
    ddl.object = DdlObject::kSequence;
    ddl.if_exists = b["if_not_exists"].Bool() || b["missing_ok"].Bool();
    ddl.objects.push_back(QualifiedName(b["sequence"]));
  } else if (tag == "AlterTableStmt") {
    ddl.action = DdlAction::kAlter;
    ddl.object = ObjectOf(b["objtype"].Str());
    ddl.if_exists = b["missing_ok"].Bool();
    if (ddl.object == DdlObject::kTable) {
      scopes.AddNamedTable(b["relation"]);
    } else {
      ddl.objects.push_back(QualifiedName(b["relation"]));
    }
  } else if (tag == "RenameStmt") {
    ddl.action = DdlAction::kRename;
    ddl.object = ObjectOf(b["renameType"].Str());
    ddl.if_exists = b["missing_ok"].Bool();
    if (ddl.object == DdlObject::kTable) {
      scopes.AddNamedTable(b["relation"]);
    } else if (b["relation"].present()) {
      ddl.objects.push_back(QualifiedName(b["relation"]));
    }
  } else if (tag == "DropStmt") {
    ddl.action = DdlAction::kDrop;
    ddl.object = ObjectOf(b["removeType"].Str());
    ddl.if_exists = b["missing_ok"].Bool();
    ddl.concurrently = b["concurrent"].Bool();
    for (J o : b["objects"]) {
      std::string qualified;
      if (o.Is("List")) {
        qualified = JoinNames(o.Body()["items"]);
      } else if (o.Is("String")) {
        qualified = StringOf(o);
      } else {
        continue;  // functions, types with arguments...
      }
      if (ddl.object == DdlObject::kTable) {
        scopes.AddNamedTable(qualified);
      } else {
        ddl.objects.push_back(std::move(qualified));
      }
    }
  } else if (tag == "TruncateStmt") {
    ddl.action = DdlAction::kTruncate;
    ddl.object = DdlObject::kTable;
    for (J rel : b["relations"]) {
      if (rel.Is("RangeVar")) scopes.AddNamedTable(rel.Body());
    }
  } else if (OtherDdlTags().contains(tag)) {
    ddl.action = DdlAction::kOther;
    ddl.object = DdlObject::kOther;
    CollectRangeVars(n, scopes);
  } else {
    return false;
  }
  out.kind = StatementKind::kDdl;
  out.writes = true;
  out.ddl = std::move(ddl);
  return true;
}

void DescribeTransaction(J t, Statement& out) {
  out.kind = StatementKind::kTransaction;
  static const auto* ops = new absl::flat_hash_map<std::string_view, TransactionOp>{
      {"TRANS_STMT_BEGIN", TransactionOp::kBegin},
      {"TRANS_STMT_START", TransactionOp::kBegin},
      {"TRANS_STMT_COMMIT", TransactionOp::kCommit},
      {"TRANS_STMT_ROLLBACK", TransactionOp::kRollback},
      {"TRANS_STMT_SAVEPOINT", TransactionOp::kSavepoint},
      {"TRANS_STMT_RELEASE", TransactionOp::kRelease},
      {"TRANS_STMT_ROLLBACK_TO", TransactionOp::kRollbackTo},
      {"TRANS_STMT_PREPARE", TransactionOp::kPrepare},
      {"TRANS_STMT_COMMIT_PREPARED", TransactionOp::kCommitPrepared},
      {"TRANS_STMT_ROLLBACK_PREPARED", TransactionOp::kRollbackPrepared}};
  if (auto it = ops->find(t["kind"].Str()); it != ops->end()) out.txn_op = it->second;
  out.txn_name = !t["gid"].Str().empty() ? t["gid"].Str() : t["savepoint_name"].Str();
  out.txn_chain = t["chain"].Bool();
  for (J option : t["options"]) {
    if (option.Is("DefElem") && option.Body()["defname"].Str() == "transaction_read_only") {
      out.txn_read_only = DefElemTrue(option.Body());
    }
  }
}

void DescribeSet(J v, Statement& out) {
  out.kind = StatementKind::kSet;
  out.set_name = absl::AsciiStrToLower(Av(v["name"].Str()));
  out.set_local = v["is_local"].Bool();
  std::vector<std::string> parts;
  for (J a : v["args"]) {
    if (a.Is("DefElem")) {
      parts.push_back(absl::StrCat(Av(a.Body()["defname"].Str()), " ", DefElemText(a.Body())));
      continue;
    }
    KeyValue kv = ValueOf(a);
    parts.push_back(kv.kind == KeyValue::Kind::kLiteral ? kv.literal : ExprText(a));
  }
  out.set_value = absl::StrJoin(parts, ", ");
  std::string_view kind = v["kind"].Str();
  if (kind == "VAR_SET_DEFAULT") {
    out.set_default = true;
  } else if (kind == "VAR_RESET") {
    out.is_reset = true;
  } else if (kind == "VAR_RESET_ALL") {
    out.is_reset = out.reset_all = true;
  }
}

// ---------------------------------------------------------------------------------------
// Routing hint comments.

// Reads `key=value` pairs (separated by blanks or commas; values bare or quoted) after
// "pgring:" and returns the shard_key value.
std::optional<std::string> HintFromComment(std::string_view body) {
  while (!body.empty() && absl::ascii_isspace(static_cast<unsigned char>(body.front()))) {
    body.remove_prefix(1);
  }
  if (body.substr(0, 7) != "pgring:") return std::nullopt;
  body.remove_prefix(7);
  auto space = [&](size_t i) { return absl::ascii_isspace(static_cast<unsigned char>(body[i])); };
  std::optional<std::string> key;
  size_t i = 0;
  while (true) {
    while (i < body.size() && (space(i) || body[i] == ',')) ++i;
    if (i >= body.size()) break;
    size_t start = i;
    while (i < body.size() && body[i] != '=' && !space(i) && body[i] != ',') ++i;
    std::string name = absl::AsciiStrToLower(Av(body.substr(start, i - start)));
    while (i < body.size() && space(i)) ++i;
    if (i >= body.size() || body[i] != '=') continue;
    ++i;
    while (i < body.size() && space(i)) ++i;
    std::string value;
    if (i < body.size() && (body[i] == '\'' || body[i] == '"')) {
      char q = body[i++];
      while (i < body.size()) {
        if (body[i] == q) {
          if (i + 1 < body.size() && body[i + 1] == q) {  // doubled quote
            value += q;
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        value += body[i++];
      }
    } else {
      size_t vs = i;
      while (i < body.size() && !space(i) && body[i] != ',') ++i;
      value = body.substr(vs, i - vs);
    }
    if (name == "shard_key" && !key.has_value()) key = std::move(value);
  }
  return key;
}

// Looks at the comments before the first token of a statement.
std::optional<std::string> FindHint(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    if (absl::ascii_isspace(static_cast<unsigned char>(text[i]))) {
      ++i;
    } else if (text.substr(i, 2) == "--") {
      size_t end = text.find('\n', i);
      if (end == std::string_view::npos) end = text.size();
      if (auto h = HintFromComment(text.substr(i + 2, end - i - 2))) return h;
      i = end;
    } else if (text.substr(i, 2) == "/*") {
      // Block comments nest in PostgreSQL.
      size_t depth = 1;
      size_t j = i + 2;
      while (j < text.size() && depth > 0) {
        if (text.substr(j, 2) == "/*") {
          ++depth;
          j += 2;
        } else if (text.substr(j, 2) == "*/") {
          --depth;
          j += 2;
        } else {
          ++j;
        }
      }
      size_t body_end = depth == 0 ? j - 2 : text.size();
      if (auto h = HintFromComment(text.substr(i + 2, body_end - i - 2))) return h;
      i = j;
    } else {
      break;
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------

Statement Describe(J n);

// Copies what the router routes by from a statement's inner query.
void AdoptRouting(const Statement& inner, Statement& out) {
  out.tables = inner.tables;
  out.constraints = inner.constraints;
  out.joins = inner.joins;
  out.num_params = std::max(out.num_params, inner.num_params);
}

bool DescribeUtility(J n, Statement& out, ScopeAnalyzer& scopes) {
  std::string_view tag = n.Tag();
  J b = n.Body();
  if (tag == "TransactionStmt") {
    DescribeTransaction(b, out);
  } else if (tag == "VariableSetStmt") {
    DescribeSet(b, out);
  } else if (tag == "VariableShowStmt") {
    out.kind = StatementKind::kShow;
    out.set_name = absl::AsciiStrToLower(Av(b["name"].Str()));
  } else if (tag == "ExecuteStmt") {
    out.kind = StatementKind::kExecute;
    out.name = b["name"].Str();
    for (J p : b["params"]) out.execute_args.push_back(ValueOf(p));
  } else if (tag == "DeallocateStmt") {
    out.kind = StatementKind::kDeallocate;
    out.name = b["name"].Str();
  } else if (tag == "ListenStmt" || tag == "UnlistenStmt") {
    out.kind = tag == "ListenStmt" ? StatementKind::kListen : StatementKind::kUnlisten;
    out.name = b["conditionname"].Str();
  } else if (tag == "NotifyStmt") {
    out.kind = StatementKind::kNotify;
    out.name = b["conditionname"].Str();
    out.notify_payload = b["payload"].Str();
  } else if (tag == "DiscardStmt") {
    out.kind = StatementKind::kDiscard;
    std::string_view mode = b["target"].Str();
    out.discard = mode == "DISCARD_ALL"         ? DiscardMode::kAll
                  : mode == "DISCARD_PLANS"     ? DiscardMode::kPlans
                  : mode == "DISCARD_SEQUENCES" ? DiscardMode::kSequences
                  : mode == "DISCARD_TEMP"      ? DiscardMode::kTemp
                                                : DiscardMode::kNone;
  } else if (tag == "CallStmt") {
    out.kind = StatementKind::kCall;
    out.writes = true;  // a procedure may do anything
    out.name = JoinNames(b["funccall"]["funcname"]);
  } else if (tag == "LockStmt") {
    out.kind = StatementKind::kLock;
    out.locks = true;
    for (J rel : b["relations"]) {
      if (rel.Is("RangeVar")) scopes.AddNamedTable(rel.Body());
    }
  } else {
    return false;
  }
  return true;
}

Statement Describe(J n) {
  Statement out;
  std::string_view tag = n.Tag();
  J b = n.Body();
  if (tag.empty()) return out;
  if (tag == "PrepareStmt") {
    out.kind = StatementKind::kPrepare;
    out.name = b["name"].Str();
    for (J t : b["argtypes"]) {
      if (t.Is("TypeName")) out.prepare_arg_types.push_back(TypeNameText(t.Body()));
    }
    // The $n inside belong to the prepared statement, not to the PREPARE.
    out.inner = std::make_shared<Statement>(Describe(b["query"]));
    return out;
  }
  if (tag == "ExplainStmt") {
    out.kind = StatementKind::kExplain;
    for (J option : b["options"]) {
      if (option.Is("DefElem") && option.Body()["defname"].Str() == "analyze") {
        out.explain_analyze = DefElemTrue(option.Body());
      }
    }
    auto inner = std::make_shared<Statement>(Describe(b["query"]));
    AdoptRouting(*inner, out);
    // Only EXPLAIN ANALYZE runs the statement.
    out.writes = out.explain_analyze && inner->writes;
    out.locks = out.explain_analyze && inner->locks;
    out.uses_advisory_lock = out.explain_analyze && inner->uses_advisory_lock;
    out.session_advisory_lock = out.explain_analyze && inner->session_advisory_lock;
    out.inner = std::move(inner);
    return out;
  }

  CollectTreeFacts(n, out);
  ScopeAnalyzer scopes;
  if (tag == "SelectStmt" || tag == "InsertStmt" || tag == "UpdateStmt" || tag == "DeleteStmt") {
    out.kind = tag == "SelectStmt"   ? StatementKind::kSelect
               : tag == "InsertStmt" ? StatementKind::kInsert
               : tag == "UpdateStmt" ? StatementKind::kUpdate
                                     : StatementKind::kDelete;
    if (tag == "SelectStmt") {
      if (b["intoClause"].present()) {
        // SELECT ... INTO t creates a table.
        out.kind = StatementKind::kDdl;
        out.writes = true;
        out.ddl = DdlInfo{DdlAction::kCreate, DdlObject::kTable, {}, false, false};
        scopes.AddNamedTable(b["intoClause"]["rel"]);
      }
      DescribeSelect(b, out);
    }
    scopes.AnalyzeTop(n, out);
  } else if (tag == "CopyStmt") {
    out.kind = StatementKind::kCopy;
    DescribeCopy(b, out);
    if (b["query"].present()) {
      auto inner = std::make_shared<Statement>(Describe(b["query"]));
      AdoptRouting(*inner, out);
      out.inner = std::move(inner);
      return out;
    }
    scopes.AddNamedTable(b["relation"]);
  } else if (!DescribeUtility(n, out, scopes) && !DescribeDdl(n, out, scopes)) {
    out.kind = StatementKind::kOther;
    // Cursor commands only read (DECLARE ... FOR UPDATE still sets `locks`); anything else
    // unknown may change data.
    out.writes = out.writes ||
                 !(tag == "DeclareCursorStmt" || tag == "FetchStmt" || tag == "ClosePortalStmt");
    CollectRangeVars(n, scopes);
  }
  if (tag == "CreateTableAsStmt" || tag == "ViewStmt") {
    // They read through a query.
    out.inner = std::make_shared<Statement>(Describe(b["query"]));
  }
  scopes.Finish(out);
  return out;
}

std::pair<size_t, size_t> TrimRange(std::string_view sql, size_t start, size_t len) {
  start = std::min(start, sql.size());
  len = std::min(len, sql.size() - start);
  auto space = [&](size_t i) { return absl::ascii_isspace(static_cast<unsigned char>(sql[i])); };
  while (len > 0 && space(start)) {
    ++start;
    --len;
  }
  while (len > 0 && space(start + len - 1)) --len;
  return {start, len};
}

// Finds the "( ... )" of each VALUES row of an INSERT inside the statement text `range` of
// `sql`. libpg_query gives rows no location, and an item's location may point inside it
// (at the operator of `-1`, at the `::` of a cast), so the rows are read forward from a
// VALUES keyword with the SQL scanner: parenthesized groups separated by commas. A VALUES
// keyword is accepted only if it is followed by exactly one group per row and every
// location inside each row lies inside that row's group, which rules out a table alias
// named "values" and VALUES lists in WITH queries or subqueries. Empty if none fits.
std::vector<std::pair<size_t, size_t>> ValuesRowRanges(std::string_view sql,
                                                       std::pair<size_t, size_t> range,
                                                       J values_lists) {
  using K = SqlToken::Kind;
  const size_t rows = values_lists.Size();
  std::vector<std::pair<int64_t, int64_t>> spans(rows, {-1, -1});
  for (size_t r = 0; r < rows; ++r) {
    LocationSpan(values_lists.At(r), spans[r].first, spans[r].second);
  }
  std::vector<std::pair<size_t, size_t>> out;
  const size_t end = range.first + range.second;
  SqlScanner scan(sql, range.first, end);
  for (SqlToken t = scan.Next(); t.kind != K::kEnd && t.kind != K::kError; t = scan.Next()) {
    if (!IsWord(sql, t, "values")) continue;
    SqlScanner groups = scan;
    out.clear();
    bool ok = true;
    while (ok && out.size() < rows) {
      if (!out.empty() && groups.Next().kind != K::kComma) {
        ok = false;
        break;
      }
      SqlToken open = groups.Next();
      if (open.kind != K::kOpen || sql[open.begin] != '(') {
        ok = false;
        break;
      }
      int depth = 1;
      SqlToken close;
      while (depth > 0) {
        close = groups.Next();
        if (close.kind == K::kEnd || close.kind == K::kError) break;
        if (close.kind == K::kOpen) ++depth;
        if (close.kind == K::kClose) --depth;
      }
      if (depth > 0) {
        ok = false;
        break;
      }
      const auto& [lo, hi] = spans[out.size()];
      if (lo >= 0 &&
          (static_cast<size_t>(lo) <= open.begin || static_cast<size_t>(hi) >= close.begin)) {
        ok = false;
        break;
      }
      out.emplace_back(open.begin, close.end - open.begin);
    }
    // Another row after the last one means the group list is longer than the rows.
    if (ok) {
      SqlScanner after = groups;
      SqlToken comma = after.Next();
      if (comma.kind == K::kComma && after.Next().kind == K::kOpen) ok = false;
    }
    if (ok && spans[0].first >= 0) return out;
  }
  return {};
}

struct ParseResultFree {
  void operator()(PgQueryParseResult* r) const { pg_query_free_parse_result(*r); }
};

}  // namespace

absl::StatusOr<Analysis> Analyze(std::string_view sql) {
  // libpg_query wants a NUL-terminated string; a NUL inside the text ends it as it would
  // for PostgreSQL's simple-query protocol.
  std::string text(sql.substr(0, std::min(sql.find('\0'), sql.size())));
  PgQueryParseResult parsed = pg_query_parse(text.c_str());
  std::unique_ptr<PgQueryParseResult, ParseResultFree> guard(&parsed);
  if (parsed.error != nullptr) {
    absl::Status st = protocol::SqlError(absl::StatusCode::kInvalidArgument, "42601",
                                         parsed.error->message ? parsed.error->message : "");
    if (parsed.error->cursorpos > 0) {
      st.SetPayload(Av(kPositionPayload), absl::Cord(absl::StrCat(parsed.error->cursorpos)));
    }
    return st;
  }
  JsonDoc doc;
  if (parsed.parse_tree == nullptr || !doc.Parse(parsed.parse_tree)) {
    return absl::InternalError("pgring: cannot read the parse tree of libpg_query");
  }
  FixIntegerConstants(doc, doc.root(), text);

  Analysis out;
  J root(&doc, &doc.root());
  std::string_view whole = text;
  for (J raw : root["stmts"]) {
    int64_t location = std::max<int64_t>(raw["stmt_location"].Int(), 0);
    int64_t length = raw["stmt_len"].Int();
    auto start = static_cast<size_t>(location);
    size_t len =
        length > 0 ? static_cast<size_t>(length) : whole.size() - std::min(start, whole.size());
    auto range = TrimRange(whole, start, len);
    Statement s = Describe(raw["stmt"]);
    if (s.insert.has_value() && !s.insert->rows.empty()) {
      J values = raw["stmt"].Body()["selectStmt"].Body()["valuesLists"];
      if (values.Size() == s.insert->rows.size()) {
        s.insert->row_ranges = ValuesRowRanges(whole, range, values);
      }
    }
    s.hint_shard_key = FindHint(whole.substr(range.first, range.second));
    out.statements.push_back(std::move(s));
    out.ranges.push_back(range);
  }
  if (out.statements.empty()) {
    Statement empty;
    empty.kind = StatementKind::kEmpty;
    out.statements.push_back(std::move(empty));
    out.ranges.emplace_back(0, 0);
  }
  return out;
}

std::optional<int> SyntaxErrorPosition(const absl::Status& status) {
  auto payload = status.GetPayload(Av(kPositionPayload));
  if (!payload.has_value()) return std::nullopt;
  std::string digits(*payload);
  int pos = 0;
  if (!absl::SimpleAtoi(digits, &pos)) return std::nullopt;
  return pos;
}

}  // namespace pgring::sharding
