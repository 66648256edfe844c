#pragma once
// LeakReport: what a MemoryManager still has handed out: its live named buffers, and per device the live
// allocations that are not named buffers (read from the statistics, so they are counted, not itemised;
// MemoryConfig::track_allocations adds one line per allocation to MemoryManager::leak_report()).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "unimem/backend/types.hpp"
#include "unimem/manager/buffer_config.hpp"

namespace unimem {

struct NamedBufferRecord {
  std::string name;
  std::string element_type;  // as the compiler spells it ("float")
  std::size_t count = 0;     // elements
  std::size_t bytes = 0;
  DeviceId device;  // where the memory is (the host after a CPU fallback)
  AllocationMode mode = AllocationMode::Pooled;
  std::chrono::steady_clock::duration age{};  // since allocated or last grown
};

struct UnnamedAllocations {
  DeviceId device;
  std::uint64_t count = 0;
  std::size_t bytes = 0;
};

struct LeakReport {
  std::vector<NamedBufferRecord> named;     // by name
  std::vector<UnnamedAllocations> unnamed;  // devices with live unnamed allocations only

  [[nodiscard]] bool clean() const noexcept { return named.empty() && unnamed.empty(); }
  [[nodiscard]] std::size_t named_bytes() const noexcept;
  // "2 named buffer(s) of 8192 bytes live: 'weights' 4096 bytes (1024 float) on host:0, pooled, age 12 ms;
  // ..." and one line per device with unnamed allocations; "no live buffers" when clean.
  [[nodiscard]] std::string to_string() const;
};

}  // namespace unimem
