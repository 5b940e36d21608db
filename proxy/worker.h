// One io thread: its io_context, the client sessions accepted on it, and its own server
// pools (one per shard), so the data path never takes a lock. The pool size of the
// configuration is split between workers. Created and owned by Proxy.
#pragma once

#include <atomic>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "conf/config.h"
#include "protocol/buffer.h"
#include "proxy/session_settings.h"
#include "proxy/asio.h"
#include "proxy/client_handshake.h"
#include "proxy/server_pool.h"
#include "proxy/statement_registry.h"
#include "proxy/topology.h"
#include "sharding/analyzer_cache.h"

namespace pgring::proxy {

class Proxy;
class ClientSession;

// Counters of one worker, written on its thread and read by the metrics thread
// (relaxed atomics: monotonic counters need no ordering).
struct WorkerCounters {
  std::atomic<uint64_t> clients_accepted{0};
  std::atomic<uint64_t> clients_rejected{0};
  std::atomic<uint64_t> transactions{0};
  std::atomic<uint64_t> queries{0};
  std::atomic<uint64_t> bytes_received{0};  // from clients
  std::atomic<uint64_t> bytes_sent{0};      // to clients
  std::atomic<uint64_t> transaction_us{0};
  std::atomic<uint64_t> query_us{0};
  std::atomic<uint64_t> wait_us{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<uint64_t> prepares{0};        // Parse messages sent to servers
  std::atomic<uint64_t> prepare_hits{0};    // client Parse answered from a server's cache
  std::atomic<uint64_t> protocol_errors{0};
  void Add(std::atomic<uint64_t>& c, uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }
};

class Worker {
 public:
  Worker(Proxy& proxy, int index, int worker_count, std::shared_ptr<const conf::Config> config);
  ~Worker();

  // Binds its own listening socket on the client port (SO_REUSEPORT) and, for worker 0,
  // the admin port; then runs the io_context on a new thread.
  absl::Status Listen();
  void Start();
  void Stop();  // stops accepting; sessions drain (see Proxy::Shutdown)
  void Join();

  asio::io_context& io() { return io_; }
  Proxy& proxy() { return proxy_; }
  int index() const { return index_; }
  const conf::Config& config() const { return *config_; }
  std::shared_ptr<const conf::Config> config_ptr() const { return config_; }
  // The ring and table map statements are routed by (a snapshot; swapped on reload).
  const std::shared_ptr<const Topology>& topology() const { return topology_; }
  // Parsed statements by text, this worker's own (no locks).
  sharding::AnalyzerCache& analyzer() { return analyzer_; }
  // A fresh id for a client's unnamed statement (ServerConnection::unnamed_id).
  uint64_t NextUnnamedId() { return ++unnamed_ids_; }
  ServerPool& pool(size_t shard) { return *pools_[shard]; }
  size_t pool_count() const { return pools_.size(); }
  StatementRegistry& statements() { return statements_; }
  WorkerCounters& counters() { return counters_; }
  const VerifierMap& verifiers() const { return verifiers_; }

  // Startup ParameterStatus values of the shard servers (learned from the first server
  // connection), sent to each client after login.
  bool knows_server_parameters() const { return !server_parameters_.empty(); }
  void LearnServerParameters(const std::vector<std::pair<std::string, std::string>>& p);
  // Appends a ParameterStatus message for each server parameter to `out`, with the
  // client's own startup value where it sent one: the servers' messages are written once
  // per worker and copied.
  void WriteServerParameters(const StartupSettingsCache::Params& client,
                             protocol::Buffer& out) const;

  // Sessions in their start-up (ClientSession::Handshake), watched for
  // pool.startup_timeout by one timer for the whole worker: a login sets no timer of its
  // own. The iterator is the session's place on the list, for UnwatchStartup.
  std::list<ClientSession*>::iterator WatchStartup(ClientSession* s);
  void UnwatchStartup(std::list<ClientSession*>::iterator it) { startups_.erase(it); }

  // Sessions on this worker (for SHOW CLIENTS, PAUSE and shutdown).
  std::list<ClientSession*>::iterator AddSession(ClientSession* s) {
    return sessions_.insert(sessions_.end(), s);
  }
  void RemoveSession(std::list<ClientSession*>::iterator it) { sessions_.erase(it); }
  const std::list<ClientSession*>& sessions() const { return sessions_; }

  // Applies a reloaded configuration on this worker's thread.
  void ApplyConfig(std::shared_ptr<const conf::Config> config);

  // Index of the default shard (the shard statements go to until routing exists).
  size_t default_shard() const { return default_shard_; }

  // Suspends the caller while the proxy is paused (PAUSE); returns at once otherwise.
  awaitable<void> WaitWhilePaused();
  // Wakes every caller of WaitWhilePaused (after RESUME); worker thread only.
  void WakePaused();
  // The session settings of a client's startup parameters (shared while they repeat).
  const SessionSettings& StartupSettings(const StartupSettingsCache::Params& params) {
    return startup_settings_.Get(params);
  }
  // Asks every session to close once it holds no server connection (shutdown).
  void CloseSessions();
  // Number of sessions that hold a server connection.
  int ActiveSessions() const;

 private:
  awaitable<void> AcceptLoop(tcp::acceptor& acceptor, bool admin);
  awaitable<void> Maintenance();
  // Batches this worker's sends through io_uring (proxy/send_ring.h) when the kernel
  // allows; otherwise sockets send with plain system calls.
  void StartSendRing();
  void BuildTopology();
  void BuildPools();
  // Expires the start-ups past their deadline and sets the timer for the next one.
  void CheckStartups();
  void ArmStartupTimer(Clock::time_point at);

  Proxy& proxy_;
  int index_;
  int worker_count_;
  std::shared_ptr<const conf::Config> config_;
  std::shared_ptr<const Topology> topology_;
  sharding::AnalyzerCache analyzer_{4096};
  uint64_t unnamed_ids_ = 0;
  // Declared before io_: sessions destroyed with io_'s pending handlers (a parked session's
  // socket wait) still remove themselves from these lists.
  std::list<ClientSession*> sessions_;
  std::list<ClientSession*> startups_;
  // One thread runs io_ and each socket is used only by it: the reactor needs no lock per
  // socket operation (other threads only post to io_, which stays locked).
  asio::io_context io_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  asio::steady_timer startup_timer_{io_};
  Clock::time_point startup_timer_at_ = Clock::time_point::max();  // max: not set
  std::unique_ptr<tcp::acceptor> client_acceptor_;
  std::unique_ptr<tcp::acceptor> admin_acceptor_;
  std::vector<std::unique_ptr<ServerPool>> pools_;
  StatementRegistry statements_;
  WorkerCounters counters_;
  VerifierMap verifiers_;
  std::vector<std::pair<std::string, std::string>> server_parameters_;
  protocol::Buffer server_status_;      // their ParameterStatus messages, in order
  std::vector<size_t> server_status_ends_;  // where each message ends in server_status_
  std::list<asio::steady_timer*> paused_waiters_;
  StartupSettingsCache startup_settings_;
  size_t default_shard_ = 0;
  std::thread thread_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
};

}  // namespace pgring::proxy
