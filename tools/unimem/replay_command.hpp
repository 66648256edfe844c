#pragma once
// `unimem replay TRACE`: replays an allocation trace against one or more resource stacks on one device and
// reports memory (peak reserved, fragmentation, largest free range) and time per call, side by side.

#include <cstddef>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "unimem/device_option.hpp"
#include "unimem/trace.hpp"
#include "unimem/trace_replay.hpp"

namespace unimem::cli {

// The device a replay uses unless told otherwise: large enough for any recorded GPU trace, no memory behind.
inline constexpr std::string_view kDefaultReplayDevice = "sim:80GiB";

// A stack that holds no more than this on a trace is within the target: at most 5% above the trace's peak of
// live bytes, or 8 MiB above it, whichever is more (a small trace's peak is dwarfed by one pool chunk).
inline constexpr double kTargetFragmentationRatio = 1.05;
inline constexpr std::size_t kTargetSlackBytes = std::size_t{8} << 20U;

// The traces named by command-line arguments: a file as given, a directory as every *.csv in it sorted by
// name. Throws InvalidArgument naming a directory without any, or an argument that does not exist.
[[nodiscard]] std::vector<std::filesystem::path> expand_trace_paths(
    const std::vector<std::string>& arguments);

// Replays `trace` once per spec, in order, on device memory of `device`.
[[nodiscard]] std::vector<ReplayResult> replay_stacks(const Trace& trace, const SelectedDevice& device,
                                                      const std::vector<std::string>& specs,
                                                      const ReplayOptions& options);

// One trace and its results, one per stack.
struct TraceReplay {
  Trace trace;
  std::vector<ReplayResult> results;
};

// Loads every trace (all of them before the first replay, so that a malformed one fails at once), then
// replays each against every spec. With several traces a spec may be given only once: the summary is keyed
// by spec. Throws InvalidArgument for no paths, no specs, a bad spec or option, or a trace that does not
// parse.
[[nodiscard]] std::vector<TraceReplay> replay_traces(const std::vector<std::filesystem::path>& paths,
                                                     const SelectedDevice& device,
                                                     const std::vector<std::string>& specs,
                                                     const ReplayOptions& options,
                                                     const TraceParseOptions& parse = {});

// One stack over several traces.
struct StackSummary {
  std::string resource;
  double worst_fragmentation_ratio = 0.0;
  std::string worst_trace;  // the trace's source; the first of equals
  double mean_fragmentation_ratio = 0.0;
  double max_map_calls_per_100_ops = 0.0;  // (map_calls + unmap_calls) per 100 events, the most of any trace
  // On every trace peak_reserved_bytes <= max(kTargetFragmentationRatio * peak live, peak live + slack).
  bool within_target = true;
};

// True when `result` is within the target (see kTargetFragmentationRatio).
[[nodiscard]] bool within_target(const ReplayResult& result);

// One summary per stack, in the order of the stacks. Every trace must have results for the same specs in the
// same order, each spec once; InvalidArgument otherwise, or when there are no traces.
[[nodiscard]] std::vector<StackSummary> summarize_replays(const std::vector<TraceReplay>& replays);

// The JSON document printed by `unimem replay --json` for one trace (schema in docs/cli.md).
[[nodiscard]] nlohmann::json replay_json(const Trace& trace, const SelectedDevice& device,
                                         const ReplayOptions& options,
                                         const std::vector<ReplayResult>& results);
// The readable report of one trace: the trace, the device, then one column per stack.
[[nodiscard]] std::string replay_table(const Trace& trace, const SelectedDevice& device,
                                       const ReplayOptions& options,
                                       const std::vector<ReplayResult>& results);

// What `unimem replay --json` prints: replay_json() for one trace; for several, their documents and the
// summary of every stack over them.
[[nodiscard]] nlohmann::json replay_document(const std::vector<TraceReplay>& replays,
                                             const SelectedDevice& device, const ReplayOptions& options);
// What `unimem replay` prints: replay_table() for one trace; for several, each trace's table and then one of
// fragmentation per trace and stack, with the summary below it.
[[nodiscard]] std::string replay_report(const std::vector<TraceReplay>& replays, const SelectedDevice& device,
                                        const ReplayOptions& options);

// A progress callback that draws a bar on stderr when stderr is a terminal, and an empty one otherwise.
[[nodiscard]] ReplayProgress terminal_progress();

}  // namespace unimem::cli
