// libFuzzer target: the message decoder. The input is read as a stream of typed frames,
// as the proxy reads a socket; every body goes through every Parse* function (not only
// the one its type byte names, so each parser sees every kind of body), and whatever
// parses must re-encode to the same bytes where a writer exists.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/buffer.h"
#include "protocol/frame.h"
#include "protocol/messages.h"

namespace pgring::protocol {
namespace {

std::span<const std::byte> BodyOf(const Buffer& out) {
  return ParseTypedFrame(out.Readable()).frame.body;
}

bool Same(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// Traps (a finding) when a parsed message does not re-encode to its body.
void ExpectReencodes(std::span<const std::byte> body, const Buffer& out) {
  if (!Same(BodyOf(out), body)) __builtin_trap();
}

void ParseEverything(std::span<const std::byte> body, Buffer& scratch) {
  scratch.Clear();
  if (auto q = ParseQuery(body)) {
    WriteQuery(scratch, q->sql);
    ExpectReencodes(body, scratch);
  }
  scratch.Clear();
  if (auto p = ParseParse(body)) {
    for (int i = 0; i < p->num_param_types; ++i) (void)p->ParamType(i);
    WriteParse(scratch, p->name, *p);
    ExpectReencodes(body, scratch);
  }
  scratch.Clear();
  if (auto b = ParseBind(body)) {
    WriteBind(scratch, b->portal, b->statement, b->rest);
    ExpectReencodes(body, scratch);
    if (auto params = ParseBindParams(b->rest)) {
      for (size_t i = 0; i < params->values.size(); ++i) (void)params->FormatOf(i);
    }
  }
  (void)ParseBindParams(body);
  scratch.Clear();
  if (auto d = ParseDescribe(body)) {
    WriteDescribe(scratch, d->kind, d->name);
    ExpectReencodes(body, scratch);
  }
  (void)ParseClose(body);
  scratch.Clear();
  if (auto e = ParseExecute(body)) {
    WriteExecute(scratch, e->portal, e->max_rows);
    ExpectReencodes(body, scratch);
  }
  (void)ParsePasswordMessage(body);
  (void)ParseSaslInitialResponse(body);
  (void)ParseAuthentication(body);
  (void)ParseBackendKeyData(body);
  (void)ParseParameterStatus(body);
  (void)ParseReadyForQuery(body);
  if (auto err = ParseErrorFields(body)) {
    (void)err->sqlstate();
    (void)err->message();
  }
  (void)ParseCommandComplete(body);
  scratch.Clear();
  if (auto rd = ParseRowDescription(body)) {
    WriteRowDescription(scratch, *rd);
    ExpectReencodes(body, scratch);
  }
  scratch.Clear();
  if (auto row = ParseDataRow(body)) {
    std::vector<std::optional<std::string_view>> values;
    for (const auto& v : *row) {
      if (v) {
        values.emplace_back(std::string_view(reinterpret_cast<const char*>(v->data()), v->size()));
      } else {
        values.emplace_back();
      }
    }
    WriteDataRow(scratch, values);
    ExpectReencodes(body, scratch);
  }
}

}  // namespace
}  // namespace pgring::protocol

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pgring::protocol;
  auto buf = std::as_bytes(std::span(data, size));
  Buffer scratch;
  for (;;) {
    const FrameResult r = ParseTypedFrame(buf);
    if (r.status != FrameStatus::kComplete) break;
    if (r.frame.size > buf.size() || r.frame.raw.data() != buf.data()) __builtin_trap();
    ParseEverything(r.frame.body, scratch);
    buf = buf.subspan(r.frame.size);
  }
  return 0;
}
