// Replays RMM-format allocation traces (Thread,Time,Action,Pointer,Size,Stream) against HybridPool on an
// unbacked 80 GiB simulated device, for several small-request thresholds, and prints peak reserved bytes
// against peak live bytes (the fragmentation ratio) and the time per operation. This is the measurement
// behind HybridPoolOptions' default threshold (docs/architecture.md, "Pools").
//
//   unimem_trace_replay [--thresholds 64KiB,256KiB,1MiB,4MiB] [trace.csv ...]
//
// Without trace arguments it replays every .csv in the shared trace folder the build was configured with.

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/resource/hybrid_pool.hpp"

namespace {

using namespace unimem;

struct Event {
  bool allocate = true;
  std::size_t size = 0;
  std::size_t slot = 0;  // dense index of the allocation: the replay keeps live allocations in a vector
};

struct Trace {
  std::string name;
  std::vector<Event> events;
  std::size_t slots = 0;
  std::size_t peak_live = 0;
};

Trace load(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw InvalidArgument("cannot read trace " + path.string());
  Trace trace{path.stem().string(), {}, 0, 0};
  std::unordered_map<std::string, std::size_t> live;  // pointer -> slot
  std::vector<std::size_t> free_slots;
  std::size_t live_bytes = 0;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::stringstream row(line);
    for (std::string field; std::getline(row, field, ',');) fields.push_back(field);
    if (fields.size() != 6) throw InvalidArgument(trace.name + ": malformed line '" + line + "'");
    Event event{fields[2] == "allocate", std::stoull(fields[4]), 0};
    if (event.allocate) {
      if (free_slots.empty()) {
        free_slots.push_back(trace.slots++);
      }
      event.slot = free_slots.back();
      free_slots.pop_back();
      live[fields[3]] = event.slot;
      live_bytes += event.size;
      trace.peak_live = std::max(trace.peak_live, live_bytes);
    } else {
      const auto it = live.find(fields[3]);
      if (it == live.end()) throw InvalidArgument(trace.name + ": free of a pointer not live: " + fields[3]);
      event.slot = it->second;
      free_slots.push_back(event.slot);
      live.erase(it);
      live_bytes -= event.size;
    }
    trace.events.push_back(event);
  }
  return trace;
}

struct Result {
  std::size_t peak_reserved = 0;
  double ns_per_op = 0.0;
  ResourceUsage at_end;
};

// One replay that reads usage() after every event (peak reserved), then timed replays without it.
Result replay(const Trace& trace, std::size_t threshold) {
  Result result;
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = 80 * GiB, .backed = false}});
  BackendResource device(sim, 0, MemoryKind::Device);
  HybridPoolOptions options;
  options.small_threshold = threshold;
  options.small.max_block = std::max(options.small.max_block, std::bit_ceil(threshold));
  const auto run = [&](bool measure_memory) {
    HybridPool pool(device, options);
    std::vector<Allocation> live(trace.slots);
    for (const Event& event : trace.events) {
      if (event.allocate) {
        live[event.slot] = pool.allocate(event.size);
      } else {
        pool.deallocate(live[event.slot]);
        live[event.slot] = Allocation{};
      }
      if (measure_memory) result.peak_reserved = std::max(result.peak_reserved, pool.usage().reserved_bytes);
    }
    if (measure_memory) result.at_end = pool.usage();
    for (std::size_t slot = 0; slot < trace.slots; ++slot) {
      if (live[slot]) pool.deallocate(live[slot]);
    }
  };
  run(true);
  constexpr int kRepeats = 5;
  double best = 0.0;
  for (int i = 0; i < kRepeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    run(false);
    const double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    best = i == 0 ? ns : std::min(best, ns);
  }
  result.ns_per_op = best / static_cast<double>(trace.events.size());
  return result;
}

std::vector<std::size_t> parse_thresholds(const std::string& list) {
  std::vector<std::size_t> thresholds;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) thresholds.push_back(parse_bytes(item));
  return thresholds;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<std::size_t> thresholds = {64 * KiB, 256 * KiB, MiB, 4 * MiB};
    std::vector<std::filesystem::path> paths;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--thresholds" && i + 1 < argc) {
        thresholds = parse_thresholds(argv[++i]);
      } else {
        paths.emplace_back(arg);
      }
    }
    if (paths.empty()) {
      for (const auto& entry : std::filesystem::directory_iterator(UNIMEM_SHARED_TRACES_DIR)) {
        if (entry.path().extension() == ".csv") paths.push_back(entry.path());
      }
      std::sort(paths.begin(), paths.end());
    }
    std::printf("| trace | threshold | peak live | peak reserved | ratio | ns/op | upstream allocations |\n");
    std::printf("|---|---|---|---|---|---|---|\n");
    for (const auto& path : paths) {
      const Trace trace = load(path);
      for (const std::size_t threshold : thresholds) {
        const Result r = replay(trace, threshold);
        std::printf("| %s | %s | %zu | %zu | %.4f | %.0f | %llu |\n", trace.name.c_str(),
                    format_bytes(threshold).c_str(), trace.peak_live, r.peak_reserved,
                    static_cast<double>(r.peak_reserved) / static_cast<double>(trace.peak_live), r.ns_per_op,
                    static_cast<unsigned long long>(r.at_end.upstream_allocations));
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unimem_trace_replay: %s\n", e.what());
    return 1;
  }
  return 0;
}
