#include "unimem/resource/statistics_adaptor.hpp"

#include <algorithm>

namespace unimem {

namespace {
// Threads take stripes round-robin in the order they first count, so up to kStripes threads never share one.
std::size_t this_thread_stripe() noexcept {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t index =
      next.fetch_add(1, std::memory_order_relaxed) % StatisticsAdaptor::kStripes;
  return index;
}
}  // namespace

Allocation StatisticsAdaptor::do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) {
  const Allocation allocation = ResourceAdaptor::do_allocate(bytes, stream, alignment);
  Stripe& stripe = *stripes_[this_thread_stripe()];
  stripe.allocations.fetch_add(1, std::memory_order_relaxed);
  stripe.allocated_bytes.fetch_add(bytes, std::memory_order_relaxed);
  raise_peak(add_in_use(stripe, static_cast<std::int64_t>(bytes)));
  return allocation;
}

bool StatisticsAdaptor::do_deallocate(const Allocation& allocation, Stream* stream) noexcept {
  if (!ResourceAdaptor::do_deallocate(allocation, stream)) return false;
  Stripe& stripe = *stripes_[this_thread_stripe()];
  stripe.frees.fetch_add(1, std::memory_order_relaxed);
  (void)add_in_use(stripe, -static_cast<std::int64_t>(allocation.size));
  return true;
}

std::int64_t StatisticsAdaptor::add_in_use(Stripe& stripe, std::int64_t delta) noexcept {
  const std::int64_t pending = stripe.pending_in_use.fetch_add(delta, std::memory_order_relaxed) + delta;
  if (pending > kFoldThreshold || pending < -kFoldThreshold) {
    const std::int64_t moved = stripe.pending_in_use.exchange(0, std::memory_order_relaxed);
    return folded_in_use_->fetch_add(moved, std::memory_order_relaxed) + moved;
  }
  return folded_in_use_->load(std::memory_order_relaxed) + pending;
}

std::int64_t StatisticsAdaptor::in_use_now() const noexcept {
  std::int64_t total = folded_in_use_->load(std::memory_order_relaxed);
  for (const auto& stripe : stripes_) total += stripe->pending_in_use.load(std::memory_order_relaxed);
  return total;
}

void StatisticsAdaptor::raise_peak(std::int64_t candidate) const noexcept {
  std::int64_t peak = peak_->load(std::memory_order_relaxed);
  while (candidate > peak && !peak_->compare_exchange_weak(peak, candidate, std::memory_order_relaxed)) {
  }
}

void StatisticsAdaptor::reset_peak() noexcept {
  peak_->store(std::max<std::int64_t>(in_use_now(), 0));
}

MemoryStats StatisticsAdaptor::stats() const {
  MemoryStats stats;
  for (const auto& stripe : stripes_) {
    stats.total_allocated_bytes += stripe->allocated_bytes.load(std::memory_order_relaxed);
    stats.allocation_count += stripe->allocations.load(std::memory_order_relaxed);
    stats.free_count += stripe->frees.load(std::memory_order_relaxed);
  }
  // Under concurrency the sums are read one stripe at a time, so a free may be seen before its allocation.
  const std::int64_t in_use = std::max<std::int64_t>(in_use_now(), 0);
  raise_peak(in_use);
  stats.in_use_bytes = static_cast<std::size_t>(in_use);
  stats.peak_bytes = static_cast<std::size_t>(peak_->load(std::memory_order_relaxed));
  stats.active_buffers =
      stats.allocation_count > stats.free_count ? stats.allocation_count - stats.free_count : 0;

  const ResourceUsage upstream_usage = upstream().usage();
  stats.pooled_bytes = upstream_usage.reserved_bytes > upstream_usage.in_use_bytes
                           ? upstream_usage.reserved_bytes - upstream_usage.in_use_bytes
                           : 0;
  stats.cache_hits = upstream_usage.cache_hits;
  stats.cache_misses = upstream_usage.cache_misses;
  stats.fallbacks = upstream_usage.fallbacks;
  stats.upstream_allocations = upstream_usage.upstream_allocations;
  stats.upstream_deallocations = upstream_usage.upstream_deallocations;
  return stats;
}

}  // namespace unimem
