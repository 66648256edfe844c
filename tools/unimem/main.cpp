// The unimem command-line tool: `unimem info`, `unimem replay`, `unimem report`, `unimem bench
// alloc|transfer|overlap`.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <exception>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "unimem/backend/backend_registry.hpp"
#include "unimem/backend/platform.hpp"
#include "unimem/bench_command.hpp"
#include "unimem/config.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/file_output.hpp"
#include "unimem/core/size.hpp"
#include "unimem/info_command.hpp"
#include "unimem/overlap_bench.hpp"
#include "unimem/replay_command.hpp"
#include "unimem/report_command.hpp"
#include "unimem/report_page.hpp"
#include "unimem/resource/resource_spec.hpp"

namespace {

// Bounds on counts, so that a typo cannot start a run that never ends.
constexpr int kMaxRepeat = 100'000;
constexpr int kMaxThreads = 1024;
constexpr std::size_t kMaxPairs = 1'000'000'000;

unimem::BackendRegistryOptions registry_options(const std::vector<std::string>& sim_specs) {
  unimem::BackendRegistryOptions options;
  for (const auto& spec : sim_specs)
    options.simulated_devices.push_back(unimem::SimulatedDeviceSpec::parse(spec));
  return options;
}

// JSON text for standard output. File names and device names may hold bytes that are not UTF-8; they are
// replaced (U+FFFD) rather than aborting the output.
std::string json_text(const nlohmann::json& value) {
  return value.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Prints a benchmark's rows as JSON or as its table.
template <typename Json, typename Table>
void print_bench(bool as_json, const Json& json, const Table& table) {
  if (as_json) {
    std::cout << json_text(json()) << '\n';
  } else {
    std::cout << table();
  }
}

std::vector<std::size_t> parse_sizes(const std::vector<std::string>& texts) {
  std::vector<std::size_t> sizes;
  sizes.reserve(texts.size());
  for (const auto& text : texts) sizes.push_back(unimem::parse_bytes(text));
  return sizes;
}

struct ReplayArguments {
  std::vector<std::string> traces;
  std::string resource;
  std::vector<std::string> compare;
  std::string device{unimem::cli::kDefaultReplayDevice};
  int repeat = unimem::cli::ReplayOptions{}.repeat;
  int streams = unimem::cli::ReplayOptions{}.streams;
  bool json = false;
  bool lenient = false;
};

int run_replay(const ReplayArguments& args) {
  std::vector<std::string> specs;
  // --resource names the first stack; with --compare alone, the stacks are exactly those compared.
  if (!args.resource.empty() || args.compare.empty()) {
    specs.push_back(args.resource.empty() ? std::string(unimem::kDefaultResourceSpec) : args.resource);
  }
  specs.insert(specs.end(), args.compare.begin(), args.compare.end());
  // A typo in a spec should not wait for the trace to be read.
  for (const auto& spec : specs) (void)unimem::parse_resource_spec(spec);
  const std::vector<std::filesystem::path> paths = unimem::cli::expand_trace_paths(args.traces);
  const unimem::cli::DeviceSelection selection({args.device});
  const unimem::cli::ReplayOptions options{
      .repeat = args.repeat, .progress = unimem::cli::terminal_progress(), .streams = args.streams};
  const auto replays =
      unimem::cli::replay_traces(paths, selection.front(), specs, options, {.lenient = args.lenient});
  if (args.json) {
    std::cout << json_text(unimem::cli::replay_document(replays, selection.front(), options)) << '\n';
  } else {
    std::cout << unimem::cli::replay_report(replays, selection.front(), options);
  }
  return 0;
}

struct ReportArguments {
  std::vector<std::string> inputs;
  std::string output;
  std::string png;
  std::vector<std::string> resources;
  std::string device{unimem::cli::kDefaultReplayDevice};
  std::optional<std::size_t> at;
  bool lenient = false;
};

int run_report(const ReportArguments& args) {
  // A typo in a spec should not wait for the trace to be read, nor --png for the page to be written.
  for (const auto& spec : args.resources) (void)unimem::parse_resource_spec(spec);
  if (!args.png.empty()) (void)unimem::cli::require_chromium();
  const unimem::cli::DeviceSelection selection({args.device});
  const nlohmann::json data =
      unimem::cli::report_data(args.inputs, selection.front(),
                               {.resources = args.resources, .at_event = args.at, .lenient = args.lenient});
  unimem::write_file_replacing(args.output, unimem::cli::report_page(data), "report");
  std::cout << "report written to " << args.output << '\n';
  if (!args.png.empty()) {
    unimem::cli::render_png(args.output, args.png);
    std::cout << "screenshot written to " << args.png << '\n';
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"unimem: one memory manager for CUDA, OpenCL and host memory"};
  app.set_version_flag("--version", std::string("unimem ") + UNIMEM_VERSION);
  app.require_subcommand(1);

  std::vector<std::string> sim_specs;
  bool json = false;
  auto* info = app.add_subcommand("info", "List backends, devices, memory, capabilities and peer access");
  info->add_option("--sim", sim_specs, "Add a simulated device, e.g. 80GiB or 1GiB:backed (repeatable)");
  info->add_flag("--json", json, "Print JSON instead of a table");

  ReplayArguments replay_args;
  auto* replay =
      app.add_subcommand("replay", "Replay an allocation trace (RMM logging CSV) against resource stacks");
  replay
      ->add_option("traces", replay_args.traces,
                   "Trace files (Thread,Time,Action,Pointer,Size,Stream), or directories of *.csv traces")
      ->required();
  replay->add_option(
      "--resource", replay_args.resource,
      "Resource spec to replay against (default: " + std::string(unimem::kDefaultResourceSpec) + ")");
  replay->add_option("--compare", replay_args.compare, "Further resource specs, replayed side by side")
      ->expected(1, -1);
  replay->add_option("--device", replay_args.device,
                     "host, opencl:N, cuda:N or sim:SIZE[:backed] (default: " +
                         std::string(unimem::cli::kDefaultReplayDevice) + ", unbacked)");
  replay->add_option("--repeat", replay_args.repeat, "Timed repeats; times are their median")
      ->check(CLI::Range(1, kMaxRepeat));
  replay
      ->add_option("--streams", replay_args.streams,
                   "Streams the allocations are spread over, allocation k on stream k mod N (default: 1, "
                   "host order)")
      ->check(CLI::Range(1, unimem::cli::kMaxReplayStreams));
  replay->add_flag("--json", replay_args.json, "Print JSON instead of a table");
  replay->add_flag("--lenient", replay_args.lenient, "Skip and count malformed lines instead of stopping");

  ReportArguments report_args;
  auto* report = app.add_subcommand(
      "report", "Write one self-contained HTML page showing memory over a trace, or in snapshot files");
  report
      ->add_option("inputs", report_args.inputs,
                   "One RMM CSV trace, or snapshot JSON files (docs/snapshot.md)")
      ->required();
  report->add_option("-o,--output", report_args.output, "The HTML file to write")->required();
  report
      ->add_option("--resource", report_args.resources,
                   "Resource specs a trace is replayed against, side by side (default: " +
                       std::string(unimem::kDefaultResourceSpec) + ")")
      ->expected(1, -1);
  report->add_option("--device", report_args.device,
                     "host, opencl:N, cuda:N or sim:SIZE[:backed] (default: " +
                         std::string(unimem::cli::kDefaultReplayDevice) + ", unbacked)");
  report->add_option(
      "--at", report_args.at,
      "Show the segment map after event N (default: the peak, or the first failed allocation)");
  report->add_option("--png", report_args.png, "Also render the page to this PNG with headless Chromium");
  report->add_flag("--lenient", report_args.lenient,
                   "Skip and count malformed trace lines instead of stopping");

  auto* bench = app.add_subcommand("bench", "Microbenchmarks: allocation, transfer and download overlap");
  bench->require_subcommand(1);

  unimem::cli::AllocBenchOptions alloc_options;
  std::string alloc_device = "host";
  std::vector<std::string> alloc_sizes;
  std::vector<std::string> alloc_resources;
  bool alloc_json = false;
  auto* alloc = bench->add_subcommand("alloc", "Allocate+free pairs per resource stack, against malloc");
  alloc->add_option("--device", alloc_device, "host, opencl:N, cuda:N or sim:SIZE[:backed] (default: host)");
  alloc
      ->add_option("--resource", alloc_resources,
                   "Resource specs (default: upstream size-class coalescing hybrid)")
      ->expected(1, -1);
  alloc->add_option("--size", alloc_sizes, "Allocation sizes (default: 256B to 1MiB, steps of 4x)")
      ->expected(1, -1);
  alloc->add_option("--threads", alloc_options.threads, "Thread counts (default: 1 2)")
      ->expected(1, -1)
      ->check(CLI::Range(1, kMaxThreads));
  alloc->add_option("--pairs", alloc_options.pairs, "Pairs per thread and repeat")
      ->check(CLI::Range(std::size_t{1}, kMaxPairs));
  alloc->add_option("--repeat", alloc_options.repeat, "Repeats; times are their median")
      ->check(CLI::Range(1, kMaxRepeat));
  alloc->add_flag("--json", alloc_json, "Print JSON instead of a table");

  unimem::cli::TransferBenchOptions transfer_options;
  std::vector<std::string> transfer_devices;
  std::vector<std::string> transfer_sizes;
  bool transfer_json = false;
  auto* transfer = bench->add_subcommand("transfer", "Backend::copy bandwidth per device, against memcpy");
  transfer->add_option("--device", transfer_devices, "Devices (default: every host, OpenCL and CUDA device)")
      ->expected(1, -1);
  transfer->add_option("--size", transfer_sizes, "Copy sizes (default: 1MiB to 1GiB, steps of 4x)")
      ->expected(1, -1);
  transfer->add_option("--repeat", transfer_options.repeat, "Repeats; best, median and worst are reported")
      ->check(CLI::Range(1, kMaxRepeat));
  transfer->add_flag("--json", transfer_json, "Print JSON instead of a table");

  unimem::cli::OverlapBenchOptions overlap_options;
  std::vector<std::string> overlap_devices;
  std::vector<std::string> overlap_sizes;
  bool overlap_json = false;
  auto* overlap = bench->add_subcommand(
      "overlap", "Double-buffered downloads against synchronous ones, with a model of what bounds the gain");
  overlap->add_option("--device", overlap_devices, "Devices (default: every host, OpenCL and CUDA device)")
      ->expected(1, -1);
  overlap->add_option("--size", overlap_sizes, "Result sizes (default: 1MiB to 64MiB, steps of 4x)")
      ->expected(1, -1);
  overlap->add_option("--steps", overlap_options.steps, "Steps per timed loop")
      ->check(CLI::Range(2, 1 << 20));
  overlap->add_option("--repeat", overlap_options.repeat, "Repeats; every figure is their median")
      ->check(CLI::Range(1, kMaxRepeat));
  overlap->add_flag("--json", overlap_json, "Print JSON instead of a table");

  // CLI11 reports an unknown command only as "a subcommand is required"; name it.
  if (argc > 1 && argv[1][0] != '-') {
    const std::string command = argv[1];
    const std::vector<const CLI::App*> known =
        std::as_const(app).get_subcommands([&](const CLI::App* sub) { return sub->get_name() == command; });
    if (known.empty()) {
      std::cerr << "unimem: unknown command " << unimem::quoted(command)
                << " (info, replay, report, bench; see --help)\n";
      return 1;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every malformed argument exits 1, as every other error does.
    return app.exit(e) == 0 ? 0 : 1;
  }

  try {
    if (info->parsed()) {
      const unimem::BackendRegistry registry(registry_options(sim_specs));
      const unimem::PlatformInfo platform = unimem::detect_platform();
      if (json) {
        std::cout << json_text(unimem::cli::info_json(registry, platform)) << '\n';
      } else {
        std::cout << unimem::cli::info_table(registry, platform);
      }
    }
    if (replay->parsed()) return run_replay(replay_args);
    if (report->parsed()) return run_report(report_args);
    if (alloc->parsed()) {
      if (!alloc_resources.empty()) alloc_options.resources = alloc_resources;
      alloc_options.sizes = parse_sizes(alloc_sizes);
      const unimem::cli::DeviceSelection selection({alloc_device});
      const auto rows = unimem::cli::bench_alloc(selection.front(), alloc_options);
      print_bench(
          alloc_json, [&] { return unimem::cli::alloc_bench_json(selection.front(), alloc_options, rows); },
          [&] { return unimem::cli::alloc_bench_table(selection.front(), alloc_options, rows); });
    }
    if (transfer->parsed()) {
      transfer_options.sizes = parse_sizes(transfer_sizes);
      const unimem::cli::DeviceSelection selection(transfer_devices);
      const auto rows = unimem::cli::bench_transfer(selection.devices(), transfer_options);
      print_bench(
          transfer_json,
          [&] { return unimem::cli::transfer_bench_json(selection.devices(), transfer_options, rows); },
          [&] { return unimem::cli::transfer_bench_table(selection.devices(), rows); });
    }
    if (overlap->parsed()) {
      overlap_options.sizes = parse_sizes(overlap_sizes);
      const unimem::cli::DeviceSelection selection(overlap_devices);
      const auto rows = unimem::cli::bench_overlap(selection.devices(), overlap_options);
      print_bench(
          overlap_json,
          [&] { return unimem::cli::overlap_bench_json(selection.devices(), overlap_options, rows); },
          [&] { return unimem::cli::overlap_bench_table(rows); });
    }
  } catch (const unimem::Error& e) {
    std::cerr << "unimem: " << e.what() << '\n';
    return 1;
  } catch (const std::exception& e) {
    // Not a typed unimem error, so a defect of ours: still a message and exit status 1, never an abort.
    std::cerr << "unimem: internal error: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
