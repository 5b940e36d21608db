// Typed PostgreSQL v3 messages
// (https://www.postgresql.org/docs/15/protocol-message-formats.html).
// Parse* functions take a frame body (after type and length) and return std::nullopt
// when it is malformed; the structs borrow from that body (string_view / span) and are
// valid only as long as it is. Write* functions append one whole message to a Buffer.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "protocol/buffer.h"

namespace pgring::protocol {

// ---- Message type bytes -------------------------------------------------------------
namespace fe {  // frontend (client -> server)
inline constexpr char kBind = 'B', kClose = 'C', kCopyData = 'd', kCopyDone = 'c',
                      kCopyFail = 'f', kDescribe = 'D', kExecute = 'E', kFlush = 'H',
                      kFunctionCall = 'F', kParse = 'P', kPassword = 'p', kQuery = 'Q',
                      kSync = 'S', kTerminate = 'X';
}  // namespace fe
namespace be {  // backend (server -> client)
inline constexpr char kAuthentication = 'R', kBackendKeyData = 'K', kBindComplete = '2',
                      kCloseComplete = '3', kCommandComplete = 'C', kCopyData = 'd',
                      kCopyDone = 'c', kCopyInResponse = 'G', kCopyOutResponse = 'H',
                      kCopyBothResponse = 'W', kDataRow = 'D', kEmptyQueryResponse = 'I',
                      kErrorResponse = 'E', kFunctionCallResponse = 'V', kNegotiateProtocolVersion = 'v',
                      kNoData = 'n', kNoticeResponse = 'N', kNotificationResponse = 'A',
                      kParameterDescription = 't', kParameterStatus = 'S', kParseComplete = '1',
                      kPortalSuspended = 's', kReadyForQuery = 'Z', kRowDescription = 'T';
}  // namespace be

inline constexpr int32_t kProtocolVersion3 = 196608;   // 3.0
inline constexpr int32_t kSslRequestCode = 80877103;
inline constexpr int32_t kGssEncRequestCode = 80877104;
inline constexpr int32_t kCancelRequestCode = 80877102;

// Authentication request codes (AuthenticationXXX 'R' messages).
enum class AuthCode : int32_t {
  kOk = 0, kCleartextPassword = 3, kMd5Password = 5, kSasl = 10, kSaslContinue = 11,
  kSaslFinal = 12,
};

// ---- Startup phase (untyped frames) ------------------------------------------------------
struct StartupMessage {
  int32_t protocol_version = 0;
  std::vector<std::pair<std::string_view, std::string_view>> params;  // user, database, ...
  std::string_view Get(std::string_view key) const {
    for (const auto& [k, v] : params)
      if (k == key) return v;
    return {};
  }
};
struct CancelRequest {
  int32_t pid = 0;
  int32_t secret = 0;
};
enum class StartupKind { kStartup, kSslRequest, kGssEncRequest, kCancel, kUnsupportedVersion };
struct StartupPacket {
  StartupKind kind = StartupKind::kStartup;
  StartupMessage startup;  // kStartup (and kUnsupportedVersion: protocol_version set)
  CancelRequest cancel;    // kCancel
};
// Parses the body of an untyped startup-phase frame. nullopt if malformed (missing NUL,
// odd key/value list, no terminator, bytes after the terminator, wrong length for a
// fixed-size request). Any other request code gives kUnsupportedVersion with
// startup.protocol_version set; for 3.x (x > 0) the parameters are parsed as well, so the
// caller may answer with NegotiateProtocolVersion instead of an error. Whether "user" is
// present is left to the caller.
std::optional<StartupPacket> ParseStartupPacket(std::span<const std::byte> body);

// ---- Frontend messages ---------------------------------------------------------------------
struct Query {
  std::string_view sql;
};
struct Parse {
  std::string_view name;   // "" is the unnamed statement
  std::string_view query;
  std::span<const std::byte> param_types;  // Int16 count already consumed: count Int32 OIDs
  // The count is unsigned, as PostgreSQL reads it: a client may declare up to 65535 types.
  uint16_t num_param_types = 0;
  uint32_t ParamType(int i) const;  // OID of parameter i (0 <= i < num_param_types); else 0
};
struct Bind {
  std::string_view portal;
  std::string_view statement;
  // Everything after the statement name (formats, parameters, result formats), unparsed;
  // a rewriter copies it unchanged.
  std::span<const std::byte> rest;
};
// Parameter values of a Bind, parsed on demand (the router needs them; forwarding does not).
// The three counts are unsigned 16-bit, as PostgreSQL reads them (up to 65535 parameters).
// More than one format code with a count different from the number of values is malformed.
struct BindParams {
  // Inline room for the usual few parameters: a Bind parses without allocating.
  absl::InlinedVector<int16_t, 4> formats;  // 0 text, 1 binary; size 0, 1 or n as in the protocol
  absl::InlinedVector<std::optional<std::span<const std::byte>>, 4> values;  // nullopt: NULL
  absl::InlinedVector<int16_t, 4> result_formats;
  int16_t FormatOf(size_t i) const {
    if (formats.empty()) return 0;
    if (formats.size() == 1) return formats[0];
    return i < formats.size() ? formats[i] : 0;
  }
};
struct Describe {
  char kind = 'S';  // 'S' statement or 'P' portal; any other kind is malformed
  std::string_view name;
};
using Close = Describe;  // same layout: kind byte + name
struct Execute {
  std::string_view portal;
  int32_t max_rows = 0;
};

std::optional<Query> ParseQuery(std::span<const std::byte> body);
std::optional<Parse> ParseParse(std::span<const std::byte> body);
std::optional<Bind> ParseBind(std::span<const std::byte> body);
std::optional<BindParams> ParseBindParams(std::span<const std::byte> rest);
std::optional<Describe> ParseDescribe(std::span<const std::byte> body);
std::optional<Close> ParseClose(std::span<const std::byte> body);
std::optional<Execute> ParseExecute(std::span<const std::byte> body);
// PasswordMessage body: a NUL-terminated password (cleartext or md5 hash).
std::optional<std::string_view> ParsePasswordMessage(std::span<const std::byte> body);
// SASLInitialResponse: mechanism name and initial client response (-1 length = none).
struct SaslInitialResponse {
  std::string_view mechanism;
  std::span<const std::byte> data;
};
std::optional<SaslInitialResponse> ParseSaslInitialResponse(std::span<const std::byte> body);

// ---- Backend messages ----------------------------------------------------------------------
// Codes outside AuthCode (Kerberos 2, GSS 7/8, SSPI 9) parse with `data` = the rest of the
// body, so the caller can report the method as unsupported rather than as malformed.
// The fixed-size codes (Ok, CleartextPassword, MD5Password) reject trailing bytes; SASL
// requires a non-empty mechanism list ending in an empty string (`data` includes it).
struct Authentication {
  AuthCode code = AuthCode::kOk;
  std::span<const std::byte> data;  // md5: 4-byte salt; SASL: mechanism list / SASL data
};
struct BackendKeyData {
  int32_t pid = 0;
  int32_t secret = 0;
};
struct ParameterStatus {
  std::string_view name;
  std::string_view value;
};
// ErrorResponse and NoticeResponse: (field code, value) pairs. Codes per
// https://www.postgresql.org/docs/15/protocol-error-fields.html ('S','V','C','M','D','H',...).
struct ErrorFields {
  std::vector<std::pair<char, std::string_view>> fields;
  std::string_view Get(char code) const {
    for (const auto& [c, v] : fields)
      if (c == code) return v;
    return {};
  }
  std::string_view sqlstate() const { return Get('C'); }
  std::string_view message() const { return Get('M'); }
};
struct RowField {
  std::string_view name;
  uint32_t table_oid = 0;
  int16_t column = 0;
  uint32_t type_oid = 0;
  int16_t type_size = 0;
  int32_t type_modifier = 0;
  int16_t format = 0;
};

std::optional<Authentication> ParseAuthentication(std::span<const std::byte> body);
std::optional<BackendKeyData> ParseBackendKeyData(std::span<const std::byte> body);
std::optional<ParameterStatus> ParseParameterStatus(std::span<const std::byte> body);
std::optional<char> ParseReadyForQuery(std::span<const std::byte> body);  // 'I', 'T' or 'E'
std::optional<ErrorFields> ParseErrorFields(std::span<const std::byte> body);
std::optional<std::string_view> ParseCommandComplete(std::span<const std::byte> body);
std::optional<std::vector<RowField>> ParseRowDescription(std::span<const std::byte> body);
// RowDescription and DataRow reject a negative column count (servers send at most 1664).
// DataRow: column values, nullopt for NULL.
std::optional<std::vector<std::optional<std::span<const std::byte>>>> ParseDataRow(
    std::span<const std::byte> body);

// ---- Writers -------------------------------------------------------------------------------
// Frontend
void WriteStartupMessage(Buffer& out,
                         std::span<const std::pair<std::string_view, std::string_view>> params);
void WriteSslRequest(Buffer& out);
void WriteCancelRequest(Buffer& out, int32_t pid, int32_t secret);
void WritePasswordMessage(Buffer& out, std::string_view password);
void WriteSaslInitialResponse(Buffer& out, std::string_view mechanism, std::string_view data);
void WriteSaslResponse(Buffer& out, std::string_view data);
void WriteQuery(Buffer& out, std::string_view sql);
// At most 65535 parameter types (the count is a 16-bit field).
void WriteParse(Buffer& out, std::string_view name, std::string_view query,
                std::span<const uint32_t> param_types);
// Parse with the parameter types copied from a parsed client Parse message.
void WriteParse(Buffer& out, std::string_view name, const Parse& like);
// Bind with a different statement name and everything else copied from `bind`.
void WriteBind(Buffer& out, std::string_view portal, std::string_view statement,
               std::span<const std::byte> rest);
// Bind of the parameters $n for n in `subset` (1-based, each < params.values.size() + 1),
// renumbered $1, $2... in that order, with the result formats of `params`.
void WriteBind(Buffer& out, std::string_view portal, std::string_view statement,
               const BindParams& params, std::span<const int> subset);
void WriteDescribe(Buffer& out, char kind, std::string_view name);
void WriteClose(Buffer& out, char kind, std::string_view name);
void WriteExecute(Buffer& out, std::string_view portal, int32_t max_rows);
void WriteSync(Buffer& out);
void WriteFlush(Buffer& out);
void WriteTerminate(Buffer& out);
void WriteCopyData(Buffer& out, std::span<const std::byte> data);
void WriteCopyDone(Buffer& out);
void WriteCopyFail(Buffer& out, std::string_view message);

// Backend
void WriteAuthenticationOk(Buffer& out);
void WriteAuthenticationCleartext(Buffer& out);
void WriteAuthenticationMd5(Buffer& out, std::span<const std::byte, 4> salt);
void WriteAuthenticationSasl(Buffer& out, std::span<const std::string_view> mechanisms);
void WriteAuthenticationSaslContinue(Buffer& out, std::string_view data);
void WriteAuthenticationSaslFinal(Buffer& out, std::string_view data);
void WriteBackendKeyData(Buffer& out, int32_t pid, int32_t secret);
void WriteParameterStatus(Buffer& out, std::string_view name, std::string_view value);
void WriteReadyForQuery(Buffer& out, char status);
enum class Severity { kError, kFatal, kWarning, kNotice, kInfo, kLog };
// ErrorResponse ('E'). detail/hint may be empty (then omitted).
void WriteErrorResponse(Buffer& out, Severity severity, std::string_view sqlstate,
                        std::string_view message, std::string_view detail = {},
                        std::string_view hint = {});
// NoticeResponse ('N'), same fields.
void WriteNoticeResponse(Buffer& out, Severity severity, std::string_view sqlstate,
                         std::string_view message, std::string_view detail = {},
                         std::string_view hint = {});
// RowDescription with every column of type text (OID 25), text format.
void WriteRowDescriptionText(Buffer& out, std::span<const std::string_view> columns);
void WriteRowDescription(Buffer& out, std::span<const RowField> fields);
// DataRow; nullopt is NULL.
void WriteDataRow(Buffer& out, std::span<const std::optional<std::string_view>> values);
void WriteCommandComplete(Buffer& out, std::string_view tag);
void WriteEmptyQueryResponse(Buffer& out);
void WriteParseComplete(Buffer& out);
void WriteBindComplete(Buffer& out);
void WriteCloseComplete(Buffer& out);
void WriteNoData(Buffer& out);
void WriteSslResponse(Buffer& out, bool accept);  // single byte 'S' or 'N' (not a message)
// NegotiateProtocolVersion ('v'): the newest supported version 3.<newest_minor> (written as
// the full version number, as PostgreSQL does) and the startup options ("_pq_.*") that were
// not recognised. Sent by a server that got a StartupMessage for 3.x with x > 0 before it
// continues with 3.<newest_minor>.
void WriteNegotiateProtocolVersion(Buffer& out, int32_t newest_minor,
                                   std::span<const std::string_view> unrecognized_options);

}  // namespace pgring::protocol
