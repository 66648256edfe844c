#include "unimem/backend/backend.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem {

namespace {
std::string describe(const Segment& s) {
  return "segment #" + std::to_string(s.id) + " (" + std::string(to_string(s.kind)) + ", " +
         std::to_string(s.size) + " bytes, " + to_string(s.device) + ")";
}

// Range checks run on every copy and memset: compare first, build the message only when the range is bad.
void check_segment_range(const Backend& backend, std::string_view what, const Segment& s, std::size_t offset,
                         std::size_t bytes) {
  std::size_t end = 0;
  if (!__builtin_add_overflow(offset, bytes, &end) && end <= s.size) [[likely]] {
    return;
  }
  check_range(std::string(backend.name()) + "::" + std::string(what) + " " + describe(s), offset, bytes,
              s.size);
}
}  // namespace

void Backend::check_device(int device, std::string_view operation) const {
  const int count = device_count();
  if (device < 0 || device >= count) {
    throw InvalidArgument(std::string(name()) + "::" + std::string(operation) + ": device index " +
                          std::to_string(device) + " is out of range (this backend has " +
                          std::to_string(count) + (count == 1 ? " device)" : " devices)"));
  }
}

void Backend::check_stream(const Stream* stream, std::string_view operation) const {
  if (stream != nullptr && &stream->backend() != this) {
    throw InvalidArgument(std::string(name()) + "::" + std::string(operation) + ": the stream of " +
                          to_string(stream->device()) + " belongs to another backend");
  }
}

DeviceInfo Backend::device_info(int device) const {
  check_device(device, "device_info");
  return do_device_info(device);
}

MemoryInfo Backend::memory_info(int device) const {
  check_device(device, "memory_info");
  return do_memory_info(device);
}

bool Backend::supports(int device, MemoryKind kind) const {
  return device_info(device).capabilities.supports(kind);
}

Backend::AllocationLimits Backend::allocation_limits(int device) {
  {
    const std::lock_guard lock(registry_mutex_);
    if (limits_.size() > static_cast<std::size_t>(device) &&
        limits_[static_cast<std::size_t>(device)].known) {
      return limits_[static_cast<std::size_t>(device)];
    }
  }
  const DeviceInfo info = do_device_info(device);  // outside the lock: it may be a slow native query
  const std::lock_guard lock(registry_mutex_);
  if (limits_.size() <= static_cast<std::size_t>(device))
    limits_.resize(static_cast<std::size_t>(device) + 1);
  limits_[static_cast<std::size_t>(device)] =
      AllocationLimits{true, info.capabilities, info.max_allocation_bytes};
  return limits_[static_cast<std::size_t>(device)];
}

Segment Backend::allocate(int device, MemoryKind kind, std::size_t bytes, Stream* stream) {
  check_device(device, "allocate");
  check_stream(stream, "allocate");
  if (stream != nullptr && stream->device().index != device) {
    throw InvalidArgument(std::string(name()) + "::allocate: stream of " + to_string(stream->device()) +
                          " cannot order an allocation on device " + std::to_string(device));
  }
  if (bytes == 0) {
    throw InvalidArgument(std::string(name()) + "::allocate: zero bytes requested on " +
                          to_string(DeviceId{kind_, device}));
  }
  const AllocationLimits limits = allocation_limits(device);
  if (!limits.capabilities.supports(kind)) {
    const DeviceInfo info = do_device_info(device);
    throw NotSupported(std::string(name()) + "::allocate: " + to_string(info.id) + " (" + info.name +
                       ") does not serve " + std::string(to_string(kind)) + " memory");
  }
  if (bytes > limits.max_allocation_bytes) {
    const MemoryInfo memory = do_memory_info(device);
    throw OutOfMemory(bytes, to_string(DeviceId{kind_, device}), memory.free_bytes, memory.total_bytes,
                      "larger than the device's largest single allocation of " +
                          std::to_string(limits.max_allocation_bytes) + " bytes");
  }
  const NativeAllocation native = do_allocate(device, kind, bytes, stream);
  Segment s;
  s.device = DeviceId{kind_, device};
  s.kind = kind;
  s.size = bytes;
  s.native = native.native;
  s.host_ptr = native.host_ptr;
  s.native_is_address = native.native_is_address;
  s.owner = this;
  const std::lock_guard lock(registry_mutex_);
  s.id = next_id_++;
  live_.emplace(s.id, LiveRecord{s.native, s.size, s.device, s.kind});
  return s;
}

void Backend::deallocate(const Segment& segment, Stream* stream) {
  check_stream(stream, "deallocate");
  if (segment.owner != this) {
    throw InvalidArgument(std::string(name()) + "::deallocate: " + describe(segment) +
                          (segment.owner == nullptr ? " is a host view or empty, not an allocation"
                                                    : " was allocated by another backend"));
  }
  {
    const std::lock_guard lock(registry_mutex_);
    const auto it = live_.find(segment.id);
    if (it == live_.end()) {
      throw InvalidArgument(std::string(name()) + "::deallocate: " + describe(segment) +
                            " is not live (already freed, or never allocated here)");
    }
    const LiveRecord& r = it->second;
    if (r.native != segment.native || r.size != segment.size || r.device != segment.device ||
        r.kind != segment.kind) {
      throw InvalidArgument(std::string(name()) + "::deallocate: " + describe(segment) +
                            " does not match the live segment with that id");
    }
    live_.erase(it);
  }
  do_deallocate(segment, stream);
}

bool Backend::owns(const Segment& segment) const {
  if (segment.owner != this) return false;
  const std::lock_guard lock(registry_mutex_);
  const auto it = live_.find(segment.id);
  return it != live_.end() && it->second.native == segment.native && it->second.size == segment.size &&
         it->second.device == segment.device && it->second.kind == segment.kind;
}

bool Backend::check_copy_operand(const Segment& segment, std::string_view role) const {
  if (segment.owner == this) {
    if (!owns(segment)) {
      throw InvalidArgument(std::string(name()) + ": " + std::string(role) + " " + describe(segment) +
                            " is not live (already freed?)");
    }
    return true;
  }
  if (segment.host_ptr == nullptr) {
    throw InvalidArgument(
        std::string(name()) + ": " + std::string(role) + " " + describe(segment) +
        (segment.owner == nullptr ? " is empty" : " belongs to another backend and is not host-visible"));
  }
  return false;
}

void Backend::memset(const Segment& dst, std::size_t offset, std::uint8_t value, std::size_t bytes,
                     Stream* stream) {
  check_stream(stream, "memset");
  const bool own = check_copy_operand(dst, "memset destination");
  if (stream != nullptr && own && stream->device() != dst.device) {
    throw InvalidArgument(std::string(name()) + "::memset: stream of " + to_string(stream->device()) +
                          " cannot order a memset of memory on " + to_string(dst.device));
  }
  check_segment_range(*this, "memset on", dst, offset, bytes);
  if (bytes == 0) return;
  do_memset(dst, offset, value, bytes, stream);
}

void Backend::copy(const Segment& dst, std::size_t dst_offset, const Segment& src, std::size_t src_offset,
                   std::size_t bytes, Stream* stream) {
  check_stream(stream, "copy");
  const bool own_dst = check_copy_operand(dst, "copy destination");
  const bool own_src = check_copy_operand(src, "copy source");
  check_segment_range(*this, "copy destination", dst, dst_offset, bytes);
  check_segment_range(*this, "copy source", src, src_offset, bytes);
  if (stream != nullptr) {
    const bool on_involved_device = (own_dst && dst.device == stream->device()) ||
                                    (own_src && src.device == stream->device()) || (!own_dst && !own_src);
    if (!on_involved_device) {
      throw InvalidArgument(std::string(name()) + "::copy: stream of " + to_string(stream->device()) +
                            " is on neither the source's nor the destination's device");
    }
  }
  if (bytes == 0) return;
  do_copy(dst, dst_offset, src, src_offset, bytes, stream);
}

void Backend::prefetch(const Segment& segment, std::size_t offset, std::size_t bytes, PrefetchTarget target,
                       Stream* stream) {
  check_stream(stream, "prefetch");
  if (!owns(segment)) {
    throw InvalidArgument(std::string(name()) + "::prefetch: " + describe(segment) +
                          " is not a live segment of this backend");
  }
  check_segment_range(*this, "prefetch on", segment, offset, bytes);
  if (stream != nullptr && stream->device() != segment.device) {
    throw InvalidArgument(std::string(name()) + "::prefetch: stream of " + to_string(stream->device()) +
                          " cannot order a prefetch of memory on " + to_string(segment.device));
  }
  if (bytes == 0) return;
  do_prefetch(segment, offset, bytes, target, stream);
}

std::unique_ptr<Stream> Backend::create_stream(int device) {
  check_device(device, "create_stream");
  return do_create_stream(device);
}

std::unique_ptr<Stream> Backend::wrap_native_stream(int device, void* native) {
  check_device(device, "wrap_native_stream");
  return do_wrap_native_stream(device, native);
}

std::unique_ptr<Stream> Backend::do_wrap_native_stream(int /*device*/, void* /*native*/) {
  throw NotSupported(std::string(name()) +
                     "::wrap_native_stream: this backend cannot order work on a queue " +
                     "it did not create");
}

std::unique_ptr<Event> Backend::create_event(int device) {
  check_device(device, "create_event");
  return do_create_event(device);
}

void Backend::check_peer_pair(int device, int peer, std::string_view operation, bool must_be_peers) const {
  check_device(device, operation);
  check_device(peer, operation);
  if (device == peer) {
    throw InvalidArgument(std::string(name()) + "::" + std::string(operation) + ": device " +
                          std::to_string(device) + " cannot be its own peer");
  }
  if (!must_be_peers) return;
  const std::vector<int> peers = do_device_info(device).peers;
  if (std::find(peers.begin(), peers.end(), peer) == peers.end()) {
    throw NotSupported(std::string(name()) + "::" + std::string(operation) + ": " +
                       to_string(DeviceId{kind_, device}) + " has no peer access to " +
                       to_string(DeviceId{kind_, peer}) + " (not among its peers)");
  }
}

void Backend::do_enable_peer_access(int device, int peer) {
  throw NotSupported(std::string(name()) + ": peer access from " + to_string(DeviceId{kind_, device}) +
                     " to " + to_string(DeviceId{kind_, peer}) + " is not implemented by this backend");
}

void Backend::do_disable_peer_access(int device, int peer) {
  throw NotSupported(std::string(name()) + ": peer access from " + to_string(DeviceId{kind_, device}) +
                     " to " + to_string(DeviceId{kind_, peer}) + " is not implemented by this backend");
}

void Backend::enable_peer_access(int device, int peer) {
  check_peer_pair(device, peer, "enable_peer_access", true);
  const std::lock_guard lock(peer_mutex_);
  const std::pair pair{device, peer};
  if (std::find(enabled_peers_.begin(), enabled_peers_.end(), pair) != enabled_peers_.end()) return;
  enabled_peers_.reserve(enabled_peers_.size() +
                         1);  // so that the push below cannot fail after the driver call
  do_enable_peer_access(device, peer);
  enabled_peers_.push_back(pair);
}

void Backend::disable_peer_access(int device, int peer) {
  check_peer_pair(device, peer, "disable_peer_access", true);
  const std::lock_guard lock(peer_mutex_);
  const auto it = std::find(enabled_peers_.begin(), enabled_peers_.end(), std::pair{device, peer});
  if (it == enabled_peers_.end()) return;
  do_disable_peer_access(device, peer);
  enabled_peers_.erase(it);
}

bool Backend::peer_access_enabled(int device, int peer) const {
  check_peer_pair(device, peer, "peer_access_enabled", false);
  const std::lock_guard lock(peer_mutex_);
  return std::find(enabled_peers_.begin(), enabled_peers_.end(), std::pair{device, peer}) !=
         enabled_peers_.end();
}

std::size_t Backend::live_segment_count() const {
  const std::lock_guard lock(registry_mutex_);
  return live_.size();
}

std::size_t Backend::live_bytes(int device) const {
  check_device(device, "live_bytes");
  return sum_live_bytes(device, true);
}

std::size_t Backend::live_device_bytes(int device) const {
  return sum_live_bytes(device, false);
}

std::size_t Backend::sum_live_bytes(int device, bool include_host_kind) const {
  const std::lock_guard lock(registry_mutex_);
  std::size_t total = 0;
  for (const auto& [id, r] : live_) {
    if (r.device.index == device && (include_host_kind || r.kind != MemoryKind::Host)) total += r.size;
  }
  return total;
}

}  // namespace unimem
