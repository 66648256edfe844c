#pragma once
// MemoryResource: the stream-ordered allocation interface every upstream, pool and adaptor implements.
//
// As in RAPIDS RMM, the public functions are thin and non-virtual (they validate), and implementations
// override the private do_* hooks. An allocation is a range inside a backend segment (DESIGN decision 1), so
// one pool implementation serves host memory, CUDA pointers, OpenCL cl_mem objects and unbacked simulated
// devices alike.
//
// Stream order: memory allocated on a stream may be used on that stream at once; memory freed on a stream
// may be reused by that stream at once and by any other stream only once an event recorded at the free has
// completed. A null stream means host order: the caller has already synchronized.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>

#include "unimem/backend/segment.hpp"
#include "unimem/backend/stream.hpp"
#include "unimem/backend/types.hpp"
#include "unimem/core/alignment.hpp"

namespace unimem {

class Backend;

// A range inside a segment. Handed out by allocate(), given back unchanged to deallocate().
struct Allocation {
  const Segment* segment = nullptr;  // owned by the resource chain that handed the range out
  std::size_t offset = 0;            // bytes from the segment's start
  std::size_t size = 0;              // bytes requested
  std::uint64_t cookie = 0;          // the allocating resource's own bookkeeping; opaque to everyone else

  explicit operator bool() const noexcept { return segment != nullptr; }
  // Where the host can touch the range, or nullptr when the segment is not host-visible.
  [[nodiscard]] std::byte* host_ptr() const noexcept {
    return segment != nullptr && segment->host_ptr != nullptr ? segment->host_ptr + offset : nullptr;
  }
  // The range's start as a native address (a host, CUDA device or simulated pointer), or nullptr when the
  // segment's native handle is not an address (Segment::native_is_address: an OpenCL cl_mem or SVM pointer).
  // Then segment->native and offset name the range, and host_ptr() reaches it where the host can.
  [[nodiscard]] void* address() const noexcept {
    return segment != nullptr && segment->native_is_address
               ? static_cast<std::byte*>(segment->native) + offset
               : nullptr;
  }
  // The native handle plus the offset: address() where the handle is an address, otherwise a value that
  // names the range in traces and reports (the trace format's pointer column), never to be dereferenced.
  [[nodiscard]] const void* native_plus_offset() const noexcept {
    return segment != nullptr ? static_cast<const std::byte*>(segment->native) + offset : nullptr;
  }
  [[nodiscard]] DeviceId device() const noexcept { return segment != nullptr ? segment->device : DeviceId{}; }
  [[nodiscard]] MemoryKind kind() const noexcept {
    return segment != nullptr ? segment->kind : MemoryKind::Host;
  }
  [[nodiscard]] Backend* backend() const noexcept { return segment != nullptr ? segment->owner : nullptr; }
};

// Where an allocation lies: its segment and offset, unique among live allocations. Adaptors key their records
// of live allocations by it, comparing the segment pointer without reading the segment, which a stale or
// double-freed handle may name after it was given back.
struct AllocationKey {
  const Segment* segment = nullptr;
  std::size_t offset = 0;

  explicit AllocationKey(const Allocation& allocation) noexcept
      : segment(allocation.segment), offset(allocation.offset) {}
  friend bool operator==(const AllocationKey&, const AllocationKey&) = default;
};

struct AllocationKeyHash {
  std::size_t operator()(const AllocationKey& key) const noexcept {
    return std::hash<const void*>{}(key.segment) ^
           (std::hash<std::size_t>{}(key.offset) * 0x9e3779b97f4a7c15ULL);
  }
};

// What a resource holds and hands out now; adaptors report their upstream's figures.
struct ResourceUsage {
  std::size_t reserved_bytes = 0;            // held from the backend (segments), in use or cached
  std::size_t in_use_bytes = 0;              // handed out and not yet freed (after the resource's rounding)
  std::size_t largest_free_range = 0;        // the largest request servable without asking the backend again
  std::uint64_t upstream_allocations = 0;    // segments obtained from the backend so far
  std::uint64_t upstream_deallocations = 0;  // segments returned to the backend so far
  std::uint64_t cache_hits = 0;              // allocations served from memory already held (pools)
  std::uint64_t cache_misses = 0;            // allocations that needed new memory from upstream
  std::uint64_t fallbacks = 0;               // allocations served by a fallback resource (FallbackAdaptor)
  std::uint64_t map_calls = 0;    // Backend::map calls of pools over virtual memory (ExpandablePool)
  std::uint64_t unmap_calls = 0;  // Backend::unmap calls of those pools

  [[nodiscard]] std::size_t free_bytes() const noexcept { return reserved_bytes - in_use_bytes; }
  // 1 - largest free range / free bytes: 0 when the free memory is one range, towards 1 when it is shattered.
  [[nodiscard]] double fragmentation() const noexcept {
    const std::size_t free = free_bytes();
    return free == 0 ? 0.0 : 1.0 - static_cast<double>(largest_free_range) / static_cast<double>(free);
  }

  // Adds another resource's figures, as a resource over two upstreams reports them: the largest free range
  // is the larger of the two (no request spans both), every other field is the sum.
  ResourceUsage& operator+=(const ResourceUsage& other) noexcept {
    reserved_bytes += other.reserved_bytes;
    in_use_bytes += other.in_use_bytes;
    largest_free_range = std::max(largest_free_range, other.largest_free_range);
    upstream_allocations += other.upstream_allocations;
    upstream_deallocations += other.upstream_deallocations;
    cache_hits += other.cache_hits;
    cache_misses += other.cache_misses;
    fallbacks += other.fallbacks;
    map_calls += other.map_calls;
    unmap_calls += other.unmap_calls;
    return *this;
  }
};

class MemoryResource {
 public:
  virtual ~MemoryResource() = default;
  MemoryResource(const MemoryResource&) = delete;
  MemoryResource& operator=(const MemoryResource&) = delete;
  MemoryResource(MemoryResource&&) = delete;
  MemoryResource& operator=(MemoryResource&&) = delete;

  // Allocates `bytes` (> 0) aligned to `alignment` (a power of two, at most kMaxAlignment), ordered on
  // `stream`. Throws InvalidArgument for a zero size, a bad alignment or a size that overflows when rounded,
  // OutOfMemory when the memory is not there, BackendError when the native API fails otherwise.
  [[nodiscard]] Allocation allocate(std::size_t bytes, Stream* stream = nullptr,
                                    std::size_t alignment = kDefaultAlignment) {
    check_request(bytes, alignment);
    return do_allocate(bytes, stream, alignment);
  }

  // Gives an allocation back, ordered on `stream`; true when the free was accepted. Never throws: an empty,
  // foreign, forged or already-freed allocation is reported once through report_misuse(), changes nothing,
  // and returns false, so that adaptors above count only the frees the chain below accepted.
  bool deallocate(const Allocation& allocation, Stream* stream = nullptr) noexcept {
    if (!allocation) [[unlikely]] {
      return reject_empty();
    }
    return do_deallocate(allocation, stream);
  }

  // Returns cached memory that is wholly free to the backend; the bytes released. Adaptors forward it.
  std::size_t trim() { return do_trim(); }

  [[nodiscard]] ResourceUsage usage() const { return do_usage(); }
  [[nodiscard]] DeviceId device() const noexcept { return device_; }
  [[nodiscard]] MemoryKind kind() const noexcept { return kind_; }
  // The backend that owns the segments of this resource's allocations.
  [[nodiscard]] Backend& backend() const noexcept { return *backend_; }

  // True when either resource can free what the other allocated.
  [[nodiscard]] bool is_equal(const MemoryResource& other) const noexcept {
    return this == &other || do_is_equal(other);
  }

  static constexpr std::size_t kMaxAlignment = 4096;

 protected:
  MemoryResource(Backend& backend, DeviceId device, MemoryKind kind) noexcept
      : backend_(&backend), device_(device), kind_(kind) {}

  // For a resource that hands a request it has already checked (allocate() did) to one of its parts: the
  // part's do_allocate without checking it again.
  static Allocation allocate_checked(MemoryResource& part, std::size_t bytes, Stream* stream,
                                     std::size_t alignment) {
    return part.do_allocate(bytes, stream, alignment);
  }

 private:
  virtual Allocation do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) = 0;
  // True when the free was accepted; a rejected free is reported by the resource that rejected it.
  virtual bool do_deallocate(const Allocation& allocation, Stream* stream) noexcept = 0;
  virtual std::size_t do_trim() { return 0; }
  virtual ResourceUsage do_usage() const = 0;
  virtual bool do_is_equal(const MemoryResource& /*other*/) const noexcept { return false; }

  static void check_request(std::size_t bytes, std::size_t alignment) {
    if (bytes == 0 || !is_power_of_two(alignment) || alignment > kMaxAlignment) [[unlikely]] {
      throw_bad_request(bytes, alignment);
    }
  }
  [[noreturn]] static void throw_bad_request(std::size_t bytes, std::size_t alignment);
  // deallocate() of an empty allocation: reported, false.
  [[gnu::cold]] bool reject_empty() const noexcept;

  Backend* backend_;
  DeviceId device_;
  MemoryKind kind_;
};

// Whether the host can address every allocation of `resource`: pinned, unified and host memory always;
// device memory only where the device says so (the host backend; not a discrete GPU, an OpenCL device or a
// simulated one, backed or not).
[[nodiscard]] bool host_addressable(const MemoryResource& resource);

}  // namespace unimem
