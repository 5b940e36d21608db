#include "protocol/messages.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "protocol/buffer.h"
#include "protocol/frame.h"
#include "test_util.h"

namespace pgring::protocol {
namespace {

using testing::AsBytes;
using testing::AsString;
using testing::Wire;

// The one frame a writer produced; fails the test unless the buffer holds exactly that.
Frame OnlyFrame(const Buffer& out, char type) {
  FrameResult r = ParseTypedFrame(out.Readable());
  REQUIRE(r.status == FrameStatus::kComplete);
  REQUIRE(r.frame.type == type);
  REQUIRE(r.frame.size == out.size());
  return r.frame;
}

std::string Text(std::optional<std::span<const std::byte>> v) { return AsString(*v); }

// ---- Frontend -------------------------------------------------------------------------------

TEST_CASE("Query: round trip and malformed bodies", "[messages][frontend]") {
  Buffer out;
  WriteQuery(out, "select 1; select 2");
  Frame f = OnlyFrame(out, fe::kQuery);
  auto q = ParseQuery(f.body);
  REQUIRE(q);
  CHECK(q->sql == "select 1; select 2");
  CHECK(testing::Within(q->sql, f.body));

  CHECK_FALSE(ParseQuery({}));                                      // empty
  CHECK_FALSE(ParseQuery(AsBytes("s")));                            // one byte, no NUL
  CHECK_FALSE(ParseQuery(AsBytes("select 1")));                     // missing NUL
  CHECK_FALSE(ParseQuery(Wire().Str("select 1").U8('x').bytes()));  // trailing garbage
  auto empty = ParseQuery(Wire().Str("").bytes());
  REQUIRE(empty);
  CHECK(empty->sql.empty());
}

TEST_CASE("Parse: round trip, counts and trailing bytes", "[messages][frontend]") {
  Buffer out;
  const uint32_t types[] = {23, 0, 3802, 0xfffffff0u};
  WriteParse(out, "stmt", "select $1, $2, $3, $4", types);
  Frame f = OnlyFrame(out, fe::kParse);
  auto p = ParseParse(f.body);
  REQUIRE(p);
  CHECK(p->name == "stmt");
  CHECK(p->query == "select $1, $2, $3, $4");
  REQUIRE(p->num_param_types == 4);
  for (int i = 0; i < 4; ++i) CHECK(p->ParamType(i) == types[i]);
  CHECK(p->ParamType(4) == 0);
  CHECK(p->ParamType(-1) == 0);

  // Re-encoding under another name keeps query and types.
  Buffer again;
  WriteParse(again, "pgring_1", *p);
  auto p2 = ParseParse(OnlyFrame(again, fe::kParse).body);
  REQUIRE(p2);
  CHECK(p2->name == "pgring_1");
  CHECK(p2->query == p->query);
  CHECK(AsString(p2->param_types) == AsString(p->param_types));

  auto none = ParseParse(Wire().Str("").Str("select 1").I16(0).bytes());
  REQUIRE(none);
  CHECK(none->num_param_types == 0);
  CHECK(none->name.empty());

  CHECK_FALSE(ParseParse({}));
  CHECK_FALSE(ParseParse(AsBytes("s")));
  CHECK_FALSE(ParseParse(Wire().Str("s").Str("q").bytes()));                       // no count
  CHECK_FALSE(ParseParse(Wire().Str("s").Str("q").U8(0).bytes()));                 // half a count
  CHECK_FALSE(ParseParse(Wire().Str("s").Raw("q").bytes()));                       // missing NUL
  CHECK_FALSE(ParseParse(Wire().Str("s").Str("q").I16(1).Raw("abc").bytes()));     // short OID
  CHECK_FALSE(ParseParse(Wire().Str("s").Str("q").I16(1).I32(23).U8(0).bytes()));  // trailing
  CHECK_FALSE(ParseParse(Wire().Str("s").Str("q").I16(0xffff).I32(23).bytes()));   // count > rest
}

TEST_CASE("Parse: counts above 32767 are valid (unsigned, as PostgreSQL reads them)",
          "[messages][frontend]") {
  std::vector<uint32_t> types(40000, 25);
  types.back() = 20;
  Buffer out;
  WriteParse(out, "", "insert ...", types);
  auto p = ParseParse(OnlyFrame(out, fe::kParse).body);
  REQUIRE(p);
  CHECK(p->num_param_types == 40000);
  CHECK(p->ParamType(0) == 25);
  CHECK(p->ParamType(39999) == 20);
}

std::string BindRest() {
  return Wire()
      .I16(2)
      .I16(0)
      .I16(1)  // two parameter formats
      .I16(2)
      .I32(2)
      .Raw("42")
      .I32(-1)  // "42" and NULL
      .I16(1)
      .I16(1)  // one result format
      .str();
}

TEST_CASE("Bind: round trip keeps rest unchanged", "[messages][frontend]") {
  const std::string rest = BindRest();
  Buffer out;
  WriteBind(out, "portal", "stmt", AsBytes(rest));
  Frame f = OnlyFrame(out, fe::kBind);
  auto b = ParseBind(f.body);
  REQUIRE(b);
  CHECK(b->portal == "portal");
  CHECK(b->statement == "stmt");
  CHECK(AsString(b->rest) == rest);

  Buffer renamed;
  WriteBind(renamed, b->portal, "pgring_7", b->rest);
  auto b2 = ParseBind(OnlyFrame(renamed, fe::kBind).body);
  REQUIRE(b2);
  CHECK(b2->statement == "pgring_7");
  CHECK(AsString(b2->rest) == rest);

  CHECK_FALSE(ParseBind({}));
  CHECK_FALSE(ParseBind(AsBytes("p")));
  CHECK_FALSE(ParseBind(Wire().Str("p").Raw("stm").bytes()));
}

TEST_CASE("ParseBindParams: formats, values, NULL and result formats", "[messages][frontend]") {
  const std::string rest = BindRest();
  auto p = ParseBindParams(AsBytes(rest));
  REQUIRE(p);
  CHECK(p->formats == decltype(p->formats){0, 1});
  REQUIRE(p->values.size() == 2);
  CHECK(Text(p->values[0]) == "42");
  CHECK_FALSE(p->values[1].has_value());
  CHECK(p->result_formats == decltype(p->result_formats){1});
  CHECK(p->FormatOf(0) == 0);
  CHECK(p->FormatOf(1) == 1);

  // One format applies to all; none means text.
  auto one =
      ParseBindParams(Wire().I16(1).I16(1).I16(3).I32(0).I32(1).Raw("x").I32(-1).I16(0).bytes());
  REQUIRE(one);
  CHECK(one->FormatOf(2) == 1);
  REQUIRE(one->values.size() == 3);
  CHECK(one->values[0].has_value());
  CHECK(one->values[0]->empty());  // empty string, not NULL
  auto none = ParseBindParams(Wire().I16(0).I16(0).I16(0).bytes());
  REQUIRE(none);
  CHECK(none->values.empty());
  CHECK(none->FormatOf(5) == 0);
}

TEST_CASE("ParseBindParams: malformed", "[messages][frontend]") {
  CHECK_FALSE(ParseBindParams({}));
  CHECK_FALSE(ParseBindParams(AsBytes(std::string(1, '\0'))));
  CHECK_FALSE(ParseBindParams(Wire().I16(0).bytes()));         // no value count
  CHECK_FALSE(ParseBindParams(Wire().I16(0).I16(0).bytes()));  // no result format count
  // Value length -2 (only -1 means NULL).
  CHECK_FALSE(ParseBindParams(Wire().I16(0).I16(1).I32(-2).I16(0).bytes()));
  // Value longer than what is left.
  CHECK_FALSE(ParseBindParams(Wire().I16(0).I16(1).I32(10).Raw("abc").I16(0).bytes()));
  CHECK_FALSE(ParseBindParams(Wire().I16(0).I16(1).I32(0x7fffffff).I16(0).bytes()));
  // Counts larger than the remaining bytes.
  CHECK_FALSE(ParseBindParams(Wire().I16(0xffff).I16(0).bytes()));
  CHECK_FALSE(ParseBindParams(Wire().I16(0).I16(0xffff).I32(-1).I16(0).bytes()));
  CHECK_FALSE(ParseBindParams(Wire().I16(0).I16(0).I16(3).I16(0).bytes()));
  // Two formats for three values.
  CHECK_FALSE(
      ParseBindParams(Wire().I16(2).I16(0).I16(0).I16(3).I32(-1).I32(-1).I32(-1).I16(0).bytes()));
  // Trailing garbage.
  CHECK_FALSE(ParseBindParams(Wire().I16(0).I16(0).I16(0).U8(0).bytes()));
}

TEST_CASE("Describe and Close: round trip and malformed", "[messages][frontend]") {
  Buffer out;
  WriteDescribe(out, 'S', "stmt");
  auto d = ParseDescribe(OnlyFrame(out, fe::kDescribe).body);
  REQUIRE(d);
  CHECK(d->kind == 'S');
  CHECK(d->name == "stmt");

  out.Clear();
  WriteClose(out, 'P', "");
  auto c = ParseClose(OnlyFrame(out, fe::kClose).body);
  REQUIRE(c);
  CHECK(c->kind == 'P');
  CHECK(c->name.empty());

  for (auto parse : {ParseDescribe, ParseClose}) {
    CHECK_FALSE(parse({}));
    CHECK_FALSE(parse(AsBytes("S")));                           // no name
    CHECK_FALSE(parse(Wire().U8('S').Raw("name").bytes()));     // missing NUL
    CHECK_FALSE(parse(Wire().U8('X').Str("name").bytes()));     // bad kind
    CHECK_FALSE(parse(Wire().U8('S').Str("n").U8(0).bytes()));  // trailing
  }
}

TEST_CASE("Execute: round trip and malformed", "[messages][frontend]") {
  Buffer out;
  WriteExecute(out, "portal", 100);
  auto e = ParseExecute(OnlyFrame(out, fe::kExecute).body);
  REQUIRE(e);
  CHECK(e->portal == "portal");
  CHECK(e->max_rows == 100);
  CHECK_FALSE(ParseExecute({}));
  CHECK_FALSE(ParseExecute(AsBytes(std::string(1, '\0'))));
  CHECK_FALSE(ParseExecute(Wire().Str("").I16(0).bytes()));
  CHECK_FALSE(ParseExecute(Wire().Str("").I32(0).U8(0).bytes()));
  CHECK_FALSE(ParseExecute(Wire().Raw("portal").I32(0).bytes()));  // no NUL before the Int32
}

TEST_CASE("PasswordMessage and SASL responses", "[messages][frontend]") {
  Buffer out;
  WritePasswordMessage(out, "md5abcdef");
  auto pw = ParsePasswordMessage(OnlyFrame(out, fe::kPassword).body);
  REQUIRE(pw);
  CHECK(*pw == "md5abcdef");
  CHECK_FALSE(ParsePasswordMessage({}));
  CHECK_FALSE(ParsePasswordMessage(AsBytes("secret")));
  CHECK_FALSE(ParsePasswordMessage(Wire().Str("a").Str("b").bytes()));

  out.Clear();
  WriteSaslInitialResponse(out, "SCRAM-SHA-256", "n,,n=,r=abc");
  auto init = ParseSaslInitialResponse(OnlyFrame(out, fe::kPassword).body);
  REQUIRE(init);
  CHECK(init->mechanism == "SCRAM-SHA-256");
  CHECK(AsString(init->data) == "n,,n=,r=abc");

  auto no_data = ParseSaslInitialResponse(Wire().Str("SCRAM-SHA-256").I32(-1).bytes());
  REQUIRE(no_data);
  CHECK(no_data->data.empty());
  CHECK_FALSE(ParseSaslInitialResponse({}));
  CHECK_FALSE(ParseSaslInitialResponse(Wire().Str("SCRAM-SHA-256").bytes()));
  CHECK_FALSE(ParseSaslInitialResponse(Wire().Str("SCRAM-SHA-256").I32(-2).bytes()));
  CHECK_FALSE(ParseSaslInitialResponse(Wire().Str("SCRAM-SHA-256").I32(5).Raw("abcd").bytes()));
  CHECK_FALSE(ParseSaslInitialResponse(Wire().Str("SCRAM-SHA-256").I32(1).Raw("ab").bytes()));
  CHECK_FALSE(ParseSaslInitialResponse(Wire().Raw("SCRAM").bytes()));

  out.Clear();
  WriteSaslResponse(out, "c=biws,r=abc,p=xyz");
  CHECK(AsString(OnlyFrame(out, fe::kPassword).body) == "c=biws,r=abc,p=xyz");
}

TEST_CASE("Frontend messages without a body", "[messages][frontend]") {
  Buffer out;
  WriteSync(out);
  WriteFlush(out);
  WriteTerminate(out);
  WriteCopyDone(out);
  CHECK(AsString(out) == std::string("S\0\0\0\x04H\0\0\0\x04X\0\0\0\x04"
                                     "c\0\0\0\x04",
                                     20));

  out.Clear();
  WriteCopyData(out, AsBytes(std::string("a\0b", 3)));
  CHECK(AsString(OnlyFrame(out, fe::kCopyData).body) == std::string("a\0b", 3));
  out.Clear();
  WriteCopyFail(out, "client gave up");
  CHECK(AsString(OnlyFrame(out, fe::kCopyFail).body) == Wire().Str("client gave up").str());
}

// ---- Backend --------------------------------------------------------------------------------

TEST_CASE("Authentication: every writer round-trips", "[messages][backend]") {
  Buffer out;
  WriteAuthenticationOk(out);
  CHECK(AsString(out) == std::string("R\0\0\0\x08\0\0\0\0", 9));
  auto ok = ParseAuthentication(OnlyFrame(out, be::kAuthentication).body);
  REQUIRE(ok);
  CHECK(ok->code == AuthCode::kOk);

  out.Clear();
  WriteAuthenticationCleartext(out);
  auto clear = ParseAuthentication(OnlyFrame(out, be::kAuthentication).body);
  REQUIRE(clear);
  CHECK(clear->code == AuthCode::kCleartextPassword);

  out.Clear();
  const std::byte salt[4] = {std::byte{1}, std::byte{2}, std::byte{0}, std::byte{0xff}};
  WriteAuthenticationMd5(out, salt);
  auto md5 = ParseAuthentication(OnlyFrame(out, be::kAuthentication).body);
  REQUIRE(md5);
  CHECK(md5->code == AuthCode::kMd5Password);
  REQUIRE(md5->data.size() == 4);
  CHECK(std::memcmp(md5->data.data(), salt, 4) == 0);

  out.Clear();
  const std::string_view mechs[] = {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"};
  WriteAuthenticationSasl(out, mechs);
  auto sasl = ParseAuthentication(OnlyFrame(out, be::kAuthentication).body);
  REQUIRE(sasl);
  CHECK(sasl->code == AuthCode::kSasl);
  CHECK(AsString(sasl->data) == Wire().Str("SCRAM-SHA-256-PLUS").Str("SCRAM-SHA-256").U8(0).str());

  out.Clear();
  WriteAuthenticationSaslContinue(out, "r=abc,s=c2FsdA==,i=4096");
  auto cont = ParseAuthentication(OnlyFrame(out, be::kAuthentication).body);
  REQUIRE(cont);
  CHECK(cont->code == AuthCode::kSaslContinue);
  CHECK(AsString(cont->data) == "r=abc,s=c2FsdA==,i=4096");

  out.Clear();
  WriteAuthenticationSaslFinal(out, "v=xyz");
  auto fin = ParseAuthentication(OnlyFrame(out, be::kAuthentication).body);
  REQUIRE(fin);
  CHECK(fin->code == AuthCode::kSaslFinal);
  CHECK(AsString(fin->data) == "v=xyz");
}

TEST_CASE("Authentication: malformed and unsupported codes", "[messages][backend]") {
  CHECK_FALSE(ParseAuthentication({}));
  CHECK_FALSE(ParseAuthentication(AsBytes(std::string(1, '\0'))));
  CHECK_FALSE(ParseAuthentication(Wire().I32(0).U8(0).bytes()));       // Ok with trailing
  CHECK_FALSE(ParseAuthentication(Wire().I32(3).U8(0).bytes()));       // Cleartext with trailing
  CHECK_FALSE(ParseAuthentication(Wire().I32(5).Raw("abc").bytes()));  // 3-byte salt
  CHECK_FALSE(ParseAuthentication(Wire().I32(5).Raw("abcde").bytes()));
  CHECK_FALSE(ParseAuthentication(Wire().I32(10).U8(0).bytes()));                 // no mechanism
  CHECK_FALSE(ParseAuthentication(Wire().I32(10).Str("SCRAM-SHA-256").bytes()));  // no end
  CHECK_FALSE(ParseAuthentication(Wire().I32(10).Raw("SCRAM").bytes()));          // missing NUL
  CHECK_FALSE(ParseAuthentication(Wire().I32(10).Str("SCRAM-SHA-256").U8(0).U8(1).bytes()));
  // GSSAPI: reported with its code so the caller can say "unsupported method".
  auto gss = ParseAuthentication(Wire().I32(7).bytes());
  REQUIRE(gss);
  CHECK(static_cast<int32_t>(gss->code) == 7);
}

TEST_CASE("BackendKeyData, ParameterStatus, ReadyForQuery", "[messages][backend]") {
  Buffer out;
  WriteBackendKeyData(out, 1234, -99);
  auto key = ParseBackendKeyData(OnlyFrame(out, be::kBackendKeyData).body);
  REQUIRE(key);
  CHECK(key->pid == 1234);
  CHECK(key->secret == -99);
  CHECK_FALSE(ParseBackendKeyData({}));
  CHECK_FALSE(ParseBackendKeyData(Wire().I32(1).Raw("abc").bytes()));
  CHECK_FALSE(ParseBackendKeyData(Wire().I32(1).I32(2).U8(0).bytes()));

  out.Clear();
  WriteParameterStatus(out, "server_version", "15.6");
  auto ps = ParseParameterStatus(OnlyFrame(out, be::kParameterStatus).body);
  REQUIRE(ps);
  CHECK(ps->name == "server_version");
  CHECK(ps->value == "15.6");
  CHECK_FALSE(ParseParameterStatus({}));
  CHECK_FALSE(ParseParameterStatus(Wire().Str("name").bytes()));
  CHECK_FALSE(ParseParameterStatus(Wire().Str("name").Raw("value").bytes()));
  CHECK_FALSE(ParseParameterStatus(Wire().Str("name").Str("value").U8(0).bytes()));

  for (char status : {'I', 'T', 'E'}) {
    out.Clear();
    WriteReadyForQuery(out, status);
    CHECK(ParseReadyForQuery(OnlyFrame(out, be::kReadyForQuery).body) == status);
  }
  CHECK_FALSE(ParseReadyForQuery({}));
  CHECK_FALSE(ParseReadyForQuery(AsBytes("X")));
  CHECK_FALSE(ParseReadyForQuery(AsBytes("II")));
}

TEST_CASE("ErrorResponse: exact bytes", "[messages][backend]") {
  Buffer out;
  WriteErrorResponse(out, Severity::kFatal, "28P01", "password authentication failed");
  const std::string expected = Wire()
                                   .U8('S')
                                   .Str("FATAL")
                                   .U8('V')
                                   .Str("FATAL")
                                   .U8('C')
                                   .Str("28P01")
                                   .U8('M')
                                   .Str("password authentication failed")
                                   .U8(0)
                                   .Frame('E');
  CHECK(AsString(out) == expected);

  out.Clear();
  WriteNoticeResponse(out, Severity::kWarning, "01000", "m", "d", "h");
  CHECK(AsString(out) == Wire()
                             .U8('S')
                             .Str("WARNING")
                             .U8('V')
                             .Str("WARNING")
                             .U8('C')
                             .Str("01000")
                             .U8('M')
                             .Str("m")
                             .U8('D')
                             .Str("d")
                             .U8('H')
                             .Str("h")
                             .U8(0)
                             .Frame('N'));
}

TEST_CASE("ErrorResponse: round trip through ParseErrorFields", "[messages][backend]") {
  const std::pair<Severity, std::string_view> severities[] = {
      {Severity::kError, "ERROR"},   {Severity::kFatal, "FATAL"}, {Severity::kWarning, "WARNING"},
      {Severity::kNotice, "NOTICE"}, {Severity::kInfo, "INFO"},   {Severity::kLog, "LOG"}};
  for (const auto& [severity, text] : severities) {
    Buffer out;
    WriteErrorResponse(out, severity, "42P01", "relation \"t\" does not exist", "", "create it");
    auto e = ParseErrorFields(OnlyFrame(out, be::kErrorResponse).body);
    REQUIRE(e);
    CHECK(e->Get('S') == text);
    CHECK(e->Get('V') == text);
    CHECK(e->sqlstate() == "42P01");
    CHECK(e->message() == "relation \"t\" does not exist");
    CHECK(e->Get('H') == "create it");
    CHECK(e->fields.size() == 5);  // empty detail omitted
  }
}

TEST_CASE("ParseErrorFields: malformed", "[messages][backend]") {
  CHECK_FALSE(ParseErrorFields({}));  // no terminator
  auto only_end = ParseErrorFields(Wire().U8(0).bytes());
  REQUIRE(only_end);
  CHECK(only_end->fields.empty());
  CHECK_FALSE(ParseErrorFields(AsBytes("S")));                         // one byte
  CHECK_FALSE(ParseErrorFields(Wire().U8('S').Raw("ERROR").bytes()));  // missing NUL
  CHECK_FALSE(ParseErrorFields(Wire().U8('S').Str("ERROR").bytes()));  // no terminator
  CHECK_FALSE(ParseErrorFields(Wire().U8('S').Str("ERROR").U8(0).U8('x').bytes()));  // trailing
}

TEST_CASE("CommandComplete and empty backend messages", "[messages][backend]") {
  Buffer out;
  WriteCommandComplete(out, "INSERT 0 3");
  CHECK(ParseCommandComplete(OnlyFrame(out, be::kCommandComplete).body) == "INSERT 0 3");
  CHECK_FALSE(ParseCommandComplete({}));
  CHECK_FALSE(ParseCommandComplete(AsBytes("SELECT 1")));
  CHECK_FALSE(ParseCommandComplete(Wire().Str("SELECT 1").U8(0).bytes()));

  out.Clear();
  WriteEmptyQueryResponse(out);
  WriteParseComplete(out);
  WriteBindComplete(out);
  WriteCloseComplete(out);
  WriteNoData(out);
  CHECK(AsString(out) == std::string("I\0\0\0\x04"
                                     "1\0\0\0\x04"
                                     "2\0\0\0\x04"
                                     "3\0\0\0\x04n\0\0\0\x04",
                                     25));
}

TEST_CASE("RowDescription: round trip and malformed", "[messages][backend]") {
  Buffer out;
  const std::string_view columns[] = {"shard", "state"};
  WriteRowDescriptionText(out, columns);
  auto text = ParseRowDescription(OnlyFrame(out, be::kRowDescription).body);
  REQUIRE(text);
  REQUIRE(text->size() == 2);
  CHECK((*text)[1].name == "state");
  CHECK((*text)[1].type_oid == 25);
  CHECK((*text)[1].type_size == -1);
  CHECK((*text)[1].type_modifier == -1);
  CHECK((*text)[1].format == 0);

  RowField a;
  a.name = "id";
  a.table_oid = 0xfffffffe;
  a.column = 1;
  a.type_oid = 20;
  a.type_size = 8;
  a.type_modifier = -1;
  a.format = 1;
  RowField b;
  b.name = "";
  const RowField fields[] = {a, b};
  out.Clear();
  WriteRowDescription(out, fields);
  auto rd = ParseRowDescription(OnlyFrame(out, be::kRowDescription).body);
  REQUIRE(rd);
  REQUIRE(rd->size() == 2);
  const RowField& got = (*rd)[0];
  CHECK(got.name == "id");
  CHECK(got.table_oid == 0xfffffffe);
  CHECK(got.column == 1);
  CHECK(got.type_oid == 20);
  CHECK(got.type_size == 8);
  CHECK(got.type_modifier == -1);
  CHECK(got.format == 1);
  CHECK((*rd)[1].name.empty());

  auto zero = ParseRowDescription(Wire().I16(0).bytes());
  REQUIRE(zero);
  CHECK(zero->empty());
  CHECK_FALSE(ParseRowDescription({}));
  CHECK_FALSE(ParseRowDescription(AsBytes(std::string(1, '\0'))));
  CHECK_FALSE(ParseRowDescription(Wire().I16(-1).bytes()));  // negative count
  CHECK_FALSE(ParseRowDescription(Wire().I16(1).bytes()));   // count > rest
  CHECK_FALSE(ParseRowDescription(Wire().I16(0x7fff).Raw(std::string(100, '\0')).bytes()));
  // A field cut short, and a name without NUL.
  CHECK_FALSE(
      ParseRowDescription(Wire().I16(1).Str("id").I32(0).I16(0).I32(23).I16(4).I32(-1).bytes()));
  CHECK_FALSE(ParseRowDescription(Wire().I16(1).Raw(std::string(19, 'x')).bytes()));
  // Trailing garbage.
  CHECK_FALSE(ParseRowDescription(
      Wire().I16(1).Str("id").I32(0).I16(0).I32(23).I16(4).I32(-1).I16(0).U8(0).bytes()));
}

TEST_CASE("DataRow: round trip with NULL and empty values", "[messages][backend]") {
  Buffer out;
  const std::optional<std::string_view> values[] = {"1", std::nullopt, "",
                                                    std::string_view("a\0b", 3)};
  WriteDataRow(out, values);
  Frame f = OnlyFrame(out, be::kDataRow);
  auto row = ParseDataRow(f.body);
  REQUIRE(row);
  REQUIRE(row->size() == 4);
  CHECK(Text((*row)[0]) == "1");
  CHECK_FALSE((*row)[1].has_value());
  REQUIRE((*row)[2].has_value());
  CHECK((*row)[2]->empty());
  CHECK(Text((*row)[3]) == std::string("a\0b", 3));
  CHECK(testing::Within(*(*row)[3], f.body));
}

TEST_CASE("DataRow: malformed", "[messages][backend]") {
  CHECK_FALSE(ParseDataRow({}));
  CHECK_FALSE(ParseDataRow(AsBytes(std::string(1, '\0'))));
  CHECK_FALSE(ParseDataRow(Wire().I16(-1).bytes()));                   // negative count
  CHECK_FALSE(ParseDataRow(Wire().I16(2).I32(-1).bytes()));            // count > rest
  CHECK_FALSE(ParseDataRow(Wire().I16(1).I32(-2).bytes()));            // bad length
  CHECK_FALSE(ParseDataRow(Wire().I16(1).I32(4).Raw("abc").bytes()));  // short value
  CHECK_FALSE(ParseDataRow(Wire().I16(1).I32(0x7fffffff).bytes()));
  CHECK_FALSE(ParseDataRow(Wire().I16(1).I32(1).Raw("ab").bytes()));  // trailing
  auto empty = ParseDataRow(Wire().I16(0).bytes());
  REQUIRE(empty);
  CHECK(empty->empty());
}

TEST_CASE("SslResponse and NegotiateProtocolVersion", "[messages][backend]") {
  Buffer out;
  WriteSslResponse(out, true);
  WriteSslResponse(out, false);
  CHECK(AsString(out) == "SN");

  out.Clear();
  const std::string_view unknown[] = {"_pq_.compression"};
  WriteNegotiateProtocolVersion(out, 0, unknown);
  CHECK(AsString(out) == Wire().I32(3 << 16).I32(1).Str("_pq_.compression").Frame('v'));
}

}  // namespace
}  // namespace pgring::protocol
