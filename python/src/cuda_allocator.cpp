// libunimem_cuda_allocator: unimem's pooled stack of each CUDA device behind the C ABI that PyTorch's
// CUDAPluggableAllocator and CuPy's allocator hooks call (unimem.torch, unimem.cupy). Built with
// UNIMEM_ALLOCATOR_SIMULATED, the same code serves two backed simulated devices instead, whose memory the
// host can touch, so that the ABI is tested through ctypes without a GPU
// (tests/python/test_cuda_allocator.py).
//
// A C ABI cannot throw: a failed call returns nullptr (or changes nothing, for a free) and
// unimem_allocator_last_error() says why, on the calling thread. The streams passed in belong to the caller
// (PyTorch, CuPy): they are wrapped (Backend::wrap_native_stream), never destroyed, so memory is allocated
// and freed in their order.

#include <sys/types.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>

#include "unimem/core/error.hpp"
#include "unimem/manager/memory_manager.hpp"
#include "unimem/resource/memory_stats.hpp"

#define UNIMEM_ALLOCATOR_API extern "C" __attribute__((visibility("default")))

namespace {

using unimem::AllocationMode;
using unimem::BackendKind;
using unimem::DeviceId;

#ifdef UNIMEM_ALLOCATOR_SIMULATED
constexpr BackendKind kServedBackend = BackendKind::Simulated;
#else
constexpr BackendKind kServedBackend = BackendKind::Cuda;
#endif

thread_local std::string last_error;  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)

std::string pointer_text(const void* ptr) {
  std::ostringstream text;
  text << "0x" << std::hex << reinterpret_cast<std::uintptr_t>(ptr);
  return text.str();
}

class Allocator {
 public:
  Allocator() : manager_(options()) {}

  void* allocate(ssize_t size, int device, void* native_stream, AllocationMode mode, const char* operation) {
    if (size <= 0) {
      throw unimem::InvalidArgument(std::string(operation) + ": size " + std::to_string(size) +
                                    " (must be positive)");
    }
    const auto bytes = static_cast<std::size_t>(size);
    const DeviceId id{kServedBackend, device};
    unimem::MemoryResource& resource = manager_.resource(mode, id);
    unimem::Stream* stream = mode == AllocationMode::Pinned ? nullptr : wrapped(id, native_stream);
    const unimem::Allocation allocation = resource.allocate(bytes, stream);
    void* ptr = allocation.address();
    const std::scoped_lock lock(mutex_);
    live_.emplace(ptr, Record{allocation, &resource, device, mode});
    live_bytes_ += bytes;
    peak_bytes_ = std::max(peak_bytes_, live_bytes_);
    ++allocations_;
    return ptr;
  }

  void free(void* ptr, ssize_t size, int device, void* native_stream, AllocationMode mode,
            const char* operation) {
    Record record;
    {
      const std::scoped_lock lock(mutex_);
      const auto found = live_.find(ptr);
      if (found == live_.end() || found->second.mode != mode) {
        ++rejected_frees_;
        throw unimem::InvalidArgument(std::string(operation) + ": pointer " + pointer_text(ptr) +
                                      " was not allocated here or was freed already");
      }
      const Record& live = found->second;
      if (size < 0 || static_cast<std::size_t>(size) != live.allocation.size || device != live.device) {
        ++rejected_frees_;
        throw unimem::InvalidArgument(
            std::string(operation) + ": pointer " + pointer_text(ptr) + " freed with size " +
            std::to_string(size) + " on device " + std::to_string(device) + ", allocated with size " +
            std::to_string(live.allocation.size) + " on device " + std::to_string(live.device));
      }
      record = live;
      live_.erase(found);
      live_bytes_ -= record.allocation.size;
      ++frees_;
    }
    // Freed in the order of the stream PyTorch frees on, which may differ from the allocating one.
    unimem::Stream* stream =
        mode == AllocationMode::Pinned ? nullptr : wrapped(DeviceId{kServedBackend, device}, native_stream);
    (void)record.resource->deallocate(record.allocation, stream);
  }

  std::string stats_json() {
    std::string devices;
    for (const DeviceId& id : manager_.devices()) {
      if (id.backend != kServedBackend) continue;
      if (!devices.empty()) devices += ",";
      devices += "\"" + unimem::to_string(id) + "\":" + unimem::to_json(manager_.stats(id));
    }
    const std::scoped_lock lock(mutex_);
    return "{\"allocations\":" + std::to_string(allocations_) + ",\"frees\":" + std::to_string(frees_) +
           ",\"rejected_frees\":" + std::to_string(rejected_frees_) +
           ",\"live_allocations\":" + std::to_string(live_.size()) +
           ",\"live_bytes\":" + std::to_string(live_bytes_) +
           ",\"peak_bytes\":" + std::to_string(peak_bytes_) +
           ",\"wrapped_streams\":" + std::to_string(streams_.size()) + ",\"devices\":{" + devices + "}}";
  }

 private:
  struct Record {
    unimem::Allocation allocation;
    unimem::MemoryResource* resource = nullptr;
    int device = 0;
    AllocationMode mode = AllocationMode::Pooled;
  };

  static unimem::ManagerOptions options() {
    unimem::ManagerOptions options;
    // The caller wants device memory: a host fallback would hand PyTorch a pointer its kernels cannot use.
    options.config = options.config.with_cpu_fallback(false);
#ifdef UNIMEM_ALLOCATOR_SIMULATED
    options.registry.simulated_devices = {unimem::SimulatedDeviceSpec::parse("1GiB:backed"),
                                          unimem::SimulatedDeviceSpec::parse("1GiB:backed")};
    options.default_device = DeviceId{BackendKind::Simulated, 0};
#endif
    return options;
  }

  // One Stream per (device, native queue), kept for the allocator's lifetime: the pools remember the streams
  // that freed memory, and PyTorch's streams live as long as the process.
  unimem::Stream* wrapped(DeviceId device, void* native_stream) {
    const std::scoped_lock lock(mutex_);
    auto& stream = streams_[{device.index, native_stream}];
    if (!stream)
      stream = manager_.registry().get(device.backend).wrap_native_stream(device.index, native_stream);
    return stream.get();
  }

  unimem::MemoryManager manager_;
  std::mutex mutex_;
  std::map<std::pair<int, void*>, std::unique_ptr<unimem::Stream>> streams_;
  std::unordered_map<void*, Record> live_;
  std::size_t live_bytes_ = 0;
  std::size_t peak_bytes_ = 0;
  std::uint64_t allocations_ = 0;
  std::uint64_t frees_ = 0;
  std::uint64_t rejected_frees_ = 0;
};

// Built on first use and never destroyed: PyTorch frees tensors during interpreter teardown, after static
// destructors would have run.
Allocator& allocator() {
  static auto* const instance = new Allocator();
  return *instance;
}

// Runs `call`; on any exception records its message for unimem_allocator_last_error() and returns `failed`.
template <typename Call, typename Result>
Result guarded(Call&& call, Result failed) noexcept {
  try {
    last_error.clear();
    return call();
  } catch (const std::exception& e) {
    try {
      last_error = e.what();
    } catch (
        ...) {  // NOLINT(bugprone-empty-catch): no memory for the message; the result still says it failed
    }
  } catch (...) {
    last_error = "unknown error";
  }
  return failed;
}

}  // namespace

// PyTorch's CUDAPluggableAllocator signatures; cudaStream_t is a pointer, passed through as void*.
UNIMEM_ALLOCATOR_API void* unimem_allocator_malloc(ssize_t size, int device, void* stream) {
  return guarded(
      [&]() -> void* {
        return allocator().allocate(size, device, stream, AllocationMode::Pooled, "unimem_allocator_malloc");
      },
      static_cast<void*>(nullptr));
}

// nullptr with size 0 is what PyTorch frees for an empty tensor: nothing to do.
UNIMEM_ALLOCATOR_API void unimem_allocator_free(void* ptr, ssize_t size, int device, void* stream) {
  (void)guarded(
      [&] {
        if (ptr != nullptr || size != 0) {
          allocator().free(ptr, size, device, stream, AllocationMode::Pooled, "unimem_allocator_free");
        }
        return 0;
      },
      -1);
}

// Pinned host memory of the device (CuPy's pinned-memory allocator); host order, so no stream.
UNIMEM_ALLOCATOR_API void* unimem_allocator_malloc_pinned(ssize_t size, int device) {
  return guarded(
      [&]() -> void* {
        return allocator().allocate(size, device, nullptr, AllocationMode::Pinned,
                                    "unimem_allocator_malloc_pinned");
      },
      static_cast<void*>(nullptr));
}

UNIMEM_ALLOCATOR_API void unimem_allocator_free_pinned(void* ptr, ssize_t size, int device) {
  (void)guarded(
      [&] {
        allocator().free(ptr, size, device, nullptr, AllocationMode::Pinned, "unimem_allocator_free_pinned");
        return 0;
      },
      -1);
}

// Why this thread's last call failed; "" after a call that succeeded. Valid until the thread's next call.
UNIMEM_ALLOCATOR_API const char* unimem_allocator_last_error() {
  return last_error.c_str();
}

// The allocator's counters and the served devices' MemoryStats as JSON, in a thread-local string valid until
// the thread's next call; nullptr on failure (then last_error says why).
UNIMEM_ALLOCATOR_API const char* unimem_allocator_stats_json() {
  thread_local std::string text;
  return guarded(
      [&]() -> const char* {
        text = allocator().stats_json();
        return text.c_str();
      },
      static_cast<const char*>(nullptr));
}

// Which devices this build serves: "cuda" or "simulated".
UNIMEM_ALLOCATOR_API const char* unimem_allocator_backend() {
  return kServedBackend == BackendKind::Cuda ? "cuda" : "simulated";
}
