#pragma once
// How the MemoryManager allocates: AllocationMode picks which of a device's stacks serves a buffer, and
// BufferConfig says how a named buffer is placed and how it grows.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "unimem/backend/types.hpp"

namespace unimem {

enum class AllocationMode : std::uint8_t {
  Pooled,    // the device's pool, under its limit, with statistics, pressure and (when on) CPU fallback
  Unpooled,  // one backend allocation per buffer, under its own copy of the device limit, with statistics
  Pinned,    // page-locked host memory the device copies from at full speed (where the device serves it)
  Unified,   // memory the host and the device both address (where the device serves it)
};

[[nodiscard]] std::string_view to_string(AllocationMode mode) noexcept;

struct BufferConfig {
  AllocationMode mode = AllocationMode::Pooled;
  std::optional<DeviceId> device;  // empty: the manager's default device
  // ensure_capacity grows a buffer to at least its size x growth_factor, in [1.3, 2.0]: below 1.3 a buffer
  // that grows by small steps is reallocated (and copied) too often; above 2.0 the slack is mostly idle.
  double growth_factor = 1.5;
  // The most bytes the buffer may ever hold (0: no cap beyond the memory limits). Allocating or growing past
  // it is an InvalidArgument: the caller broke its own promise, the memory may well be there.
  std::size_t max_size_bytes = 0;

  // The fields above.
  [[nodiscard]] static BufferConfig defaults();
  // Growth factor 2.0: fewest reallocations, for buffers that grow often (a KV cache, a token list).
  [[nodiscard]] static BufferConfig growable();
  // Never more than `max_bytes` (InvalidArgument for 0).
  [[nodiscard]] static BufferConfig fixed_size(std::size_t max_bytes);
  // Pinned host memory growing by 2.0: staging for transfers to and from the device.
  [[nodiscard]] static BufferConfig pinned_staging();

  // Throws InvalidArgument naming the field and its value for a growth factor outside [1.3, 2.0].
  void validate() const;

  friend bool operator==(const BufferConfig&, const BufferConfig&) = default;
};

}  // namespace unimem
