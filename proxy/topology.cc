#include "proxy/topology.h"

namespace pgring::proxy {

absl::StatusOr<std::shared_ptr<const Topology>> Topology::Build(
    std::shared_ptr<const conf::Config> config, sharding::RingVersion version) {
  std::vector<std::string> names;
  names.reserve(config->shards.size());
  for (const auto& s : config->shards) names.push_back(s.name);
  auto ring = sharding::Ring::Build(version, std::move(names), config->ring.vnodes);
  if (!ring.ok()) return ring.status();
  auto topology = std::make_shared<Topology>();
  topology->tables = sharding::TableMap(*config);
  topology->ring = std::move(*ring);
  topology->config = std::move(config);
  return std::shared_ptr<const Topology>(std::move(topology));
}

}  // namespace pgring::proxy
