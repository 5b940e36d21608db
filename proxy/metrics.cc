#include "proxy/metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>

#include <map>

#include "proxy/str.h"
#include "proxy/proxy.h"
#include "proxy/worker.h"

namespace pgring::proxy {
namespace {

class ProxyCollector : public prometheus::Collectable {
 public:
  explicit ProxyCollector(Proxy& proxy) : proxy_(proxy) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    auto snaps = proxy_.Snapshot(false);
    std::vector<prometheus::MetricFamily> out;
    // Families are referred to by index: `out` grows while they are added.
    auto family = [&](std::string name, std::string help, prometheus::MetricType type) {
      out.push_back(prometheus::MetricFamily{std::move(name), std::move(help), type, {}});
      return out.size() - 1;
    };
    auto add = [&out](size_t index, double v,
                      std::vector<prometheus::ClientMetric::Label> labels = {}) {
      prometheus::MetricFamily* f = &out[index];
      prometheus::ClientMetric m;
      m.label = std::move(labels);
      if (f->type == prometheus::MetricType::Counter) {
        m.counter.value = v;
      } else {
        m.gauge.value = v;
      }
      f->metric.push_back(std::move(m));
    };
    uint64_t tx = 0, q = 0, rx = 0, txb = 0, err = 0, prep = 0, hits = 0, perr = 0, acc = 0,
             rej = 0, tx_us = 0, q_us = 0;
    int sessions = 0;
    for (const auto& s : snaps) {
      tx += s.transactions;
      q += s.queries;
      rx += s.bytes_received;
      txb += s.bytes_sent;
      err += s.errors;
      prep += s.prepares;
      hits += s.prepare_hits;
      perr += s.protocol_errors;
      acc += s.clients_accepted;
      rej += s.clients_rejected;
      tx_us += s.transaction_us;
      q_us += s.query_us;
      sessions += s.sessions;
    }
    using T = prometheus::MetricType;
    add(family("pgring_transactions_total", "Transactions completed", T::Counter), tx);
    add(family("pgring_queries_total", "Request cycles (Query or Sync) completed", T::Counter), q);
    add(family("pgring_client_bytes_received_total", "Bytes received from clients", T::Counter),
        rx);
    add(family("pgring_client_bytes_sent_total", "Bytes sent to clients", T::Counter), txb);
    add(family("pgring_errors_total", "ErrorResponses sent to clients", T::Counter), err);
    add(family("pgring_server_prepares_total", "Parse messages sent to servers", T::Counter), prep);
    add(family("pgring_prepare_cache_hits_total",
               "Client Parse messages answered from a server connection's statement cache",
               T::Counter),
        hits);
    add(family("pgring_protocol_errors_total", "Malformed client messages", T::Counter), perr);
    add(family("pgring_clients_accepted_total", "Client connections accepted", T::Counter), acc);
    add(family("pgring_clients_rejected_total", "Client connections refused by max_clients",
               T::Counter),
        rej);
    add(family("pgring_transaction_seconds_total", "Time clients held server connections",
               T::Counter),
        tx_us / 1e6);
    add(family("pgring_query_seconds_total", "Time from request to ReadyForQuery", T::Counter),
        q_us / 1e6);
    add(family("pgring_clients", "Logged-in client connections", T::Gauge), sessions);

    auto total = family("pgring_pool_server_connections", "Server connections by shard and state",
                         T::Gauge);
    auto waiting = family("pgring_pool_waiting_clients",
                           "Clients waiting for a server connection", T::Gauge);
    auto timeouts = family("pgring_pool_wait_timeouts_total",
                            "Clients refused after query_wait_timeout", T::Counter);
    auto connects = family("pgring_pool_connects_total", "Server connections opened", T::Counter);
    auto failures = family("pgring_pool_connect_failures_total",
                            "Server connection attempts that failed", T::Counter);
    std::map<std::string, PoolSnapshot> by_shard;
    for (const auto& s : snaps) {
      for (const auto& p : s.pools) {
        auto& agg = by_shard[p.shard];
        agg.active += p.active;
        agg.idle += p.idle;
        agg.waiting += p.waiting;
        agg.stats.wait_timeouts += p.stats.wait_timeouts;
        agg.stats.connects += p.stats.connects;
        agg.stats.connect_failures += p.stats.connect_failures;
      }
    }
    for (const auto& [shard, p] : by_shard) {
      add(total, p.active, {{"shard", shard}, {"state", "active"}});
      add(total, p.idle, {{"shard", shard}, {"state", "idle"}});
      add(waiting, p.waiting, {{"shard", shard}});
      add(timeouts, p.stats.wait_timeouts, {{"shard", shard}});
      add(connects, p.stats.connects, {{"shard", shard}});
      add(failures, p.stats.connect_failures, {{"shard", shard}});
    }
    return out;
  }

 private:
  Proxy& proxy_;
};

}  // namespace

MetricsServer::MetricsServer(std::shared_ptr<prometheus::Collectable> collector,
                             std::unique_ptr<prometheus::Exposer> exposer)
    : collector_(std::move(collector)), exposer_(std::move(exposer)) {}

MetricsServer::~MetricsServer() = default;

absl::StatusOr<std::unique_ptr<MetricsServer>> StartMetrics(Proxy& proxy, const std::string& host,
                                                            uint16_t port) {
  try {
    auto exposer = std::make_unique<prometheus::Exposer>(Cat(host, ":", port), 1);
    auto collector = std::make_shared<ProxyCollector>(proxy);
    exposer->RegisterCollectable(collector);
    return std::make_unique<MetricsServer>(std::move(collector), std::move(exposer));
  } catch (const std::exception& e) {
    return absl::UnavailableError(Cat("cannot serve metrics on ", host, ":", port, ": ",
                                               e.what(), " (set listen.metrics_port: 0 to "
                                               "disable metrics, or pick a free port)"));
  }
}

}  // namespace pgring::proxy
