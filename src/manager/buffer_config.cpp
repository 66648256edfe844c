#include "unimem/manager/buffer_config.hpp"

#include <array>
#include <charconv>
#include <string>

#include "unimem/core/error.hpp"

namespace unimem {

std::string_view to_string(AllocationMode mode) noexcept {
  switch (mode) {
    case AllocationMode::Pooled:
      return "pooled";
    case AllocationMode::Unpooled:
      return "unpooled";
    case AllocationMode::Pinned:
      return "pinned";
    case AllocationMode::Unified:
      return "unified";
  }
  return "unknown";
}

BufferConfig BufferConfig::defaults() {
  return BufferConfig{};
}

BufferConfig BufferConfig::growable() {
  BufferConfig c;
  c.growth_factor = 2.0;
  return c;
}

BufferConfig BufferConfig::fixed_size(std::size_t max_bytes) {
  if (max_bytes == 0) throw InvalidArgument("BufferConfig::fixed_size: a maximum of 0 bytes admits nothing");
  BufferConfig c;
  c.max_size_bytes = max_bytes;
  return c;
}

BufferConfig BufferConfig::pinned_staging() {
  BufferConfig c;
  c.mode = AllocationMode::Pinned;
  c.growth_factor = 2.0;
  return c;
}

void BufferConfig::validate() const {
  // Written so that NaN fails too.
  if (!(growth_factor >= 1.3 && growth_factor <= 2.0)) {
    std::array<char, 32> text{};
    const auto end = std::to_chars(text.data(), text.data() + text.size(), growth_factor).ptr;
    throw InvalidArgument("BufferConfig.growth_factor = " + std::string(text.data(), end) +
                          " is outside [1.3, 2.0]");
  }
}

}  // namespace unimem
