#pragma once
// HybridPool: small requests to a SizeClassPool (fast, per-thread caches), the rest to a CoalescingPool
// (tight packing of large ranges), both over the same upstream. A free goes to the pool its size was routed
// to, so the two pools never see each other's allocations. usage() sums the two; trim() trims both.
//
// The default threshold comes from replaying real training traces (docs/architecture.md, "Pools"): small
// requests are many but hold few bytes, so rounding them to powers of two costs little memory, while every
// byte of the large ones is packed by the coalescing pool.

#include <cstddef>

#include "unimem/core/size.hpp"
#include "unimem/resource/coalescing_pool.hpp"
#include "unimem/resource/size_class_pool.hpp"

namespace unimem {

struct HybridPoolOptions {
  std::size_t small_threshold = MiB;  // requests of at most this many bytes go to the size-class pool
  SizeClassPoolOptions small{};
  CoalescingPoolOptions large{};
};

class HybridPool final : public MemoryResource {
 public:
  // Throws InvalidArgument for a zero threshold or one above small.max_block, and whatever the two pools'
  // constructors throw for their options.
  explicit HybridPool(MemoryResource& upstream, HybridPoolOptions options = {});

  [[nodiscard]] SizeClassPool& small_pool() noexcept { return small_; }
  [[nodiscard]] CoalescingPool& large_pool() noexcept { return large_; }
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
  CoalescingPool large_;
};

}  // namespace unimem
