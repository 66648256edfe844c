#pragma once
// HybridPool: small requests to a SizeClassPool (fast, per-thread caches), the rest to a pool that packs
// large ranges tightly, both over the same upstream. A free goes to the pool its size was routed to, so the
// two pools never see each other's allocations. usage() sums the two; trim() trims both.
//
// The large pool is an ExpandablePool where the upstream is the backend itself (a BackendResource of device
// memory) on a device with virtual memory: its free ranges always coalesce, and idle granules go back to the
// device, and the device holds at least kMinimumExpandableGranules of its default granule (on a smaller one,
// rounding requests to whole granules would cost a large share of it). Elsewhere it is a CoalescingPool (an
// adaptor between the pool and the backend would be bypassed by mapping, and devices without virtual memory
// cannot map). LargePoolKind chooses explicitly.
//
// The threshold (docs/architecture.md, "HybridPool and its threshold"): a size class rounds a request up to a
// power of two, wasting up to half its block, in exchange for a hit of a few dozen instructions. Over an
// expandable large pool, which places requests exactly and whose small ranges cannot shatter anything (its
// free ranges always coalesce), only requests of at most 64 KiB take that trade: each wastes under 32 KiB,
// 1/64 of a 2 MiB granule. Over a coalescing pool, small ranges among large ones split its segments into
// pieces no large request fits, so requests up to 1 MiB stay out of it.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "unimem/core/size.hpp"
#include "unimem/resource/coalescing_pool.hpp"
#include "unimem/resource/expandable_pool.hpp"
#include "unimem/resource/size_class_pool.hpp"

namespace unimem {

enum class LargePoolKind : std::uint8_t { Automatic, Coalescing, Expandable };

inline constexpr std::size_t kExpandableSmallThreshold = 64 * KiB;
inline constexpr std::size_t kCoalescingSmallThreshold = MiB;
inline constexpr std::size_t kMinimumExpandableGranules = 16;

[[nodiscard]] std::string_view to_string(LargePoolKind kind) noexcept;

struct HybridPoolOptions {
  // Requests of at most this many bytes go to the size-class pool. 0: kExpandableSmallThreshold or
  // kCoalescingSmallThreshold, by the large pool's kind.
  std::size_t small_threshold = 0;
  SizeClassPoolOptions small{};
  CoalescingPoolOptions large{};
  LargePoolKind large_kind = LargePoolKind::Automatic;
  ExpandablePoolOptions expandable{};
};

// What LargePoolKind::Automatic becomes over `upstream` (Coalescing or Expandable), and over device memory of
// the device `info` describes, straight from its backend.
[[nodiscard]] LargePoolKind automatic_large_pool(const MemoryResource& upstream);
[[nodiscard]] LargePoolKind automatic_large_pool(const DeviceInfo& info) noexcept;

class HybridPool final : public MemoryResource {
 public:
  // Throws InvalidArgument for a threshold above small.max_block, and whatever the two pools' constructors
  // throw for their options (NotSupported for an expandable pool the upstream cannot carry). options()
  // then holds the threshold in force.
  ~HybridPool() override;
  HybridPool(const HybridPool&) = delete;
  HybridPool& operator=(const HybridPool&) = delete;
  HybridPool(HybridPool&&) = delete;
  HybridPool& operator=(HybridPool&&) = delete;
  explicit HybridPool(MemoryResource& upstream, HybridPoolOptions options = {});

  [[nodiscard]] SizeClassPool& small_pool() noexcept { return small_; }
  [[nodiscard]] MemoryResource& large_pool() noexcept { return *large_; }
  // The large pool's kind (never Automatic) and the pool as its type; nullptr for the other type.
  [[nodiscard]] LargePoolKind large_kind() const noexcept { return large_kind_; }
  [[nodiscard]] CoalescingPool* coalescing_pool() noexcept { return coalescing_.get(); }
  [[nodiscard]] ExpandablePool* expandable_pool() noexcept { return expandable_.get(); }
  [[nodiscard]] const HybridPoolOptions& options() const noexcept { return options_; }
  // Both pools' segments, ordered by segment id, with usage() of the whole.
  [[nodiscard]] PoolSnapshot snapshot() const;

 private:
  Allocation do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) override;
  bool do_deallocate(const Allocation& allocation, Stream* stream) noexcept override;
  std::size_t do_trim() override;
  ResourceUsage do_usage() const override;

  HybridPoolOptions options_;
  SizeClassPool small_;
  LargePoolKind large_kind_;
  std::unique_ptr<CoalescingPool> coalescing_;
  std::unique_ptr<ExpandablePool> expandable_;
  MemoryResource* large_ = nullptr;
};

}  // namespace unimem
