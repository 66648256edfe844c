#include "unimem/transfer/transfer_engine.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "transfer/completion_event.hpp"
#include "unimem/backend/host_backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/transfer/staging_pool.hpp"

namespace unimem {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxPipelineDepth = 8;
constexpr std::size_t kAssumedL2 = MiB;  // where the OS does not report the host's L2 cache
constexpr std::size_t kCacheLine = 64;

// The slice of a staged copy whose hops the host moves itself: a quarter of one core's L2 cache (the rest
// holds the source and destination lines streaming through), in whole cache lines; never more than one
// staging buffer of `buffer_bytes` holds.
std::size_t cache_resident_slice(std::size_t buffer_bytes) noexcept {
  const long reported = sysconf(_SC_LEVEL2_CACHE_SIZE);
  const std::size_t l2 = reported > 0 ? static_cast<std::size_t>(reported) : kAssumedL2;
  const std::size_t slice = std::min(l2 / 4, buffer_bytes);
  return slice >= kCacheLine ? slice / kCacheLine * kCacheLine : slice;
}

bool in_device_memory(const TransferEndpoint& endpoint) {
  return endpoint.location() == MemoryLocation::Device;
}

std::string between(const TransferEndpoint& dst, const TransferEndpoint& src) {
  return "from " + src.describe() + " to " + dst.describe();
}

// Pinned or unified memory of the device's own backend: the device copies from and to it directly.
bool reached_directly(const TransferEndpoint& host_side, const TransferEndpoint& device_side) {
  const MemoryLocation where = host_side.location();
  return (where == MemoryLocation::Pinned || where == MemoryLocation::Unified) &&
         host_side.backend() == device_side.backend();
}

bool peer_access(const TransferEndpoint& a, const TransferEndpoint& b) {
  const Backend& backend = *a.backend();
  return backend.peer_access_enabled(a.device().index, b.device().index) ||
         backend.peer_access_enabled(b.device().index, a.device().index);
}

std::size_t index_of(TransferStrategy strategy) {
  return static_cast<std::size_t>(strategy);
}

// Streams to reuse and the staging pool of one device.
struct DeviceResources {
  DeviceResources(Backend& b, int d) : backend(&b), device(d) {}

  Backend* backend;
  int device;
  std::mutex mutex;
  std::vector<std::unique_ptr<Stream>> idle_streams;
  std::unique_ptr<BackendResource> own_staging_memory;  // when no staging resource was given for the device
  std::unique_ptr<StagingPool> staging;                 // null: the device has no memory to stage through
  bool staging_resolved = false;
  std::optional<bool> host_unified_memory;  // the device's capability, read once
};

// A stream of one device for the length of one transfer. It goes back for reuse once its work has completed;
// a stream whose work failed is dropped instead.
class StreamLease {
 public:
  explicit StreamLease(DeviceResources& owner) : owner_(&owner) {
    {
      const std::lock_guard lock(owner.mutex);
      if (!owner.idle_streams.empty()) {
        stream_ = std::move(owner.idle_streams.back());
        owner.idle_streams.pop_back();
        return;
      }
    }
    stream_ = owner.backend->create_stream(owner.device);
  }
  ~StreamLease() {
    try {
      stream_->synchronize();
      const std::lock_guard lock(owner_->mutex);
      owner_->idle_streams.push_back(std::move(stream_));
    } catch (...) {
      // Failed work (already reported to the transfer) or no memory to keep the stream: it is destroyed.
    }
  }
  StreamLease(const StreamLease&) = delete;
  StreamLease& operator=(const StreamLease&) = delete;
  StreamLease(StreamLease&&) = delete;
  StreamLease& operator=(StreamLease&&) = delete;

  [[nodiscard]] Stream& get() const noexcept { return *stream_; }

 private:
  DeviceResources* owner_;
  std::unique_ptr<Stream> stream_;
};

// One hop of a staged copy run by the host: `bytes` at `at` (from the start of the caller's window of `side`)
// into or out of the start of `buffer`; a memcpy for host memory, a synchronous backend copy for device
// memory.
void host_hop(const TransferEndpoint& side, bool into_staging, const StagingPool::Lease& buffer,
              std::size_t at, std::size_t bytes) {
  if (!in_device_memory(side)) {
    if (into_staging) {
      std::memcpy(buffer.data(), side.host_ptr() + at, bytes);
    } else {
      std::memcpy(side.host_ptr() + at, buffer.data(), bytes);
    }
    return;
  }
  if (into_staging) {
    side.backend()->copy(buffer.segment(), buffer.offset(), side.segment, side.offset + at, bytes);
  } else {
    side.backend()->copy(side.segment, side.offset + at, buffer.segment(), buffer.offset(), bytes);
  }
}

}  // namespace

struct TransferEngine::Impl {
  struct Job {
    TransferRequest request;
    TransferStrategy strategy;
    detail::CompletionSignal* done;  // owned by the transfer's future, which outlives the job's completion
  };

  // One hop of a staged copy, between the caller's memory and the staging buffers: a backend copy on a stream
  // of the caller's device when that side is device memory, a host memcpy otherwise.
  class Hop {
   public:
    Hop(Impl& engine, const TransferEndpoint& side, bool into_staging, std::size_t slots)
        : side_(side), into_staging_(into_staging) {
      if (!in_device_memory(side)) return;
      stream_.emplace(engine.resources(*side.backend(), side.device().index));
      for (std::size_t i = 0; i < slots; ++i)
        events_.push_back(side.backend()->create_event(side.device().index));
    }

    [[nodiscard]] bool asynchronous() const noexcept { return stream_.has_value(); }

    // Moves `bytes` at `at` (from the start of the caller's window) into or out of `buffer`.
    void start(std::size_t slot, const StagingPool::Lease& buffer, std::size_t at, std::size_t bytes) {
      if (!stream_) {
        host_hop(side_, into_staging_, buffer, at, bytes);
        return;
      }
      Stream& stream = stream_->get();
      if (into_staging_) {
        side_.backend()->copy(buffer.segment(), buffer.offset(), side_.segment, side_.offset + at, bytes,
                              &stream);
      } else {
        side_.backend()->copy(side_.segment, side_.offset + at, buffer.segment(), buffer.offset(), bytes,
                              &stream);
      }
      events_[slot]->record(stream);
    }

    // Blocks until the last start() on `slot` has completed; rethrows its failure.
    void finish(std::size_t slot) {
      if (stream_) events_[slot]->synchronize();
    }

   private:
    TransferEndpoint side_;
    bool into_staging_;
    std::optional<StreamLease> stream_;
    std::vector<std::unique_ptr<Event>> events_;
  };

  explicit Impl(TransferEngineOptions engine_options)
      : options(std::move(engine_options)),
        slice(cache_resident_slice(options.chunk_bytes)),
        host_stream(host.create_stream(0)) {
    if (options.max_concurrent_transfers == 0) {
      throw InvalidArgument("TransferEngine: max_concurrent_transfers is 0; at least one transfer must run");
    }
    if (options.chunk_bytes == 0) throw InvalidArgument("TransferEngine: a staging chunk of 0 bytes");
    if (options.pipeline_depth == 0 || options.pipeline_depth > kMaxPipelineDepth) {
      throw InvalidArgument("TransferEngine: pipeline depth " + std::to_string(options.pipeline_depth) +
                            " is outside [1, " + std::to_string(kMaxPipelineDepth) + "]");
    }
    for (MemoryResource* resource : options.staging_resources) {
      if (resource == nullptr) throw InvalidArgument("TransferEngine: a staging resource is null");
      DeviceResources& r = resources(resource->backend(), resource->device().index);
      if (r.staging_resolved) {
        throw InvalidArgument("TransferEngine: two staging resources for " + to_string(resource->device()));
      }
      r.staging = std::make_unique<StagingPool>(*resource, options.chunk_bytes, options.idle_staging_buffers);
      r.staging_resolved = true;
    }
  }

  ~Impl() {
    {
      const std::lock_guard lock(mutex);
      stopping = true;
    }
    work_ready.notify_all();
    for (std::thread& worker : workers) worker.join();
  }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  Impl(Impl&&) = delete;
  Impl& operator=(Impl&&) = delete;

  DeviceResources& resources(Backend& backend, int device) {
    const std::lock_guard lock(resources_mutex);
    for (const auto& r : devices) {
      if (r->backend == &backend && r->device == device) return *r;
    }
    return *devices.emplace_back(std::make_unique<DeviceResources>(backend, device));
  }

  // The pool of pinned buffers of the endpoint's device (the given resource, or the device's own pinned
  // memory), or nullptr when it has none.
  StagingPool* pinned_staging(const TransferEndpoint& side) {
    DeviceResources& r = resources(*side.backend(), side.device().index);
    const std::lock_guard lock(r.mutex);
    if (!r.staging_resolved) {
      if (r.backend->supports(r.device, MemoryKind::PinnedHost)) {
        r.own_staging_memory =
            std::make_unique<BackendResource>(*r.backend, r.device, MemoryKind::PinnedHost);
        r.staging = std::make_unique<StagingPool>(*r.own_staging_memory, options.chunk_bytes,
                                                  options.idle_staging_buffers);
      }
      r.staging_resolved = true;
    }
    return r.staging.get();
  }

  // True when the endpoint's device keeps its memory in the host's own RAM
  // (Capabilities::host_unified_memory): its backend then copies pageable memory at host speed and staging
  // would only add a memcpy.
  bool shares_host_memory(const TransferEndpoint& side) {
    DeviceResources& r = resources(*side.backend(), side.device().index);
    const std::lock_guard lock(r.mutex);
    if (!r.host_unified_memory) {
      r.host_unified_memory = r.backend->device_info(r.device).capabilities.host_unified_memory;
    }
    return *r.host_unified_memory;
  }

  // Ordinary host memory, for staging between devices that have no pinned memory.
  StagingPool& host_staging() {
    DeviceResources& r = resources(host, 0);
    const std::lock_guard lock(r.mutex);
    if (!r.staging_resolved) {
      r.own_staging_memory = std::make_unique<BackendResource>(host, 0, MemoryKind::Device);
      r.staging = std::make_unique<StagingPool>(*r.own_staging_memory, options.chunk_bytes,
                                                options.idle_staging_buffers);
      r.staging_resolved = true;
    }
    return *r.staging;
  }

  TransferStrategy choose(const TransferEndpoint& dst, const TransferEndpoint& src) {
    const bool device_dst = in_device_memory(dst);
    const bool device_src = in_device_memory(src);
    if (!device_dst && !device_src) return TransferStrategy::Direct;
    if (device_dst && device_src) {
      if (dst.backend() == src.backend()) {
        if (dst.device() == src.device()) return TransferStrategy::DeviceLocal;
        if (peer_access(dst, src)) return TransferStrategy::Peer;
        // Both memories are host RAM: the backend's own copy moves the bytes once, staging would move them
        // twice.
        if (shares_host_memory(dst) && shares_host_memory(src)) return TransferStrategy::Direct;
      }
      return TransferStrategy::HostStaged;
    }
    const TransferEndpoint& device_side = device_dst ? dst : src;
    const TransferEndpoint& host_side = device_dst ? src : dst;
    if (reached_directly(host_side, device_side) || shares_host_memory(device_side)) {
      return TransferStrategy::Direct;
    }
    // Without pinned memory there is nothing better than the backend's own copy from pageable memory.
    return pinned_staging(device_side) != nullptr ? TransferStrategy::PinnedStaging
                                                  : TransferStrategy::Direct;
  }

  // Throws NotSupported unless `strategy` can move bytes between the two endpoints.
  void check_forced(TransferStrategy strategy, const TransferEndpoint& dst, const TransferEndpoint& src) {
    const bool device_dst = in_device_memory(dst);
    const bool device_src = in_device_memory(src);
    const bool one_backend = dst.backend() == src.backend();
    std::string why;
    switch (strategy) {
      case TransferStrategy::Auto:
        return;
      case TransferStrategy::Direct:
        if (device_dst && device_src && !one_backend) why = "no single backend reaches both sides";
        break;
      case TransferStrategy::DeviceLocal:
        if (!device_dst || !device_src || !one_backend || dst.device() != src.device()) {
          why = "it needs device memory of one device on both sides";
        }
        break;
      case TransferStrategy::Peer:
        if (!device_dst || !device_src || !one_backend || dst.device() == src.device()) {
          why = "it needs device memory of two devices of one backend";
        } else if (!peer_access(dst, src)) {
          why = "peer access between " + to_string(src.device()) + " and " + to_string(dst.device()) +
                " is not enabled";
        }
        break;
      case TransferStrategy::PinnedStaging:
        if (device_dst == device_src) {
          why = "it needs host memory on one side and device memory on the other";
        } else if (pinned_staging(device_dst ? dst : src) == nullptr) {
          why = to_string((device_dst ? dst : src).device()) + " has no pinned memory to stage through";
        }
        break;
      case TransferStrategy::HostStaged:
        if (!device_dst || !device_src) why = "it needs device memory on both sides";
        break;
    }
    if (!why.empty()) {
      throw NotSupported("TransferEngine: strategy " + std::string(to_string(strategy)) + " cannot copy " +
                         between(dst, src) + ": " + why);
    }
  }

  // Validates a request and resolves its strategy. Throws InvalidArgument / NotSupported.
  TransferStrategy resolve(const TransferRequest& r) {
    const TransferEndpoint& dst = r.dst;
    const TransferEndpoint& src = r.src;
    if (!dst.segment || !src.segment) {
      throw InvalidArgument(std::string("TransferEngine: the ") + (!dst.segment ? "destination" : "source") +
                            " endpoint is empty");
    }
    if (r.bytes == 0) throw InvalidArgument("TransferEngine: a transfer of 0 bytes " + between(dst, src));
    if (dst.read_only) {
      throw InvalidArgument("TransferEngine: the destination " + dst.describe() +
                            " is read-only (a view of const host memory)");
    }
    for (const TransferEndpoint* side : {&dst, &src}) {
      const bool window_fits =
          side->size <= side->segment.size && side->offset <= side->segment.size - side->size;
      if (!window_fits || r.bytes > side->size || (in_device_memory(*side) && side->backend() == nullptr)) {
        const std::string what =
            std::string("TransferEngine: ") + (side == &dst ? "destination " : "source ") + side->describe();
        if (!window_fits) {
          throw InvalidArgument(what + " runs past its segment of " + std::to_string(side->segment.size) +
                                " bytes");
        }
        if (r.bytes > side->size) {
          throw InvalidArgument(what + ": " + std::to_string(r.bytes) + " bytes do not fit its " +
                                std::to_string(side->size));
        }
        throw InvalidArgument(what + " is device memory without a backend");
      }
    }
    if (r.options.strategy == TransferStrategy::Auto) return choose(dst, src);
    check_forced(r.options.strategy, dst, src);
    return r.options.strategy;
  }

  // One backend copy (Direct, DeviceLocal, Peer), or a memmove between two host views.
  void single_copy(const TransferEndpoint& dst, const TransferEndpoint& src, std::size_t bytes) {
    const TransferEndpoint* device_side = in_device_memory(dst)   ? &dst
                                          : in_device_memory(src) ? &src
                                                                  : nullptr;
    if (device_side == nullptr) {
      Backend* owner = dst.backend() != nullptr ? dst.backend() : src.backend();
      if (owner == nullptr) {
        std::memmove(dst.host_ptr(), src.host_ptr(), bytes);  // one array may hold both
        return;
      }
      owner->copy(dst.segment, dst.offset, src.segment, src.offset, bytes);
      return;
    }
    Backend& backend = *device_side->backend();
    const StreamLease stream(resources(backend, device_side->device().index));
    backend.copy(dst.segment, dst.offset, src.segment, src.offset, bytes, &stream.get());
    stream.get().synchronize();
  }

  // True when the host itself moves the bytes of a hop to or from `side`: host memory, or device memory in
  // the host's RAM (Capabilities::host_unified_memory), which its backend copies synchronously at memcpy
  // speed.
  bool host_moves(const TransferEndpoint& side) {
    return !in_device_memory(side) || shares_host_memory(side);
  }

  // Chunks through `pool`'s buffers, pipeline_depth of them, the hops of consecutive chunks overlapping; or,
  // when the host moves both hops, slices through one buffer (sliced_copy).
  void staged_copy(const TransferEndpoint& dst, const TransferEndpoint& src, std::size_t bytes,
                   StagingPool& pool) {
    if (host_moves(src) && host_moves(dst)) {
      sliced_copy(dst, src, bytes, pool);
      return;
    }
    const std::size_t chunk = pool.chunk_bytes();
    const std::size_t chunks = bytes / chunk + (bytes % chunk != 0 ? 1 : 0);
    const std::size_t slots = std::min(options.pipeline_depth, chunks);
    std::vector<StagingPool::Lease> buffers;
    buffers.reserve(slots);
    for (std::size_t i = 0; i < slots; ++i) buffers.push_back(pool.acquire());
    // Declared after the buffers, so that on an error their streams have finished with the buffers before the
    // buffers go back to the pool.
    Hop fill(*this, src, true, slots);
    Hop drain(*this, dst, false, slots);
    const auto length = [&](std::size_t i) { return std::min(chunk, bytes - i * chunk); };
    const auto fill_chunk = [&](std::size_t i) {
      const std::size_t slot = i % slots;
      drain.finish(slot);  // the buffer's previous chunk has left it
      fill.start(slot, buffers[slot], i * chunk, length(i));
    };
    const auto drain_chunk = [&](std::size_t i) {
      const std::size_t slot = i % slots;
      fill.finish(slot);
      drain.start(slot, buffers[slot], i * chunk, length(i));
    };
    for (std::size_t i = 0; i < chunks; ++i) {
      // An asynchronous fill is queued before the previous chunk drains, so that the host's memcpy of the
      // drain overlaps it; that needs a second buffer, the previous chunk still being in the first.
      if (fill.asynchronous() && slots > 1) {
        fill_chunk(i);
        if (i > 0) drain_chunk(i - 1);
      } else {
        if (i > 0) drain_chunk(i - 1);
        fill_chunk(i);
      }
    }
    drain_chunk(chunks - 1);
    for (std::size_t slot = 0; slot < slots; ++slot) drain.finish(slot);
  }

  // Both hops moved by the host, on this thread, one slice at a time through one staging buffer: the slice
  // is still in the cache when the second hop reads it, so the bytes cross DRAM once, as in one memcpy. Here
  // the overlap that pays is the cache's with memory, not two engines': a second thread would add a stream
  // on a memory bus that one core's memcpy nearly fills (docs/architecture.md, "Transfers").
  void sliced_copy(const TransferEndpoint& dst, const TransferEndpoint& src, std::size_t bytes,
                   StagingPool& pool) {
    const StagingPool::Lease buffer = pool.acquire();
    for (std::size_t at = 0; at < bytes; at += slice) {
      const std::size_t length = std::min(slice, bytes - at);
      host_hop(src, true, buffer, at, length);
      host_hop(dst, false, buffer, at, length);
    }
  }

  void dispatch(const TransferRequest& r, TransferStrategy strategy) {
    switch (strategy) {
      case TransferStrategy::PinnedStaging:
        staged_copy(r.dst, r.src, r.bytes, *pinned_staging(in_device_memory(r.dst) ? r.dst : r.src));
        return;
      case TransferStrategy::HostStaged: {
        // Through pinned memory of the source's device, else of the destination's, else plain host memory.
        StagingPool* pool = pinned_staging(r.src);
        if (pool == nullptr) pool = pinned_staging(r.dst);
        staged_copy(r.dst, r.src, r.bytes, pool != nullptr ? *pool : host_staging());
        return;
      }
      case TransferStrategy::Auto:
      case TransferStrategy::Direct:
      case TransferStrategy::DeviceLocal:
      case TransferStrategy::Peer:
        single_copy(r.dst, r.src, r.bytes);
        return;
    }
  }

  // Runs one resolved transfer on this thread once it has its turn.
  void run(const TransferRequest& r, TransferStrategy strategy) {
    begin_turn(strategy);
    try {
      if (options.before_transfer) options.before_transfer();
      dispatch(r, strategy);
    } catch (...) {
      end_turn(strategy, 0);
      throw;
    }
    end_turn(strategy, r.bytes);
  }

  void begin_turn(TransferStrategy strategy) {
    std::unique_lock lock(mutex);
    turn_free.wait(lock, [this] { return in_flight < options.max_concurrent_transfers; });
    ++in_flight;
    max_in_flight = std::max(max_in_flight, in_flight);
    if (active[index_of(strategy)]++ == 0) busy_since[index_of(strategy)] = Clock::now();
  }

  // `bytes` is 0 for a failed transfer.
  void end_turn(TransferStrategy strategy, std::size_t bytes) noexcept {
    {
      const std::lock_guard lock(mutex);
      --in_flight;
      StrategyStatistics& s = stats[index_of(strategy)];
      if (bytes != 0) {
        ++s.transfers;
        s.bytes += bytes;
      } else {
        ++s.failures;
      }
      if (--active[index_of(strategy)] == 0) {
        s.busy_seconds +=
            std::chrono::duration<double>(Clock::now() - busy_since[index_of(strategy)]).count();
      }
    }
    turn_free.notify_one();
  }

  // Queues the jobs (their `done` is filled in here) behind one future.
  TransferFuture submit(std::vector<Job> jobs) {
    {
      const std::lock_guard lock(mutex);
      if (stopping)
        throw InvalidArgument("TransferEngine: asynchronous transfer requested while shutting down");
      const std::size_t wanted = std::min(options.max_concurrent_transfers, outstanding + jobs.size());
      while (workers.size() < wanted) {
        try {
          workers.emplace_back([this] { work(); });
        } catch (...) {
          if (workers.empty()) throw;  // nobody would run the jobs
          break;
        }
      }
    }
    // The future owns the signal, so that the failure a worker stores in it is released on the thread that
    // consumes it; workers only signal.
    auto signal = std::make_unique<detail::CompletionSignal>(jobs.size());
    detail::CompletionSignal& done = *signal;
    TransferFuture future = detail::future_of(std::move(signal), host, *host_stream);
    std::size_t queued = 0;
    try {
      const std::lock_guard lock(mutex);
      for (Job& job : jobs) {
        job.done = &done;
        queue.push_back(job);
        ++queued;
        ++outstanding;
      }
    } catch (...) {
      // No memory to queue the rest: they fail through the future instead of never completing.
      for (; queued < jobs.size(); ++queued) done.finish_part(std::current_exception());
    }
    work_ready.notify_all();
    return future;
  }

  void work() {
    std::unique_lock lock(mutex);
    for (;;) {
      work_ready.wait(lock, [this] { return stopping || !queue.empty(); });
      if (queue.empty()) return;  // stopping, and every queued transfer has run
      Job job = queue.front();
      queue.pop_front();
      lock.unlock();
      std::exception_ptr error;
      try {
        run(job.request, job.strategy);
      } catch (...) {
        error = std::current_exception();
      }
      job.done->finish_part(
          std::move(error));  // the future may be gone after this: job.done is not touched again
      lock.lock();
      --outstanding;
    }
  }

  TransferStatistics snapshot() const {
    const std::lock_guard lock(mutex);
    TransferStatistics s;
    const Clock::time_point now = Clock::now();
    for (std::size_t i = 0; i < kTransferStrategyCount; ++i) {
      s.by_strategy[i] = stats[i];
      if (active[i] != 0)
        s.by_strategy[i].busy_seconds += std::chrono::duration<double>(now - busy_since[i]).count();
    }
    s.in_flight = in_flight;
    s.max_in_flight = max_in_flight;
    s.queued = queue.size();
    return s;
  }

  std::vector<DeviceResources*> all_resources() {
    const std::lock_guard lock(resources_mutex);
    std::vector<DeviceResources*> all;
    for (const auto& r : devices) all.push_back(r.get());
    return all;
  }

  template <typename Count>
  std::size_t sum_over_pools(Count count) {
    std::size_t total = 0;
    for (DeviceResources* r : all_resources()) {
      const std::lock_guard lock(r->mutex);
      if (r->staging) total += count(*r->staging);
    }
    return total;
  }

  TransferEngineOptions options;
  std::size_t slice;  // of a sliced_copy, read once: the cache does not change under a running engine
  HostBackend host;   // staging memory of last resort, and the backend of completion events
  std::unique_ptr<Stream> host_stream;

  std::mutex resources_mutex;
  std::vector<std::unique_ptr<DeviceResources>> devices;

  mutable std::mutex mutex;  // turns, statistics and the queue
  std::condition_variable turn_free;
  std::condition_variable work_ready;
  std::size_t in_flight = 0;
  std::size_t max_in_flight = 0;
  std::array<StrategyStatistics, kTransferStrategyCount> stats{};
  std::array<std::size_t, kTransferStrategyCount> active{};
  std::array<Clock::time_point, kTransferStrategyCount> busy_since{};
  std::deque<Job> queue;
  std::size_t outstanding = 0;  // asynchronous transfers queued or running
  bool stopping = false;
  std::vector<std::thread> workers;

  CompletionQueue callbacks;  // last: destroyed first, once the workers have run everything
};

TransferEngine::TransferEngine(TransferEngineOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

TransferEngine::~TransferEngine() = default;

TransferStrategy TransferEngine::choose_strategy(const TransferEndpoint& dst,
                                                 const TransferEndpoint& src) const {
  return impl_->choose(dst, src);
}

void TransferEngine::copy(const TransferEndpoint& dst, const TransferEndpoint& src, std::size_t bytes,
                          const TransferOptions& options) {
  const TransferRequest request{dst, src, bytes, options};
  impl_->run(request, impl_->resolve(request));
}

TransferFuture TransferEngine::copy_async(const TransferEndpoint& dst, const TransferEndpoint& src,
                                          std::size_t bytes, const TransferOptions& options) {
  const TransferRequest request{dst, src, bytes, options};
  const TransferStrategy strategy = impl_->resolve(request);
  std::vector<Impl::Job> jobs;
  jobs.push_back(Impl::Job{request, strategy, nullptr});
  return impl_->submit(std::move(jobs));
}

void TransferEngine::copy_batch(const std::vector<TransferRequest>& requests) {
  copy_batch_async(requests).wait();
}

TransferFuture TransferEngine::copy_batch_async(const std::vector<TransferRequest>& requests) {
  if (requests.empty()) throw InvalidArgument("TransferEngine::copy_batch: the batch is empty");
  std::vector<Impl::Job> jobs;
  jobs.reserve(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    try {
      jobs.push_back(Impl::Job{requests[i], impl_->resolve(requests[i]), nullptr});
    } catch (const Error& e) {
      throw InvalidArgument("TransferEngine::copy_batch: request " + std::to_string(i) + " of " +
                            std::to_string(requests.size()) + ": " + e.what());
    }
  }
  return impl_->submit(std::move(jobs));
}

void TransferEngine::then(TransferFuture transfer, TransferCallback on_complete) {
  impl_->callbacks.submit(std::move(transfer), std::move(on_complete));
}

TransferStatistics TransferEngine::statistics() const {
  return impl_->snapshot();
}

void TransferEngine::reset_statistics() {
  const std::lock_guard lock(impl_->mutex);
  impl_->stats = {};
  impl_->max_in_flight = impl_->in_flight;
  for (std::size_t i = 0; i < kTransferStrategyCount; ++i) {
    if (impl_->active[i] != 0) impl_->busy_since[i] = Clock::now();
  }
}

const TransferEngineOptions& TransferEngine::options() const noexcept {
  return impl_->options;
}

std::size_t TransferEngine::staging_buffers_leased() const {
  return impl_->sum_over_pools([](const StagingPool& pool) { return pool.leased(); });
}

std::size_t TransferEngine::staging_buffers_idle() const {
  return impl_->sum_over_pools([](const StagingPool& pool) { return pool.idle(); });
}

std::size_t TransferEngine::trim() {
  std::size_t bytes = 0;
  for (DeviceResources* r : impl_->all_resources()) {
    std::vector<std::unique_ptr<Stream>> streams;
    const std::lock_guard lock(r->mutex);
    streams.swap(r->idle_streams);
    if (r->staging) bytes += r->staging->trim();
  }
  return bytes;
}

}  // namespace unimem
