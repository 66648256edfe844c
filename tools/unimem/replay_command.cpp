#include "unimem/replay_command.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>

#include "unimem/config.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/resource_spec.hpp"

namespace unimem::cli {

namespace {

constexpr MemoryKind kReplayMemory = MemoryKind::Device;

std::string bytes_cell(std::size_t bytes) {
  return format_bytes(bytes);
}

std::string count_cell(std::uint64_t count) {
  return std::to_string(count);
}

std::string ns_cell(double ns) {
  return fmt::format("{:.1f}", ns);
}

// One row of the side-by-side table: a label and one cell per stack.
struct Row {
  std::string label;
  std::vector<std::string> cells;
};

template <typename Cell>
Row row(std::string label, const std::vector<ReplayResult>& results, Cell cell) {
  Row r{std::move(label), {}};
  for (const auto& result : results) r.cells.push_back(cell(result));
  return r;
}

}  // namespace

std::vector<ReplayResult> replay_stacks(const Trace& trace, const SelectedDevice& device,
                                        const std::vector<std::string>& specs, const ReplayOptions& options) {
  // Every spec is checked before the first replay, so a typo in the last one fails at once.
  for (const auto& spec : specs) (void)parse_resource_spec(spec);
  std::vector<ReplayResult> results;
  for (const auto& spec : specs) {
    ReplayOptions per_stack = options;
    if (options.progress) {
      per_stack.progress = [&spec, &progress = options.progress](std::string_view phase, double fraction) {
        progress(spec + ": " + std::string(phase), fraction);
      };
    }
    results.push_back(replay_trace(trace, spec, *device.backend, device.index, kReplayMemory, per_stack));
  }
  return results;
}

nlohmann::json replay_json(const Trace& trace, const SelectedDevice& device, int repeat,
                           const std::vector<ReplayResult>& results) {
  const DeviceInfo info = device.info();
  nlohmann::json stacks = nlohmann::json::array();
  for (const auto& r : results) {
    stacks.push_back({
        {"resource", r.resource},
        {"events", r.events},
        {"allocations", r.allocations},
        {"frees", r.frees},
        {"peak_live_bytes", r.peak_live_bytes},
        {"peak_reserved_bytes", r.peak_reserved_bytes},
        {"fragmentation_ratio", r.fragmentation_ratio},
        {"reserved_bytes_at_peak_live", r.reserved_bytes_at_peak_live},
        {"largest_free_range_at_peak_live", r.largest_free_range_at_peak_live},
        {"upstream_allocations", r.upstream_allocations},
        {"upstream_deallocations", r.upstream_deallocations},
        {"map_calls", r.map_calls},
        {"unmap_calls", r.unmap_calls},
        {"failed_allocations", r.failed_allocations},
        {"skipped_frees", r.skipped_frees},
        {"ns_per_allocate", r.ns_per_allocate},
        {"ns_per_free", r.ns_per_free},
        {"ns_per_op", r.ns_per_op},
        {"ns_per_op_with_lookup", r.ns_per_op_with_lookup},
    });
  }
  return {
      {"unimem_version", UNIMEM_VERSION},
      {"trace",
       {{"path", trace.source},
        {"events", trace.events.size()},
        {"allocations", trace.allocations},
        {"frees", trace.frees},
        {"recorded_failures", trace.recorded_failures},
        {"skipped_lines", trace.skipped_lines},
        {"peak_live_bytes", trace.peak_live_bytes},
        {"live_at_end", trace.live_at_end},
        {"live_bytes_at_end", trace.live_bytes_at_end}}},
      {"device",
       {{"spec", device.text},
        {"id", to_string(info.id)},
        {"name", info.name},
        {"total_bytes", info.memory.total_bytes},
        {"memory_kind", std::string(to_string(kReplayMemory))}}},
      {"repeat", repeat},
      {"results", stacks},
  };
}

std::string replay_table(const Trace& trace, const SelectedDevice& device, int repeat,
                         const std::vector<ReplayResult>& results) {
  const DeviceInfo info = device.info();
  std::string out = fmt::format("trace:   {}\n", trace.source);
  out += fmt::format("events:  {} ({} allocations, {} frees", trace.events.size(), trace.allocations,
                     trace.frees);
  if (trace.recorded_failures != 0)
    out += fmt::format(", {} recorded failures not replayed", trace.recorded_failures);
  if (trace.skipped_lines != 0) {
    out +=
        fmt::format("; {} malformed lines skipped, the first: {}", trace.skipped_lines, trace.first_skipped);
  }
  out += fmt::format(")\npeak:    {} live ({} bytes); {} allocations ({}) still live at the end\n",
                     format_bytes(trace.peak_live_bytes), trace.peak_live_bytes, trace.live_at_end,
                     format_bytes(trace.live_bytes_at_end));
  out += fmt::format("device:  {} = {} ({}), {} memory\n", device.text, to_string(info.id), info.name,
                     to_string(kReplayMemory));
  out +=
      fmt::format("timing:  median of {} repeat(s); ns per allocate/free time each call alone\n\n", repeat);

  const std::vector<Row> rows = {
      row("peak reserved", results, [](const ReplayResult& r) { return bytes_cell(r.peak_reserved_bytes); }),
      row("fragmentation (reserved/live)", results,
          [](const ReplayResult& r) { return fmt::format("{:.3f}", r.fragmentation_ratio); }),
      row("reserved at peak live", results,
          [](const ReplayResult& r) { return bytes_cell(r.reserved_bytes_at_peak_live); }),
      row("largest free at peak live", results,
          [](const ReplayResult& r) { return bytes_cell(r.largest_free_range_at_peak_live); }),
      row("upstream allocations", results,
          [](const ReplayResult& r) { return count_cell(r.upstream_allocations); }),
      row("upstream frees", results,
          [](const ReplayResult& r) { return count_cell(r.upstream_deallocations); }),
      row("map calls", results, [](const ReplayResult& r) { return count_cell(r.map_calls); }),
      row("unmap calls", results, [](const ReplayResult& r) { return count_cell(r.unmap_calls); }),
      row("failed allocations", results,
          [](const ReplayResult& r) { return count_cell(r.failed_allocations); }),
      row("skipped frees", results, [](const ReplayResult& r) { return count_cell(r.skipped_frees); }),
      row("ns per allocate", results, [](const ReplayResult& r) { return ns_cell(r.ns_per_allocate); }),
      row("ns per free", results, [](const ReplayResult& r) { return ns_cell(r.ns_per_free); }),
      row("ns per op", results, [](const ReplayResult& r) { return ns_cell(r.ns_per_op); }),
      row("ns per op with lookup", results,
          [](const ReplayResult& r) { return ns_cell(r.ns_per_op_with_lookup); }),
  };
  std::size_t label_width = 0;
  for (const auto& r : rows) label_width = std::max(label_width, r.label.size());
  std::vector<std::size_t> widths;
  for (const auto& r : results) widths.push_back(std::max<std::size_t>(12, r.resource.size()));
  out += fmt::format("{:<{}}", "", label_width);
  for (std::size_t i = 0; i < results.size(); ++i)
    out += fmt::format("  {:>{}}", results[i].resource, widths[i]);
  out += "\n";
  for (const auto& r : rows) {
    out += fmt::format("{:<{}}", r.label, label_width);
    for (std::size_t i = 0; i < r.cells.size(); ++i) out += fmt::format("  {:>{}}", r.cells[i], widths[i]);
    out += "\n";
  }
  return out;
}

ReplayProgress terminal_progress() {
  if (isatty(STDERR_FILENO) == 0) return {};
  struct State {
    std::string phase;
    int percent = -1;
  };
  auto state = std::make_shared<State>();
  return [state](std::string_view phase, double fraction) {
    constexpr int kWidth = 30;
    const int percent = static_cast<int>(std::clamp(fraction, 0.0, 1.0) * 100.0);
    if (percent >= 100) {
      std::fputs("\r\033[K", stderr);
      state->percent = -1;
      return;
    }
    if (percent == state->percent && phase == state->phase) return;
    state->percent = percent;
    state->phase = phase;
    const int filled = percent * kWidth / 100;
    std::fprintf(stderr, "\r\033[K[%s%s] %3d%% %.*s",
                 std::string(static_cast<std::size_t>(filled), '#').c_str(),
                 std::string(static_cast<std::size_t>(kWidth - filled), '-').c_str(), percent,
                 static_cast<int>(phase.size()), phase.data());
    std::fflush(stderr);
  };
}

}  // namespace unimem::cli
