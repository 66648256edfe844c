#include "unimem/backend/host_backend.hpp"

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <new>
#include <sstream>
#include <string>

#include "backend/host/host_address_space.hpp"
#include "backend/host/synchronous_stream.hpp"
#include "unimem/core/alignment.hpp"
#include "unimem/core/error.hpp"

namespace unimem {

namespace {
std::string read_cpu_name() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos && colon + 2 <= line.size()) return line.substr(colon + 2);
    }
  }
  return "host CPU";
}
}  // namespace

MemoryInfo host_memory_info() {
  MemoryInfo info;
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  std::size_t value_kib = 0;
  std::string unit;
  while (meminfo >> key >> value_kib >> unit) {
    if (key == "MemTotal:") info.total_bytes = value_kib * 1024;
    if (key == "MemAvailable:") info.free_bytes = value_kib * 1024;
  }
  if (info.total_bytes == 0) {
    // Not Linux, or /proc is missing: fall back to sysconf, which knows the total but not what is available.
    const long pages = sysconf(_SC_PHYS_PAGES);
    const long page_size = sysconf(_SC_PAGE_SIZE);
    if (pages > 0 && page_size > 0) info.total_bytes = static_cast<std::size_t>(pages) * page_size;
    info.free_bytes = info.total_bytes;
    info.estimated = true;
  }
  return info;
}

HostBackend::HostBackend() : Backend(BackendKind::Host), cpu_name_(read_cpu_name()) {}

BackendStatus HostBackend::status() const {
  return {true, true, "host memory through the C++ allocator"};
}

DeviceInfo HostBackend::do_device_info(int device) const {
  DeviceInfo info;
  info.id = DeviceId{BackendKind::Host, device};
  info.name = cpu_name_;
  info.vendor = "host";
  info.driver = "libstdc++ aligned operator new";
  info.memory = host_memory_info();
  info.max_allocation_bytes = info.memory.total_bytes;
  info.capabilities = Capabilities{.device_memory = true,
                                   .pinned_host = false,
                                   .unified = false,
                                   .host_visible_device = true,
                                   .host_unified_memory = true,
                                   .virtual_memory = true};
  info.virtual_memory_granule = detail::host_page_size();
  return info;
}

MemoryInfo HostBackend::do_memory_info(int /*device*/) const {
  return host_memory_info();
}

Backend::NativeAllocation HostBackend::do_allocate(int device, MemoryKind /*kind*/, std::size_t bytes,
                                                   Stream* /*stream*/) {
  void* p = ::operator new (bytes, std::align_val_t{kDefaultAlignment}, std::nothrow);
  if (p == nullptr) {
    const MemoryInfo mem = host_memory_info();
    throw OutOfMemory(bytes, to_string(DeviceId{BackendKind::Host, device}), mem.free_bytes, mem.total_bytes);
  }
  return {p, static_cast<std::byte*>(p), true};
}

void HostBackend::do_deallocate(const Segment& segment, Stream* /*stream*/) noexcept {
  ::operator delete (segment.native, std::align_val_t{kDefaultAlignment});
}

void HostBackend::do_memset(const Segment& dst, std::size_t offset, std::uint8_t value, std::size_t bytes,
                            Stream* /*stream*/) {
  std::memset(dst.host_ptr + offset, value, bytes);
}

void HostBackend::do_copy(const Segment& dst, std::size_t dst_offset, const Segment& src,
                          std::size_t src_offset, std::size_t bytes, Stream* /*stream*/) {
  // memmove: source and destination may be ranges of the same segment.
  std::memmove(dst.host_ptr + dst_offset, src.host_ptr + src_offset, bytes);
}

std::unique_ptr<Stream> HostBackend::do_create_stream(int device) {
  return std::make_unique<detail::SynchronousStream>(*this, DeviceId{BackendKind::Host, device});
}

// Work on these streams completes on the calling thread, so a foreign queue needs nothing of its own.
std::unique_ptr<Stream> HostBackend::do_wrap_native_stream(int device, void* /*native*/) {
  return std::make_unique<detail::SynchronousStream>(*this, DeviceId{BackendKind::Host, device});
}

std::unique_ptr<Event> HostBackend::do_create_event(int device) {
  return std::make_unique<detail::HostClockEvent>(*this, DeviceId{BackendKind::Host, device});
}

Backend::NativeAllocation HostBackend::do_reserve_address_range(int device, std::size_t bytes) {
  void* base = detail::reserve_host_addresses(bytes, to_string(DeviceId{BackendKind::Host, device}));
  return {base, static_cast<std::byte*>(base), true};
}

void HostBackend::do_map(const Segment& range, std::size_t offset, std::size_t bytes) {
  detail::commit_host_pages(range.native, offset, bytes, to_string(range.device));
}

void HostBackend::do_unmap(const Segment& range, std::size_t offset, std::size_t bytes) {
  detail::decommit_host_pages(range.native, offset, bytes, to_string(range.device));
}

void HostBackend::do_release_address_range(const Segment& range) noexcept {
  detail::release_host_addresses(range.native, range.size);
}

}  // namespace unimem
