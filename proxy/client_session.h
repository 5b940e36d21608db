// One client connection of the client port: one root coroutine (Run) that performs the
// handshake and then reads client messages, plus, while the client holds a server
// connection, one pump coroutine per held connection that streams the server's answers
// back. Both run on the owning worker's io_context thread; nothing here is shared with
// other threads except through CancelRegistry (which posts back to this thread).
//
// Under transaction pooling the client holds a server connection from its first
// statement until the server reports ReadyForQuery 'I' with nothing outstanding; under
// session pooling (or when the client created session state such as LISTEN or a session
// advisory lock) until it disconnects.
//
// Responses reach the client in request order: each request forwarded to a server adds
// an entry to the link's `pending` queue; answers pgring makes itself (ParseComplete for a
// statement the server already has, CloseComplete, errors) are queued as synthetic
// entries and written when they reach the front.
#pragma once

#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "protocol/buffer.h"
#include "protocol/frame.h"
#include "proxy/async_lock.h"
#include "proxy/asio.h"
#include "proxy/cancel_registry.h"
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
  std::string state;  // "active" (holds a server connection), "idle", "waiting"
  std::string addr;
  int port = 0;
  std::string application_name;
  Clock::time_point connect_time;
  Clock::time_point request_time;
  int32_t pid = 0;
  bool tls = false;
  bool pinned = false;
  size_t prepared_statements = 0;
  int64_t server_id = 0;
};

class ClientSession : public std::enable_shared_from_this<ClientSession> {
 public:
  ClientSession(Worker& worker, tcp::socket socket);
  ~ClientSession();
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // The whole life of the connection; returns when it is closed.
  awaitable<void> Run();

  ClientInfo Info() const;
  // Forwards a cancel to the server running this client's statement (worker thread).
  void ForwardCancel();
  // Asks the session to end: at once when it holds no server connection, otherwise as
  // soon as its transaction ends (graceful shutdown).
  void RequestClose();
  bool holds_server() const { return link_ && link_->conn; }
  const ServerConnection* server() const { return holds_server() ? link_->conn.get() : nullptr; }
  size_t server_shard() const { return link_ ? link_->shard : 0; }
  int32_t pid() const { return cancel_key_.pid; }

 private:
  // One request/response entry of a server link (see the class comment).
  struct Pending {
    enum class Kind : uint8_t {
      kParse, kBind, kDescribe, kExecute, kClose, kSync, kQuery, kFunctionCall,
      kSynthetic,      // bytes pgring answers itself, in order
      kInjectedQuery,  // a query pgring sent (settings replay, ROLLBACK): answers swallowed
      kInjectedParse,  // a re-prepare pgring sent before a Bind/Describe: answer swallowed
      kInjectedClose,  // eviction of a server-side statement: answer swallowed
    };
    Kind kind;
    uint64_t stmt_id = 0;     // kParse / kInjectedParse: server-side statement id
    std::string client_stmt;  // kParse / synthetic ParseComplete: the client's name
    std::string bytes;        // kSynthetic
  };
  // A server connection held by this client, with its in-flight requests.
  struct ServerLink {
    size_t shard = 0;
    std::unique_ptr<ServerConnection> conn;
    std::deque<Pending> pending;
    protocol::Buffer out;       // requests not yet written to the server
    bool unsynced = false;      // extended-protocol messages sent since the last Sync
    bool writing = false;       // the reader is writing to the server
    bool kicked = false;        // the reader cancelled the pump's read to re-check state
    bool cycle_error = false;   // an ErrorResponse arrived in the current request cycle
    bool saw_rollback = false;  // a ROLLBACK command completed in the current cycle
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
  };
  enum class Flow { kContinue, kClose };

  awaitable<bool> Handshake();
  awaitable<void> Serve(const ClientIdentity& id);
  awaitable<bool> SendWelcome(const ClientIdentity& id);
  awaitable<bool> WaitForClient();
  awaitable<bool> SayGoodbye();  // FATAL 57P01 on shutdown; returns false
  void WakeReader();
  awaitable<Flow> HandleMessage(const protocol::Frame& frame);
  awaitable<absl::Status> Attach();
  awaitable<void> Pump(std::shared_ptr<ClientSession> self, ServerLink* link);
  awaitable<void> FlushServer();
  awaitable<void> Finish();

  // Request-side helpers (reader).
  void Push(Pending::Kind kind, uint64_t stmt_id = 0, std::string client_stmt = {});
  awaitable<void> Answer(std::string bytes, std::string client_stmt = {});
  awaitable<void> AnswerError(const absl::Status& st, bool extended);
  void EnsurePrepared(const PreparedStatement& stmt);
  void NoteStatementText(std::string_view sql);

  // Response-side helpers (pump).
  enum class Disposition { kForward, kDrop };
  Disposition OnServerFrame(ServerLink& link, const protocol::Frame& frame);
  void DrainSynthetic(ServerLink& link, protocol::Buffer& synth);
  void OnReadyForQuery(ServerLink& link, char status);
  bool Detachable(const ServerLink& link) const;
  void Detach(ServerLink& link);
  void Kick(ServerLink& link);
  awaitable<bool> WriteClient(std::span<const std::byte> bytes);

  Worker& worker_;
  std::shared_ptr<const conf::Config> config_;  // snapshot: a reload does not change it
  Stream stream_;
  protocol::Buffer in_;
  std::unique_ptr<ServerLink> link_;
  AsyncLock client_write_;
  ClientIdentity identity_;
  CancelRegistry::Key cancel_key_;
  bool registered_ = false;
  std::list<ClientSession*>::iterator registry_it_;
  bool in_registry_ = false;

  SessionSettings settings_;
  std::optional<SettingChange> cycle_setting_;            // sent, applied at ReadyForQuery
  std::vector<SettingChange> txn_settings_;               // applied when the transaction commits
  StringMap<std::shared_ptr<const PreparedStatement>> statements_;
  bool skip_until_sync_ = false;  // an error pgring raised in extended mode: skip to Sync
  bool pinned_ = false;
  std::string pin_reason_;
  bool closing_ = false;       // the client is gone or must go: release and stop
  bool client_gone_ = false;   // writes to the client failed
  bool close_requested_ = false;
  char client_tx_status_ = 'I';
  std::string tcp_addr_;
  int tcp_port_ = 0;
  Clock::time_point connect_time_ = Clock::now();
  Clock::time_point request_time_ = Clock::now();
  std::unique_ptr<asio::steady_timer> wake_;  // wakes WaitForClient on RequestClose
};

}  // namespace pgring::proxy
