#pragma once
// Simulated devices of any capacity, for replaying large GPU traces and for out-of-memory and pressure tests
// on any machine.
//
// An unbacked device hands out address ranges with no memory behind them: allocation, accounting and
// out-of-memory behave as on a real device, but memset and copy throw NotSupported. A backed device keeps
// real host memory behind each range, so bytes can be copied in and out; its device memory is deliberately
// not host-visible, like a discrete GPU's. Only device memory is served. Streams are synchronous.
//
// Virtual memory in granules of kGranule (2 MiB, what CUDA reports for current GPUs): reserving costs no
// capacity, mapped bytes count against it as allocated ones do, so a map past the capacity is OutOfMemory as
// on a GPU. Unbacked devices keep the bookkeeping only; backed ones commit host pages behind mapped granules.

#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "unimem/backend/backend.hpp"

namespace unimem {

struct SimulatedDeviceSpec {
  std::size_t capacity_bytes = 0;
  bool backed = false;

  // Parses "80GiB", "80GiB:unbacked", "1GiB:backed", with an optional "sim:" prefix. Throws InvalidArgument
  // naming the text for anything else (a zero or unparsable capacity, an unknown option).
  [[nodiscard]] static SimulatedDeviceSpec parse(std::string_view text);
  [[nodiscard]] std::string to_string() const;
};

class SimulatedBackend final : public Backend {
 public:
  explicit SimulatedBackend(std::vector<SimulatedDeviceSpec> devices = {});

  static constexpr std::size_t kGranule = std::size_t{2} << 20U;

  [[nodiscard]] BackendStatus status() const override;
  [[nodiscard]] int device_count() const noexcept override { return static_cast<int>(specs_.size()); }
  [[nodiscard]] const SimulatedDeviceSpec& spec(int device) const;

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

  // Takes `bytes` of device `index`'s capacity (under mutex_); OutOfMemory when it has no room, naming the
  // reserved range and offset being mapped when `range` is given (the message is built only then).
  void take_capacity(std::size_t index, std::size_t bytes, const Segment* range, std::size_t offset);
  // Unbacked devices: `bytes` of fresh simulated addresses (under mutex_).
  void* take_addresses(std::size_t index, std::size_t bytes);

  // Backed devices: the host memory behind a segment. Unbacked: throws NotSupported naming the operation.
  std::byte* backing(const Segment& segment, std::string_view operation) const;

  std::vector<SimulatedDeviceSpec> specs_;
  mutable std::mutex mutex_;
  std::vector<std::size_t> used_;  // bytes allocated per device
  std::uintptr_t next_address_;    // unbacked ranges: never reused, so a stale handle never aliases a new one
};

}  // namespace unimem
