#pragma once
// The JSON form of a PoolSnapshot (docs/snapshot.md), shared by to_json(PoolSnapshot) and the manager's
// snapshot, which nests one per stack.

#include <nlohmann/json.hpp>

#include "unimem/resource/memory_stats.hpp"
#include "unimem/resource/pool_snapshot.hpp"

namespace unimem::detail {

[[nodiscard]] nlohmann::json pool_snapshot_json(const PoolSnapshot& snapshot);
[[nodiscard]] nlohmann::json device_json(const DeviceId& device);
[[nodiscard]] nlohmann::json memory_stats_json(const MemoryStats& stats);

}  // namespace unimem::detail
