// NamedBuffers: the map from name to owned memory and its counters, behind one mutex; the memory comes from
// the manager's stacks.

#include "unimem/manager/named_buffers.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "unimem/backend/backend.hpp"
#include "unimem/buffer/raw_buffer.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/core/size.hpp"
#include "unimem/manager/memory_manager.hpp"
#include "unimem/resource/tracking_adaptor.hpp"
#include "unimem/transfer/double_buffered_download.hpp"
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

struct NamedBuffers::State {
  // A named buffer's downloads. Its own mutex lets a wait block without holding the named-buffer mutex (lock
  // order: the named-buffer mutex first); shared so that a waiter keeps it alive past a concurrent free.
  struct Downloads {
    Downloads(Backend& backend, int device, MemoryResource& host_memory, std::size_t bytes)
        : download(backend, device, host_memory, bytes),
          ordered(backend.create_event(device)),
          read(backend.create_event(device)),
          staging_device(host_memory.device()) {}

    // Waits for the downloads still pending and drops them (their failures too): the memory they read from
    // is about to go, and nobody can ask for them any more. Never throws.
    void drain() noexcept {
      const std::lock_guard lock(mutex);
      while (download.pending() != 0) {
        try {
          (void)download.wait_for_download();
        } catch (...) {  // NOLINT(bugprone-empty-catch): dropped on purpose, see above
        }
      }
    }

    std::mutex mutex;
    DoubleBufferedDownload download;
    std::unique_ptr<Event> ordered;  // orders a download after the buffer's own stream
    std::unique_ptr<Event> read;     // orders the buffer's own stream after a download's read
    DeviceId staging_device;         // where the two host buffers live, for the leak check
  };

  struct Entry {
    RawBuffer memory;
    BufferConfig config;
    std::chrono::steady_clock::time_point since;  // allocated or last grown
    std::shared_ptr<Downloads> downloads;         // after `memory`: destroyed (and drained) before it
  };

  // Holds `mutex` for a named-buffer call that allocates or frees. The pressure changes those allocations and
  // frees cause are held back and delivered once the thread holds no named-buffer lock any more, so that a
  // callback never runs under the mutex and may call any of the manager's functions.
  class Lock {
   public:
    explicit Lock(const NamedBuffers& named);
    ~Lock();
    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;
    Lock(Lock&&) = delete;
    Lock& operator=(Lock&&) = delete;

   private:
    std::unique_lock<std::mutex> lock_;
  };
  // `count` elements from the stack `config` names, tagged with the name for the leak report.
  static RawBuffer allocate_tagged(MemoryManager& manager, std::string_view name, ElementType element,
                                   std::size_t count, const BufferConfig& config);

  std::mutex mutex;
  std::map<std::string, Entry, std::less<>> buffers;
  std::size_t bytes = 0;
  std::size_t peak_bytes = 0;
  std::uint64_t allocations = 0;
  std::uint64_t resizes = 0;
  std::uint64_t async_transfers = 0;
};

NamedBuffers::State::Lock::Lock(const NamedBuffers& named) : lock_(named.state_->mutex) {
  ++named_locks_held;
}

NamedBuffers::State::Lock::~Lock() {
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

bool NamedBuffers::defer_pressure_change(const MemoryManager& manager, DeviceId device,
                                         PressureLevel previous, PressureLevel current) {
  if (named_locks_held == 0) return false;
  pending_pressure_changes.push_back(PendingPressureChange{&manager, device, previous, current});
  return true;
}

NamedBuffers::NamedBuffers(MemoryManager& manager) : manager_(manager), state_(std::make_unique<State>()) {}

NamedBuffers::~NamedBuffers() = default;

RawBuffer NamedBuffers::State::allocate_tagged(MemoryManager& manager, std::string_view name,
                                               ElementType element, std::size_t count,
                                               const BufferConfig& config) {
  // With tracking on, the leak report shows the name against the allocation.
  const TrackingAdaptor::ScopedTag tag{std::string(name)};
  MemoryResource& from = manager.resource(config.mode, config.device);
  try {
    return RawBuffer(from, element, count);
  } catch (const OutOfMemory& e) {
    manager.throw_out_of_memory(e, config.mode, from.device());
  }
}

RawView NamedBuffers::create_raw(std::string_view name, ElementType element, std::size_t count,
                                 const BufferConfig& config) {
  if (name.empty()) throw InvalidArgument("NamedBuffers::create: a named buffer needs a non-empty name");
  config.validate();
  if (count == 0) throw InvalidArgument("named buffer " + quoted(name) + ": zero elements requested");
  const std::size_t bytes = checked_mul(count, element.size);
  check_max_size(name, bytes, config);

  const State::Lock lock(*this);
  if (state_->buffers.contains(name)) {
    throw InvalidArgument("named buffer " + quoted(name) + " already exists (free it first)");
  }
  check_named_cap(manager_.config().memory_limit_bytes, name, bytes, state_->bytes,
                  config.device.value_or(manager_.default_device()));
  State::Entry entry{State::allocate_tagged(manager_, name, element, count, config), config,
                     std::chrono::steady_clock::now(), nullptr};
  const auto it = state_->buffers.emplace(std::string(name), std::move(entry)).first;
  state_->bytes += bytes;
  state_->peak_bytes = std::max(state_->peak_bytes, state_->bytes);
  ++state_->allocations;
  return it->second.memory.view();
}

RawView NamedBuffers::get_raw(std::string_view name, ElementType element) const {
  const std::lock_guard lock(state_->mutex);
  const auto it = state_->buffers.find(name);
  if (it == state_->buffers.end()) {
    throw InvalidArgument("NamedBuffers::get: no named buffer " + quoted(name));
  }
  require_element_type(it->second.memory.element_type(), element, "named buffer " + quoted(name));
  return it->second.memory.view();
}

RawView NamedBuffers::grow_raw(std::string_view name, ElementType element, std::size_t count) {
  const State::Lock lock(*this);
  const auto it = state_->buffers.find(name);
  if (it == state_->buffers.end()) {
    throw InvalidArgument("NamedBuffers::grow: no named buffer " + quoted(name));
  }
  State::Entry& entry = it->second;
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
  const std::size_t cap = manager_.config().memory_limit_bytes;
  const std::size_t others = state_->bytes - entry.memory.bytes();
  if (cap != 0)
    new_count = std::max(count, std::min(new_count, (cap - std::min(cap, others)) / element.size));
  const std::size_t new_bytes = checked_mul(new_count, element.size);
  check_named_cap(manager_.config().memory_limit_bytes, name, new_bytes, others, entry.memory.device());
  RawBuffer bigger = State::allocate_tagged(manager_, name, element, new_count, entry.config);
  copy_contents(bigger, entry.memory);
  if (entry.downloads != nullptr) entry.downloads->drain();
  entry.downloads.reset();           // sized for the old memory; made again by the next download
  entry.memory = std::move(bigger);  // the old memory goes back to its pool
  entry.since = std::chrono::steady_clock::now();
  state_->bytes = others + new_bytes;
  state_->peak_bytes = std::max(state_->peak_bytes, state_->bytes);
  ++state_->resizes;
  return entry.memory.view();
}

void NamedBuffers::free(std::string_view name) {
  const State::Lock lock(*this);
  const auto it = state_->buffers.find(name);
  if (it == state_->buffers.end())
    throw InvalidArgument("NamedBuffers::free: no named buffer " + quoted(name));
  state_->bytes -= it->second.memory.bytes();
  if (it->second.downloads != nullptr) it->second.downloads->drain();
  state_->buffers.erase(it);
}

void NamedBuffers::start_download(std::string_view name, ElementType element) {
  const std::lock_guard lock(state_->mutex);
  const auto it = state_->buffers.find(name);
  if (it == state_->buffers.end()) {
    throw InvalidArgument("NamedBuffers::start_async_download: no named buffer " + quoted(name));
  }
  State::Entry& entry = it->second;
  RawBuffer& memory = entry.memory;
  require_element_type(memory.element_type(), element, "named buffer " + quoted(name));
  Backend& backend = *memory.backend();
  const int device = memory.device().index;
  if (entry.downloads == nullptr) {
    entry.downloads = std::make_shared<State::Downloads>(
        backend, device, manager_.host_copy_resource(memory.device()), memory.bytes());
  }
  State::Downloads& downloads = *entry.downloads;
  const std::lock_guard download_lock(downloads.mutex);
  if (downloads.download.pending() == 2) {
    throw InvalidArgument("NamedBuffers::start_async_download: named buffer " + quoted(name) +
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
  ++state_->async_transfers;
}

std::span<const std::byte> NamedBuffers::wait_download(std::string_view name, ElementType element) {
  std::shared_ptr<State::Downloads> downloads;
  {
    const std::lock_guard lock(state_->mutex);
    const auto it = state_->buffers.find(name);
    if (it == state_->buffers.end()) {
      throw InvalidArgument("NamedBuffers::wait_for_download: no named buffer " + quoted(name));
    }
    require_element_type(it->second.memory.element_type(), element, "named buffer " + quoted(name));
    downloads = it->second.downloads;
  }
  const auto nothing_pending = [&name] {
    return InvalidArgument("NamedBuffers::wait_for_download: named buffer " + quoted(name) +
                           " has no download pending (start_async_download first)");
  };
  if (downloads == nullptr) throw nothing_pending();
  // Only this buffer's downloads are held while waiting: other named buffers stay usable meanwhile.
  const std::lock_guard lock(downloads->mutex);
  if (downloads->download.pending() == 0) throw nothing_pending();
  return downloads->download.wait_for_download();
}

TransferFuture NamedBuffers::transfer(std::string_view name, ElementType element, const Transfer& transfer) {
  const State::Lock lock(*this);
  const auto it = state_->buffers.find(name);
  if (it == state_->buffers.end()) {
    throw InvalidArgument("NamedBuffers: asynchronous copy with no named buffer " + quoted(name));
  }
  RawBuffer& memory = it->second.memory;
  require_element_type(memory.element_type(), element, "named buffer " + quoted(name));
  Stream& stream = memory.own_stream();
  TransferFuture future = transfer(memory.view(), stream);
  ++state_->async_transfers;
  return future;
}

bool NamedBuffers::contains(std::string_view name) const {
  const std::lock_guard lock(state_->mutex);
  return state_->buffers.contains(name);
}

std::size_t NamedBuffers::count() const {
  const std::lock_guard lock(state_->mutex);
  return state_->buffers.size();
}

std::size_t NamedBuffers::bytes() const {
  const std::lock_guard lock(state_->mutex);
  return state_->bytes;
}

std::size_t NamedBuffers::peak_bytes() const {
  const std::lock_guard lock(state_->mutex);
  return state_->peak_bytes;
}

std::uint64_t NamedBuffers::allocation_count() const {
  const std::lock_guard lock(state_->mutex);
  return state_->allocations;
}

std::uint64_t NamedBuffers::resize_count() const {
  const std::lock_guard lock(state_->mutex);
  return state_->resizes;
}

std::uint64_t NamedBuffers::async_transfer_count() const {
  const std::lock_guard lock(state_->mutex);
  return state_->async_transfers;
}

std::vector<NamedBufferRecord> NamedBuffers::records(std::vector<DownloadMemory>& downloads) const {
  std::vector<NamedBufferRecord> records;
  const auto now = std::chrono::steady_clock::now();
  const std::lock_guard lock(state_->mutex);
  for (const auto& [name, entry] : state_->buffers) {
    records.push_back(NamedBufferRecord{name, std::string(entry.memory.element_type().name),
                                        entry.memory.size(), entry.memory.bytes(), entry.memory.device(),
                                        entry.config.mode, now - entry.since});
    if (entry.downloads != nullptr) {
      downloads.push_back({entry.downloads->staging_device, entry.downloads->download.capacity_bytes()});
    }
  }
  return records;
}

}  // namespace unimem
