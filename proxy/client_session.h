// One client connection of the client port: a reader coroutine (Run: the handshake, then
// Serve) that reads client messages, plus one pump per held server connection (at most one
// per shard) that streams that server's answers back: a read callback, continued by a
// coroutine only when it must wait (see "The pump" in client_session.cc). While the client
// holds nothing the reader is parked: it ends, and a socket wait starts it again (Park).
// All run on the owning worker's io_context thread; nothing here is shared with other
// threads except through CancelRegistry (which posts back to this thread).
//
// Each statement is analyzed (sharding/analyzer.h, cached per worker) and routed
// (sharding/router.h) when it runs: simple queries at Query, extended-protocol statements
// at Bind, where the parameter values are known. A statement for one shard streams through
// that shard's link; a statement for several shards is a *gather unit*: the same request
// (or a per-shard rewrite: an INSERT's own rows, a scatter read's helper columns) goes to
// each shard and a Gather (gather.h) combines the answers. Only one target has requests in
// flight at a time: before a request goes to another shard, the session waits until the
// previous target has answered everything (extended-protocol cycles are closed with a
// Sync first), so answers reach the client in request order without buffering.
//
// Under transaction pooling the client holds a shard's connection from its first statement
// there until the server reports ReadyForQuery 'I' with nothing outstanding; under session
// pooling (or when the client created session state such as LISTEN or a session advisory
// lock) until it disconnects. A BEGIN with no connection held is answered by pgring and
// replayed on each connection the transaction then takes.
//
// Within one link, responses reach the client in request order: each request forwarded to
// the server adds an entry to the link's `pending` queue; answers pgring makes itself
// (ParseComplete for a statement the server already has, CloseComplete, errors) are queued
// as synthetic entries and written when they reach the front.
#pragma once

#include <list>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "protocol/buffer.h"
#include "protocol/frame.h"
#include "proxy/async_lock.h"
#include "proxy/gather.h"
#include "proxy/topology.h"
#include "sharding/router.h"
#include "sharding/copy_splitter.h"
#include "sharding/shard_sql.h"
#include "proxy/asio.h"
#include "proxy/cancel_registry.h"
#include "proxy/fifo.h"
#include "proxy/client_handshake.h"
#include "proxy/server_connection.h"
#include "proxy/session_settings.h"
#include "proxy/statement_registry.h"
#include "proxy/str.h"
#include "proxy/stream.h"

namespace pgring::proxy {

class Worker;

// What SHOW CLIENTS prints about one session.
struct ClientInfo {
  std::string user;
  std::string database;
  // "active" (holds a server connection), "waiting" (for one, or for RESUME), "idle"
  std::string state;
  std::string addr;
  int port = 0;
  std::string application_name;
  Clock::time_point connect_time;
  Clock::time_point request_time;
  int32_t pid = 0;
  bool tls = false;
  bool pinned = false;
  bool parked = false;  // idle with no coroutine waiting (ClientSession::Park)
  size_t prepared_statements = 0;
  int64_t server_id = 0;
};

class ClientSession : public std::enable_shared_from_this<ClientSession> {
 public:
  ClientSession(Worker& worker, TcpSocket socket);
  ~ClientSession();
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // The whole life of the connection; returns when it is closed.
  awaitable<void> Run();

  ClientInfo Info() const;
  // Forwards a cancel to the servers running this client's statement (worker thread).
  void ForwardCancel();
  // Asks the session to end: at once when it holds no server connection, otherwise as
  // soon as its transaction ends (graceful shutdown).
  void RequestClose();
  // pool.startup_timeout (Worker::WatchStartup): when the handshake must have ended, and
  // ending it.
  Clock::time_point startup_deadline() const {
    return connect_time_ + config_->pool.startup_timeout;
  }
  bool startup_expired() const { return startup_expired_; }
  void ExpireStartup();
  // Parks the session (see Park) if its reader has waited for the client, holding no
  // server connection, for kParkAfterIdle. Called by the worker's maintenance loop.
  void ParkIfIdle(Clock::time_point now);
  bool holds_server() const { return held_ > 0; }
  // Server connections the session holds, with their shard index.
  std::vector<std::pair<size_t, const ServerConnection*>> servers() const;
  int32_t pid() const { return cancel_key_.pid; }

 private:
  // One request/response entry of a server link (see the class comment).
  struct Pending {
    enum class Kind : uint8_t {
      kParse, kBind, kDescribe, kExecute, kClose, kSync, kQuery, kFunctionCall,
      kSynthetic,      // bytes pgring answers itself, in order
      kInjectedQuery,  // a query pgring sent (settings replay, BEGIN, ROLLBACK): answers swallowed
      kInjectedParse,  // a re-prepare pgring sent before a Bind/Describe: answer swallowed
      kInjectedClose,  // eviction of a server-side statement: answer swallowed
    };
    Kind kind;
    bool gather = false;      // the answer goes to the session's Gather
    bool drop_ready = false;  // kSync / kQuery: the ReadyForQuery is not the client's
    uint64_t stmt_id = 0;     // kParse / kInjectedParse: server-side statement id
    // Rare parts, allocated only when there are some (entries are moved in and out of
    // the queue on every request).
    struct Text {
      std::string client_stmt;  // kParse / synthetic ParseComplete: the client's name
      std::string bytes;        // kSynthetic
    };
    std::unique_ptr<Text> text;
  };
  // A server connection held by this client, with its in-flight requests.
  struct ServerLink {
    size_t shard = 0;
    size_t gather_pos = 0;  // position in the current Gather
    std::unique_ptr<ServerConnection> conn;
    Fifo<Pending> pending;
    protocol::Buffer out;       // requests not yet written to the server
    bool unsynced = false;      // extended-protocol messages sent since the last Sync
    bool writing = false;       // the reader is writing to the server
    bool kicked = false;        // the reader cancelled the pump's read to re-check state
    bool cycle_error = false;   // an ErrorResponse arrived in the current request cycle
    bool saw_rollback = false;  // a ROLLBACK command completed in the current cycle
    bool gathered = false;      // the pump's last batch fed the Gather (the reader may wait)
    size_t batch_end = 0;       // bytes of the server's read buffer the batch consumed
    Clock::time_point cycle_start;
    Clock::time_point attach_time;
    // The pump's scratch space, kept across transactions so it allocates only once.
    struct Segment {
      bool synthetic;  // from `synth`, else from the server connection's read buffer
      size_t offset;
      size_t length;
    };
    std::vector<Segment> segments;
    std::vector<asio::const_buffer> gather;
    protocol::Buffer synth;

    bool busy() const { return !pending.empty() || unsynced || writing || !out.empty(); }
  };
  // A client statement of the extended protocol: the interned server-side statement and
  // its analysis.
  struct ClientStatement {
    std::shared_ptr<const PreparedStatement> stmt;
    bool unnamed = false;
  };
  // Where a portal's Describe/Execute go.
  struct PortalTarget {
    bool gather = false;
    bool local = false;  // pgring answers it (statement below)
    size_t shard = 0;
    const sharding::Statement* statement = nullptr;     // local portals
    std::shared_ptr<const sharding::Analysis> analysis;  // keeps `statement` alive
    std::string text;                                    // local portals: the statement
  };
  // COPY FROM STDIN in progress over several shards.
  struct CopyIn {
    std::unique_ptr<sharding::CopySplitter> splitter;  // null: every shard gets every row
    std::vector<protocol::Buffer> parts;
  };
  // kQueued (HandleNow only): the message waits in the pool's queue for a server
  // connection (QueueNow), not consumed; OnHandoff handles it again when one comes.
  enum class Flow { kContinue, kClose, kQueued };

  // The extended query protocol's state of the client, made at its first Parse: a client
  // that only sends simple queries (and every idle one that never prepared) does not carry
  // it.
  struct Extended {
    StringMap<ClientStatement> statements;
    ClientStatement unnamed;                        // the unnamed statement
    uint64_t unnamed_id = 0;                        // its id on server connections
    std::optional<ClientStatement> deferred_parse;  // a Parse not sent yet
    std::string deferred_parse_name;
    StringMap<PortalTarget> portals;
  };
  // The state to read (an empty one if the client never sent Parse) and to change.
  const Extended& extended() const;
  Extended& MakeExtended();
  bool HasDeferredParse() const { return extended_ && extended_->deferred_parse; }
  void DropDeferredParse() {
    if (extended_) extended_->deferred_parse.reset();
  }
  awaitable<std::optional<HandshakeResult>> Handshake();
  // Settings from the startup packet, cancel key, then the handshake's `greeting` with
  // ParameterStatus, BackendKeyData and ReadyForQuery in one write.
  awaitable<bool> Start(const ClientIdentity& id, protocol::Buffer& greeting);
  // Where Serve starts.
  enum class ResumeAt : uint8_t {
    kWait,          // wait for the client's next message
    kReadable,      // bytes (or EOF) are waiting: read without waiting first
    kReadEnded,     // the read callback's read ended (`ec`); what it read is in in_
    kMessages,      // in_ holds what the read callback left: handle it
    kNeedsMessage,  // ... and its first message goes to HandleMessage (HandleNow declined)
  };
  // Reads and runs client messages until the client goes (false), or until the session
  // goes on without a coroutine (true): parked, or waiting with the read callback.
  awaitable<bool> Serve(ResumeAt at, boost::system::error_code ec);
  // Serve, then Finish unless the session went on without the coroutine.
  awaitable<void> Continue(ResumeAt at, boost::system::error_code ec = {});
  // Continue in a new coroutine (co_spawn): from the callbacks, for what must wait.
  void Resume(ResumeAt at, boost::system::error_code ec = {});
  // An idle client (no server connection, no deadline) is *parked*: no coroutine is
  // suspended for it, only a socket wait whose handler (Unpark) starts Serve again when
  // the client sends something. Its coroutine frames would cost more memory than the rest
  // of the session.
  bool CanPark() const;
  void Park();
  void Unpark(boost::system::error_code ec, size_t n);
  struct ParkedRoom;
  static constexpr auto kParkAfterIdle = std::chrono::seconds(1);
  // Appends the welcome to `out` (the handshake's greeting) and sends it.
  awaitable<bool> SendWelcome(const ClientIdentity& id, protocol::Buffer& out);
  // A client inside a transaction (or whose answer is on the way) with no deadline to
  // watch waits with a plain read callback (ReadClient / OnClientRead): the messages that
  // need no wait are handled there (HandleNow) and the next read is started, with no
  // coroutine; the rest continues in Serve (Resume). TLS clients always wait in Serve.
  bool ReadsByCallback() const;
  void ReadClient();
  void OnClientRead(boost::system::error_code ec, size_t n);
  // The read callback's message loop over in_ (HandleNow), then the flush and the next
  // read (or Park, or Resume).
  void RunInput();
  // The deadline of the wait for the client's next message (zero: none), and its setting.
  conf::Duration WaitDeadline(std::string_view* setting) const;
  awaitable<bool> WaitForClient();
  // After the wait's read ended with `ec`: false if the session must end.
  awaitable<bool> WaitEnded(boost::system::error_code ec);
  awaitable<bool> SayGoodbye();  // FATAL 57P01 on shutdown; returns false
  void WakeReader();
  awaitable<Flow> HandleMessage(const protocol::Frame& frame);
  // HandleMessage without a coroutine frame for the messages of a statement on one shard
  // that need no wait (Execute or Describe of its portal, Sync); nullopt: HandleMessage.
  std::optional<Flow> HandleNow(const protocol::Frame& frame);
  // Sends Sync to every link with extended-protocol requests since the last one; false
  // if there was none (pgring answers the client's Sync itself).
  bool SyncLinks();
  awaitable<Flow> Malformed(std::string_view what);

  // Routing.
  // `memo`: the statement's route memo (sharding::RouteInputs::memo), or nullptr.
  absl::StatusOr<sharding::RoutePlan> Route(const sharding::Statement& s,
                                            const protocol::BindParams* params,
                                            std::span<const uint32_t> param_types,
                                            sharding::RouteMemo* memo = nullptr);
  // The one shard a plan runs on, or nullopt when it needs a gather unit. Session
  // statements go to the held connections (or the default shard when none is held).
  std::optional<size_t> SingleTarget(const sharding::RoutePlan& plan) const;
  std::vector<size_t> SessionTargets() const;
  // A shard for a request any shard can answer (Parse, Describe of a statement): the one
  // with requests in flight, else one held, else the default shard.
  size_t AnyShard();
  // Use() for one extended-protocol message: the link, or nullptr when the message is
  // skipped (an earlier error in the cycle; or no connection, whose error is answered).
  awaitable<ServerLink*> UseExtended(size_t shard);
  // The analysis and routing of a simple Query: one plan per statement, with its text
  // range. `analysis` is null when analysis failed; `error` is the analysis's or the first
  // routing error (the Query is refused whole).
  struct QueryPlan {
    std::shared_ptr<const sharding::Analysis> analysis;
    absl::InlinedVector<sharding::RoutePlan, 1> plans;
    absl::InlinedVector<std::pair<size_t, size_t>, 1> ranges;
    absl::Status error;
  };
  QueryPlan PlanQuery(std::string_view sql);
  // A single statement pgring answers itself (SHOW pgring..., BEGIN with nothing held).
  bool AnsweredLocally(const QueryPlan& q) const;
  // The one shard that takes the whole Query string as it is, if there is one.
  std::optional<size_t> WholeTarget(const QueryPlan& q) const;
  void SendQuery(ServerLink& link, const protocol::Frame& f, std::string_view sql,
                 const QueryPlan& q);
  // A Query for one shard whose connection is at hand, without a coroutine frame; otherwise
  // nullopt, with the plan left in planned_ for HandleMessage.
  std::optional<Flow> QueryNow(const protocol::Frame& f);
  awaitable<void> OnQuery(const protocol::Frame& f, std::string_view sql, QueryPlan q);
  awaitable<bool> RunLocal(const sharding::Statement& s, bool extended);
  // Applies a BEGIN/COMMIT/ROLLBACK pgring answers itself and writes its answer, without
  // ReadyForQuery, to `out`; false if `s` is not one of those.
  bool AnswerTransaction(const sharding::Statement& s, std::string_view text,
                         protocol::Buffer& out);
  // BEGIN/COMMIT/ROLLBACK with no connection held; `text` is the statement as written
  // (a BEGIN's options are replayed with it).
  awaitable<bool> RunTransactionLocally(const sharding::Statement& s, std::string_view text);
  // Runs one statement of a simple Query on several shards; returns false if it failed.
  // `begin`: open a transaction on each shard that has none (the statement is outside a
  // transaction block); `finish`: then commit them all, or roll back if it failed.
  awaitable<bool> RunGatherQuery(std::string_view sql, std::pair<size_t, size_t> range,
                                 const sharding::Statement& s, const sharding::RoutePlan& plan,
                                 bool begin, bool finish);
  // A write over several shards outside a transaction block runs in a transaction on each
  // shard: BeginImplicit opens it (if the link has none), FinishImplicit commits or rolls
  // back every shard's; false if a COMMIT failed (the client got the error).
  void BeginImplicit(ServerLink& link);
  awaitable<bool> FinishImplicit(const std::vector<size_t>& shards, bool commit);
  awaitable<bool> StartCopyIn(const sharding::Statement& s, const sharding::RoutePlan& plan,
                              std::string_view text);
  awaitable<void> OnCopyMessage(const protocol::Frame& f);
  awaitable<void> FailCopyIn(const absl::Status& st);
  awaitable<void> EndCopyIn();
  awaitable<Flow> OnBind(const protocol::Frame& f, const protocol::Bind& b);
  // Parse, and a Bind to one shard whose connection is at hand, without a coroutine frame
  // when nothing needs an answer from pgring or a wait; otherwise nullopt (HandleMessage).
  std::optional<Flow> ParseNow(const protocol::Frame& f);
  std::optional<Flow> BindNow(const protocol::Frame& f);
  // The statement of a Parse, analyzed (once per worker); the analysis error otherwise.
  absl::StatusOr<std::shared_ptr<const PreparedStatement>> InternParse(const protocol::Parse& p);
  // Records a Parse to send with the next request (SendDeferredParse).
  void DeferParse(std::string name, std::shared_ptr<const PreparedStatement> stmt);
  // The client's prepared statement `name` ("" the unnamed one); null if there is none.
  const ClientStatement* FindStatement(std::string_view name) const;
  // Sends the client's message `f` about its statement `stmt` on `link`: as it is for the
  // unnamed statement (re-parsed there first when needed), else written by `write_named`
  // with the server-side name (prepared there first when needed).
  void SendForStatement(ServerLink& link, const protocol::Frame& f, const ClientStatement& stmt,
                        Pending::Kind kind, absl::FunctionRef<void()> write_named);
  // Sends a Bind of `stmt` on `link` (after its deferred Parse) and records its portal.
  void SendBind(ServerLink& link, const protocol::Frame& f, const protocol::Bind& b,
                const ClientStatement& stmt, const sharding::Statement* s);
  awaitable<Flow> OnStatementMessage(const protocol::Frame& f, char type, std::string_view name);
  // Records where a Bind sent its portal (`name` empty: the unnamed portal).
  void SetPortal(std::string_view name, const PortalTarget& target);
  awaitable<Flow> OnPortalMessage(const protocol::Frame& f, char type, std::string_view name,
                                  int32_t max_rows);
  void SendPortalMessage(ServerLink& link, const protocol::Frame& f, Pending::Kind kind);

  // Targets and waiting.
  ServerLink* link(size_t shard) { return shard < links_.size() ? links_[shard].get() : nullptr; }
  bool Held(size_t shard) const {
    return shard < links_.size() && links_[shard] && links_[shard]->conn;
  }
  // Makes `shards` the target of the next requests: closes and waits out every other
  // link's requests (and an open gather), then takes a connection for each shard not held.
  // Returns an error status when a connection cannot be had; sets `*skip` when an earlier
  // request of this extended-protocol cycle failed (the caller skips to Sync).
  awaitable<absl::Status> Use(std::span<const size_t> shards, bool* skip);
  awaitable<absl::Status> Attach(size_t shard);
  // Use() of one shard when it needs no wait (the usual case; no coroutine frame): the
  // shard is held, or an idle connection is taken, and no other link is busy. False: call
  // Use().
  bool UseNow(size_t shard);
  // No gather is open and no link to another shard has requests in flight: requests for
  // `shard` may go now (answers keep request order).
  bool OthersQuiet(size_t shard) const;
  // UseNow's wait without a coroutine: when every connection to `shard` is busy and none
  // can be opened, the client waits in the pool's queue (ServerPool::Queue) and the
  // message is handled again by OnHandoff. False: call Use().
  bool QueueNow(size_t shard);
  // The pool's answer to QueueNow: a connection (attached, and the messages run again),
  // or null (the message goes to HandleMessage, which waits in Acquire).
  void OnHandoff(size_t shard, std::unique_ptr<ServerConnection> conn);
  // Takes `conn` as the shard's link and starts its pump.
  void AttachConnection(size_t shard, std::unique_ptr<ServerConnection> conn, Clock::time_point now);
  awaitable<void> WaitQuiet(const std::function<bool()>& quiet);
  void NotifyQuiet();
  void StartGather(std::span<const size_t> shards, Gather::SpecFactory merge,
                   bool silent = false);
  awaitable<void> CloseGather(bool client_sync);
  awaitable<void> FlushServers();
  awaitable<void> FlushServer(ServerLink& link);
  // The same without waiting (the usual case, with no coroutine frame): true when nothing
  // is left to write (or the write failed); what is left goes through FlushServer(s).
  bool FlushServerNow(ServerLink& link);
  bool FlushServersNow();
  void AfterServerWrite(ServerLink& link, boost::system::error_code ec);
  // The pump of a link (see "The pump" in client_session.cc).
  enum class PumpStep : uint8_t {
    kRead,       // read from the server
    kGotRead,    // handle the read result given
    kWriteRest,  // the client socket is locked and link.gather holds what is left to write
    kSettle,     // a batch is done: release the connection or read again
  };
  void StartPump(ServerLink& link);
  void ReadServer(ServerLink& link);
  void OnServerRead(ServerLink& link, boost::system::error_code ec, size_t n);
  void SpawnPump(ServerLink& link, PumpStep step, boost::system::error_code ec, size_t n);
  awaitable<void> Pump(std::shared_ptr<ClientSession> self, ServerLink* link, PumpStep step,
                       boost::system::error_code ec, size_t n);
  // Forwards the answers read (client socket locked): false when link.gather still holds
  // bytes the client socket did not take. EndBatch then consumes them and unlocks.
  bool ForwardBatch(ServerLink& link);
  void EndBatch(ServerLink& link);
  bool SettleNow(ServerLink& link);
  bool Closing(const ServerLink& link) const;
  awaitable<bool> SettleClosing(ServerLink& link);
  awaitable<void> ServerLost(ServerLink& link, boost::system::error_code ec);
  // Terminate: the statements sent before it still run (Finish), as on PostgreSQL.
  Flow Goodbye();
  void Finish();

  // Request-side helpers (reader).
  void Push(ServerLink& link, Pending::Kind kind, uint64_t stmt_id = 0,
            std::string client_stmt = {});
  ServerLink* BusyLink() const;  // a held link with requests in flight
  awaitable<void> Answer(std::string bytes, std::string client_stmt = {});
  awaitable<void> AnswerError(const absl::Status& st, bool extended);
  awaitable<void> AnswerReady();
  void EnsurePrepared(ServerLink& link, const PreparedStatement& stmt);
  void EnsureUnnamed(ServerLink& link);
  // Sends the Parse the client sent before this request (its ParseComplete may be answered
  // by pgring when the server has the statement already).
  awaitable<void> SendDeferredParse(ServerLink& link);
  // SendDeferredParse when pgring need not answer: false if it must.
  bool SendDeferredParseNow(ServerLink& link);
  void NoteStatementText(ServerLink& link, std::string_view sql);
  // The same for a prepared statement, whose text is checked once.
  void NotePreparedText(ServerLink& link, const PreparedStatement& stmt);

  // Response-side helpers (pump).
  enum class Disposition { kForward, kDrop, kGather };
  Disposition OnServerFrame(ServerLink& link, const protocol::Frame& frame);
  void DrainSynthetic(ServerLink& link, protocol::Buffer& synth);
  // `clients`: this ReadyForQuery is the client's (not a gather's or pgring's own).
  void OnReadyForQuery(ServerLink& link, char status, bool clients);
  bool Detachable(const ServerLink& link) const;
  void Detach(ServerLink& link, Clock::time_point now);
  void Kick(ServerLink& link);
  void CancelOn(const ServerConnection& conn);
  awaitable<bool> WriteClient(std::span<const std::byte> bytes);
  // Whether pgring may answer the client now: nothing else is writing to it and no server
  // answer is due before pgring's.
  bool CanWriteClientNow() const;
  // Writes when CanWriteClientNow(): what the socket does not take at once is written by
  // WriteClientRest, which holds the client's write lock until it is done.
  void WriteClientNow(std::span<const std::byte> bytes);
  awaitable<void> WriteClientRest(std::shared_ptr<ClientSession> self,
                                  std::vector<std::byte> rest);

  // Members are grouped by size: an idle client costs about this object, so it is kept
  // small (pure per-statement scratch lives elsewhere).
  Worker& worker_;
  std::shared_ptr<const conf::Config> config_;  // snapshot: a reload does not change it
  std::shared_ptr<const Topology> topology_;    // refreshed when the client holds nothing
  Stream stream_;
  protocol::Buffer in_;
  std::vector<std::unique_ptr<ServerLink>> links_;  // by shard index
  AsyncLock client_write_;
  CancelRegistry::Key cancel_key_;
  // The session's place on the worker's start-up list during the handshake
  // (in_startups_), on its session list after it (in_registry_).
  std::list<ClientSession*>::iterator registry_it_;

  SessionSettings settings_;
  std::unique_ptr<SettingChange> cycle_setting_;  // sent, applied at ReadyForQuery
  std::vector<SettingChange> txn_settings_;       // applied when the transaction commits
  std::unique_ptr<Extended> extended_;  // made by the client's first Parse
  std::unique_ptr<PortalTarget> unnamed_portal_;  // kept across Binds, dropped when parked
  std::unique_ptr<QueryPlan> planned_;            // QueryNow -> HandleMessage
  std::unique_ptr<Gather> gather_;
  std::vector<size_t> gather_shards_;
  std::unique_ptr<CopyIn> copy_in_;
  std::string deferred_begin_;  // the client's BEGIN, replayed on connections taken later
  std::unique_ptr<std::string> session_shard_key_;  // SET pgring.shard_key
  std::unique_ptr<std::string> txn_shard_key_;      // SET LOCAL pgring.shard_key
  std::unique_ptr<asio::steady_timer> quiet_;     // the reader waits on it for the servers
  std::unique_ptr<asio::steady_timer> wake_;      // wakes WaitForClient on RequestClose
  std::string user_;
  std::string application_name_;  // from the startup packet, for SHOW CLIENTS
  Clock::time_point connect_time_ = Clock::now();
  Clock::time_point request_time_ = Clock::now();
  Clock::time_point queued_since_{};  // QueueNow's wait began (zero: not queued)
  int held_ = 0;  // links with a connection
  char client_tx_status_ = 'I';
  // One bit each: the session object stays in its allocation size class (idle memory).
  bool registered_ : 1 = false;
  bool in_registry_ : 1 = false;
  bool in_startups_ : 1 = false;       // on the worker's start-up list (registry_it_)
  bool startup_expired_ : 1 = false;   // pool.startup_timeout ended the handshake
  bool gather_open_ : 1 = false;       // extended protocol: requests still join the gather
  bool gather_implicit_ : 1 = false;   // the gather's shards commit when it closes
  bool copy_implicit_ : 1 = false;     // the COPY's shards commit when it ends
  bool skip_until_sync_ : 1 = false;   // an error pgring raised in extended mode: skip to Sync
  bool cycle_failed_ : 1 = false;      // an error reached the client in this extended cycle
  bool pinned_ : 1 = false;
  bool closing_ : 1 = false;           // the client is gone or must go: release and stop
  bool client_gone_ : 1 = false;       // writes to the client failed
  bool said_goodbye_ : 1 = false;      // the client sent Terminate
  bool close_requested_ : 1 = false;
  bool parked_ : 1 = false;            // waiting for the client with no coroutine (Park)
  bool waiting_ : 1 = false;           // the reader waits for the client with no deadline
  bool park_requested_ : 1 = false;    // ParkIfIdle ended that wait
  bool pool_waiting_ : 1 = false;      // waits for a server connection (SHOW CLIENTS)
};

}  // namespace pgring::proxy
