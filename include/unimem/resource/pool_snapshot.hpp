#pragma once
// PoolSnapshot: what a pool holds at one moment, segment by segment and range by range, for the memory map of
// `unimem report` and for OOM post-mortems. A pool fills it under its own lock; a SizeClassPool's per-thread
// caches are read without one, so take its snapshot while no other thread uses the pool.
//
// to_json() writes the documented, versioned schema of docs/snapshot.md (kSnapshotSchemaVersion).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "unimem/backend/types.hpp"
#include "unimem/resource/memory_resource.hpp"

namespace unimem {

inline constexpr int kSnapshotSchemaVersion = 2;

struct RangeSnapshot {
  std::size_t offset = 0;  // from the segment's start
  std::size_t size = 0;    // the range as the pool holds it (after rounding)
  bool allocated = false;
  std::size_t requested = 0;  // allocated: the caller's bytes; 0 for a free range
  // Free: an id of the stream it was freed on, while other streams must still wait for that free; 0 when any
  // stream may use it. Allocated ranges carry 0: pools do not remember the allocating stream.
  std::uint64_t stream = 0;
  // Filled from a TrackingAdaptor (MemoryConfig.track_allocations): 0, empty and nullopt otherwise.
  std::uint64_t allocation_id = 0;
  std::string tag;
  std::optional<double> age_seconds;
};

struct SegmentSnapshot {
  std::uint64_t id = 0;    // the backend's segment id
  std::uint64_t base = 0;  // the segment's native handle as a number (an address, or a cl_mem)
  std::size_t size = 0;
  MemoryKind kind = MemoryKind::Host;
  std::string pool;                   // "coalescing" or "size_class": which pool holds it
  std::vector<RangeSnapshot> ranges;  // address order, covering the segment
};

struct PoolSnapshot {
  DeviceId device;
  MemoryKind kind = MemoryKind::Host;
  ResourceUsage usage;
  std::vector<SegmentSnapshot> segments;  // ordered by segment id
};

// The snapshot of the pool under `top`: `top` itself when it is a pool, else the first pool found going
// upstream through adaptors. Throws NotSupported naming the resource's device when there is no pool there.
[[nodiscard]] PoolSnapshot snapshot_of(const MemoryResource& top);

// The snapshot as a JSON object (docs/snapshot.md, "pool").
[[nodiscard]] std::string to_json(const PoolSnapshot& snapshot);

}  // namespace unimem
