// Prometheus metrics over HTTP at /metrics (prometheus-cpp's pull exposer). Values are
// gathered from every worker at scrape time, on the workers' own threads.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace prometheus {
class Collectable;
class Exposer;
}

namespace pgring::proxy {

class Proxy;

// Serves /metrics while it exists.
class MetricsServer {
 public:
  MetricsServer(std::shared_ptr<prometheus::Collectable> collector,
                std::unique_ptr<prometheus::Exposer> exposer);
  ~MetricsServer();

 private:
  std::shared_ptr<prometheus::Collectable> collector_;  // the exposer holds it weakly
  std::unique_ptr<prometheus::Exposer> exposer_;
};

absl::StatusOr<std::unique_ptr<MetricsServer>> StartMetrics(Proxy& proxy, const std::string& host,
                                                            uint16_t port);

}  // namespace pgring::proxy
