#include "unimem/buffer/mirrored_buffer.hpp"

#include <string>

namespace unimem {

std::string_view to_string(MirrorLocation location) noexcept {
  switch (location) {
    case MirrorLocation::Host:
      return "host";
    case MirrorLocation::Device:
      return "device";
    case MirrorLocation::Both:
      return "both";
  }
  return "unknown";
}

std::string_view to_string(MapMode mode) noexcept {
  switch (mode) {
    case MapMode::Read:
      return "read";
    case MapMode::Write:
      return "write";
    case MapMode::ReadWrite:
      return "read-write";
  }
  return "unknown";
}

namespace detail {

bool check_mirror_resources(const MemoryResource& device_memory, const MemoryResource& host_memory,
                            std::string_view buffer) {
  if (!host_addressable(host_memory)) {
    throw InvalidArgument(std::string(buffer) + ": the host copy's memory (" +
                          std::string(to_string(host_memory.kind())) + " memory of " +
                          to_string(host_memory.device()) + ") is not host-visible");
  }
  return host_addressable(device_memory);
}

void throw_mirror_misuse(std::string_view buffer, std::string_view operation, std::string_view why) {
  throw InvalidArgument(std::string(buffer) + "::" + std::string(operation) + ": " + std::string(why));
}

}  // namespace detail

}  // namespace unimem
