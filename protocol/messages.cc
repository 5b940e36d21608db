#include "protocol/messages.h"

#include "protocol/reader.h"
#include "protocol/writer.h"

namespace pgring::protocol {
namespace {

// Reads the key/value list of a StartupMessage, up to and including the empty-string
// terminator, which must be the last byte (as PostgreSQL's ProcessStartupPacket demands).
bool ReadStartupParams(Reader& r, StartupMessage& m) {
  for (;;) {
    auto key = r.CString();
    if (!key) return false;
    if (key->empty()) return r.AtEnd();
    auto value = r.CString();
    if (!value) return false;
    m.params.emplace_back(*key, *value);
  }
}

// A count read as PostgreSQL's server reads it (pq_getmsgint(msg, 2) is unsigned).
std::optional<uint16_t> UnsignedCount(Reader& r) {
  auto v = r.Int16();
  if (!v) return std::nullopt;
  return static_cast<uint16_t>(*v);
}

// A count that may not be negative (backend column counts).
std::optional<int16_t> NonNegativeCount(Reader& r) {
  auto v = r.Int16();
  if (!v || *v < 0) return std::nullopt;
  return v;
}

// Length-prefixed value (Int32 length, -1 for NULL). The outer optional is "malformed";
// the inner one is NULL.
std::optional<std::optional<std::span<const std::byte>>> ReadValue(Reader& r) {
  auto len = r.Int32();
  if (!len || *len < -1) return std::nullopt;
  if (*len == -1) return std::optional<std::span<const std::byte>>();
  auto bytes = r.Bytes(static_cast<size_t>(*len));
  if (!bytes) return std::nullopt;
  return std::optional<std::span<const std::byte>>(*bytes);
}

// Body that is exactly one NUL-terminated string.
std::optional<std::string_view> OnlyCString(std::span<const std::byte> body) {
  Reader r(body);
  auto s = r.CString();
  if (!s || !r.AtEnd()) return std::nullopt;
  return s;
}

std::optional<Describe> ParseKindAndName(std::span<const std::byte> body) {
  Reader r(body);
  auto kind = r.Byte();
  if (!kind || (*kind != 'S' && *kind != 'P')) return std::nullopt;
  auto name = r.CString();
  if (!name || !r.AtEnd()) return std::nullopt;
  return Describe{static_cast<char>(*kind), *name};
}

std::string_view SeverityText(Severity s) {
  switch (s) {
    case Severity::kError:
      return "ERROR";
    case Severity::kFatal:
      return "FATAL";
    case Severity::kWarning:
      return "WARNING";
    case Severity::kNotice:
      return "NOTICE";
    case Severity::kInfo:
      return "INFO";
    case Severity::kLog:
      return "LOG";
  }
  return "ERROR";
}

void WriteErrorOrNotice(Buffer& out, char type, Severity severity, std::string_view sqlstate,
                        std::string_view message, std::string_view detail, std::string_view hint) {
  MessageWriter w(out);
  w.Begin(type);
  const std::string_view sev = SeverityText(severity);
  w.Byte('S');
  w.CString(sev);
  w.Byte('V');
  w.CString(sev);
  w.Byte('C');
  w.CString(sqlstate);
  w.Byte('M');
  w.CString(message);
  if (!detail.empty()) {
    w.Byte('D');
    w.CString(detail);
  }
  if (!hint.empty()) {
    w.Byte('H');
    w.CString(hint);
  }
  w.Byte(0);
  w.End();
}

void WriteEmpty(Buffer& out, char type) {
  MessageWriter w(out);
  w.Begin(type);
  w.End();
}

void WriteAuth(Buffer& out, AuthCode code, std::string_view data = {}) {
  MessageWriter w(out);
  w.Begin(be::kAuthentication);
  w.Int32(static_cast<int32_t>(code));
  w.Bytes(data);
  w.End();
}

}  // namespace

// ---- Startup ---------------------------------------------------------------------------------

std::optional<StartupPacket> ParseStartupPacket(std::span<const std::byte> body) {
  Reader r(body);
  auto code = r.Int32();
  if (!code) return std::nullopt;
  StartupPacket p;
  switch (*code) {
    case kSslRequestCode:
    case kGssEncRequestCode:
      if (!r.AtEnd()) return std::nullopt;
      p.kind = *code == kSslRequestCode ? StartupKind::kSslRequest : StartupKind::kGssEncRequest;
      return p;
    case kCancelRequestCode: {
      auto pid = r.Int32();
      auto secret = r.Int32();
      if (!pid || !secret || !r.AtEnd()) return std::nullopt;
      p.kind = StartupKind::kCancel;
      p.cancel = {*pid, *secret};
      return p;
    }
    default:
      break;
  }
  p.startup.protocol_version = *code;
  const int32_t major = *code >> 16;
  if (*code == kProtocolVersion3) {
    p.kind = StartupKind::kStartup;
  } else {
    p.kind = StartupKind::kUnsupportedVersion;
    // Only a 3.x packet has a layout we know; anything else is answered with an error
    // from its code alone.
    if (major != 3) return p;
  }
  if (!ReadStartupParams(r, p.startup)) return std::nullopt;
  return p;
}

// ---- Frontend --------------------------------------------------------------------------------

uint32_t Parse::ParamType(int i) const {
  if (i < 0 || i >= num_param_types) return 0;
  const size_t off = static_cast<size_t>(i) * 4;
  if (off + 4 > param_types.size()) return 0;
  return (static_cast<uint32_t>(param_types[off]) << 24) |
         (static_cast<uint32_t>(param_types[off + 1]) << 16) |
         (static_cast<uint32_t>(param_types[off + 2]) << 8) |
         static_cast<uint32_t>(param_types[off + 3]);
}

std::optional<Query> ParseQuery(std::span<const std::byte> body) {
  auto sql = OnlyCString(body);
  if (!sql) return std::nullopt;
  return Query{*sql};
}

std::optional<Parse> ParseParse(std::span<const std::byte> body) {
  Reader r(body);
  Parse p;
  auto name = r.CString();
  auto query = name ? r.CString() : std::nullopt;
  auto count = query ? UnsignedCount(r) : std::nullopt;
  if (!count) return std::nullopt;
  // The count is checked against what is left before the types are looked at.
  if (r.remaining() != size_t{*count} * 4) return std::nullopt;
  p.name = *name;
  p.query = *query;
  p.num_param_types = *count;
  p.param_types = r.Rest();
  return p;
}

std::optional<Bind> ParseBind(std::span<const std::byte> body) {
  Reader r(body);
  auto portal = r.CString();
  auto statement = portal ? r.CString() : std::nullopt;
  if (!statement) return std::nullopt;
  return Bind{*portal, *statement, r.Rest()};
}

std::optional<BindParams> ParseBindParams(std::span<const std::byte> rest) {
  Reader r(rest);
  BindParams b;
  auto nformats = UnsignedCount(r);
  if (!nformats || r.remaining() < size_t{*nformats} * 2) return std::nullopt;
  b.formats.reserve(*nformats);
  for (int i = 0; i < *nformats; ++i) b.formats.push_back(*r.Int16());

  auto nvalues = UnsignedCount(r);
  // Each value needs at least its 4-byte length; checking that first bounds the reserve.
  if (!nvalues || r.remaining() < size_t{*nvalues} * 4) return std::nullopt;
  if (*nformats > 1 && *nformats != *nvalues) return std::nullopt;
  b.values.reserve(*nvalues);
  for (int i = 0; i < *nvalues; ++i) {
    auto v = ReadValue(r);
    if (!v) return std::nullopt;
    b.values.push_back(*v);
  }

  auto nresult = UnsignedCount(r);
  if (!nresult || r.remaining() != size_t{*nresult} * 2) return std::nullopt;
  b.result_formats.reserve(*nresult);
  for (int i = 0; i < *nresult; ++i) b.result_formats.push_back(*r.Int16());
  return b;
}

std::optional<Describe> ParseDescribe(std::span<const std::byte> body) {
  return ParseKindAndName(body);
}

std::optional<Close> ParseClose(std::span<const std::byte> body) { return ParseKindAndName(body); }

std::optional<Execute> ParseExecute(std::span<const std::byte> body) {
  Reader r(body);
  auto portal = r.CString();
  auto max_rows = portal ? r.Int32() : std::nullopt;
  if (!max_rows || !r.AtEnd()) return std::nullopt;
  return Execute{*portal, *max_rows};
}

std::optional<std::string_view> ParsePasswordMessage(std::span<const std::byte> body) {
  return OnlyCString(body);
}

std::optional<SaslInitialResponse> ParseSaslInitialResponse(std::span<const std::byte> body) {
  Reader r(body);
  auto mechanism = r.CString();
  if (!mechanism) return std::nullopt;
  auto data = ReadValue(r);
  if (!data || !r.AtEnd()) return std::nullopt;
  SaslInitialResponse s;
  s.mechanism = *mechanism;
  if (*data) s.data = **data;
  return s;
}

// ---- Backend ---------------------------------------------------------------------------------

std::optional<Authentication> ParseAuthentication(std::span<const std::byte> body) {
  Reader r(body);
  auto code = r.Int32();
  if (!code) return std::nullopt;
  Authentication a;
  a.code = static_cast<AuthCode>(*code);
  switch (a.code) {
    case AuthCode::kOk:
    case AuthCode::kCleartextPassword:
      if (!r.AtEnd()) return std::nullopt;
      return a;
    case AuthCode::kMd5Password:
      if (r.remaining() != 4) return std::nullopt;
      a.data = r.Rest();
      return a;
    case AuthCode::kSasl: {
      a.data = r.Rest();
      Reader list(a.data);
      int mechanisms = 0;
      for (;;) {
        auto name = list.CString();
        if (!name) return std::nullopt;
        if (name->empty()) break;
        ++mechanisms;
      }
      if (mechanisms == 0 || !list.AtEnd()) return std::nullopt;
      return a;
    }
    default:  // SASLContinue, SASLFinal and the methods pgring does not implement
      a.data = r.Rest();
      return a;
  }
}

std::optional<BackendKeyData> ParseBackendKeyData(std::span<const std::byte> body) {
  Reader r(body);
  auto pid = r.Int32();
  auto secret = r.Int32();
  if (!pid || !secret || !r.AtEnd()) return std::nullopt;
  return BackendKeyData{*pid, *secret};
}

std::optional<ParameterStatus> ParseParameterStatus(std::span<const std::byte> body) {
  Reader r(body);
  auto name = r.CString();
  auto value = name ? r.CString() : std::nullopt;
  if (!value || !r.AtEnd()) return std::nullopt;
  return ParameterStatus{*name, *value};
}

std::optional<char> ParseReadyForQuery(std::span<const std::byte> body) {
  Reader r(body);
  auto status = r.Byte();
  if (!status || !r.AtEnd()) return std::nullopt;
  if (*status != 'I' && *status != 'T' && *status != 'E') return std::nullopt;
  return static_cast<char>(*status);
}

std::optional<ErrorFields> ParseErrorFields(std::span<const std::byte> body) {
  Reader r(body);
  ErrorFields e;
  for (;;) {
    auto code = r.Byte();
    if (!code) return std::nullopt;  // no terminator
    if (*code == 0) break;
    auto value = r.CString();
    if (!value) return std::nullopt;
    e.fields.emplace_back(static_cast<char>(*code), *value);
  }
  if (!r.AtEnd()) return std::nullopt;
  return e;
}

std::optional<std::string_view> ParseCommandComplete(std::span<const std::byte> body) {
  return OnlyCString(body);
}

std::optional<std::vector<RowField>> ParseRowDescription(std::span<const std::byte> body) {
  // Smallest field: empty name (1 NUL) + 4 + 2 + 4 + 2 + 4 + 2.
  constexpr size_t kMinField = 19;
  Reader r(body);
  auto count = NonNegativeCount(r);
  if (!count || r.remaining() < static_cast<size_t>(*count) * kMinField) return std::nullopt;
  std::vector<RowField> fields;
  fields.reserve(static_cast<size_t>(*count));
  for (int i = 0; i < *count; ++i) {
    RowField f;
    auto name = r.CString();
    auto table = name ? r.Int32() : std::nullopt;
    auto column = table ? r.Int16() : std::nullopt;
    auto type = column ? r.Int32() : std::nullopt;
    auto size = type ? r.Int16() : std::nullopt;
    auto modifier = size ? r.Int32() : std::nullopt;
    auto format = modifier ? r.Int16() : std::nullopt;
    if (!format) return std::nullopt;
    f.name = *name;
    f.table_oid = static_cast<uint32_t>(*table);
    f.column = *column;
    f.type_oid = static_cast<uint32_t>(*type);
    f.type_size = *size;
    f.type_modifier = *modifier;
    f.format = *format;
    fields.push_back(f);
  }
  if (!r.AtEnd()) return std::nullopt;
  return fields;
}

std::optional<std::vector<std::optional<std::span<const std::byte>>>> ParseDataRow(
    std::span<const std::byte> body) {
  Reader r(body);
  auto count = NonNegativeCount(r);
  if (!count || r.remaining() < static_cast<size_t>(*count) * 4) return std::nullopt;
  std::vector<std::optional<std::span<const std::byte>>> values;
  values.reserve(static_cast<size_t>(*count));
  for (int i = 0; i < *count; ++i) {
    auto v = ReadValue(r);
    if (!v) return std::nullopt;
    values.push_back(*v);
  }
  if (!r.AtEnd()) return std::nullopt;
  return values;
}

// ---- Frontend writers ------------------------------------------------------------------------

void WriteStartupMessage(Buffer& out,
                         std::span<const std::pair<std::string_view, std::string_view>> params) {
  MessageWriter w(out);
  w.Begin(0);
  w.Int32(kProtocolVersion3);
  for (const auto& [key, value] : params) {
    w.CString(key);
    w.CString(value);
  }
  w.Byte(0);
  w.End();
}

void WriteSslRequest(Buffer& out) {
  MessageWriter w(out);
  w.Begin(0);
  w.Int32(kSslRequestCode);
  w.End();
}

void WriteCancelRequest(Buffer& out, int32_t pid, int32_t secret) {
  MessageWriter w(out);
  w.Begin(0);
  w.Int32(kCancelRequestCode);
  w.Int32(pid);
  w.Int32(secret);
  w.End();
}

void WritePasswordMessage(Buffer& out, std::string_view password) {
  MessageWriter w(out);
  w.Begin(fe::kPassword);
  w.CString(password);
  w.End();
}

void WriteSaslInitialResponse(Buffer& out, std::string_view mechanism, std::string_view data) {
  MessageWriter w(out);
  w.Begin(fe::kPassword);
  w.CString(mechanism);
  w.Int32(static_cast<int32_t>(data.size()));
  w.Bytes(data);
  w.End();
}

void WriteSaslResponse(Buffer& out, std::string_view data) {
  MessageWriter w(out);
  w.Begin(fe::kPassword);
  w.Bytes(data);
  w.End();
}

void WriteQuery(Buffer& out, std::string_view sql) {
  MessageWriter w(out);
  w.Begin(fe::kQuery);
  w.CString(sql);
  w.End();
}

void WriteParse(Buffer& out, std::string_view name, std::string_view query,
                std::span<const uint32_t> param_types) {
  MessageWriter w(out);
  w.Begin(fe::kParse);
  w.CString(name);
  w.CString(query);
  w.Int16(static_cast<int16_t>(static_cast<uint16_t>(param_types.size())));
  for (uint32_t oid : param_types) w.Int32(static_cast<int32_t>(oid));
  w.End();
}

void WriteParse(Buffer& out, std::string_view name, const Parse& like) {
  MessageWriter w(out);
  w.Begin(fe::kParse);
  w.CString(name);
  w.CString(like.query);
  w.Int16(static_cast<int16_t>(like.num_param_types));
  w.Bytes(like.param_types);
  w.End();
}

void WriteBind(Buffer& out, std::string_view portal, std::string_view statement,
               std::span<const std::byte> rest) {
  MessageWriter w(out);
  w.Begin(fe::kBind);
  w.CString(portal);
  w.CString(statement);
  w.Bytes(rest);
  w.End();
}

void WriteBind(Buffer& out, std::string_view portal, std::string_view statement,
               const BindParams& params, std::span<const int> subset) {
  MessageWriter w(out);
  w.Begin(fe::kBind);
  w.CString(portal);
  w.CString(statement);
  w.Int16(static_cast<int16_t>(subset.size()));
  for (int n : subset) w.Int16(params.FormatOf(static_cast<size_t>(n - 1)));
  w.Int16(static_cast<int16_t>(subset.size()));
  for (int n : subset) {
    const auto& v = params.values[static_cast<size_t>(n - 1)];
    if (!v) {
      w.Int32(-1);
    } else {
      w.Int32(static_cast<int32_t>(v->size()));
      w.Bytes(*v);
    }
  }
  w.Int16(static_cast<int16_t>(params.result_formats.size()));
  for (int16_t f : params.result_formats) w.Int16(f);
  w.End();
}

void WriteDescribe(Buffer& out, char kind, std::string_view name) {
  MessageWriter w(out);
  w.Begin(fe::kDescribe);
  w.Byte(static_cast<uint8_t>(kind));
  w.CString(name);
  w.End();
}

void WriteClose(Buffer& out, char kind, std::string_view name) {
  MessageWriter w(out);
  w.Begin(fe::kClose);
  w.Byte(static_cast<uint8_t>(kind));
  w.CString(name);
  w.End();
}

void WriteExecute(Buffer& out, std::string_view portal, int32_t max_rows) {
  MessageWriter w(out);
  w.Begin(fe::kExecute);
  w.CString(portal);
  w.Int32(max_rows);
  w.End();
}

void WriteSync(Buffer& out) { WriteEmpty(out, fe::kSync); }
void WriteFlush(Buffer& out) { WriteEmpty(out, fe::kFlush); }
void WriteTerminate(Buffer& out) { WriteEmpty(out, fe::kTerminate); }

void WriteCopyData(Buffer& out, std::span<const std::byte> data) {
  MessageWriter w(out);
  w.Begin(fe::kCopyData);
  w.Bytes(data);
  w.End();
}

void WriteCopyDone(Buffer& out) { WriteEmpty(out, fe::kCopyDone); }

void WriteCopyFail(Buffer& out, std::string_view message) {
  MessageWriter w(out);
  w.Begin(fe::kCopyFail);
  w.CString(message);
  w.End();
}

// ---- Backend writers -------------------------------------------------------------------------

void WriteAuthenticationOk(Buffer& out) { WriteAuth(out, AuthCode::kOk); }
void WriteAuthenticationCleartext(Buffer& out) { WriteAuth(out, AuthCode::kCleartextPassword); }

void WriteAuthenticationMd5(Buffer& out, std::span<const std::byte, 4> salt) {
  MessageWriter w(out);
  w.Begin(be::kAuthentication);
  w.Int32(static_cast<int32_t>(AuthCode::kMd5Password));
  w.Bytes(std::span<const std::byte>(salt));
  w.End();
}

void WriteAuthenticationSasl(Buffer& out, std::span<const std::string_view> mechanisms) {
  MessageWriter w(out);
  w.Begin(be::kAuthentication);
  w.Int32(static_cast<int32_t>(AuthCode::kSasl));
  for (std::string_view m : mechanisms) w.CString(m);
  w.Byte(0);
  w.End();
}

void WriteAuthenticationSaslContinue(Buffer& out, std::string_view data) {
  WriteAuth(out, AuthCode::kSaslContinue, data);
}

void WriteAuthenticationSaslFinal(Buffer& out, std::string_view data) {
  WriteAuth(out, AuthCode::kSaslFinal, data);
}

void WriteBackendKeyData(Buffer& out, int32_t pid, int32_t secret) {
  MessageWriter w(out);
  w.Begin(be::kBackendKeyData);
  w.Int32(pid);
  w.Int32(secret);
  w.End();
}

void WriteParameterStatus(Buffer& out, std::string_view name, std::string_view value) {
  MessageWriter w(out);
  w.Begin(be::kParameterStatus);
  w.CString(name);
  w.CString(value);
  w.End();
}

void WriteReadyForQuery(Buffer& out, char status) {
  MessageWriter w(out);
  w.Begin(be::kReadyForQuery);
  w.Byte(static_cast<uint8_t>(status));
  w.End();
}

void WriteErrorResponse(Buffer& out, Severity severity, std::string_view sqlstate,
                        std::string_view message, std::string_view detail, std::string_view hint) {
  WriteErrorOrNotice(out, be::kErrorResponse, severity, sqlstate, message, detail, hint);
}

void WriteNoticeResponse(Buffer& out, Severity severity, std::string_view sqlstate,
                         std::string_view message, std::string_view detail, std::string_view hint) {
  WriteErrorOrNotice(out, be::kNoticeResponse, severity, sqlstate, message, detail, hint);
}

void WriteRowDescriptionText(Buffer& out, std::span<const std::string_view> columns) {
  constexpr uint32_t kTextOid = 25;
  MessageWriter w(out);
  w.Begin(be::kRowDescription);
  w.Int16(static_cast<int16_t>(columns.size()));
  for (std::string_view name : columns) {
    w.CString(name);
    w.Int32(0);  // not a table column
    w.Int16(0);
    w.Int32(static_cast<int32_t>(kTextOid));
    w.Int16(-1);  // variable length
    w.Int32(-1);  // no type modifier
    w.Int16(0);   // text format
  }
  w.End();
}

void WriteRowDescription(Buffer& out, std::span<const RowField> fields) {
  MessageWriter w(out);
  w.Begin(be::kRowDescription);
  w.Int16(static_cast<int16_t>(fields.size()));
  for (const RowField& f : fields) {
    w.CString(f.name);
    w.Int32(static_cast<int32_t>(f.table_oid));
    w.Int16(f.column);
    w.Int32(static_cast<int32_t>(f.type_oid));
    w.Int16(f.type_size);
    w.Int32(f.type_modifier);
    w.Int16(f.format);
  }
  w.End();
}

void WriteDataRow(Buffer& out, std::span<const std::optional<std::string_view>> values) {
  MessageWriter w(out);
  w.Begin(be::kDataRow);
  w.Int16(static_cast<int16_t>(values.size()));
  for (const auto& v : values) {
    if (!v) {
      w.Int32(-1);
      continue;
    }
    w.Int32(static_cast<int32_t>(v->size()));
    w.Bytes(*v);
  }
  w.End();
}

void WriteCommandComplete(Buffer& out, std::string_view tag) {
  MessageWriter w(out);
  w.Begin(be::kCommandComplete);
  w.CString(tag);
  w.End();
}

void WriteEmptyQueryResponse(Buffer& out) { WriteEmpty(out, be::kEmptyQueryResponse); }
void WriteParseComplete(Buffer& out) { WriteEmpty(out, be::kParseComplete); }
void WriteBindComplete(Buffer& out) { WriteEmpty(out, be::kBindComplete); }
void WriteCloseComplete(Buffer& out) { WriteEmpty(out, be::kCloseComplete); }
void WriteNoData(Buffer& out) { WriteEmpty(out, be::kNoData); }

void WriteSslResponse(Buffer& out, bool accept) { out.Append(accept ? "S" : "N"); }

void WriteNegotiateProtocolVersion(Buffer& out, int32_t newest_minor,
                                   std::span<const std::string_view> unrecognized_options) {
  MessageWriter w(out);
  w.Begin(be::kNegotiateProtocolVersion);
  w.Int32((3 << 16) | newest_minor);
  w.Int32(static_cast<int32_t>(unrecognized_options.size()));
  for (std::string_view o : unrecognized_options) w.CString(o);
  w.End();
}

}  // namespace pgring::protocol
