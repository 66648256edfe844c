#pragma once
// FallbackAdaptor: allocates from a primary resource and, when the primary is out of memory, from a secondary
// one (typically host memory behind a device pool), counting each fallback. The adaptor presents the
// primary's backend, device and kind; usage() is the sum of both sides plus its own fallback count.
//
// A free goes back to the side that made the allocation. The adaptor remembers the secondary's live
// allocations (by AllocationKey; fallbacks are rare, and with none live a free costs one atomic load), and
// sends everything else to the primary, which rejects what it did not hand out. The allocation's segment is
// never read, since a stale handle's segment may have been given back by a trim. The two resources must
// differ in backend, device or kind (InvalidArgument otherwise), so that their allocations never share a
// segment.
//
// Streams: the primary's stream is passed on to the secondary only when it belongs to the secondary's backend
// and device. Otherwise the secondary allocates in host order, and a free on such a stream first waits for
// the stream, since the secondary cannot order the free after work queued there.
//
// Thread-safe when both resources are; the fallback count is an atomic.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_set>

#include "unimem/resource/resource_adaptor.hpp"

namespace unimem {

class FallbackAdaptor final : public ResourceAdaptor {
 public:
  FallbackAdaptor(MemoryResource& primary, MemoryResource& secondary);

  [[nodiscard]] MemoryResource& primary() const noexcept { return upstream(); }
  [[nodiscard]] MemoryResource& secondary() const noexcept { return *secondary_; }
  // Allocations served by the secondary so far.
  [[nodiscard]] std::uint64_t fallback_count() const noexcept {
    return fallbacks_.load(std::memory_order_relaxed);
  }
  // True when `allocation` is live in the secondary resource.
  [[nodiscard]] bool is_fallback(const Allocation& allocation) const;

 private:
  Allocation do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) override;
  bool do_deallocate(const Allocation& allocation, Stream* stream) noexcept override;
  std::size_t do_trim() override;
  ResourceUsage do_usage() const override;

  // The stream to give the secondary: `stream` when the secondary can order work on it, else nullptr.
  [[nodiscard]] Stream* secondary_stream(Stream* stream) const noexcept;

  MemoryResource* secondary_;
  std::atomic<std::uint64_t> fallbacks_{0};
  mutable std::mutex mutex_;  // guards fallback_live_
  std::unordered_set<AllocationKey, AllocationKeyHash> fallback_live_;
  std::atomic<std::size_t> fallback_live_count_{0};  // fallback_live_.size(), read without the lock
};

}  // namespace unimem
