#include "unimem/manager/leak_report.hpp"

#include "unimem/core/size.hpp"

namespace unimem {

std::size_t LeakReport::named_bytes() const noexcept {
  std::size_t bytes = 0;
  for (const NamedBufferRecord& record : named) bytes += record.bytes;
  return bytes;
}

std::string LeakReport::to_string() const {
  if (clean()) return "no live buffers";
  std::string text;
  if (!named.empty()) {
    text += std::to_string(named.size()) + " named buffer(s) of " + std::to_string(named_bytes()) +
            " bytes live:";
    for (const NamedBufferRecord& r : named) {
      const auto age_ms = std::chrono::duration_cast<std::chrono::milliseconds>(r.age).count();
      text += "\n  '" + r.name + "' " + std::to_string(r.bytes) + " bytes (" + std::to_string(r.count) + " " +
              r.element_type + ") on " + unimem::to_string(r.device) + ", " +
              std::string(unimem::to_string(r.mode)) + ", age " + std::to_string(age_ms) + " ms";
    }
  }
  for (const UnnamedAllocations& u : unnamed) {
    if (!text.empty()) text += "\n";
    text += std::to_string(u.count) + " unnamed allocation(s) of " + std::to_string(u.bytes) + " bytes (" +
            format_bytes(u.bytes) + ") live on " + unimem::to_string(u.device);
  }
  return text;
}

}  // namespace unimem
