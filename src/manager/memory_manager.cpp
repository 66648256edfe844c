#include "unimem/manager/memory_manager.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <exception>
#include <string>

#include "unimem/core/misuse.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/resource/hybrid_pool.hpp"
#include "unimem/resource/limiting_adaptor.hpp"
#include "unimem/resource/resource_stack.hpp"
#include "unimem/resource/statistics_adaptor.hpp"
#include "unimem/resource/tracking_adaptor.hpp"

namespace unimem {

// The stacks of one device. Resources point into the stacks that own them; a device's pooled FallbackAdaptor
// points into the host's pooled stack, which is why the host's stacks are built first and destroyed last.
struct MemoryManager::DeviceStacks {
  DeviceId id;
  Backend* backend = nullptr;
  std::size_t limit = 0;

  // BackendResource -> HybridPool -> Limiting -> Statistics -> Tracking? -> Pressure -> Fallback?
  ResourceStack pooled;
  HybridPool* pool = nullptr;
  LimitingAdaptor* limiter = nullptr;
  StatisticsAdaptor* statistics = nullptr;
  TrackingAdaptor* tracking = nullptr;  // when MemoryConfig.track_allocations
  PressureAdaptor* pressure = nullptr;
  // When MemoryConfig.cpu_fallback_enabled, on devices other than the host.
  FallbackAdaptor* fallback = nullptr;

  ResourceStack unpooled;  // BackendResource -> Limiting -> Statistics
  LimitingAdaptor* unpooled_limiter = nullptr;
  StatisticsAdaptor* unpooled_statistics = nullptr;

  ResourceStack pinned;  // BackendResource(PinnedHost) -> HybridPool -> Statistics; empty where not served
  HybridPool* pinned_pool = nullptr;
  StatisticsAdaptor* pinned_statistics = nullptr;

  ResourceStack unified;  // BackendResource(Unified) -> Statistics; empty where not served
  StatisticsAdaptor* unified_statistics = nullptr;

  [[nodiscard]] MemoryStats stats() const;
  // Bytes live through the manager on the device (pooled and unpooled, as the limits count them).
  [[nodiscard]] std::size_t live_bytes() const noexcept {
    return limiter->in_use_bytes() + unpooled_limiter->in_use_bytes();
  }
  [[nodiscard]] std::size_t available() const {
    const std::size_t live = live_bytes();
    const std::size_t under_limit = live >= limit ? 0 : limit - live;
    return std::min(under_limit, backend->memory_info(id.index).free_bytes);
  }
  // Gives the cached memory of this device's pools back. The pooled stack is trimmed below its
  // FallbackAdaptor, whose trim would trim the host's stack too.
  std::size_t trim() {
    std::size_t released = pressure->trim();
    if (!pinned.empty()) released += pinned.top().trim();
    return released;
  }
  [[nodiscard]] bool owns(const MemoryResource& resource) const {
    return &resource == &pooled.top() || &resource == &unpooled.top() ||
           (!pinned.empty() && &resource == &pinned.top()) ||
           (!unified.empty() && &resource == &unified.top());
  }
};

namespace {

// fraction x total - min_free for a device, total - min_free for the host (its memory is the machine's, no
// share of it belongs to anyone else by default), with min_free clamped to half of the first term so that a
// small device keeps half of its share instead of none; capped by memory_limit_bytes.
std::size_t device_limit(const DeviceInfo& info, const MemoryConfig& config) {
  const std::size_t total = info.memory.total_bytes;
  const std::size_t share =
      info.id.backend == BackendKind::Host
          ? total
          : static_cast<std::size_t>(config.gpu_memory_fraction * static_cast<double>(total));
  std::size_t limit = share - std::min(config.min_free_bytes, share / 2);
  if (config.memory_limit_bytes != 0) limit = std::min(limit, config.memory_limit_bytes);
  return limit;
}

HybridPoolOptions pool_options(const MemoryConfig& config, std::size_t limit) {
  HybridPoolOptions options;
  options.small.max_pooled_per_bucket = config.max_pooled_per_bucket;
  options.large.growth_factor = config.pool_growth_factor;
  options.large.maximum_size = config.max_pool_bytes != 0 ? config.max_pool_bytes : limit;
  options.large.initial_size = std::min(config.initial_pool_bytes, options.large.maximum_size);
  options.large_kind = config.large_pool;
  options.expandable.granule = config.pool_granule;
  return options;
}

std::string format_fraction(double value) {
  std::array<char, 32> text{};
  const auto end =
      std::to_chars(text.data(), text.data() + text.size(), value, std::chars_format::fixed, 2).ptr;
  return {text.data(), end};
}

}  // namespace

MemoryStats MemoryManager::DeviceStacks::stats() const {
  MemoryStats s = statistics->stats();
  s += unpooled_statistics->stats();
  if (pinned_statistics != nullptr) s += pinned_statistics->stats();
  if (unified_statistics != nullptr) s += unified_statistics->stats();
  if (fallback != nullptr) s.fallbacks += fallback->fallback_count();
  return s;
}

MemoryManager::MemoryManager(ManagerOptions options)
    : config_(options.config),
      platform_(options.platform ? *options.platform : detect_platform()),
      named_(new NamedBuffers(*this)) {
  config_.validate();
  registry_ = std::make_unique<BackendRegistry>(options.registry);
  try {
    devices_.push_back(build_stacks(registry_->host(), 0, nullptr));
    if (devices_.front() == nullptr) {
      throw NotSupported(
          "MemoryManager: host:0 reports no memory (MemTotal of /proc/meminfo), so it has no limit");
    }
    for (const DeviceId id : registry_->devices()) {
      if (id.backend == BackendKind::Host) continue;
      std::unique_ptr<DeviceStacks> device =
          build_stacks(registry_->get(id.backend), id.index, devices_.front().get());
      if (device != nullptr) devices_.push_back(std::move(device));
    }
    default_device_ = choose_default_device(options.default_device);
  } catch (...) {
    release_devices();
    throw;
  }
}

MemoryManager::~MemoryManager() {
  {
    // No user code runs while the manager comes apart.
    const std::lock_guard lock(callbacks_mutex_);
    callbacks_.clear();
  }
  try {
    const LeakReport report = check_leaks();
    if (!report.clean()) {
      report_misuse(
          "MemoryManager destroyed with live buffers (named ones are freed now; unnamed ones must be "
          "destroyed before the manager, their memory goes with it): " +
          report.to_string());
    }
  } catch (const std::exception& e) {
    report_misuse(std::string("MemoryManager: could not check for live buffers at destruction: ") + e.what());
  }
  named_.reset();
  release_devices();
}

std::unique_ptr<MemoryManager::DeviceStacks> MemoryManager::build_stacks(Backend& backend, int index,
                                                                         const DeviceStacks* host) const {
  const DeviceInfo info = backend.device_info(index);
  auto d = std::make_unique<DeviceStacks>();
  d->id = info.id;
  d->backend = &backend;
  d->limit = device_limit(info, config_);
  // A device that reports no memory has no limit to enforce; it is left out rather than made unusable.
  if (d->limit == 0 || !info.capabilities.device_memory) return nullptr;

  auto& device_memory = d->pooled.push<BackendResource>(backend, index, MemoryKind::Device);
  d->pool = &d->pooled.push<HybridPool>(device_memory, pool_options(config_, d->limit));
  d->limiter = &d->pooled.push<LimitingAdaptor>(*d->pool, d->limit);
  d->statistics = &d->pooled.push<StatisticsAdaptor>(*d->limiter);
  MemoryResource* top = d->statistics;
  if (config_.track_allocations) {
    d->tracking = &d->pooled.push<TrackingAdaptor>(*top);
    top = d->tracking;
  }
  PressureOptions pressure;
  pressure.capacity_bytes = d->limit;
  pressure.trim_on_high = config_.trim_on_pressure;
  d->pressure = &d->pooled.push<PressureAdaptor>(*top, pressure);
  d->pressure->on_level_change([this, id = d->id](PressureLevel previous, PressureLevel current) {
    notify_pressure(id, previous, current);
  });
  if (config_.cpu_fallback_enabled && host != nullptr) {
    d->fallback = &d->pooled.push<FallbackAdaptor>(*d->pressure, host->pooled.top());
  }

  auto& unpooled_memory = d->unpooled.push<BackendResource>(backend, index, MemoryKind::Device);
  d->unpooled_limiter = &d->unpooled.push<LimitingAdaptor>(unpooled_memory, d->limit);
  d->unpooled_statistics = &d->unpooled.push<StatisticsAdaptor>(*d->unpooled_limiter);

  if (info.capabilities.pinned_host) {
    auto& pinned_memory = d->pinned.push<BackendResource>(backend, index, MemoryKind::PinnedHost);
    HybridPoolOptions pinned_options;
    pinned_options.small.max_pooled_per_bucket = config_.max_pooled_per_bucket;
    d->pinned_pool = &d->pinned.push<HybridPool>(pinned_memory, pinned_options);
    d->pinned_statistics = &d->pinned.push<StatisticsAdaptor>(*d->pinned_pool);
  }
  if (info.capabilities.unified) {
    auto& unified_memory = d->unified.push<BackendResource>(backend, index, MemoryKind::Unified);
    d->unified_statistics = &d->unified.push<StatisticsAdaptor>(unified_memory);
  }
  return d;
}

void MemoryManager::release_devices() noexcept {
  // The host's stacks go last: the other devices' fallbacks point into them.
  while (!devices_.empty()) devices_.pop_back();
}

MemoryManager::DeviceStacks& MemoryManager::stacks(DeviceId device) const {
  for (const auto& d : devices_) {
    if (d->id == device) return *d;
  }
  std::string known;
  for (const auto& d : devices_) known += (known.empty() ? "" : ", ") + to_string(d->id);
  throw InvalidArgument("MemoryManager: device " + to_string(device) + " is not managed (devices: " + known +
                        ")");
}

DeviceId MemoryManager::choose_default_device(std::optional<DeviceId> requested) const {
  if (requested) return stacks(*requested).id;
  for (const BackendKind kind : {BackendKind::Cuda, BackendKind::OpenCL, BackendKind::Simulated}) {
    for (const auto& d : devices_) {
      if (d->id.backend == kind) return d->id;
    }
  }
  return devices_.front()->id;
}

std::vector<DeviceId> MemoryManager::devices() const {
  std::vector<DeviceId> ids;
  ids.reserve(devices_.size());
  for (const auto& d : devices_) ids.push_back(d->id);
  return ids;
}

DeviceInfo MemoryManager::device_info(DeviceId device) const {
  const DeviceStacks& d = stacks(device);
  return d.backend->device_info(d.id.index);
}

std::size_t MemoryManager::limit(DeviceId device) const {
  return stacks(device).limit;
}

std::size_t MemoryManager::available_bytes(DeviceId device) const {
  return stacks(device).available();
}

MemoryResource& MemoryManager::resource(AllocationMode mode, std::optional<DeviceId> device) {
  DeviceStacks& d = stacks(device.value_or(default_device_));
  switch (mode) {
    case AllocationMode::Pooled:
      return d.pooled.top();
    case AllocationMode::Unpooled:
      return d.unpooled.top();
    case AllocationMode::Pinned:
      if (d.pinned.empty()) {
        throw NotSupported("MemoryManager: " + to_string(d.id) +
                           " serves no pinned host memory (AllocationMode::Pinned)");
      }
      return d.pinned.top();
    case AllocationMode::Unified:
      if (d.unified.empty()) {
        throw NotSupported("MemoryManager: " + to_string(d.id) +
                           " serves no unified memory (AllocationMode::Unified)");
      }
      return d.unified.top();
  }
  throw InvalidArgument("MemoryManager: unknown allocation mode " + std::to_string(static_cast<int>(mode)));
}

MemoryResource& MemoryManager::host_copy_resource(DeviceId device) {
  DeviceStacks& d = stacks(device);
  return d.pinned.empty() ? devices_.front()->pooled.top() : d.pinned.top();  // devices_ starts with the host
}

FallbackAdaptor& MemoryManager::fallback_resource(std::optional<DeviceId> device) {
  DeviceStacks& d = stacks(device.value_or(default_device_));
  if (!config_.cpu_fallback_enabled) {
    throw NotSupported("MemoryManager: CPU fallback is off (MemoryConfig.cpu_fallback_enabled = false), so " +
                       to_string(d.id) + " has no fallback");
  }
  if (d.fallback == nullptr) {
    throw NotSupported("MemoryManager: " + to_string(d.id) +
                       " is the host, where fallbacks go; it has no fallback");
  }
  return *d.fallback;
}

void MemoryManager::throw_out_of_memory(const OutOfMemory& failure, AllocationMode mode,
                                        DeviceId device) const {
  const DeviceStacks& d = stacks(device);
  const MemoryResource* pool = mode == AllocationMode::Pooled   ? d.pool
                               : mode == AllocationMode::Pinned ? d.pinned_pool
                                                                : nullptr;
  if (pool == nullptr) throw failure;  // no pool between the request and the backend: nothing to add
  const ResourceUsage usage = pool->usage();
  const std::string stack = mode == AllocationMode::Pinned ? "pinned" : "pooled";
  throw OutOfMemory(failure.requested(), failure.device(), failure.free_bytes(), failure.total_bytes(),
                    std::string(mode == AllocationMode::Pinned ? "the pinned pool on " : "the pool on ") +
                        to_string(d.id) + " holds " + std::to_string(usage.reserved_bytes) + " bytes, " +
                        std::to_string(usage.in_use_bytes) + " in use, largest free range " +
                        std::to_string(usage.largest_free_range) + " bytes (" +
                        format_bytes(usage.largest_free_range) + "), fragmentation " +
                        format_fraction(usage.fragmentation()) + "; cause: " + failure.what() +
                        write_oom_snapshot(failure, d.id, stack));
}

std::string MemoryManager::write_oom_snapshot(const OutOfMemory& failure, DeviceId device,
                                              const std::string& stack) const {
  if (config_.oom_snapshot_path.empty()) return {};
  // The OutOfMemory is what the caller needs to see: a snapshot that cannot be taken or written is named in
  // it, not thrown instead of it.
  try {
    MemorySnapshot taken = snapshot();
    taken.failed_request = FailedRequest{failure.requested(), device, stack, failure.what()};
    write_snapshot(taken, config_.oom_snapshot_path);
    return "; snapshot written to " + config_.oom_snapshot_path;
  } catch (const std::exception& e) {
    return "; no snapshot written: " + std::string(e.what());
  }
}

MemorySnapshot MemoryManager::snapshot() const {
  MemorySnapshot taken;
  for (const auto& d : devices_) {
    // From the PressureAdaptor down: above it, a device's FallbackAdaptor leads to the host's stack.
    taken.stacks.push_back(StackSnapshot{"pooled", d->limit, d->pressure->level(), d->statistics->stats(),
                                         snapshot_of(*d->pressure)});
    if (d->pinned_pool != nullptr) {
      taken.stacks.push_back(StackSnapshot{"pinned", 0, PressureLevel::Low, d->pinned_statistics->stats(),
                                           snapshot_of(d->pinned.top())});
    }
  }
  return taken;
}

DeviceId MemoryManager::import_target(std::size_t bytes, std::optional<DeviceId> device) const {
  if (bytes == 0) throw InvalidArgument("MemoryManager::import_host: no data to import (0 bytes)");
  return stacks(device.value_or(default_device_)).id;
}

void MemoryManager::check_owned(const MemoryResource* resource, std::string_view operation) const {
  if (resource == nullptr) {
    throw InvalidArgument("MemoryManager::" + std::string(operation) +
                          ": the buffer is empty (moved from, or never allocated)");
  }
  for (const auto& d : devices_) {
    if (d->owns(*resource)) return;
  }
  throw InvalidArgument("MemoryManager::" + std::string(operation) + ": the buffer on " +
                        to_string(resource->device()) + " did not come from this manager");
}

MemoryStats MemoryManager::stats() const {
  MemoryStats sum;
  for (const auto& d : devices_) sum += d->stats();
  return sum;
}

MemoryStats MemoryManager::stats(DeviceId device) const {
  return stacks(device).stats();
}

PressureLevel MemoryManager::pressure(DeviceId device) const {
  return stacks(device).pressure->level();
}

LargePoolKind MemoryManager::large_pool_kind(DeviceId device) const {
  return stacks(device).pool->large_kind();
}

std::uint64_t MemoryManager::on_pressure_change(PressureCallback callback) {
  if (!callback) throw InvalidArgument("MemoryManager::on_pressure_change: empty callback");
  auto shared = std::make_shared<const PressureCallback>(std::move(callback));
  const std::lock_guard lock(callbacks_mutex_);
  const std::uint64_t id = next_callback_id_++;
  callbacks_.emplace_back(id, std::move(shared));
  return id;
}

bool MemoryManager::remove_pressure_callback(std::uint64_t id) {
  const std::lock_guard lock(callbacks_mutex_);
  const auto it = std::find_if(callbacks_.begin(), callbacks_.end(),
                               [id](const auto& entry) { return entry.first == id; });
  if (it == callbacks_.end()) return false;
  callbacks_.erase(it);
  return true;
}

void MemoryManager::notify_pressure(DeviceId device, PressureLevel previous, PressureLevel current) const {
  // Called by a PressureAdaptor, which reports what escapes (a throwing callback included).
  if (NamedBuffers::defer_pressure_change(*this, device, previous, current)) return;
  std::vector<std::shared_ptr<const PressureCallback>> to_notify;
  {
    const std::lock_guard lock(callbacks_mutex_);
    to_notify.reserve(callbacks_.size());
    for (const auto& entry : callbacks_) to_notify.push_back(entry.second);
  }
  for (const auto& callback : to_notify) (*callback)(device, previous, current);
}

std::size_t MemoryManager::trim() {
  std::size_t released = 0;
  for (const auto& d : devices_) released += d->trim();
  return released;
}

std::size_t MemoryManager::trim(DeviceId device) {
  return stacks(device).trim();
}

std::size_t MemoryManager::trim(PressureLevel at_least) {
  std::size_t released = 0;
  for (const auto& d : devices_) {
    if (d->pressure->level() >= at_least) released += d->trim();
  }
  return released;
}

LeakReport MemoryManager::check_leaks() const {
  LeakReport report;
  // The host buffers of named downloads belong to their named buffer: they are not unnamed allocations.
  std::vector<NamedBuffers::DownloadMemory> downloads;
  report.named = named_->records(downloads);
  for (const DeviceId device : devices()) {
    const MemoryStats s = stats(device);
    std::uint64_t named_count = 0;
    std::size_t named_bytes = 0;
    for (const NamedBufferRecord& record : report.named) {
      if (record.device != device) continue;
      ++named_count;
      named_bytes += record.bytes;
    }
    for (const NamedBuffers::DownloadMemory& buffers : downloads) {
      if (buffers.device != device) continue;
      named_count += 2;
      named_bytes += 2 * buffers.bytes_each;
    }
    if (s.active_buffers > named_count) {
      report.unnamed.push_back(UnnamedAllocations{device, s.active_buffers - named_count,
                                                  s.in_use_bytes - std::min(s.in_use_bytes, named_bytes)});
    }
  }
  return report;
}

std::string MemoryManager::leak_report() const {
  std::string report = check_leaks().to_string();
  for (const auto& d : devices_) {
    if (d->tracking != nullptr && d->tracking->live_count() != 0) {
      report += "\n" + to_string(d->id) + " pooled allocations: " + d->tracking->leak_report();
    }
  }
  return report;
}

BackendSelection MemoryManager::select_backend_for_model(std::size_t bytes) const {
  if (bytes == 0) throw InvalidArgument("MemoryManager::select_backend_for_model: a model of 0 bytes");
  const DeviceStacks* roomiest = nullptr;
  std::size_t most = 0;
  for (const BackendKind kind :
       {BackendKind::Cuda, BackendKind::OpenCL, BackendKind::Simulated, BackendKind::Host}) {
    for (const auto& d : devices_) {
      if (d->id.backend != kind) continue;
      const std::size_t available = d->available();
      if (available >= bytes) return BackendSelection{kind, d->id, available};
      if (roomiest == nullptr || available > most) {
        roomiest = d.get();
        most = available;
      }
    }
  }
  throw OutOfMemory(bytes, to_string(roomiest->id), most, roomiest->limit,
                    "no device can hold the model; the most room is on " + to_string(roomiest->id) + ": " +
                        std::to_string(most) + " bytes = min(limit " + std::to_string(roomiest->limit) +
                        " - live " + std::to_string(roomiest->live_bytes()) + ", free now " +
                        std::to_string(roomiest->backend->memory_info(roomiest->id.index).free_bytes) + ")");
}

}  // namespace unimem
