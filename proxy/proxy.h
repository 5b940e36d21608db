// The pgring process: owns the configuration, the worker threads, the cancel registry,
// the TLS context, the admin console and the metrics endpoint; handles signals
// (SIGTERM/SIGINT: graceful shutdown, SIGHUP: reload). Created by main.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "conf/config.h"
#include "proxy/asio.h"
#include "proxy/cancel_registry.h"
#include "proxy/client_session.h"
#include "proxy/pool_budget.h"
#include "proxy/server_pool.h"

namespace pgring::proxy {

class Worker;
class MetricsServer;

// A consistent picture of one worker, taken on its thread.
struct PoolSnapshot {
  std::string shard;
  int max_size = 0;
  int total = 0;
  int idle = 0;
  int active = 0;
  int waiting = 0;
  int64_t maxwait_us = 0;
  PoolStats stats;
};
struct ServerInfo {
  std::string shard;
  std::string state;  // "active" or "idle"
  std::string addr;
  int port = 0;
  int32_t remote_pid = 0;
  uint64_t id = 0;
  bool tls = false;
  size_t prepared_statements = 0;
  Clock::time_point connect_time;
  Clock::time_point last_used;
  int32_t client_pid = 0;
};
struct WorkerSnapshot {
  int index = 0;
  std::vector<PoolSnapshot> pools;
  std::vector<ClientInfo> clients;
  std::vector<ServerInfo> servers;
  uint64_t clients_accepted = 0, clients_rejected = 0, transactions = 0, queries = 0,
           bytes_received = 0, bytes_sent = 0, transaction_us = 0, query_us = 0, wait_us = 0,
           errors = 0, prepares = 0, prepare_hits = 0, protocol_errors = 0;
  size_t statements = 0;
  uint64_t analyzer_hits = 0, analyzer_misses = 0;  // statement analysis cache
  int sessions = 0;
};

class Proxy {
 public:
  explicit Proxy(std::shared_ptr<const conf::Config> config);
  ~Proxy();

  // Starts the workers and blocks until shutdown; returns the process exit code.
  int Run();

  std::shared_ptr<const conf::Config> config() const;
  CancelRegistry& cancels() { return cancels_; }
  asio::ssl::context* tls_context() { return tls_.get(); }
  const std::vector<std::unique_ptr<Worker>>& workers() const { return workers_; }
  bool paused() const { return paused_.load(std::memory_order_acquire); }
  Clock::time_point started() const { return started_; }

  // Admin operations (any thread).
  absl::Status Reload();  // re-reads the configuration file; keeps the old one on error
  void Pause();
  void Resume();
  void Shutdown();
  // The shard's connection limit shared by all workers' pools.
  PoolBudget& budget(size_t shard) { return *budgets_[shard]; }
  // Asks every worker but `except` to hand one idle connection to `shard` over to worker
  // `except`, which has a client waiting while the shard's limit is reached (the socket
  // moves between threads; a TLS connection is closed instead, freeing its room).
  void HandOverIdle(size_t shard, int except);
  // Tells every worker that room under `shard`'s limit was given back.
  void NotifyCapacityFreed(size_t shard);

  // Admission control for max_clients: false when the limit is reached.
  bool AdmitClient();
  void ReleaseClient();
  int clients() const { return clients_.load(std::memory_order_relaxed); }

  // Snapshots of every worker: from a worker coroutine (admin console)...
  awaitable<std::vector<WorkerSnapshot>> SnapshotAsync(bool detailed);
  // ...or from any other thread (metrics), blocking.
  std::vector<WorkerSnapshot> Snapshot(bool detailed);

 private:
  absl::Status SetupTls(const conf::Config& config);

  mutable std::mutex config_mu_;
  std::shared_ptr<const conf::Config> config_;
  CancelRegistry cancels_;
  std::unique_ptr<asio::ssl::context> tls_;
  std::vector<std::unique_ptr<PoolBudget>> budgets_;  // one per shard
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> paused_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<int> clients_{0};
  Clock::time_point started_ = Clock::now();
  std::unique_ptr<MetricsServer> metrics_;
  asio::io_context signal_io_{1};
};

// Takes a snapshot of one worker; call on that worker's thread.
WorkerSnapshot TakeSnapshot(Worker& worker, bool detailed);

}  // namespace pgring::proxy
