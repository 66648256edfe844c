#include "unimem/backend/simulated_backend.hpp"

#include <cstring>
#include <new>
#include <string>

#include "backend/host/host_address_space.hpp"
#include "backend/host/synchronous_stream.hpp"
#include "unimem/core/alignment.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem {

namespace {
// Unbacked ranges start high in the address space so that they never look like real host pointers.
constexpr std::uintptr_t kFirstUnbackedAddress = std::uintptr_t{1} << 44U;
constexpr std::uintptr_t kLastUnbackedAddress = std::uintptr_t{1} << 62U;
}  // namespace

SimulatedDeviceSpec SimulatedDeviceSpec::parse(std::string_view text) {
  std::string_view rest = text;
  if (rest.rfind("sim:", 0) == 0) rest.remove_prefix(4);
  SimulatedDeviceSpec spec;
  const auto colon = rest.find(':');
  const std::string_view capacity = rest.substr(0, colon);
  if (colon != std::string_view::npos) {
    const std::string_view option = rest.substr(colon + 1);
    if (option == "backed") {
      spec.backed = true;
    } else if (option != "unbacked") {
      throw InvalidArgument("simulated device " + quoted(text) + ": unknown option " + quoted(option) +
                            " (expected 'backed' or 'unbacked')");
    }
  }
  try {
    spec.capacity_bytes = parse_bytes(capacity);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument("simulated device " + quoted(text) + ": " + e.what());
  }
  return spec;
}

std::string SimulatedDeviceSpec::to_string() const {
  return "sim:" + format_bytes(capacity_bytes) + (backed ? " (backed)" : " (unbacked)");
}

SimulatedBackend::SimulatedBackend(std::vector<SimulatedDeviceSpec> devices)
    : Backend(BackendKind::Simulated),
      specs_(std::move(devices)),
      used_(specs_.size(), 0),
      next_address_(kFirstUnbackedAddress) {
  for (const auto& spec : specs_) {
    if (spec.capacity_bytes == 0) throw InvalidArgument("simulated device with a capacity of 0 bytes");
  }
}

BackendStatus SimulatedBackend::status() const {
  return {true, true,
          specs_.empty() ? std::string("no simulated devices configured (add one with --sim 80GiB)")
                         : std::to_string(specs_.size()) + " simulated device(s)"};
}

const SimulatedDeviceSpec& SimulatedBackend::spec(int device) const {
  (void)device_info(device);  // validates the index
  return specs_[static_cast<std::size_t>(device)];
}

DeviceInfo SimulatedBackend::do_device_info(int device) const {
  const SimulatedDeviceSpec& spec = specs_[static_cast<std::size_t>(device)];
  DeviceInfo info;
  info.id = DeviceId{BackendKind::Simulated, device};
  info.name = "simulated " + format_bytes(spec.capacity_bytes) + (spec.backed ? " backed" : " unbacked");
  info.vendor = "unimem";
  info.driver = spec.backed ? "host memory behind each range" : "address ranges only";
  info.memory = do_memory_info(device);
  info.max_allocation_bytes = spec.capacity_bytes;
  info.capabilities = Capabilities{.device_memory = true,
                                   .pinned_host = false,
                                   .unified = false,
                                   .host_visible_device = false,
                                   .virtual_memory = true};
  info.virtual_memory_granule = kGranule;
  return info;
}

MemoryInfo SimulatedBackend::do_memory_info(int device) const {
  const std::lock_guard lock(mutex_);
  const std::size_t capacity = specs_[static_cast<std::size_t>(device)].capacity_bytes;
  return MemoryInfo{capacity - used_[static_cast<std::size_t>(device)], capacity, false};
}

void SimulatedBackend::take_capacity(std::size_t index, std::size_t bytes, const Segment* range,
                                     std::size_t offset) {
  const std::size_t capacity = specs_[index].capacity_bytes;
  const std::size_t free_bytes = capacity - used_[index];
  if (bytes > free_bytes) {
    throw OutOfMemory(
        bytes, to_string(DeviceId{BackendKind::Simulated, static_cast<int>(index)}), free_bytes, capacity,
        range == nullptr ? std::string()
                         : "mapping " + std::to_string(bytes) + " bytes at offset " + std::to_string(offset) +
                               " of a reserved range of " + std::to_string(range->size) + " bytes");
  }
  used_[index] += bytes;
}

void* SimulatedBackend::take_addresses(std::size_t index, std::size_t bytes) {
  const std::size_t footprint = align_up(bytes, kDefaultAlignment);
  if (footprint > kLastUnbackedAddress - next_address_) {
    const std::size_t capacity = specs_[index].capacity_bytes;
    throw OutOfMemory(bytes, to_string(DeviceId{BackendKind::Simulated, static_cast<int>(index)}),
                      capacity - used_[index], capacity, "simulated address space exhausted");
  }
  void* native = reinterpret_cast<void*>(next_address_);  // NOLINT(performance-no-int-to-ptr)
  next_address_ += footprint;
  return native;
}

Backend::NativeAllocation SimulatedBackend::do_allocate(int device, MemoryKind /*kind*/, std::size_t bytes,
                                                        Stream* /*stream*/) {
  const auto index = static_cast<std::size_t>(device);
  const std::lock_guard lock(mutex_);
  take_capacity(index, bytes, nullptr, 0);
  if (!specs_[index].backed) {
    try {
      return {take_addresses(index, bytes), nullptr, true};
    } catch (...) {
      used_[index] -= bytes;
      throw;
    }
  }
  void* native = ::operator new (bytes, std::align_val_t{kDefaultAlignment}, std::nothrow);
  if (native == nullptr) {
    used_[index] -= bytes;
    const std::size_t capacity = specs_[index].capacity_bytes;
    throw OutOfMemory(bytes, to_string(DeviceId{BackendKind::Simulated, device}), capacity - used_[index],
                      capacity, "the host memory backing this simulated device ran out");
  }
  return {native, nullptr, true};
}

void SimulatedBackend::do_deallocate(const Segment& segment, Stream* /*stream*/) noexcept {
  const auto index = static_cast<std::size_t>(segment.device.index);
  if (specs_[index].backed) ::operator delete (segment.native, std::align_val_t{kDefaultAlignment});
  const std::lock_guard lock(mutex_);
  used_[index] -= segment.size;
}

Backend::NativeAllocation SimulatedBackend::do_reserve_address_range(int device, std::size_t bytes) {
  const auto index = static_cast<std::size_t>(device);
  if (specs_[index].backed) {
    return {detail::reserve_host_addresses(bytes, to_string(DeviceId{BackendKind::Simulated, device})),
            nullptr, true};
  }
  const std::lock_guard lock(mutex_);
  next_address_ = align_up(next_address_, kGranule);  // granules start on granule boundaries, as on a GPU
  return {take_addresses(index, bytes), nullptr, true};
}

void SimulatedBackend::do_map(const Segment& range, std::size_t offset, std::size_t bytes) {
  const auto index = static_cast<std::size_t>(range.device.index);
  {
    const std::lock_guard lock(mutex_);
    take_capacity(index, bytes, &range, offset);
  }
  if (!specs_[index].backed) return;
  try {
    detail::commit_host_pages(range.native, offset, bytes, to_string(range.device));
  } catch (...) {
    const std::lock_guard lock(mutex_);
    used_[index] -= bytes;
    throw;
  }
}

void SimulatedBackend::do_unmap(const Segment& range, std::size_t offset, std::size_t bytes) {
  const auto index = static_cast<std::size_t>(range.device.index);
  if (specs_[index].backed) detail::decommit_host_pages(range.native, offset, bytes, to_string(range.device));
  const std::lock_guard lock(mutex_);
  used_[index] -= bytes;
}

void SimulatedBackend::do_release_address_range(const Segment& range) noexcept {
  if (specs_[static_cast<std::size_t>(range.device.index)].backed) {
    detail::release_host_addresses(range.native, range.size);
  }
}

std::byte* SimulatedBackend::backing(const Segment& segment, std::string_view operation) const {
  if (segment.owner != this) return segment.host_ptr;  // host memory
  if (!specs_[static_cast<std::size_t>(segment.device.index)].backed) {
    throw NotSupported("sim::" + std::string(operation) + ": " + to_string(segment.device) +
                       " is unbacked (address ranges only, no memory to read or write); use a backed device "
                       "such as 'sim:1GiB:backed'");
  }
  return static_cast<std::byte*>(segment.native);
}

void SimulatedBackend::do_memset(const Segment& dst, std::size_t offset, std::uint8_t value,
                                 std::size_t bytes, Stream* /*stream*/) {
  std::memset(backing(dst, "memset") + offset, value, bytes);
}

void SimulatedBackend::do_copy(const Segment& dst, std::size_t dst_offset, const Segment& src,
                               std::size_t src_offset, std::size_t bytes, Stream* /*stream*/) {
  std::memmove(backing(dst, "copy") + dst_offset, backing(src, "copy") + src_offset, bytes);
}

std::unique_ptr<Stream> SimulatedBackend::do_create_stream(int device) {
  return std::make_unique<detail::SynchronousStream>(*this, DeviceId{BackendKind::Simulated, device});
}

// Work on these streams completes on the calling thread, so a foreign queue needs nothing of its own.
std::unique_ptr<Stream> SimulatedBackend::do_wrap_native_stream(int device, void* /*native*/) {
  return std::make_unique<detail::SynchronousStream>(*this, DeviceId{BackendKind::Simulated, device});
}

std::unique_ptr<Event> SimulatedBackend::do_create_event(int device) {
  return std::make_unique<detail::HostClockEvent>(*this, DeviceId{BackendKind::Simulated, device});
}

}  // namespace unimem
