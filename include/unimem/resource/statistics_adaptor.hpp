#pragma once
// StatisticsAdaptor: counts what passes through it (bytes and allocations handed out, frees, bytes in use,
// peak) and combines them with its upstream's usage (pooled bytes, hits and misses, fallbacks, segments) into
// a MemoryStats snapshot.
//
// Thread model: no lock and no shared counter on the hot path. Each thread counts into one of kStripes
// cache-line stripes (threads are spread round-robin); stats() sums the stripes. Bytes in use are kept per
// stripe as a signed "pending" figure (a thread may free what another allocated) that is folded into one
// shared count whenever it drifts past kFoldThreshold either way, so the shared line is touched about once
// per megabyte of drift, not once per call.
//
// Peak: after each allocation the thread compares the shared count plus its own stripe's pending bytes with
// the peak. With one thread that is the exact in-use figure, so the peak is exact. With several, the figure
// misses other stripes' unfolded bytes, so the peak is within (kStripes - 1) x kFoldThreshold of the true
// peak; stats() raises it to the in-use figure it reads, so a snapshot never shows a peak below its bytes in
// use. Counts and bytes in use are exact once the threads that allocate and free have finished.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "unimem/core/cache_aligned.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/memory_stats.hpp"
#include "unimem/resource/resource_adaptor.hpp"

namespace unimem {

class StatisticsAdaptor final : public ResourceAdaptor {
 public:
  static constexpr std::size_t kStripes = 16;
  static constexpr std::int64_t kFoldThreshold = static_cast<std::int64_t>(MiB);

  explicit StatisticsAdaptor(MemoryResource& upstream) : ResourceAdaptor(upstream) {}

  [[nodiscard]] MemoryStats stats() const;
  // Starts a new peak from the bytes in use now.
  void reset_peak() noexcept;

 private:
  struct Stripe {
    std::atomic<std::int64_t> pending_in_use{0};  // not yet folded into folded_in_use_; may be negative
    std::atomic<std::uint64_t> allocated_bytes{0};
    std::atomic<std::uint64_t> allocations{0};
    std::atomic<std::uint64_t> frees{0};
  };

  Allocation do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) override;
  bool do_deallocate(const Allocation& allocation, Stream* stream) noexcept override;

  // Adds `delta` to the calling thread's stripe; returns the in-use figure the thread can see.
  std::int64_t add_in_use(Stripe& stripe, std::int64_t delta) noexcept;
  [[nodiscard]] std::int64_t in_use_now() const noexcept;
  void raise_peak(std::int64_t candidate) const noexcept;

  std::array<CacheAligned<Stripe>, kStripes> stripes_;
  CacheAligned<std::atomic<std::int64_t>> folded_in_use_;
  mutable CacheAligned<std::atomic<std::int64_t>> peak_;
};

}  // namespace unimem
