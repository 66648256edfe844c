#include "unimem/transfer/double_buffered_download.hpp"

#include <string>

#include "unimem/buffer/element_type.hpp"

namespace unimem {

DoubleBufferedDownload::DoubleBufferedDownload(Backend& backend, int device, MemoryResource& host_memory,
                                               std::size_t capacity_bytes, Stream* stream)
    : backend_(&backend), device_(device), capacity_(capacity_bytes), stream_(stream) {
  const DeviceId id = backend.device_info(device).id;  // validates the index
  if (capacity_bytes == 0) {
    throw InvalidArgument("DoubleBufferedDownload: a capacity of 0 bytes for downloads from " +
                          to_string(id));
  }
  if (stream != nullptr && (&stream->backend() != &backend || stream->device() != id)) {
    throw InvalidArgument("DoubleBufferedDownload: the stream of " + to_string(stream->device()) +
                          " cannot order downloads from " + to_string(id));
  }
  for (Slot& slot : slots_) {
    slot.host = RawBuffer(host_memory, element_type_of<std::byte>(), capacity_bytes);
    if (!slot.host.view().host_visible()) {
      throw NotSupported("DoubleBufferedDownload: " + std::string(to_string(host_memory.kind())) +
                         " memory of " + to_string(host_memory.device()) +
                         " is not host-visible; downloads need host buffers");
    }
    slot.done = backend.create_event(device);
  }
  if (stream_ == nullptr) {
    own_stream_ = backend.create_stream(device);
    stream_ = own_stream_.get();
  }
}

DoubleBufferedDownload::~DoubleBufferedDownload() {
  for (; pending_ != 0; --pending_) {
    try {
      slots_[(next_ + 2 - pending_) % 2].done->synchronize();
    } catch (...) {
      // A failure nobody waited for: the buffers are freed all the same.
    }
  }
}

void DoubleBufferedDownload::start_async_download(const TransferEndpoint& source, std::size_t bytes) {
  const auto refuse = [](const std::string& why) {
    throw InvalidArgument("DoubleBufferedDownload::start_async_download: " + why);
  };
  if (pending_ == 2) refuse("two downloads are pending already; call wait_for_download() first");
  if (bytes == 0 || bytes > capacity_) {
    refuse(std::to_string(bytes) + " bytes; the host buffers hold 1 to " + std::to_string(capacity_));
  }
  if (!source.segment) refuse("the source endpoint is empty");
  if (bytes > source.size) {
    refuse(std::to_string(bytes) + " bytes from " + source.describe() + ", which holds " +
           std::to_string(source.size));
  }
  const DeviceId device{backend_->kind(), device_};
  const bool reachable =
      source.segment.host_visible() || (source.backend() == backend_ && source.device() == device);
  if (!reachable)
    refuse("the source is " + source.describe() + ", not memory of " + to_string(device) + " or host memory");
  Slot& slot = slots_[next_];
  const Allocation& host = slot.host.allocation();
  backend_->copy(*host.segment, host.offset, source.segment, source.offset, bytes, stream_);
  slot.done->record(*stream_);
  slot.bytes = bytes;
  next_ = 1 - next_;
  ++pending_;
}

std::span<const std::byte> DoubleBufferedDownload::wait_for_bytes() {
  if (pending_ == 0) {
    throw InvalidArgument("DoubleBufferedDownload::wait_for_download: no download is pending");
  }
  Slot& slot = slots_[(next_ + 2 - pending_) % 2];
  --pending_;  // waited for, whether it succeeded or not
  slot.done->synchronize();
  ++completed_;
  return {slot.host.view().host_data(), slot.bytes};
}

}  // namespace unimem
