#pragma once
// MemorySnapshot: every pooled stack of a MemoryManager at one moment (MemoryManager::snapshot()): per device
// and stack, the pool's segments and ranges (PoolSnapshot), the stack's statistics, its limit and the
// pressure level; and, for a snapshot written at an OutOfMemory, the request that failed. to_json() writes
// the versioned schema of docs/snapshot.md; write_snapshot() writes it to a file atomically.

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "unimem/resource/memory_stats.hpp"
#include "unimem/resource/pool_snapshot.hpp"
#include "unimem/resource/pressure_adaptor.hpp"

namespace unimem {

struct StackSnapshot {
  std::string name;             // "pooled" or "pinned"
  std::size_t limit_bytes = 0;  // the device's limit for the pooled stack; 0 for the pinned one
  PressureLevel pressure = PressureLevel::Low;
  MemoryStats stats;
  PoolSnapshot pool;
};

struct FailedRequest {
  std::size_t bytes = 0;
  DeviceId device;
  std::string stack;    // the stack that failed: "pooled" or "pinned"
  std::string message;  // the OutOfMemory's message
};

struct MemorySnapshot {
  std::vector<StackSnapshot> stacks;  // the host's first, then the other devices in the manager's order
  std::optional<FailedRequest> failed_request;
};

// The snapshot as a JSON document (docs/snapshot.md), with schema_version kSnapshotSchemaVersion.
[[nodiscard]] std::string to_json(const MemorySnapshot& snapshot);

// Writes to_json(snapshot) to `path` through a temporary file beside it renamed into place, so that the file
// is whole or absent. Throws InvalidArgument naming the path when it cannot be written.
void write_snapshot(const MemorySnapshot& snapshot, const std::filesystem::path& path);

}  // namespace unimem
