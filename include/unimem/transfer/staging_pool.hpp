#pragma once
// StagingPool: chunk-sized buffers of host-visible memory (pinned, for a device's DMA) that staged transfers
// move bytes through. Buffers are allocated from a resource when no idle one is left, handed out as RAII
// leases, and kept for reuse when given back (up to `max_idle`; beyond that they are freed at once), so a
// steady stream of transfers allocates nothing. Thread-safe.
//
// A lease gives its buffer back when it is destroyed, on every path (errors included). The holder makes sure
// no device work still reads or writes the buffer by then.

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "unimem/resource/memory_resource.hpp"

namespace unimem {

class StagingPool {
 public:
  class Lease {
   public:
    Lease() noexcept = default;
    ~Lease() { release(); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;

    [[nodiscard]] explicit operator bool() const noexcept { return pool_ != nullptr; }
    // The buffer: chunk_bytes() bytes at offset() into segment(), at data() for the host.
    [[nodiscard]] const Segment& segment() const noexcept { return *allocation_.segment; }
    [[nodiscard]] std::size_t offset() const noexcept { return allocation_.offset; }
    [[nodiscard]] std::size_t size() const noexcept { return allocation_.size; }
    [[nodiscard]] std::byte* data() const noexcept { return allocation_.host_ptr(); }

   private:
    friend class StagingPool;
    Lease(StagingPool& pool, const Allocation& allocation) noexcept : pool_(&pool), allocation_(allocation) {}
    void release() noexcept;

    StagingPool* pool_ = nullptr;
    Allocation allocation_;
  };

  // Buffers of `chunk_bytes` from `resource`, which must hand out host-visible memory (pinned, unified, host,
  // or the device memory of a host-visible device): NotSupported naming its device and kind otherwise.
  // InvalidArgument for a zero chunk size. The resource must outlive the pool.
  StagingPool(MemoryResource& resource, std::size_t chunk_bytes, std::size_t max_idle);
  // Frees the idle buffers. Buffers still leased are reported through report_misuse and leaked (their leases
  // would give them back to a pool that is gone).
  ~StagingPool();
  StagingPool(const StagingPool&) = delete;
  StagingPool& operator=(const StagingPool&) = delete;
  StagingPool(StagingPool&&) = delete;
  StagingPool& operator=(StagingPool&&) = delete;

  // An idle buffer, or a new one. Throws what the resource throws (OutOfMemory, ...); nothing is held then.
  [[nodiscard]] Lease acquire();

  [[nodiscard]] MemoryResource& resource() const noexcept { return *resource_; }
  [[nodiscard]] std::size_t chunk_bytes() const noexcept { return chunk_bytes_; }
  // Buffers leased now, idle now, and allocated from the resource so far.
  [[nodiscard]] std::size_t leased() const;
  [[nodiscard]] std::size_t idle() const;
  [[nodiscard]] std::uint64_t allocations() const;
  // Frees the idle buffers; returns the bytes given back.
  std::size_t trim();

 private:
  void give_back(const Allocation& allocation) noexcept;

  MemoryResource* resource_;
  std::size_t chunk_bytes_;
  std::size_t max_idle_;
  mutable std::mutex mutex_;
  std::vector<Allocation> idle_;
  std::size_t leased_ = 0;
  std::uint64_t allocations_ = 0;
};

}  // namespace unimem
