#include "unimem/transfer/staging_pool.hpp"

#include <string>
#include <utility>

#include "unimem/backend/backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"

namespace unimem {

namespace {

bool serves_host_visible_memory(const MemoryResource& resource) {
  switch (resource.kind()) {
    case MemoryKind::PinnedHost:
    case MemoryKind::Unified:
    case MemoryKind::Host:
      return true;
    case MemoryKind::Device:
      break;
  }
  return resource.backend().device_info(resource.device().index).capabilities.host_visible_device;
}

}  // namespace

StagingPool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)), allocation_(std::exchange(other.allocation_, {})) {}

StagingPool::Lease& StagingPool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    release();
    pool_ = std::exchange(other.pool_, nullptr);
    allocation_ = std::exchange(other.allocation_, {});
  }
  return *this;
}

void StagingPool::Lease::release() noexcept {
  if (pool_ != nullptr) std::exchange(pool_, nullptr)->give_back(allocation_);
}

StagingPool::StagingPool(MemoryResource& resource, std::size_t chunk_bytes, std::size_t max_idle)
    : resource_(&resource), chunk_bytes_(chunk_bytes), max_idle_(max_idle) {
  if (chunk_bytes == 0) throw InvalidArgument("StagingPool: a chunk size of 0 bytes");
  if (!serves_host_visible_memory(resource)) {
    throw NotSupported("StagingPool: the resource on " + to_string(resource.device()) + " hands out " +
                       std::string(to_string(resource.kind())) +
                       " memory, which the host cannot reach; staging needs host-visible memory");
  }
  idle_.reserve(max_idle);
}

StagingPool::~StagingPool() {
  if (leased_ != 0) {
    report_misuse("StagingPool on " + to_string(resource_->device()) + " destroyed with " +
                  std::to_string(leased_) + " staging buffer(s) still leased; they are not freed");
  }
  trim();
}

StagingPool::Lease StagingPool::acquire() {
  {
    const std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      const Allocation allocation = idle_.back();
      idle_.pop_back();
      ++leased_;
      return Lease(*this, allocation);
    }
  }
  const Allocation allocation = resource_->allocate(chunk_bytes_);
  const std::lock_guard lock(mutex_);
  ++leased_;
  ++allocations_;
  return Lease(*this, allocation);
}

void StagingPool::give_back(const Allocation& allocation) noexcept {
  {
    const std::lock_guard lock(mutex_);
    --leased_;
    if (idle_.size() < max_idle_) {
      idle_.push_back(allocation);  // never allocates: the constructor reserved max_idle_ entries
      return;
    }
  }
  resource_->deallocate(allocation);
}

std::size_t StagingPool::leased() const {
  const std::lock_guard lock(mutex_);
  return leased_;
}

std::size_t StagingPool::idle() const {
  const std::lock_guard lock(mutex_);
  return idle_.size();
}

std::uint64_t StagingPool::allocations() const {
  const std::lock_guard lock(mutex_);
  return allocations_;
}

std::size_t StagingPool::trim() {
  std::vector<Allocation> freed;
  {
    const std::lock_guard lock(mutex_);
    freed.swap(idle_);
  }
  for (const Allocation& allocation : freed) resource_->deallocate(allocation);
  return freed.size() * chunk_bytes_;
}

}  // namespace unimem
