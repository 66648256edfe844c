#pragma once
// MirroredBuffer<T>: `size()` elements of T kept on a device and on the host, copied only when the side
// about to be used is stale. Each access says which side it uses and whether it writes, and the buffer
// tracks where the current data is (location()):
//
//   MirroredBuffer<float> x(device_memory, pinned_memory, n);  // or manager.allocate_mirrored<float>(n)
//   std::ranges::fill(x.host_span(), 1.0F);        // host writes: the device copy is stale (Host)
//   run_kernel(x.device_view());                   // uploads once (Both), then the device works
//   x.mark_device_modified();                      // the device wrote: the host copy is stale (Device)
//   float first = x.host_span_const()[0];          // downloads once (Both); a second read moves nothing
//
// Where the device memory is host-visible (host memory, unified memory, pinned memory, a host device) there
// is one copy, nothing is ever moved, and location() is always Both. A backed simulated device stands for a
// discrete GPU: it keeps two copies, which is how the transitions are exercised without one.
//
// Ordering: transfers run on the device buffer's own stream (stream()); device work queued there is ordered
// with them. Host accesses wait for the asynchronous transfers queued before them. A transfer that fails
// leaves location() as if it had succeeded and reports through its TransferFuture (or throws, when
// synchronous).
//
// Thread-safety as Buffer<T>: one thread at a time uses a buffer (and its mappings). The buffer must not be
// moved or destroyed while mapped; the resources must outlive it.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "unimem/buffer/buffer.hpp"
#include "unimem/buffer/buffer_view.hpp"
#include "unimem/buffer/element_type.hpp"
#include "unimem/buffer/transfer_future.hpp"
#include "unimem/core/error.hpp"
#include "unimem/resource/memory_resource.hpp"

namespace unimem {

// Where the current data of a MirroredBuffer is.
enum class MirrorLocation : std::uint8_t { Host, Device, Both };
// How a mapping uses the host copy. Write promises to overwrite every element: the host copy is not brought
// up to date first (so nothing is downloaded). Read leaves the device copy current, so writes through a Read
// mapping are not propagated.
enum class MapMode : std::uint8_t { Read, Write, ReadWrite };

[[nodiscard]] std::string_view to_string(MirrorLocation location) noexcept;
[[nodiscard]] std::string_view to_string(MapMode mode) noexcept;

namespace detail {
// True when one copy serves both sides (the device memory is host-addressable). Throws InvalidArgument naming
// `buffer`, the device and the kind when `host_memory` is not host-addressable.
bool check_mirror_resources(const MemoryResource& device_memory, const MemoryResource& host_memory,
                            std::string_view buffer);
[[noreturn]] void throw_mirror_misuse(std::string_view buffer, std::string_view operation,
                                      std::string_view why);
}  // namespace detail

template <typename T>
class MirroredBuffer {
 public:
  // The host copy, mapped: span() stays valid (and the device side untouched by this buffer's device
  // operations, which refuse to run) until the mapping is destroyed.
  class Mapping {
   public:
    ~Mapping() {
      if (owner_ != nullptr) --owner_->mappings_;
    }
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    Mapping(Mapping&& other) noexcept
        : owner_(std::exchange(other.owner_, nullptr)), span_(other.span_), mode_(other.mode_) {}
    Mapping& operator=(Mapping&&) = delete;

    [[nodiscard]] std::span<T> span() const noexcept { return span_; }
    [[nodiscard]] MapMode mode() const noexcept { return mode_; }

   private:
    friend class MirroredBuffer;
    Mapping(MirroredBuffer* owner, std::span<T> span, MapMode mode) noexcept
        : owner_(owner), span_(span), mode_(mode) {}

    MirroredBuffer* owner_;
    std::span<T> span_;
    MapMode mode_;
  };

  // An empty buffer: every operation but the accessors throws InvalidArgument.
  MirroredBuffer() noexcept = default;
  // `count` elements on `device_memory` and, unless that memory is host-visible, as many on `host_memory`
  // (pinned memory of the device for fast copies; any host-addressable memory works). Throws InvalidArgument
  // for host memory the host cannot address, and as Buffer<T> does (zero count, OutOfMemory, ...).
  MirroredBuffer(MemoryResource& device_memory, MemoryResource& host_memory, std::size_t count)
      : single_copy_(detail::check_mirror_resources(device_memory, host_memory, name())),
        device_(device_memory, count) {
    if (!single_copy_) host_ = Buffer<T>(host_memory, count);
  }
  MirroredBuffer(MirroredBuffer&& other) noexcept { take(other); }
  MirroredBuffer& operator=(MirroredBuffer&& other) noexcept {
    if (this != &other) take(other);
    return *this;
  }
  MirroredBuffer(const MirroredBuffer&) = delete;
  MirroredBuffer& operator=(const MirroredBuffer&) = delete;
  ~MirroredBuffer() = default;

  [[nodiscard]] bool empty() const noexcept { return device_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return device_.size(); }
  [[nodiscard]] std::size_t bytes() const noexcept { return device_.bytes(); }
  [[nodiscard]] DeviceId device() const noexcept { return device_.device(); }
  // True when one copy serves host and device (location() is then always Both).
  [[nodiscard]] bool single_copy() const noexcept { return single_copy_; }
  [[nodiscard]] MirrorLocation location() const noexcept { return location_; }
  // Copies made so far (each one direction, all elements), and accesses that found their side current and
  // moved nothing.
  [[nodiscard]] std::uint64_t transfers_done() const noexcept { return transfers_done_; }
  [[nodiscard]] std::uint64_t transfers_avoided() const noexcept { return transfers_avoided_; }
  // The stream transfers run on; device work queued here is ordered with them.
  [[nodiscard]] Stream& stream() {
    check_not_empty("stream");
    return device_.own_stream();
  }

  // The host copy, downloaded first when the device side is newer. The writable one marks the device copy
  // stale (location() becomes Host).
  [[nodiscard]] std::span<T> host_span() {
    check_not_empty("host_span");
    bring_host_current();
    if (!single_copy_) location_ = MirrorLocation::Host;
    return host_elements();
  }
  [[nodiscard]] std::span<const T> host_span_const() {
    check_not_empty("host_span_const");
    bring_host_current();
    return host_elements();
  }
  // The host copy as an RAII mapping (see MapMode). Throws InvalidArgument on an empty buffer.
  [[nodiscard]] Mapping map(MapMode mode) {
    check_not_empty("map(" + std::string(to_string(mode)) + ")");
    if (mode == MapMode::Write) {
      wait_for_transfers();
      ++transfers_avoided_;  // the promise to overwrite makes a download unnecessary
    } else {
      bring_host_current();
    }
    if (mode != MapMode::Read && !single_copy_) location_ = MirrorLocation::Host;
    ++mappings_;
    return Mapping(this, host_elements(), mode);
  }

  // The device copy, uploaded first when the host side is newer; for device work. Call
  // mark_device_modified() after work that writes it. Throws InvalidArgument while a mapping is live.
  [[nodiscard]] BufferView<T> device_view() {
    check_device_use("device_view");
    bring_device_current();
    return device_.view();
  }
  // Device work changed the elements: the host copy is stale (location() becomes Device). Throws
  // InvalidArgument while a mapping is live, or when the device copy was stale (location() Host: the device
  // work ran on old data; take device_view() before device work).
  void mark_device_modified() {
    check_device_use("mark_device_modified");
    if (single_copy_) return;
    if (location_ == MirrorLocation::Host) {
      detail::throw_mirror_misuse(
          name(), "mark_device_modified",
          "the device copy is stale (location Host); take device_view() before device work");
    }
    location_ = MirrorLocation::Device;
  }

  // Queue the copy that makes the device (host) side current, on stream(); an empty, ready future when that
  // side is current already. to_device_async throws InvalidArgument while a mapping is live.
  [[nodiscard]] TransferFuture to_device_async() {
    check_device_use("to_device_async");
    if (location_ != MirrorLocation::Host) {
      ++transfers_avoided_;
      return {};
    }
    TransferFuture future = device_.copy_from_host_async(std::span<const T>(host_.host_span()));
    queued();
    return future;
  }
  [[nodiscard]] TransferFuture to_host_async() {
    check_not_empty("to_host_async");
    if (location_ != MirrorLocation::Device) {
      ++transfers_avoided_;
      return {};
    }
    TransferFuture future = device_.copy_to_host_async(host_.host_span());
    queued();
    return future;
  }

 private:
  static std::string name() { return "MirroredBuffer<" + std::string(type_name<T>()) + ">"; }

  void take(MirroredBuffer& other) noexcept {
    single_copy_ = other.single_copy_;
    device_ = std::move(other.device_);
    host_ = std::move(other.host_);
    location_ = std::exchange(other.location_, MirrorLocation::Both);
    transfers_done_ = std::exchange(other.transfers_done_, 0);
    transfers_avoided_ = std::exchange(other.transfers_avoided_, 0);
    async_pending_ = std::exchange(other.async_pending_, false);
    mappings_ = std::exchange(other.mappings_, 0);
  }

  void check_not_empty(const std::string& operation) const {
    if (empty())
      detail::throw_mirror_misuse(name(), operation,
                                  "the buffer is empty (default-constructed or moved from)");
  }
  void check_device_use(const std::string& operation) const {
    check_not_empty(operation);
    if (mappings_ != 0) {
      detail::throw_mirror_misuse(
          name(), operation, std::to_string(mappings_) + " host mapping(s) are live; destroy them first");
    }
  }

  [[nodiscard]] std::span<T> host_elements() {
    return single_copy_ ? device_.host_span() : host_.host_span();
  }

  void queued() {
    ++transfers_done_;
    location_ = MirrorLocation::Both;
    async_pending_ = true;
  }
  // The host copy must not be read or written while an asynchronous transfer uses it.
  void wait_for_transfers() {
    if (!async_pending_) return;
    device_.own_stream().synchronize();
    async_pending_ = false;
  }
  void bring_host_current() {
    wait_for_transfers();
    if (location_ != MirrorLocation::Device) {
      ++transfers_avoided_;
      return;
    }
    device_.copy_to_host(host_.host_span());
    ++transfers_done_;
    location_ = MirrorLocation::Both;
  }
  void bring_device_current() {
    if (location_ != MirrorLocation::Host) {
      ++transfers_avoided_;
      return;
    }
    wait_for_transfers();
    device_.copy_from_host(std::span<const T>(host_.host_span()));
    ++transfers_done_;
    location_ = MirrorLocation::Both;
  }

  bool single_copy_ = false;
  Buffer<T> device_;
  Buffer<T> host_;                                  // empty when single_copy_
  MirrorLocation location_ = MirrorLocation::Both;  // fresh memory: neither side holds anything newer
  std::uint64_t transfers_done_ = 0;
  std::uint64_t transfers_avoided_ = 0;
  bool async_pending_ = false;  // a transfer was queued and host accesses must wait for it
  int mappings_ = 0;
};

}  // namespace unimem
