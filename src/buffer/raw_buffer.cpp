#include "unimem/buffer/raw_buffer.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/core/size.hpp"

namespace unimem {

RawBuffer::RawBuffer(MemoryResource& resource, ElementType element, std::size_t count, Stream* stream)
    : allocation_stream_(stream) {
  if (!element.known() || element.size == 0) {
    throw InvalidArgument("buffer on " + to_string(resource.device()) + ": no element type given");
  }
  if (count == 0) {
    throw InvalidArgument("buffer of " + std::string(element.name) + " on " + to_string(resource.device()) +
                          ": zero elements requested");
  }
  if (stream != nullptr &&
      (&stream->backend() != &resource.backend() || stream->device() != resource.device())) {
    throw InvalidArgument("buffer on " + to_string(resource.device()) + ": the stream of " +
                          to_string(stream->device()) + " cannot order its allocation");
  }
  const std::size_t bytes = checked_mul(count, element.size);
  const Allocation allocation =
      resource.allocate(bytes, stream, std::max(kDefaultAlignment, element.alignment));
  // An adaptor may serve the request from another backend (a fallback to host memory); the stream cannot
  // order work there, so the buffer then works in host order.
  Stream* order = stream != nullptr && &stream->backend() == allocation.backend() ? stream : nullptr;
  try {
    view_ = RawView(allocation, element, count, order);
  } catch (...) {
    resource.deallocate(allocation, stream);
    throw;
  }
  resource_ = &resource;
}

RawBuffer::~RawBuffer() {
  release();
}

RawBuffer::RawBuffer(RawBuffer&& other) noexcept
    : resource_(std::exchange(other.resource_, nullptr)),
      view_(std::exchange(other.view_, RawView())),
      created_stream_(std::move(other.created_stream_)),
      allocation_stream_(std::exchange(other.allocation_stream_, nullptr)) {}

RawBuffer& RawBuffer::operator=(RawBuffer&& other) noexcept {
  if (this != &other) {
    release();
    resource_ = std::exchange(other.resource_, nullptr);
    view_ = std::exchange(other.view_, RawView());
    created_stream_ = std::move(other.created_stream_);
    allocation_stream_ = std::exchange(other.allocation_stream_, nullptr);
  }
  return *this;
}

MemoryResource& RawBuffer::resource() const {
  if (resource_ == nullptr)
    throw InvalidArgument("resource: the buffer is empty (moved from, or never allocated)");
  return *resource_;
}

Stream& RawBuffer::own_stream() {
  if (resource_ == nullptr) {
    throw InvalidArgument("own_stream: the buffer is empty (moved from, or never allocated)");
  }
  if (view_.stream() != nullptr) return *view_.stream();
  if (created_stream_ == nullptr) {
    created_stream_ = backend()->create_stream(device().index);
    view_ = RawView(view_.allocation(), view_.element_type(), view_.size(), created_stream_.get());
  }
  return *created_stream_;
}

void RawBuffer::release() noexcept {
  if (resource_ == nullptr) return;
  if (created_stream_ != nullptr) {
    // Work still queued on the buffer's own stream may read or write the memory about to be freed.
    try {
      created_stream_->synchronize();
    } catch (const std::exception& e) {
      report_misuse(std::string("buffer on ") + to_string(device()) +
                    ": its stream failed while the buffer was being freed: " + e.what());
    }
  }
  resource_->deallocate(view_.allocation(), allocation_stream_);
  created_stream_.reset();
  resource_ = nullptr;
  view_ = RawView();
  allocation_stream_ = nullptr;
}

MemoryResource& require_memory_kind(MemoryResource& resource, MemoryKind kind, std::string_view buffer) {
  if (resource.kind() != kind) {
    throw NotSupported(std::string(buffer) + ": the resource on " + to_string(resource.device()) +
                       " serves " + std::string(to_string(resource.kind())) + " memory, not " +
                       std::string(to_string(kind)) + " memory");
  }
  return resource;
}

}  // namespace unimem
