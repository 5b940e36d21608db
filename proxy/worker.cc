#include "proxy/worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "proxy/str.h"
#include "protocol/messages.h"
#include "protocol/sql_error.h"
#include "proxy/admin_console.h"
#include "proxy/client_session.h"
#include "proxy/proxy.h"
#include "proxy/send_ring.h"
#include "spdlog/spdlog.h"

namespace pgring::proxy {
namespace {

absl::StatusOr<tcp::endpoint> Endpoint(const std::string& host, uint16_t port) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        Cat("listen.host \"", host, "\" is not an IP address: ", ec.message()));
  }
  return tcp::endpoint(addr, port);
}

// Opens `acc` with SO_REUSEADDR (and SO_REUSEPORT when asked) and binds it to `ep`.
boost::system::error_code OpenAndBind(tcp::acceptor& acc, const tcp::endpoint& ep,
                                      bool reuse_port) {
  boost::system::error_code ec;
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec && reuse_port) {
    int one = 1;
    if (::setsockopt(acc.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
      ec = boost::system::error_code(errno, boost::system::system_category());
    }
  }
  if (!ec) acc.bind(ep, ec);
  return ec;
}

absl::StatusOr<std::unique_ptr<tcp::acceptor>> Bind(asio::io_context& io, const std::string& host,
                                                    uint16_t port, bool reuse_port) {
  auto ep = Endpoint(host, port);
  if (!ep.ok()) return ep.status();
  auto acc = std::make_unique<tcp::acceptor>(io);
  auto ec = OpenAndBind(*acc, *ep, reuse_port);
  if (!ec) acc->listen(4096, ec);
  if (!ec) {
    // A PostgreSQL client speaks first: with TCP_DEFER_ACCEPT the kernel hands a connection
    // over once its first packet (startup or SSLRequest) is there, so the session reads it
    // at once instead of going back to epoll for it. A client that sends nothing is handed
    // over after one SYN-ACK retransmission (about a second); pool.startup_timeout applies
    // from then. Best effort: without it only that wait is lost.
    int secs = 1;
    ::setsockopt(acc->native_handle(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof(secs));
  }
  if (ec) {
    return absl::UnavailableError(Cat("cannot listen on ", host, ":", port, ": ",
                                               ec.message(),
                                               " (is another process using the port?)"));
  }
  return acc;
}

// The client port is bound with SO_REUSEPORT so that every worker has its own listener.
// The kernel would let another process of the same user join that group just as well, and
// then share the connections: a probe bound without SO_REUSEPORT (and never listening)
// finds any listener already there; SO_REUSEADDR still lets it pass connections in
// TIME_WAIT.
absl::Status CheckNotListened(asio::io_context& io, const std::string& host, uint16_t port) {
  auto ep = Endpoint(host, port);
  if (!ep.ok()) return ep.status();
  tcp::acceptor probe(io);
  if (OpenAndBind(probe, *ep, false) == asio::error::address_in_use) {
    return absl::UnavailableError(
        Cat("cannot listen on ", host, ":", port, ": another process already listens on it "
            "(another pgring instance?); stop it or set listen.port to a free port"));
  }
  return absl::OkStatus();  // other failures show when the listener is bound
}

ServerPool::Options PoolOptions(const conf::Config& config, const conf::ShardConfig& shard,
                                int workers) {
  ServerPool::Options o;
  o.shard_name = shard.name;
  o.endpoint = shard.primary;
  // pool.size is for the whole process: the workers' pools share it through PoolBudget.
  o.max_size = config.pool.size;
  o.wait_timeout = config.pool.query_wait_timeout;
  o.connect_timeout = config.pool.server_connect_timeout;
  o.idle_timeout = config.pool.server_idle_timeout;
  o.lifetime = config.pool.server_lifetime;
  o.min_idle = std::min(o.max_size, (config.pool.min_idle + workers - 1) / workers);
  return o;
}

}  // namespace

Worker::Worker(Proxy& proxy, int index, int worker_count,
               std::shared_ptr<const conf::Config> config)
    : proxy_(proxy), index_(index), worker_count_(worker_count), config_(std::move(config)) {
  verifiers_ = BuildVerifiers(*config_);
  BuildTopology();
  BuildPools();
  if (config_->io_uring) StartSendRing();
}

void Worker::StartSendRing() {
  try {
    asio::make_service<SendRing>(io_);
  } catch (const boost::system::system_error& e) {
    if (index_ == 0) {
      spdlog::warn("io_uring is not available ({}): sockets send with one system call per "
                   "write; set io_uring: false to silence this",
                   e.code().message());
    }
  }
}

Worker::~Worker() { Join(); }

void Worker::BuildTopology() {
  const auto version = topology_ ? topology_->ring->version().Next() : sharding::RingVersion(1);
  auto topology = Topology::Build(config_, version);
  if (!topology.ok()) {
    // The loader validated shards and vnodes, so this is a bug; keep the old ring.
    spdlog::error("cannot build the ring: {}", protocol::MessageOf(topology.status()));
    return;
  }
  topology_ = std::move(*topology);
}

void Worker::BuildPools() {
  default_shard_ = 0;
  for (size_t i = 0; i < config_->shards.size(); ++i) {
    const auto& shard = config_->shards[i];
    if (shard.name == config_->default_shard) default_shard_ = i;
    auto opts = PoolOptions(*config_, shard, worker_count_);
    if (i < pools_.size()) {
      pools_[i]->Reconfigure(std::move(opts));
    } else {
      ServerPool::Hooks hooks;
      hooks.exhausted = [this, i] { proxy_.HandOverIdle(i, index_); };
      hooks.capacity_freed = [this, i] { proxy_.NotifyCapacityFreed(i); };
      pools_.push_back(std::make_unique<ServerPool>(io_.get_executor(), std::move(opts),
                                                    proxy_.budget(i), std::move(hooks)));
    }
  }
}

absl::Status Worker::Listen() {
  // The admin port first, then a check that no other process listens on the client port:
  // a second pgring stops here, before its client listener (which would join the first
  // one's SO_REUSEPORT group) has taken connections it would then drop or keep.
  if (index_ == 0) {
    auto admin = Bind(io_, config_->listen.host, config_->listen.admin_port, false);
    if (!admin.ok()) return admin.status();
    admin_acceptor_ = std::move(*admin);
    if (auto st = CheckNotListened(io_, config_->listen.host, config_->listen.port); !st.ok()) {
      return st;
    }
  }
  auto client = Bind(io_, config_->listen.host, config_->listen.port, true);
  if (!client.ok()) return client.status();
  client_acceptor_ = std::move(*client);
  return absl::OkStatus();
}

void Worker::Start() {
  work_.emplace(io_.get_executor());
  asio::co_spawn(io_, AcceptLoop(*client_acceptor_, false), LogEnd("accept loop"));
  if (admin_acceptor_) asio::co_spawn(io_, AcceptLoop(*admin_acceptor_, true), LogEnd("accept loop"));
  asio::co_spawn(io_, Maintenance(), LogEnd("maintenance loop"));
  thread_ = std::thread([this] {
    for (;;) {
      try {
        io_.run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("worker {}: unexpected exception: {}", index_, e.what());
      }
    }
  });
}

void Worker::Stop() {
  asio::post(io_, [this] {
    boost::system::error_code ignored;
    if (client_acceptor_) client_acceptor_->close(ignored);
    if (admin_acceptor_) admin_acceptor_->close(ignored);
    CloseSessions();
    work_.reset();
  });
}

void Worker::Join() {
  if (thread_.joinable()) thread_.join();
}

awaitable<void> Worker::AcceptLoop(tcp::acceptor& acceptor, bool admin) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(io_.get_executor(), use_nothrow);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      spdlog::warn("accept failed: {}", ec.message());
      // EMFILE and friends: back off briefly instead of spinning.
      asio::steady_timer t(io_, std::chrono::milliseconds(50));
      co_await t.async_wait(use_nothrow);
      continue;
    }
    counters_.Add(counters_.clients_accepted);
    if (admin) {
      auto session = std::make_shared<AdminSession>(*this, std::move(socket));
      asio::co_spawn(io_, session->Run(), [session](std::exception_ptr e) {
        if (e) spdlog::error("admin session ended with an exception");
      });
      continue;
    }
    if (!proxy_.AdmitClient()) {
      counters_.Add(counters_.clients_rejected);
      asio::co_spawn(
          io_,
          [s = std::make_shared<Stream>(std::move(socket)), max = config_->pool.max_clients]()
              -> awaitable<void> {
            // Read the startup packet first so the client sees the error, not a reset.
            protocol::Buffer in;
            co_await s->ReadSome(in, 512);
            co_await SendFatal(*s, "53300",
                               Cat("sorry, too many clients already (pool.max_clients = ",
                                            max, ")"),
                               "raise pool.max_clients or add pgring instances");
            s->Close();
          },
          asio::detached);
      continue;
    }
    auto session = std::make_shared<ClientSession>(*this, std::move(socket));
    // The session gives its admission back when it is destroyed (it may outlive Run:
    // a parked session's socket wait holds it).
    asio::co_spawn(io_, session->Run(), LogEnd("client session", session));
  }
}

void Worker::LearnServerParameters(const std::vector<std::pair<std::string, std::string>>& p) {
  if (!server_parameters_.empty()) return;
  server_parameters_ = p;
  for (const auto& [name, value] : p) {
    protocol::WriteParameterStatus(server_status_, name, value);
    server_status_ends_.push_back(server_status_.size());
  }
}

void Worker::WriteServerParameters(const StartupSettingsCache::Params& client,
                                   protocol::Buffer& out) const {
  const auto all = server_status_.Readable();
  size_t copied = 0;  // server_status_ up to here is in `out` (or replaced)
  for (size_t i = 0; i < server_parameters_.size(); ++i) {
    const auto& name = server_parameters_[i].first;
    const std::string* own = nullptr;  // the client's last value for it
    for (const auto& [k, v] : client)
      if (k == name) own = &v;
    if (own == nullptr) continue;
    const size_t begin = i == 0 ? 0 : server_status_ends_[i - 1];
    out.Append(all.subspan(copied, begin - copied));
    protocol::WriteParameterStatus(out, name, *own);
    copied = server_status_ends_[i];
  }
  out.Append(all.subspan(copied));
}

std::list<ClientSession*>::iterator Worker::WatchStartup(ClientSession* s) {
  auto it = startups_.insert(startups_.end(), s);
  if (s->startup_deadline() < startup_timer_at_) ArmStartupTimer(s->startup_deadline());
  return it;
}

void Worker::ArmStartupTimer(Clock::time_point at) {
  // A timer that is set already is moved (its wait ends with operation_aborted), which
  // only happens when a reload shortened pool.startup_timeout.
  startup_timer_at_ = at;
  startup_timer_.expires_at(at);
  startup_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    startup_timer_at_ = Clock::time_point::max();
    CheckStartups();
  });
}

void Worker::CheckStartups() {
  const auto now = Clock::now();
  auto next = Clock::time_point::max();
  for (auto* s : startups_) {
    auto deadline = s->startup_deadline();
    if (s->startup_expired() || deadline <= now) {
      // Again every 100 ms until the handshake ends: the cancel finds nothing to cancel
      // when the handshake is between two waits.
      s->ExpireStartup();
      deadline = now + std::chrono::milliseconds(100);
    }
    next = std::min(next, deadline);
  }
  if (next != Clock::time_point::max()) ArmStartupTimer(next);
}

awaitable<void> Worker::Maintenance() {
  asio::steady_timer timer(io_);
  for (;;) {
    timer.expires_after(std::chrono::seconds(1));
    co_await timer.async_wait(use_nothrow);
    if (!work_) co_return;
    const auto now = Clock::now();
    for (auto* s : sessions_) s->ParkIfIdle(now);
    for (auto& p : pools_) {
      p->Prune();
      if (p->idle() < p->options().min_idle) co_await p->Prewarm();
    }
  }
}

void Worker::ApplyConfig(std::shared_ptr<const conf::Config> config) {
  config_ = std::move(config);
  verifiers_ = BuildVerifiers(*config_);
  BuildTopology();
  BuildPools();
}

awaitable<void> Worker::WaitWhilePaused() {
  while (proxy_.paused()) {
    asio::steady_timer wake(io_, Clock::time_point::max());
    auto it = paused_waiters_.insert(paused_waiters_.end(), &wake);
    co_await wake.async_wait(use_nothrow);
    paused_waiters_.erase(it);
  }
}

void Worker::WakePaused() {
  for (auto* t : paused_waiters_) t->cancel();
}

void Worker::CloseSessions() {
  for (auto* s : sessions_) s->RequestClose();
}

int Worker::ActiveSessions() const {
  int n = 0;
  for (auto* s : sessions_) n += s->holds_server() ? 1 : 0;
  return n;
}

}  // namespace pgring::proxy
