#include "unimem/resource/hybrid_pool.hpp"

#include <algorithm>
#include <iterator>
#include <string>

#include "unimem/core/error.hpp"
#include "unimem/resource/backend_resource.hpp"

namespace unimem {

std::string_view to_string(LargePoolKind kind) noexcept {
  switch (kind) {
    case LargePoolKind::Automatic:
      return "auto";
    case LargePoolKind::Coalescing:
      return "coalescing";
    case LargePoolKind::Expandable:
      return "expandable";
  }
  return "unknown";
}

LargePoolKind automatic_large_pool(const MemoryResource& upstream) {
  const bool direct = dynamic_cast<const BackendResource*>(&upstream) != nullptr;
  if (!direct || upstream.kind() != MemoryKind::Device) return LargePoolKind::Coalescing;
  return automatic_large_pool(upstream.backend().device_info(upstream.device().index));
}

LargePoolKind automatic_large_pool(const DeviceInfo& info) noexcept {
  const bool roomy =
      info.memory.total_bytes / ExpandablePool::default_granule(info) >= kMinimumExpandableGranules;
  return info.capabilities.virtual_memory && roomy ? LargePoolKind::Expandable : LargePoolKind::Coalescing;
}

namespace {
HybridPoolOptions resolved(HybridPoolOptions options, LargePoolKind large_kind) {
  if (options.small_threshold == 0) {
    options.small_threshold =
        large_kind == LargePoolKind::Expandable ? kExpandableSmallThreshold : kCoalescingSmallThreshold;
  }
  if (options.small_threshold > options.small.max_block) {
    throw InvalidArgument("HybridPool: small threshold " + std::to_string(options.small_threshold) +
                          " is above the size-class pool's max_block " +
                          std::to_string(options.small.max_block));
  }
  options.large_kind = large_kind;
  return options;
}

LargePoolKind chosen_kind(const HybridPoolOptions& options, const MemoryResource& upstream) {
  return options.large_kind == LargePoolKind::Automatic ? automatic_large_pool(upstream) : options.large_kind;
}
}  // namespace

HybridPool::HybridPool(MemoryResource& upstream, HybridPoolOptions options)
    : MemoryResource(upstream.backend(), upstream.device(), upstream.kind()),
      options_(resolved(options, chosen_kind(options, upstream))),
      small_(upstream, options_.small),
      large_kind_(options_.large_kind) {
  if (large_kind_ == LargePoolKind::Coalescing) {
    coalescing_ = std::make_unique<CoalescingPool>(upstream, options_.large);
    large_ = coalescing_.get();
    return;
  }
  auto* direct = dynamic_cast<BackendResource*>(&upstream);
  if (direct == nullptr) {
    throw NotSupported(
        "HybridPool: an expandable large pool maps device memory itself, so its upstream must "
        "be the backend (a BackendResource), not an adaptor it would bypass");
  }
  expandable_ = std::make_unique<ExpandablePool>(*direct, options_.expandable);
  large_ = expandable_.get();
}

HybridPool::~HybridPool() = default;

Allocation HybridPool::do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) {
  return bytes <= options_.small_threshold ? allocate_checked(small_, bytes, stream, alignment)
                                           : allocate_checked(*large_, bytes, stream, alignment);
}

bool HybridPool::do_deallocate(const Allocation& allocation, Stream* stream) noexcept {
  return allocation.size <= options_.small_threshold ? small_.deallocate(allocation, stream)
                                                     : large_->deallocate(allocation, stream);
}

std::size_t HybridPool::do_trim() {
  return small_.trim() + large_->trim();
}

ResourceUsage HybridPool::do_usage() const {
  ResourceUsage usage = small_.usage();
  usage += large_->usage();
  return usage;
}

}  // namespace unimem

namespace unimem {

PoolSnapshot HybridPool::snapshot() const {
  PoolSnapshot whole = coalescing_ ? coalescing_->snapshot() : expandable_->snapshot();
  PoolSnapshot small = small_.snapshot();
  whole.usage = usage();
  whole.segments.insert(whole.segments.end(), std::make_move_iterator(small.segments.begin()),
                        std::make_move_iterator(small.segments.end()));
  std::sort(whole.segments.begin(), whole.segments.end(),
            [](const SegmentSnapshot& a, const SegmentSnapshot& b) { return a.id < b.id; });
  return whole;
}

}  // namespace unimem
