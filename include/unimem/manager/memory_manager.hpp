#pragma once
// MemoryManager: one object that owns the backends, builds the usual resource stack for every device and
// kind of memory from a MemoryConfig, and hands out buffers from them: unnamed RAII Buffer<T>s here, and
// named ones (kept by the manager, looked up, grown and freed by name) through named(). It aggregates
// statistics and pressure, falls back to host memory when a device is full, and picks a device for a model.
// docs/manager.md describes the stacks, the limits and every policy.
//
//   MemoryManager manager;  // MemoryConfig::from_environment(), every device found
//   Buffer<float> x = manager.allocate<float>(1 << 20);  // pooled, on the default device
//   manager.named().create<float>("kv_cache", 4096, BufferConfig::growable());
//   manager.named().grow<float>("kv_cache", 8192);  // grows, keeps the contents
//
// Lifetime: buffers hold the manager's resources by reference. Destroying or resetting a Buffer gives its
// memory back to the pool (release() says so explicitly); unnamed buffers must be destroyed before the
// manager. Destroying the manager with live buffers reports them (report_misuse) and frees the named ones;
// the memory of unnamed ones is gone, and using or destroying them afterwards is undefined.
//
// Thread-safe: the stacks are thread-safe, the named buffers sit behind one mutex (named_buffers.hpp), the
// pressure subscribers behind another. A pressure callback runs on the thread whose allocation or free
// changed the level, with no unimem mutex held (a change caused inside a named-buffer call is delivered just
// before that call returns), so a callback may call any of the manager's functions.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "unimem/backend/backend_registry.hpp"
#include "unimem/backend/device_info.hpp"
#include "unimem/backend/platform.hpp"
#include "unimem/buffer/buffer.hpp"
#include "unimem/buffer/buffer_view.hpp"
#include "unimem/buffer/element_type.hpp"
#include "unimem/buffer/fallback_buffer.hpp"
#include "unimem/buffer/mirrored_buffer.hpp"
#include "unimem/buffer/raw_buffer.hpp"
#include "unimem/buffer/transfer_future.hpp"
#include "unimem/core/error.hpp"
#include "unimem/manager/buffer_config.hpp"
#include "unimem/manager/imported_buffer.hpp"
#include "unimem/manager/leak_report.hpp"
#include "unimem/manager/memory_config.hpp"
#include "unimem/manager/memory_snapshot.hpp"
#include "unimem/manager/named_buffers.hpp"
#include "unimem/resource/fallback_adaptor.hpp"
#include "unimem/resource/memory_stats.hpp"
#include "unimem/resource/pressure_adaptor.hpp"

namespace unimem {

struct ManagerOptions {
  MemoryConfig config = MemoryConfig::from_environment();
  BackendRegistryOptions registry;         // simulated devices to add
  std::optional<DeviceId> default_device;  // empty: first CUDA, else OpenCL, else simulated device, else host
  std::optional<PlatformInfo> platform;    // empty: detect_platform(); tests inject one
};

// Where select_backend_for_model would put a model.
struct BackendSelection {
  BackendKind backend = BackendKind::Host;
  DeviceId device;
  std::size_t available_bytes = 0;  // what the device has room for now (MemoryManager::available_bytes)
};

class MemoryManager {
 public:
  using PressureCallback =
      std::function<void(DeviceId device, PressureLevel previous, PressureLevel current)>;

  // Validates the config (InvalidArgument naming the field), discovers every device of every backend and
  // builds its stacks. Throws InvalidArgument when options.default_device is not one of them.
  explicit MemoryManager(ManagerOptions options = {});
  // Reports live buffers (report_misuse; never throws), frees the named ones, then tears the stacks down.
  ~MemoryManager();
  MemoryManager(const MemoryManager&) = delete;
  MemoryManager& operator=(const MemoryManager&) = delete;
  MemoryManager(MemoryManager&&) = delete;
  MemoryManager& operator=(MemoryManager&&) = delete;

  // ---- devices ----
  [[nodiscard]] const MemoryConfig& config() const noexcept { return config_; }
  // Memory visibility of this platform: injected through ManagerOptions, or detected.
  [[nodiscard]] const PlatformInfo& platform() const noexcept { return platform_; }
  [[nodiscard]] BackendRegistry& registry() const noexcept { return *registry_; }
  // Every managed device, the host first.
  [[nodiscard]] std::vector<DeviceId> devices() const;
  [[nodiscard]] DeviceId default_device() const noexcept { return default_device_; }
  // The backend's description, with memory figures read now. Throws InvalidArgument for a device the manager
  // does not manage (as every function taking a DeviceId does).
  [[nodiscard]] DeviceInfo device_info(DeviceId device) const;
  // The device's byte limit: fraction x total - min_free (host: total - min_free), min_free clamped to half
  // of the first term, capped by memory_limit_bytes (docs/manager.md).
  [[nodiscard]] std::size_t limit(DeviceId device) const;
  // What the device has room for now: min(limit - bytes live through the manager, free memory reported now).
  [[nodiscard]] std::size_t available_bytes(DeviceId device) const;

  // ---- resources ----
  // The top of the stack serving `mode` on `device` (default: the default device), for building buffers,
  // tensors or workspaces of one's own. Throws NotSupported naming the device for pinned or unified memory
  // where the device serves none.
  [[nodiscard]] MemoryResource& resource(AllocationMode mode = AllocationMode::Pooled,
                                         std::optional<DeviceId> device = {});
  // The pooled stack's FallbackAdaptor. Throws NotSupported naming MemoryConfig.cpu_fallback_enabled when
  // fallback is off, or the device when it is the host (the host is where fallbacks go).
  [[nodiscard]] FallbackAdaptor& fallback_resource(std::optional<DeviceId> device = {});

  // ---- unnamed buffers ----
  // `count` elements of T. Pooled buffers fall back to host memory when the device is full and fallback is
  // on (then device() is the host). OutOfMemory keeps the requested bytes, device, free and total of the
  // failure and adds the pool's reserved, in-use and largest free range, so that fragmentation shows.
  template <typename T>
  [[nodiscard]] Buffer<T> allocate(std::size_t count, AllocationMode mode = AllocationMode::Pooled,
                                   std::optional<DeviceId> device = {}) {
    MemoryResource& from = resource(mode, device);
    try {
      return Buffer<T>(from, count);
    } catch (const OutOfMemory& e) {
      throw_out_of_memory(e, mode, from.device());
    }
  }
  // A pooled buffer that says whether it fell back and where it lives (fell_back(), location()). Throws as
  // fallback_resource() does when there is no fallback.
  template <typename T>
  [[nodiscard]] FallbackBuffer<T> allocate_with_fallback(std::size_t count,
                                                         std::optional<DeviceId> device = {}) {
    FallbackAdaptor& from = fallback_resource(device);
    try {
      return FallbackBuffer<T>(from, count);
    } catch (const OutOfMemory& e) {
      throw_out_of_memory(e, AllocationMode::Pooled, from.device());
    }
  }
  // `count` elements of T on `device`'s pool (the default device when empty), mirrored in host memory: the
  // device's pinned memory where it serves some, the host's pool otherwise (see MirroredBuffer). Throws as
  // allocate() does.
  template <typename T>
  [[nodiscard]] MirroredBuffer<T> allocate_mirrored(std::size_t count, std::optional<DeviceId> device = {}) {
    MemoryResource& on_device = resource(AllocationMode::Pooled, device);
    try {
      return MirroredBuffer<T>(on_device, host_copy_resource(on_device.device()), count);
    } catch (const OutOfMemory& e) {
      throw_out_of_memory(e, AllocationMode::Pooled, on_device.device());
    }
  }
  // Makes host data available on `device`: zero-copy on the host device, a copy into a pooled buffer
  // elsewhere (see ImportedBuffer). Throws InvalidArgument for empty data.
  template <typename T>
  [[nodiscard]] ImportedBuffer<T> import_host(std::span<T> data, std::optional<DeviceId> device = {}) {
    const DeviceId target = import_target(data.size_bytes(), device);
    if (target.backend == BackendKind::Host) return ImportedBuffer<T>(data, target);
    Buffer<T> copy = allocate<T>(data.size(), AllocationMode::Pooled, target);
    copy.copy_from_host(data);
    return ImportedBuffer<T>(data, std::move(copy));
  }
  // Gives the buffer's memory back to its pool now (what destroying or resetting it does). Throws
  // InvalidArgument for an empty buffer or one that did not come from this manager; the buffer is then left
  // as it was.
  template <typename T>
  void release(Buffer<T>&& buffer) {
    check_owned(buffer.empty() ? nullptr : &buffer.resource(), "release");
    const Buffer<T> released(std::move(buffer));
  }

  // ---- statistics, pressure, pools ----
  // All devices and kinds of memory together (peak_bytes: the sum of the stacks' peaks, an upper bound).
  [[nodiscard]] MemoryStats stats() const;
  // One device, every kind of memory; fallbacks counts its pooled allocations the host served (their
  // bytes are in the host's figures).
  [[nodiscard]] MemoryStats stats(DeviceId device) const;
  // From the bytes live through the device's pooled stack over its limit (PressureAdaptor).
  [[nodiscard]] PressureLevel pressure(DeviceId device) const;
  // Which pool serves large pooled requests on `device` (Coalescing or Expandable; MemoryConfig.large_pool).
  // Throws InvalidArgument for a device the manager does not have.
  [[nodiscard]] LargePoolKind large_pool_kind(DeviceId device) const;
  // Calls `callback` on every level change of every device; returns an id for remove_pressure_callback.
  // Throws InvalidArgument for an empty function. See the header comment for the thread it runs on.
  std::uint64_t on_pressure_change(PressureCallback callback);
  // False for an unknown id.
  bool remove_pressure_callback(std::uint64_t id);
  // Every pooled and pinned stack of every device: segments, ranges (with id, tag and age when
  // MemoryConfig.track_allocations is on), statistics, limit and pressure (memory_snapshot.hpp). Take it
  // while no other thread allocates: the size-class pools' thread caches are read without a lock.
  [[nodiscard]] MemorySnapshot snapshot() const;
  // Every pool of every device and kind gives its cached memory back to the backend; the bytes released.
  std::size_t trim();
  // The same for one device, whatever its pressure.
  std::size_t trim(DeviceId device);
  // The same for the devices at `at_least` pressure or above only (PressureLevel::Medium: the devices
  // filling up).
  std::size_t trim(PressureLevel at_least);
  // check_leaks().to_string(), then each device's TrackingAdaptor report (per allocation: id, tag, size,
  // age) when MemoryConfig.track_allocations is on. Named buffers are tagged with their name.
  [[nodiscard]] std::string leak_report() const;
  // Live named buffers and, per device, live allocations that are not named buffers.
  [[nodiscard]] LeakReport check_leaks() const;

  // ---- selection ----
  // The first device, in the order CUDA, OpenCL, simulated, host (devices of a backend in index order), whose
  // available_bytes() hold `bytes`. Throws InvalidArgument for 0 bytes, OutOfMemory naming the device with
  // the most room and its figures when none has enough.
  [[nodiscard]] BackendSelection select_backend_for_model(std::size_t bytes) const;

  // ---- named buffers ----
  // The buffers this manager keeps by name (named_buffers.hpp); they live as long as the manager.
  [[nodiscard]] NamedBuffers& named() noexcept { return *named_; }
  [[nodiscard]] const NamedBuffers& named() const noexcept { return *named_; }

 private:
  // It allocates from the stacks, adds the pool's figures to its OutOfMemory and defers pressure changes.
  friend class NamedBuffers;
  struct DeviceStacks;

  [[nodiscard]] std::unique_ptr<DeviceStacks> build_stacks(Backend& backend, int index,
                                                           const DeviceStacks* host) const;
  void release_devices() noexcept;
  [[nodiscard]] DeviceStacks& stacks(DeviceId device) const;
  [[nodiscard]] DeviceId choose_default_device(std::optional<DeviceId> requested) const;
  void notify_pressure(DeviceId device, PressureLevel previous, PressureLevel current) const;

  [[noreturn]] void throw_out_of_memory(const OutOfMemory& failure, AllocationMode mode,
                                        DeviceId device) const;
  // Writes the OOM snapshot when MemoryConfig.oom_snapshot_path is set; the text the OutOfMemory adds.
  [[nodiscard]] std::string write_oom_snapshot(const OutOfMemory& failure, DeviceId device,
                                               const std::string& stack) const;
  [[nodiscard]] DeviceId import_target(std::size_t bytes, std::optional<DeviceId> device) const;
  void check_owned(const MemoryResource* resource, std::string_view operation) const;

  // Where a mirror or a download of memory on `device` keeps its host copy: pinned memory of the device
  // where it serves some, the host's pool otherwise.
  [[nodiscard]] MemoryResource& host_copy_resource(DeviceId device);

  MemoryConfig config_;
  PlatformInfo platform_;
  std::unique_ptr<BackendRegistry> registry_;

  mutable std::mutex callbacks_mutex_;
  std::vector<std::pair<std::uint64_t, std::shared_ptr<const PressureCallback>>> callbacks_;
  std::uint64_t next_callback_id_ = 1;

  std::vector<std::unique_ptr<DeviceStacks>> devices_;  // the host first: the others fall back to it
  DeviceId default_device_;
  std::unique_ptr<NamedBuffers> named_;
};

}  // namespace unimem
