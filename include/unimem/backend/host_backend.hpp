#pragma once
// The host as a device: always present, one device whose device memory is ordinary host memory (so it is
// host-visible), allocated with kDefaultAlignment. Streams are synchronous. Virtual memory in pages
// (src/backend/host/host_address_space.hpp): mapped pages stop counting in the resident set once unmapped.

#include "unimem/backend/backend.hpp"

namespace unimem {

class HostBackend final : public Backend {
 public:
  HostBackend();

  [[nodiscard]] BackendStatus status() const override;
  [[nodiscard]] int device_count() const noexcept override { return 1; }

 private:
  DeviceInfo do_device_info(int device) const override;
  MemoryInfo do_memory_info(int device) const override;
  NativeAllocation do_allocate(int device, MemoryKind kind, std::size_t bytes, Stream* stream) override;
  void do_deallocate(const Segment& segment, Stream* stream) noexcept override;
  void do_memset(const Segment& dst, std::size_t offset, std::uint8_t value, std::size_t bytes,
                 Stream* stream) override;
  void do_copy(const Segment& dst, std::size_t dst_offset, const Segment& src, std::size_t src_offset,
               std::size_t bytes, Stream* stream) override;
  std::unique_ptr<Stream> do_create_stream(int device) override;
  std::unique_ptr<Stream> do_wrap_native_stream(int device, void* native) override;
  std::unique_ptr<Event> do_create_event(int device) override;
  NativeAllocation do_reserve_address_range(int device, std::size_t bytes) override;
  void do_map(const Segment& range, std::size_t offset, std::size_t bytes) override;
  void do_unmap(const Segment& range, std::size_t offset, std::size_t bytes) override;
  void do_release_address_range(const Segment& range) noexcept override;

  std::string cpu_name_;
};

// Free and total host memory now, from /proc/meminfo (MemAvailable, MemTotal).
[[nodiscard]] MemoryInfo host_memory_info();

}  // namespace unimem
