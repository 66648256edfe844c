#include "unimem/trace_replay.hpp"

#include <algorithm>
#include <array>
#include <memory>
#include <unordered_map>
#include <vector>

#include "unimem/core/error.hpp"
#include "unimem/resource/resource_spec.hpp"
#include "unimem/timing.hpp"

namespace unimem::cli {

namespace {

constexpr std::size_t kProgressInterval = 1U << 16U;  // events between progress reports in the measuring pass

// A live allocation and the stream it was made on, which its free is ordered on.
struct LiveSlot {
  Allocation allocation;
  Stream* stream = nullptr;
};

constexpr std::array<Stream*, 1> kHostOrder{nullptr};

// Hands out the stream of each allocation in turn: allocation k gets streams[k mod size].
class StreamRotation {
 public:
  explicit StreamRotation(std::span<Stream* const> streams)
      : streams_(streams.empty() ? std::span<Stream* const>(kHostOrder) : streams) {}

  Stream* next() noexcept {
    Stream* stream = streams_[next_];
    if (++next_ == streams_.size()) next_ = 0;
    return stream;
  }

  [[nodiscard]] std::span<Stream* const> all() const noexcept { return streams_; }

 private:
  std::span<Stream* const> streams_;
  std::size_t next_ = 0;
};

// The device running out is part of what a replay measures: count it and go on.
LiveSlot allocate_or_count(MemoryResource& resource, std::size_t bytes, Stream* stream, std::size_t& failed) {
  try {
    return {resource.allocate(bytes, stream), stream};
  } catch (const OutOfMemory&) {
    ++failed;
    return {};
  }
}

// Waits for the frees ordered on the streams, so that the stack is destroyed with nothing in flight.
void synchronize(std::span<Stream* const> streams) {
  for (Stream* stream : streams) {
    if (stream != nullptr) stream->synchronize();
  }
}

// Frees what the trace left live, so that the stack is destroyed empty.
void release_all(MemoryResource& resource, std::vector<LiveSlot>& live, std::span<Stream* const> streams) {
  for (LiveSlot& slot : live) {
    if (slot.allocation) resource.deallocate(slot.allocation, slot.stream);
    slot = {};
  }
  synchronize(streams);
}

struct ReplayCounts {
  std::size_t failed_allocations = 0;
  std::size_t skipped_frees = 0;
};

// Replays the events in order, live allocations kept by slot in `live`. `call(action, work)` runs each
// resource call (and may time it); `after(i)` runs after event i. Both inline away when they do nothing.
template <typename Call, typename After>
ReplayCounts replay_events(const Trace& trace, MemoryResource& resource, std::vector<LiveSlot>& live,
                           StreamRotation streams, const Call& call, const After& after) {
  ReplayCounts counts;
  const std::size_t count = trace.events.size();
  for (std::size_t i = 0; i < count; ++i) {
    const TraceEvent& event = trace.events[i];
    LiveSlot& slot = live[event.slot];
    if (event.action == TraceAction::Allocate) {
      Stream* stream = streams.next();
      call(TraceAction::Allocate,
           [&] { slot = allocate_or_count(resource, event.size, stream, counts.failed_allocations); });
    } else if (slot.allocation) {
      call(TraceAction::Free, [&] { resource.deallocate(slot.allocation, slot.stream); });
      slot = {};
    } else {
      ++counts.skipped_frees;
    }
    after(i);
  }
  return counts;
}

const auto kJustCall = [](TraceAction /*action*/, const auto& work) { work(); };
const auto kNothingAfter = [](std::size_t /*event*/) {};

// The untimed pass: usage after every event.
void measure_memory(const Trace& trace, MemoryResource& resource, std::span<Stream* const> streams,
                    ReplayResult& result, const ReplayProgress& progress) {
  std::vector<LiveSlot> live(trace.slot_count);
  const double count = static_cast<double>(trace.events.size());
  const StreamRotation rotation(streams);
  const ReplayCounts counts = replay_events(trace, resource, live, rotation, kJustCall, [&](std::size_t i) {
    const ResourceUsage usage = resource.usage();
    result.peak_reserved_bytes = std::max(result.peak_reserved_bytes, usage.reserved_bytes);
    if (i == trace.peak_live_event && trace.allocations != 0) {
      result.reserved_bytes_at_peak_live = usage.reserved_bytes;
      result.largest_free_range_at_peak_live = usage.largest_free_range;
    }
    if (progress && i % kProgressInterval == 0) progress("measuring", static_cast<double>(i) / count);
  });
  result.failed_allocations = counts.failed_allocations;
  result.skipped_frees = counts.skipped_frees;
  const ResourceUsage end = resource.usage();
  result.upstream_allocations = end.upstream_allocations;
  result.upstream_deallocations = end.upstream_deallocations;
  result.map_calls = end.map_calls;
  result.unmap_calls = end.unmap_calls;
  release_all(resource, live, streams);
}

// Nanoseconds per event for the whole loop, slots resolved at parse time.
double time_loop(const Trace& trace, MemoryResource& resource, std::span<Stream* const> streams) {
  std::vector<LiveSlot> live(trace.slot_count);
  const Clock::time_point start = Clock::now();
  (void)replay_events(trace, resource, live, StreamRotation(streams), kJustCall, kNothingAfter);
  const Clock::duration elapsed = Clock::now() - start;
  release_all(resource, live, streams);
  return nanoseconds(elapsed) / static_cast<double>(trace.events.size());
}

// Nanoseconds per event for the whole loop with live allocations kept by recorded pointer.
double time_loop_with_lookup(const Trace& trace, MemoryResource& resource, std::span<Stream* const> streams) {
  std::unordered_map<std::uint64_t, LiveSlot> live;
  live.reserve(trace.slot_count);
  std::size_t failed = 0;
  StreamRotation rotation(streams);
  const Clock::time_point start = Clock::now();
  for (const TraceEvent& event : trace.events) {
    if (event.action == TraceAction::Allocate) {
      const LiveSlot slot = allocate_or_count(resource, event.size, rotation.next(), failed);
      if (slot.allocation) live.emplace(event.pointer, slot);
    } else if (const auto it = live.find(event.pointer); it != live.end()) {
      resource.deallocate(it->second.allocation, it->second.stream);
      live.erase(it);
    }
  }
  const Clock::duration elapsed = Clock::now() - start;
  for (const auto& [pointer, slot] : live) resource.deallocate(slot.allocation, slot.stream);
  synchronize(rotation.all());
  return nanoseconds(elapsed) / static_cast<double>(trace.events.size());
}

// What a pair of clock reads costs with nothing between them: the median of many pairs.
double clock_pair_cost_ns() {
  constexpr std::size_t kSamples = 1001;
  std::vector<double> samples(kSamples);
  for (double& sample : samples) {
    const Clock::time_point t0 = Clock::now();
    const Clock::time_point t1 = Clock::now();
    sample = nanoseconds(t1 - t0);
  }
  return median(std::move(samples));
}

struct CallTimes {
  double allocate_ns = 0.0;
  double free_ns = 0.0;
};

// Nanoseconds per allocate and per free call, each call timed on its own, less the clock's cost.
CallTimes time_calls(const Trace& trace, MemoryResource& resource, std::span<Stream* const> streams,
                     double clock_cost_ns) {
  std::vector<LiveSlot> live(trace.slot_count);
  // Indexed by TraceAction.
  std::array<Clock::duration, 2> totals{};
  std::array<std::size_t, 2> calls{};
  const auto timed = [&](TraceAction action, const auto& work) {
    const Clock::time_point start = Clock::now();
    work();
    const auto index = static_cast<std::size_t>(action);
    totals[index] += Clock::now() - start;
    ++calls[index];
  };
  (void)replay_events(trace, resource, live, StreamRotation(streams), timed, kNothingAfter);
  release_all(resource, live, streams);
  const auto per_call = [&](TraceAction action) {
    const auto index = static_cast<std::size_t>(action);
    return calls[index] == 0 ? 0.0
                             : std::max(0.0, nanoseconds(totals[index]) / static_cast<double>(calls[index]) -
                                                 clock_cost_ns);
  };
  return {per_call(TraceAction::Allocate), per_call(TraceAction::Free)};
}

}  // namespace

std::size_t replay_observed(const Trace& trace, MemoryResource& resource, const ReplayObserver& observe,
                            std::span<Stream* const> streams) {
  std::vector<LiveSlot> live(trace.slot_count);
  const StreamRotation rotation(streams);
  const ReplayCounts counts = replay_events(trace, resource, live, rotation, kJustCall, [&](std::size_t i) {
    const TraceEvent& event = trace.events[i];
    // An allocation that failed leaves its slot empty.
    observe(i, event.action == TraceAction::Allocate && !live[event.slot].allocation, resource);
  });
  release_all(resource, live, rotation.all());
  return counts.failed_allocations;
}

void check_replay_options(const ReplayOptions& options) {
  if (options.repeat < 1) {
    throw InvalidArgument("replay: repeat count " + std::to_string(options.repeat) + " is not at least 1");
  }
  if (options.streams < 1 || options.streams > kMaxReplayStreams) {
    throw InvalidArgument("replay: stream count " + std::to_string(options.streams) + " is not in 1.." +
                          std::to_string(kMaxReplayStreams));
  }
}

ReplayResult replay_trace(const Trace& trace, std::string_view resource_spec, Backend& backend, int device,
                          MemoryKind kind, const ReplayOptions& options) {
  check_replay_options(options);
  const ResourceSpec spec = parse_resource_spec(resource_spec);
  // Created before every stack and destroyed after them: pools may keep what was freed on a stream.
  std::vector<std::unique_ptr<Stream>> owned_streams;
  std::vector<Stream*> streams;
  if (options.streams > 1) {
    for (int i = 0; i < options.streams; ++i) {
      owned_streams.push_back(backend.create_stream(device));
      streams.push_back(owned_streams.back().get());
    }
  }
  ReplayResult result;
  result.resource = std::string(resource_spec);
  result.events = trace.events.size();
  result.allocations = trace.allocations;
  result.frees = trace.frees;
  result.peak_live_bytes = trace.peak_live_bytes;
  {
    const ResourceStack stack = make_resource_stack(spec, backend, device, kind);
    measure_memory(trace, stack.top(), streams, result, options.progress);
  }
  result.fragmentation_ratio = trace.peak_live_bytes == 0 ? 0.0
                                                          : static_cast<double>(result.peak_reserved_bytes) /
                                                                static_cast<double>(trace.peak_live_bytes);
  if (trace.events.empty()) return result;

  const double clock_cost_ns = clock_pair_cost_ns();
  std::vector<double> per_op;
  std::vector<double> per_allocate;
  std::vector<double> per_free;
  std::vector<double> per_op_with_lookup;
  for (int i = 0; i < options.repeat; ++i) {
    // Each timed replay starts from a fresh stack, as the program that was recorded did.
    {
      const ResourceStack stack = make_resource_stack(spec, backend, device, kind);
      per_op.push_back(time_loop(trace, stack.top(), streams));
    }
    {
      const ResourceStack stack = make_resource_stack(spec, backend, device, kind);
      const CallTimes calls = time_calls(trace, stack.top(), streams, clock_cost_ns);
      per_allocate.push_back(calls.allocate_ns);
      per_free.push_back(calls.free_ns);
    }
    {
      const ResourceStack stack = make_resource_stack(spec, backend, device, kind);
      per_op_with_lookup.push_back(time_loop_with_lookup(trace, stack.top(), streams));
    }
    if (options.progress) options.progress("timing", static_cast<double>(i + 1) / options.repeat);
  }
  result.ns_per_op = median(per_op);
  result.ns_per_allocate = median(per_allocate);
  result.ns_per_free = median(per_free);
  result.ns_per_op_with_lookup = median(per_op_with_lookup);
  return result;
}

}  // namespace unimem::cli
