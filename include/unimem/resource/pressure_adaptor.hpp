#pragma once
// PressureAdaptor: watches how full a device is and tells subscribers when the pressure level changes, so
// that caches can shrink before allocations start to fail.
//
// Utilization is the bytes in use through the adaptor (requested sizes) over the capacity. It measures what
// callers hold, not what pools have cached: cached memory can be given back on demand (trim), held memory
// cannot, and counting it here costs one atomic per call instead of asking the upstream for its usage.
// Levels: Low below `medium`, Medium below `high`, High below `critical`, Critical from `critical` up.
//
// Thread model: the bytes in use and the level are atomics, so calls that do not change the level take no
// lock. A change is decided under a mutex (each transition is seen once) and callbacks run after the mutex is
// released, on the thread whose call caused the change; a callback may allocate, free or unsubscribe through
// the adaptor. Transitions caused by different threads may be delivered concurrently. A callback that throws
// is reported through report_misuse(). With trim_on_high, entering High or Critical from a lower level calls
// upstream.trim() on that thread, after the callbacks.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

#include "unimem/resource/resource_adaptor.hpp"

namespace unimem {

enum class PressureLevel : std::uint8_t { Low, Medium, High, Critical };

[[nodiscard]] std::string_view to_string(PressureLevel level) noexcept;

struct PressureOptions {
  double medium = 0.60;  // utilization from which the level is Medium
  double high = 0.80;
  double critical = 0.95;
  std::size_t capacity_bytes = 0;  // 0: the device's total memory (Backend::memory_info)
  bool trim_on_high = false;
};

class PressureAdaptor final : public ResourceAdaptor {
 public:
  using Callback = std::function<void(PressureLevel previous, PressureLevel current)>;

  // Throws InvalidArgument unless 0 < medium < high < critical <= 1, and when the capacity is 0 and the
  // device reports no total memory.
  PressureAdaptor(MemoryResource& upstream, PressureOptions options = {});

  [[nodiscard]] PressureLevel level() const noexcept { return level_.load(); }
  [[nodiscard]] double utilization() const noexcept;
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] std::size_t in_use_bytes() const noexcept { return in_use_.load(); }
  [[nodiscard]] PressureLevel level_for(std::size_t bytes_in_use) const noexcept;

  // Subscribes `callback` to level changes; returns its id for remove_callback(). Throws InvalidArgument for
  // an empty function.
  std::uint64_t on_level_change(Callback callback);
  // Unsubscribes; returns false for an unknown id. A delivery already under way may still reach the callback.
  bool remove_callback(std::uint64_t id);

 private:
  Allocation do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) override;
  bool do_deallocate(const Allocation& allocation, Stream* stream) noexcept override;

  // Moves the level to match the bytes in use, then notifies. Never throws.
  void update_level() noexcept;

  PressureOptions options_;
  std::size_t capacity_;
  std::atomic<std::size_t> in_use_{0};
  std::atomic<PressureLevel> level_{PressureLevel::Low};
  std::mutex mutex_;  // transitions and the subscriber list
  std::vector<std::pair<std::uint64_t, std::shared_ptr<const Callback>>> callbacks_;
  std::uint64_t next_callback_id_ = 1;
};

}  // namespace unimem
