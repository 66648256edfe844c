#pragma once
// MemoryConfig: what the MemoryManager builds for each device. Presets, a fluent builder, validation that
// names the offending field, and configuration from the environment (UNIMEM_CONF), as PyTorch users set
// PYTORCH_ALLOC_CONF.

#include <cstddef>
#include <string>
#include <string_view>

#include "unimem/resource/hybrid_pool.hpp"

namespace unimem {

struct MemoryConfig {
  // Share of each device's total memory the manager may use (0, 1].
  double gpu_memory_fraction = 0.9;
  // On device out-of-memory, hand out host memory instead (a FallbackBuffer that says where it lives).
  bool cpu_fallback_enabled = true;
  // Memory left untouched on each device for the driver and other programs: the device limit is
  // fraction x total - min_free_bytes.
  std::size_t min_free_bytes = std::size_t{512} << 20U;
  // Record every allocation (id, tag, size, age) for leak reports. On in debug builds.
#ifdef NDEBUG
  bool track_allocations = false;
#else
  bool track_allocations = true;
#endif
  // Cached blocks per size class in the small-object pool.
  std::size_t max_pooled_per_bucket = 8;
  // A cap on bytes live through the manager on each device (0: none beyond the device limit).
  std::size_t memory_limit_bytes = 0;
  // Coalescing pool growth: first segment, growth factor, and a cap on bytes reserved (0: the device limit).
  std::size_t initial_pool_bytes = 0;
  double pool_growth_factor = 2.0;
  std::size_t max_pool_bytes = 0;
  // The large-object pool: Automatic is an ExpandablePool where the device has virtual memory, else a
  // CoalescingPool (hybrid_pool.hpp). pool_granule is the expandable pool's mapping unit (0: its default).
  LargePoolKind large_pool = LargePoolKind::Automatic;
  std::size_t pool_granule = 0;
  // Give cached memory back to the device when its pressure reaches High.
  bool trim_on_pressure = false;
  // When an allocation fails with OutOfMemory, write MemoryManager::snapshot() with the failing request to
  // this file (docs/snapshot.md) and name it in the error; empty: none. UNIMEM_CONF key oom_snapshot=PATH.
  std::string oom_snapshot_path;

  // The presets. defaults(): the fields above. for_inference(): use as much as allowed, large pools, no
  // trimming. for_constrained(): small pools, aggressive trimming, a lower fraction.
  [[nodiscard]] static MemoryConfig defaults();
  [[nodiscard]] static MemoryConfig for_inference();
  [[nodiscard]] static MemoryConfig for_constrained();

  // Fluent builder: each returns a modified copy, e.g.
  // MemoryConfig::defaults().with_gpu_memory_fraction(0.8).
  [[nodiscard]] MemoryConfig with_gpu_memory_fraction(double fraction) const;
  [[nodiscard]] MemoryConfig with_cpu_fallback(bool enabled) const;
  [[nodiscard]] MemoryConfig with_min_free_bytes(std::size_t bytes) const;
  [[nodiscard]] MemoryConfig with_tracking(bool enabled) const;
  [[nodiscard]] MemoryConfig with_max_pooled_per_bucket(std::size_t blocks) const;
  [[nodiscard]] MemoryConfig with_memory_limit(std::size_t bytes) const;
  [[nodiscard]] MemoryConfig with_pool_growth(std::size_t initial_bytes, double factor,
                                              std::size_t max_bytes) const;
  [[nodiscard]] MemoryConfig with_trim_on_pressure(bool enabled) const;
  [[nodiscard]] MemoryConfig with_large_pool(LargePoolKind kind, std::size_t granule = 0) const;
  // Throws InvalidArgument for an empty path.
  [[nodiscard]] MemoryConfig with_oom_snapshot(std::string path) const;

  // Throws InvalidArgument naming the field and its value: a fraction outside (0, 1], a growth factor outside
  // [1, 16], a size above 1 PiB, max_pooled_per_bucket above 1024, max_pool_bytes below initial_pool_bytes.
  void validate() const;

  // Applies "key=value,key=value" over `base` and validates the result. Keys: preset (defaults | inference |
  // constrained; applied first), fraction, fallback (on/off), min_free, track (on/off),
  // max_pooled_per_bucket, limit, initial_pool, growth, max_pool, large_pool (auto | coalescing |
  // expandable), granule, trim_on_pressure (on/off), oom_snapshot. Sizes take units
  // ("512MiB"). Unknown keys, repeated keys and bad values throw InvalidArgument naming them.
  [[nodiscard]] static MemoryConfig parse(std::string_view text, const MemoryConfig& base = defaults());
  // parse(getenv("UNIMEM_CONF")) over `base`; `base` unchanged when the variable is unset or empty.
  [[nodiscard]] static MemoryConfig from_environment(const MemoryConfig& base = defaults());

  // "fraction=0.9,fallback=on,..." : the same keys parse() reads, so that to_string() round-trips.
  [[nodiscard]] std::string to_string() const;

  friend bool operator==(const MemoryConfig&, const MemoryConfig&) = default;
};

}  // namespace unimem
