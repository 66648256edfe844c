#include "unimem/resource/fallback_adaptor.hpp"

#include <string>

#include "unimem/backend/backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"

namespace unimem {

namespace {
std::string describe(const MemoryResource& resource) {
  return to_string(resource.device()) + " " + std::string(to_string(resource.kind()));
}
}  // namespace

FallbackAdaptor::FallbackAdaptor(MemoryResource& primary, MemoryResource& secondary)
    : ResourceAdaptor(primary), secondary_(&secondary) {
  if (&primary.backend() == &secondary.backend() && primary.device() == secondary.device() &&
      primary.kind() == secondary.kind()) {
    throw InvalidArgument("FallbackAdaptor: primary and secondary both serve " + describe(primary) +
                          " memory of the same backend, so their allocations cannot be told apart");
  }
}

bool FallbackAdaptor::is_fallback(const Allocation& allocation) const {
  if (fallback_live_count_.load(std::memory_order_acquire) == 0) return false;
  const std::lock_guard lock(mutex_);
  return fallback_live_.contains(AllocationKey(allocation));
}

Stream* FallbackAdaptor::secondary_stream(Stream* stream) const noexcept {
  if (stream != nullptr && &stream->backend() == &secondary_->backend() &&
      stream->device() == secondary_->device()) {
    return stream;
  }
  return nullptr;
}

Allocation FallbackAdaptor::do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) {
  try {
    return ResourceAdaptor::do_allocate(bytes, stream, alignment);
  } catch (const OutOfMemory& primary_failure) {
    try {
      const Allocation allocation = secondary_->allocate(bytes, secondary_stream(stream), alignment);
      try {
        const std::lock_guard lock(mutex_);
        fallback_live_.insert(AllocationKey(allocation));
        fallback_live_count_.store(fallback_live_.size(), std::memory_order_release);
      } catch (...) {
        secondary_->deallocate(allocation, secondary_stream(stream));
        throw;
      }
      fallbacks_.fetch_add(1, std::memory_order_relaxed);
      return allocation;
    } catch (const OutOfMemory& secondary_failure) {
      throw OutOfMemory(
          bytes, primary_failure.device(), primary_failure.free_bytes(), primary_failure.total_bytes(),
          "the fallback to " + describe(*secondary_) + " failed too: " + secondary_failure.what());
    }
  }
}

bool FallbackAdaptor::do_deallocate(const Allocation& allocation, Stream* stream) noexcept {
  // The record is taken out before the secondary frees (so a second free racing this one goes to the primary,
  // which reports it) and put back if the secondary refuses. No lock is held across either free, since both
  // may reach user callbacks (pressure adaptors in the stacks).
  bool fallback = false;
  if (fallback_live_count_.load(std::memory_order_acquire) != 0) {
    const std::lock_guard lock(mutex_);
    fallback = fallback_live_.erase(AllocationKey(allocation)) != 0;
    fallback_live_count_.store(fallback_live_.size(), std::memory_order_release);
  }
  if (!fallback) return ResourceAdaptor::do_deallocate(allocation, stream);
  Stream* const ordered_on = secondary_stream(stream);
  if (stream != nullptr && ordered_on == nullptr) {
    try {
      stream->synchronize();
    } catch (const Error& e) {
      report_misuse(std::string("FallbackAdaptor::deallocate: waiting for the stream failed: ") + e.what());
    }
  }
  if (secondary_->deallocate(allocation, ordered_on)) return true;
  try {
    const std::lock_guard lock(mutex_);
    fallback_live_.insert(AllocationKey(allocation));
    fallback_live_count_.store(fallback_live_.size(), std::memory_order_release);
  } catch (const std::exception& e) {
    report_misuse(std::string("FallbackAdaptor: could not restore the record of a refused free: ") +
                  e.what());
  }
  return false;
}

std::size_t FallbackAdaptor::do_trim() {
  return ResourceAdaptor::do_trim() + secondary_->trim();
}

ResourceUsage FallbackAdaptor::do_usage() const {
  ResourceUsage usage = ResourceAdaptor::do_usage();
  usage += secondary_->usage();
  usage.fallbacks += fallback_count();
  return usage;
}

}  // namespace unimem
