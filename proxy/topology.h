// What the proxy routes by: the configuration, the ring built from it and the table map,
// as one immutable snapshot. A reload (or, later, a new ring version from the catalog)
// builds a new Topology and swaps the pointer; sessions keep the snapshot they started a
// statement with.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "conf/config.h"
#include "sharding/ring.h"
#include "sharding/table_map.h"

namespace pgring::proxy {

struct Topology {
  std::shared_ptr<const conf::Config> config;
  // ShardId(i) is config->shards[i], which is also the index of the workers' pools.
  std::shared_ptr<const sharding::Ring> ring;
  sharding::TableMap tables;

  // Builds the ring (config.ring.vnodes per shard, in configuration order) and the
  // table map of `config`.
  static absl::StatusOr<std::shared_ptr<const Topology>> Build(
      std::shared_ptr<const conf::Config> config, sharding::RingVersion version);
};

}  // namespace pgring::proxy
