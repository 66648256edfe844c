#pragma once
// Replays a parsed trace against a resource stack built from a spec (resource_spec.hpp) on one device.
//
// One untimed pass measures memory: after every event it reads the stack's usage() (a few counters, no
// allocation) to find the peak of reserved bytes. Then each repeat times three fresh replays, each on a new
// stack:
//   - the whole event loop, for ns_per_op;
//   - every allocate and free call on its own (steady_clock around the call, less the clock's own cost), for
//     ns_per_allocate and ns_per_free;
//   - the whole loop with live allocations kept in an unordered_map keyed by the recorded pointer, for
//     ns_per_op_with_lookup: what a replayer that resolves pointers while it runs pays (Umpire's replay
//     numbers include such a lookup per event).
// Pointers are resolved to dense slots when the trace is parsed, so the first two loops do no lookup at all.
// Figures are medians over the repeats.
//
// Allocations that fail with OutOfMemory (a device too small for the trace) are counted and the replay goes
// on; the frees of those allocations are skipped and counted.
//
// With several streams, allocation k of the trace is made on stream k mod N and freed on the stream it was
// made on, in every pass; with one, every call is in host order (no stream), as a single-threaded program
// without streams makes them.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "unimem/backend/backend.hpp"
#include "unimem/resource/memory_resource.hpp"
#include "unimem/trace.hpp"

namespace unimem::cli {

struct ReplayResult {
  std::string resource;  // the spec
  std::size_t events = 0;
  std::size_t allocations = 0;
  std::size_t frees = 0;
  std::size_t peak_live_bytes = 0;      // from the trace
  std::size_t peak_reserved_bytes = 0;  // the most usage().reserved_bytes seen after any event
  double fragmentation_ratio = 0.0;     // peak_reserved_bytes / peak_live_bytes
  // usage() at the event where the trace's live bytes first reached their peak: what the stack held then, and
  // the largest request it could have served without asking the backend.
  std::size_t reserved_bytes_at_peak_live = 0;
  std::size_t largest_free_range_at_peak_live = 0;
  std::uint64_t upstream_allocations = 0;    // at the end of the trace, before anything still live is freed
  std::uint64_t upstream_deallocations = 0;  // likewise
  std::uint64_t map_calls = 0;               // ResourceUsage::map_calls at the end
  std::uint64_t unmap_calls = 0;             // likewise
  std::size_t failed_allocations = 0;
  std::size_t skipped_frees = 0;
  double ns_per_allocate = 0.0;
  double ns_per_free = 0.0;
  double ns_per_op = 0.0;
  double ns_per_op_with_lookup = 0.0;
};

// Called with what is being done and how far along it is (0 to 1), a few hundred times per replay at most.
using ReplayProgress = std::function<void(std::string_view phase, double fraction)>;

// The most streams a replay spreads its allocations over.
inline constexpr int kMaxReplayStreams = 64;

struct ReplayOptions {
  int repeat = 5;  // timed repeats (each three replays); at least 1
  ReplayProgress progress;
  int streams = 1;  // streams the allocations are spread over, 1 to kMaxReplayStreams; 1 is host order
};

// Throws InvalidArgument if `repeat` is below 1 or `streams` is out of range, naming the value.
void check_replay_options(const ReplayOptions& options);

// Throws InvalidArgument for a bad spec, repeat count or stream count, and whatever the backend throws other
// than OutOfMemory.
[[nodiscard]] ReplayResult replay_trace(const Trace& trace, std::string_view resource_spec, Backend& backend,
                                        int device, MemoryKind kind, const ReplayOptions& options = {});

// Called after event `event` of a replay_observed() with the resource replayed on; `failed` is true when the
// event was an allocation that failed with OutOfMemory.
using ReplayObserver = std::function<void(std::size_t event, bool failed, const MemoryResource& resource)>;

// Replays the events once, in order, on `resource` (untimed), calling `observe` after each one, then frees
// what is still live. Failed allocations are counted and their frees skipped, as in replay_trace(). With
// `streams`, allocation k is made on streams[k mod size] (a null entry is host order) and freed on the same
// one; without, every call is in host order. Returns the number of failed allocations.
std::size_t replay_observed(const Trace& trace, MemoryResource& resource, const ReplayObserver& observe,
                            std::span<Stream* const> streams = {});

}  // namespace unimem::cli
