#pragma once
// Memory in every location the transfer tests move bytes between: pageable host memory, the host backend's
// memory, the backed simulated devices of the shared registry, OpenCL device / pinned / unified memory on two
// devices, CUDA memory. A location whose backend, device or kind is missing skips with the reason. Bytes are
// written and read back with plain Backend::copy calls (or the host directly), independently of the engine.
// Also TwoTestDevices, a test backend of two devices whose work completes as it is issued, for the engine's
// choices between them (peer access, devices on the host's RAM).

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/backend_fixture.hpp"
#include "buffer/buffer_fixture.hpp"
#include "unimem/core/size.hpp"
#include "unimem/transfer/transfer_endpoint.hpp"

namespace unimem::test {

struct Location {
  const char* label;
  BackendKind backend;
  int device;
  MemoryKind kind;
  bool pageable_view = false;  // a host view of a std::vector, no backend
};

inline void PrintTo(const Location& location, std::ostream* out) {
  *out << location.label;
}

inline const std::vector<Location>& locations() {
  static const std::vector<Location> all = {
      {"pageable", BackendKind::Host, 0, MemoryKind::Host, true},
      {"host_memory", BackendKind::Host, 0, MemoryKind::Device},
      {"sim0", BackendKind::Simulated, 0, MemoryKind::Device},
      {"sim1", BackendKind::Simulated, 1, MemoryKind::Device},
      {"opencl0_device", BackendKind::OpenCL, 0, MemoryKind::Device},
      {"opencl1_device", BackendKind::OpenCL, 1, MemoryKind::Device},
      {"opencl0_pinned", BackendKind::OpenCL, 0, MemoryKind::PinnedHost},
      {"opencl1_pinned", BackendKind::OpenCL, 1, MemoryKind::PinnedHost},
      {"opencl0_unified", BackendKind::OpenCL, 0, MemoryKind::Unified},
      {"cuda_device", BackendKind::Cuda, 0, MemoryKind::Device},
      {"cuda_pinned", BackendKind::Cuda, 0, MemoryKind::PinnedHost},
      {"cuda_unified", BackendKind::Cuda, 0, MemoryKind::Unified},
  };
  return all;
}

// The shared registry's unbacked simulated device: allocations succeed, every copy throws NotSupported.
inline const Location kUnbackedSim{"sim_unbacked", BackendKind::Simulated, kUnbackedSimDevice,
                                   MemoryKind::Device, false};

inline const Location& location(const std::string& label) {
  for (const Location& l : locations()) {
    if (l.label == label) return l;
  }
  throw std::invalid_argument("no test location " + label);
}

// The backend with `device` serving `kind`, or nullptr and `why`.
inline Backend* backend_serving(BackendKind kind, int device, MemoryKind memory, std::string& why) {
  Backend* backend = backend_with_devices(kind, why);
  if (backend == nullptr) return nullptr;
  if (device >= backend->device_count()) {
    why = std::string(to_string(kind)) + " has " + std::to_string(backend->device_count()) +
          " device(s), no device " + std::to_string(device) +
          " (two OpenCL devices need POCL_DEVICES=\"pthread pthread\")";
    return nullptr;
  }
  if (!backend->supports(device, memory)) {
    why = to_string(DeviceId{kind, device}) + " does not serve " + std::string(to_string(memory)) + " memory";
    return nullptr;
  }
  return backend;
}

// `size` bytes in one location.
class TestMemory {
 public:
  // nullptr with `why` when the location is missing here.
  static std::unique_ptr<TestMemory> make(const Location& location, std::size_t size, std::string& why) {
    if (location.pageable_view) return std::unique_ptr<TestMemory>(new TestMemory(size));
    Backend* backend = backend_serving(location.backend, location.device, location.kind, why);
    if (backend == nullptr) return nullptr;
    return std::unique_ptr<TestMemory>(new TestMemory(*backend, location.device, location.kind, size));
  }

  ~TestMemory() {
    if (backend_ != nullptr) backend_->deallocate(segment_);
  }
  TestMemory(const TestMemory&) = delete;
  TestMemory& operator=(const TestMemory&) = delete;
  TestMemory(TestMemory&&) = delete;
  TestMemory& operator=(TestMemory&&) = delete;

  [[nodiscard]] const Segment& segment() const noexcept { return segment_; }
  [[nodiscard]] TransferEndpoint endpoint(std::size_t offset = 0) const {
    return TransferEndpoint::from(segment_, offset);
  }

  void write(const std::vector<std::byte>& bytes) {
    if (backend_ == nullptr) {
      std::memcpy(pageable_.data(), bytes.data(), bytes.size());
      return;
    }
    backend_->copy(segment_, 0, Segment::host_view(static_cast<const void*>(bytes.data()), bytes.size()), 0,
                   bytes.size());
  }
  [[nodiscard]] std::vector<std::byte> read() const {
    if (backend_ == nullptr) return pageable_;
    std::vector<std::byte> bytes(segment_.size);
    backend_->copy(Segment::host_view(bytes.data(), bytes.size()), 0, segment_, 0, bytes.size());
    return bytes;
  }

 private:
  explicit TestMemory(std::size_t size)
      : pageable_(size), segment_(Segment::host_view(pageable_.data(), pageable_.size())) {}
  TestMemory(Backend& backend, int device, MemoryKind kind, std::size_t size)
      : backend_(&backend), segment_(backend.allocate(device, kind, size)) {}

  Backend* backend_ = nullptr;
  std::vector<std::byte> pageable_;
  Segment segment_;
};

// Bytes that differ from their neighbours and from `seed`'s other patterns, so a shifted, truncated or
// misplaced copy shows.
inline std::vector<std::byte> pattern(std::size_t size, std::uint32_t seed) {
  std::vector<std::byte> bytes(size);
  std::uint32_t state = seed * 2654435761U + 1U;
  for (std::byte& b : bytes) {
    state = state * 1664525U + 1013904223U;
    b = static_cast<std::byte>(state >> 24U);
  }
  return bytes;
}

// The index of the first byte where a and b differ, or -1; for failure messages that say where.
inline long first_difference(const std::vector<std::byte>& a, const std::vector<std::byte>& b) {
  const std::size_t n = a.size() < b.size() ? a.size() : b.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return static_cast<long>(i);
  }
  return a.size() == b.size() ? -1 : static_cast<long>(n);
}

// Streams and events of a test backend whose work completes as it is issued.
class InstantStream final : public Stream {
 public:
  InstantStream(const Backend& backend, DeviceId device) noexcept : Stream(backend, device) {}

 private:
  void do_synchronize() override {}
  bool do_query() override { return true; }
};

class InstantEvent final : public Event {
 public:
  InstantEvent(const Backend& backend, DeviceId device) noexcept : Event(backend, device) {}

 private:
  void do_record(Stream& /*stream*/) override {}
  bool do_query() override { return true; }
  void do_synchronize() override {}
  void do_make_wait(Stream& /*stream*/) override {}
  double do_elapsed_ms_since(Event& /*start*/) override { return 0.0; }
};

// Two test devices whose memory is host memory behind handles the host is not given (device memory) or is
// given (pinned host memory), with synchronous copies that it counts. Subclasses say what the devices are
// (do_device_info): GPUs with or without peer access, or devices on the host's RAM.
class TwoTestDevices : public Backend {
 public:
  TwoTestDevices() : Backend(BackendKind::Simulated) {}

  [[nodiscard]] int device_count() const noexcept override { return 2; }

  int copies = 0;

 protected:
  MemoryInfo do_memory_info(int /*device*/) const override { return MemoryInfo{GiB, GiB, false}; }

 private:
  NativeAllocation do_allocate(int /*device*/, MemoryKind kind, std::size_t bytes,
                               Stream* /*stream*/) override {
    auto* memory = static_cast<std::byte*>(::operator new(bytes));
    return {memory, kind == MemoryKind::PinnedHost ? memory : nullptr};
  }
  void do_deallocate(const Segment& segment, Stream* /*stream*/) noexcept override {
    ::operator delete(segment.native);
  }
  void do_memset(const Segment& dst, std::size_t offset, std::uint8_t value, std::size_t bytes,
                 Stream* /*stream*/) override {
    std::memset(address(dst) + offset, value, bytes);
  }
  void do_copy(const Segment& dst, std::size_t dst_offset, const Segment& src, std::size_t src_offset,
               std::size_t bytes, Stream* /*stream*/) override {
    ++copies;
    std::memmove(address(dst) + dst_offset, address(src) + src_offset, bytes);
  }
  std::unique_ptr<Stream> do_create_stream(int device) override {
    return std::make_unique<InstantStream>(*this, DeviceId{BackendKind::Simulated, device});
  }
  std::unique_ptr<Event> do_create_event(int device) override {
    return std::make_unique<InstantEvent>(*this, DeviceId{BackendKind::Simulated, device});
  }

  std::byte* address(const Segment& segment) const {
    return segment.owner == this ? static_cast<std::byte*>(segment.native) : segment.host_ptr;
  }
};

}  // namespace unimem::test
