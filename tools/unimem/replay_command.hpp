#pragma once
// `unimem replay TRACE`: replays an allocation trace against one or more resource stacks on one device and
// reports memory (peak reserved, fragmentation, largest free range) and time per call, side by side.

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

// Replays `trace` once per spec, in order, on device memory of `device`.
[[nodiscard]] std::vector<ReplayResult> replay_stacks(const Trace& trace, const SelectedDevice& device,
                                                      const std::vector<std::string>& specs,
                                                      const ReplayOptions& options);

// The JSON document printed by `unimem replay --json` (schema in docs/cli.md).
[[nodiscard]] nlohmann::json replay_json(const Trace& trace, const SelectedDevice& device, int repeat,
                                         const std::vector<ReplayResult>& results);
// The readable report: the trace, the device, then one column per stack.
[[nodiscard]] std::string replay_table(const Trace& trace, const SelectedDevice& device, int repeat,
                                       const std::vector<ReplayResult>& results);

// A progress callback that draws a bar on stderr when stderr is a terminal, and an empty one otherwise.
[[nodiscard]] ReplayProgress terminal_progress();

}  // namespace unimem::cli
