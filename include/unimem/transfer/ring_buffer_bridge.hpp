#pragma once
// RingBufferBridge<T>: a host ring that producers push into and a device buffer of the same capacity that
// mirrors it. flush_to_device() moves what was pushed since the last flush to the same positions on the
// device (two copies when the range wraps around the end); pull_from_device() reads positions of the device
// buffer back. The device side consumes element i at position i % capacity.
//
// How a flush moves the bytes (RingTransferMode):
//   Synchronous  one backend copy per range, complete on return
//   AsyncStream  copies queued on the bridge's stream; wait() blocks on the stream, poll() asks it
//   Unified      ring and device buffer are one unified allocation: a flush copies nothing
//   DmaPolling   copies queued on the stream with a completion event after them, which poll() and wait()
//                query instead of blocking in the driver
// Space in the ring is free again once the flush that moved it has completed (checked without blocking on
// every push). A flush whose copy fails leaves its elements pending, so a later flush moves them again.
//
// Thread-safe: producers may push while another thread flushes.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>

#include "unimem/buffer/buffer_view.hpp"
#include "unimem/buffer/element_type.hpp"
#include "unimem/buffer/raw_buffer.hpp"

namespace unimem {

enum class RingTransferMode : std::uint8_t { Synchronous, AsyncStream, Unified, DmaPolling };

[[nodiscard]] std::string_view to_string(RingTransferMode mode) noexcept;

struct RingTransferCounters {
  std::uint64_t flushes = 0;           // flushes that had something to move
  std::uint64_t wrapped_flushes = 0;   // of those, the ones whose range wrapped around the end
  std::uint64_t copies_to_device = 0;  // backend copies they made (none in Unified mode)
  std::size_t bytes_to_device = 0;     // bytes flushed (handed over in place in Unified mode)
  std::uint64_t pulls = 0;
  std::uint64_t copies_from_device = 0;
  std::size_t bytes_from_device = 0;
  std::uint64_t polls = 0;  // completion checks that found the copies still running
};

// The untyped bridge behind RingBufferBridge<T>, in elements of a run-time type.
class RawRingBufferBridge {
 public:
  // A ring from `host_memory` (host-visible: pinned for the fastest copies) and a device buffer from
  // `device_memory`, `capacity` elements each. Throws InvalidArgument for a zero capacity or mode Unified
  // (which has its own constructor); NotSupported when the ring memory is not host-visible; what the
  // resources throw.
  RawRingBufferBridge(MemoryResource& host_memory, MemoryResource& device_memory, ElementType element,
                      std::size_t capacity, RingTransferMode mode);
  // Mode Unified: one allocation of unified memory is ring and device buffer. NotSupported for a resource of
  // another kind.
  RawRingBufferBridge(MemoryResource& unified_memory, ElementType element, std::size_t capacity);
  // Waits for flushes still running (their failures are dropped).
  ~RawRingBufferBridge();
  RawRingBufferBridge(const RawRingBufferBridge&) = delete;
  RawRingBufferBridge& operator=(const RawRingBufferBridge&) = delete;
  RawRingBufferBridge(RawRingBufferBridge&&) = delete;
  RawRingBufferBridge& operator=(RawRingBufferBridge&&) = delete;

  // Appends `count` elements. Throws InvalidArgument for zero elements or more than the free space (naming
  // the count, the free space, the capacity and what is pending and in flight); nothing is pushed then. A
  // flush found failed while making room is rethrown, as poll() does.
  void push(const void* items, std::size_t count);
  // The same, but returns false instead of throwing when the elements do not fit now (a producer then
  // flushes, or waits for a flush to complete). Throws InvalidArgument for zero elements or more than the
  // capacity, which never fit.
  [[nodiscard]] bool try_push(const void* items, std::size_t count);
  // Moves the pending elements to the device (see the modes); returns how many. Throws what the copy throws.
  std::size_t flush_to_device();
  // Copies `count` elements starting at position `first` of the device buffer (wrapping around the end) into
  // `out`, after the flushes queued before it. Throws InvalidArgument for zero elements, more than the
  // capacity or a first position outside it.
  void pull_from_device(void* out, std::size_t first, std::size_t count);
  // True when no flush is running; frees the ring space of those that completed. Never blocks. Rethrows a
  // failed flush's error (its elements are pending again).
  bool poll();
  // Returns once no flush is running (blocking on the stream in AsyncStream mode, polling in DmaPolling
  // mode). Rethrows as poll() does.
  void wait();

  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] RingTransferMode mode() const noexcept { return mode_; }
  [[nodiscard]] const ElementType& element_type() const noexcept { return element_; }
  // Elements pushed and not yet flushed; flushed and still being copied; room for pushes now.
  [[nodiscard]] std::size_t pending() const;
  [[nodiscard]] std::size_t in_flight() const;
  [[nodiscard]] std::size_t free_space() const;
  [[nodiscard]] RingTransferCounters counters() const;
  // The device buffer (the unified allocation in Unified mode), for the device side's work.
  [[nodiscard]] const RawView& device_view() const noexcept { return device_.view(); }

 private:
  // The copy of `count` elements from ring position `first`, or into out from device position `first`.
  void copy_to_device(std::size_t first, std::size_t count);
  void copy_from_device(std::byte* out, std::size_t first, std::size_t count);
  // Under the lock: frees the space of completed flushes; true when none is running.
  bool reclaim();
  // Under the lock: copies the elements in when they fit, and says whether they did.
  bool push_locked(const void* items, std::size_t count);
  [[noreturn]] void refuse_push(std::size_t count) const;
  // Under the lock: whether the stream's work so far has completed, asking the driver once.
  bool stream_idle();

  ElementType element_;
  std::size_t capacity_;
  RingTransferMode mode_;
  RawBuffer ring_;                  // empty in Unified mode
  RawBuffer device_;                // the device buffer, or the unified allocation
  std::unique_ptr<Stream> stream_;  // AsyncStream and DmaPolling
  std::unique_ptr<Event> flushed_;  // DmaPolling: recorded after each flush's copies
  mutable std::mutex mutex_;
  std::uint64_t pushed_ = 0;         // elements pushed since construction
  std::uint64_t flushed_count_ = 0;  // of those, handed to a flush
  std::uint64_t completed_ = 0;      // of those, known to be on the device
  RingTransferCounters counters_;
};

template <typename T>
class RingBufferBridge {
 public:
  RingBufferBridge(MemoryResource& host_memory, MemoryResource& device_memory, std::size_t capacity,
                   RingTransferMode mode = RingTransferMode::Synchronous)
      : raw_(host_memory, device_memory, element_type_of<T>(), capacity, mode) {}
  // Mode Unified: one allocation of unified memory.
  RingBufferBridge(MemoryResource& unified_memory, std::size_t capacity)
      : raw_(unified_memory, element_type_of<T>(), capacity) {}

  void push(std::span<const T> items) { raw_.push(items.data(), items.size()); }
  void push(const T& item) { raw_.push(&item, 1); }
  [[nodiscard]] bool try_push(std::span<const T> items) { return raw_.try_push(items.data(), items.size()); }
  [[nodiscard]] bool try_push(const T& item) { return raw_.try_push(&item, 1); }
  std::size_t flush_to_device() { return raw_.flush_to_device(); }
  void pull_from_device(std::span<T> out, std::size_t first) {
    raw_.pull_from_device(out.data(), first, out.size());
  }
  bool poll() { return raw_.poll(); }
  void wait() { raw_.wait(); }

  [[nodiscard]] std::size_t capacity() const noexcept { return raw_.capacity(); }
  [[nodiscard]] RingTransferMode mode() const noexcept { return raw_.mode(); }
  [[nodiscard]] std::size_t pending() const { return raw_.pending(); }
  [[nodiscard]] std::size_t in_flight() const { return raw_.in_flight(); }
  [[nodiscard]] std::size_t free_space() const { return raw_.free_space(); }
  [[nodiscard]] RingTransferCounters counters() const { return raw_.counters(); }
  [[nodiscard]] BufferView<T> device_view() const { return BufferView<T>(raw_.device_view()); }

 private:
  RawRingBufferBridge raw_;
};

}  // namespace unimem
