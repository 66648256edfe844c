#include "unimem/resource/pool_snapshot.hpp"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "resource/snapshot_json.hpp"
#include "unimem/core/error.hpp"
#include "unimem/resource/coalescing_pool.hpp"
#include "unimem/resource/hybrid_pool.hpp"
#include "unimem/resource/resource_adaptor.hpp"
#include "unimem/resource/size_class_pool.hpp"
#include "unimem/resource/tracking_adaptor.hpp"

namespace unimem {

namespace {

// Tracked allocations are known by address; a range holds the one whose address falls inside it (a range
// may start before its allocation, by alignment padding).
void add_tracking(PoolSnapshot& snapshot, const TrackingAdaptor& tracking) {
  std::vector<TrackedAllocation> live = tracking.live_allocations();
  std::sort(live.begin(), live.end(),
            [](const TrackedAllocation& a, const TrackedAllocation& b) { return a.address < b.address; });
  const auto now = std::chrono::steady_clock::now();
  for (SegmentSnapshot& segment : snapshot.segments) {
    for (RangeSnapshot& range : segment.ranges) {
      if (!range.allocated) continue;
      const std::uintptr_t start = segment.base + range.offset;
      const auto it = std::lower_bound(
          live.begin(), live.end(), start,
          [](const TrackedAllocation& a, auto x) { return reinterpret_cast<std::uintptr_t>(a.address) < x; });
      if (it == live.end() || reinterpret_cast<std::uintptr_t>(it->address) >= start + range.size) continue;
      range.allocation_id = it->id;
      range.tag = it->tag;
      range.age_seconds = std::chrono::duration<double>(now - it->allocated_at).count();
    }
  }
}

}  // namespace

PoolSnapshot snapshot_of(const MemoryResource& top) {
  const TrackingAdaptor* tracking = nullptr;
  const MemoryResource* at = &top;
  while (true) {
    PoolSnapshot snapshot;
    if (const auto* hybrid = dynamic_cast<const HybridPool*>(at)) {
      snapshot = hybrid->snapshot();
    } else if (const auto* coalescing = dynamic_cast<const CoalescingPool*>(at)) {
      snapshot = coalescing->snapshot();
    } else if (const auto* size_class = dynamic_cast<const SizeClassPool*>(at)) {
      snapshot = size_class->snapshot();
    } else if (const auto* adaptor = dynamic_cast<const ResourceAdaptor*>(at)) {
      if (tracking == nullptr) tracking = dynamic_cast<const TrackingAdaptor*>(at);
      at = &adaptor->upstream();
      continue;
    } else {
      throw NotSupported("snapshot_of: the resource on " + to_string(top.device()) + " (" +
                         std::string(to_string(top.kind())) + " memory) has no pool under it to snapshot");
    }
    if (tracking != nullptr) add_tracking(snapshot, *tracking);
    return snapshot;
  }
}

std::string to_json(const PoolSnapshot& snapshot) {
  return detail::pool_snapshot_json(snapshot).dump();
}

namespace detail {

nlohmann::json device_json(const DeviceId& device) {
  return {{"name", to_string(device)}, {"backend", to_string(device.backend)}, {"index", device.index}};
}

nlohmann::json pool_snapshot_json(const PoolSnapshot& snapshot) {
  const ResourceUsage& u = snapshot.usage;
  nlohmann::json segments = nlohmann::json::array();
  for (const SegmentSnapshot& segment : snapshot.segments) {
    nlohmann::json ranges = nlohmann::json::array();
    for (const RangeSnapshot& r : segment.ranges) {
      nlohmann::json range = {{"offset", r.offset},
                              {"size", r.size},
                              {"allocated", r.allocated},
                              {"requested", r.requested},
                              {"stream", r.stream},
                              {"allocation_id", r.allocation_id},
                              {"tag", r.tag}};
      range["age_seconds"] = r.age_seconds ? nlohmann::json(*r.age_seconds) : nlohmann::json(nullptr);
      ranges.push_back(std::move(range));
    }
    segments.push_back({{"id", segment.id},
                        {"base", segment.base},
                        {"size", segment.size},
                        {"kind", to_string(segment.kind)},
                        {"pool", segment.pool},
                        {"ranges", std::move(ranges)}});
  }
  return {{"device", device_json(snapshot.device)},
          {"kind", to_string(snapshot.kind)},
          {"usage",
           {{"reserved_bytes", u.reserved_bytes},
            {"in_use_bytes", u.in_use_bytes},
            {"free_bytes", u.free_bytes()},
            {"largest_free_range", u.largest_free_range},
            {"fragmentation", u.fragmentation()},
            {"upstream_allocations", u.upstream_allocations},
            {"upstream_deallocations", u.upstream_deallocations},
            {"map_calls", u.map_calls},
            {"unmap_calls", u.unmap_calls},
            {"cache_hits", u.cache_hits},
            {"cache_misses", u.cache_misses}}},
          {"segments", std::move(segments)}};
}

}  // namespace detail

}  // namespace unimem
