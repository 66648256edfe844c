#pragma once
// TransferEngine: copies bytes between any two endpoints (pageable host memory, pinned, unified, device
// memory of any backend and device, at any offsets), choosing how from where the bytes are:
//
//   both sides host-visible, or device memory and pinned/unified memory of its backend -> Direct
//   device memory of one device on both sides                                         -> DeviceLocal
//   two devices of one backend with peer access enabled                              -> Peer
//   two devices of one backend whose memories are both host RAM                       -> Direct
//   pageable host memory and memory of a device that shares the host's RAM            -> Direct
//   pageable host memory and device memory (the device has pinned memory)             -> PinnedStaging
//   device memory of two devices with no direct path (two backends, no peer access)   -> HostStaged
//
// (A device whose memory is host RAM (Capabilities::host_unified_memory: PoCL's CPU devices, integrated GPUs)
// copies pageable memory at memcpy speed, so staging would only add a second memcpy; a device without pinned
// memory, such as a simulated one, has nothing to stage through. Both get Direct for pageable memory.)
// TransferOptions::strategy forces one instead.
//
// Staged strategies move the bytes through staging buffers (pinned memory of a device involved, from a
// StagingPool per device, created on first use and reused): in chunks, `pipeline_depth` buffers per
// transfer, so that a device's copy of one chunk overlaps the host's copy of the next; or, where the host
// moves both hops itself (host memory, and device memory in the host's RAM), slice by slice through one
// buffer, each slice small enough to stay in the cache between the two hops. Every buffer goes back to its
// pool on every path, errors included, after the device work that used it has completed.
//
// Synchronous copies run on the calling thread; asynchronous ones on the engine's worker threads (started on
// demand), and return a TransferFuture that carries the transfer's failure. At most
// `max_concurrent_transfers` transfers run at once, synchronous and asynchronous together; the others wait
// their turn (asynchronous ones in submission order). Thread-safe. The engine keeps streams and staging
// buffers of the devices it has copied to and from, so their backends must outlive it.
//
//   TransferEngine engine;
//   engine.copy(TransferEndpoint::from(device_buffer), TransferEndpoint::host(std::span(values)), bytes);
//   TransferFuture f = engine.copy_async(TransferEndpoint::host(std::span(out)),
//                                        TransferEndpoint::from(device_buffer), bytes);
//   engine.then(std::move(f), [](std::exception_ptr error) { ... });  // exactly once, on a callback thread

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "unimem/buffer/completion_queue.hpp"
#include "unimem/buffer/transfer_future.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/memory_resource.hpp"
#include "unimem/transfer/transfer_endpoint.hpp"
#include "unimem/transfer/transfer_statistics.hpp"
#include "unimem/transfer/transfer_strategy.hpp"

namespace unimem {

struct TransferEngineOptions {
  // Transfers running at once; more wait their turn.
  std::size_t max_concurrent_transfers = 4;
  // Bytes per staging buffer: the unit of a staged transfer's pipeline.
  std::size_t chunk_bytes = 4 * MiB;
  // Staging buffers per chunked staged transfer, in [1, 8]: 2 overlaps the two hops (double buffering), 1
  // does not. (A transfer whose hops the host moves itself takes one buffer, in cache-sized slices.)
  std::size_t pipeline_depth = 2;
  // Staging buffers each device's pool keeps for reuse when they are given back.
  std::size_t idle_staging_buffers = 8;
  // Resources to take staging buffers from, each for the device it serves (resource.device()), instead of
  // the engine's own pinned BackendResource for that device: pools and adaptors (fault injection, limits,
  // statistics) go here. Each must hand out host-visible memory and outlive the engine.
  std::vector<MemoryResource*> staging_resources;
  // Called on the thread that runs each transfer once it has its turn, before any byte moves (tracing,
  // tests). It must not start transfers on this engine and wait for them.
  std::function<void()> before_transfer;
};

// One copy of a batch.
struct TransferRequest {
  TransferEndpoint dst;
  TransferEndpoint src;
  std::size_t bytes = 0;
  TransferOptions options;
};

class TransferEngine {
 public:
  // Throws InvalidArgument for a zero concurrency limit or chunk size, a pipeline depth outside [1, 8], or a
  // staging resource that is null, listed twice for one device, or not host-visible.
  explicit TransferEngine(TransferEngineOptions options = {});
  // Runs every transfer still queued, delivers every callback, then joins the worker threads. Futures may
  // outlive the engine.
  ~TransferEngine();
  TransferEngine(const TransferEngine&) = delete;
  TransferEngine& operator=(const TransferEngine&) = delete;
  TransferEngine(TransferEngine&&) = delete;
  TransferEngine& operator=(TransferEngine&&) = delete;

  // The strategy Auto resolves to for these endpoints.
  [[nodiscard]] TransferStrategy choose_strategy(const TransferEndpoint& dst,
                                                 const TransferEndpoint& src) const;

  // Copies `bytes` from src to dst; complete on return. Throws InvalidArgument for zero bytes, a range past
  // either window, an empty endpoint or a read-only destination; NotSupported for a forced strategy that
  // cannot serve the endpoints (naming both); and whatever the copy itself throws (a backend's BackendError,
  // NotSupported from an unbacked simulated device, OutOfMemory for staging memory).
  void copy(const TransferEndpoint& dst, const TransferEndpoint& src, std::size_t bytes,
            const TransferOptions& options = {});
  // The same, on a worker thread. Bad requests throw here, as above, and queue nothing; failures of the copy
  // come back through the future. Both endpoints stay alive and untouched until it completes.
  [[nodiscard]] TransferFuture copy_async(const TransferEndpoint& dst, const TransferEndpoint& src,
                                          std::size_t bytes, const TransferOptions& options = {});

  // Every copy of the batch (each checked first: a bad one throws InvalidArgument naming its index, and
  // nothing runs), spread over the workers; one handle for all. The batch fails with the first failure its
  // copies report; the others still run.
  void copy_batch(const std::vector<TransferRequest>& requests);
  [[nodiscard]] TransferFuture copy_batch_async(const std::vector<TransferRequest>& requests);

  // Calls `on_complete` exactly once, when `transfer` completes, with its failure (nullptr on success), on
  // the engine's callback thread, in the order the calls to then() were made. Throws InvalidArgument for an
  // empty callback.
  void then(TransferFuture transfer, TransferCallback on_complete);

  [[nodiscard]] TransferStatistics statistics() const;
  void reset_statistics();
  [[nodiscard]] const TransferEngineOptions& options() const noexcept;

  // Staging buffers leased to running transfers, and kept idle for reuse, over every device.
  [[nodiscard]] std::size_t staging_buffers_leased() const;
  [[nodiscard]] std::size_t staging_buffers_idle() const;
  // Frees idle staging buffers and streams; returns the staging bytes given back.
  std::size_t trim();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace unimem
