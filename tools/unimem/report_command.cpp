#include "unimem/report_command.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <system_error>

#include "unimem/config.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/file_output.hpp"
#include "unimem/replay_command.hpp"
#include "unimem/resource/pool_snapshot.hpp"
#include "unimem/resource/resource_spec.hpp"
#include "unimem/trace.hpp"
#include "unimem/trace_replay.hpp"

extern char** environ;  // NOLINT(readability-redundant-declaration): POSIX declares it nowhere else

namespace unimem::cli {

namespace {

using nlohmann::json;

constexpr std::size_t kMaxFailedEventsListed = 1000;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InvalidArgument("report: cannot read " + unimem::quoted_path(path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A snapshot file is JSON (it starts with '{'); anything else is read as a trace.
bool looks_like_json(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  return first != std::string::npos && text[first] == '{';
}

// The allocations live just after event `event`, largest first, each with the event that made it and the
// event that freed it (null: never freed in the trace).
json largest_live_at(const Trace& trace, std::size_t event) {
  struct Live {
    std::size_t slot;
    std::size_t start;
    std::uint64_t size;
  };
  std::vector<std::size_t> start_of(trace.slot_count, 0);
  std::vector<bool> is_live(trace.slot_count, false);
  for (std::size_t i = 0; i <= event; ++i) {
    const TraceEvent& e = trace.events[i];
    is_live[e.slot] = e.action == TraceAction::Allocate;
    if (is_live[e.slot]) start_of[e.slot] = i;
  }
  std::vector<Live> live;
  for (std::size_t slot = 0; slot < is_live.size(); ++slot) {
    if (is_live[slot]) live.push_back({slot, start_of[slot], trace.events[start_of[slot]].size});
  }
  std::sort(live.begin(), live.end(), [](const Live& a, const Live& b) {
    return a.size != b.size ? a.size > b.size : a.start < b.start;
  });
  if (live.size() > kLargestAllocations) live.resize(kLargestAllocations);
  // Each one's end: the first free of its slot after it started.
  std::vector<std::optional<std::size_t>> end(live.size());
  std::vector<std::ptrdiff_t> listed(trace.slot_count, -1);
  for (std::size_t k = 0; k < live.size(); ++k) listed[live[k].slot] = static_cast<std::ptrdiff_t>(k);
  for (std::size_t i = event + 1; i < trace.events.size(); ++i) {
    const TraceEvent& e = trace.events[i];
    const std::ptrdiff_t k = listed[e.slot];
    if (k >= 0 && e.action == TraceAction::Free && !end[static_cast<std::size_t>(k)]) {
      end[static_cast<std::size_t>(k)] = i;
      listed[e.slot] = -1;
    }
  }
  json out = json::array();
  for (std::size_t k = 0; k < live.size(); ++k) {
    out.push_back({{"bytes", live[k].size},
                   {"start_event", live[k].start},
                   {"end_event", end[k] ? json(*end[k]) : json(nullptr)}});
  }
  return out;
}

// The pool's snapshot in the docs/snapshot.md schema, or null (with a note) for a stack without a pool.
json pool_json(const MemoryResource& resource, json& note) {
  try {
    return json::parse(to_json(snapshot_of(resource)));
  } catch (const NotSupported& e) {
    note = e.what();
    return nullptr;
  }
}

json trace_stack(const Trace& trace, const std::string& spec, const SelectedDevice& device,
                 const ReportOptions& options) {
  const ResourceStack stack = make_resource_stack(spec, *device.backend, device.index, MemoryKind::Device);
  const std::size_t count = trace.events.size();
  const std::size_t bucket = std::max<std::size_t>(1, (count + kTimelineBuckets - 1) / kTimelineBuckets);
  json first_event = json::array();
  json live_min = json::array();
  json live_max = json::array();
  json reserved_min = json::array();
  json reserved_max = json::array();
  std::vector<std::uint64_t> slot_bytes(trace.slot_count, 0);
  std::uint64_t live = 0;
  std::size_t peak_reserved = 0;
  std::size_t peak_reserved_event = 0;
  std::uint64_t peak_live = 0;
  json failed_events = json::array();
  std::optional<std::size_t> first_failure;
  json pool = nullptr;
  json note = nullptr;
  std::optional<std::size_t> map_event;
  ResourceUsage map_usage;
  std::uint64_t bucket_live_min = 0;
  std::uint64_t bucket_live_max = 0;
  std::size_t bucket_reserved_min = 0;
  std::size_t bucket_reserved_max = 0;
  const auto take_map = [&](std::size_t event, const MemoryResource& resource) {
    map_event = event;
    map_usage = resource.usage();
    note = nullptr;
    pool = pool_json(resource, note);
  };
  const std::size_t failures =
      replay_observed(trace, stack.top(), [&](std::size_t i, bool failed, const MemoryResource& resource) {
        const TraceEvent& e = trace.events[i];
        if (e.action == TraceAction::Allocate) {
          slot_bytes[e.slot] = failed ? 0 : e.size;
          live += slot_bytes[e.slot];
        } else {
          live -= slot_bytes[e.slot];
          slot_bytes[e.slot] = 0;
        }
        const std::size_t reserved = resource.usage().reserved_bytes;
        if (reserved > peak_reserved) {
          peak_reserved = reserved;
          peak_reserved_event = i;
        }
        peak_live = std::max(peak_live, live);
        if (failed) {
          if (failed_events.size() < kMaxFailedEventsListed) failed_events.push_back(i);
          if (!first_failure) first_failure = i;
        }
        if (i % bucket == 0) {
          bucket_live_min = bucket_live_max = live;
          bucket_reserved_min = bucket_reserved_max = reserved;
        } else {
          bucket_live_min = std::min(bucket_live_min, live);
          bucket_live_max = std::max(bucket_live_max, live);
          bucket_reserved_min = std::min(bucket_reserved_min, reserved);
          bucket_reserved_max = std::max(bucket_reserved_max, reserved);
        }
        if (i % bucket == bucket - 1 || i + 1 == count) {
          first_event.push_back(i - i % bucket);
          live_min.push_back(bucket_live_min);
          live_max.push_back(bucket_live_max);
          reserved_min.push_back(bucket_reserved_min);
          reserved_max.push_back(bucket_reserved_max);
        }
        // The map: at --at; else at the first failed allocation, else at the trace's peak.
        if (options.at_event) {
          if (i == *options.at_event) take_map(i, resource);
        } else if (failed && first_failure == i) {
          take_map(i, resource);
        } else if (!first_failure && i == trace.peak_live_event) {
          take_map(i, resource);
        }
      });
  const std::size_t event = map_event.value_or(0);
  return {
      {"name", spec},
      {"timeline",
       {{"first_event", first_event},
        {"live_min", live_min},
        {"live_max", live_max},
        {"reserved_min", reserved_min},
        {"reserved_max", reserved_max}}},
      {"failed_allocations", failures},
      {"failed_events", failed_events},
      {"peak_reserved_event", peak_reserved_event},
      {"map_event", map_event ? json(event) : json(nullptr)},
      {"map_reason", options.at_event ? "--at" : (first_failure ? "first failed allocation" : "peak live")},
      {"pool", pool},
      {"pool_note", note},
      {"largest", map_event ? largest_live_at(trace, event) : json::array()},
      {"summary",
       {{"peak_live_bytes", peak_live},
        {"peak_reserved_bytes", peak_reserved},
        {"fragmentation_ratio",
         peak_live == 0 ? 0.0 : static_cast<double>(peak_reserved) / static_cast<double>(peak_live)},
        {"reserved_bytes_at_map", map_usage.reserved_bytes},
        {"in_use_bytes_at_map", map_usage.in_use_bytes},
        {"largest_free_range_at_map", map_usage.largest_free_range}}},
  };
}

json trace_report(const std::string& path, const SelectedDevice& device, const ReportOptions& options) {
  const Trace trace = load_trace(path, {.lenient = options.lenient});
  if (options.at_event && *options.at_event >= trace.events.size()) {
    throw InvalidArgument("report: --at " + std::to_string(*options.at_event) + " is past the end of " +
                          unimem::quoted_path(path) + " (" + std::to_string(trace.events.size()) +
                          " events)");
  }
  std::vector<std::string> specs = options.resources;
  if (specs.empty()) specs.emplace_back(kDefaultResourceSpec);
  for (const auto& spec : specs) (void)parse_resource_spec(spec);
  json stacks = json::array();
  for (const auto& spec : specs) stacks.push_back(trace_stack(trace, spec, device, options));
  return {
      {"kind", "trace"},
      {"sources", {path}},
      {"device", device.text},
      {"trace",
       {{"events", trace.events.size()},
        {"allocations", trace.allocations},
        {"frees", trace.frees},
        {"peak_live_bytes", trace.peak_live_bytes},
        {"peak_event", trace.peak_live_event}}},
      {"stacks", stacks},
  };
}

// The allocated ranges of a pool snapshot, largest first (a snapshot has no events: no lifetimes).
json largest_ranges(const json& pool) {
  std::vector<json> ranges;
  for (const json& segment : pool.at("segments")) {
    for (const json& range : segment.at("ranges")) {
      if (!range.at("allocated").get<bool>()) continue;
      json r = range;
      r["segment"] = segment.at("id");
      ranges.push_back(std::move(r));
    }
  }
  std::sort(ranges.begin(), ranges.end(), [](const json& a, const json& b) {
    return a.at("size").get<std::size_t>() > b.at("size").get<std::size_t>();
  });
  if (ranges.size() > kLargestAllocations) ranges.resize(kLargestAllocations);
  return ranges;
}

void snapshot_stacks(const std::string& path, const std::string& text, json& stacks, json& failed) {
  json document;
  try {
    document = json::parse(text);
  } catch (const json::parse_error& e) {
    throw InvalidArgument("report: " + unimem::quoted_path(path) +
                          " is not valid JSON (truncated?): " + e.what());
  }
  try {
    if (!document.is_object() || document.value("schema", "") != "unimem.snapshot") {
      throw InvalidArgument("report: " + unimem::quoted_path(path) +
                            " is not a unimem snapshot (no \"schema\": \"unimem.snapshot\")");
    }
    const json& version = document.at("schema_version");
    if (!version.is_number_integer() || version.get<long long>() != kSnapshotSchemaVersion) {
      throw InvalidArgument("report: " + unimem::quoted_path(path) + " has snapshot schema version " +
                            version.dump() + "; this unimem reads version " +
                            std::to_string(kSnapshotSchemaVersion));
    }
    for (const json& stack : document.at("stacks")) {
      const json& usage = stack.at("usage");
      const std::size_t in_use = usage.at("in_use_bytes").get<std::size_t>();
      const std::size_t reserved = usage.at("reserved_bytes").get<std::size_t>();
      const std::string name = path + ": " + stack.at("device").at("name").get<std::string>() + " " +
                               stack.at("stack").get<std::string>();
      for (const json& segment : stack.at("segments")) {
        for (const json& range : segment.at("ranges")) {
          (void)range.at("offset").get<std::size_t>();
          (void)range.at("size").get<std::size_t>();
          (void)range.at("allocated").get<bool>();
        }
      }
      stacks.push_back({
          {"name", name},
          {"pool", stack},
          {"pool_note", nullptr},
          {"map_event", nullptr},
          {"largest", largest_ranges(stack)},
          {"summary",
           {{"peak_live_bytes", stack.at("stats").at("peak_bytes")},
            {"in_use_bytes_at_map", in_use},
            {"reserved_bytes_at_map", reserved},
            {"fragmentation_ratio",
             in_use == 0 ? 0.0 : static_cast<double>(reserved) / static_cast<double>(in_use)},
            {"largest_free_range_at_map", usage.at("largest_free_range")}}},
      });
    }
    if (document.contains("failed_request") && !document.at("failed_request").is_null()) {
      json request = document.at("failed_request");
      request["source"] = path;
      failed.push_back(std::move(request));
    }
  } catch (const json::exception& e) {
    throw InvalidArgument("report: " + unimem::quoted_path(path) +
                          " does not follow the snapshot schema: " + e.what());
  }
}

}  // namespace

json report_data(const std::vector<std::string>& inputs, const SelectedDevice& device,
                 const ReportOptions& options) {
  if (inputs.empty()) throw InvalidArgument("report: no input (a trace or snapshot files)");
  std::vector<std::string> texts;
  std::size_t snapshots = 0;
  for (const auto& input : inputs) {
    texts.push_back(read_file(input));
    if (looks_like_json(texts.back())) ++snapshots;
  }
  json data;
  if (snapshots == 0) {
    if (inputs.size() != 1) {
      throw InvalidArgument("report: " + std::to_string(inputs.size()) +
                            " traces given; a report shows one trace (or any number of snapshot files)");
    }
    data = trace_report(inputs.front(), device, options);
  } else {
    if (snapshots != inputs.size()) {
      throw InvalidArgument(
          "report: a trace and snapshot files given together; give one trace, or snapshots");
    }
    if (options.at_event) throw InvalidArgument("report: --at needs a trace; snapshots have no events");
    json stacks = json::array();
    json failed = json::array();
    for (std::size_t i = 0; i < inputs.size(); ++i) snapshot_stacks(inputs[i], texts[i], stacks, failed);
    data = {{"kind", "snapshots"}, {"sources", inputs}, {"stacks", stacks}, {"failed_requests", failed}};
  }
  data["unimem_version"] = UNIMEM_VERSION;
  return data;
}

std::filesystem::path require_chromium() {
  const char* path_variable = std::getenv("PATH");
  const std::string directories_text = path_variable == nullptr ? "" : path_variable;
  for (const char* name : {"chromium", "chromium-browser"}) {
    std::istringstream directories(directories_text);
    std::string directory;
    while (std::getline(directories, directory, ':')) {
      if (directory.empty()) continue;
      std::filesystem::path candidate = std::filesystem::path(directory) / name;
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  throw NotSupported(
      "report: --png needs Chromium (chromium or chromium-browser on PATH; "
      "scripts/bootstrap installs it)");
}

void render_png(const std::filesystem::path& html, const std::filesystem::path& png) {
  const std::filesystem::path chromium = require_chromium();
  std::filesystem::path temporary = png;
  temporary += ".tmp.png";
  const std::string screenshot = "--screenshot=" + temporary.string();
  const std::string url = "file://" + std::filesystem::absolute(html).string();
  // Root needs --no-sandbox; the proxy that leads nowhere keeps the page off the network, as its CSP does.
  std::vector<std::string> args = {chromium.string(),
                                   "--headless",
                                   "--disable-gpu",
                                   "--no-sandbox",
                                   "--hide-scrollbars",
                                   "--proxy-server=127.0.0.1:9",
                                   "--proxy-bypass-list=<-loopback>",
                                   "--window-size=1400,1600",
                                   screenshot,
                                   url};
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    throw InvalidArgument("report: cannot run " + unimem::quoted_path(chromium.string()) + ": " +
                          std::error_code(spawned, std::generic_category()).message());
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw InvalidArgument("report: lost the Chromium process");
  }
  std::error_code error;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !std::filesystem::exists(temporary, error)) {
    std::filesystem::remove(temporary, error);
    throw InvalidArgument("report: Chromium did not render " + unimem::quoted_path(png.string()) +
                          " (exit status " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) +
                          ")");
  }
  std::filesystem::rename(temporary, png, error);
  if (error) {
    std::filesystem::remove(temporary, error);
    throw InvalidArgument("report: cannot write " + unimem::quoted_path(png.string()) + ": " +
                          error.message());
  }
}

}  // namespace unimem::cli
