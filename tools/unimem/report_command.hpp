#pragma once
// `unimem report INPUT... -o report.html`: one self-contained HTML page showing memory over a trace (replayed
// against resource stacks) or in snapshot files (docs/snapshot.md): live and reserved bytes over time, the
// segment map at the peak (or at a chosen event, or at the first failed allocation), the largest allocations
// live there and a fragmentation summary per stack. report_data() gathers the page's data as JSON;
// report_page.hpp turns it into the page.

#include <cstddef>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "unimem/device_option.hpp"

namespace unimem::cli {

struct ReportOptions {
  std::vector<std::string> resources;   // stacks a trace is replayed against; empty: the default stack
  std::optional<std::size_t> at_event;  // the segment map at this event instead of the peak
  bool lenient = false;                 // trace parsing, as `unimem replay --lenient`
};

// The most points per timeline series: longer traces are bucketed, each bucket keeping its min and max.
inline constexpr std::size_t kTimelineBuckets = 2000;
// The most allocations listed as the largest live at the map's event.
inline constexpr std::size_t kLargestAllocations = 20;

// The data of the page for `inputs`: exactly one RMM CSV trace, replayed on `device`, or one or more snapshot
// JSON files. Throws InvalidArgument naming the file for an unreadable file, a malformed trace line (as
// `unimem replay` does), JSON that does not parse (truncated), an unknown schema or schema version, or an
// --at event past the trace's end.
[[nodiscard]] nlohmann::json report_data(const std::vector<std::string>& inputs, const SelectedDevice& device,
                                         const ReportOptions& options);

// The path of a Chromium binary on PATH (chromium, then chromium-browser). Throws NotSupported when there is
// none.
[[nodiscard]] std::filesystem::path require_chromium();

// Renders the page at `html` to a PNG at `png` with headless Chromium (no sandbox, no GPU, no network).
// Throws NotSupported when Chromium is not on PATH, InvalidArgument when it fails or writes no image.
void render_png(const std::filesystem::path& html, const std::filesystem::path& png);

}  // namespace unimem::cli
