#pragma once
// NamedBuffers: the MemoryManager's buffers that have a name. The manager owns them; they are created,
// looked up, grown, copied and freed by name through manager.named(), and freed with the manager.
//
//   NamedBuffers& named = manager.named();
//   named.create<float>("kv_cache", 4096, BufferConfig::growable());
//   named.grow<float>("kv_cache", 8192);  // keeps the contents
//
// Thread-safe: the buffers sit behind one mutex. A pressure change caused inside one of these calls is
// delivered (MemoryManager::on_pressure_change) when the call has released that mutex, just before it
// returns, so a callback may call any function of the manager or of its named buffers. Views returned by
// create()/get()/grow() do not keep a named buffer alive: free() or a growth invalidates them.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "unimem/backend/types.hpp"
#include "unimem/buffer/buffer_view.hpp"
#include "unimem/buffer/element_type.hpp"
#include "unimem/buffer/raw_view.hpp"
#include "unimem/buffer/transfer_future.hpp"
#include "unimem/manager/buffer_config.hpp"
#include "unimem/manager/leak_report.hpp"
#include "unimem/resource/pressure_adaptor.hpp"

namespace unimem {

class MemoryManager;
class Stream;

class NamedBuffers {
 public:
  ~NamedBuffers();
  NamedBuffers(const NamedBuffers&) = delete;
  NamedBuffers& operator=(const NamedBuffers&) = delete;
  NamedBuffers(NamedBuffers&&) = delete;
  NamedBuffers& operator=(NamedBuffers&&) = delete;

  // Allocates `count` elements of T under `name` and returns a view of them. Throws InvalidArgument for an
  // empty or taken name, a zero count, a bad config, or more than config.max_size_bytes; OutOfMemory when
  // the named buffers would hold more than MemoryConfig.memory_limit_bytes together (when set), or the device
  // is full (with the figures MemoryManager::allocate adds).
  template <typename T>
  BufferView<T> create(std::string_view name, std::size_t count, const BufferConfig& config = {}) {
    return BufferView<T>(create_raw(name, element_type_of<T>(), count, config));
  }
  // The buffer's elements. Throws InvalidArgument for an unknown name, TypeMismatch naming both types when it
  // holds another type.
  template <typename T>
  [[nodiscard]] BufferView<T> get(std::string_view name) const {
    return BufferView<T>(get_raw(name, element_type_of<T>()));
  }
  // Makes the buffer hold at least `count` elements: nothing when it does; otherwise it moves to a new
  // allocation of max(count, size x growth_factor) elements (at most max_size_bytes) with its contents, and
  // the old views are invalid. Throws as get() does, InvalidArgument naming the buffer, the request and the
  // maximum past max_size_bytes, and as create() does; the buffer is unchanged after any failure.
  template <typename T>
  BufferView<T> grow(std::string_view name, std::size_t count) {
    return BufferView<T>(grow_raw(name, element_type_of<T>(), count));
  }
  // Frees the buffer. Throws InvalidArgument for an unknown name.
  void free(std::string_view name);
  [[nodiscard]] bool contains(std::string_view name) const;
  // Named buffers live now.
  [[nodiscard]] std::size_t count() const;
  // Bytes the named buffers hold now, and the most they held at once.
  [[nodiscard]] std::size_t bytes() const;
  [[nodiscard]] std::size_t peak_bytes() const;
  // Creations, growths and asynchronous transfers made so far.
  [[nodiscard]] std::uint64_t allocation_count() const;
  [[nodiscard]] std::uint64_t resize_count() const;
  [[nodiscard]] std::uint64_t async_transfer_count() const;

  // Queued on the buffer's own stream, from element 0; `out` / `data` stay alive and untouched until the
  // future completes. Throws as get() does, and InvalidArgument for more elements than the buffer holds.
  template <typename T>
  [[nodiscard]] TransferFuture copy_to_host_async(std::string_view name, std::span<T> out) {
    return transfer(name, element_type_of<T>(), [out](const RawView& memory, Stream& stream) {
      return memory.copy_to_host_async(out.data(), out.size(), 0, stream);
    });
  }
  template <typename T>
  [[nodiscard]] TransferFuture copy_from_host_async(std::string_view name, std::span<const T> data) {
    return transfer(name, element_type_of<T>(), [data](const RawView& memory, Stream& stream) {
      return memory.copy_from_host_async(data.data(), data.size(), 0, stream);
    });
  }

  // Double-buffered downloads of a named buffer (DoubleBufferedDownload): start_async_download queues a copy
  // of all of its elements into one of two host buffers (the device's pinned memory where it has some), on a
  // stream of the buffer's own, after the asynchronous copies queued on the buffer before and before the
  // ones queued after (writes through views must wait for the download); at most two are pending per buffer.
  // Each counts as an asynchronous transfer. wait_for_download blocks until the oldest pending one has
  // completed and returns its elements, valid until the next-but-one start_async_download of that buffer, its
  // growth or its free (both of which wait for its pending downloads and drop them). Waits of different
  // buffers run concurrently. Throws as get() does; InvalidArgument naming the buffer when two downloads are
  // pending already (start) or none is (wait); rethrows a failed download.
  template <typename T>
  void start_async_download(std::string_view name) {
    start_download(name, element_type_of<T>());
  }
  template <typename T>
  [[nodiscard]] std::span<const T> wait_for_download(std::string_view name) {
    const std::span<const std::byte> bytes = wait_download(name, element_type_of<T>());
    return {reinterpret_cast<const T*>(bytes.data()), bytes.size() / sizeof(T)};
  }

 private:
  friend class MemoryManager;
  struct State;
  // The two host buffers of one buffer's downloads, which the leak check counts against the buffer.
  struct DownloadMemory {
    DeviceId device;
    std::size_t bytes_each = 0;
  };
  using Transfer = std::function<TransferFuture(const RawView& memory, Stream& stream)>;

  explicit NamedBuffers(MemoryManager& manager);

  RawView create_raw(std::string_view name, ElementType element, std::size_t count,
                     const BufferConfig& config);
  [[nodiscard]] RawView get_raw(std::string_view name, ElementType element) const;
  RawView grow_raw(std::string_view name, ElementType element, std::size_t count);
  void start_download(std::string_view name, ElementType element);
  [[nodiscard]] std::span<const std::byte> wait_download(std::string_view name, ElementType element);
  // Runs `transfer` on the buffer's memory and own stream, under the named-buffer mutex.
  TransferFuture transfer(std::string_view name, ElementType element, const Transfer& transfer);
  // Every live buffer, and the host memory of their downloads (MemoryManager::check_leaks).
  [[nodiscard]] std::vector<NamedBufferRecord> records(std::vector<DownloadMemory>& downloads) const;
  // True when the calling thread is inside a call that holds the named-buffer mutex: the change is queued
  // and delivered when the call releases it.
  static bool defer_pressure_change(const MemoryManager& manager, DeviceId device, PressureLevel previous,
                                    PressureLevel current);

  MemoryManager& manager_;
  std::unique_ptr<State> state_;
};

}  // namespace unimem
