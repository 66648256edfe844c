#pragma once
// Test doubles for the adaptor tests.
//
// BumpResource is a deliberately minimal, NOT thread-safe pool: it takes one segment from its backend on the
// first allocation, hands out ranges from it by bumping an offset (starting over once everything is freed),
// and counts calls in plain integers. Used concurrently without a lock it races, which TSan reports; it
// reports pool hits and misses and counts trims, so statistics and pressure tests can see what reached it.

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "unimem/backend/backend.hpp"
#include "unimem/core/alignment.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/resource/memory_resource.hpp"

namespace unimem::test {

class BumpResource final : public MemoryResource {
 public:
  BumpResource(Backend& backend, int device, MemoryKind kind, std::size_t capacity)
      : MemoryResource(backend, DeviceId{backend.kind(), device}, kind),
        device_index_(device),
        capacity_(capacity) {}
  ~BumpResource() override {
    if (segment_) backend().deallocate(segment_);
  }
  BumpResource(const BumpResource&) = delete;
  BumpResource& operator=(const BumpResource&) = delete;
  BumpResource(BumpResource&&) = delete;
  BumpResource& operator=(BumpResource&&) = delete;

  [[nodiscard]] std::uint64_t allocate_calls() const { return allocate_calls_; }
  [[nodiscard]] std::uint64_t deallocate_calls() const { return deallocate_calls_; }
  [[nodiscard]] std::uint64_t trim_calls() const { return trim_calls_; }
  [[nodiscard]] std::size_t live_count() const { return live_.size(); }

 private:
  Allocation do_allocate(std::size_t bytes, Stream* /*stream*/, std::size_t alignment) override {
    ++allocate_calls_;
    const std::size_t offset = align_up(next_offset_, alignment);
    if (offset > capacity_ || bytes > capacity_ - offset) {
      throw OutOfMemory(bytes, to_string(device()), capacity_ - next_offset_, capacity_,
                        "BumpResource is full");
    }
    if (!segment_) {
      segment_ = backend().allocate(device_index_, kind(), capacity_);
      ++usage_.upstream_allocations;
      ++usage_.cache_misses;
    } else {
      ++usage_.cache_hits;
    }
    next_offset_ = offset + bytes;
    live_.emplace(offset, bytes);
    usage_.in_use_bytes += bytes;
    return Allocation{&segment_, offset, bytes, segment_.id};
  }

  bool do_deallocate(const Allocation& allocation, Stream* /*stream*/) noexcept override {
    ++deallocate_calls_;
    const auto it = live_.find(allocation.offset);
    if (allocation.segment != &segment_ || it == live_.end() || it->second != allocation.size) {
      report_misuse("BumpResource: allocation at offset " + std::to_string(allocation.offset) +
                    " is not live");
      return false;
    }
    usage_.in_use_bytes -= it->second;
    live_.erase(it);
    if (live_.empty()) next_offset_ = 0;
    return true;
  }

  std::size_t do_trim() override {
    ++trim_calls_;
    if (!segment_ || !live_.empty()) return 0;
    backend().deallocate(segment_);
    segment_ = Segment{};
    ++usage_.upstream_deallocations;
    return capacity_;
  }

  ResourceUsage do_usage() const override {
    ResourceUsage usage = usage_;
    usage.reserved_bytes = segment_ ? capacity_ : 0;
    usage.largest_free_range = segment_ ? capacity_ - next_offset_ : 0;
    return usage;
  }

  int device_index_;
  std::size_t capacity_;
  Segment segment_;
  std::size_t next_offset_ = 0;
  std::unordered_map<std::size_t, std::size_t> live_;  // offset -> bytes
  ResourceUsage usage_;
  std::uint64_t allocate_calls_ = 0;
  std::uint64_t deallocate_calls_ = 0;
  std::uint64_t trim_calls_ = 0;
};

}  // namespace unimem::test
