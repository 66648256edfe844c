#pragma once
// Test doubles for the pool tests (and the pool fuzzer, so no GoogleTest here):
//   - ManualBackend: one unbacked device whose streams complete work only when the test says so, so that
//     stream-ordered reuse can be observed on a machine whose real streams are synchronous;
//   - TestUpstream: an upstream that records what is live in it and can fail every nth allocation.

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "unimem/backend/backend.hpp"
#include "unimem/core/alignment.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/resource/memory_resource.hpp"

namespace unimem::test {

// A stream that holds "work" until complete() runs it. enqueue() stands for a kernel launch.
class ManualStream final : public Stream {
 public:
  ManualStream(const Backend& backend, DeviceId device) noexcept : Stream(backend, device) {}

  void enqueue() noexcept { ++submitted_; }
  void complete() noexcept { completed_ = submitted_; }
  void complete_up_to(std::uint64_t mark) noexcept {
    if (mark > completed_) completed_ = mark;
  }
  [[nodiscard]] std::uint64_t submitted() const noexcept { return submitted_; }
  [[nodiscard]] std::uint64_t completed() const noexcept { return completed_; }
  // Times another stream's event was made a dependency of this stream (Event::make_wait).
  [[nodiscard]] int waits() const noexcept { return waits_; }
  void waited() noexcept { ++waits_; }

 private:
  void do_synchronize() override { complete(); }
  bool do_query() override { return completed_ == submitted_; }

  std::uint64_t submitted_ = 0;
  std::uint64_t completed_ = 0;
  int waits_ = 0;
};

class ManualEvent final : public Event {
 public:
  ManualEvent(const Backend& backend, DeviceId device) noexcept : Event(backend, device) {}

 private:
  void do_record(Stream& stream) override {
    stream_ = &dynamic_cast<ManualStream&>(stream);
    mark_ = stream_->submitted();
  }
  bool do_query() override { return stream_->completed() >= mark_; }
  void do_synchronize() override { stream_->complete_up_to(mark_); }
  void do_make_wait(Stream& stream) override { dynamic_cast<ManualStream&>(stream).waited(); }
  double do_elapsed_ms_since(Event& /*start*/) override { return 0.0; }

  ManualStream* stream_ = nullptr;
  std::uint64_t mark_ = 0;
};

// One unbacked device of `capacity` bytes with manual streams and events. With a non-zero `vm_granule` it
// has virtual memory in granules of that size (mapped bytes count against the capacity), for the pools that
// map memory themselves (ExpandablePool); without, pools that choose by capability see a plain device.
class ManualBackend final : public Backend {
 public:
  explicit ManualBackend(std::size_t capacity, std::size_t vm_granule = 0)
      : Backend(BackendKind::Simulated), capacity_(capacity), vm_granule_(vm_granule) {}

  [[nodiscard]] BackendStatus status() const override { return {true, true, "manual test backend"}; }
  [[nodiscard]] int device_count() const noexcept override { return 1; }
  [[nodiscard]] int events_created() const noexcept { return events_created_; }

 private:
  DeviceInfo do_device_info(int device) const override {
    DeviceInfo info;
    info.id = DeviceId{BackendKind::Simulated, device};
    info.name = "manual";
    info.memory = do_memory_info(device);
    info.max_allocation_bytes = capacity_;
    info.capabilities.device_memory = true;
    info.capabilities.virtual_memory = vm_granule_ != 0;
    info.virtual_memory_granule = vm_granule_;
    return info;
  }
  MemoryInfo do_memory_info(int /*device*/) const override {
    return MemoryInfo{capacity_ - used_, capacity_, false};
  }
  NativeAllocation do_allocate(int device, MemoryKind /*kind*/, std::size_t bytes,
                               Stream* /*stream*/) override {
    if (bytes > capacity_ - used_) {
      throw OutOfMemory(bytes, to_string(DeviceId{BackendKind::Simulated, device}), capacity_ - used_,
                        capacity_);
    }
    used_ += bytes;
    const std::uintptr_t address = next_address_;
    next_address_ += align_up(bytes, kDefaultAlignment);
    return {reinterpret_cast<void*>(address), nullptr};  // NOLINT(performance-no-int-to-ptr)
  }
  void do_deallocate(const Segment& segment, Stream* /*stream*/) noexcept override { used_ -= segment.size; }
  NativeAllocation do_reserve_address_range(int /*device*/, std::size_t bytes) override {
    next_address_ = align_up(next_address_, vm_granule_);
    const std::uintptr_t address = next_address_;
    next_address_ += bytes;
    return {reinterpret_cast<void*>(address), nullptr, true};  // NOLINT(performance-no-int-to-ptr)
  }
  void do_map(const Segment& range, std::size_t /*offset*/, std::size_t bytes) override {
    if (bytes > capacity_ - used_) {
      throw OutOfMemory(bytes, to_string(range.device), capacity_ - used_, capacity_, "manual backend: map");
    }
    used_ += bytes;
  }
  void do_unmap(const Segment& /*range*/, std::size_t /*offset*/, std::size_t bytes) override {
    used_ -= bytes;
  }
  void do_memset(const Segment& /*dst*/, std::size_t /*offset*/, std::uint8_t /*value*/,
                 std::size_t /*bytes*/, Stream* /*stream*/) override {
    throw NotSupported("manual backend: memset");
  }
  void do_copy(const Segment& /*dst*/, std::size_t /*dst_offset*/, const Segment& /*src*/,
               std::size_t /*src_offset*/, std::size_t /*bytes*/, Stream* /*stream*/) override {
    throw NotSupported("manual backend: copy");
  }
  std::unique_ptr<Stream> do_create_stream(int device) override {
    return std::make_unique<ManualStream>(*this, DeviceId{BackendKind::Simulated, device});
  }
  std::unique_ptr<Event> do_create_event(int device) override {
    ++events_created_;
    return std::make_unique<ManualEvent>(*this, DeviceId{BackendKind::Simulated, device});
  }

  std::size_t capacity_;
  std::size_t vm_granule_;
  std::size_t used_ = 0;
  std::uintptr_t next_address_ = std::uintptr_t{1} << 40U;
  int events_created_ = 0;
};

// Where an upstream allocation is: its segment's id (unique for the backend's life, unlike the Segment's
// address, which a later segment may reuse) and its offset.
using UpstreamKey = std::pair<std::uint64_t, std::size_t>;

// Forwards to `inner`, keeps a map of what is live (key -> bytes) and a journal of changes, and fails
// allocation number n (from 1) with OutOfMemory whenever fail_every divides n. Thread-safe.
class TestUpstream final : public MemoryResource {
 public:
  explicit TestUpstream(MemoryResource& inner, std::uint64_t fail_every = 0)
      : MemoryResource(inner.backend(), inner.device(), inner.kind()),
        inner_(inner),
        fail_every_(fail_every) {}

  // An allocation that appeared (added) or went since the last take_changes().
  struct Change {
    UpstreamKey key;
    std::size_t size = 0;
    bool added = false;
  };
  std::vector<Change> take_changes() {
    const std::lock_guard lock(mutex_);
    return std::exchange(changes_, {});
  }

  [[nodiscard]] std::size_t live_count() const {
    const std::lock_guard lock(mutex_);
    return live_.size();
  }
  [[nodiscard]] std::size_t live_bytes() const {
    const std::lock_guard lock(mutex_);
    return live_bytes_;
  }
  [[nodiscard]] std::uint64_t allocations() const {
    const std::lock_guard lock(mutex_);
    return allocations_;
  }
  [[nodiscard]] std::uint64_t deallocations() const {
    const std::lock_guard lock(mutex_);
    return deallocations_;
  }
  [[nodiscard]] std::uint64_t injected_failures() const {
    const std::lock_guard lock(mutex_);
    return failures_;
  }
  // Frees of something not live here (the pool under test gave back what it did not hold).
  [[nodiscard]] std::uint64_t bad_frees() const {
    const std::lock_guard lock(mutex_);
    return bad_frees_;
  }

 private:
  Allocation do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) override {
    {
      const std::lock_guard lock(mutex_);
      if (fail_every_ != 0 && ++calls_ % fail_every_ == 0) {
        ++failures_;
        throw OutOfMemory(bytes, to_string(device()), 0, 0, "failure injected by TestUpstream");
      }
    }
    const Allocation allocation = inner_.allocate(bytes, stream, alignment);
    const std::lock_guard lock(mutex_);
    const UpstreamKey key{allocation.segment->id, allocation.offset};
    live_[key] = allocation.size;
    live_bytes_ += allocation.size;
    changes_.push_back(Change{key, allocation.size, true});
    ++allocations_;
    return allocation;
  }
  bool do_deallocate(const Allocation& allocation, Stream* stream) noexcept override {
    {
      const std::lock_guard lock(mutex_);
      const auto it = live_.find({allocation.segment->id, allocation.offset});
      if (it == live_.end()) {
        ++bad_frees_;
      } else {
        live_bytes_ -= it->second;
        changes_.push_back(Change{it->first, it->second, false});
        live_.erase(it);
      }
      ++deallocations_;
    }
    return inner_.deallocate(allocation, stream);
  }
  ResourceUsage do_usage() const override { return inner_.usage(); }

  MemoryResource& inner_;
  std::uint64_t fail_every_;
  mutable std::mutex mutex_;
  std::map<UpstreamKey, std::size_t> live_;
  std::size_t live_bytes_ = 0;
  std::vector<Change> changes_;
  std::uint64_t calls_ = 0;
  std::uint64_t allocations_ = 0;
  std::uint64_t deallocations_ = 0;
  std::uint64_t failures_ = 0;
  std::uint64_t bad_frees_ = 0;
};

// A free ordered on a stream of another device is misuse: it is reported (naming that device), the memory is
// given back in host order, and that stream cannot order allocations from the pool either.
inline void expect_foreign_device_free_reported(MemoryResource& pool, Stream& other_device_stream) {
  std::vector<std::string> reports;
  const ScopedMisuseHandler capture([&](std::string_view m) { reports.emplace_back(m); });
  const Allocation a = pool.allocate(100);
  pool.deallocate(a, &other_device_stream);
  ASSERT_EQ(reports.size(), 1U);
  const std::string device = to_string(other_device_stream.device());
  EXPECT_NE(reports[0].find(device), std::string::npos) << reports[0];
  EXPECT_EQ(pool.usage().in_use_bytes, 0U);
  EXPECT_THROW((void)pool.allocate(100, &other_device_stream), InvalidArgument);
}

}  // namespace unimem::test
