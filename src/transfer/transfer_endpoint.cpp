#include "unimem/transfer/transfer_endpoint.hpp"

#include <string>

#include "unimem/core/error.hpp"

namespace unimem {

namespace {

TransferEndpoint window(const Segment& segment, std::size_t start, std::size_t length,
                        std::size_t byte_offset, const char* what) {
  if (!segment) throw InvalidArgument(std::string("TransferEndpoint::from: the ") + what + " is empty");
  if (byte_offset >= length) {
    throw InvalidArgument(std::string("TransferEndpoint::from: offset ") + std::to_string(byte_offset) +
                          " is not inside the " + what + " of " + std::to_string(length) + " bytes on " +
                          to_string(segment.device));
  }
  return TransferEndpoint{segment, start + byte_offset, length - byte_offset, false};
}

}  // namespace

std::string_view to_string(MemoryLocation location) noexcept {
  switch (location) {
    case MemoryLocation::Pageable:
      return "pageable host memory";
    case MemoryLocation::Pinned:
      return "pinned host memory";
    case MemoryLocation::Unified:
      return "unified memory";
    case MemoryLocation::Device:
      return "device memory";
  }
  return "unknown memory";
}

TransferEndpoint TransferEndpoint::from(const Allocation& allocation, std::size_t byte_offset) {
  if (!allocation) throw InvalidArgument("TransferEndpoint::from: the allocation is empty");
  return window(*allocation.segment, allocation.offset, allocation.size, byte_offset, "allocation");
}

TransferEndpoint TransferEndpoint::from(const Segment& segment, std::size_t byte_offset) {
  return window(segment, 0, segment.size, byte_offset, "segment");
}

TransferEndpoint TransferEndpoint::from(const RawView& view, std::size_t element_offset) {
  if (view.empty()) throw InvalidArgument("TransferEndpoint::from: the view is empty");
  return from(view.allocation(), checked_mul(element_offset, view.element_type().size));
}

TransferEndpoint TransferEndpoint::host_bytes(void* data, std::size_t bytes) {
  if (data == nullptr || bytes == 0) {
    throw InvalidArgument("TransferEndpoint::host: empty host memory (" + std::to_string(bytes) + " bytes)");
  }
  return TransferEndpoint{Segment::host_view(data, bytes), 0, bytes, false};
}

TransferEndpoint TransferEndpoint::host_bytes(const void* data, std::size_t bytes) {
  if (data == nullptr || bytes == 0) {
    throw InvalidArgument("TransferEndpoint::host: empty host memory (" + std::to_string(bytes) + " bytes)");
  }
  return TransferEndpoint{Segment::host_view(data, bytes), 0, bytes, true};
}

MemoryLocation TransferEndpoint::location() const noexcept {
  switch (segment.kind) {
    case MemoryKind::PinnedHost:
      return MemoryLocation::Pinned;
    case MemoryKind::Unified:
      return MemoryLocation::Unified;
    case MemoryKind::Host:
      return MemoryLocation::Pageable;
    case MemoryKind::Device:
      break;
  }
  // The device memory of a host-visible device (the host backend) is ordinary host memory.
  return segment.host_visible() ? MemoryLocation::Pageable : MemoryLocation::Device;
}

std::string TransferEndpoint::describe() const {
  const std::string where = segment.is_host_view()
                                ? "host view of " + std::string(to_string(location()))
                                : to_string(segment.device) + " " + std::string(to_string(location())) +
                                      " (segment #" + std::to_string(segment.id) + ")";
  return where + ", bytes [" + std::to_string(offset) + ", " + std::to_string(offset + size) + ")";
}

}  // namespace unimem
