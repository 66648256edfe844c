#pragma once
// The MemoryManager's named buffers: a map from name to owned memory, and the counters the manager reports,
// all behind one mutex.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "unimem/buffer/raw_buffer.hpp"
#include "unimem/manager/memory_manager.hpp"

namespace unimem {

struct MemoryManager::NamedBuffers {
  struct Entry {
    RawBuffer memory;
    BufferConfig config;
    std::chrono::steady_clock::time_point since;  // allocated or last grown
  };

  // Holds `mutex` for a named-buffer call that allocates or frees. The pressure changes those allocations and
  // frees cause are held back and delivered once the thread holds no named-buffer lock any more, so that a
  // callback never runs under the mutex and may call any of the manager's functions.
  class Lock {
   public:
    explicit Lock(const MemoryManager& manager);
    ~Lock();
    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;
    Lock(Lock&&) = delete;
    Lock& operator=(Lock&&) = delete;

   private:
    std::unique_lock<std::mutex> lock_;
  };
  // True when the calling thread holds a Lock: the change is queued for delivery when it is released.
  static bool defer_pressure_change(const MemoryManager& manager, DeviceId device, PressureLevel previous,
                                    PressureLevel current);

  mutable std::mutex mutex;
  std::map<std::string, Entry, std::less<>> buffers;
  std::size_t bytes = 0;
  std::size_t peak_bytes = 0;
  std::uint64_t allocations = 0;
  std::uint64_t resizes = 0;
  std::uint64_t async_transfers = 0;
};

}  // namespace unimem
