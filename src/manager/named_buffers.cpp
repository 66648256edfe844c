// The named-buffer half of MemoryManager (memory_manager.cpp builds the stacks and serves unnamed buffers).

#include "manager/named_buffers.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "unimem/backend/backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/tracking_adaptor.hpp"
#include "unimem/transfer/transfer_endpoint.hpp"

namespace unimem {

namespace {

void check_max_size(std::string_view name, std::size_t bytes, const BufferConfig& config) {
  if (config.max_size_bytes != 0 && bytes > config.max_size_bytes) {
    throw InvalidArgument("named buffer " + quoted(name) + ": " + std::to_string(bytes) +
                          " bytes requested, past its maximum of " + std::to_string(config.max_size_bytes) +
                          " bytes (BufferConfig.max_size_bytes)");
  }
}

// MemoryConfig.memory_limit_bytes (when set) caps the named buffers together: `bytes` more for `name` must
// fit next to the `others` bytes the other named buffers hold.
void check_named_cap(std::size_t cap, std::string_view name, std::size_t bytes, std::size_t others,
                     DeviceId device) {
  const std::size_t room = cap - std::min(cap, others);
  if (cap == 0 || bytes <= room) return;
  throw OutOfMemory(bytes, to_string(device), room, cap,
                    "named buffer " + quoted(name) + ": the other named buffers hold " +
                        std::to_string(others) +
                        " bytes of MemoryConfig.memory_limit_bytes = " + std::to_string(cap));
}

// Copies all of `from` to the start of `to`. The memory of a named buffer is the device's or, after a CPU
// fallback, the host's, so one side's backend can always reach the other side.
void copy_contents(const RawBuffer& to, const RawBuffer& from) {
  if (from.stream() != nullptr) from.stream()->synchronize();  // its asynchronous work lands first
  const Segment& dst = *to.allocation().segment;
  const Segment& src = *from.allocation().segment;
  Backend* via = nullptr;
  if (dst.owner == src.owner || src.host_visible()) {
    via = dst.owner;
  } else if (dst.host_visible()) {
    via = src.owner;
  } else {
    throw NotSupported("named buffer copy from " + to_string(src.device) + " to " + to_string(dst.device) +
                       ": different backends and neither side is host-visible");
  }
  via->copy(dst, to.allocation().offset, src, from.allocation().offset, from.bytes());
}

struct PendingPressureChange {
  const MemoryManager* manager;
  DeviceId device;
  PressureLevel previous;
  PressureLevel current;
};
thread_local int named_locks_held = 0;
thread_local std::vector<PendingPressureChange> pending_pressure_changes;

}  // namespace

MemoryManager::NamedBuffers::Lock::Lock(const MemoryManager& manager) : lock_(manager.named_->mutex) {
  ++named_locks_held;
}

MemoryManager::NamedBuffers::Lock::~Lock() {
  lock_.unlock();
  if (--named_locks_held != 0) return;
  // A callback may itself make named-buffer calls that queue more changes: deliver until none are left.
  while (!pending_pressure_changes.empty()) {
    std::vector<PendingPressureChange> changes;
    changes.swap(pending_pressure_changes);
    for (const PendingPressureChange& change : changes) {
      try {
        change.manager->notify_pressure(change.device, change.previous, change.current);
      } catch (const std::exception& e) {
        report_misuse(std::string("MemoryManager: a pressure callback threw: ") + e.what());
      }
    }
  }
}

bool MemoryManager::NamedBuffers::defer_pressure_change(const MemoryManager& manager, DeviceId device,
                                                        PressureLevel previous, PressureLevel current) {
  if (named_locks_held == 0) return false;
  pending_pressure_changes.push_back(PendingPressureChange{&manager, device, previous, current});
  return true;
}

RawBuffer MemoryManager::allocate_tagged(std::string_view name, ElementType element, std::size_t count,
                                         const BufferConfig& config) {
  // With tracking on, the leak report shows the name against the allocation.
  const TrackingAdaptor::ScopedTag tag{std::string(name)};
  MemoryResource& from = resource(config.mode, config.device);
  try {
    return RawBuffer(from, element, count);
  } catch (const OutOfMemory& e) {
    throw_out_of_memory(e, config.mode, from.device());
  }
}

RawView MemoryManager::allocate_named(std::string_view name, ElementType element, std::size_t count,
                                      const BufferConfig& config) {
  if (name.empty()) throw InvalidArgument("MemoryManager::allocate: a named buffer needs a non-empty name");
  config.validate();
  if (count == 0) throw InvalidArgument("named buffer " + quoted(name) + ": zero elements requested");
  const std::size_t bytes = checked_mul(count, element.size);
  check_max_size(name, bytes, config);

  const NamedBuffers::Lock lock(*this);
  if (named_->buffers.contains(name)) {
    throw InvalidArgument("named buffer " + quoted(name) + " already exists (free it first)");
  }
  check_named_cap(config_.memory_limit_bytes, name, bytes, named_->bytes,
                  config.device.value_or(default_device_));
  NamedBuffers::Entry entry{allocate_tagged(name, element, count, config), config,
                            std::chrono::steady_clock::now(), nullptr};
  const auto it = named_->buffers.emplace(std::string(name), std::move(entry)).first;
  named_->bytes += bytes;
  named_->peak_bytes = std::max(named_->peak_bytes, named_->bytes);
  ++named_->allocations;
  return it->second.memory.view();
}

RawView MemoryManager::find_named(std::string_view name, ElementType element) const {
  const std::lock_guard lock(named_->mutex);
  const auto it = named_->buffers.find(name);
  if (it == named_->buffers.end()) {
    throw InvalidArgument("MemoryManager::get: no named buffer " + quoted(name));
  }
  require_element_type(it->second.memory.element_type(), element, "named buffer " + quoted(name));
  return it->second.memory.view();
}

RawView MemoryManager::grow_named(std::string_view name, ElementType element, std::size_t count) {
  const NamedBuffers::Lock lock(*this);
  const auto it = named_->buffers.find(name);
  if (it == named_->buffers.end()) {
    throw InvalidArgument("MemoryManager::ensure_capacity: no named buffer " + quoted(name));
  }
  NamedBuffers::Entry& entry = it->second;
  require_element_type(entry.memory.element_type(), element, "named buffer " + quoted(name));
  const std::size_t old_count = entry.memory.size();
  if (count <= old_count) return entry.memory.view();

  const std::size_t wanted_bytes = checked_mul(count, element.size);
  check_max_size(name, wanted_bytes, entry.config);
  const auto grown = static_cast<double>(old_count) * entry.config.growth_factor;
  std::size_t new_count = std::max(count, static_cast<std::size_t>(std::ceil(grown)));
  // Growth beyond the request stops at the buffer's maximum and at the cap on named bytes.
  if (entry.config.max_size_bytes != 0) {
    new_count = std::min(new_count, entry.config.max_size_bytes / element.size);
  }
  const std::size_t cap = config_.memory_limit_bytes;
  const std::size_t others = named_->bytes - entry.memory.bytes();
  if (cap != 0)
    new_count = std::max(count, std::min(new_count, (cap - std::min(cap, others)) / element.size));
  const std::size_t new_bytes = checked_mul(new_count, element.size);
  check_named_cap(config_.memory_limit_bytes, name, new_bytes, others, entry.memory.device());
  RawBuffer bigger = allocate_tagged(name, element, new_count, entry.config);
  copy_contents(bigger, entry.memory);
  if (entry.downloads != nullptr) entry.downloads->drain();
  entry.downloads.reset();           // sized for the old memory; made again by the next download
  entry.memory = std::move(bigger);  // the old memory goes back to its pool
  entry.since = std::chrono::steady_clock::now();
  named_->bytes = others + new_bytes;
  named_->peak_bytes = std::max(named_->peak_bytes, named_->bytes);
  ++named_->resizes;
  return entry.memory.view();
}

void MemoryManager::free(std::string_view name) {
  const NamedBuffers::Lock lock(*this);
  const auto it = named_->buffers.find(name);
  if (it == named_->buffers.end())
    throw InvalidArgument("MemoryManager::free: no named buffer " + quoted(name));
  named_->bytes -= it->second.memory.bytes();
  if (it->second.downloads != nullptr) it->second.downloads->drain();
  named_->buffers.erase(it);
}

void MemoryManager::start_named_download(std::string_view name, ElementType element) {
  const std::lock_guard lock(named_->mutex);
  const auto it = named_->buffers.find(name);
  if (it == named_->buffers.end()) {
    throw InvalidArgument("MemoryManager::start_async_download: no named buffer " + quoted(name));
  }
  NamedBuffers::Entry& entry = it->second;
  RawBuffer& memory = entry.memory;
  require_element_type(memory.element_type(), element, "named buffer " + quoted(name));
  Backend& backend = *memory.backend();
  const int device = memory.device().index;
  if (entry.downloads == nullptr) {
    entry.downloads = std::make_shared<NamedBuffers::Downloads>(
        backend, device, host_copy_resource(memory.device()), memory.bytes());
  }
  NamedBuffers::Downloads& downloads = *entry.downloads;
  const std::lock_guard download_lock(downloads.mutex);
  if (downloads.download.pending() == 2) {
    throw InvalidArgument("MemoryManager::start_async_download: named buffer " + quoted(name) +
                          " has two downloads pending already; call wait_for_download first");
  }
  // The copies queued on the buffer's own stream (copy_from_host_async) land before the download reads, and
  // the ones queued after it wait for the read: the download sees the contents of the moment it started.
  Stream& own = memory.own_stream();
  downloads.ordered->record(own);
  downloads.ordered->make_wait(downloads.download.stream());
  downloads.download.start_async_download(TransferEndpoint::from(memory.view()), memory.bytes());
  downloads.read->record(downloads.download.stream());
  downloads.read->make_wait(own);
  ++named_->async_transfers;
}

std::span<const std::byte> MemoryManager::wait_named_download(std::string_view name, ElementType element) {
  std::shared_ptr<NamedBuffers::Downloads> downloads;
  {
    const std::lock_guard lock(named_->mutex);
    const auto it = named_->buffers.find(name);
    if (it == named_->buffers.end()) {
      throw InvalidArgument("MemoryManager::wait_for_download: no named buffer " + quoted(name));
    }
    require_element_type(it->second.memory.element_type(), element, "named buffer " + quoted(name));
    downloads = it->second.downloads;
  }
  const auto nothing_pending = [&name] {
    return InvalidArgument("MemoryManager::wait_for_download: named buffer " + quoted(name) +
                           " has no download pending (start_async_download first)");
  };
  if (downloads == nullptr) throw nothing_pending();
  // Only this buffer's downloads are held while waiting: other named buffers stay usable meanwhile.
  const std::lock_guard lock(downloads->mutex);
  if (downloads->download.pending() == 0) throw nothing_pending();
  return downloads->download.wait_for_download();
}

TransferFuture MemoryManager::transfer_named(std::string_view name, ElementType element,
                                             const Transfer& transfer) {
  const NamedBuffers::Lock lock(*this);
  const auto it = named_->buffers.find(name);
  if (it == named_->buffers.end()) {
    throw InvalidArgument("MemoryManager: asynchronous copy with no named buffer " + quoted(name));
  }
  RawBuffer& memory = it->second.memory;
  require_element_type(memory.element_type(), element, "named buffer " + quoted(name));
  Stream& stream = memory.own_stream();
  TransferFuture future = transfer(memory.view(), stream);
  ++named_->async_transfers;
  return future;
}

bool MemoryManager::contains(std::string_view name) const {
  const std::lock_guard lock(named_->mutex);
  return named_->buffers.contains(name);
}

std::size_t MemoryManager::named_buffer_count() const {
  const std::lock_guard lock(named_->mutex);
  return named_->buffers.size();
}

std::size_t MemoryManager::named_bytes() const {
  const std::lock_guard lock(named_->mutex);
  return named_->bytes;
}

std::size_t MemoryManager::peak_named_bytes() const {
  const std::lock_guard lock(named_->mutex);
  return named_->peak_bytes;
}

std::uint64_t MemoryManager::allocation_count() const {
  const std::lock_guard lock(named_->mutex);
  return named_->allocations;
}

std::uint64_t MemoryManager::resize_count() const {
  const std::lock_guard lock(named_->mutex);
  return named_->resizes;
}

std::uint64_t MemoryManager::async_transfer_count() const {
  const std::lock_guard lock(named_->mutex);
  return named_->async_transfers;
}

LeakReport MemoryManager::check_leaks() const {
  LeakReport report;
  const auto now = std::chrono::steady_clock::now();
  // The host buffers of named downloads belong to their named buffer: they are not unnamed allocations.
  struct Staging {
    DeviceId device;
    std::size_t bytes;
  };
  std::vector<Staging> staging;
  {
    const std::lock_guard lock(named_->mutex);
    for (const auto& [name, entry] : named_->buffers) {
      report.named.push_back(NamedBufferRecord{name, std::string(entry.memory.element_type().name),
                                               entry.memory.size(), entry.memory.bytes(),
                                               entry.memory.device(), entry.config.mode, now - entry.since});
      if (entry.downloads != nullptr) {
        staging.push_back({entry.downloads->staging_device, entry.downloads->download.capacity_bytes()});
      }
    }
  }
  for (const DeviceId device : devices()) {
    const MemoryStats s = stats(device);
    std::uint64_t named_count = 0;
    std::size_t named_bytes = 0;
    for (const NamedBufferRecord& record : report.named) {
      if (record.device != device) continue;
      ++named_count;
      named_bytes += record.bytes;
    }
    for (const Staging& buffers : staging) {
      if (buffers.device != device) continue;
      named_count += 2;
      named_bytes += 2 * buffers.bytes;
    }
    if (s.active_buffers > named_count) {
      report.unnamed.push_back(UnnamedAllocations{device, s.active_buffers - named_count,
                                                  s.in_use_bytes - std::min(s.in_use_bytes, named_bytes)});
    }
  }
  return report;
}

}  // namespace unimem
