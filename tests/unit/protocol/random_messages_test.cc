// 10,000 random and mutated bodies through every message parser. Nothing may crash or read
// out of bounds (run under ASan), every view must point into the input, and whatever parses
// must re-encode to exactly the input where a writer exists (the parsers accept nothing
// that PostgreSQL's layout does not describe).
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "protocol/buffer.h"
#include "protocol/frame.h"
#include "protocol/messages.h"
#include "test_util.h"

namespace pgring::protocol {
namespace {

using testing::AsBytes;
using testing::AsString;
using testing::Wire;
using testing::Within;

// Bodies of valid messages of every kind, to be mutated.
std::vector<std::string> ValidBodies() {
  std::vector<std::string> bodies;
  auto add = [&](auto write) {
    Buffer out;
    write(out);
    FrameResult r = ParseTypedFrame(out.Readable());
    REQUIRE(r.status == FrameStatus::kComplete);
    bodies.push_back(AsString(r.frame.body));
  };
  add([](Buffer& b) { WriteQuery(b, "select 1"); });
  add([](Buffer& b) {
    const uint32_t t[] = {23, 25};
    WriteParse(b, "s", "select $1, $2", t);
  });
  add([](Buffer& b) {
    const std::string rest =
        Wire().I16(1).I16(0).I16(2).I32(1).Raw("7").I32(-1).I16(1).I16(0).str();
    WriteBind(b, "", "s", AsBytes(rest));
  });
  bodies.push_back(Wire().I16(1).I16(0).I16(2).I32(1).Raw("7").I32(-1).I16(1).I16(0).str());
  add([](Buffer& b) { WriteDescribe(b, 'S', "s"); });
  add([](Buffer& b) { WriteExecute(b, "", 10); });
  add([](Buffer& b) { WritePasswordMessage(b, "pw"); });
  add([](Buffer& b) { WriteSaslInitialResponse(b, "SCRAM-SHA-256", "n,,n=,r=x"); });
  add([](Buffer& b) { WriteAuthenticationOk(b); });
  add([](Buffer& b) {
    const std::byte salt[4] = {};
    WriteAuthenticationMd5(b, salt);
  });
  add([](Buffer& b) {
    const std::string_view m[] = {"SCRAM-SHA-256"};
    WriteAuthenticationSasl(b, m);
  });
  add([](Buffer& b) { WriteAuthenticationSaslContinue(b, "r=a,s=b,i=1"); });
  add([](Buffer& b) { WriteBackendKeyData(b, 1, 2); });
  add([](Buffer& b) { WriteParameterStatus(b, "a", "b"); });
  add([](Buffer& b) { WriteReadyForQuery(b, 'I'); });
  add([](Buffer& b) { WriteErrorResponse(b, Severity::kError, "XX000", "m", "d", "h"); });
  add([](Buffer& b) { WriteCommandComplete(b, "SELECT 1"); });
  add([](Buffer& b) {
    const std::string_view c[] = {"a", "b"};
    WriteRowDescriptionText(b, c);
  });
  add([](Buffer& b) {
    const std::optional<std::string_view> v[] = {"1", std::nullopt, ""};
    WriteDataRow(b, v);
  });
  return bodies;
}

std::string Mutate(std::string s, std::mt19937& rng) {
  std::uniform_int_distribution<int> op(0, 3);
  std::uniform_int_distribution<int> byte(0, 255);
  const int edits = 1 + static_cast<int>(rng() % 3);
  for (int e = 0; e < edits; ++e) {
    const size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (op(rng)) {
      case 0:  // flip a byte
        if (pos < s.size()) s[pos] = static_cast<char>(byte(rng));
        break;
      case 1:  // truncate
        s.resize(pos);
        break;
      case 2:  // insert
        s.insert(s.begin() + static_cast<std::ptrdiff_t>(pos), static_cast<char>(byte(rng)));
        break;
      default:  // erase
        if (pos < s.size()) s.erase(pos, 1);
        break;
    }
  }
  return s;
}

template <typename WriteFn>
std::string Encode(WriteFn write) {
  Buffer out;
  write(out);
  FrameResult r = ParseTypedFrame(out.Readable());
  REQUIRE(r.status == FrameStatus::kComplete);
  return AsString(r.frame.body);
}

TEST_CASE("Message parsers: 10,000 random and mutated bodies", "[messages][random]") {
  const std::vector<std::string> valid = ValidBodies();
  std::mt19937 rng(99);
  std::map<std::string, int> parsed;  // how often each parser accepted something
  for (int i = 0; i < 10000; ++i) {
    const std::string body =
        i % 2 == 0 ? testing::RandomBody(rng, 40) : Mutate(valid[rng() % valid.size()], rng);
    const auto bytes = AsBytes(body);

    if (auto q = ParseQuery(bytes)) {
      ++parsed["Query"];
      REQUIRE(Encode([&](Buffer& b) { WriteQuery(b, q->sql); }) == body);
    }
    if (auto p = ParseParse(bytes)) {
      ++parsed["Parse"];
      REQUIRE(Within(p->query, bytes));
      REQUIRE(Within(p->param_types, bytes));
      REQUIRE(p->param_types.size() == size_t{p->num_param_types} * 4);
      REQUIRE(Encode([&](Buffer& b) { WriteParse(b, p->name, *p); }) == body);
    }
    if (auto b = ParseBind(bytes)) {
      ++parsed["Bind"];
      REQUIRE(Within(b->rest, bytes));
      REQUIRE(Encode([&](Buffer& o) { WriteBind(o, b->portal, b->statement, b->rest); }) == body);
    }
    if (auto bp = ParseBindParams(bytes)) {
      ++parsed["BindParams"];
      REQUIRE((bp->formats.size() <= 1 || bp->formats.size() == bp->values.size()));
      for (const auto& v : bp->values)
        if (v) REQUIRE(Within(*v, bytes));
    }
    if (auto d = ParseDescribe(bytes)) {
      ++parsed["Describe"];
      REQUIRE(Encode([&](Buffer& o) { WriteDescribe(o, d->kind, d->name); }) == body);
      REQUIRE(Encode([&](Buffer& o) { WriteClose(o, d->kind, d->name); }) == body);
    }
    if (auto e = ParseExecute(bytes)) {
      ++parsed["Execute"];
      REQUIRE(Encode([&](Buffer& o) { WriteExecute(o, e->portal, e->max_rows); }) == body);
    }
    if (auto pw = ParsePasswordMessage(bytes)) {
      ++parsed["Password"];
      REQUIRE(Encode([&](Buffer& o) { WritePasswordMessage(o, *pw); }) == body);
    }
    if (auto s = ParseSaslInitialResponse(bytes)) {
      ++parsed["SaslInitial"];
      REQUIRE(Within(s->data, bytes));
      const std::string again =
          Encode([&](Buffer& o) { WriteSaslInitialResponse(o, s->mechanism, AsString(s->data)); });
      // The writer always sends a length; only "-1 (no data)" re-encodes differently.
      if (again != body) REQUIRE(body == Wire().Str(s->mechanism).I32(-1).str());
    }
    if (auto a = ParseAuthentication(bytes)) {
      ++parsed["Authentication"];
      REQUIRE(Within(a->data, bytes));
      switch (a->code) {
        case AuthCode::kOk:
          REQUIRE(Encode(WriteAuthenticationOk) == body);
          break;
        case AuthCode::kCleartextPassword:
          REQUIRE(Encode(WriteAuthenticationCleartext) == body);
          break;
        case AuthCode::kMd5Password:
          REQUIRE(Encode([&](Buffer& o) {
                    WriteAuthenticationMd5(o, std::span<const std::byte, 4>(a->data.data(), 4));
                  }) == body);
          break;
        case AuthCode::kSasl:
          REQUIRE(a->data.size() >= 2);
          REQUIRE(static_cast<char>(a->data.back()) == '\0');
          break;
        default:
          REQUIRE(a->data.size() == body.size() - 4);
          break;
      }
    }
    if (auto k = ParseBackendKeyData(bytes)) {
      ++parsed["BackendKeyData"];
      REQUIRE(Encode([&](Buffer& o) { WriteBackendKeyData(o, k->pid, k->secret); }) == body);
    }
    if (auto ps = ParseParameterStatus(bytes)) {
      ++parsed["ParameterStatus"];
      REQUIRE(Encode([&](Buffer& o) { WriteParameterStatus(o, ps->name, ps->value); }) == body);
    }
    if (auto z = ParseReadyForQuery(bytes)) {
      ++parsed["ReadyForQuery"];
      REQUIRE(Encode([&](Buffer& o) { WriteReadyForQuery(o, *z); }) == body);
    }
    if (auto err = ParseErrorFields(bytes)) {
      ++parsed["ErrorFields"];
      size_t total = 1;  // terminator
      for (const auto& [code, value] : err->fields) {
        REQUIRE(code != 0);
        REQUIRE(Within(value, bytes));
        total += 1 + value.size() + 1;
      }
      REQUIRE(total == body.size());
    }
    if (auto cc = ParseCommandComplete(bytes)) {
      ++parsed["CommandComplete"];
      REQUIRE(Encode([&](Buffer& o) { WriteCommandComplete(o, *cc); }) == body);
    }
    if (auto rd = ParseRowDescription(bytes)) {
      ++parsed["RowDescription"];
      REQUIRE(Encode([&](Buffer& o) { WriteRowDescription(o, *rd); }) == body);
    }
    if (auto row = ParseDataRow(bytes)) {
      ++parsed["DataRow"];
      std::vector<std::optional<std::string_view>> values;
      for (const auto& v : *row) {
        if (v) {
          REQUIRE(Within(*v, bytes));
          values.emplace_back(
              std::string_view(reinterpret_cast<const char*>(v->data()), v->size()));
        } else {
          values.emplace_back();
        }
      }
      REQUIRE(Encode([&](Buffer& o) { WriteDataRow(o, values); }) == body);
    }
  }
  // The mutated half must reach past the first checks of every parser at least sometimes,
  // or this test would prove little.
  for (const char* name :
       {"Query", "Parse", "Bind", "BindParams", "Describe", "Execute", "Password", "SaslInitial",
        "Authentication", "BackendKeyData", "ParameterStatus", "ReadyForQuery", "ErrorFields",
        "CommandComplete", "RowDescription", "DataRow"}) {
    INFO(name);
    CHECK(parsed[name] > 0);
  }
}

}  // namespace
}  // namespace pgring::protocol
