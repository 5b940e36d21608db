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
    co_await FlushServers();
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
  } else if (BusyLink() == nullptr && client_tx_status_ != 'I') {
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
  if (BusyLink() == nullptr) co_await stream_.WriteAll(err.Readable());
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

void ClientSession::Push(ServerLink& link, Pending::Kind kind, uint64_t stmt_id,
                         std::string client_stmt) {
  if (link.pending.empty()) link.cycle_start = Clock::now();
  link.pending.push_back(Pending{kind, false, false, stmt_id, std::move(client_stmt), {}});
}

ClientSession::ServerLink* ClientSession::BusyLink() {
  for (auto& l : links_) {
    if (l && l->conn && !l->pending.empty()) return l.get();
  }
  return nullptr;
}

awaitable<void> ClientSession::Answer(std::string bytes, std::string client_stmt) {
  if (auto* link = BusyLink()) {
    link->pending.push_back(Pending{Pending::Kind::kSynthetic, false, false, 0,
                                    std::move(client_stmt), std::move(bytes)});
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
  auto r = b.Readable();
  co_await Answer(std::string(reinterpret_cast<const char*>(r.data()), r.size()));
}

awaitable<bool> ClientSession::WriteClient(std::span<const std::byte> bytes) {
  co_await client_write_.Lock();
  auto ec = co_await stream_.WriteAll(bytes);
  client_write_.Unlock();
  if (ec) client_gone_ = true;
  worker_.counters().Add(worker_.counters().bytes_sent, bytes.size());
  co_return !ec;
}

void ClientSession::NoteStatementText(ServerLink& link, std::string_view sql) {
  if (auto change = ClassifySetting(sql)) cycle_setting_ = std::move(*change);
  if (!pinned_) {
    if (auto reason = SessionPinReason(sql)) {
      pinned_ = true;
      pin_reason_ = std::string(*reason);
      spdlog::debug("client {}:{} keeps its server connections: {}", tcp_addr_, tcp_port_,
                    pin_reason_);
    }
  }
  if (DropsPreparedStatements(sql)) {
    // The server forgets every prepared statement, and so does the client's session.
    link.conn->ClearPrepared();
    statements_.clear();
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
  if (!unnamed_.stmt || link.conn->unnamed_id == unnamed_id_) return;
  protocol::WriteParse(link.out, "", unnamed_.stmt->query, unnamed_.stmt->param_types);
  link.conn->unnamed_id = unnamed_id_;
  Push(link, Pending::Kind::kInjectedParse);
}

awaitable<void> ClientSession::SendDeferredParse(ServerLink& link) {
  if (!deferred_parse_) co_return;
  ClientStatement cs = std::move(*deferred_parse_);
  deferred_parse_.reset();
  link.unsynced = true;
  if (cs.unnamed) {
    protocol::WriteParse(link.out, "", cs.stmt->query, cs.stmt->param_types);
    link.conn->unnamed_id = unnamed_id_;
  } else if (link.conn->HasPrepared(cs.stmt->id)) {
    worker_.counters().Add(worker_.counters().prepare_hits);
    co_await Answer(Bytes(protocol::WriteParseComplete), std::move(deferred_parse_name_));
    co_return;
  } else {
    protocol::WriteParse(link.out, cs.stmt->server_name, cs.stmt->query, cs.stmt->param_types);
    link.conn->AddPrepared(cs.stmt->id);
    worker_.counters().Add(worker_.counters().prepares);
  }
  Push(link, Pending::Kind::kParse, cs.unnamed ? 0 : cs.stmt->id,
       cs.unnamed ? std::string() : std::move(deferred_parse_name_));
}

// ---- Routing ------------------------------------------------------------------------------

absl::StatusOr<std::shared_ptr<const sharding::Analysis>> ClientSession::Analyze(
    std::string_view sql) {
  return worker_.analyzer().Get(sql);
}

absl::StatusOr<sharding::RoutePlan> ClientSession::Route(const sharding::Statement& s,
                                                        const protocol::BindParams* params,
                                                        std::span<const uint32_t> param_types) {
  sharding::RouteInputs in;
  in.params = params;
  in.param_types = param_types;
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
  co_await worker_.WaitWhilePaused();
  spdlog::debug("client {}: acquiring a server connection to shard {}", cancel_key_.pid, shard);
  auto acquired = co_await worker_.pool(shard).Acquire();
  if (!acquired.ok()) co_return acquired.status();
  if (links_.size() <= shard) links_.resize(worker_.pool_count());
  if (!links_[shard]) links_[shard] = std::make_unique<ServerLink>();
  auto& link = *links_[shard];
  link.shard = shard;
  link.conn = std::move(*acquired);
  link.attach_time = Clock::now();
  link.unsynced = false;
  link.kicked = false;
  link.cycle_error = false;
  link.saw_rollback = false;
  ++held_;
  if (config_->pool.mode == conf::PoolMode::kSession && !pinned_) {
    pinned_ = true;
    pin_reason_ = "session pooling";
  }
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

awaitable<void> ClientSession::FlushServers() {
  for (auto& l : links_) {
    if (l && l->conn && !l->out.empty()) co_await FlushServer(*l);
  }
}

// ---- Local answers ------------------------------------------------------------------------

// SET/RESET/SHOW pgring.*, the empty query, and transaction control while no server
// connection is held. Writes the statement's answer without ReadyForQuery; `extended`
// means a Describe of the portal may already have been answered by the caller.
awaitable<bool> ClientSession::RunLocal(const sharding::Statement& s, std::string_view text,
                                        bool extended) {
  using sharding::StatementKind;
  protocol::Buffer out;
  (void)text;
  if (s.kind == StatementKind::kEmpty) {
    protocol::WriteEmptyQueryResponse(out);
  } else if (s.kind == StatementKind::kShow) {
    const std::string value = txn_shard_key_    ? *txn_shard_key_
                              : session_shard_key_ ? *session_shard_key_
                                                   : std::string();
    if (!extended) {
      std::string_view cols[] = {s.set_name};
      protocol::WriteRowDescriptionText(out, cols);
    }
    std::optional<std::string_view> vals[] = {std::string_view(value)};
    protocol::WriteDataRow(out, vals);
    protocol::WriteCommandComplete(out, "SHOW");
  } else if (s.kind == StatementKind::kSet) {
    if (s.set_name != "pgring.shard_key" && !s.reset_all) {
      co_await Answer(ErrorBytes(SqlError(
          absl::StatusCode::kInvalidArgument, "42704",
          Cat("unrecognized configuration parameter \"", s.set_name, "\""),
          "pgring knows one setting of its own: pgring.shard_key")));
      co_return false;
    }
    auto& slot = s.set_local ? txn_shard_key_ : session_shard_key_;
    if (s.is_reset || s.set_default || s.reset_all) {
      slot.reset();
      if (s.reset_all) txn_shard_key_.reset();
    } else {
      slot = s.set_value;
    }
    protocol::WriteCommandComplete(out, s.is_reset || s.reset_all ? "RESET" : "SET");
  } else {
    co_await Answer(ErrorBytes(SqlError(absl::StatusCode::kInternal, "XX000",
                                        "pgring cannot answer this statement itself")));
    co_return false;
  }
  auto r = out.Readable();
  co_await Answer(std::string(reinterpret_cast<const char*>(r.data()), r.size()));
  co_return true;
}

// BEGIN, COMMIT and ROLLBACK while the client holds no server connection.
awaitable<bool> ClientSession::RunTransactionLocally(const sharding::Statement& s) {
  using sharding::TransactionOp;
  protocol::Buffer out;
  switch (s.txn_op) {
    case TransactionOp::kBegin:
      if (client_tx_status_ != 'I') {
        protocol::WriteNoticeResponse(out, protocol::Severity::kWarning, "25001",
                                      "there is already a transaction in progress");
      } else {
        deferred_begin_ = "BEGIN";
        if (s.txn_read_only) deferred_begin_ = "BEGIN READ ONLY";
      }
      protocol::WriteCommandComplete(out, "BEGIN");
      client_tx_status_ = 'T';
      break;
    case TransactionOp::kCommit:
    case TransactionOp::kRollback:
      if (client_tx_status_ == 'I') {
        protocol::WriteNoticeResponse(out, protocol::Severity::kWarning, "25P01",
                                      "there is no transaction in progress");
      }
      protocol::WriteCommandComplete(
          out, s.txn_op == TransactionOp::kCommit && client_tx_status_ != 'E' ? "COMMIT"
                                                                              : "ROLLBACK");
      client_tx_status_ = 'I';
      deferred_begin_.clear();
      txn_shard_key_.reset();
      break;
    default:
      co_return false;
  }
  auto r = out.Readable();
  co_await Answer(std::string(reinterpret_cast<const char*>(r.data()), r.size()));
  co_return true;
}

// Whether pgring answers a transaction-control statement itself: no server connection is
// held, and it is BEGIN (without options pgring cannot replay), COMMIT or ROLLBACK.
static bool LocalTransaction(const sharding::Statement& s, bool holds_server) {
  using sharding::TransactionOp;
  if (holds_server || s.kind != sharding::StatementKind::kTransaction || s.txn_chain) return false;
  return s.txn_op == TransactionOp::kBegin || s.txn_op == TransactionOp::kCommit ||
         s.txn_op == TransactionOp::kRollback;
}

// ---- Simple queries -----------------------------------------------------------------------

awaitable<void> ClientSession::OnQuery(const protocol::Frame& f, std::string_view sql) {
  using sharding::RouteKind;
  using sharding::StatementKind;
  cycle_failed_ = false;
  if (!holds_server()) topology_ = worker_.topology();
  // A DML statement is analyzed by its shape (its key literals as parameters), so that
  // statements differing only in their values share one analysis; the shape is routed with
  // the values. Plans that edit the statement's text need its own analysis.
  std::shared_ptr<const sharding::Analysis> analysis;
  std::vector<sharding::RoutePlan> plans;
  std::vector<std::pair<size_t, size_t>> ranges;
  if (sharding::ShapeOf(sql, shape_)) {
    auto shaped = worker_.analyzer().Get(shape_.text);
    if (shaped.ok() && (*shaped)->statements.size() == 1) {
      shape_params_.values.clear();
      for (auto v : shape_.values) shape_params_.values.emplace_back(std::as_bytes(std::span(v)));
      auto plan = Route((*shaped)->statements[0], &shape_params_, {});
      if (plan.ok() && !plan->needs_merge && plan->insert_rows.size() <= 1) {
        analysis = std::move(*shaped);
        plans.push_back(std::move(*plan));
        ranges.emplace_back(0, sql.size());
      }
    }
  }
  if (!analysis) {
    auto analyzed = Analyze(sql);
    if (!analyzed.ok()) {
      co_await AnswerError(analyzed.status(), false);
      co_return;
    }
    analysis = std::move(*analyzed);
    ranges = analysis->ranges;
  }
  const auto& a = *analysis;
  const size_t n = a.statements.size();
  if (client_tx_status_ == 'E') {
    for (const auto& s : a.statements) {
      if (s.kind == StatementKind::kTransaction) continue;
      co_await AnswerError(
          SqlError(absl::StatusCode::kFailedPrecondition, "25P02",
                   "current transaction is aborted, commands ignored until end of "
                   "transaction block"),
          false);
      co_return;
    }
  }

  // Route every statement first: a query string is refused whole or run.
  if (plans.empty()) {
    plans.reserve(n);
    for (const auto& s : a.statements) {
      auto plan = Route(s, nullptr, {});
      if (!plan.ok()) {
        co_await AnswerError(plan.status(), false);
        co_return;
      }
      plans.push_back(std::move(*plan));
    }
  }
  auto text = [&](size_t i) { return sql.substr(ranges[i].first, ranges[i].second); };

  if (n == 1) {
    const auto& s = a.statements[0];
    if (plans[0].kind == RouteKind::kLocal) {
      co_await RunLocal(s, text(0), false);
      co_await AnswerReady();
      co_return;
    }
    if (LocalTransaction(s, holds_server())) {
      co_await RunTransactionLocally(s);
      co_await AnswerReady();
      co_return;
    }
  }

  // One server takes the whole message when every statement runs there; session
  // statements (BEGIN, SET...) go along with the others.
  std::optional<size_t> one;
  bool whole = true;
  bool session = false;
  for (size_t i = 0; i < n && whole; ++i) {
    const auto& plan = plans[i];
    if (plan.kind == RouteKind::kLocal ||
        (a.statements[i].kind == StatementKind::kCopy && plan.shards.size() > 1)) {
      whole = false;
    } else if (plan.kind == RouteKind::kSession) {
      session = true;
    } else if (auto t = SingleTarget(plan); !t || (one && *one != *t)) {
      whole = false;
    } else {
      one = t;
    }
  }
  if (whole && session) {
    // Session statements must reach every connection held.
    auto held = SessionTargets();
    if (!one && held.size() == 1) one = held[0];
    if (held.size() > 1 || (one && held[0] != *one && holds_server())) whole = false;
  }
  if (whole && one) {
    bool skip = false;
    auto st = co_await Use(std::span(&*one, 1), &skip);
    if (!st.ok()) {
      co_await AnswerError(st, false);
      co_return;
    }
    auto& l = *links_[*one];
    NoteStatementText(l, sql);
    for (size_t i = 0; i < n; ++i) {
      const auto& s = a.statements[i];
      // Connections taken later in this transaction replay its BEGIN.
      if (s.kind == StatementKind::kTransaction && s.txn_op == sharding::TransactionOp::kBegin &&
          deferred_begin_.empty()) {
        deferred_begin_ = std::string(text(i));
      }
    }
    l.out.Append(f.raw);
    Push(l, Pending::Kind::kQuery);
    l.conn->unnamed_id = 0;
    co_return;
  }

  if (n == 1) {
    const auto& s = a.statements[0];
    const auto& plan = plans[0];
    if (s.kind == StatementKind::kCopy && s.copy && s.copy->is_from) {
      co_await StartCopyIn(s, plan, text(0));
      co_return;
    }
    const bool implicit = plan.is_write && client_tx_status_ == 'I';
    co_await RunGatherQuery(sql, ranges[0], s, plan, implicit);
    co_await AnswerReady();
    co_return;
  }

  // Several statements over several shards: each runs in turn; outside a transaction block
  // they share one transaction per shard, committed together at the end.
  for (const auto& s : a.statements) {
    if (s.kind == StatementKind::kTransaction || s.kind == StatementKind::kCopy) {
      co_await AnswerError(
          SqlError(absl::StatusCode::kUnimplemented, "0A000",
                   "a query string whose statements run on different shards cannot contain "
                   "transaction control or COPY",
                   "send BEGIN, COMMIT, ROLLBACK and COPY as queries of their own"),
          false);
      co_return;
    }
  }
  const bool implicit = client_tx_status_ == 'I';
  std::vector<size_t> used;
  bool ok = true;
  for (size_t i = 0; i < n && ok; ++i) {
    const auto& s = a.statements[i];
    const auto& plan = plans[i];
    if (plan.kind == RouteKind::kLocal) {
      ok = co_await RunLocal(s, text(i), false);
      continue;
    }
    auto t = SingleTarget(plan);
    if (!t) {
      for (auto id : plan.shards)
        if (std::find(used.begin(), used.end(), id.value()) == used.end())
          used.push_back(id.value());
      ok = co_await RunGatherQuery(sql, ranges[i], s, plan, false);
      continue;
    }
    if (std::find(used.begin(), used.end(), *t) == used.end()) used.push_back(*t);
    auto st = co_await Use(std::span(&*t, 1), nullptr);
    if (!st.ok()) {
      co_await Answer(ErrorBytes(st));
      ok = false;
      break;
    }
    auto& l = *links_[*t];
    if (implicit && l.conn->tx_status == 'I') {
      protocol::WriteQuery(l.out, "BEGIN");
      Push(l, Pending::Kind::kInjectedQuery);
      l.conn->tx_status = 'T';
    }
    NoteStatementText(l, text(i));
    protocol::WriteQuery(l.out, text(i));
    Push(l, Pending::Kind::kQuery);
    l.pending.back().drop_ready = true;
    l.conn->unnamed_id = 0;
    co_await FlushServers();
    co_await WaitQuiet([&] { return !l.conn || !l.busy(); });
    if (cycle_failed_) ok = false;
  }
  if (implicit) {
    co_await FinishImplicit(used, ok);
    client_tx_status_ = 'I';
  } else {
    char status = client_tx_status_;
    for (auto& l : links_)
      if (l && l->conn && l->conn->tx_status == 'E') status = 'E';
    client_tx_status_ = status;
  }
  co_await AnswerReady();
}

awaitable<bool> ClientSession::FinishImplicit(const std::vector<size_t>& shards, bool commit) {
  // A session that is ending (client gone, a shard connection lost) commits nothing: its
  // pumps roll every open transaction back.
  if (closing_) co_return false;
  std::vector<size_t> begun;
  for (size_t shard : shards) {
    auto* l = link(shard);
    if (l != nullptr && l->conn && l->conn->tx_status != 'I') begun.push_back(shard);
  }
  if (begun.empty()) co_return true;
  StartGather(begun, nullptr, /*silent=*/true);
  for (size_t shard : begun) {
    auto& l = *links_[shard];
    protocol::WriteQuery(l.out, commit ? "COMMIT" : "ROLLBACK");
    Push(l, Pending::Kind::kQuery);
    l.pending.back().gather = true;
  }
  co_await FlushServers();
  co_await WaitQuiet([&] { return gather_->done(); });
  const bool failed = gather_->failed() || !gather_->done();
  gather_.reset();
  co_return !failed;
}

awaitable<bool> ClientSession::RunGatherQuery(std::string_view sql, std::pair<size_t, size_t> range,
                                              const sharding::Statement& s,
                                              const sharding::RoutePlan& plan, bool implicit) {
  std::vector<size_t> shards;
  if (plan.kind == sharding::RouteKind::kSession) {
    shards = SessionTargets();
  } else {
    for (auto id : plan.shards) shards.push_back(id.value());
  }
  std::vector<std::string> texts;
  Gather::SpecFactory merge;
  if (!plan.insert_rows.empty()) {
    for (const auto& rows : plan.insert_rows) {
      auto t = sharding::InsertRowsSql(sql, range, s, rows);
      if (!t.ok()) {
        co_await Answer(ErrorBytes(t.status()));
        co_return false;
      }
      texts.push_back(std::move(*t));
    }
  } else if (plan.needs_merge) {
    auto scatter = sharding::PlanScatter(sql, range, s, plan.merge);
    if (!scatter.ok()) {
      co_await Answer(ErrorBytes(scatter.status()));
      co_return false;
    }
    texts.assign(shards.size(), scatter->sql);
    merge = [q = std::make_shared<sharding::ScatterQuery>(std::move(*scatter))](
                std::span<const protocol::RowField> fields) {
      return sharding::CompleteSpec(*q, fields, nullptr);
    };
  } else {
    texts.assign(shards.size(), std::string(sql.substr(range.first, range.second)));
  }
  auto st = co_await Use(shards, nullptr);
  if (!st.ok()) {
    co_await Answer(ErrorBytes(st));
    co_return false;
  }
  StartGather(shards, std::move(merge));
  if (s.copy) gather_->set_copy_header(s.copy->header);
  for (size_t i = 0; i < shards.size(); ++i) {
    auto& l = *links_[shards[i]];
    if (implicit && l.conn->tx_status == 'I') {
      protocol::WriteQuery(l.out, "BEGIN");
      Push(l, Pending::Kind::kInjectedQuery);
      l.conn->tx_status = 'T';
    }
    NoteStatementText(l, texts[i]);
    protocol::WriteQuery(l.out, texts[i]);
    Push(l, Pending::Kind::kQuery);
    l.pending.back().gather = true;
    l.conn->unnamed_id = 0;
  }
  co_await FlushServers();
  co_await WaitQuiet([&] { return gather_->done(); });
  bool ok = !gather_->failed() && gather_->done();
  char status = gather_->status();
  gather_.reset();
  if (!ok) cycle_failed_ = true;
  if (implicit) {
    // A failed COMMIT reaches the client as the shard's error.
    if (!co_await FinishImplicit(shards, ok)) ok = false;
    status = 'I';
  }
  client_tx_status_ = status;
  if (status == 'I') {
    deferred_begin_.clear();
    txn_shard_key_.reset();
  }
  co_return ok;
}

// ---- COPY FROM STDIN over several shards --------------------------------------------------

awaitable<bool> ClientSession::StartCopyIn(const sharding::Statement& s,
                                           const sharding::RoutePlan& plan,
                                           std::string_view text) {
  std::vector<size_t> shards;
  for (auto id : plan.shards) shards.push_back(id.value());
  CopyIn copy;
  if (plan.copy_split) {
    auto format = sharding::CopyFormatOf(*s.copy);
    if (!format.ok()) {
      co_await AnswerError(format.status(), false);
      co_return false;
    }
    copy.splitter = std::make_unique<sharding::CopySplitter>(std::move(*format), *plan.copy_split,
                                                             topology_->ring);
  }
  copy.parts.resize(topology_->ring->shard_count());
  const bool implicit = client_tx_status_ == 'I';
  auto st = co_await Use(shards, nullptr);
  if (!st.ok()) {
    co_await AnswerError(st, false);
    co_return false;
  }
  StartGather(shards, nullptr);
  // The statement as the client wrote it: every shard gets the same COPY.
  for (size_t shard : shards) {
    auto& l = *links_[shard];
    if (implicit && l.conn->tx_status == 'I') {
      protocol::WriteQuery(l.out, "BEGIN");
      Push(l, Pending::Kind::kInjectedQuery);
      l.conn->tx_status = 'T';
    }
    protocol::WriteQuery(l.out, text);
    Push(l, Pending::Kind::kQuery);
    l.pending.back().gather = true;
    l.conn->unnamed_id = 0;
  }
  copy_implicit_ = implicit;
  co_await FlushServers();
  co_await WaitQuiet([&] { return gather_->done() || gather_->copy_in_ready(); });
  if (gather_->done() || closing_) {
    co_await EndCopyIn();
    co_return false;
  }
  copy_in_ = std::move(copy);
  co_return true;
}

awaitable<void> ClientSession::EndCopyIn() {
  co_await FlushServers();
  co_await WaitQuiet([&] { return gather_->done(); });
  bool ok = !gather_->failed() && gather_->done();
  char status = gather_->status();
  gather_.reset();
  copy_in_.reset();
  if (copy_implicit_) {
    std::vector<size_t> shards;
    for (size_t i = 0; i < links_.size(); ++i)
      if (Held(i)) shards.push_back(i);
    co_await FinishImplicit(shards, ok);
    status = 'I';
  }
  client_tx_status_ = status;
  co_await AnswerReady();
}

awaitable<void> ClientSession::FailCopyIn(const absl::Status& st) {
  // Stop every shard's COPY; the client gets pgring's error.
  gather_->Fail(st);
  for (size_t shard : gather_shards_) {
    protocol::WriteCopyFail(links_[shard]->out, protocol::MessageOf(st));
  }
  co_await EndCopyIn();
}

awaitable<void> ClientSession::OnCopyMessage(const protocol::Frame& f) {
  auto& copy = *copy_in_;
  auto fail = [&](const absl::Status& st) -> awaitable<void> { co_await FailCopyIn(st); };
  switch (f.type) {
    case fe::kCopyData: {
      if (copy.splitter) {
        auto st = copy.splitter->Add(f.body, copy.parts);
        if (!st.ok()) co_return co_await fail(st);
        for (size_t shard : gather_shards_) {
          auto& part = copy.parts[shard];
          if (part.empty()) continue;
          links_[shard]->out.Append(part.Readable());
          part.Clear();
        }
      } else {
        for (size_t shard : gather_shards_) links_[shard]->out.Append(f.raw);
      }
      co_return;
    }
    case fe::kCopyDone: {
      if (copy.splitter) {
        auto st = copy.splitter->Finish(copy.parts);
        if (!st.ok()) co_return co_await fail(st);
        for (size_t shard : gather_shards_) {
          auto& part = copy.parts[shard];
          if (!part.empty()) links_[shard]->out.Append(part.Readable());
          part.Clear();
        }
      }
      for (size_t shard : gather_shards_) links_[shard]->out.Append(f.raw);
      co_return co_await EndCopyIn();
    }
    default:  // CopyFail
      for (size_t shard : gather_shards_) links_[shard]->out.Append(f.raw);
      co_return co_await EndCopyIn();
  }
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

awaitable<ClientSession::Flow> ClientSession::HandleMessage(const protocol::Frame& f) {
  const char type = f.type;
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
  if (deferred_parse_ && type != fe::kBind && type != fe::kParse && type != fe::kTerminate) {
    if (auto* l = co_await UseExtended(AnyShard())) {
      co_await SendDeferredParse(*l);
    } else {
      deferred_parse_.reset();
    }
    if (skip_until_sync_ && type != fe::kSync) co_return Flow::kContinue;
  }

  switch (type) {
    case fe::kQuery: {
      auto q = protocol::ParseQuery(f.body);
      if (!q) co_return co_await Malformed("Query");
      worker_.counters().Add(worker_.counters().queries);
      if (auto name = DeallocateName(q->sql); name && statements_.contains(*name)) {
        // A protocol-level statement of this client (psycopg deallocates them so): only the
        // client's name goes away; the server-side statement is shared.
        statements_.erase(*name);
        protocol::Buffer b;
        protocol::WriteCommandComplete(b, "DEALLOCATE");
        auto r = b.Readable();
        co_await Answer(std::string(reinterpret_cast<const char*>(r.data()), r.size()));
        co_await AnswerReady();
        co_return Flow::kContinue;
      }
      co_await OnQuery(f, q->sql);
      co_return Flow::kContinue;
    }
    case fe::kParse: {
      auto p = protocol::ParseParse(f.body);
      if (!p) co_return co_await Malformed("Parse");
      if (deferred_parse_) {
        // Two Parses in a row: the first goes to any shard now.
        auto* l = co_await UseExtended(AnyShard());
        if (l == nullptr) {
          deferred_parse_.reset();
          co_return Flow::kContinue;
        }
        co_await SendDeferredParse(*l);
      }
      std::string name(p->name);
      if (!name.empty() && statements_.contains(name)) {
        co_await AnswerError(SqlError(absl::StatusCode::kAlreadyExists, "42P05",
                                      Cat("prepared statement \"", name, "\" already exists")),
                             true);
        co_return Flow::kContinue;
      }
      auto stmt = worker_.statements().Intern(*p);
      if (!stmt->analysis) {
        auto a = Analyze(stmt->query);
        if (!a.ok()) {
          co_await AnswerError(a.status(), true);
          co_return Flow::kContinue;
        }
        stmt->analysis = std::move(*a);
      }
      ClientStatement cs{stmt, name.empty()};
      if (name.empty()) {
        unnamed_ = cs;
        unnamed_id_ = worker_.NextUnnamedId();
      } else {
        statements_.emplace(name, cs);
      }
      deferred_parse_ = std::move(cs);
      deferred_parse_name_ = std::move(name);
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
      ServerLink* last = nullptr;
      for (auto& l : links_) {
        if (!l || !l->conn || !l->unsynced) continue;
        if (last != nullptr) last->pending.back().drop_ready = true;
        protocol::WriteSync(l->out);
        Push(*l, Pending::Kind::kSync);
        l->unsynced = false;
        last = l.get();
      }
      if (last == nullptr) co_await AnswerReady();
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
      if (BusyLink() == nullptr) co_await stream_.WriteAll(err.Readable());
      client_write_.Unlock();
      co_return Flow::kClose;
    }
  }
}

awaitable<ClientSession::Flow> ClientSession::OnBind(const protocol::Frame& f,
                                                     const protocol::Bind& b) {
  using sharding::RouteKind;
  const ClientStatement* cs = nullptr;
  if (b.statement.empty()) {
    if (unnamed_.stmt) cs = &unnamed_;
  } else if (auto it = statements_.find(b.statement); it != statements_.end()) {
    cs = &it->second;
  }
  if (cs == nullptr) {
    deferred_parse_.reset();
    co_await AnswerError(SqlError(absl::StatusCode::kNotFound, "26000",
                                  Cat("prepared statement \"", b.statement, "\" does not exist")),
                         true);
    co_return Flow::kContinue;
  }
  const ClientStatement stmt = *cs;  // statements_ may change below
  if (!holds_server()) topology_ = worker_.topology();
  const auto& analysis = *stmt.stmt->analysis;
  auto params = protocol::ParseBindParams(b.rest);
  if (!params) co_return co_await Malformed("Bind");
  absl::StatusOr<sharding::RoutePlan> plan;
  if (analysis.statements.size() == 1) {
    plan = Route(analysis.statements[0], &*params, stmt.stmt->param_types);
  } else {
    // PostgreSQL refuses several statements in one Parse; any shard will say so.
    sharding::RoutePlan p;
    p.kind = RouteKind::kDefault;
    p.shards = {sharding::ShardId(worker_.default_shard())};
    plan = std::move(p);
  }
  if (!plan.ok()) {
    deferred_parse_.reset();
    co_await AnswerError(plan.status(), true);
    co_return Flow::kContinue;
  }
  const sharding::Statement* s =
      analysis.statements.size() == 1 ? &analysis.statements[0] : nullptr;
  if (s != nullptr && client_tx_status_ == 'E' &&
      s->kind != sharding::StatementKind::kTransaction) {
    deferred_parse_.reset();
    co_await AnswerError(SqlError(absl::StatusCode::kFailedPrecondition, "25P02",
                                  "current transaction is aborted, commands ignored until end "
                                  "of transaction block"),
                         true);
    co_return Flow::kContinue;
  }
  // Statements pgring answers itself.
  if (s != nullptr && (plan->kind == RouteKind::kLocal || LocalTransaction(*s, holds_server()))) {
    if (deferred_parse_) {
      deferred_parse_.reset();
      co_await Answer(Bytes(protocol::WriteParseComplete));
    }
    co_await Answer(Bytes(protocol::WriteBindComplete));
    PortalTarget target;
    target.local = true;
    target.statement = s;
    target.analysis = stmt.stmt->analysis;
    if (b.portal.empty()) unnamed_portal_ = target; else portals_[std::string(b.portal)] = target;
    co_return Flow::kContinue;
  }

  auto single = SingleTarget(*plan);
  if (single) {
    auto* target_link = co_await UseExtended(*single);
    if (target_link == nullptr) {
      deferred_parse_.reset();
      co_return Flow::kContinue;
    }
    auto& l = *target_link;
    co_await SendDeferredParse(l);
    NoteStatementText(l, stmt.stmt->query);
    if (s != nullptr && s->kind == sharding::StatementKind::kTransaction &&
        s->txn_op == sharding::TransactionOp::kBegin && deferred_begin_.empty()) {
      deferred_begin_ = stmt.stmt->query;
    }
    l.unsynced = true;
    if (stmt.unnamed) {
      EnsureUnnamed(l);
      l.out.Append(f.raw);
    } else {
      EnsurePrepared(l, *stmt.stmt);
      protocol::WriteBind(l.out, b.portal, stmt.stmt->server_name, b.rest);
    }
    Push(l, Pending::Kind::kBind);
    PortalTarget target;
    target.shard = *single;
    if (b.portal.empty()) unnamed_portal_ = target; else portals_[std::string(b.portal)] = target;
    co_return Flow::kContinue;
  }

  // Several shards: one gather unit, closed by the client's Sync.
  std::vector<size_t> shards;
  if (plan->kind == RouteKind::kSession) {
    shards = SessionTargets();
  } else {
    for (auto id : plan->shards) shards.push_back(id.value());
  }
  std::vector<std::shared_ptr<const PreparedStatement>> server_stmts(shards.size(), stmt.stmt);
  std::vector<std::vector<int>> subsets(shards.size());  // INSERT rows: their own parameters
  Gather::SpecFactory merge;
  if (s != nullptr && !plan->insert_rows.empty()) {
    const auto& range = analysis.ranges[0];
    for (size_t i = 0; i < shards.size(); ++i) {
      auto part = sharding::InsertRowsPart(stmt.stmt->query, range, *s, plan->insert_rows[i]);
      if (!part.ok()) {
        deferred_parse_.reset();
        co_await AnswerError(part.status(), true);
        co_return Flow::kContinue;
      }
      std::vector<uint32_t> types;
      for (int n : part->params) {
        auto k = static_cast<size_t>(n - 1);
        types.push_back(k < stmt.stmt->param_types.size() ? stmt.stmt->param_types[k] : 0);
      }
      server_stmts[i] = worker_.statements().Intern(part->sql, types);
      subsets[i] = std::move(part->params);
      if (subsets[i].empty()) subsets[i].push_back(0);  // marks "rebuilt, no parameters"
    }
  } else if (s != nullptr && plan->needs_merge) {
    auto scatter = sharding::PlanScatter(stmt.stmt->query, analysis.ranges[0], *s, plan->merge);
    if (!scatter.ok()) {
      deferred_parse_.reset();
      co_await AnswerError(scatter.status(), true);
      co_return Flow::kContinue;
    }
    if (scatter->rewritten) {
      auto rewritten = worker_.statements().Intern(scatter->sql, stmt.stmt->param_types);
      server_stmts.assign(shards.size(), rewritten);
    }
    // The Bind values (LIMIT $n) outlive this message: keep a copy for the merge.
    auto bind_copy = std::make_shared<std::string>(reinterpret_cast<const char*>(b.rest.data()),
                                                   b.rest.size());
    merge = [q = std::make_shared<sharding::ScatterQuery>(std::move(*scatter)),
             bind_copy](std::span<const protocol::RowField> fields) {
      auto p = protocol::ParseBindParams(std::as_bytes(std::span(*bind_copy)));
      return sharding::CompleteSpec(*q, fields, p ? &*p : nullptr);
    };
  }
  auto st = co_await Use(shards, nullptr);
  if (!st.ok()) {
    deferred_parse_.reset();
    co_await AnswerError(st, true);
    co_return Flow::kContinue;
  }
  if (deferred_parse_) {
    // The client's Parse is answered once; each shard prepares what it runs.
    deferred_parse_.reset();
    co_await Answer(Bytes(protocol::WriteParseComplete));
  }
  const bool implicit = plan->is_write && client_tx_status_ == 'I';
  StartGather(shards, std::move(merge));
  gather_open_ = true;
  gather_implicit_ = implicit;
  for (size_t i = 0; i < shards.size(); ++i) {
    auto& l = *links_[shards[i]];
    if (implicit && l.conn->tx_status == 'I') {
      protocol::WriteQuery(l.out, "BEGIN");
      Push(l, Pending::Kind::kInjectedQuery);
      l.conn->tx_status = 'T';
    }
    NoteStatementText(l, server_stmts[i]->query);
    l.unsynced = true;
    EnsurePrepared(l, *server_stmts[i]);
    if (subsets[i].empty()) {
      protocol::WriteBind(l.out, b.portal, server_stmts[i]->server_name, b.rest);
    } else {
      std::span<const int> subset(subsets[i]);
      if (subset.size() == 1 && subset[0] == 0) subset = {};
      protocol::WriteBind(l.out, b.portal, server_stmts[i]->server_name, *params, subset);
    }
    Push(l, Pending::Kind::kBind);
    l.pending.back().gather = true;
  }
  PortalTarget target;
  target.gather = true;
  if (b.portal.empty()) unnamed_portal_ = target; else portals_[std::string(b.portal)] = target;
  co_return Flow::kContinue;
}

// Describe and Close of a prepared statement.
awaitable<ClientSession::Flow> ClientSession::OnStatementMessage(const protocol::Frame& f,
                                                                 char type,
                                                                 std::string_view name) {
  if (type == fe::kClose) {
    // Server-side statements are shared: only the client's name goes away.
    if (!name.empty()) statements_.erase(name);
    co_await Answer(Bytes(protocol::WriteCloseComplete));
    co_return Flow::kContinue;
  }
  const ClientStatement* cs = nullptr;
  if (name.empty()) {
    if (unnamed_.stmt) cs = &unnamed_;
  } else if (auto it = statements_.find(name); it != statements_.end()) {
    cs = &it->second;
  }
  if (cs == nullptr) {
    co_await AnswerError(SqlError(absl::StatusCode::kNotFound, "26000",
                                  Cat("prepared statement \"", name, "\" does not exist")),
                         true);
    co_return Flow::kContinue;
  }
  const ClientStatement stmt = *cs;
  auto* target_link = co_await UseExtended(AnyShard());
  if (target_link == nullptr) co_return Flow::kContinue;
  auto& l = *target_link;
  l.unsynced = true;
  if (stmt.unnamed) {
    EnsureUnnamed(l);
    l.out.Append(f.raw);
  } else {
    EnsurePrepared(l, *stmt.stmt);
    protocol::WriteDescribe(l.out, 'S', stmt.stmt->server_name);
  }
  Push(l, Pending::Kind::kDescribe);
  co_return Flow::kContinue;
}

// Describe, Execute and Close of a portal: they go where its Bind went.
awaitable<ClientSession::Flow> ClientSession::OnPortalMessage(const protocol::Frame& f, char type,
                                                              std::string_view name,
                                                              int32_t max_rows) {
  std::optional<PortalTarget> target;
  if (name.empty()) {
    target = unnamed_portal_;
  } else if (auto it = portals_.find(name); it != portals_.end()) {
    target = it->second;
  }
  if (type == fe::kClose && !name.empty()) portals_.erase(name);
  const Pending::Kind kind = type == fe::kDescribe  ? Pending::Kind::kDescribe
                             : type == fe::kExecute ? Pending::Kind::kExecute
                                                    : Pending::Kind::kClose;
  if (target && target->local) {
    if (type == fe::kClose) {
      co_await Answer(Bytes(protocol::WriteCloseComplete));
    } else if (type == fe::kDescribe) {
      protocol::Buffer b;
      if (target->statement->kind == sharding::StatementKind::kShow) {
        std::string_view cols[] = {target->statement->set_name};
        protocol::WriteRowDescriptionText(b, cols);
      } else {
        protocol::WriteNoData(b);
      }
      auto r = b.Readable();
      co_await Answer(std::string(reinterpret_cast<const char*>(r.data()), r.size()));
    } else if (target->statement->kind == sharding::StatementKind::kTransaction) {
      co_await RunTransactionLocally(*target->statement);
    } else {
      co_await RunLocal(*target->statement, {}, true);
    }
    co_return Flow::kContinue;
  }
  if (target && target->gather && gather_ && gather_open_) {
    if (type == fe::kExecute && max_rows > 0) {
      co_await CloseGather(false);
      co_await AnswerError(
          SqlError(absl::StatusCode::kUnimplemented, "0A000",
                   "fetching part of a portal that reads several shards is not supported",
                   "execute the portal without a row limit, or limit the query to one shard key"),
          true);
      co_return Flow::kContinue;
    }
    for (size_t shard : gather_shards_) {
      auto& l = *links_[shard];
      l.out.Append(f.raw);
      Push(l, kind);
      l.pending.back().gather = true;
    }
    co_return Flow::kContinue;
  }
  if (!target || target->gather) {
    if (type == fe::kClose) {
      co_await Answer(Bytes(protocol::WriteCloseComplete));
      co_return Flow::kContinue;
    }
    // The server explains the unknown portal.
    target = PortalTarget{};
    target->shard = AnyShard();
  }
  auto* target_link = co_await UseExtended(target->shard);
  if (target_link == nullptr) co_return Flow::kContinue;
  auto& l = *target_link;
  l.unsynced = true;
  l.out.Append(f.raw);
  Push(l, kind);
  co_return Flow::kContinue;
}
awaitable<void> ClientSession::FlushServer(ServerLink& link) {
  if (!link.conn || link.out.empty()) co_return;
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
  --held_;
  if (link.out.capacity() > (64u << 10)) link.out.Release();
  NotifyQuiet();
  if (close_requested_ && !holds_server()) WakeReader();
}

void ClientSession::DrainSynthetic(ServerLink& link, protocol::Buffer& synth) {
  while (!link.pending.empty() && link.pending.front().kind == Pending::Kind::kSynthetic) {
    synth.Append(link.pending.front().bytes);
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
      if (!p.client_stmt.empty()) statements_.erase(p.client_stmt);
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
  return pass;
}

awaitable<void> ClientSession::Pump(std::shared_ptr<ClientSession> self, ServerLink* link_ptr) {
  (void)self;  // keeps the session alive while the pump runs
  ServerLink& link = *link_ptr;
  ServerConnection* conn = link.conn.get();
  auto& gather = link.gather;
  auto& synth = link.synth;
  auto& segments = link.segments;
  bool gathered = false;  // the last batch fed the Gather: the reader may be waiting on it

  // Runs after every step of progress (never before the first read: the reader queues
  // its first request right after Attach starts this pump). Returns true when the pump
  // is done because the connection went back to the pool.
  auto settle = [&]() -> awaitable<bool> {
    if (link.pending.empty() || gathered) NotifyQuiet();
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
      Push(link, Pending::Kind::kInjectedQuery);
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
    gathered = false;
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
      const auto disposition = OnServerFrame(link, r.frame);
      if (disposition == Disposition::kForward) {
        if (!segments.empty() && !segments.back().synthetic &&
            segments.back().offset + segments.back().length == pos) {
          segments.back().length += r.frame.size;
        } else {
          segments.push_back({false, pos, r.frame.size});
        }
      } else if (disposition == Disposition::kGather && gather_) {
        gathered = true;
        // The combined answer, as far as this frame lets the Gather write it.
        size_t at = synth.size();
        gather_->OnFrame(link.gather_pos, r.frame, synth);
        if (synth.size() > at) segments.push_back({true, at, synth.size() - at});
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
  NotifyQuiet();
  bool cancel = false;
  for (auto& l : links_) {
    if (!l || !l->conn) continue;
    // Let the pump end the transaction and return the connection; a statement still
    // running for a client that left is cancelled rather than waited for.
    l->out.Clear();
    l->unsynced = false;
    if (l->pending.empty()) {
      Kick(*l);
    } else {
      cancel = true;
    }
  }
  if (cancel) ForwardCancel();
  stream_.Close();
  co_return;
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
