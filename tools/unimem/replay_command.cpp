#include "unimem/replay_command.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <set>
#include <system_error>

#include "unimem/config.hpp"
#include "unimem/core/error.hpp"
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

// The rows under a header of one column per stack, each column as wide as its stack's name (12 at least).
std::string table_text(const std::vector<std::string>& stacks, const std::vector<Row>& rows) {
  std::size_t label_width = 0;
  for (const auto& r : rows) label_width = std::max(label_width, r.label.size());
  std::vector<std::size_t> widths;
  for (const auto& stack : stacks) widths.push_back(std::max<std::size_t>(12, stack.size()));
  std::string out = fmt::format("{:<{}}", "", label_width);
  for (std::size_t i = 0; i < stacks.size(); ++i) out += fmt::format("  {:>{}}", stacks[i], widths[i]);
  out += "\n";
  for (const auto& r : rows) {
    out += fmt::format("{:<{}}", r.label, label_width);
    for (std::size_t i = 0; i < r.cells.size(); ++i) out += fmt::format("  {:>{}}", r.cells[i], widths[i]);
    out += "\n";
  }
  return out;
}

std::string ratio_cell(double ratio) {
  return fmt::format("{:.3f}", ratio);
}

// A trace's name in the summary table: the file name, since the directory is usually the same for all.
std::string trace_label(const Trace& trace) {
  const std::string name = std::filesystem::path(trace.source).filename().string();
  return name.empty() ? trace.source : name;
}

// Every *.csv directly in `directory`, sorted by name.
std::vector<std::filesystem::path> csv_files_in(const std::filesystem::path& directory) {
  std::vector<std::filesystem::path> files;
  std::error_code error;
  for (std::filesystem::directory_iterator it(directory, error), end; !error && it != end;
       it.increment(error)) {
    std::error_code type_error;
    if (it->path().extension() == ".csv" && it->is_regular_file(type_error)) files.push_back(it->path());
  }
  if (error) {
    throw InvalidArgument("cannot list trace directory " + quoted_path(directory.string()) + ": " +
                          error.message());
  }
  std::sort(files.begin(), files.end(),
            [](const auto& a, const auto& b) { return a.filename().string() < b.filename().string(); });
  return files;
}

}  // namespace

std::vector<std::filesystem::path> expand_trace_paths(const std::vector<std::string>& arguments) {
  if (arguments.empty()) throw InvalidArgument("replay: no trace given");
  std::vector<std::filesystem::path> paths;
  for (const auto& argument : arguments) {
    const std::filesystem::path path(argument);
    std::error_code error;
    if (!std::filesystem::is_directory(path, error)) {
      // A missing or unreadable file is reported by load_trace(), with the reason.
      paths.push_back(path);
      continue;
    }
    const std::vector<std::filesystem::path> files = csv_files_in(path);
    if (files.empty()) {
      throw InvalidArgument("replay: directory " + quoted_path(argument) + " holds no *.csv trace");
    }
    paths.insert(paths.end(), files.begin(), files.end());
  }
  return paths;
}

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

namespace {

// Throws InvalidArgument naming a spec given twice.
void check_specs_unique(const std::vector<std::string>& specs) {
  std::set<std::string> seen;
  for (const auto& spec : specs) {
    if (!seen.insert(spec).second) {
      throw InvalidArgument("replay: stack " + unimem::quoted(spec) +
                            " is given twice; the summary over several traces is keyed by stack");
    }
  }
}

}  // namespace

std::vector<TraceReplay> replay_traces(const std::vector<std::filesystem::path>& paths,
                                       const SelectedDevice& device, const std::vector<std::string>& specs,
                                       const ReplayOptions& options, const TraceParseOptions& parse) {
  if (paths.empty()) throw InvalidArgument("replay: no trace given");
  if (specs.empty()) throw InvalidArgument("replay: no stacks given");
  check_replay_options(options);
  for (const auto& spec : specs) (void)parse_resource_spec(spec);
  if (paths.size() > 1) check_specs_unique(specs);
  std::vector<TraceReplay> replays;
  replays.reserve(paths.size());
  for (const auto& path : paths) replays.push_back({load_trace(path, parse), {}});
  for (auto& replay : replays) {
    ReplayOptions per_trace = options;
    if (options.progress && replays.size() > 1) {
      per_trace.progress = [label = trace_label(replay.trace), &progress = options.progress](
                               std::string_view phase, double fraction) {
        progress(label + " " + std::string(phase), fraction);
      };
    }
    replay.results = replay_stacks(replay.trace, device, specs, per_trace);
  }
  return replays;
}

bool within_target(const ReplayResult& result) {
  const auto live = static_cast<double>(result.peak_live_bytes);
  const double limit =
      std::max(kTargetFragmentationRatio * live, live + static_cast<double>(kTargetSlackBytes));
  return static_cast<double>(result.peak_reserved_bytes) <= limit;
}

std::vector<StackSummary> summarize_replays(const std::vector<TraceReplay>& replays) {
  if (replays.empty()) throw InvalidArgument("replay summary: no traces");
  const std::vector<ReplayResult>& first = replays.front().results;
  std::vector<std::string> specs;
  for (const auto& result : first) specs.push_back(result.resource);
  check_specs_unique(specs);
  for (const auto& replay : replays) {
    bool same = replay.results.size() == first.size();
    for (std::size_t i = 0; same && i < first.size(); ++i) same = replay.results[i].resource == specs[i];
    if (!same) {
      throw InvalidArgument("replay summary: trace " + quoted_path(replay.trace.source) +
                            " was not replayed against the same stacks as " +
                            quoted_path(replays.front().trace.source));
    }
  }
  std::vector<StackSummary> summaries;
  for (std::size_t stack = 0; stack < specs.size(); ++stack) {
    StackSummary summary;
    summary.resource = specs[stack];
    double total_ratio = 0.0;
    bool first_trace = true;
    for (const auto& replay : replays) {
      const ReplayResult& r = replay.results[stack];
      if (first_trace || r.fragmentation_ratio > summary.worst_fragmentation_ratio) {
        summary.worst_fragmentation_ratio = r.fragmentation_ratio;
        summary.worst_trace = replay.trace.source;
      }
      first_trace = false;
      total_ratio += r.fragmentation_ratio;
      if (r.events != 0) {
        const double per_100 =
            static_cast<double>(r.map_calls + r.unmap_calls) * 100.0 / static_cast<double>(r.events);
        summary.max_map_calls_per_100_ops = std::max(summary.max_map_calls_per_100_ops, per_100);
      }
      summary.within_target = summary.within_target && within_target(r);
    }
    summary.mean_fragmentation_ratio = total_ratio / static_cast<double>(replays.size());
    summaries.push_back(std::move(summary));
  }
  return summaries;
}

nlohmann::json replay_json(const Trace& trace, const SelectedDevice& device, const ReplayOptions& options,
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
      {"repeat", options.repeat},
      {"streams", options.streams},
      {"results", stacks},
  };
}

std::string replay_table(const Trace& trace, const SelectedDevice& device, const ReplayOptions& options,
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
  if (options.streams > 1) {
    out += fmt::format("streams: {} (allocation k on stream k mod {}, freed on its own)\n", options.streams,
                       options.streams);
  }
  out += fmt::format("timing:  median of {} repeat(s); ns per allocate/free time each call alone\n\n",
                     options.repeat);

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
  std::vector<std::string> stacks;
  for (const auto& r : results) stacks.push_back(r.resource);
  return out + table_text(stacks, rows);
}

nlohmann::json replay_document(const std::vector<TraceReplay>& replays, const SelectedDevice& device,
                               const ReplayOptions& options) {
  if (replays.size() == 1) return replay_json(replays[0].trace, device, options, replays[0].results);
  const std::vector<StackSummary> summaries = summarize_replays(replays);
  nlohmann::json traces = nlohmann::json::array();
  for (const auto& replay : replays)
    traces.push_back(replay_json(replay.trace, device, options, replay.results));
  nlohmann::json summary = nlohmann::json::object();
  for (const auto& s : summaries) {
    summary[s.resource] = {
        {"worst_fragmentation_ratio", s.worst_fragmentation_ratio},
        {"worst_trace", s.worst_trace},
        {"mean_fragmentation_ratio", s.mean_fragmentation_ratio},
        {"max_map_calls_per_100_ops", s.max_map_calls_per_100_ops},
        {"within_target", s.within_target},
    };
  }
  // Each trace's document repeats the device; the top level has it too, for readers of the summary alone.
  return {
      {"unimem_version", UNIMEM_VERSION},
      {"device", traces.front()["device"]},
      {"repeat", options.repeat},
      {"streams", options.streams},
      {"traces", traces},
      {"summary", summary},
  };
}

std::string replay_report(const std::vector<TraceReplay>& replays, const SelectedDevice& device,
                          const ReplayOptions& options) {
  if (replays.size() == 1) return replay_table(replays[0].trace, device, options, replays[0].results);
  const std::vector<StackSummary> summaries = summarize_replays(replays);
  std::string out;
  for (const auto& replay : replays)
    out += replay_table(replay.trace, device, options, replay.results) + "\n";
  std::vector<std::string> stacks;
  std::vector<Row> rows;
  for (const auto& s : summaries) stacks.push_back(s.resource);
  for (const auto& replay : replays) {
    rows.push_back(row(trace_label(replay.trace), replay.results,
                       [](const ReplayResult& r) { return ratio_cell(r.fragmentation_ratio); }));
  }
  const auto summary_row = [&](std::string label, const auto& cell) {
    Row r{std::move(label), {}};
    for (const auto& s : summaries) r.cells.push_back(cell(s));
    rows.push_back(std::move(r));
  };
  summary_row("mean", [](const StackSummary& s) { return ratio_cell(s.mean_fragmentation_ratio); });
  summary_row("max map+unmap per 100 ops",
              [](const StackSummary& s) { return fmt::format("{:.2f}", s.max_map_calls_per_100_ops); });
  summary_row("within target",
              [](const StackSummary& s) { return std::string(s.within_target ? "yes" : "no"); });
  summary_row("worst", [](const StackSummary& s) { return ratio_cell(s.worst_fragmentation_ratio); });
  out += fmt::format(
      "summary: fragmentation (peak reserved / peak live) of {} traces; target: peak reserved "
      "at most max({:.2f} x peak live, peak live + {})\n\n",
      replays.size(), kTargetFragmentationRatio, format_bytes(kTargetSlackBytes));
  return out + table_text(stacks, rows);
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
