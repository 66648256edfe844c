#pragma once
// FallbackAdaptor: allocates from a primary resource and, when the primary is out of memory, from a secondary
// one (typically host memory behind a device pool), counting each fallback. The adaptor presents the
// primary's backend, device and kind; usage() is the sum of both sides plus its own fallback count.
//
// A free goes back to the side that made the allocation, told apart by the allocation's segment (its backend,
// device and memory kind), so the allocating resource's cookie is left untouched. The two resources must
// therefore differ in backend, device or kind (InvalidArgument otherwise).
//
// Streams: the primary's stream is passed on to the secondary only when it belongs to the secondary's backend
// and device. Otherwise the secondary allocates in host order, and a free on such a stream first waits for
// the stream, since the secondary cannot order the free after work queued there.
//
// Thread-safe when both resources are; the fallback count is an atomic.

#include <atomic>
#include <cstddef>
#include <cstdint>

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
  // True when `allocation` lives in the secondary resource.
  [[nodiscard]] bool is_fallback(const Allocation& allocation) const noexcept;

 private:
  Allocation do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) override;
  void do_deallocate(const Allocation& allocation, Stream* stream) noexcept override;
  std::size_t do_trim() override;
  ResourceUsage do_usage() const override;

  // The stream to give the secondary: `stream` when the secondary can order work on it, else nullptr.
  [[nodiscard]] Stream* secondary_stream(Stream* stream) const noexcept;

  MemoryResource* secondary_;
  std::atomic<std::uint64_t> fallbacks_{0};
};

}  // namespace unimem
