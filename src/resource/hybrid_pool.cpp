#include "unimem/resource/hybrid_pool.hpp"

#include <algorithm>
#include <iterator>
#include <string>

#include "unimem/core/error.hpp"

namespace unimem {

namespace {
const HybridPoolOptions& checked(const HybridPoolOptions& options) {
  if (options.small_threshold == 0 || options.small_threshold > options.small.max_block) {
    throw InvalidArgument("HybridPool: small threshold " + std::to_string(options.small_threshold) +
                          " must be at least 1 and at most the size-class pool's max_block " +
                          std::to_string(options.small.max_block));
  }
  return options;
}
}  // namespace

HybridPool::HybridPool(MemoryResource& upstream, HybridPoolOptions options)
    : MemoryResource(upstream.backend(), upstream.device(), upstream.kind()),
      options_(checked(options)),
      small_(upstream, options_.small),
      large_(upstream, options_.large) {}

Allocation HybridPool::do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) {
  return bytes <= options_.small_threshold ? small_.allocate(bytes, stream, alignment)
                                           : large_.allocate(bytes, stream, alignment);
}

bool HybridPool::do_deallocate(const Allocation& allocation, Stream* stream) noexcept {
  return allocation.size <= options_.small_threshold ? small_.deallocate(allocation, stream)
                                                     : large_.deallocate(allocation, stream);
}

std::size_t HybridPool::do_trim() {
  return small_.trim() + large_.trim();
}

ResourceUsage HybridPool::do_usage() const {
  ResourceUsage usage = small_.usage();
  usage += large_.usage();
  return usage;
}

}  // namespace unimem

namespace unimem {

PoolSnapshot HybridPool::snapshot() const {
  PoolSnapshot whole = large_.snapshot();
  PoolSnapshot small = small_.snapshot();
  whole.usage = usage();
  whole.segments.insert(whole.segments.end(), std::make_move_iterator(small.segments.begin()),
                        std::make_move_iterator(small.segments.end()));
  std::sort(whole.segments.begin(), whole.segments.end(),
            [](const SegmentSnapshot& a, const SegmentSnapshot& b) { return a.id < b.id; });
  return whole;
}

}  // namespace unimem
