#pragma once
// OpenCL through the ICD loader: every device of every platform, one context and one default in-order queue
// per device. Device memory is a cl_mem (pools sub-range it); pinned host memory is a CL_MEM_ALLOC_HOST_PTR
// buffer kept mapped; unified memory is fine-grained SVM where the device reports it. OpenCL cannot say how
// much memory is free, so free = global memory size minus what unimem itself has allocated
// (MemoryInfo::estimated). Devices sit in separate contexts: copies between two devices are staged through
// the host.

#include <memory>

#include "unimem/backend/backend.hpp"

namespace unimem {

class OpenCLBackend final : public Backend {
 public:
  // Discovers devices. Never throws for a missing driver, runtime or device: the backend is then present with
  // zero devices and status() says why.
  OpenCLBackend();
  ~OpenCLBackend() override;
  OpenCLBackend(const OpenCLBackend&) = delete;
  OpenCLBackend& operator=(const OpenCLBackend&) = delete;
  OpenCLBackend(OpenCLBackend&&) = delete;
  OpenCLBackend& operator=(OpenCLBackend&&) = delete;

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
  std::unique_ptr<Event> do_create_event(int device) override;

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace unimem
