#pragma once
// The MemoryManager's named buffers: a map from name to owned memory, and the counters the manager reports,
// all behind one mutex.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "unimem/buffer/raw_buffer.hpp"
#include "unimem/manager/memory_manager.hpp"
#include "unimem/transfer/double_buffered_download.hpp"

namespace unimem {

struct MemoryManager::NamedBuffers {
  // A named buffer's downloads. Its own mutex lets a wait block without holding the named-buffer mutex (lock
  // order: the named-buffer mutex first); shared so that a waiter keeps it alive past a concurrent free.
  struct Downloads {
    Downloads(Backend& backend, int device, MemoryResource& host_memory, std::size_t bytes)
        : download(backend, device, host_memory, bytes),
          ordered(backend.create_event(device)),
          read(backend.create_event(device)),
          staging_device(host_memory.device()) {}

    // Waits for the downloads still pending and drops them (their failures too): the memory they read from
    // is about to go, and nobody can ask for them any more. Never throws.
    void drain() noexcept {
      const std::lock_guard lock(mutex);
      while (download.pending() != 0) {
        try {
          (void)download.wait_for_download();
        } catch (...) {  // NOLINT(bugprone-empty-catch): dropped on purpose, see above
        }
      }
    }

    std::mutex mutex;
    DoubleBufferedDownload download;
    std::unique_ptr<Event> ordered;  // orders a download after the buffer's own stream
    std::unique_ptr<Event> read;     // orders the buffer's own stream after a download's read
    DeviceId staging_device;         // where the two host buffers live, for the leak check
  };

  struct Entry {
    RawBuffer memory;
    BufferConfig config;
    std::chrono::steady_clock::time_point since;  // allocated or last grown
    std::shared_ptr<Downloads> downloads;         // after `memory`: destroyed (and drained) before it
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
