// libFuzzer target: the startup and authentication path. The input starts with a
// startup-phase frame (StartupMessage, SSLRequest, CancelRequest, ...); the rest drives
// one SCRAM-SHA-256 exchange on the server side, either as two 'p' frames
// (SASLInitialResponse, SASLResponse) as a client sends them, or, when it does not frame,
// as client-first and client-final separated by the first '\n'.
//
// The server has the RFC 7677 example verifier and server nonce, so the seed corpus can
// reach a successful exchange; any other successful exchange is a finding.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "protocol/auth.h"
#include "protocol/frame.h"
#include "protocol/messages.h"

namespace pgring::protocol {
namespace {

constexpr std::string_view kServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kGoodClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kGoodClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

const ScramVerifier& Verifier() {
  static const ScramVerifier v = MakeScramVerifier(
      "pencil", 4096,
      std::string_view("\x5b\x6d\x99\x68\x9d\x12\x35\x8e\xec\xa0\x4b\x14\x12\x36\xfa\x81", 16));
  return v;
}

std::string_view AsText(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

void DriveScram(std::string_view client_first, std::string_view client_final) {
  ScramServer server(Verifier(), std::string(kServerNonce));
  auto server_first = server.HandleClientFirst(client_first);
  if (!server_first.ok()) return;
  auto server_final = server.HandleClientFinal(client_final);
  if (server_final.ok() && (client_first != kGoodClientFirst || client_final != kGoodClientFinal)) {
    __builtin_trap();  // authenticated without the password's proof
  }
}

}  // namespace
}  // namespace pgring::protocol

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pgring::protocol;
  auto buf = std::as_bytes(std::span(data, size));
  const FrameResult startup = ParseStartupFrame(buf);
  if (startup.status != FrameStatus::kComplete) return 0;
  if (auto packet = ParseStartupPacket(startup.frame.body)) {
    for (const auto& [key, value] : packet->startup.params) {
      if (key.empty()) __builtin_trap();  // the empty key is the terminator
      (void)value;
    }
    (void)packet->startup.Get("user");
  }
  buf = buf.subspan(startup.frame.size);

  const FrameResult first = ParseTypedFrame(buf);
  if (first.status == FrameStatus::kComplete && first.frame.type == fe::kPassword) {
    const auto initial = ParseSaslInitialResponse(first.frame.body);
    const FrameResult second = ParseTypedFrame(buf.subspan(first.frame.size));
    if (initial && second.status == FrameStatus::kComplete) {
      DriveScram(AsText(initial->data), AsText(second.frame.body));
    }
    return 0;
  }
  const std::string_view rest = AsText(buf);
  const size_t newline = rest.find('\n');
  if (newline == std::string_view::npos) {
    DriveScram(rest, {});
  } else {
    DriveScram(rest.substr(0, newline), rest.substr(newline + 1));
  }
  return 0;
}
