#pragma once
// ExpandablePool: best fit over free ranges that always coalesce with their free neighbours, inside address
// ranges reserved once and backed by device memory granule by granule (Backend::map). Where CoalescingPool
// must take a new segment when a request does not fit its largest free range (and the free range stays
// held), this pool places the request at the end of its range and maps only the granules it touches; the
// granules of a hole that no live range touches go back to the device before new ones are mapped.
//
// - Ranges: one reservation of `reservation` bytes (the device's memory by default) for every stream, so
//   that allocations of different streams share granules: with a reservation per stream each stream would
//   hold partly used granules of its own (four streams over a 17 MB live set took 1.32 times its bytes
//   instead of 1.08). Each stream's frees sit on its own free list, reused by it at once and by other
//   streams after their event, and neighbours freed on different streams stay apart while a free is pending,
//   as in CoalescingPool's segments, which streams share too. A range used up to its end gets another.
// - Placement: best fit; but where best fit's granules would have to be mapped past the peak (so taken from
//   idle granules elsewhere), the request goes where fewer need mapping in the same free range, or where none
//   do in another free range the stream may use. Two requests would otherwise trade the same granules every
//   step.
// - Mapping: every granule that a live range touches is mapped. When an allocation needs unmapped granules,
//   first as many wholly free mapped granules are unmapped (largest free ranges first, from their top: the
//   most idle bytes per call, and best fit sends requests to the smallest range that fits, so the largest
//   are the least likely to be needed again soon), skipping frees whose stream event has not completed
//   (unmapping is not stream-ordered, and the allocation path never blocks the host); then the missing
//   granules are mapped, one backend call per contiguous run. So mapped bytes never pass their peak while
//   idle mapped granules are at hand, and peak mapped bytes stay within the granules live ranges touch.
// - trim() unmaps every wholly free granule, waiting for pending frees; a failed map unmaps every wholly free
//   granule and retries once before OutOfMemory names the request, the mapped bytes and the device's
//   memory.
// - Stream order through the same FreeRanges engine and StreamOrder rule as CoalescingPool.
// - usage().reserved_bytes is the mapped bytes; map_calls and unmap_calls count backend calls.
//
// Thread-safe: one lock, held across backend calls (mapping is rare next to allocation).

#include <cstddef>
#include <memory>

#include "unimem/resource/backend_resource.hpp"
#include "unimem/resource/memory_resource.hpp"
#include "unimem/resource/pool_snapshot.hpp"

namespace unimem {

struct ExpandablePoolOptions {
  // The unit of mapping: a power of two and a multiple of the device's virtual-memory granule. 0: the
  // device's granule, at least 2 MiB (CUDA's granule on current GPUs; on the host, whose granule is a 4 KiB
  // page, a map call per page would cost a system call per few allocations).
  std::size_t granule = 0;
  // Addresses reserved per range, rounded up to the granule; at least one granule. 0: the device's memory
  // (at least one granule).
  std::size_t reservation = 0;
  // Placement remembers free ranges it found no wholly mapped position in, until their extent or the
  // mapping changes (docs/architecture.md, "Placement on mapped granules"). The answers are the same either
  // way; false walks every range again, for comparing the two.
  bool placement_hints = true;
};

class ExpandablePool final : public MemoryResource {
 public:
  // The pool maps device memory itself: its upstream names the backend, device and memory kind (Device)
  // and is not allocated from. Throws NotSupported when the device has no virtual memory or the kind is not
  // device memory; InvalidArgument for a granule that is not a power of two or not a multiple of the
  // device's granule, or a reservation below one granule.
  explicit ExpandablePool(BackendResource& upstream, ExpandablePoolOptions options = {});
  // Reports live allocations (report_misuse) and releases every range, unmapping what is mapped.
  ~ExpandablePool() override;
  ExpandablePool(const ExpandablePool&) = delete;
  ExpandablePool& operator=(const ExpandablePool&) = delete;
  ExpandablePool(ExpandablePool&&) = delete;
  ExpandablePool& operator=(ExpandablePool&&) = delete;

  // The granule option's default on a device: its own granule, at least kMinimumDefaultGranule.
  [[nodiscard]] static std::size_t default_granule(const DeviceInfo& info) noexcept;

  [[nodiscard]] std::size_t granule() const noexcept { return granule_; }
  [[nodiscard]] std::size_t reservation() const noexcept { return reservation_; }
  // Every range (a segment of the snapshot, covering the addresses handed to ranges so far) and its ranges.
  [[nodiscard]] PoolSnapshot snapshot() const;

  // Sizes handed out are multiples of this (the request rounded up); ranges start at least this aligned.
  static constexpr std::size_t kGranularity = kDefaultAlignment;
  static constexpr std::size_t kMinimumDefaultGranule = std::size_t{2} << 20U;

 private:
  struct State;

  Allocation do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) override;
  bool do_deallocate(const Allocation& allocation, Stream* stream) noexcept override;
  // Unmaps every wholly free granule; the bytes unmapped.
  std::size_t do_trim() override;
  ResourceUsage do_usage() const override;

  std::size_t granule_ = 0;
  std::size_t reservation_ = 0;
  std::unique_ptr<State> state_;
};

}  // namespace unimem
