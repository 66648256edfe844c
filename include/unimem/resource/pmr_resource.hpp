#pragma once
// PmrResource: a std::pmr::memory_resource over a host-visible unimem MemoryResource (host, pinned,
// unified, or the memory of a device the host can address), so that standard containers can live in pinned
// or pooled memory:
//
//   BackendResource pinned(opencl, 0, MemoryKind::PinnedHost);
//   PmrResource pmr(pinned);
//   std::pmr::vector<float> staging(&pmr);  // its elements are in page-locked memory
//
// unimem's allocations are {segment, offset, size, cookie} records rather than pointers, so each block
// carries its record in a header just before the pointer handed out. That is what makes do_is_equal honest:
// any PmrResource whose upstream can free the record (MemoryResource::is_equal) can free the block, without
// a table shared between adaptors. The header costs max(alignment, 64) bytes per block: these adaptors are
// meant for containers, not for millions of tiny nodes. Alignments up to MemoryResource::kMaxAlignment are
// honoured; a zero-byte request gets a block of its own, since the standard wants a unique pointer.
//
// Thread-safe when the upstream is (the upstreams unimem builds are). The upstream must outlive the
// adaptor and everything allocated through it; host order (no stream) throughout.

#include <cstddef>
#include <memory_resource>

#include "unimem/resource/memory_resource.hpp"

namespace unimem {

class PmrResource final : public std::pmr::memory_resource {
 public:
  // Throws InvalidArgument naming the device and the kind of memory when the host cannot address the
  // resource's memory (device memory of a discrete GPU or an OpenCL device, an unbacked simulated device).
  explicit PmrResource(MemoryResource& upstream);

  [[nodiscard]] MemoryResource& upstream() const noexcept { return *upstream_; }

 private:
  // Throws InvalidArgument for an alignment that is not a power of two or above kMaxAlignment, and what the
  // upstream throws (OutOfMemory, ...).
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  // `pointer` must come from this adaptor or an equal one, as std::pmr requires.
  void do_deallocate(void* pointer, std::size_t bytes, std::size_t alignment) override;
  // Equal to another PmrResource whose upstream can free what this one's allocates
  // (MemoryResource::is_equal).
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override;

  MemoryResource* upstream_;
};

}  // namespace unimem
