#pragma once
// ImportedBuffer<T>: data the caller already holds in host memory, made available on a device by
// MemoryManager::import_host. Where the device can address the caller's memory as it is (the host device),
// nothing is copied: the buffer is a view of that memory (Segment::host_view), kept here as a copy operand.
// Elsewhere the data is copied into a pooled buffer on the device, and copy_back() brings results home.
//
// The caller's memory must outlive the ImportedBuffer, and the device copy (when there is one) goes back to
// the manager's pool when the ImportedBuffer is destroyed; like any buffer of the manager, it must not
// outlive the manager.

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "unimem/backend/segment.hpp"
#include "unimem/buffer/buffer.hpp"
#include "unimem/core/error.hpp"

namespace unimem {

template <typename T>
class ImportedBuffer {
 public:
  ImportedBuffer() noexcept = default;
  // Zero-copy: `data` itself, on `device` (which addresses host memory directly).
  ImportedBuffer(std::span<T> data, DeviceId device)
      : data_(data),
        host_view_(std::make_unique<Segment>(Segment::host_view(data.data(), data.size_bytes()))),
        device_(device) {}
  // A copy of `data` already made into `copy`.
  ImportedBuffer(std::span<T> data, Buffer<T>&& copy)
      : data_(data),
        host_view_(std::make_unique<Segment>(Segment::host_view(data.data(), data.size_bytes()))),
        device_(copy.device()),
        copy_(std::move(copy)) {}

  // True when the device works on the caller's memory itself; false when it works on a copy.
  [[nodiscard]] bool zero_copy() const noexcept { return copy_.empty(); }
  // Where the data is: the device it was imported to, or the host after a CPU fallback of the copy.
  [[nodiscard]] DeviceId device() const noexcept { return device_; }
  [[nodiscard]] std::size_t size() const noexcept { return data_.size(); }
  // The caller's memory.
  [[nodiscard]] std::span<T> host_data() const noexcept { return data_; }
  // The caller's memory as a copy operand for Backend::copy, kept alive as long as this object. Throws
  // InvalidArgument on an empty ImportedBuffer.
  [[nodiscard]] const Segment& host_segment() const {
    if (host_view_ == nullptr) throw InvalidArgument("ImportedBuffer::host_segment: nothing was imported");
    return *host_view_;
  }
  // The copy on the device. Throws NotSupported naming the device when the import was zero-copy (use
  // host_data(): the device addresses it directly).
  [[nodiscard]] Buffer<T>& device_buffer() {
    if (zero_copy()) {
      throw NotSupported("ImportedBuffer::device_buffer: the import to " + to_string(device_) +
                         " is zero-copy; the data is the caller's memory (host_data())");
    }
    return copy_;
  }
  // Copies the device copy back into the caller's memory. Zero-copy: nothing to do, the results are there.
  void copy_back() {
    if (!zero_copy()) copy_.copy_to_host(data_);
  }

 private:
  std::span<T> data_;
  std::unique_ptr<Segment> host_view_;  // stays put when the ImportedBuffer moves
  DeviceId device_;
  Buffer<T> copy_;  // empty for a zero-copy import
};

}  // namespace unimem
