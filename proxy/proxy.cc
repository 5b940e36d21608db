#include "protocol/sql_error.h"
#include "proxy/proxy.h"

#include <future>
#include <thread>

#include "proxy/str.h"
#include "conf/loader.h"
#include "proxy/metrics.h"
#include "proxy/worker.h"
#include "spdlog/spdlog.h"

namespace pgring::proxy {

namespace {

ServerInfo DescribeServer(const ServerConnection& c, std::string shard, const char* state,
                          Clock::time_point last_used) {
  ServerInfo si;
  si.shard = std::move(shard);
  si.state = state;
  si.addr = c.host();
  si.port = c.port();
  si.remote_pid = c.backend_pid();
  si.id = c.id;
  si.tls = c.tls();
  si.prepared_statements = c.prepared_count();
  si.connect_time = c.created_at;
  si.last_used = last_used;
  return si;
}

}  // namespace

WorkerSnapshot TakeSnapshot(Worker& w, bool detailed) {
  WorkerSnapshot s;
  s.index = w.index();
  auto now = Clock::now();
  for (size_t i = 0; i < w.pool_count(); ++i) {
    auto& p = w.pool(i);
    PoolSnapshot ps;
    ps.shard = p.options().shard_name;
    ps.max_size = p.options().max_size;
    ps.total = p.total();
    ps.idle = p.idle();
    ps.active = p.active();
    ps.waiting = p.waiting();
    ps.maxwait_us = std::chrono::duration_cast<std::chrono::microseconds>(p.max_wait()).count();
    ps.stats = p.stats();
    s.pools.push_back(std::move(ps));
    if (detailed) {
      for (const auto& c : p.idle_connections()) {
        s.servers.push_back(DescribeServer(*c, p.options().shard_name, "idle", c->last_used));
      }
    }
  }
  for (auto* session : w.sessions()) {
    ++s.sessions;
    if (!detailed) continue;
    s.clients.push_back(session->Info());
    for (const auto& [shard, c] : session->servers()) {
      auto si = DescribeServer(*c, w.pool(shard).options().shard_name, "active", now);
      si.client_pid = session->pid();
      s.servers.push_back(std::move(si));
    }
  }
  auto& c = w.counters();
  auto ld = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  s.clients_accepted = ld(c.clients_accepted);
  s.clients_rejected = ld(c.clients_rejected);
  s.transactions = ld(c.transactions);
  s.queries = ld(c.queries);
  s.bytes_received = ld(c.bytes_received);
  s.bytes_sent = ld(c.bytes_sent);
  s.transaction_us = ld(c.transaction_us);
  s.query_us = ld(c.query_us);
  s.wait_us = ld(c.wait_us);
  s.errors = ld(c.errors);
  s.prepares = ld(c.prepares);
  s.prepare_hits = ld(c.prepare_hits);
  s.protocol_errors = ld(c.protocol_errors);
  s.statements = w.statements().size();
  s.analyzer_hits = w.analyzer().hits();
  s.analyzer_misses = w.analyzer().misses();
  return s;
}

Proxy::Proxy(std::shared_ptr<const conf::Config> config) : config_(std::move(config)) {}

Proxy::~Proxy() {
  for (auto& w : workers_) w->Join();
  // Sessions still owned by a worker's handlers release themselves into this Proxy
  // (admission count, cancel keys): destroy them while every member is alive.
  workers_.clear();
}

std::shared_ptr<const conf::Config> Proxy::config() const {
  std::lock_guard lock(config_mu_);
  return config_;
}

absl::Status Proxy::SetupTls(const conf::Config& config) {
  if (config.tls.client_mode == conf::ClientTlsMode::kDisable) {
    tls_.reset();
    return absl::OkStatus();
  }
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(config.tls.cert_file, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        Cat("tls.cert_file ", config.tls.cert_file, ": ", ec.message()));
  }
  ctx->use_private_key_file(config.tls.key_file, asio::ssl::context::pem, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        Cat("tls.key_file ", config.tls.key_file, ": ", ec.message()));
  }
  tls_ = std::move(ctx);
  return absl::OkStatus();
}

int Proxy::Run() {
  auto config = this->config();
  if (auto st = SetupTls(*config); !st.ok()) {
    spdlog::critical("{}", protocol::MessageOf(st));
    return 1;
  }
  int n = config->workers > 0 ? config->workers
                              : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (const auto& shard : config->shards) {
    (void)shard;
    budgets_.push_back(std::make_unique<PoolBudget>(config->pool.size));
  }
  for (int i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>(*this, i, n, config));
  for (auto& w : workers_) {
    if (auto st = w->Listen(); !st.ok()) {
      spdlog::critical("{}", protocol::MessageOf(st));
      return 1;
    }
  }
  if (config->listen.metrics_port != 0) {
    auto exposer = StartMetrics(*this, config->listen.host, config->listen.metrics_port);
    if (!exposer.ok()) {
      spdlog::critical("{}", protocol::MessageOf(exposer.status()));
      return 1;
    }
    metrics_ = std::move(*exposer);
  }
  for (auto& w : workers_) w->Start();
  spdlog::info("pgring listening on {}:{} (admin port {}, metrics port {}), {} workers, {} shards, "
               "pool mode {}",
               config->listen.host, config->listen.port, config->listen.admin_port,
               config->listen.metrics_port, n, config->shards.size(),
               config->pool.mode == conf::PoolMode::kTransaction ? "transaction" : "session");

  asio::signal_set signals(signal_io_, SIGINT, SIGTERM, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        if (sig == SIGHUP) {
          if (auto st = Reload(); !st.ok()) spdlog::error("reload failed: {}", protocol::MessageOf(st));
          signals.async_wait(on_signal);
          return;
        }
        spdlog::info("received signal {}: shutting down", sig);
        Shutdown();
      };
  signals.async_wait(on_signal);
  std::thread signal_thread([this] { signal_io_.run(); });

  for (auto& w : workers_) w->Join();
  signal_io_.stop();
  signal_thread.join();
  metrics_.reset();
  spdlog::info("pgring stopped");
  return 0;
}

absl::Status Proxy::Reload() {
  auto current = config();
  auto loaded = conf::LoadFile(current->path);
  if (!loaded.ok()) {
    std::string msg;
    for (const auto& e : loaded.errors) msg += Cat("\n  ", conf::FormatError(e));
    return absl::InvalidArgumentError(
        Cat("configuration ", current->path, " has errors; keeping the running one:",
                     msg));
  }
  auto next = loaded.config;
  const auto& a = current->listen;
  const auto& b = next->listen;
  bool same_shards = current->shards.size() == next->shards.size();
  for (size_t i = 0; same_shards && i < next->shards.size(); ++i) {
    same_shards = current->shards[i].name == next->shards[i].name;
  }
  if (!same_shards) {
    return absl::FailedPreconditionError(
        "the list of shards changed; shards are added and removed with a restart (and, "
        "once available, with pgringctl shard add/remove); keeping the running configuration");
  }
  if (a.host != b.host || a.port != b.port || a.admin_port != b.admin_port ||
      a.metrics_port != b.metrics_port || current->workers != next->workers) {
    spdlog::warn("reload: listen addresses and workers change only on restart; the other "
                 "settings are applied now");
  }
  {
    std::lock_guard lock(config_mu_);
    config_ = next;
  }
  spdlog::set_level(spdlog::level::from_str(next->logging.level));
  for (auto& b : budgets_) b->SetMax(next->pool.size);
  for (auto& w : workers_) {
    asio::post(w->io(), [wp = w.get(), next] { wp->ApplyConfig(next); });
  }
  spdlog::info("configuration reloaded from {}", next->path);
  return absl::OkStatus();
}

void Proxy::HandOverIdle(size_t shard, int except) {
  Worker* to = nullptr;
  for (auto& w : workers_)
    if (w->index() == except) to = w.get();
  if (to == nullptr) return;
  for (auto& w : workers_) {
    if (w.get() == to) continue;
    asio::post(w->io(), [from = w.get(), to, shard] {
      if (shard >= from->pool_count()) return;
      std::unique_ptr<ServerConnection> conn = from->pool(shard).GiveIdle();
      if (!conn) return;
      auto released = conn->Release();
      if (!released) {
        // A TLS connection cannot change threads: it is closed, and its room under the
        // limit goes to the waiting worker.
        from->proxy().budget(shard).Return();
        to->proxy().NotifyCapacityFreed(shard);
        return;
      }
      asio::post(to->io(), [to, shard, r = *released, c = std::move(conn)]() mutable {
        c->Adopt(to->io(), r);
        if (shard < to->pool_count()) to->pool(shard).Adopt(std::move(c));
      });
    });
  }
}

void Proxy::NotifyCapacityFreed(size_t shard) {
  for (auto& w : workers_) {
    asio::post(w->io(), [wp = w.get(), shard] {
      if (shard < wp->pool_count()) wp->pool(shard).OnCapacityFreed();
    });
  }
}

void Proxy::Pause() {
  paused_.store(true, std::memory_order_release);
}

void Proxy::Resume() {
  paused_.store(false, std::memory_order_release);
  for (auto& w : workers_) asio::post(w->io(), [wp = w.get()] { wp->WakePaused(); });
}

void Proxy::Shutdown() {
  if (stopping_.exchange(true)) return;
  Resume();
  for (auto& w : workers_) w->Stop();
  // Clients get until the end of their transaction, bounded: then the workers stop.
  std::thread([this] {
    std::this_thread::sleep_for(std::chrono::seconds(30));
    spdlog::warn("shutdown: transactions still open after 30 s; closing them");
    for (auto& w : workers_) w->io().stop();
  }).detach();
}

bool Proxy::AdmitClient() {
  int max = config()->pool.max_clients;
  int now = clients_.fetch_add(1, std::memory_order_relaxed);
  if (now >= max) {
    clients_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void Proxy::ReleaseClient() { clients_.fetch_sub(1, std::memory_order_relaxed); }

awaitable<std::vector<WorkerSnapshot>> Proxy::SnapshotAsync(bool detailed) {
  std::vector<WorkerSnapshot> out;
  for (auto& w : workers_) {
    Worker* wp = w.get();
    auto snap = co_await asio::co_spawn(
        wp->io(), [wp, detailed]() -> awaitable<WorkerSnapshot> {
          co_return TakeSnapshot(*wp, detailed);
        },
        use_awaitable);
    out.push_back(std::move(snap));
  }
  co_return out;
}

std::vector<WorkerSnapshot> Proxy::Snapshot(bool detailed) {
  std::vector<std::future<WorkerSnapshot>> futures;
  for (auto& w : workers_) {
    std::promise<WorkerSnapshot> p;
    futures.push_back(p.get_future());
    asio::post(w->io(), [wp = w.get(), detailed, p = std::move(p)]() mutable {
      p.set_value(TakeSnapshot(*wp, detailed));
    });
  }
  std::vector<WorkerSnapshot> out;
  for (auto& f : futures) {
    if (f.wait_for(std::chrono::seconds(2)) == std::future_status::ready) out.push_back(f.get());
  }
  return out;
}

}  // namespace pgring::proxy
