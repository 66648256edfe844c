#pragma once
// DoubleBufferedDownload: downloads from one device into two host buffers used in turn (ping-pong), so that a
// loop can queue the download of step n and go on producing step n + 1 while the copy runs, and read step
// n's result only when it needs it:
//
//   DoubleBufferedDownload download(backend, 0, pinned, result_bytes);
//   for (int step = 0; step < steps; ++step) {
//     produce(step);                                        // device work on download.stream()
//     download.start_async_download(TransferEndpoint::from(result), result_bytes);
//     if (step > 0) consume(download.wait_for_download<float>());  // step - 1, already on the host
//   }
//   consume(download.wait_for_download<float>());
//
// Downloads are queued on the object's stream, in order after work the caller queued there (so producing on
// stream() needs no further synchronization). At most two downloads are pending at once; wait_for_download()
// returns the oldest, in a host buffer that stays valid until the next-but-one start_async_download().
// Not thread-safe: one loop drives it.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "unimem/backend/backend.hpp"
#include "unimem/buffer/raw_buffer.hpp"
#include "unimem/core/error.hpp"
#include "unimem/transfer/transfer_endpoint.hpp"

namespace unimem {

class DoubleBufferedDownload {
 public:
  // Two host buffers of `capacity_bytes` from `host_memory` (pinned memory of the device for the fastest
  // copies; any host-visible memory works) and a stream of `device` of `backend`, where the downloads come
  // from; with `stream` (of that device), downloads are queued on it instead. Throws InvalidArgument for a
  // zero capacity, a bad device or a stream of another device; NotSupported when `host_memory` is not
  // host-visible.
  DoubleBufferedDownload(Backend& backend, int device, MemoryResource& host_memory,
                         std::size_t capacity_bytes, Stream* stream = nullptr);
  // Waits for the downloads still pending (their failures are dropped: nobody asked for them).
  ~DoubleBufferedDownload();
  DoubleBufferedDownload(const DoubleBufferedDownload&) = delete;
  DoubleBufferedDownload& operator=(const DoubleBufferedDownload&) = delete;
  DoubleBufferedDownload(DoubleBufferedDownload&&) = delete;
  DoubleBufferedDownload& operator=(DoubleBufferedDownload&&) = delete;

  // Queues a download of `bytes` from `source` (memory of this device, or host-visible memory) into the next
  // host buffer and returns. Throws InvalidArgument when two downloads are already pending, when `bytes` is 0
  // or above the capacity, or past the source's window, or when the source is another device's memory; and
  // what the backend throws while queueing (nothing is pending then).
  void start_async_download(const TransferEndpoint& source, std::size_t bytes);
  template <typename T, typename Self>
  void start_async_download(const BufferAccess<T, Self>& buffer) {
    start_async_download(TransferEndpoint::from(buffer), buffer.bytes());
  }

  // Blocks until the oldest pending download has completed and returns its bytes as elements of T. Throws
  // InvalidArgument when none is pending or its size is not a whole number of T; rethrows the download's
  // failure (it is then no longer pending).
  template <typename T = std::byte>
  [[nodiscard]] std::span<const T> wait_for_download() {
    const std::span<const std::byte> bytes = wait_for_bytes();
    if (bytes.size() % sizeof(T) != 0) {
      throw InvalidArgument("DoubleBufferedDownload::wait_for_download: " + std::to_string(bytes.size()) +
                            " bytes are not a whole number of " + std::string(type_name<T>()) + " (" +
                            std::to_string(sizeof(T)) + " bytes each)");
    }
    return {reinterpret_cast<const T*>(bytes.data()), bytes.size() / sizeof(T)};
  }

  [[nodiscard]] std::size_t pending() const noexcept { return pending_; }
  [[nodiscard]] std::size_t capacity_bytes() const noexcept { return capacity_; }
  // The stream downloads are queued on.
  [[nodiscard]] Stream& stream() const noexcept { return *stream_; }
  // Downloads waited for so far.
  [[nodiscard]] std::uint64_t completed() const noexcept { return completed_; }

 private:
  struct Slot {
    RawBuffer host;
    std::unique_ptr<Event> done;
    std::size_t bytes = 0;
  };

  [[nodiscard]] std::span<const std::byte> wait_for_bytes();

  Backend* backend_;
  int device_;
  std::size_t capacity_;
  std::unique_ptr<Stream> own_stream_;
  Stream* stream_;
  Slot slots_[2];
  std::size_t next_ = 0;     // the slot the next download goes to
  std::size_t pending_ = 0;  // downloads started and not yet waited for
  std::uint64_t completed_ = 0;
};

}  // namespace unimem
