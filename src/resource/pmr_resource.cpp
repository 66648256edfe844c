#include "unimem/resource/pmr_resource.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "unimem/backend/backend.hpp"
#include "unimem/core/alignment.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem {

namespace {

// Room for the Allocation record in front of every block, at least as large as the block's alignment so
// that the pointer handed out keeps it.
constexpr std::size_t kHeaderBytes = 64;
static_assert(sizeof(Allocation) <= kHeaderBytes);

}  // namespace

PmrResource::PmrResource(MemoryResource& upstream) : upstream_(&upstream) {
  if (!host_addressable(upstream)) {
    throw InvalidArgument("PmrResource: " + std::string(to_string(upstream.kind())) + " memory of " +
                          to_string(upstream.device()) +
                          " is not host-visible; std::pmr containers need memory the host can address");
  }
}

void* PmrResource::do_allocate(std::size_t bytes, std::size_t alignment) {
  if (!is_power_of_two(alignment) || alignment > MemoryResource::kMaxAlignment) {
    throw InvalidArgument("PmrResource::allocate: alignment " + std::to_string(alignment) +
                          " is not a power of two up to " + std::to_string(MemoryResource::kMaxAlignment));
  }
  const std::size_t header = std::max(alignment, kHeaderBytes);
  const Allocation allocation =
      upstream_->allocate(checked_add(header, bytes), nullptr, std::max(alignment, kDefaultAlignment));
  std::byte* block = allocation.host_ptr() + header;
  std::memcpy(block - sizeof(Allocation), &allocation, sizeof(Allocation));
  return block;
}

void PmrResource::do_deallocate(void* pointer, std::size_t /*bytes*/, std::size_t /*alignment*/) {
  Allocation allocation;
  std::memcpy(&allocation, static_cast<std::byte*>(pointer) - sizeof(Allocation), sizeof(Allocation));
  upstream_->deallocate(allocation);  // a foreign or repeated record is reported there, never followed
}

bool PmrResource::do_is_equal(const std::pmr::memory_resource& other) const noexcept {
  if (this == &other) return true;
  const auto* pmr = dynamic_cast<const PmrResource*>(&other);
  return pmr != nullptr && upstream_->is_equal(*pmr->upstream_);
}

}  // namespace unimem
