#include "unimem/transfer/ring_buffer_bridge.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>

#include "unimem/core/error.hpp"

namespace unimem {

namespace {

std::string describe_ring(std::size_t capacity, const ElementType& element, const MemoryResource& device) {
  return "RingBufferBridge of " + std::to_string(capacity) + " " + std::string(element.name) + " on " +
         to_string(device.device());
}

}  // namespace

std::string_view to_string(RingTransferMode mode) noexcept {
  switch (mode) {
    case RingTransferMode::Synchronous:
      return "synchronous";
    case RingTransferMode::AsyncStream:
      return "async-stream";
    case RingTransferMode::Unified:
      return "unified";
    case RingTransferMode::DmaPolling:
      return "dma-polling";
  }
  return "unknown";
}

RawRingBufferBridge::RawRingBufferBridge(MemoryResource& host_memory, MemoryResource& device_memory,
                                         ElementType element, std::size_t capacity, RingTransferMode mode)
    : element_(element), capacity_(capacity), mode_(mode) {
  if (capacity == 0) {
    throw InvalidArgument(describe_ring(capacity, element, device_memory) + ": a capacity of 0 elements");
  }
  if (mode == RingTransferMode::Unified) {
    throw InvalidArgument(describe_ring(capacity, element, device_memory) +
                          ": mode unified takes one unified resource (the other constructor)");
  }
  ring_ = RawBuffer(host_memory, element, capacity);
  if (!ring_.view().host_visible()) {
    throw NotSupported(describe_ring(capacity, element, device_memory) + ": the ring's " +
                       std::string(to_string(host_memory.kind())) + " memory of " +
                       to_string(host_memory.device()) + " is not host-visible");
  }
  device_ = RawBuffer(device_memory, element, capacity);
  if (mode != RingTransferMode::Synchronous) {
    Backend& backend = device_memory.backend();
    stream_ = backend.create_stream(device_memory.device().index);
    if (mode == RingTransferMode::DmaPolling) flushed_ = backend.create_event(device_memory.device().index);
  }
}

RawRingBufferBridge::RawRingBufferBridge(MemoryResource& unified_memory, ElementType element,
                                         std::size_t capacity)
    : element_(element), capacity_(capacity), mode_(RingTransferMode::Unified) {
  if (capacity == 0) {
    throw InvalidArgument(describe_ring(capacity, element, unified_memory) + ": a capacity of 0 elements");
  }
  if (unified_memory.kind() != MemoryKind::Unified) {
    throw NotSupported(describe_ring(capacity, element, unified_memory) +
                       ": mode unified needs unified memory, not " +
                       std::string(to_string(unified_memory.kind())));
  }
  device_ = RawBuffer(unified_memory, element, capacity);
}

RawRingBufferBridge::~RawRingBufferBridge() {
  try {
    if (stream_) stream_->synchronize();
  } catch (...) {
    // A failed flush nobody waited for: the memory is freed all the same.
  }
}

std::size_t RawRingBufferBridge::pending() const {
  const std::lock_guard lock(mutex_);
  return static_cast<std::size_t>(pushed_ - flushed_count_);
}

std::size_t RawRingBufferBridge::in_flight() const {
  const std::lock_guard lock(mutex_);
  return static_cast<std::size_t>(flushed_count_ - completed_);
}

std::size_t RawRingBufferBridge::free_space() const {
  const std::lock_guard lock(mutex_);
  return capacity_ - static_cast<std::size_t>(pushed_ - completed_);
}

RingTransferCounters RawRingBufferBridge::counters() const {
  const std::lock_guard lock(mutex_);
  return counters_;
}

void RawRingBufferBridge::refuse_push(std::size_t count) const {
  const auto used = static_cast<std::size_t>(pushed_ - completed_);
  throw InvalidArgument(describe_ring(capacity_, element_, device_.resource()) + ": push of " +
                        std::to_string(count) + " elements with " + std::to_string(capacity_ - used) +
                        " free (" + std::to_string(pushed_ - flushed_count_) + " pending, " +
                        std::to_string(flushed_count_ - completed_) + " in flight)");
}

bool RawRingBufferBridge::push_locked(const void* items, std::size_t count) {
  if (count == 0 || count > capacity_) refuse_push(count);
  if (items == nullptr) {
    throw InvalidArgument(describe_ring(capacity_, element_, device_.resource()) + ": push of " +
                          std::to_string(count) + " elements from no memory");
  }
  if (count > capacity_ - static_cast<std::size_t>(pushed_ - completed_)) {
    (void)reclaim();
    if (count > capacity_ - static_cast<std::size_t>(pushed_ - completed_)) return false;
  }
  std::byte* ring = (mode_ == RingTransferMode::Unified ? device_ : ring_).view().host_data();
  const auto* from = static_cast<const std::byte*>(items);
  const auto start = static_cast<std::size_t>(pushed_ % capacity_);
  const std::size_t first = std::min(count, capacity_ - start);
  std::memcpy(ring + start * element_.size, from, first * element_.size);
  std::memcpy(ring, from + first * element_.size, (count - first) * element_.size);
  pushed_ += count;
  return true;
}

void RawRingBufferBridge::push(const void* items, std::size_t count) {
  const std::lock_guard lock(mutex_);
  if (!push_locked(items, count)) refuse_push(count);
}

bool RawRingBufferBridge::try_push(const void* items, std::size_t count) {
  const std::lock_guard lock(mutex_);
  return push_locked(items, count);
}

void RawRingBufferBridge::copy_to_device(std::size_t first, std::size_t count) {
  const Allocation& ring = ring_.allocation();
  const Allocation& device = device_.allocation();
  const std::size_t at = first * element_.size;
  device_.backend()->copy(*device.segment, device.offset + at, *ring.segment, ring.offset + at,
                          count * element_.size, stream_.get());
  ++counters_.copies_to_device;
}

std::size_t RawRingBufferBridge::flush_to_device() {
  const std::lock_guard lock(mutex_);
  const auto count = static_cast<std::size_t>(pushed_ - flushed_count_);
  if (count == 0) return 0;
  const std::size_t start = static_cast<std::size_t>(flushed_count_ % capacity_);
  const std::size_t first = std::min(count, capacity_ - start);
  if (mode_ != RingTransferMode::Unified) {
    copy_to_device(start, first);
    if (first < count) copy_to_device(0, count - first);
    if (flushed_) flushed_->record(*stream_);
  }
  ++counters_.flushes;
  if (first < count) ++counters_.wrapped_flushes;
  counters_.bytes_to_device += count * element_.size;
  flushed_count_ = pushed_;
  if (mode_ == RingTransferMode::Synchronous || mode_ == RingTransferMode::Unified)
    completed_ = flushed_count_;
  return count;
}

bool RawRingBufferBridge::stream_idle() {
  try {
    if (flushed_) return flushed_->query();
    return stream_->query();
  } catch (...) {
    flushed_count_ = completed_;  // what the failed flushes moved is pending again
    throw;
  }
}

bool RawRingBufferBridge::reclaim() {
  if (completed_ == flushed_count_) return true;
  if (!stream_idle()) {
    ++counters_.polls;
    return false;
  }
  completed_ = flushed_count_;
  return true;
}

bool RawRingBufferBridge::poll() {
  const std::lock_guard lock(mutex_);
  return reclaim();
}

void RawRingBufferBridge::wait() {
  if (!stream_) return;
  if (mode_ == RingTransferMode::AsyncStream) {
    const std::lock_guard lock(mutex_);
    try {
      stream_->synchronize();
    } catch (...) {
      flushed_count_ = completed_;  // what the failed flushes moved is pending again
      throw;
    }
    completed_ = flushed_count_;
    return;
  }
  for (;;) {
    {
      const std::lock_guard lock(mutex_);
      if (stream_idle()) {
        completed_ = flushed_count_;
        return;
      }
      ++counters_.polls;
    }
    std::this_thread::yield();
  }
}

void RawRingBufferBridge::copy_from_device(std::byte* out, std::size_t first, std::size_t count) {
  const std::size_t bytes = count * element_.size;
  const Allocation& device = device_.allocation();
  if (mode_ == RingTransferMode::Unified) {
    std::memcpy(out, device_.view().host_data() + first * element_.size, bytes);
  } else {
    device_.backend()->copy(Segment::host_view(out, bytes), 0, *device.segment,
                            device.offset + first * element_.size, bytes, stream_.get());
  }
  ++counters_.copies_from_device;
}

void RawRingBufferBridge::pull_from_device(void* out, std::size_t first, std::size_t count) {
  if (count == 0 || count > capacity_ || first >= capacity_ || out == nullptr) {
    throw InvalidArgument(describe_ring(capacity_, element_, device_.resource()) + ": pull of " +
                          std::to_string(count) + " elements from position " + std::to_string(first) +
                          (out == nullptr ? " into no memory" : "") + "; 1 to " + std::to_string(capacity_) +
                          " elements from a position below " + std::to_string(capacity_));
  }
  {
    const std::lock_guard lock(mutex_);
    auto* to = static_cast<std::byte*>(out);
    const std::size_t head = std::min(count, capacity_ - first);
    copy_from_device(to, first, head);
    if (head < count) copy_from_device(to + head * element_.size, 0, count - head);
    if (flushed_) flushed_->record(*stream_);
    ++counters_.pulls;
    counters_.bytes_from_device += count * element_.size;
  }
  // The pull was queued behind the running flushes: waiting for the stream waits for all of them.
  wait();
}

}  // namespace unimem
