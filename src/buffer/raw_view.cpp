#include "unimem/buffer/raw_view.hpp"

#include <algorithm>
#include <exception>
#include <memory>
#include <string>

#include "unimem/core/aligned_buffer.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem {

namespace {
// fill() with a pattern that is not one repeated byte copies blocks of about this size.
constexpr std::size_t kFillBlockBytes = 1 * MiB;
}  // namespace

RawView::RawView(const Allocation& allocation, ElementType element, std::size_t count, Stream* stream)
    : element_(element), count_(count), stream_(stream) {
  if (!allocation) throw InvalidArgument("buffer view: the allocation is empty");
  if (!element.known() || element.size == 0) {
    throw InvalidArgument("buffer view on " + to_string(allocation.device()) + ": no element type given");
  }
  if (count == 0) {
    throw InvalidArgument("buffer view of " + std::string(element.name) + " on " +
                          to_string(allocation.device()) + ": zero elements");
  }
  const std::size_t bytes = checked_mul(count, element.size);
  if (bytes > allocation.size) {
    throw InvalidArgument("buffer view: " + std::to_string(count) + " " + std::string(element.name) + " (" +
                          std::to_string(bytes) + " bytes) do not fit an allocation of " +
                          std::to_string(allocation.size) + " bytes on " + to_string(allocation.device()));
  }
  allocation_ = allocation;
  allocation_.size = bytes;
}

std::string RawView::describe() const {
  if (empty()) return "an empty buffer";
  return std::to_string(count_) + " " + std::string(element_.name) + " on " + to_string(device()) + " (" +
         std::string(to_string(kind())) + " memory)";
}

void RawView::check_not_empty(std::string_view operation) const {
  if (empty()) {
    throw InvalidArgument(std::string(operation) + ": the buffer is empty (moved from, or never allocated)");
  }
}

void RawView::check_elements(std::string_view operation, std::size_t count, std::size_t offset) const {
  check_not_empty(operation);
  if (offset > count_) {
    throw InvalidArgument(std::string(operation) + ": offset " + std::to_string(offset) +
                          " is past the end of " + describe());
  }
  if (count > count_ - offset) {
    throw InvalidArgument(std::string(operation) + ": " + std::to_string(count) + " elements at offset " +
                          std::to_string(offset) + " run past the end of " + describe() + " (room for " +
                          std::to_string(count_ - offset) + ")");
  }
}

void RawView::check_stream(std::string_view operation, const Stream& stream) const {
  if (&stream.backend() != backend() || stream.device() != device()) {
    throw InvalidArgument(std::string(operation) + ": the stream of " + to_string(stream.device()) +
                          " cannot order work on " + describe());
  }
}

template <typename Operation>
void RawView::run_ordered(Operation operation) const {
  operation(*backend(), stream_);
  if (stream_ != nullptr) stream_->synchronize();
}

void RawView::copy_from_host(const void* src, std::size_t count, std::size_t offset) const {
  check_elements("copy_from_host", count, offset);
  const std::size_t bytes = count * element_.size;
  run_ordered([&](Backend& backend, Stream* stream) {
    backend.copy(*allocation_.segment, allocation_.offset + offset * element_.size,
                 Segment::host_view(src, bytes), 0, bytes, stream);
  });
}

void RawView::copy_to_host(void* dst, std::size_t count, std::size_t offset) const {
  check_elements("copy_to_host", count, offset);
  const std::size_t bytes = count * element_.size;
  run_ordered([&](Backend& backend, Stream* stream) {
    backend.copy(Segment::host_view(dst, bytes), 0, *allocation_.segment,
                 allocation_.offset + offset * element_.size, bytes, stream);
  });
}

namespace {
// Queues `copy` on `stream` and records an event after it. Failures past validation belong to the transfer,
// so they travel in the future.
template <typename Copy>
TransferFuture queue_transfer(Backend& backend, Stream& stream, Copy copy) {
  try {
    std::unique_ptr<Event> done = backend.create_event(stream.device().index);
    copy();
    done->record(stream);
    return TransferFuture(std::move(done));
  } catch (...) {
    return TransferFuture::failed(std::current_exception());
  }
}
}  // namespace

TransferFuture RawView::copy_from_host_async(const void* src, std::size_t count, std::size_t offset,
                                             Stream& stream) const {
  check_elements("copy_from_host_async", count, offset);
  check_stream("copy_from_host_async", stream);
  const std::size_t bytes = count * element_.size;
  return queue_transfer(*backend(), stream, [&] {
    backend()->copy(*allocation_.segment, allocation_.offset + offset * element_.size,
                    Segment::host_view(src, bytes), 0, bytes, &stream);
  });
}

TransferFuture RawView::copy_to_host_async(void* dst, std::size_t count, std::size_t offset,
                                           Stream& stream) const {
  check_elements("copy_to_host_async", count, offset);
  check_stream("copy_to_host_async", stream);
  const std::size_t bytes = count * element_.size;
  return queue_transfer(*backend(), stream, [&] {
    backend()->copy(Segment::host_view(dst, bytes), 0, *allocation_.segment,
                    allocation_.offset + offset * element_.size, bytes, &stream);
  });
}

void RawView::fill_bytes(std::uint8_t value) const {
  check_not_empty("fill");
  run_ordered([&](Backend& backend, Stream* stream) {
    backend.memset(*allocation_.segment, allocation_.offset, value, allocation_.size, stream);
  });
}

void RawView::fill(const void* element) const {
  check_not_empty("fill");
  const auto* pattern = static_cast<const std::byte*>(element);
  const std::byte first = pattern[0];
  if (std::all_of(pattern, pattern + element_.size, [first](std::byte b) { return b == first; })) {
    fill_bytes(static_cast<std::uint8_t>(first));
    return;
  }
  const std::size_t block_count = std::min(count_, std::max<std::size_t>(1, kFillBlockBytes / element_.size));
  AlignedBuffer block(block_count * element_.size);
  for (std::size_t i = 0; i < block_count; ++i) {
    std::copy_n(pattern, element_.size, block.data() + i * element_.size);
  }
  for (std::size_t done = 0; done < count_; done += block_count) {
    copy_from_host(block.data(), std::min(block_count, count_ - done), done);
  }
}

void RawView::prefetch(PrefetchTarget target, Stream* stream) const {
  check_not_empty("prefetch");
  if (stream != nullptr) {
    check_stream("prefetch", *stream);
    backend()->prefetch(*allocation_.segment, allocation_.offset, allocation_.size, target, stream);
    return;
  }
  run_ordered([&](Backend& backend, Stream* order) {
    backend.prefetch(*allocation_.segment, allocation_.offset, allocation_.size, target, order);
  });
}

std::byte* RawView::host_data() const {
  check_not_empty("host_span");
  if (!host_visible()) {
    throw NotSupported(
        "host_span: " + describe() +
        " is not host-visible; copy it with copy_to_host, or allocate pinned or unified memory");
  }
  return allocation_.host_ptr();
}

RawView RawView::subview(std::size_t offset, std::size_t count) const {
  check_elements("subview", count, offset);
  Allocation part = allocation_;
  part.offset += offset * element_.size;
  part.size = count * element_.size;
  return RawView(part, element_, count, stream_);
}

RawView RawView::as(ElementType target) const {
  check_not_empty("as");
  if (target == element_) return *this;
  if (!is_raw_bytes(element_) && !is_raw_bytes(target)) {
    throw TypeMismatch("cannot view " + describe() + " as " + std::string(target.name) + ": a buffer of " +
                       std::string(element_.name) + " is not a buffer of " + std::string(target.name) +
                       " (only raw bytes may be reinterpreted)");
  }
  if (allocation_.size % target.size != 0) {
    throw InvalidArgument("cannot view " + describe() + " as " + std::string(target.name) + ": its " +
                          std::to_string(allocation_.size) + " bytes are not a whole number of " +
                          std::to_string(target.size) + "-byte elements");
  }
  if (allocation_.offset % target.alignment != 0) {
    throw InvalidArgument("cannot view " + describe() + " as " + std::string(target.name) + ": offset " +
                          std::to_string(allocation_.offset) + " is not aligned to " +
                          std::to_string(target.alignment) + " bytes");
  }
  return RawView(allocation_, target, allocation_.size / target.size, stream_);
}

}  // namespace unimem
