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

  mutable std::mutex mutex;
  std::map<std::string, Entry, std::less<>> buffers;
  std::size_t bytes = 0;
  std::size_t peak_bytes = 0;
  std::uint64_t allocations = 0;
  std::uint64_t resizes = 0;
  std::uint64_t async_transfers = 0;
};

}  // namespace unimem
