#include "unimem/backend/backend.hpp"

#include <algorithm>
#include <iterator>
#include <new>
#include <string>
#include <vector>

#include "unimem/backend/host_backend.hpp"
#include "unimem/core/alignment.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"
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
      AllocationLimits{true, info.capabilities, info.max_allocation_bytes, info.virtual_memory_granule};
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
  live_.emplace(s.id, LiveRecord{s.native, s.size, s.device, s.kind, nullptr});
  return s;
}

void Backend::deallocate(const Segment& segment, Stream* stream) {
  check_stream(stream, "deallocate");
  if (segment.owner != this) {
    throw InvalidArgument(std::string(name()) + "::deallocate: " + describe(segment) +
                          (segment.owner == nullptr ? " is a host view or empty, not an allocation"
                                                    : " was allocated by another backend"));
  }
  std::unique_ptr<Reservation> reservation;
  {
    const std::lock_guard lock(registry_mutex_);
    const auto it = live_.find(segment.id);
    if (it == live_.end()) {
      throw InvalidArgument(std::string(name()) + "::deallocate: " + describe(segment) +
                            " is not live (already freed, or never allocated here)");
    }
    if (!it->second.matches(segment)) {
      throw InvalidArgument(std::string(name()) + "::deallocate: " + describe(segment) +
                            " does not match the live segment with that id");
    }
    reservation = std::move(it->second.reservation);
    live_.erase(it);
  }
  if (!reservation) {
    do_deallocate(segment, stream);
    return;
  }
  release_reservation(segment, *reservation);
}

std::size_t Backend::Reservation::first_differing(std::size_t offset, std::size_t end,
                                                  bool want_mapped) const {
  auto it = runs.upper_bound(offset);
  const bool inside = it != runs.begin() && std::prev(it)->second > offset;
  if (want_mapped) return inside ? std::min(std::prev(it)->second, end) : offset;
  if (inside) return offset;
  return it != runs.end() && it->first < end ? it->first : end;
}

void Backend::Reservation::add(std::size_t offset, std::size_t end) {
  auto next = runs.lower_bound(offset);
  if (next != runs.end() && next->first == end) {
    end = next->second;
    next = runs.erase(next);
  }
  if (next != runs.begin() && std::prev(next)->second == offset) {
    std::prev(next)->second = end;
  } else {
    runs.emplace_hint(next, offset, end);
  }
}

void Backend::Reservation::remove(std::size_t offset, std::size_t end) {
  auto it = std::prev(runs.upper_bound(offset));
  const std::size_t start = it->first;
  const std::size_t stop = it->second;
  runs.erase(it);
  if (start < offset) runs.emplace(start, offset);
  if (end < stop) runs.emplace(end, stop);
}

void Backend::release_reservation(const Segment& range, const Reservation& reservation) noexcept {
  // Unmap what is still mapped, one run at a time, then give the addresses back. A failing unmap cannot be
  // undone here: report it and go on, so that the addresses are released all the same.
  for (const auto& [start, end] : reservation.runs) {
    try {
      do_unmap(range, start, end - start);
    } catch (const std::exception& e) {
      report_misuse(std::string(name()) + "::deallocate: unmapping " + describe(range) +
                    " failed: " + e.what());
    }
  }
  do_release_address_range(range);
}

Backend::LiveRecord& Backend::reservation_record(const Segment& range, std::string_view operation) {
  const auto it = range.owner == this ? live_.find(range.id) : live_.end();
  if (it == live_.end() || !it->second.matches(range) || !it->second.reservation) {
    throw InvalidArgument(std::string(name()) + "::" + std::string(operation) + ": " + describe(range) +
                          " is not a live address range reserved by this backend");
  }
  return it->second;
}

Segment Backend::reserve_address_range(int device, std::size_t bytes) {
  check_device(device, "reserve_address_range");
  const AllocationLimits limits = allocation_limits(device);
  if (!limits.capabilities.virtual_memory) {
    throw NotSupported(std::string(name()) +
                       "::reserve_address_range: " + to_string(DeviceId{kind_, device}) +
                       " has no virtual memory (DeviceInfo::capabilities.virtual_memory is false)");
  }
  const std::size_t granule = limits.virtual_memory_granule;
  if (bytes == 0 || bytes % granule != 0) {
    throw InvalidArgument(std::string(name()) + "::reserve_address_range: " + std::to_string(bytes) +
                          " bytes on " + to_string(DeviceId{kind_, device}) +
                          " is not a non-zero multiple of the granule of " + std::to_string(granule) +
                          " bytes");
  }
  // The native reservation first: it rejects a range too large for the address space, before the per-granule
  // record below is sized by it.
  const NativeAllocation native = do_reserve_address_range(device, bytes);
  Segment s;
  s.device = DeviceId{kind_, device};
  s.kind = MemoryKind::Device;
  s.size = bytes;
  s.native = native.native;
  s.host_ptr = native.host_ptr;
  s.native_is_address = native.native_is_address;
  s.owner = this;
  try {
    auto reservation = std::make_unique<Reservation>();
    reservation->granule = granule;
    const std::lock_guard lock(registry_mutex_);
    s.id = next_id_++;
    live_.emplace(s.id, LiveRecord{s.native, s.size, s.device, s.kind, std::move(reservation)});
  } catch (const std::bad_alloc&) {
    do_release_address_range(s);
    const MemoryInfo memory = host_memory_info();
    throw OutOfMemory(bytes, to_string(s.device), memory.free_bytes, memory.total_bytes,
                      "no host memory for the record of a reserved range");
  }
  return s;
}

void Backend::check_map_span(const Backend& backend, const Segment& range, const Reservation& reservation,
                             std::size_t offset, std::size_t bytes, bool want_mapped,
                             std::string_view operation) {
  // The messages are built only when a check fails: map and unmap sit on a pool's growth path.
  const auto where = [&] {
    return std::string(backend.name()) + "::" + std::string(operation) + " on " + describe(range);
  };
  if (bytes == 0) throw InvalidArgument(where() + ": zero bytes");
  if (offset % reservation.granule != 0 || bytes % reservation.granule != 0) {
    throw InvalidArgument(where() + ": offset " + std::to_string(offset) + " and size " +
                          std::to_string(bytes) + " must be multiples of the granule of " +
                          std::to_string(reservation.granule) + " bytes");
  }
  check_segment_range(backend, operation, range, offset, bytes);
  const std::size_t differing = reservation.first_differing(offset, offset + bytes, want_mapped);
  if (differing != offset + bytes) {
    throw InvalidArgument(where() + ": the granule at offset " + std::to_string(differing) +
                          (want_mapped ? " is not mapped" : " is mapped already"));
  }
}

void Backend::map(const Segment& range, std::size_t offset, std::size_t bytes) {
  const std::lock_guard lock(registry_mutex_);
  Reservation& r = *reservation_record(range, "map").reservation;
  check_map_span(*this, range, r, offset, bytes, false, "map");
  do_map(range, offset, bytes);
  r.add(offset, offset + bytes);
  r.mapped_bytes += bytes;
}

void Backend::unmap(const Segment& range, std::size_t offset, std::size_t bytes) {
  const std::lock_guard lock(registry_mutex_);
  Reservation& r = *reservation_record(range, "unmap").reservation;
  check_map_span(*this, range, r, offset, bytes, true, "unmap");
  do_unmap(range, offset, bytes);
  r.remove(offset, offset + bytes);
  r.mapped_bytes -= bytes;
}

std::size_t Backend::mapped_bytes(const Segment& range) const {
  const std::lock_guard lock(registry_mutex_);
  return const_cast<Backend*>(this)->reservation_record(range, "mapped_bytes").reservation->mapped_bytes;
}

void Backend::check_mapped(const Segment& segment, std::size_t offset, std::size_t bytes,
                           std::string_view operation) const {
  if (bytes == 0) return;
  const std::lock_guard lock(registry_mutex_);
  const auto it = live_.find(segment.id);
  if (it == live_.end() || !it->second.reservation) return;
  const Reservation& r = *it->second.reservation;
  const std::size_t unmapped = r.first_differing(offset, offset + bytes, true);
  if (unmapped != offset + bytes) {
    throw InvalidArgument(std::string(name()) + "::" + std::string(operation) + ": bytes [" +
                          std::to_string(offset) + ", " + std::to_string(offset + bytes) + ") of " +
                          describe(segment) + " are not all mapped (the granule at offset " +
                          std::to_string(align_down(unmapped, r.granule)) + " is not)");
  }
}

Backend::NativeAllocation Backend::do_reserve_address_range(int device, std::size_t /*bytes*/) {
  throw NotSupported(std::string(name()) + ": " + to_string(DeviceId{kind_, device}) +
                     " does not implement virtual memory");
}

void Backend::do_map(const Segment& range, std::size_t /*offset*/, std::size_t /*bytes*/) {
  throw NotSupported(std::string(name()) + ": " + to_string(range.device) +
                     " does not implement virtual memory");
}

void Backend::do_unmap(const Segment& range, std::size_t /*offset*/, std::size_t /*bytes*/) {
  throw NotSupported(std::string(name()) + ": " + to_string(range.device) +
                     " does not implement virtual memory");
}

void Backend::do_release_address_range(const Segment& /*range*/) noexcept {}

bool Backend::owns(const Segment& segment) const {
  if (segment.owner != this) return false;
  const std::lock_guard lock(registry_mutex_);
  const auto it = live_.find(segment.id);
  return it != live_.end() && it->second.matches(segment);
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
  if (own) check_mapped(dst, offset, bytes, "memset");
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
  if (own_dst) check_mapped(dst, dst_offset, bytes, "copy destination");
  if (own_src) check_mapped(src, src_offset, bytes, "copy source");
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
  check_mapped(segment, offset, bytes, "prefetch");
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
    if (r.device.index == device && (include_host_kind || r.kind != MemoryKind::Host))
      total += r.held_bytes();
  }
  return total;
}

}  // namespace unimem
