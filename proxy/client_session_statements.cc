// ClientSession, part two: how a routed statement runs. Simple queries (one shard, a
// gather unit over several, a query string split statement by statement), the extended
// protocol's Bind/Describe/Execute/Close, sharded COPY FROM STDIN and the statements pgring
// answers itself (SET pgring.shard_key, BEGIN/COMMIT/ROLLBACK with no connection held).
// The session's life, its server links and pumps are in client_session.cc.
#include "proxy/client_session.h"
#include "absl/container/inlined_vector.h"
#include "sharding/literal_shape.h"
#include "sharding/shape_memo.h"
#include "protocol/messages.h"
#include "protocol/sql_error.h"
#include "proxy/reply.h"
#include "proxy/worker.h"

namespace pgring::proxy {
namespace {

using protocol::SqlError;
namespace fe = protocol::fe;

}  // namespace

// ---- Local answers ------------------------------------------------------------------------

// SET/RESET/SHOW pgring.*, the empty query, and transaction control while no server
// connection is held. Writes the statement's answer without ReadyForQuery; `extended`
// means a Describe of the portal may already have been answered by the caller.
awaitable<bool> ClientSession::RunLocal(const sharding::Statement& s, bool extended) {
  using sharding::StatementKind;
  protocol::Buffer out;
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
      slot = std::make_unique<std::string>(s.set_value);
    }
    protocol::WriteCommandComplete(out, s.is_reset || s.reset_all ? "RESET" : "SET");
  } else {
    co_await Answer(ErrorBytes(SqlError(absl::StatusCode::kInternal, "XX000",
                                        "pgring cannot answer this statement itself")));
    co_return false;
  }
  co_await Answer(BufferBytes(out));
  co_return true;
}

// BEGIN, COMMIT and ROLLBACK while the client holds no server connection.
awaitable<bool> ClientSession::RunTransactionLocally(const sharding::Statement& s,
                                                     std::string_view text) {
  protocol::Buffer out;
  if (!AnswerTransaction(s, text, out)) co_return false;
  co_await Answer(BufferBytes(out));
  co_return true;
}

bool ClientSession::AnswerTransaction(const sharding::Statement& s, std::string_view text,
                                      protocol::Buffer& out) {
  using sharding::TransactionOp;
  switch (s.txn_op) {
    case TransactionOp::kBegin:
      if (client_tx_status_ != 'I') {
        protocol::WriteNoticeResponse(out, protocol::Severity::kWarning, "25001",
                                      "there is already a transaction in progress");
      } else {
        // Replayed as written: isolation level, READ ONLY, DEFERRABLE.
        deferred_begin_ = text.empty() ? std::string("BEGIN") : std::string(text);
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
      return false;
  }
  return true;
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

// Whether running `s` may change the server session's state (settings, pins, prepared
// statements), so that its text is worth the checks of NoteStatementText: the analysis
// rules out plain DML and transaction control that take no session-level advisory lock.
static bool MayChangeSession(const sharding::Statement& s) {
  using sharding::StatementKind;
  switch (s.kind) {
    case StatementKind::kSelect:
    case StatementKind::kInsert:
    case StatementKind::kUpdate:
    case StatementKind::kDelete:
      return s.session_advisory_lock;
    case StatementKind::kTransaction:
    case StatementKind::kShow:
    case StatementKind::kEmpty:
      return false;
    default:
      return true;
  }
}

ClientSession::QueryPlan ClientSession::PlanQuery(std::string_view sql) {
  QueryPlan q;
  if (!holds_server()) topology_ = worker_.topology();
  // A DML statement is analyzed by its shape (its key literals as parameters), so that
  // statements differing only in their values share one analysis; the shape is routed with
  // the values. Plans that edit the statement's text need its own analysis.
  // Scratch of this worker thread, used without a suspension in between: sessions do not
  // each carry it (an idle client should cost little). The memo shapes statements of the
  // forms this worker saw recently without scanning them.
  static thread_local sharding::LiteralShape shape;
  static thread_local sharding::ShapeMemo shapes;
  static thread_local protocol::BindParams shape_params;
  if (shapes.Shape(sql, shape)) {
    sharding::RouteMemo* memo = nullptr;
    auto shaped = worker_.analyzer().Get(shape.text, &memo);
    if (shaped.ok() && (*shaped)->statements.size() == 1) {
      shape_params.values.clear();
      for (auto v : shape.values) shape_params.values.emplace_back(std::as_bytes(std::span(v)));
      auto plan = Route((*shaped)->statements[0], &shape_params, {}, memo);
      if (plan.ok() && !plan->needs_merge && plan->insert_rows.size() <= 1) {
        q.analysis = std::move(*shaped);
        q.plans.push_back(std::move(*plan));
        q.ranges.emplace_back(0, sql.size());
        return q;
      }
    }
  }
  sharding::RouteMemo* memo = nullptr;  // of the first statement
  auto analyzed = worker_.analyzer().Get(sql, &memo);
  if (!analyzed.ok()) {
    q.error = analyzed.status();
    return q;
  }
  q.analysis = std::move(*analyzed);
  q.ranges.assign(q.analysis->ranges.begin(), q.analysis->ranges.end());
  if (q.analysis->statements.size() != 1) memo = nullptr;
  // Route every statement first: a query string is refused whole or run.
  q.plans.reserve(q.analysis->statements.size());
  for (const auto& s : q.analysis->statements) {
    auto plan = Route(s, nullptr, {}, memo);
    if (!plan.ok()) {
      q.error = plan.status();
      q.plans.clear();
      return q;
    }
    q.plans.push_back(std::move(*plan));
  }
  return q;
}

bool ClientSession::AnsweredLocally(const QueryPlan& q) const {
  if (q.plans.size() != 1) return false;
  return q.plans[0].kind == sharding::RouteKind::kLocal ||
         LocalTransaction(q.analysis->statements[0], holds_server());
}

std::optional<size_t> ClientSession::WholeTarget(const QueryPlan& q) const {
  // One server takes the whole message when every statement runs there; session
  // statements (BEGIN, SET...) go along with the others.
  using sharding::RouteKind;
  const auto& a = *q.analysis;
  std::optional<size_t> one;
  bool session = false;
  for (size_t i = 0; i < q.plans.size(); ++i) {
    const auto& plan = q.plans[i];
    if (plan.kind == RouteKind::kLocal ||
        (a.statements[i].kind == sharding::StatementKind::kCopy && plan.shards.size() > 1)) {
      return std::nullopt;
    }
    if (plan.kind == RouteKind::kSession) {
      session = true;
    } else if (auto t = SingleTarget(plan); !t || (one && *one != *t)) {
      return std::nullopt;
    } else {
      one = t;
    }
  }
  if (session) {
    // Session statements must reach every connection held.
    auto held = SessionTargets();
    if (!one && held.size() == 1) one = held[0];
    if (held.size() > 1 || (one && held[0] != *one && holds_server())) return std::nullopt;
  }
  return one;
}

void ClientSession::SendQuery(ServerLink& l, const protocol::Frame& f, std::string_view sql,
                              const QueryPlan& q) {
  const auto& statements = q.analysis->statements;
  bool note = false;
  for (size_t i = 0; i < statements.size(); ++i) {
    const auto& s = statements[i];
    note = note || MayChangeSession(s);
    // Connections taken later in this transaction replay its BEGIN.
    if (s.kind == sharding::StatementKind::kTransaction &&
        s.txn_op == sharding::TransactionOp::kBegin && deferred_begin_.empty()) {
      deferred_begin_ = std::string(sql.substr(q.ranges[i].first, q.ranges[i].second));
    }
  }
  if (note) NoteStatementText(l, sql);
  l.out.Append(f.raw);
  Push(l, Pending::Kind::kQuery);
  l.conn->unnamed_id = 0;
}

std::optional<ClientSession::Flow> ClientSession::QueryNow(const protocol::Frame& f) {
  auto query = protocol::ParseQuery(f.body);
  if (!query) return std::nullopt;
  // A Query that waited in the pool's queue (QueueNow) kept its plan.
  QueryPlan q = planned_ ? std::move(*std::exchange(planned_, nullptr)) : PlanQuery(query->sql);
  // DEALLOCATE may name a protocol-level statement of the client (HandleMessage).
  const auto deallocates = [&] {
    for (const auto& s : q.analysis->statements)
      if (s.kind == sharding::StatementKind::kDeallocate) return true;
    return false;
  };
  if (q.error.ok() && client_tx_status_ != 'E' && !deallocates()) {
    if (!AnsweredLocally(q)) {
      if (auto one = WholeTarget(q); one && UseNow(*one)) {
        worker_.counters().Add(worker_.counters().queries);
        cycle_failed_ = false;
        SendQuery(*links_[*one], f, query->sql, q);
        return Flow::kContinue;
      } else if (one && QueueNow(*one)) {
        planned_ = std::make_unique<QueryPlan>(std::move(q));
        return Flow::kQueued;
      }
    } else if (const auto& s = q.analysis->statements[0];
               LocalTransaction(s, holds_server()) && CanWriteClientNow()) {
      // BEGIN/COMMIT/ROLLBACK answered by pgring, with its ReadyForQuery, in one write.
      worker_.counters().Add(worker_.counters().queries);
      cycle_failed_ = false;
      protocol::Buffer out;
      if (AnswerTransaction(s, query->sql.substr(q.ranges[0].first, q.ranges[0].second), out)) {
        protocol::WriteReadyForQuery(out, client_tx_status_);
        WriteClientNow(out.Readable());
        return Flow::kContinue;
      }
    }
  }
  // HandleMessage runs the Query with this plan.
  planned_ = std::make_unique<QueryPlan>(std::move(q));
  return std::nullopt;
}

awaitable<void> ClientSession::OnQuery(const protocol::Frame& f, std::string_view sql,
                                       QueryPlan q) {
  using sharding::RouteKind;
  using sharding::StatementKind;
  cycle_failed_ = false;
  if (!q.analysis) {
    co_await AnswerError(q.error, false);
    co_return;
  }
  const auto& a = *q.analysis;
  const auto& plans = q.plans;
  const auto& ranges = q.ranges;
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
  if (!q.error.ok()) {
    co_await AnswerError(q.error, false);
    co_return;
  }
  auto text = [&](size_t i) { return sql.substr(ranges[i].first, ranges[i].second); };

  if (n == 1) {
    const auto& s = a.statements[0];
    if (plans[0].kind == RouteKind::kLocal) {
      co_await RunLocal(s, false);
      co_await AnswerReady();
      co_return;
    }
    if (LocalTransaction(s, holds_server())) {
      co_await RunTransactionLocally(s, text(0));
      co_await AnswerReady();
      co_return;
    }
  }

  if (auto one = WholeTarget(q)) {
    bool skip = false;
    absl::Status st;
    if (!UseNow(*one)) st = co_await Use(std::span(&*one, 1), &skip);
    if (!st.ok()) {
      co_await AnswerError(st, false);
      co_return;
    }
    SendQuery(*links_[*one], f, sql, q);
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
    co_await RunGatherQuery(sql, ranges[0], s, plan, implicit, implicit);
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
      ok = co_await RunLocal(s, false);
      continue;
    }
    auto t = SingleTarget(plan);
    if (!t) {
      for (auto id : plan.shards)
        if (std::find(used.begin(), used.end(), id.value()) == used.end())
          used.push_back(id.value());
      ok = co_await RunGatherQuery(sql, ranges[i], s, plan, implicit, false);
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
    if (implicit) BeginImplicit(l);
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

void ClientSession::BeginImplicit(ServerLink& link) {
  if (link.conn->tx_status != 'I') return;
  protocol::WriteQuery(link.out, "BEGIN");
  Push(link, Pending::Kind::kInjectedQuery);
  link.conn->tx_status = 'T';
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
                                              const sharding::RoutePlan& plan, bool begin,
                                              bool finish) {
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
    if (begin) BeginImplicit(l);
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
  if (finish) {
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
    if (implicit) BeginImplicit(l);
    protocol::WriteQuery(l.out, text);
    Push(l, Pending::Kind::kQuery);
    l.pending.back().gather = true;
    l.conn->unnamed_id = 0;
  }
  copy_implicit_ = implicit;
  co_await FlushServers();
  co_await WaitQuiet(
      [&] { return gather_->done() || gather_->copy_in_ready() || gather_->failed(); });
  if (!gather_->copy_in_ready() || closing_) {
    // A shard refused the COPY (or the session ends): the others wait for data; end their
    // COPY too. A shard that already failed ignores the CopyFail, as PostgreSQL does.
    for (size_t shard : shards) {
      if (auto* l = link(shard); l != nullptr && l->conn) {
        protocol::WriteCopyFail(l->out, "COPY failed on another shard");
      }
    }
    co_await EndCopyIn();
    co_return false;
  }
  copy_in_ = std::make_unique<CopyIn>(std::move(copy));
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

std::optional<ClientSession::Flow> ClientSession::BindNow(const protocol::Frame& f) {
  auto b = protocol::ParseBind(f.body);
  if (!b || client_tx_status_ == 'E') return std::nullopt;
  const ClientStatement* cs = FindStatement(b->statement);
  if (cs == nullptr || cs->stmt->analysis->statements.size() != 1) return std::nullopt;
  const ClientStatement stmt = *cs;  // the client's statements may change below
  const sharding::Statement& s = stmt.stmt->analysis->statements[0];
  if (!holds_server()) topology_ = worker_.topology();
  // Parameters are read only when their values can decide the shard; otherwise they go
  // to PostgreSQL unread (it checks them), as the rest of the Bind does.
  std::optional<protocol::BindParams> params;
  if (stmt.stmt->memo.NeedsValues(topology_->tables.id())) {
    params = protocol::ParseBindParams(b->rest);
    if (!params) return std::nullopt;
  }
  auto plan = Route(s, params ? &*params : nullptr, stmt.stmt->param_types, &stmt.stmt->memo);
  if (!plan.ok() || plan->kind == sharding::RouteKind::kLocal ||
      LocalTransaction(s, holds_server())) {
    return std::nullopt;
  }
  auto single = SingleTarget(*plan);
  if (single && !UseNow(*single)) {
    return QueueNow(*single) ? std::optional(Flow::kQueued) : std::nullopt;
  }
  if (!single || !SendDeferredParseNow(*links_[*single])) return std::nullopt;
  SendBind(*links_[*single], f, *b, stmt, &s);
  return Flow::kContinue;
}

void ClientSession::SendBind(ServerLink& l, const protocol::Frame& f, const protocol::Bind& b,
                             const ClientStatement& stmt, const sharding::Statement* s) {
  NotePreparedText(l, *stmt.stmt);
  if (s != nullptr && s->kind == sharding::StatementKind::kTransaction &&
      s->txn_op == sharding::TransactionOp::kBegin && deferred_begin_.empty()) {
    deferred_begin_ = stmt.stmt->query;
  }
  SendForStatement(l, f, stmt, Pending::Kind::kBind, [&] {
    protocol::WriteBind(l.out, b.portal, stmt.stmt->server_name, b.rest);
  });
  PortalTarget target;
  target.shard = l.shard;
  SetPortal(b.portal, target);
}

void ClientSession::SendForStatement(ServerLink& l, const protocol::Frame& f,
                                     const ClientStatement& stmt, Pending::Kind kind,
                                     absl::FunctionRef<void()> write_named) {
  l.unsynced = true;
  if (stmt.unnamed) {
    EnsureUnnamed(l);
    l.out.Append(f.raw);
  } else {
    EnsurePrepared(l, *stmt.stmt);
    write_named();
  }
  Push(l, kind);
}

awaitable<ClientSession::Flow> ClientSession::OnBind(const protocol::Frame& f,
                                                     const protocol::Bind& b) {
  using sharding::RouteKind;
  const ClientStatement* cs = FindStatement(b.statement);
  if (cs == nullptr) {
    DropDeferredParse();
    co_await AnswerError(SqlError(absl::StatusCode::kNotFound, "26000",
                                  Cat("prepared statement \"", b.statement, "\" does not exist")),
                         true);
    co_return Flow::kContinue;
  }
  const ClientStatement stmt = *cs;  // the client's statements may change below
  if (!holds_server()) topology_ = worker_.topology();
  const auto& analysis = *stmt.stmt->analysis;
  auto params = protocol::ParseBindParams(b.rest);
  if (!params) co_return co_await Malformed("Bind");
  absl::StatusOr<sharding::RoutePlan> plan;
  if (analysis.statements.size() == 1) {
    plan = Route(analysis.statements[0], &*params, stmt.stmt->param_types, &stmt.stmt->memo);
  } else {
    // PostgreSQL refuses several statements in one Parse; any shard will say so.
    sharding::RoutePlan p;
    p.kind = RouteKind::kDefault;
    p.shards = {sharding::ShardId(worker_.default_shard())};
    plan = std::move(p);
  }
  if (!plan.ok()) {
    DropDeferredParse();
    co_await AnswerError(plan.status(), true);
    co_return Flow::kContinue;
  }
  const sharding::Statement* s =
      analysis.statements.size() == 1 ? &analysis.statements[0] : nullptr;
  if (s != nullptr && client_tx_status_ == 'E' &&
      s->kind != sharding::StatementKind::kTransaction) {
    DropDeferredParse();
    co_await AnswerError(SqlError(absl::StatusCode::kFailedPrecondition, "25P02",
                                  "current transaction is aborted, commands ignored until end "
                                  "of transaction block"),
                         true);
    co_return Flow::kContinue;
  }
  // Statements pgring answers itself.
  if (s != nullptr && (plan->kind == RouteKind::kLocal || LocalTransaction(*s, holds_server()))) {
    if (HasDeferredParse()) {
      DropDeferredParse();
      co_await Answer(MessageBytes(protocol::WriteParseComplete));
    }
    co_await Answer(MessageBytes(protocol::WriteBindComplete));
    PortalTarget target;
    target.local = true;
    target.statement = s;
    target.analysis = stmt.stmt->analysis;
    target.text = stmt.stmt->query;
    SetPortal(b.portal, target);
    co_return Flow::kContinue;
  }

  auto single = SingleTarget(*plan);
  if (single) {
    auto* target_link = UseNow(*single) ? link(*single) : co_await UseExtended(*single);
    if (target_link == nullptr) {
      DropDeferredParse();
      co_return Flow::kContinue;
    }
    co_await SendDeferredParse(*target_link);
    SendBind(*target_link, f, b, stmt, s);
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
        DropDeferredParse();
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
      DropDeferredParse();
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
    DropDeferredParse();
    co_await AnswerError(st, true);
    co_return Flow::kContinue;
  }
  if (HasDeferredParse()) {
    // The client's Parse is answered once; each shard prepares what it runs.
    DropDeferredParse();
    co_await Answer(MessageBytes(protocol::WriteParseComplete));
  }
  const bool implicit = plan->is_write && client_tx_status_ == 'I';
  StartGather(shards, std::move(merge));
  gather_open_ = true;
  gather_implicit_ = implicit;
  for (size_t i = 0; i < shards.size(); ++i) {
    auto& l = *links_[shards[i]];
    if (implicit) BeginImplicit(l);
    NotePreparedText(l, *server_stmts[i]);
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
  SetPortal(b.portal, target);
  co_return Flow::kContinue;
}

// Describe and Close of a prepared statement.
awaitable<ClientSession::Flow> ClientSession::OnStatementMessage(const protocol::Frame& f,
                                                                 char type,
                                                                 std::string_view name) {
  if (type == fe::kClose) {
    // Server-side statements are shared: only the client's name goes away.
    if (!name.empty() && extended_) extended_->statements.erase(name);
    co_await Answer(MessageBytes(protocol::WriteCloseComplete));
    co_return Flow::kContinue;
  }
  const ClientStatement* cs = FindStatement(name);
  if (cs == nullptr) {
    co_await AnswerError(SqlError(absl::StatusCode::kNotFound, "26000",
                                  Cat("prepared statement \"", name, "\" does not exist")),
                         true);
    co_return Flow::kContinue;
  }
  const ClientStatement stmt = *cs;
  const size_t shard = AnyShard();
  auto* target_link = UseNow(shard) ? link(shard) : co_await UseExtended(shard);
  if (target_link == nullptr) co_return Flow::kContinue;
  auto& l = *target_link;
  SendForStatement(l, f, stmt, Pending::Kind::kDescribe,
                   [&] { protocol::WriteDescribe(l.out, 'S', stmt.stmt->server_name); });
  co_return Flow::kContinue;
}

void ClientSession::SetPortal(std::string_view name, const PortalTarget& target) {
  if (!name.empty()) {
    MakeExtended().portals[std::string(name)] = target;
  } else if (unnamed_portal_) {
    *unnamed_portal_ = target;
  } else {
    unnamed_portal_ = std::make_unique<PortalTarget>(target);
  }
}

// Describe, Execute and Close of a portal: they go where its Bind went.
awaitable<ClientSession::Flow> ClientSession::OnPortalMessage(const protocol::Frame& f, char type,
                                                              std::string_view name,
                                                              int32_t max_rows) {
  std::optional<PortalTarget> target;
  if (name.empty()) {
    if (unnamed_portal_) target = *unnamed_portal_;
  } else if (auto it = extended().portals.find(name); it != extended().portals.end()) {
    target = it->second;
  }
  if (type == fe::kClose && !name.empty() && extended_) extended_->portals.erase(name);
  const Pending::Kind kind = type == fe::kDescribe  ? Pending::Kind::kDescribe
                             : type == fe::kExecute ? Pending::Kind::kExecute
                                                    : Pending::Kind::kClose;
  if (target && target->local) {
    if (type == fe::kClose) {
      co_await Answer(MessageBytes(protocol::WriteCloseComplete));
    } else if (type == fe::kDescribe) {
      protocol::Buffer b;
      if (target->statement->kind == sharding::StatementKind::kShow) {
        std::string_view cols[] = {target->statement->set_name};
        protocol::WriteRowDescriptionText(b, cols);
      } else {
        protocol::WriteNoData(b);
      }
      co_await Answer(BufferBytes(b));
    } else if (target->statement->kind == sharding::StatementKind::kTransaction) {
      co_await RunTransactionLocally(*target->statement, target->text);
    } else {
      co_await RunLocal(*target->statement, true);
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
      co_await Answer(MessageBytes(protocol::WriteCloseComplete));
      co_return Flow::kContinue;
    }
    // The server explains the unknown portal.
    target = PortalTarget{};
    target->shard = AnyShard();
  }
  auto* target_link =
      UseNow(target->shard) ? link(target->shard) : co_await UseExtended(target->shard);
  if (target_link == nullptr) co_return Flow::kContinue;
  SendPortalMessage(*target_link, f, kind);
  co_return Flow::kContinue;
}
}  // namespace pgring::proxy
