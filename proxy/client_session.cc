#include "proxy/client_session.h"

#include "proxy/str.h"
#include "protocol/messages.h"
#include "protocol/sql_error.h"
#include "proxy/frame_io.h"
#include "proxy/proxy.h"
#include "proxy/worker.h"
#include "spdlog/spdlog.h"

namespace pgring::proxy {
namespace {

using namespace asio::experimental::awaitable_operators;
using protocol::SqlError;
namespace fe = protocol::fe;
namespace be = protocol::be;

std::string Bytes(void (*write)(protocol::Buffer&)) {
  protocol::Buffer b;
  write(b);
  auto r = b.Readable();
  return {reinterpret_cast<const char*>(r.data()), r.size()};
}

std::string ErrorBytes(const absl::Status& st) {
  protocol::Buffer b;
  protocol::WriteErrorResponse(b, protocol::Severity::kError, protocol::SqlStateOf(st),
                               protocol::MessageOf(st), {}, protocol::HintOf(st));
  auto r = b.Readable();
  return {reinterpret_cast<const char*>(r.data()), r.size()};
}

std::string_view TagOf(const protocol::Frame& f) {
  auto tag = protocol::ParseCommandComplete(f.body);
  return tag ? *tag : std::string_view{};
}

uint64_t Micros(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

}  // namespace

ClientSession::ClientSession(Worker& worker, tcp::socket socket)
    : worker_(worker), config_(worker.config_ptr()), stream_(std::move(socket)) {
  boost::system::error_code ec;
  auto ep = stream_.socket().remote_endpoint(ec);
  if (!ec) {
    tcp_addr_ = ep.address().to_string();
    tcp_port_ = ep.port();
  }
  stream_.socket().set_option(tcp::no_delay(true), ec);
}

ClientSession::~ClientSession() {
  if (registered_) worker_.proxy().cancels().Unregister(cancel_key_);
  if (in_registry_) worker_.RemoveSession(registry_it_);
}

awaitable<void> ClientSession::Run() {
  // The handshake runs in its own coroutine so that its frame (timer, results) is freed
  // before the long-lived Serve loop: an idle client should cost little memory.
  // (The result goes through a variable: GCC 12 miscompiles `if (!co_await ...)` here.)
  const bool ready = co_await Handshake();
  if (!ready) co_return;
  registry_it_ = worker_.AddSession(this);
  in_registry_ = true;
  co_await Serve(identity_);
  co_await Finish();
}

awaitable<bool> ClientSession::Handshake() {
  const auto& config = *config_;
  asio::steady_timer deadline(co_await asio::this_coro::executor, config.pool.startup_timeout);
  auto handshake =
      co_await (ClientHandshake(stream_, in_, config, Port::kClient, worker_.proxy().tls_context(),
                                worker_.proxy().cancels(), worker_.verifiers()) ||
                deadline.async_wait(use_nothrow));
  if (handshake.index() == 1) {
    co_await SendFatal(stream_, "08006", "startup and authentication did not finish within "
                       "pool.startup_timeout");
    stream_.Close();
    co_return false;
  }
  auto result = std::get<0>(std::move(handshake));
  if (!result.ok() || result->outcome != HandshakeOutcome::kReady) {
    stream_.Close();
    co_return false;
  }
  identity_ = std::move(result->identity);
  co_return true;
}

awaitable<void> ClientSession::Serve(const ClientIdentity& id) {
  const auto& config = *config_;
  // Startup parameters become session settings, replayed on every server connection.
  for (const auto& [k, v] : id.params) {
    if (k == "options" || k == "replication") continue;
    settings_.SetStartupParameter(k, v);
  }

  // Learn the servers' ParameterStatus values once per worker.
  if (worker_.server_parameters().empty()) {
    auto conn = co_await worker_.pool(worker_.default_shard()).Acquire();
    if (!conn.ok()) {
      co_await SendFatal(stream_, protocol::SqlStateOf(conn.status()), protocol::MessageOf(conn.status()),
                         protocol::HintOf(conn.status()));
      co_return;
    }
    worker_.LearnServerParameters((*conn)->startup_parameters());
    worker_.pool(worker_.default_shard()).Release(std::move(*conn));
  }

  std::weak_ptr<ClientSession> weak = weak_from_this();
  auto* io = &worker_.io();
  cancel_key_ = worker_.proxy().cancels().Register([weak, io] {
    asio::post(*io, [weak] {
      if (auto s = weak.lock()) s->ForwardCancel();
    });
  });
  registered_ = true;

  const bool welcomed = co_await SendWelcome(id);
  if (!welcomed) co_return;
  (void)config;

  for (;;) {
    if (in_.empty()) {
      if (!co_await WaitForClient()) co_return;
    }
    if (client_gone_) co_return;
    auto [ec, n] = co_await stream_.ReadSome(in_, 16384);
    if (ec || n == 0) co_return;
    worker_.counters().Add(worker_.counters().bytes_received, n);
    request_time_ = Clock::now();
    for (;;) {
      auto r = protocol::ParseTypedFrame(in_.Readable());
      if (r.status == protocol::FrameStatus::kNeedMore) break;
      if (r.status == protocol::FrameStatus::kInvalid) {
        worker_.counters().Add(worker_.counters().protocol_errors);
        co_await client_write_.Lock();
        protocol::Buffer err;
        protocol::WriteErrorResponse(
            err, protocol::Severity::kFatal, "08P01",
            Cat("invalid message length ", r.declared_length,
                         " (pgring accepts 4 to ", protocol::kDefaultMaxMessage, " bytes)"));
        if (!holds_server()) co_await stream_.WriteAll(err.Readable());
        client_write_.Unlock();
        co_return;
      }
      auto flow = co_await HandleMessage(r.frame);
      in_.Consume(r.frame.size);
      if (flow == Flow::kClose) co_return;
    }
    co_await FlushServer();
    if (client_gone_) co_return;
  }
}

awaitable<bool> ClientSession::SendWelcome(const ClientIdentity& id) {
  protocol::Buffer out;
  for (const auto& [name, value] : worker_.server_parameters()) {
    std::string_view v = value;
    for (const auto& [k, cv] : id.params)
      if (k == name) v = cv;
    protocol::WriteParameterStatus(out, name, v);
  }
  protocol::WriteBackendKeyData(out, cancel_key_.pid, cancel_key_.secret);
  protocol::WriteReadyForQuery(out, 'I');
  co_return co_await WriteClient(out.Readable());
}

awaitable<bool> ClientSession::WaitForClient() {
  if (close_requested_ && !holds_server()) co_return co_await SayGoodbye();
  const auto& pool = config_->pool;
  auto timeout = conf::Duration{0};
  std::string_view what;
  if (!holds_server()) {
    in_.Release();  // an idle client holds no read buffer
    timeout = pool.client_idle_timeout;
    what = "client_idle_timeout";
  } else if (link_->pending.empty() && link_->conn->tx_status != 'I') {
    timeout = pool.idle_in_transaction_timeout;
    what = "idle_in_transaction_timeout";
  }
  if (timeout.count() == 0) {
    // No deadline: a plain wait (RequestClose cancels it).
    auto ec = co_await stream_.WaitReadable();
    if (close_requested_ && !holds_server()) co_return co_await SayGoodbye();
    co_return !ec || ec == asio::error::operation_aborted;
  }
  if (!wake_) wake_ = std::make_unique<asio::steady_timer>(co_await asio::this_coro::executor);
  wake_->expires_after(std::chrono::duration_cast<Clock::duration>(timeout));
  auto r = co_await (stream_.WaitReadable() || wake_->async_wait(use_nothrow));
  if (close_requested_ && !holds_server()) co_return co_await SayGoodbye();
  if (r.index() == 0) {
    auto ec = std::get<0>(r);
    co_return !ec || ec == asio::error::operation_aborted;
  }
  co_await client_write_.Lock();
  protocol::Buffer err;
  protocol::WriteErrorResponse(err, protocol::Severity::kFatal, "25P03",
                               Cat("terminating connection: idle longer than pool.", what, " (",
                                   timeout.count(), " ms)"));
  if (!holds_server() || link_->pending.empty()) co_await stream_.WriteAll(err.Readable());
  client_write_.Unlock();
  co_return false;
}

awaitable<bool> ClientSession::SayGoodbye() {
  co_await client_write_.Lock();
  protocol::Buffer err;
  protocol::WriteErrorResponse(err, protocol::Severity::kFatal, "57P01",
                               "pgring is shutting down; reconnect to another instance");
  co_await stream_.WriteAll(err.Readable());
  client_write_.Unlock();
  co_return false;
}

void ClientSession::Push(Pending::Kind kind, uint64_t stmt_id, std::string client_stmt) {
  auto& link = *link_;
  if (link.pending.empty()) link.cycle_start = Clock::now();
  link.pending.push_back(Pending{kind, stmt_id, std::move(client_stmt), {}});
}

awaitable<void> ClientSession::Answer(std::string bytes, std::string client_stmt) {
  if (holds_server()) {
    link_->pending.push_back(
        Pending{Pending::Kind::kSynthetic, 0, std::move(client_stmt), std::move(bytes)});
    // The pump may be idle waiting for the server: emit what is at the front now.
    co_await client_write_.Lock();
    protocol::Buffer synth;
    DrainSynthetic(*link_, synth);
    if (!synth.empty() && !client_gone_) {
      if (co_await stream_.WriteAll(synth.Readable())) client_gone_ = true;
    }
    client_write_.Unlock();
    co_return;
  }
  co_await WriteClient(std::as_bytes(std::span(bytes.data(), bytes.size())));
}

awaitable<void> ClientSession::AnswerError(const absl::Status& st, bool extended) {
  worker_.counters().Add(worker_.counters().errors);
  co_await Answer(ErrorBytes(st));
  if (extended) {
    skip_until_sync_ = true;
  } else {
    // A simple query ends with ReadyForQuery; the transaction status is unchanged.
    char status = holds_server() ? link_->conn->tx_status : 'I';
    protocol::Buffer b;
    protocol::WriteReadyForQuery(b, status);
    auto r = b.Readable();
    co_await Answer(std::string(reinterpret_cast<const char*>(r.data()), r.size()));
  }
}

awaitable<bool> ClientSession::WriteClient(std::span<const std::byte> bytes) {
  co_await client_write_.Lock();
  auto ec = co_await stream_.WriteAll(bytes);
  client_write_.Unlock();
  if (ec) client_gone_ = true;
  worker_.counters().Add(worker_.counters().bytes_sent, bytes.size());
  co_return !ec;
}

void ClientSession::NoteStatementText(std::string_view sql) {
  if (auto change = ClassifySetting(sql)) cycle_setting_ = std::move(*change);
  if (!pinned_) {
    if (auto reason = SessionPinReason(sql)) {
      pinned_ = true;
      pin_reason_ = std::string(*reason);
      spdlog::debug("client {}:{} keeps its server connection: {}", tcp_addr_, tcp_port_,
                    pin_reason_);
    }
  }
  if (DropsPreparedStatements(sql)) {
    // The server forgets every prepared statement, and so does the client's session.
    link_->conn->ClearPrepared();
    statements_.clear();
  }
}

void ClientSession::EnsurePrepared(const PreparedStatement& stmt) {
  auto& conn = *link_->conn;
  if (conn.HasPrepared(stmt.id)) return;
  protocol::WriteParse(link_->out, stmt.server_name, stmt.query, stmt.param_types);
  conn.AddPrepared(stmt.id);
  Push(Pending::Kind::kInjectedParse, stmt.id);
  worker_.counters().Add(worker_.counters().prepares);
  auto cap = static_cast<size_t>(std::max(1, config_->pool.prepared_statement_cache));
  while (conn.prepared_count() > cap) {
    uint64_t victim = conn.EvictLeastRecent();
    if (victim == 0 || victim == stmt.id) break;
    protocol::WriteClose(link_->out, 'S', Cat("pgring_", victim));
    Push(Pending::Kind::kInjectedClose);
  }
}

awaitable<ClientSession::Flow> ClientSession::HandleMessage(const protocol::Frame& f) {
  const char type = f.type;
  if (skip_until_sync_ && type != fe::kSync) co_return Flow::kContinue;

  auto malformed = [&](std::string_view what) -> awaitable<Flow> {
    worker_.counters().Add(worker_.counters().protocol_errors);
    co_await client_write_.Lock();
    protocol::Buffer err;
    protocol::WriteErrorResponse(err, protocol::Severity::kFatal, "08P01",
                                 Cat("malformed ", what, " message"));
    if (!holds_server() || link_->pending.empty()) co_await stream_.WriteAll(err.Readable());
    client_write_.Unlock();
    co_return Flow::kClose;
  };
  auto need_server = [&](bool extended) -> awaitable<bool> {
    if (holds_server()) co_return true;
    auto st = co_await Attach();
    if (st.ok()) co_return true;
    co_await AnswerError(st, extended);
    co_return false;
  };

  switch (type) {
    case fe::kQuery: {
      auto q = protocol::ParseQuery(f.body);
      if (!q) co_return co_await malformed("Query");
      if (auto name = DeallocateName(q->sql); name && statements_.contains(*name)) {
        // A protocol-level statement of this client (psycopg deallocates them so).
        auto it = statements_.find(*name);
        auto stmt = it->second;
        statements_.erase(it);
        if (!holds_server()) {
          // Only the client's name goes away; the server-side statement is shared.
          protocol::Buffer b;
          protocol::WriteCommandComplete(b, "DEALLOCATE");
          protocol::WriteReadyForQuery(b, 'I');
          co_await WriteClient(b.Readable());
          co_return Flow::kContinue;
        }
        // Inside a transaction the answer must carry the server's transaction status:
        // deallocate the shared statement on this connection (others re-prepare it).
        EnsurePrepared(*stmt);
        link_->conn->RemovePrepared(stmt->id);
        protocol::WriteQuery(link_->out, Cat("DEALLOCATE ", stmt->server_name));
        Push(Pending::Kind::kQuery);
        co_return Flow::kContinue;
      }
      if (!co_await need_server(false)) co_return Flow::kContinue;
      NoteStatementText(q->sql);
      link_->out.Append(f.raw);
      Push(Pending::Kind::kQuery);
      worker_.counters().Add(worker_.counters().queries);
      co_return Flow::kContinue;
    }
    case fe::kParse: {
      auto p = protocol::ParseParse(f.body);
      if (!p) co_return co_await malformed("Parse");
      if (!co_await need_server(true)) co_return Flow::kContinue;
      NoteStatementText(p->query);
      link_->unsynced = true;
      if (p->name.empty()) {
        link_->out.Append(f.raw);
        Push(Pending::Kind::kParse);
        co_return Flow::kContinue;
      }
      std::string name(p->name);
      if (statements_.contains(name)) {
        co_await AnswerError(SqlError(absl::StatusCode::kAlreadyExists, "42P05",
                                      Cat("prepared statement \"", name,
                                                   "\" already exists")),
                             true);
        co_return Flow::kContinue;
      }
      auto stmt = worker_.statements().Intern(*p);
      statements_.emplace(name, stmt);
      auto& conn = *link_->conn;
      if (conn.HasPrepared(stmt->id)) {
        worker_.counters().Add(worker_.counters().prepare_hits);
        co_await Answer(Bytes(protocol::WriteParseComplete), std::move(name));
        co_return Flow::kContinue;
      }
      protocol::WriteParse(link_->out, stmt->server_name, *p);
      conn.AddPrepared(stmt->id);
      Push(Pending::Kind::kParse, stmt->id, std::move(name));
      worker_.counters().Add(worker_.counters().prepares);
      co_return Flow::kContinue;
    }
    case fe::kBind: {
      auto b = protocol::ParseBind(f.body);
      if (!b) co_return co_await malformed("Bind");
      if (!co_await need_server(true)) co_return Flow::kContinue;
      link_->unsynced = true;
      if (b->statement.empty()) {
        link_->out.Append(f.raw);
      } else {
        auto it = statements_.find(b->statement);
        if (it == statements_.end()) {
          co_await AnswerError(SqlError(absl::StatusCode::kNotFound, "26000",
                                        Cat("prepared statement \"", b->statement,
                                                     "\" does not exist")),
                               true);
          co_return Flow::kContinue;
        }
        EnsurePrepared(*it->second);
        protocol::WriteBind(link_->out, b->portal, it->second->server_name, b->rest);
      }
      Push(Pending::Kind::kBind);
      co_return Flow::kContinue;
    }
    case fe::kDescribe: {
      auto d = protocol::ParseDescribe(f.body);
      if (!d) co_return co_await malformed("Describe");
      if (!co_await need_server(true)) co_return Flow::kContinue;
      link_->unsynced = true;
      if (d->kind == 'S' && !d->name.empty()) {
        auto it = statements_.find(d->name);
        if (it == statements_.end()) {
          co_await AnswerError(SqlError(absl::StatusCode::kNotFound, "26000",
                                        Cat("prepared statement \"", d->name,
                                                     "\" does not exist")),
                               true);
          co_return Flow::kContinue;
        }
        EnsurePrepared(*it->second);
        protocol::WriteDescribe(link_->out, 'S', it->second->server_name);
      } else {
        link_->out.Append(f.raw);
      }
      Push(Pending::Kind::kDescribe);
      co_return Flow::kContinue;
    }
    case fe::kClose: {
      auto c = protocol::ParseClose(f.body);
      if (!c) co_return co_await malformed("Close");
      if (c->kind == 'S' && !c->name.empty()) {
        // Server-side statements are shared: only the client's name goes away.
        statements_.erase(c->name);
        co_await Answer(Bytes(protocol::WriteCloseComplete));
        co_return Flow::kContinue;
      }
      if (!holds_server()) {
        co_await Answer(Bytes(protocol::WriteCloseComplete));
        co_return Flow::kContinue;
      }
      link_->unsynced = true;
      link_->out.Append(f.raw);
      Push(Pending::Kind::kClose);
      co_return Flow::kContinue;
    }
    case fe::kExecute: {
      if (!protocol::ParseExecute(f.body)) co_return co_await malformed("Execute");
      if (!co_await need_server(true)) co_return Flow::kContinue;
      link_->unsynced = true;
      link_->out.Append(f.raw);
      Push(Pending::Kind::kExecute);
      co_return Flow::kContinue;
    }
    case fe::kSync: {
      skip_until_sync_ = false;
      if (!holds_server()) {
        co_await Answer(Bytes([](protocol::Buffer& b) { protocol::WriteReadyForQuery(b, 'I'); }));
        co_return Flow::kContinue;
      }
      link_->unsynced = false;
      link_->out.Append(f.raw);
      Push(Pending::Kind::kSync);
      worker_.counters().Add(worker_.counters().queries);
      co_return Flow::kContinue;
    }
    case fe::kFlush: {
      if (holds_server() && !link_->pending.empty()) link_->out.Append(f.raw);
      co_return Flow::kContinue;
    }
    case fe::kCopyData:
    case fe::kCopyDone:
    case fe::kCopyFail: {
      // Outside COPY (e.g. after the server failed it) PostgreSQL drops these too.
      if (holds_server() && !link_->pending.empty()) link_->out.Append(f.raw);
      co_return Flow::kContinue;
    }
    case fe::kFunctionCall: {
      if (!co_await need_server(false)) co_return Flow::kContinue;
      link_->out.Append(f.raw);
      Push(Pending::Kind::kFunctionCall);
      co_return Flow::kContinue;
    }
    case fe::kTerminate:
      co_return Flow::kClose;
    default: {
      worker_.counters().Add(worker_.counters().protocol_errors);
      co_await client_write_.Lock();
      protocol::Buffer err;
      std::string shown = std::isprint(static_cast<unsigned char>(type))
                              ? Cat("'", std::string(1, type), "'")
                              : Cat(static_cast<int>(static_cast<unsigned char>(type)));
      protocol::WriteErrorResponse(err, protocol::Severity::kFatal, "08P01",
                                   Cat("invalid frontend message type ", shown));
      if (!holds_server() || link_->pending.empty()) co_await stream_.WriteAll(err.Readable());
      client_write_.Unlock();
      co_return Flow::kClose;
    }
  }
}

awaitable<absl::Status> ClientSession::Attach() {
  co_await worker_.WaitWhilePaused();
  spdlog::debug("client {}: acquiring a server connection", cancel_key_.pid);
  auto acquired = co_await worker_.pool(worker_.default_shard()).Acquire();
  spdlog::debug("client {}: acquired: {}", cancel_key_.pid, acquired.ok());
  if (!acquired.ok()) co_return acquired.status();
  if (!link_) link_ = std::make_unique<ServerLink>();
  auto& link = *link_;
  link.shard = 0;
  link.conn = std::move(*acquired);
  link.attach_time = Clock::now();
  link.unsynced = false;
  link.kicked = false;
  if (config_->pool.mode == conf::PoolMode::kSession && !pinned_) {
    pinned_ = true;
    pin_reason_ = "session pooling";
  }
  auto& conn = *link.conn;
  if (conn.settings_fingerprint != settings_.fingerprint()) {
    protocol::WriteQuery(link.out, settings_.ReplaySql());
    Push(Pending::Kind::kInjectedQuery);
    conn.settings_fingerprint = settings_.fingerprint();
  }
  asio::co_spawn(worker_.io(), Pump(shared_from_this(), &link), [](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("server pump failed: {}", ex.what());
      }
    }
  });
  co_return absl::OkStatus();
}

awaitable<void> ClientSession::FlushServer() {
  if (!holds_server() || link_->out.empty()) co_return;
  auto& link = *link_;
  link.writing = true;
  auto ec = co_await link.conn->stream().WriteAll(link.out.Readable());
  link.writing = false;
  link.out.Clear();
  if (link.out.capacity() > (1u << 20)) link.out.Release();
  if (!link.conn) co_return;  // the pump dropped a failed connection meanwhile
  if (ec) {
    link.conn->broken = true;
    Kick(link);
    co_return;
  }
  if (link.pending.empty()) Kick(link);
}

void ClientSession::Kick(ServerLink& link) {
  if (!link.conn) return;
  link.kicked = true;
  // A TLS stream cannot be safely resumed after a cancelled read: drop it instead.
  if (link.conn->stream().tls()) link.conn->broken = true;
  boost::system::error_code ignored;
  link.conn->stream().socket().cancel(ignored);
}

bool ClientSession::Detachable(const ServerLink& link) const {
  if (!link.pending.empty() || link.unsynced || link.writing || !link.out.empty()) return false;
  if (link.conn->broken) return true;
  if (closing_) return link.conn->tx_status == 'I' && !pinned_;
  if (link.conn->tx_status != 'I') return false;
  if (pinned_ || config_->pool.mode == conf::PoolMode::kSession) return false;
  return true;
}

void ClientSession::Detach(ServerLink& link) {
  spdlog::debug("client {}: releasing server connection {}", cancel_key_.pid, link.conn->id);
  auto now = Clock::now();
  worker_.counters().Add(worker_.counters().transaction_us, Micros(now - link.attach_time));
  link.conn->last_used = now;
  worker_.pool(link.shard).Release(std::move(link.conn));
  if (link.out.capacity() > (64u << 10)) link.out.Release();
  if (close_requested_) WakeReader();
}

void ClientSession::DrainSynthetic(ServerLink& link, protocol::Buffer& synth) {
  while (!link.pending.empty() && link.pending.front().kind == Pending::Kind::kSynthetic) {
    synth.Append(link.pending.front().bytes);
    link.pending.pop_front();
  }
}

void ClientSession::OnReadyForQuery(ServerLink& link, char status) {
  auto now = Clock::now();
  worker_.counters().Add(worker_.counters().query_us, Micros(now - link.cycle_start));
  if (status == 'I') worker_.counters().Add(worker_.counters().transactions);
  link.cycle_start = now;
  link.conn->tx_status = status;
  client_tx_status_ = status;
  // Session settings take effect when their statement succeeded, and survive only if
  // the transaction around them commits.
  if (cycle_setting_) {
    if (!link.cycle_error) txn_settings_.push_back(std::move(*cycle_setting_));
    cycle_setting_.reset();
  }
  if (status == 'I' && !txn_settings_.empty()) {
    if (!link.saw_rollback) {
      for (const auto& c : txn_settings_) settings_.Apply(c);
      link.conn->settings_fingerprint = settings_.fingerprint();
    }
    txn_settings_.clear();
  }
  if (status == 'I') link.saw_rollback = false;
  link.cycle_error = false;
}

ClientSession::Disposition ClientSession::OnServerFrame(ServerLink& link,
                                                        const protocol::Frame& f) {
  using K = Pending::Kind;
  const char type = f.type;
  // Asynchronous messages may come at any time.
  if (type == be::kNoticeResponse || type == be::kNotificationResponse ||
      type == be::kParameterStatus) {
    if (!link.pending.empty() && link.pending.front().kind == K::kInjectedQuery) {
      return Disposition::kDrop;
    }
    return Disposition::kForward;
  }
  if (link.pending.empty()) {
    // Nothing was asked: a server-initiated error (e.g. FATAL before a disconnect).
    return Disposition::kForward;
  }
  Pending& front = link.pending.front();

  if (type == be::kReadyForQuery) {
    auto status = protocol::ParseReadyForQuery(f.body).value_or('E');
    bool injected = false;
    while (!link.pending.empty()) {
      K k = link.pending.front().kind;
      link.pending.pop_front();
      if (k == K::kSync || k == K::kQuery || k == K::kFunctionCall || k == K::kInjectedQuery) {
        injected = k == K::kInjectedQuery;
        break;
      }
    }
    if (injected) {
      link.conn->tx_status = status;
      if (link.cycle_error) {
        spdlog::warn("shard {}: a statement pgring replayed on a server connection failed",
                     link.shard);
        link.conn->broken = true;
      }
      link.cycle_error = false;
      return Disposition::kDrop;
    }
    OnReadyForQuery(link, status);
    return Disposition::kForward;
  }

  if (type == be::kErrorResponse) {
    link.cycle_error = true;
    worker_.counters().Add(worker_.counters().errors);
    if (front.kind == K::kInjectedQuery) {
      if (auto fields = protocol::ParseErrorFields(f.body)) {
        spdlog::warn("shard {}: replayed statement failed: {}", link.shard, fields->message());
      }
      return Disposition::kDrop;
    }
    if (front.kind == K::kQuery || front.kind == K::kFunctionCall) return Disposition::kForward;
    // Extended protocol: the server skips everything up to the next Sync.
    while (!link.pending.empty() && link.pending.front().kind != K::kSync) {
      auto& p = link.pending.front();
      if (p.kind == K::kParse || p.kind == K::kInjectedParse) {
        if (p.stmt_id != 0) link.conn->RemovePrepared(p.stmt_id);
      }
      if (!p.client_stmt.empty()) statements_.erase(p.client_stmt);
      link.pending.pop_front();
    }
    return Disposition::kForward;
  }

  if (front.kind == K::kInjectedQuery) return Disposition::kDrop;

  switch (type) {
    case be::kParseComplete:
      if (front.kind == K::kParse || front.kind == K::kInjectedParse) {
        bool injected = front.kind == K::kInjectedParse;
        link.pending.pop_front();
        return injected ? Disposition::kDrop : Disposition::kForward;
      }
      break;
    case be::kBindComplete:
      if (front.kind == K::kBind) link.pending.pop_front();
      break;
    case be::kCloseComplete:
      if (front.kind == K::kClose || front.kind == K::kInjectedClose) {
        bool injected = front.kind == K::kInjectedClose;
        link.pending.pop_front();
        return injected ? Disposition::kDrop : Disposition::kForward;
      }
      break;
    case be::kRowDescription:
    case be::kNoData:
      if (front.kind == K::kDescribe) link.pending.pop_front();
      break;
    case be::kCommandComplete:
      if (TagOf(f) == "ROLLBACK") link.saw_rollback = true;
      if (front.kind == K::kExecute) link.pending.pop_front();
      break;
    case be::kEmptyQueryResponse:
    case be::kPortalSuspended:
      if (front.kind == K::kExecute) link.pending.pop_front();
      break;
    default:
      break;
  }
  return Disposition::kForward;
}

awaitable<void> ClientSession::Pump(std::shared_ptr<ClientSession> self, ServerLink* link_ptr) {
  (void)self;  // keeps the session alive while the pump runs
  ServerLink& link = *link_ptr;
  ServerConnection* conn = link.conn.get();
  auto& gather = link.gather;
  auto& synth = link.synth;
  auto& segments = link.segments;

  // Runs after every step of progress (never before the first read: the reader queues
  // its first request right after Attach starts this pump). Returns true when the pump
  // is done because the connection went back to the pool.
  auto settle = [&]() -> awaitable<bool> {
    if (Detachable(link)) {
      Detach(link);
      co_return true;
    }
    if (closing_ && link.pending.empty() && !link.writing) {
      // The client is gone: end its transaction, then drop its session state.
      if (link.conn->tx_status != 'I') {
        protocol::WriteQuery(link.out, "ROLLBACK");
      } else {
        protocol::WriteQuery(link.out, "DISCARD ALL");
        link.conn->ClearPrepared();
        link.conn->settings_fingerprint = 0;
        pinned_ = false;
      }
      Push(Pending::Kind::kInjectedQuery);
      link.writing = true;
      auto wec = co_await conn->stream().WriteAll(link.out.Readable());
      link.writing = false;
      link.out.Clear();
      if (wec) {
        conn->broken = true;
        Detach(link);
        co_return true;
      }
    }
    co_return false;
  };

  for (;;) {
    auto [ec, n] = co_await conn->stream().ReadSome(conn->in(), 16384);
    if (ec == asio::error::operation_aborted && link.kicked) {
      link.kicked = false;
      if (!conn->broken) {
        if (co_await settle()) co_return;
        continue;
      }
    }
    if (ec || n == 0 || conn->broken) {
      conn->broken = true;
      bool was_busy = !link.pending.empty() || conn->tx_status != 'I';
      link.pending.clear();
      link.unsynced = false;
      if (was_busy && !closing_) {
        spdlog::warn("shard {}: server connection lost: {}", link.shard,
                     ec ? ec.message() : "closed by server");
        co_await client_write_.Lock();
        protocol::Buffer err;
        protocol::WriteErrorResponse(
            err, protocol::Severity::kFatal, "08006",
            Cat("the server connection to shard \"",
                         worker_.pool(link.shard).options().shard_name,
                         "\" was lost during a transaction"),
            {}, "the transaction was not committed; reconnect and retry it");
        if (!client_gone_) co_await stream_.WriteAll(err.Readable());
        client_write_.Unlock();
        client_gone_ = true;
        closing_ = true;
        boost::system::error_code ignored;
        stream_.socket().cancel(ignored);
      }
      Detach(link);
      co_return;
    }

    co_await client_write_.Lock();
    auto data = conn->in().Readable();
    size_t pos = 0;
    segments.clear();
    synth.Clear();
    for (;;) {
      size_t before = synth.size();
      DrainSynthetic(link, synth);
      if (synth.size() > before) segments.push_back({true, before, synth.size() - before});
      auto r = protocol::ParseTypedFrame(data.subspan(pos));
      if (r.status == protocol::FrameStatus::kNeedMore) break;
      if (r.status == protocol::FrameStatus::kInvalid) {
        conn->broken = true;
        break;
      }
      if (OnServerFrame(link, r.frame) == Disposition::kForward) {
        if (!segments.empty() && !segments.back().synthetic &&
            segments.back().offset + segments.back().length == pos) {
          segments.back().length += r.frame.size;
        } else {
          segments.push_back({false, pos, r.frame.size});
        }
      }
      pos += r.frame.size;
    }
    if (!segments.empty() && !client_gone_) {
      gather.clear();
      size_t total = 0;
      for (const auto& s : segments) {
        const std::byte* base = s.synthetic ? synth.Readable().data() : data.data();
        gather.emplace_back(base + s.offset, s.length);
        total += s.length;
      }
      if (co_await stream_.WriteAll(gather)) {
        client_gone_ = true;
        closing_ = true;
      }
      worker_.counters().Add(worker_.counters().bytes_sent, total);
    }
    conn->in().Consume(pos);
    client_write_.Unlock();
    if (conn->in().empty() && conn->in().capacity() > (1u << 20)) conn->in().Release();
    if (co_await settle()) co_return;
  }
}

awaitable<void> ClientSession::Finish() {
  closing_ = true;
  if (holds_server()) {
    auto& link = *link_;
    // Let the pump end the transaction and return the connection; a statement still
    // running for a client that left is cancelled rather than waited for.
    link.out.Clear();
    if (link.pending.empty()) {
      Kick(link);
    } else {
      ForwardCancel();
    }
  }
  stream_.Close();
  co_return;
}

void ClientSession::ForwardCancel() {
  if (!holds_server()) return;
  auto& conn = *link_->conn;
  auto host = conn.host();
  auto port = conn.port();
  auto pid = conn.backend_pid();
  auto secret = conn.backend_secret();
  asio::co_spawn(
      worker_.io(),
      [host, port, pid, secret]() -> awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        tcp::socket s(ex);
        boost::system::error_code ec;
        auto addr = asio::ip::make_address(host, ec);
        if (ec) {
          tcp::resolver r(ex);
          auto [rec, res] = co_await r.async_resolve(host, std::to_string(port), use_nothrow);
          if (rec || res.empty()) co_return;
          addr = res.begin()->endpoint().address();
        }
        auto [cec] = co_await s.async_connect(tcp::endpoint(addr, port), use_nothrow);
        if (cec) co_return;
        protocol::Buffer b;
        protocol::WriteCancelRequest(b, pid, secret);
        auto r = b.Readable();
        co_await asio::async_write(s, asio::buffer(r.data(), r.size()), use_nothrow);
        // PostgreSQL closes the connection after a cancel request; wait for that.
        char c;
        co_await s.async_read_some(asio::buffer(&c, 1), use_nothrow);
      },
      asio::detached);
}

void ClientSession::RequestClose() {
  close_requested_ = true;
  // A client in a transaction is told when the transaction ends (Detach).
  if (!holds_server()) WakeReader();
}

void ClientSession::WakeReader() {
  if (wake_) wake_->cancel();
  boost::system::error_code ignored;
  stream_.socket().cancel(ignored);
}

ClientInfo ClientSession::Info() const {
  ClientInfo info;
  info.user = identity_.user;
  info.database = identity_.database;
  info.state = holds_server() ? "active" : "idle";
  info.addr = tcp_addr_;
  info.port = tcp_port_;
  for (const auto& [k, v] : identity_.params)
    if (k == "application_name") info.application_name = v;
  info.connect_time = connect_time_;
  info.request_time = request_time_;
  info.pid = cancel_key_.pid;
  info.tls = stream_.tls();
  info.pinned = pinned_;
  info.prepared_statements = statements_.size();
  info.server_id = holds_server() ? static_cast<int64_t>(link_->conn->id) : 0;
  return info;
}

}  // namespace pgring::proxy
