#include "unimem/resource/memory_resource.hpp"

#include <string>

#include "unimem/backend/backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"

namespace unimem {

void MemoryResource::throw_bad_request(std::size_t bytes, std::size_t alignment) {
  if (bytes == 0) throw InvalidArgument("allocate: zero bytes requested");
  throw InvalidArgument("allocate: alignment " + std::to_string(alignment) +
                        " is not a power of two no larger than " + std::to_string(kMaxAlignment));
}

bool MemoryResource::reject_empty() const noexcept {
  report_misuse("deallocate: empty allocation on " + to_string(device_));
  return false;
}

bool host_addressable(const MemoryResource& resource) {
  if (resource.kind() != MemoryKind::Device) return true;
  return resource.backend().device_info(resource.device().index).capabilities.host_visible_device;
}

}  // namespace unimem
