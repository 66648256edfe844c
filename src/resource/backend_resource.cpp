#include "unimem/resource/backend_resource.hpp"

#include <string>

#include "resource/pool_support.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/core/size.hpp"

namespace unimem {

BackendResource::BackendResource(Backend& backend, int device, MemoryKind kind)
    : MemoryResource(backend, DeviceId{backend.kind(), device}, kind), device_index_(device) {
  const DeviceInfo info = backend.device_info(device);
  if (!info.capabilities.supports(kind)) {
    throw NotSupported("BackendResource: " + to_string(info.id) + " (" + info.name + ") does not serve " +
                       std::string(to_string(kind)) + " memory");
  }
}

BackendResource::~BackendResource() {
  const std::lock_guard lock(mutex_);
  if (!live_.empty()) {
    std::size_t bytes = 0;
    for (const auto& [id, live] : live_) bytes += live.segment.size;
    report_misuse("BackendResource on " + to_string(device()) + " destroyed with " +
                  std::to_string(live_.size()) + " live allocation(s) of " + std::to_string(bytes) +
                  " bytes; returning them to the backend");
    for (const auto& [id, live] : live_) {
      try {
        backend().deallocate(live.segment);
      } catch (const Error& e) {
        report_misuse(e.what());
      }
    }
  }
}

std::size_t BackendResource::live_allocations() const {
  const std::lock_guard lock(mutex_);
  return live_.size();
}

Allocation BackendResource::do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) {
  // Segments start kDefaultAlignment-aligned; a stricter alignment needs room to move the start forward.
  const std::size_t padding = detail::alignment_slack(alignment);
  const Segment segment = backend().allocate(device_index_, kind(), checked_add(bytes, padding), stream);
  const std::size_t offset = detail::alignment_padding(segment, 0, alignment);
  const std::lock_guard lock(mutex_);
  const auto [it, inserted] = live_.emplace(segment.id, Live{segment, offset, bytes});
  usage_.reserved_bytes += segment.size;
  usage_.in_use_bytes += segment.size;
  ++usage_.upstream_allocations;
  ++usage_.cache_misses;
  return Allocation{&it->second.segment, offset, bytes, segment.id};
}

bool BackendResource::do_deallocate(const Allocation& allocation, Stream* stream) noexcept {
  Segment segment;
  {
    const std::lock_guard lock(mutex_);
    const auto it = live_.find(allocation.cookie);
    if (it == live_.end() || &it->second.segment != allocation.segment) {
      report_misuse("BackendResource::deallocate on " + to_string(device()) + ": allocation of " +
                    std::to_string(allocation.size) + " bytes (segment #" +
                    std::to_string(allocation.cookie) +
                    ") is not live here: already freed, or allocated by another resource");
      return false;
    }
    if (it->second.offset != allocation.offset || it->second.size != allocation.size) {
      report_misuse("BackendResource::deallocate on " + to_string(device()) + ": allocation of " +
                    std::to_string(allocation.size) + " bytes at offset " +
                    std::to_string(allocation.offset) + " does not match segment #" +
                    std::to_string(allocation.cookie) + ", handed out as " + std::to_string(it->second.size) +
                    " bytes at offset " + std::to_string(it->second.offset) + "; not freed");
      return false;
    }
    segment = it->second.segment;
    live_.erase(it);
    usage_.reserved_bytes -= segment.size;
    usage_.in_use_bytes -= segment.size;
    ++usage_.upstream_deallocations;
  }
  try {
    backend().deallocate(segment, stream);
  } catch (const Error& e) {
    report_misuse(e.what());
  }
  return true;
}

ResourceUsage BackendResource::do_usage() const {
  const std::lock_guard lock(mutex_);
  ResourceUsage usage = usage_;
  usage.largest_free_range = 0;  // nothing is cached: every request goes to the backend
  return usage;
}

}  // namespace unimem
