#pragma once
// Tensor<T>: a Buffer<T> with a shape (row-major, outermost extent first). Uploads and downloads check the
// shape and the element count, so that a [3, 2] array never silently lands in a [2, 3] tensor.
//
// download_async() returns at once and calls its callback exactly once, on the process-wide CompletionQueue's
// worker thread, when the copy has completed or failed: with nullptr on success, or with the failure (an
// unbacked simulated device, a backend error). If download_async itself throws (a bad span, an empty
// callback), nothing was queued and the callback is never called. Until the callback runs, the tensor and the
// output span must stay alive and the span untouched. Any number of downloads may be in flight at once.
//
// A tensor is used by one thread at a time (its callbacks run elsewhere and only see what they capture). Its
// asynchronous work goes to the buffer's own stream (see RawBuffer), so synchronous calls see it.

#include <cstddef>
#include <span>
#include <utility>

#include "unimem/buffer/buffer.hpp"
#include "unimem/buffer/completion_queue.hpp"
#include "unimem/buffer/tensor_shape.hpp"
#include "unimem/buffer/transfer_future.hpp"
#include "unimem/core/error.hpp"

namespace unimem {

template <typename T>
class Tensor {
 public:
  Tensor() = default;
  // Allocates element_count(shape) elements (InvalidArgument for no dimensions, a zero extent or an overflow,
  // naming the shape); otherwise as Buffer<T>.
  Tensor(MemoryResource& resource, TensorShape shape, Stream* stream = nullptr)
      : shape_(std::move(shape)), buffer_(resource, element_count(shape_), stream) {}

  [[nodiscard]] const TensorShape& shape() const noexcept { return shape_; }
  [[nodiscard]] std::size_t rank() const noexcept { return shape_.size(); }
  [[nodiscard]] std::size_t size() const noexcept { return buffer_.size(); }
  [[nodiscard]] std::size_t bytes() const noexcept { return buffer_.bytes(); }
  [[nodiscard]] DeviceId device() const noexcept { return buffer_.device(); }
  [[nodiscard]] MemoryKind kind() const noexcept { return buffer_.kind(); }
  [[nodiscard]] Buffer<T>& buffer() noexcept { return buffer_; }
  [[nodiscard]] const Buffer<T>& buffer() const noexcept { return buffer_; }

  // Gives the same elements another shape with the same element count (InvalidArgument naming both shapes).
  void reshape(TensorShape shape) {
    if (shape_.empty() || element_count(shape) != size()) {
      throw InvalidArgument("reshape: shape " + format_shape(shape) + " does not hold the " +
                            std::to_string(size()) + " elements of shape " + format_shape(shape_));
    }
    shape_ = std::move(shape);
  }

  // Copies all elements in. `shape` must be the tensor's (InvalidArgument naming both shapes) and `data`
  // must hold its element count; the overload without a shape checks only the count.
  void upload(std::span<const T> data, const TensorShape& shape) {
    require_same_shape("upload", shape_, shape);
    upload(data);
  }
  void upload(std::span<const T> data) {
    require_element_count("upload", shape_, data.size());
    buffer_.copy_from_host(data);
  }
  // Queued on the tensor's own stream; `data` stays alive and untouched until the future completes.
  [[nodiscard]] TransferFuture upload_async(std::span<const T> data) {
    require_element_count("upload_async", shape_, data.size());
    return buffer_.copy_from_host_async(data);
  }

  // Copies all elements out, with the same checks as upload().
  void download(std::span<T> out, const TensorShape& shape) const {
    require_same_shape("download", shape_, shape);
    download(out);
  }
  void download(std::span<T> out) const {
    require_element_count("download", shape_, out.size());
    buffer_.copy_to_host(out);
  }

  // Copies all elements out without waiting, on the tensor's own stream or on `stream`, and calls
  // `callback` once the copy has completed or failed (see the header comment).
  void download_async(std::span<T> out, TransferCallback callback) {
    check_download_async(out, callback);
    CompletionQueue::shared().submit(buffer_.copy_to_host_async(out), std::move(callback));
  }
  void download_async(std::span<T> out, Stream& stream, TransferCallback callback) const {
    check_download_async(out, callback);
    CompletionQueue::shared().submit(buffer_.copy_to_host_async(out, stream), std::move(callback));
  }

 private:
  void check_download_async(std::span<T> out, const TransferCallback& callback) const {
    require_element_count("download_async", shape_, out.size());
    if (!callback) throw InvalidArgument("download_async: the callback is empty");
  }

  TensorShape shape_;
  Buffer<T> buffer_;
};

}  // namespace unimem
