// Asio configuration shared by proxy/: C++20 coroutines and the awaitable operators
// used for deadlines (`co_await (op || timer.async_wait())`).
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>
#include <exception>
#include <string_view>

#include "spdlog/spdlog.h"

namespace pgring::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
// Completion token that returns (error_code, result...) as a tuple instead of throwing:
// expected network failures are values on the data path.
inline constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
using Clock = std::chrono::steady_clock;
// A TCP socket bound to an io_context's executor (8 bytes) rather than to the
// type-erased any_io_executor (56 bytes, and an indirect call per operation): every
// pgring socket lives on one worker's io_context.
using TcpSocket = asio::basic_stream_socket<tcp, asio::io_context::executor_type>;

// The io_context a coroutine runs on (every pgring coroutine runs on one).
inline asio::io_context& IoContextOf(const asio::any_io_executor& ex) {
  return static_cast<asio::io_context&>(asio::query(ex, asio::execution::context));
}

// A co_spawn completion handler that logs the exception a coroutine ended with, holding
// `keep` (e.g. the shared_ptr of the object whose member coroutine runs) until then:
//   asio::co_spawn(io, session->Run(), LogEnd("client session", session));
template <typename Keep = std::nullptr_t>
auto LogEnd(std::string_view what, Keep keep = nullptr) {
  return [what, keep = std::move(keep)](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("{} ended with an exception: {}", what, ex.what());
    }
  };
}

}  // namespace pgring::proxy

// Returns from a coroutine when `expr` (an absl::Status) is not OK.
#define PGRING_CO_RETURN_IF_ERROR(expr)          \
  do {                                           \
    if (auto _st = (expr); !_st.ok()) co_return _st; \
  } while (0)
