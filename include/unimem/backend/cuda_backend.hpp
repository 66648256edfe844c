#pragma once
// CUDA through the runtime API, linked statically so that the same binary runs on machines without a driver
// (it then reports zero devices and the reason). Device memory from cudaMalloc, or cudaMallocAsync when a
// stream is given; pinned host from cudaHostAlloc; managed from cudaMallocManaged. Virtual memory through the
// driver's virtual memory management (cuMemAddressReserve, cuMemCreate, cuMemMap), one physical allocation
// per granule, where the driver and the device offer it; the driver's functions are reached through the
// runtime.

#include <memory>

#include "unimem/backend/backend.hpp"

namespace unimem {

class CudaBackend final : public Backend {
 public:
  // Discovers devices. Never throws for a missing driver, runtime or device: the backend is then present with
  // zero devices and status() says why.
  CudaBackend();
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;
  CudaBackend(CudaBackend&&) = delete;
  CudaBackend& operator=(CudaBackend&&) = delete;

  [[nodiscard]] BackendStatus status() const override;
  [[nodiscard]] int device_count() const noexcept override;

 private:
  DeviceInfo do_device_info(int device) const override;
  MemoryInfo do_memory_info(int device) const override;
  NativeAllocation do_allocate(int device, MemoryKind kind, std::size_t bytes, Stream* stream) override;
  void do_deallocate(const Segment& segment, Stream* stream) noexcept override;
  void do_memset(const Segment& dst, std::size_t offset, std::uint8_t value, std::size_t bytes,
                 Stream* stream) override;
  void do_copy(const Segment& dst, std::size_t dst_offset, const Segment& src, std::size_t src_offset,
               std::size_t bytes, Stream* stream) override;
  void do_prefetch(const Segment& segment, std::size_t offset, std::size_t bytes, PrefetchTarget target,
                   Stream* stream) override;
  std::unique_ptr<Stream> do_create_stream(int device) override;
  std::unique_ptr<Stream> do_wrap_native_stream(int device, void* native) override;
  std::unique_ptr<Event> do_create_event(int device) override;
  NativeAllocation do_reserve_address_range(int device, std::size_t bytes) override;
  void do_map(const Segment& range, std::size_t offset, std::size_t bytes) override;
  void do_unmap(const Segment& range, std::size_t offset, std::size_t bytes) override;
  void do_release_address_range(const Segment& range) noexcept override;
  void do_enable_peer_access(int device, int peer) override;
  void do_disable_peer_access(int device, int peer) override;

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace unimem
