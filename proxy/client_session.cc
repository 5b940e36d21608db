#include "proxy/client_session.h"

#include <cstring>

#include "proxy/str.h"
#include "protocol/messages.h"
#include "protocol/sql_error.h"
#include "proxy/frame_io.h"
#include "proxy/proxy.h"
#include "proxy/reply.h"
#include "proxy/worker.h"
#include "spdlog/spdlog.h"

namespace pgring::proxy {
namespace {

// Whether a Parse is for statement `s`: same text and parameter types.
bool SameStatement(const PreparedStatement& s, const protocol::Parse& p) {
  if (s.query != p.query || s.param_types.size() != p.num_param_types) return false;
  for (int i = 0; i < p.num_param_types; ++i) {
    if (s.param_types[static_cast<size_t>(i)] != p.ParamType(i)) return false;
  }
  return true;
}

using namespace asio::experimental::awaitable_operators;
using protocol::SqlError;
namespace fe = protocol::fe;
namespace be = protocol::be;

// Whether a CommandComplete's tag is `tag` (its body is the tag and a NUL).
bool HasTag(const protocol::Frame& f, std::string_view tag) {
  return f.body.size() == tag.size() + 1 && f.body[tag.size()] == std::byte{0} &&
         std::memcmp(f.body.data(), tag.data(), tag.size()) == 0;
}

uint64_t Micros(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

}  // namespace

ClientSession::ClientSession(Worker& worker, TcpSocket socket)
    : worker_(worker), config_(worker.config_ptr()), stream_(std::move(socket)) {
  boost::system::error_code ec;
  stream_.socket().set_option(tcp::no_delay(true), ec);
}

ClientSession::~ClientSession() {
  if (registered_) worker_.proxy().cancels().Unregister(cancel_key_);
  if (in_registry_) worker_.RemoveSession(registry_it_);
  if (in_startups_) worker_.UnwatchStartup(registry_it_);
  worker_.proxy().ReleaseClient();
}

awaitable<void> ClientSession::Run() {
  // The handshake runs in its own coroutine so that its frame (the results) is freed
  // before the long-lived Serve loop: an idle client should cost little memory.
  // (The result goes through a variable: GCC 12 miscompiles `if (!co_await ...)` here.)
  std::optional<HandshakeResult> hs = co_await Handshake();
  if (!hs) co_return;
  const ClientIdentity* id = &hs->identity;
  registry_it_ = worker_.AddSession(this);
  in_registry_ = true;
  user_ = id->user;
  for (const auto& [k, v] : id->params)
    if (k == "application_name") application_name_ = v;
  // The startup parameters live on in settings_ (Start); the identity is not kept.
  const bool started = co_await Start(*id, hs->greeting);
  if (!started) co_return;
  hs.reset();
  co_await Continue(ResumeAt::kWait);
}

awaitable<void> ClientSession::Continue(ResumeAt at, boost::system::error_code ec) {
  // (Through a variable: GCC 12 miscompiles `if (!co_await ...)`.)
  const bool goes_on = co_await Serve(at, ec);
  if (!goes_on) Finish();
}

void ClientSession::Resume(ResumeAt at, boost::system::error_code ec) {
  asio::co_spawn(worker_.io(), Continue(at, ec), LogEnd("client session", shared_from_this()));
}

bool ClientSession::CanPark() const {
  // Inside a transaction block (a BEGIN pgring answered) the client will be back soon.
  return !holds_server() && client_tx_status_ == 'I' && !close_requested_ && !client_gone_ &&
         !stream_.tls() && config_->pool.client_idle_timeout.count() == 0;
}

void ClientSession::ParkIfIdle(Clock::time_point now) {
  // A client that went idle while its reader waited (it held a server connection when the
  // wait began) is parked once it has been idle for a while: busy clients keep their
  // coroutine, long-idle ones give its memory back.
  if (!waiting_ || !CanPark() || now - request_time_ < kParkAfterIdle) return;
  park_requested_ = true;
  boost::system::error_code ignored;
  stream_.socket().cancel(ignored);
}

// A parked client's read buffer comes back only when its next request has arrived (the
// read's handler holds the session, so `session` outlives the read).
struct ClientSession::ParkedRoom {
  ClientSession* session;
  asio::mutable_buffer Get() const {
    auto room = session->in_.Prepare(16384);
    return asio::buffer(room.data(), room.size());
  }
  void Unused() const { session->in_.Release(); }
};

void ClientSession::Park() {
  parked_ = true;
  in_.Release();
  // Portals end with their transaction; a parked client has none open.
  unnamed_portal_.reset();
  stream_.socket().ReadWhenArrived(ParkedRoom{this},
                                   [self = shared_from_this()](boost::system::error_code ec,
                                                               size_t n) { self->Unpark(ec, n); });
}

void ClientSession::Unpark(boost::system::error_code ec, size_t n) {
  parked_ = false;
  if (ec == asio::error::operation_aborted) {
    Resume(ResumeAt::kWait);  // RequestClose
    return;
  }
  // Usually a whole request has arrived: it runs from here like a read callback's
  // (OnClientRead, RunInput), with no coroutine to start.
  OnClientRead(ec, n);
}

void ClientSession::ExpireStartup() {
  // What the handshake waits for on the socket ends; the handshake fails where it is.
  startup_expired_ = true;
  boost::system::error_code ignored;
  stream_.socket().cancel(ignored);
}

awaitable<std::optional<HandshakeResult>> ClientSession::Handshake() {
  const auto& config = *config_;
  registry_it_ = worker_.WatchStartup(this);
  in_startups_ = true;
  auto result = co_await ClientHandshake(stream_, in_, config, Port::kClient,
                                         worker_.proxy().tls_context(), worker_.proxy().cancels(),
                                         worker_.verifiers());
  worker_.UnwatchStartup(registry_it_);
  in_startups_ = false;
  if (startup_expired_) {
    co_await SendFatal(stream_, "08006", "startup and authentication did not finish within "
                       "pool.startup_timeout");
    stream_.Close();
    co_return std::nullopt;
  }
  if (!result.ok() || result->outcome != HandshakeOutcome::kReady) {
    stream_.Close();
    co_return std::nullopt;
  }
  co_return std::move(*result);
}

awaitable<bool> ClientSession::Start(const ClientIdentity& id, protocol::Buffer& greeting) {
  // Startup parameters become session settings, replayed on every server connection.
  settings_ = worker_.StartupSettings(id.params);

  // Learn the servers' ParameterStatus values once per worker.
  if (!worker_.knows_server_parameters()) {
    auto conn = co_await worker_.pool(worker_.default_shard()).Acquire();
    if (!conn.ok()) {
      protocol::WriteErrorResponse(greeting, protocol::Severity::kFatal,
                                   protocol::SqlStateOf(conn.status()),
                                   protocol::MessageOf(conn.status()), {},
                                   protocol::HintOf(conn.status()));
      co_await WriteClient(greeting.Readable());
      co_return false;
    }
    worker_.LearnServerParameters((*conn)->startup_parameters());
    worker_.pool(worker_.default_shard()).Release(std::move(*conn), Clock::now());
  }

  cancel_key_ = worker_.proxy().cancels().Register({&worker_.io(), weak_from_this()});
  registered_ = true;

  co_return co_await SendWelcome(id, greeting);
}

awaitable<bool> ClientSession::Serve(ResumeAt at, boost::system::error_code ec) {
  for (;;) {
    bool have_read = at == ResumeAt::kMessages || at == ResumeAt::kNeedsMessage;
    bool waited = at == ResumeAt::kReadEnded;
    if (waited) {
      const bool ok = co_await WaitEnded(ec);
      if (!ok) co_return false;
    } else if (in_.empty() && at == ResumeAt::kWait) {
      if (CanPark()) {
        Park();
        co_return true;
      }
      if (ReadsByCallback()) {
        ReadClient();
        co_return true;
      }
      const bool ok = co_await WaitForClient();
      if (!ok) co_return false;
      waited = true;
    }
    if (waited) {
      have_read = !in_.empty();
      if (park_requested_) {
        park_requested_ = false;
        // Park unless the wait's read took bytes before it was cancelled.
        if (!have_read) {
          at = ResumeAt::kWait;
          continue;
        }
      }
    }
    // The read callback has read (and timed) what in_ holds.
    const bool from_callback = at == ResumeAt::kMessages || at == ResumeAt::kNeedsMessage;
    bool skip_now = at == ResumeAt::kNeedsMessage;  // HandleNow declined the first message
    at = ResumeAt::kWait;
    if (client_gone_) co_return false;
    if (!have_read) {
      // Usually the bytes are there already (WaitForClient saw them): read without a wait.
      auto [rec, n] = stream_.ReadNow(in_, 16384);
      if (!rec && n == 0) std::tie(rec, n) = co_await stream_.ReadSome(in_, 16384);
      if (rec || n == 0) co_return false;
      worker_.counters().Add(worker_.counters().bytes_received, n);
    }
    if (!from_callback) request_time_ = Clock::now();
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
        co_return false;
      }
      auto now = skip_now ? std::nullopt : HandleNow(r.frame);
      skip_now = false;
      if (now == Flow::kQueued) co_return true;  // OnHandoff goes on
      auto flow = now ? *now : co_await HandleMessage(r.frame);
      in_.Consume(r.frame.size);
      if (flow == Flow::kClose) {
        if (said_goodbye_ && !FlushServersNow()) co_await FlushServers();
        co_return false;
      }
    }
    if (!FlushServersNow()) co_await FlushServers();
    if (client_gone_) co_return false;
  }
}

bool ClientSession::ReadsByCallback() const {
  return (holds_server() || client_tx_status_ != 'I') && !close_requested_ && !client_gone_ &&
         !stream_.tls() && WaitDeadline(nullptr).count() == 0;
}

void ClientSession::ReadClient() {
  waiting_ = true;
  auto room = in_.Prepare(16384);
  stream_.socket().ReadNext(asio::buffer(room.data(), room.size()), !in_.empty(),
                            [self = shared_from_this()](boost::system::error_code ec,
                                                        size_t n) { self->OnClientRead(ec, n); });
}

void ClientSession::OnClientRead(boost::system::error_code ec, size_t n) {
  waiting_ = false;
  in_.Commit(n);
  if (!ec && n == 0) ec = asio::error::eof;
  if (n > 0) {
    worker_.counters().Add(worker_.counters().bytes_received, n);
    request_time_ = Clock::now();
  }
  if (ec || close_requested_ || park_requested_ || client_gone_) {
    Resume(ResumeAt::kReadEnded, ec);
    return;
  }
  RunInput();
}

void ClientSession::RunInput() {
  for (;;) {
    auto r = protocol::ParseTypedFrame(in_.Readable());
    if (r.status == protocol::FrameStatus::kNeedMore) break;
    if (r.status == protocol::FrameStatus::kInvalid) {
      Resume(ResumeAt::kMessages);  // Serve answers it
      return;
    }
    const auto flow = HandleNow(r.frame);
    if (!flow) {
      Resume(ResumeAt::kNeedsMessage);
      return;
    }
    if (*flow == Flow::kQueued) return;  // OnHandoff goes on
    if (*flow == Flow::kClose) {  // Terminate: what came before it still goes out first
      if (FlushServersNow()) {
        Finish();
      } else {
        Resume(ResumeAt::kMessages);  // Serve writes the rest, then finishes
      }
      return;
    }
    in_.Consume(r.frame.size);
  }
  if (!FlushServersNow() || client_gone_) {
    Resume(ResumeAt::kMessages);  // Serve finishes the writes (or ends the session)
    return;
  }
  if (in_.empty() && CanPark()) {
    Park();
  } else if (ReadsByCallback()) {
    ReadClient();
  } else {
    Resume(in_.empty() ? ResumeAt::kWait : ResumeAt::kMessages);
  }
}

awaitable<bool> ClientSession::SendWelcome(const ClientIdentity& id, protocol::Buffer& out) {
  worker_.WriteServerParameters(id.params, out);
  protocol::WriteBackendKeyData(out, cancel_key_.pid, cancel_key_.secret);
  protocol::WriteReadyForQuery(out, 'I');
  co_return co_await WriteClient(out.Readable());
}

conf::Duration ClientSession::WaitDeadline(std::string_view* setting) const {
  const auto& pool = config_->pool;
  if (!holds_server()) {
    if (setting != nullptr) *setting = "client_idle_timeout";
    return pool.client_idle_timeout;
  }
  if (BusyLink() != nullptr || client_tx_status_ == 'I') return conf::Duration{0};
  if (setting != nullptr) *setting = "idle_in_transaction_timeout";
  return pool.idle_in_transaction_timeout;
}

awaitable<bool> ClientSession::WaitForClient() {
  if (close_requested_ && !holds_server()) co_return co_await SayGoodbye();
  // An idle client holds no read buffer.
  if (!holds_server() && client_tx_status_ == 'I') in_.Release();
  std::string_view what;
  const auto timeout = WaitDeadline(&what);
  if (timeout.count() == 0) {
    // No deadline: a plain wait (RequestClose and ParkIfIdle cancel it). A client holding
    // a server connection (its transaction's answer is on the way, or it is pinned) waits
    // with a read: the reactor reads what arrives, and a read that leaves the socket empty
    // lets the next one wait without a system call (a readiness wait re-arms epoll each
    // time). A client holding nothing waits without a read buffer.
    waiting_ = true;
    boost::system::error_code ec;
    if (holds_server()) {
      size_t n = 0;
      std::tie(ec, n) = co_await stream_.ReadSome(in_, 16384);
      if (!ec && n == 0) ec = asio::error::eof;
      if (n > 0) worker_.counters().Add(worker_.counters().bytes_received, n);
    } else {
      ec = co_await stream_.WaitReadable();
    }
    waiting_ = false;
    co_return co_await WaitEnded(ec);
  }
  if (!wake_) wake_ = std::make_unique<asio::steady_timer>(co_await asio::this_coro::executor);
  wake_->expires_after(std::chrono::duration_cast<Clock::duration>(timeout));
  auto r = co_await (stream_.WaitReadable() || wake_->async_wait(use_nothrow));
  if (r.index() == 0) co_return co_await WaitEnded(std::get<0>(r));
  if (close_requested_ && !holds_server()) co_return co_await SayGoodbye();
  co_await client_write_.Lock();
  protocol::Buffer err;
  protocol::WriteErrorResponse(err, protocol::Severity::kFatal, "25P03",
                               Cat("terminating connection: idle longer than pool.", what, " (",
                                   timeout.count(), " ms)"));
  if (BusyLink() == nullptr) co_await stream_.WriteAll(err.Readable());
  client_write_.Unlock();
  co_return false;
}

awaitable<bool> ClientSession::WaitEnded(boost::system::error_code ec) {
  if (close_requested_ && !holds_server()) co_return co_await SayGoodbye();
  co_return !ec || ec == asio::error::operation_aborted;
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

void ClientSession::Push(ServerLink& link, Pending::Kind kind, uint64_t stmt_id,
                         std::string client_stmt) {
  if (link.pending.empty()) link.cycle_start = Clock::now();
  Pending p{kind, false, false, stmt_id, nullptr};
  if (!client_stmt.empty()) {
    p.text = std::make_unique<Pending::Text>(Pending::Text{std::move(client_stmt), {}});
  }
  link.pending.push_back(std::move(p));
}

ClientSession::ServerLink* ClientSession::BusyLink() const {
  for (const auto& l : links_) {
    if (l && l->conn && !l->pending.empty()) return l.get();
  }
  return nullptr;
}

awaitable<void> ClientSession::Answer(std::string bytes, std::string client_stmt) {
  if (auto* link = BusyLink()) {
    link->pending.push_back(
        Pending{Pending::Kind::kSynthetic, false, false, 0,
                std::make_unique<Pending::Text>(
                    Pending::Text{std::move(client_stmt), std::move(bytes)})});
    // The pump may be idle waiting for the server: emit what is at the front now.
    co_await client_write_.Lock();
    protocol::Buffer synth;
    DrainSynthetic(*link, synth);
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
    co_await AnswerReady();
  }
}

awaitable<void> ClientSession::AnswerReady() {
  protocol::Buffer b;
  protocol::WriteReadyForQuery(b, client_tx_status_);
  co_await Answer(BufferBytes(b));
}

awaitable<bool> ClientSession::WriteClient(std::span<const std::byte> bytes) {
  co_await client_write_.Lock();
  auto ec = co_await stream_.WriteAll(bytes);
  client_write_.Unlock();
  if (ec) client_gone_ = true;
  worker_.counters().Add(worker_.counters().bytes_sent, bytes.size());
  co_return !ec;
}

bool ClientSession::CanWriteClientNow() const {
  return !client_write_.locked() && BusyLink() == nullptr;
}

void ClientSession::WriteClientNow(std::span<const std::byte> bytes) {
  client_write_.TryLock();
  worker_.counters().Add(worker_.counters().bytes_sent, bytes.size());
  if (auto ec = stream_.WriteNow(bytes)) {
    client_gone_ = true;
  } else if (!bytes.empty()) {
    // The socket took part of it (or the stream is TLS): a coroutine writes the rest,
    // holding the lock until it is done.
    asio::co_spawn(worker_.io(),
                   WriteClientRest(shared_from_this(), {bytes.begin(), bytes.end()}),
                   LogEnd("client write"));
    return;
  }
  client_write_.Unlock();
}

awaitable<void> ClientSession::WriteClientRest(std::shared_ptr<ClientSession> self,
                                               std::vector<std::byte> rest) {
  (void)self;  // keeps the session alive while the write runs
  auto ec = co_await stream_.WriteAll(rest);
  client_write_.Unlock();
  if (ec) client_gone_ = true;
}

void ClientSession::NotePreparedText(ServerLink& link, const PreparedStatement& stmt) {
  if (!stmt.may_change_session) stmt.may_change_session = MayChangeSession(stmt.query);
  if (*stmt.may_change_session) NoteStatementText(link, stmt.query);
}

void ClientSession::NoteStatementText(ServerLink& link, std::string_view sql) {
  if (!MayChangeSession(sql)) return;
  if (auto change = ClassifySetting(sql)) {
    cycle_setting_ = std::make_unique<SettingChange>(std::move(*change));
  }
  if (!pinned_) {
    if (auto reason = SessionPinReason(sql)) {
      pinned_ = true;
      spdlog::debug("client {} keeps its server connections: {}", cancel_key_.pid, *reason);
    }
  }
  if (DropsPreparedStatements(sql)) {
    // The server forgets every prepared statement, and so does the client's session.
    link.conn->ClearPrepared();
    if (extended_) extended_->statements.clear();
  }
}

void ClientSession::EnsurePrepared(ServerLink& link, const PreparedStatement& stmt) {
  auto& conn = *link.conn;
  if (conn.HasPrepared(stmt.id)) return;
  protocol::WriteParse(link.out, stmt.server_name, stmt.query, stmt.param_types);
  conn.AddPrepared(stmt.id);
  Push(link, Pending::Kind::kInjectedParse, stmt.id);
  worker_.counters().Add(worker_.counters().prepares);
  auto cap = static_cast<size_t>(std::max(1, config_->pool.prepared_statement_cache));
  while (conn.prepared_count() > cap) {
    uint64_t victim = conn.EvictLeastRecent();
    if (victim == 0 || victim == stmt.id) break;
    protocol::WriteClose(link.out, 'S', Cat("pgring_", victim));
    Push(link, Pending::Kind::kInjectedClose);
  }
}

void ClientSession::EnsureUnnamed(ServerLink& link) {
  const Extended& x = extended();
  if (!x.unnamed.stmt || link.conn->unnamed_id == x.unnamed_id) return;
  protocol::WriteParse(link.out, "", x.unnamed.stmt->query, x.unnamed.stmt->param_types);
  link.conn->unnamed_id = x.unnamed_id;
  Push(link, Pending::Kind::kInjectedParse);
}

awaitable<void> ClientSession::SendDeferredParse(ServerLink& link) {
  if (SendDeferredParseNow(link)) co_return;
  // The connection has the statement already: pgring answers ParseComplete itself.
  Extended& x = MakeExtended();
  x.deferred_parse.reset();
  link.unsynced = true;
  worker_.counters().Add(worker_.counters().prepare_hits);
  co_await Answer(MessageBytes(protocol::WriteParseComplete), std::move(x.deferred_parse_name));
}

bool ClientSession::SendDeferredParseNow(ServerLink& link) {
  if (!HasDeferredParse()) return true;
  Extended& x = *extended_;
  const ClientStatement& cs = *x.deferred_parse;
  if (!cs.unnamed && link.conn->HasPrepared(cs.stmt->id)) return false;
  link.unsynced = true;
  if (cs.unnamed) {
    protocol::WriteParse(link.out, "", cs.stmt->query, cs.stmt->param_types);
    link.conn->unnamed_id = x.unnamed_id;
    Push(link, Pending::Kind::kParse);
  } else {
    protocol::WriteParse(link.out, cs.stmt->server_name, cs.stmt->query, cs.stmt->param_types);
    link.conn->AddPrepared(cs.stmt->id);
    worker_.counters().Add(worker_.counters().prepares);
    Push(link, Pending::Kind::kParse, cs.stmt->id, std::move(x.deferred_parse_name));
  }
  x.deferred_parse.reset();
  return true;
}

// ---- Routing ------------------------------------------------------------------------------

absl::StatusOr<sharding::RoutePlan> ClientSession::Route(const sharding::Statement& s,
                                                        const protocol::BindParams* params,
                                                        std::span<const uint32_t> param_types,
                                                        sharding::RouteMemo* memo) {
  sharding::RouteInputs in;
  in.params = params;
  in.param_types = param_types;
  in.memo = memo;
  if (txn_shard_key_) {
    in.session_shard_key = *txn_shard_key_;
  } else if (session_shard_key_) {
    in.session_shard_key = *session_shard_key_;
  }
  return sharding::Router::Route(s, topology_->tables, *topology_->ring, in);
}

std::vector<size_t> ClientSession::SessionTargets() const {
  std::vector<size_t> shards;
  for (size_t i = 0; i < links_.size(); ++i)
    if (Held(i)) shards.push_back(i);
  if (shards.empty()) shards.push_back(worker_.default_shard());
  return shards;
}

std::optional<size_t> ClientSession::SingleTarget(const sharding::RoutePlan& plan) const {
  using sharding::RouteKind;
  if (plan.kind == RouteKind::kSession) {
    auto shards = SessionTargets();
    if (shards.size() == 1) return shards[0];
    return std::nullopt;
  }
  if (plan.shards.size() != 1) return std::nullopt;
  if (plan.any_shard && !Held(plan.shards[0].value())) {
    for (size_t i = 0; i < links_.size(); ++i)
      if (Held(i)) return i;
  }
  return plan.shards[0].value();
}

size_t ClientSession::AnyShard() {
  if (auto* busy = BusyLink()) return busy->shard;
  for (size_t i = 0; i < links_.size(); ++i)
    if (Held(i)) return i;
  return worker_.default_shard();
}

awaitable<ClientSession::ServerLink*> ClientSession::UseExtended(size_t shard) {
  bool skip = false;
  auto st = co_await Use(std::span(&shard, 1), &skip);
  if (skip) {
    skip_until_sync_ = true;
    co_return nullptr;
  }
  if (!st.ok()) {
    co_await AnswerError(st, true);
    co_return nullptr;
  }
  co_return links_[shard].get();
}

void ClientSession::NotifyQuiet() {
  if (quiet_) quiet_->cancel();
}

awaitable<void> ClientSession::WaitQuiet(const std::function<bool()>& quiet) {
  if (!quiet_) quiet_ = std::make_unique<asio::steady_timer>(co_await asio::this_coro::executor);
  while (!quiet() && !closing_ && !client_gone_) {
    quiet_->expires_at(asio::steady_timer::time_point::max());
    co_await quiet_->async_wait(use_nothrow);
  }
}

awaitable<absl::Status> ClientSession::Use(std::span<const size_t> shards, bool* skip) {
  if (gather_open_) co_await CloseGather(false);
  // Requests in flight elsewhere must be answered first: answers go out in request order.
  const bool single = shards.size() == 1;
  auto other = [&](const ServerLink& l) {
    return !(single && l.shard == shards[0]);
  };
  bool wait = false;
  for (auto& l : links_) {
    if (!l || !l->conn || !other(*l) || !l->busy()) continue;
    if (l->unsynced) {
      protocol::WriteSync(l->out);
      Push(*l, Pending::Kind::kSync);
      l->pending.back().drop_ready = true;
      l->unsynced = false;
    }
    wait = true;
  }
  if (wait) {
    co_await FlushServers();
    co_await WaitQuiet([&] {
      for (auto& l : links_)
        if (l && l->conn && other(*l) && l->busy()) return false;
      return true;
    });
    if (skip != nullptr && cycle_failed_) {
      *skip = true;
      co_return absl::OkStatus();
    }
  }
  for (size_t shard : shards) {
    if (Held(shard)) continue;
    auto st = co_await Attach(shard);
    if (!st.ok()) co_return st;
  }
  co_return absl::OkStatus();
}

awaitable<absl::Status> ClientSession::Attach(size_t shard) {
  pool_waiting_ = true;
  if (worker_.proxy().paused()) co_await worker_.WaitWhilePaused();
  spdlog::debug("client {}: acquiring a server connection to shard {}", cancel_key_.pid, shard);
  // A client QueueNow queued (and the pool sent on) has waited since then.
  std::optional<Clock::time_point> queued_since;
  if (queued_since_ != Clock::time_point{}) queued_since = std::exchange(queued_since_, {});
  auto acquired = co_await worker_.pool(shard).Acquire(queued_since);
  pool_waiting_ = false;
  if (!acquired.ok()) co_return acquired.status();
  AttachConnection(shard, std::move(*acquired), Clock::now());
  co_return absl::OkStatus();
}

bool ClientSession::OthersQuiet(size_t shard) const {
  if (gather_open_) return false;
  for (const auto& l : links_) {
    if (l && l->conn && l->shard != shard && l->busy()) return false;
  }
  return true;
}

bool ClientSession::UseNow(size_t shard) {
  if (!OthersQuiet(shard)) return false;
  if (Held(shard)) return true;
  if (worker_.proxy().paused()) return false;
  // Called while the client's request is handled: its arrival time stands for now.
  auto taken = worker_.pool(shard).TakeIdle(request_time_);
  if (!taken) return false;
  AttachConnection(shard, std::move(taken), request_time_);
  return true;
}

bool ClientSession::QueueNow(size_t shard) {
  if (!OthersQuiet(shard) || Held(shard) || worker_.proxy().paused()) return false;
  const auto now = Clock::now();
  auto handoff = [self = shared_from_this(), shard](std::unique_ptr<ServerConnection> conn) {
    self->OnHandoff(shard, std::move(conn));
  };
  if (!worker_.pool(shard).Queue(std::move(handoff), now)) return false;
  queued_since_ = now;
  pool_waiting_ = true;
  return true;
}

void ClientSession::OnHandoff(size_t shard, std::unique_ptr<ServerConnection> conn) {
  pool_waiting_ = false;
  if (!conn) {
    Resume(ResumeAt::kNeedsMessage);  // Attach waits on in Acquire(queued_since_)
    return;
  }
  // Like a connection Acquire hands a waiting coroutine: taken even if the client asked to
  // close or PAUSE began meanwhile (the message runs, as it would have without the wait).
  queued_since_ = {};
  AttachConnection(shard, std::move(conn), Clock::now());
  RunInput();
}

void ClientSession::AttachConnection(size_t shard, std::unique_ptr<ServerConnection> taken,
                                     Clock::time_point now) {
  if (links_.size() <= shard) links_.resize(worker_.pool_count());
  if (!links_[shard]) links_[shard] = std::make_unique<ServerLink>();
  auto& link = *links_[shard];
  link.shard = shard;
  link.conn = std::move(taken);
  link.attach_time = now;
  link.unsynced = false;
  link.kicked = false;
  link.cycle_error = false;
  link.saw_rollback = false;
  ++held_;
  if (config_->pool.mode == conf::PoolMode::kSession) pinned_ = true;
  auto& conn = *link.conn;
  if (conn.settings_fingerprint != settings_.fingerprint()) {
    protocol::WriteQuery(link.out, settings_.ReplaySql());
    Push(link, Pending::Kind::kInjectedQuery);
    conn.settings_fingerprint = settings_.fingerprint();
    conn.unnamed_id = 0;
  }
  if (!deferred_begin_.empty()) {
    // The client is inside a transaction block: this connection joins it.
    protocol::WriteQuery(link.out, deferred_begin_);
    Push(link, Pending::Kind::kInjectedQuery);
    conn.tx_status = 'T';
    conn.unnamed_id = 0;
  }
  StartPump(link);
}

void ClientSession::StartGather(std::span<const size_t> shards, Gather::SpecFactory merge,
                                bool silent) {
  gather_ = std::make_unique<Gather>(shards.size(), std::move(merge), silent);
  gather_shards_.assign(shards.begin(), shards.end());
  for (size_t i = 0; i < shards.size(); ++i) links_[shards[i]]->gather_pos = i;
}

awaitable<void> ClientSession::CloseGather(bool client_sync) {
  gather_open_ = false;
  if (!gather_) co_return;
  for (size_t shard : gather_shards_) {
    auto* l = link(shard);
    if (l == nullptr || !l->conn || !l->unsynced) continue;
    protocol::WriteSync(l->out);
    Push(*l, Pending::Kind::kSync);
    l->pending.back().gather = true;
    l->unsynced = false;
  }
  co_await FlushServers();
  co_await WaitQuiet([&] { return gather_->done(); });
  const bool ok = !gather_->failed() && gather_->done();
  if (!ok) cycle_failed_ = true;
  client_tx_status_ = gather_->status();
  gather_.reset();
  if (gather_implicit_) {
    gather_implicit_ = false;
    auto shards = gather_shards_;
    co_await FinishImplicit(shards, ok);
    client_tx_status_ = 'I';
  }
  if (client_tx_status_ == 'I') {
    deferred_begin_.clear();
    txn_shard_key_.reset();
  }
  if (client_sync) co_await AnswerReady();
}

bool ClientSession::FlushServersNow() {
  bool done = true;
  for (auto& l : links_) {
    if (l && l->conn && !l->out.empty() && !FlushServerNow(*l)) done = false;
  }
  return done;
}

awaitable<void> ClientSession::FlushServers() {
  for (auto& l : links_) {
    if (l && l->conn && !l->out.empty()) co_await FlushServer(*l);
  }
}

bool ClientSession::FlushServerNow(ServerLink& link) {
  if (!link.conn || link.out.empty()) return true;
  auto rest = link.out.Readable();
  auto ec = link.conn->stream().WriteNow(rest);
  if (!ec && !rest.empty()) {
    link.out.Consume(link.out.size() - rest.size());
    return false;
  }
  AfterServerWrite(link, ec);
  return true;
}

void ClientSession::AfterServerWrite(ServerLink& link, boost::system::error_code ec) {
  link.out.Clear();
  if (link.out.capacity() > (1u << 20)) link.out.Release();
  if (!link.conn) return;  // the pump dropped a failed connection meanwhile
  if (ec) {
    link.conn->broken = true;
    Kick(link);
    return;
  }
  if (link.pending.empty()) Kick(link);
}

// ---- Client messages ----------------------------------------------------------------------

awaitable<ClientSession::Flow> ClientSession::Malformed(std::string_view what) {
  worker_.counters().Add(worker_.counters().protocol_errors);
  co_await client_write_.Lock();
  protocol::Buffer err;
  protocol::WriteErrorResponse(err, protocol::Severity::kFatal, "08P01",
                               Cat("malformed ", what, " message"));
  if (BusyLink() == nullptr) co_await stream_.WriteAll(err.Readable());
  client_write_.Unlock();
  co_return Flow::kClose;
}

bool ClientSession::SyncLinks() {
  ServerLink* last = nullptr;
  for (auto& l : links_) {
    if (!l || !l->conn || !l->unsynced) continue;
    // Only the last server's ReadyForQuery reaches the client.
    if (last != nullptr) last->pending.back().drop_ready = true;
    protocol::WriteSync(l->out);
    Push(*l, Pending::Kind::kSync);
    l->unsynced = false;
    last = l.get();
  }
  return last != nullptr;
}

std::optional<ClientSession::Flow> ClientSession::HandleNow(const protocol::Frame& f) {
  if (copy_in_ || gather_open_) return std::nullopt;
  if (f.type == fe::kBind) return skip_until_sync_ ? std::nullopt : BindNow(f);
  if (f.type == fe::kParse) {
    return skip_until_sync_ || HasDeferredParse() ? std::nullopt : ParseNow(f);
  }
  if (f.type == fe::kTerminate) return Goodbye();
  if (HasDeferredParse()) return std::nullopt;
  if (f.type == fe::kQuery) return skip_until_sync_ ? std::nullopt : QueryNow(f);
  if (f.type == fe::kSync) {
    bool unsynced = false;
    for (const auto& l : links_) unsynced = unsynced || (l && l->conn && l->unsynced);
    if (!unsynced) return std::nullopt;  // pgring answers the ReadyForQuery itself
    skip_until_sync_ = false;
    worker_.counters().Add(worker_.counters().queries);
    SyncLinks();
    cycle_failed_ = false;
    return Flow::kContinue;
  }
  if (skip_until_sync_) return std::nullopt;
  std::string_view portal;
  Pending::Kind kind;
  if (f.type == fe::kExecute) {
    auto e = protocol::ParseExecute(f.body);
    if (!e) return std::nullopt;
    portal = e->portal;
    kind = Pending::Kind::kExecute;
  } else if (f.type == fe::kDescribe) {
    auto d = protocol::ParseDescribe(f.body);
    if (!d || d->kind != 'P') return std::nullopt;
    portal = d->name;
    kind = Pending::Kind::kDescribe;
  } else {
    return std::nullopt;
  }
  const PortalTarget* target = nullptr;
  if (portal.empty()) {
    target = unnamed_portal_.get();
  } else if (auto it = extended().portals.find(portal); it != extended().portals.end()) {
    target = &it->second;
  }
  if (target == nullptr || target->local || target->gather || !UseNow(target->shard)) {
    return std::nullopt;
  }
  SendPortalMessage(*links_[target->shard], f, kind);
  return Flow::kContinue;
}

std::optional<ClientSession::Flow> ClientSession::ParseNow(const protocol::Frame& f) {
  auto p = protocol::ParseParse(f.body);
  if (!p || (!p->name.empty() && extended().statements.contains(p->name))) return std::nullopt;
  auto stmt = InternParse(*p);
  if (!stmt.ok()) return std::nullopt;  // HandleMessage answers the error
  DeferParse(std::string(p->name), *std::move(stmt));
  return Flow::kContinue;
}

absl::StatusOr<std::shared_ptr<const PreparedStatement>> ClientSession::InternParse(
    const protocol::Parse& p) {
  // Drivers in extended mode parse the unnamed statement again for every query, mostly with
  // the text of the one before: that is the same statement, without a registry lookup.
  if (p.name.empty() && extended_ && extended_->unnamed.stmt &&
      SameStatement(*extended_->unnamed.stmt, p)) {
    return extended_->unnamed.stmt;
  }
  auto stmt = worker_.statements().Intern(p);
  if (!stmt->analysis) {
    auto a = worker_.analyzer().Get(stmt->query);
    if (!a.ok()) return a.status();
    stmt->analysis = std::move(*a);
  }
  return stmt;
}

const ClientSession::ClientStatement* ClientSession::FindStatement(std::string_view name) const {
  const Extended& x = extended();
  if (name.empty()) return x.unnamed.stmt ? &x.unnamed : nullptr;
  auto it = x.statements.find(name);
  return it != x.statements.end() ? &it->second : nullptr;
}

const ClientSession::Extended& ClientSession::extended() const {
  static const Extended kNone;
  return extended_ ? *extended_ : kNone;
}

ClientSession::Extended& ClientSession::MakeExtended() {
  if (!extended_) extended_ = std::make_unique<Extended>();
  return *extended_;
}

void ClientSession::DeferParse(std::string name, std::shared_ptr<const PreparedStatement> stmt) {
  ClientStatement cs{std::move(stmt), name.empty()};
  Extended& x = MakeExtended();
  if (name.empty()) {
    x.unnamed = cs;
    x.unnamed_id = worker_.NextUnnamedId();
  } else {
    x.statements.emplace(name, cs);
  }
  x.deferred_parse = std::move(cs);
  x.deferred_parse_name = std::move(name);
}

void ClientSession::SendPortalMessage(ServerLink& link, const protocol::Frame& f,
                                      Pending::Kind kind) {
  link.unsynced = true;
  link.out.Append(f.raw);
  Push(link, kind);
}

awaitable<ClientSession::Flow> ClientSession::HandleMessage(const protocol::Frame& f) {
  const char type = f.type;
  // The plan QueryNow made of this message, if it made one.
  const std::unique_ptr<QueryPlan> planned = std::move(planned_);
  if (copy_in_) {
    if (type == fe::kCopyData || type == fe::kCopyDone || type == fe::kCopyFail) {
      co_await OnCopyMessage(f);
      co_return Flow::kContinue;
    }
    if (type == fe::kFlush || type == fe::kSync) co_return Flow::kContinue;
    // Anything else ends COPY with an error, as PostgreSQL does.
    co_await FailCopyIn(SqlError(absl::StatusCode::kInvalidArgument, "08P01",
                                 Cat("unexpected message type 0x",
                                     fmt::format("{:02X}", static_cast<unsigned char>(type)),
                                     " during COPY from stdin")));
  }
  if (skip_until_sync_ && type != fe::kSync) co_return Flow::kContinue;
  // A message that is not about the open gather's portal closes it first.
  const bool portal_message = type == fe::kExecute || type == fe::kFlush || type == fe::kSync ||
                              type == fe::kDescribe;
  if (gather_open_ && !portal_message) co_await CloseGather(false);
  // The deferred Parse goes to the Bind's target, else to any shard.
  if (HasDeferredParse() && type != fe::kBind && type != fe::kParse && type != fe::kTerminate) {
    const size_t shard = AnyShard();
    if (auto* l = UseNow(shard) ? link(shard) : co_await UseExtended(shard)) {
      co_await SendDeferredParse(*l);
    } else {
      DropDeferredParse();
    }
    if (skip_until_sync_ && type != fe::kSync) co_return Flow::kContinue;
  }

  switch (type) {
    case fe::kQuery: {
      auto q = protocol::ParseQuery(f.body);
      if (!q) co_return co_await Malformed("Query");
      worker_.counters().Add(worker_.counters().queries);
      if (auto name = DeallocateName(q->sql); name && extended().statements.contains(*name)) {
        // A protocol-level statement of this client (psycopg deallocates them so): only the
        // client's name goes away; the server-side statement is shared.
        extended_->statements.erase(*name);
        protocol::Buffer b;
        protocol::WriteCommandComplete(b, "DEALLOCATE");
        co_await Answer(BufferBytes(b));
        co_await AnswerReady();
        co_return Flow::kContinue;
      }
      QueryPlan plan;
      if (planned) {
        plan = std::move(*planned);
      } else {
        plan = PlanQuery(q->sql);
      }
      co_await OnQuery(f, q->sql, std::move(plan));
      co_return Flow::kContinue;
    }
    case fe::kParse: {
      auto p = protocol::ParseParse(f.body);
      if (!p) co_return co_await Malformed("Parse");
      if (HasDeferredParse()) {
        // Two Parses in a row: the first goes to any shard now.
        const size_t shard = AnyShard();
        auto* l = UseNow(shard) ? link(shard) : co_await UseExtended(shard);
        if (l == nullptr) {
          DropDeferredParse();
          co_return Flow::kContinue;
        }
        co_await SendDeferredParse(*l);
      }
      std::string name(p->name);
      if (!name.empty() && extended().statements.contains(name)) {
        co_await AnswerError(SqlError(absl::StatusCode::kAlreadyExists, "42P05",
                                      Cat("prepared statement \"", name, "\" already exists")),
                             true);
        co_return Flow::kContinue;
      }
      auto stmt = InternParse(*p);
      if (!stmt.ok()) {
        co_await AnswerError(stmt.status(), true);
        co_return Flow::kContinue;
      }
      DeferParse(std::move(name), *std::move(stmt));
      co_return Flow::kContinue;
    }
    case fe::kBind: {
      auto b = protocol::ParseBind(f.body);
      if (!b) co_return co_await Malformed("Bind");
      co_return co_await OnBind(f, *b);
    }
    case fe::kDescribe:
    case fe::kExecute:
    case fe::kClose: {
      char kind = 'P';
      std::string_view name;
      int32_t max_rows = 0;
      if (type == fe::kExecute) {
        auto e = protocol::ParseExecute(f.body);
        if (!e) co_return co_await Malformed("Execute");
        name = e->portal;
        max_rows = e->max_rows;
      } else {
        auto d = protocol::ParseDescribe(f.body);
        if (!d) co_return co_await Malformed(type == fe::kClose ? "Close" : "Describe");
        kind = d->kind;
        name = d->name;
      }
      if (kind == 'S') co_return co_await OnStatementMessage(f, type, name);
      co_return co_await OnPortalMessage(f, type, name, max_rows);
    }
    case fe::kSync: {
      skip_until_sync_ = false;
      worker_.counters().Add(worker_.counters().queries);
      if (gather_open_) {
        co_await CloseGather(true);
        cycle_failed_ = false;
        co_return Flow::kContinue;
      }
      if (!SyncLinks()) co_await AnswerReady();
      cycle_failed_ = false;
      co_return Flow::kContinue;
    }
    case fe::kFlush: {
      if (gather_open_) {
        for (size_t shard : gather_shards_) links_[shard]->out.Append(f.raw);
      } else if (auto* l = BusyLink()) {
        l->out.Append(f.raw);
      }
      co_return Flow::kContinue;
    }
    case fe::kCopyData:
    case fe::kCopyDone:
    case fe::kCopyFail: {
      // COPY on one shard streams through; outside COPY PostgreSQL drops these too.
      if (auto* l = BusyLink()) l->out.Append(f.raw);
      co_return Flow::kContinue;
    }
    case fe::kFunctionCall: {
      const size_t shard = AnyShard();
      auto st = co_await Use(std::span(&shard, 1), nullptr);
      if (!st.ok()) {
        co_await AnswerError(st, false);
        co_return Flow::kContinue;
      }
      auto& l = *links_[shard];
      l.out.Append(f.raw);
      Push(l, Pending::Kind::kFunctionCall);
      co_return Flow::kContinue;
    }
    case fe::kTerminate:
      co_return Goodbye();
    default: {
      worker_.counters().Add(worker_.counters().protocol_errors);
      co_await client_write_.Lock();
      protocol::Buffer err;
      std::string shown = std::isprint(static_cast<unsigned char>(type))
                              ? Cat("'", std::string(1, type), "'")
                              : Cat(static_cast<int>(static_cast<unsigned char>(type)));
      protocol::WriteErrorResponse(err, protocol::Severity::kFatal, "08P01",
                                   Cat("invalid frontend message type ", shown));
      if (BusyLink() == nullptr) co_await stream_.WriteAll(err.Readable());
      client_write_.Unlock();
      co_return Flow::kClose;
    }
  }
}

awaitable<void> ClientSession::FlushServer(ServerLink& link) {
  if (!link.conn || link.out.empty()) co_return;
  link.writing = true;
  auto ec = co_await link.conn->stream().WriteAll(link.out.Readable());
  link.writing = false;
  AfterServerWrite(link, ec);
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

void ClientSession::Detach(ServerLink& link, Clock::time_point now) {
  // (No debug line here: it runs once per transaction, and even a disabled spdlog call
  // costs a call into the library; SHOW SERVERS and SHOW CLIENTS show the assignment.)
  worker_.counters().Add(worker_.counters().transaction_us, Micros(now - link.attach_time));
  worker_.pool(link.shard).Release(std::move(link.conn), now);
  --held_;
  if (link.out.capacity() > (64u << 10)) link.out.Release();
  NotifyQuiet();
  if (close_requested_ && !holds_server()) WakeReader();
}

void ClientSession::DrainSynthetic(ServerLink& link, protocol::Buffer& synth) {
  while (!link.pending.empty() && link.pending.front().kind == Pending::Kind::kSynthetic) {
    synth.Append(link.pending.front().text->bytes);
    link.pending.pop_front();
  }
}

void ClientSession::OnReadyForQuery(ServerLink& link, char status, bool clients) {
  auto now = Clock::now();
  worker_.counters().Add(worker_.counters().query_us, Micros(now - link.cycle_start));
  if (status == 'I' && clients) worker_.counters().Add(worker_.counters().transactions);
  link.cycle_start = now;
  link.conn->tx_status = status;
  if (clients) {
    client_tx_status_ = status;
    if (status == 'I') {
      deferred_begin_.clear();
      txn_shard_key_.reset();
    }
  }
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
    if (!link.pending.empty() && link.pending.front().gather) return Disposition::kGather;
    return Disposition::kForward;
  }
  if (link.pending.empty()) {
    // Nothing was asked: a server-initiated error (e.g. FATAL before a disconnect).
    return Disposition::kForward;
  }
  Pending& front = link.pending.front();
  const Disposition pass = front.gather ? Disposition::kGather : Disposition::kForward;

  if (type == be::kReadyForQuery) {
    auto status = protocol::ParseReadyForQuery(f.body).value_or('E');
    bool injected = false;
    bool gather = false;
    bool drop = false;
    while (!link.pending.empty()) {
      const Pending& p = link.pending.front();
      K k = p.kind;
      gather = p.gather;
      drop = p.drop_ready;
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
    OnReadyForQuery(link, status, !gather && !drop);
    if (gather) return Disposition::kGather;
    return drop ? Disposition::kDrop : Disposition::kForward;
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
    if (pass == Disposition::kForward) cycle_failed_ = true;
    if (front.kind == K::kQuery || front.kind == K::kFunctionCall) return pass;
    // Extended protocol: the server skips everything up to the next Sync.
    while (!link.pending.empty() && link.pending.front().kind != K::kSync) {
      auto& p = link.pending.front();
      if (p.kind == K::kParse || p.kind == K::kInjectedParse) {
        if (p.stmt_id != 0) link.conn->RemovePrepared(p.stmt_id);
      }
      if (p.text && !p.text->client_stmt.empty() && extended_) {
        extended_->statements.erase(p.text->client_stmt);
      }
      link.pending.pop_front();
    }
    return pass;
  }

  if (front.kind == K::kInjectedQuery) return Disposition::kDrop;

  switch (type) {
    case be::kParseComplete:
      if (front.kind == K::kParse || front.kind == K::kInjectedParse) {
        bool injected = front.kind == K::kInjectedParse;
        link.pending.pop_front();
        return injected ? Disposition::kDrop : pass;
      }
      break;
    case be::kBindComplete:
      if (front.kind == K::kBind) link.pending.pop_front();
      break;
    case be::kCloseComplete:
      if (front.kind == K::kClose || front.kind == K::kInjectedClose) {
        bool injected = front.kind == K::kInjectedClose;
        link.pending.pop_front();
        return injected ? Disposition::kDrop : pass;
      }
      break;
    case be::kRowDescription:
    case be::kNoData:
      if (front.kind == K::kDescribe) link.pending.pop_front();
      break;
    case be::kCommandComplete:
      if (HasTag(f, "ROLLBACK")) link.saw_rollback = true;
      if (front.kind == K::kExecute) link.pending.pop_front();
      break;
    case be::kEmptyQueryResponse:
    case be::kPortalSuspended:
      if (front.kind == K::kExecute) link.pending.pop_front();
      break;
    default:
      break;
  }
  return pass;
}

// ---- The pump ------------------------------------------------------------------------------
//
// Usually a plain read callback (ReadServer / OnServerRead): each batch of answers is
// forwarded with a non-blocking write and the next read is started, with no coroutine.
// Whatever has to wait (the client socket is locked or full, the connection failed, a gone
// client's transaction must be ended) and every TLS connection continue in the Pump
// coroutine, which hands back to the callback when it is done waiting.

void ClientSession::StartPump(ServerLink& link) {
  if (!link.conn->stream().tls()) {
    ReadServer(link);
    return;
  }
  SpawnPump(link, PumpStep::kRead, {}, 0);
}

void ClientSession::SpawnPump(ServerLink& link, PumpStep step, boost::system::error_code ec,
                              size_t n) {
  asio::co_spawn(worker_.io(), Pump(shared_from_this(), &link, step, ec, n), LogEnd("server pump"));
}

void ClientSession::ReadServer(ServerLink& link) {
  auto& in = link.conn->in();
  auto room = in.Prepare(16384);
  link.conn->stream().socket().ReadNext(
      asio::buffer(room.data(), room.size()), !in.empty(),
      [self = shared_from_this(), &link](boost::system::error_code ec, size_t n) {
        self->OnServerRead(link, ec, n);
      });
}

void ClientSession::OnServerRead(ServerLink& link, boost::system::error_code ec, size_t n) {
  auto* conn = link.conn.get();
  conn->in().Commit(n);
  if (ec || n == 0 || conn->broken || !client_write_.TryLock()) {
    SpawnPump(link, PumpStep::kGotRead, ec, n);
    return;
  }
  if (!ForwardBatch(link)) {
    SpawnPump(link, PumpStep::kWriteRest, {}, 0);
    return;
  }
  EndBatch(link);
  if (SettleNow(link)) return;
  if (Closing(link)) {
    SpawnPump(link, PumpStep::kSettle, {}, 0);
    return;
  }
  ReadServer(link);
}

bool ClientSession::SettleNow(ServerLink& link) {
  // Runs after every step of progress (never before the first read: the reader queues
  // its first request right after the pump starts). True when the pump is done because
  // the connection went back to the pool.
  if (link.pending.empty() || link.gathered) NotifyQuiet();
  if (!Detachable(link)) return false;
  // The transaction ended at the last ReadyForQuery, whose time starts the next cycle
  // (a connection given back before any cycle ends at its attach time).
  Detach(link, std::max(link.cycle_start, link.attach_time));
  return true;
}

bool ClientSession::Closing(const ServerLink& link) const {
  return closing_ && link.pending.empty() && !link.writing;
}

awaitable<bool> ClientSession::SettleClosing(ServerLink& link) {
  // The client is gone: end its transaction, then drop its session state.
  if (link.conn->tx_status != 'I') {
    protocol::WriteQuery(link.out, "ROLLBACK");
  } else {
    protocol::WriteQuery(link.out, "DISCARD ALL");
    link.conn->ClearPrepared();
    link.conn->settings_fingerprint = 0;
    pinned_ = false;
  }
  Push(link, Pending::Kind::kInjectedQuery);
  link.writing = true;
  auto wec = co_await link.conn->stream().WriteAll(link.out.Readable());
  link.writing = false;
  link.out.Clear();
  if (wec) {
    link.conn->broken = true;
    Detach(link, Clock::now());
    co_return true;
  }
  co_return false;
}

awaitable<void> ClientSession::ServerLost(ServerLink& link, boost::system::error_code ec) {
  auto* conn = link.conn.get();
  conn->broken = true;
  const bool was_busy = !link.pending.empty() || conn->tx_status != 'I';
  link.pending.clear();
  link.unsynced = false;
  if (was_busy && !closing_) {
    spdlog::warn("shard {}: server connection lost: {}", link.shard,
                 ec ? ec.message() : "closed by server");
    co_await client_write_.Lock();
    protocol::Buffer err;
    protocol::WriteErrorResponse(
        err, protocol::Severity::kFatal, "08006",
        Cat("the server connection to shard \"", worker_.pool(link.shard).options().shard_name,
            "\" was lost during a transaction"),
        {}, "the transaction was not committed; reconnect and retry it");
    if (!client_gone_) co_await stream_.WriteAll(err.Readable());
    client_write_.Unlock();
    client_gone_ = true;
    closing_ = true;
    boost::system::error_code ignored;
    stream_.socket().cancel(ignored);
  }
  Detach(link, Clock::now());
}

bool ClientSession::ForwardBatch(ServerLink& link) {
  auto* conn = link.conn.get();
  auto& synth = link.synth;
  auto& segments = link.segments;
  auto data = conn->in().Readable();
  size_t pos = 0;
  link.gathered = false;
  segments.clear();
  synth.Clear();
  for (;;) {
    if (!link.pending.empty() && link.pending.front().kind == Pending::Kind::kSynthetic) {
      size_t before = synth.size();
      DrainSynthetic(link, synth);
      segments.push_back({true, before, synth.size() - before});
    }
    auto r = protocol::ParseTypedFrame(data.subspan(pos));
    if (r.status == protocol::FrameStatus::kNeedMore) break;
    if (r.status == protocol::FrameStatus::kInvalid) {
      conn->broken = true;
      break;
    }
    const auto disposition = OnServerFrame(link, r.frame);
    if (disposition == Disposition::kForward) {
      if (!segments.empty() && !segments.back().synthetic &&
          segments.back().offset + segments.back().length == pos) {
        segments.back().length += r.frame.size;
      } else {
        segments.push_back({false, pos, r.frame.size});
      }
    } else if (disposition == Disposition::kGather && gather_) {
      link.gathered = true;
      // The combined answer, as far as this frame lets the Gather write it.
      size_t at = synth.size();
      gather_->OnFrame(link.gather_pos, r.frame, synth);
      if (synth.size() > at) segments.push_back({true, at, synth.size() - at});
    }
    pos += r.frame.size;
  }
  link.batch_end = pos;
  link.gather.clear();
  if (segments.empty() || client_gone_) return true;
  size_t total = 0;
  for (const auto& seg : segments) {
    const std::byte* base = seg.synthetic ? synth.Readable().data() : data.data();
    link.gather.emplace_back(base + seg.offset, seg.length);
    total += seg.length;
  }
  worker_.counters().Add(worker_.counters().bytes_sent, total);
  if (auto wec = stream_.WriteNow(link.gather)) {
    client_gone_ = true;
    closing_ = true;
    link.gather.clear();
  }
  return link.gather.empty();
}

void ClientSession::EndBatch(ServerLink& link) {
  auto& in = link.conn->in();
  in.Consume(link.batch_end);
  link.batch_end = 0;
  client_write_.Unlock();
  if (in.empty() && in.capacity() > (1u << 20)) in.Release();
}

awaitable<void> ClientSession::Pump(std::shared_ptr<ClientSession> self, ServerLink* link_ptr,
                                    PumpStep step, boost::system::error_code ec, size_t n) {
  (void)self;  // keeps the session alive while the pump runs
  ServerLink& link = *link_ptr;
  ServerConnection* conn = link.conn.get();
  for (;;) {
    if (step == PumpStep::kRead) {
      std::tie(ec, n) = co_await conn->stream().ReadSome(conn->in(), 16384);
      step = PumpStep::kGotRead;
    }
    if (step == PumpStep::kGotRead) {
      // A kicked read: the reader wants the state checked again.
      const bool kicked = ec == asio::error::operation_aborted && link.kicked;
      if (kicked) link.kicked = false;
      if (kicked && !conn->broken) {
        step = PumpStep::kSettle;
      } else if (ec || n == 0 || conn->broken) {
        co_await ServerLost(link, ec);
        co_return;
      } else {
        if (!client_write_.TryLock()) co_await client_write_.Lock();
        if (ForwardBatch(link)) {
          EndBatch(link);
          step = PumpStep::kSettle;
        } else {
          step = PumpStep::kWriteRest;
        }
      }
    }
    if (step == PumpStep::kWriteRest) {
      if (auto wec = co_await stream_.WriteAll(link.gather)) {
        client_gone_ = true;
        closing_ = true;
      }
      EndBatch(link);
    }
    // PumpStep::kSettle
    if (SettleNow(link)) co_return;
    if (Closing(link)) {
      const bool done = co_await SettleClosing(link);
      if (done) co_return;
    }
    if (!conn->stream().tls()) {
      ReadServer(link);
      co_return;
    }
    step = PumpStep::kRead;
  }
}

ClientSession::Flow ClientSession::Goodbye() {
  said_goodbye_ = true;
  // Extended-protocol messages not closed by a Sync yet are dropped, as when the client
  // just leaves (PostgreSQL would end their implicit transaction without committing it).
  for (auto& l : links_) {
    if (l && l->conn && l->unsynced) l->out.Clear();
  }
  return Flow::kClose;
}

void ClientSession::Finish() {
  closing_ = true;
  NotifyQuiet();
  for (auto& l : links_) {
    if (!l || !l->conn) continue;
    // Let the pump end the transaction and return the connection. A statement still
    // running for a client that left is cancelled rather than waited for; one the client
    // sent before it said goodbye (Terminate) runs to the end, as on PostgreSQL (its
    // answer is dropped), unless it is part of an extended-protocol cycle with no Sync.
    const bool runs_on = said_goodbye_ && !l->unsynced;
    if (!runs_on) {
      l->out.Clear();
      l->unsynced = false;
    }
    if (l->pending.empty()) {
      Kick(*l);
    } else if (!runs_on) {
      CancelOn(*l->conn);
    }
  }
  if (said_goodbye_) client_gone_ = true;  // the pump drops the answers still to come
  stream_.Close();
}

void ClientSession::ForwardCancel() {
  for (auto& l : links_) {
    if (l && l->conn && !l->pending.empty()) CancelOn(*l->conn);
  }
}

void ClientSession::CancelOn(const ServerConnection& conn) {
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
  info.user = user_;
  info.database = config_->listen.database;  // the only one the handshake accepts
  info.state = holds_server() ? "active" : pool_waiting_ ? "waiting" : "idle";
  // Asked of the socket (not kept: an idle client should cost little memory).
  boost::system::error_code ec;
  if (auto ep = stream_.socket().remote_endpoint(ec); !ec) {
    info.addr = ep.address().to_string();
    info.port = ep.port();
  }
  info.application_name = application_name_;
  info.connect_time = connect_time_;
  info.request_time = request_time_;
  info.pid = cancel_key_.pid;
  info.tls = stream_.tls();
  info.pinned = pinned_;
  info.parked = parked_;
  info.prepared_statements = extended().statements.size();
  for (const auto& l : links_) {
    if (l && l->conn) {
      info.server_id = static_cast<int64_t>(l->conn->id);
      break;
    }
  }
  return info;
}

std::vector<std::pair<size_t, const ServerConnection*>> ClientSession::servers() const {
  std::vector<std::pair<size_t, const ServerConnection*>> out;
  for (const auto& l : links_)
    if (l && l->conn) out.emplace_back(l->shard, l->conn.get());
  return out;
}

}  // namespace pgring::proxy
