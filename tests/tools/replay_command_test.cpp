#include "unimem/replay_command.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tools/trace_test_support.hpp"
#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/resource/logging_adaptor.hpp"
#include "unimem/resource/resource_spec.hpp"

namespace unimem::cli {
namespace {

Trace parse(const std::string& body) {
  std::istringstream in("Thread,Time,Action,Pointer,Size,Stream\n" + body);
  return parse_trace(in, "inline.csv");
}

ReplayOptions repeated(int repeat) {
  ReplayOptions options;
  options.repeat = repeat;
  return options;
}

ReplayResult replay(const Trace& trace, std::string_view spec, const std::string& device = "sim:80GiB",
                    int repeat = 1, int streams = 1) {
  const DeviceSelection selection({device});
  ReplayOptions options = repeated(repeat);
  options.streams = streams;
  return replay_trace(trace, spec, *selection.front().backend, selection.front().index, MemoryKind::Device,
                      options);
}

// Allocations of many sizes, small and large, each freed a few allocations later, a few left live.
Trace interleaved_trace() {
  std::string body;
  const std::vector<std::size_t> sizes = {256, 4096, 100000, 1 << 20, 3 << 20, 24 << 20, 777, 65536};
  for (std::size_t i = 0; i < 200; ++i) {
    body += fmt::format("0,t,allocate,{:#x},{},0x0\n", 0x1000 + i, sizes[i % sizes.size()] + i);
    if (i >= 3 && i % 4 != 0) {
      const std::size_t old = i - 3;
      body += fmt::format("0,t,free,{:#x},{},0x0\n", 0x1000 + old, sizes[old % sizes.size()] + old);
    }
  }
  return parse(body);
}

ReplayResult hand_made(std::string resource, std::size_t live, std::size_t reserved, std::size_t events = 100,
                       std::uint64_t maps = 0, std::uint64_t unmaps = 0) {
  ReplayResult r;
  r.resource = std::move(resource);
  r.events = events;
  r.peak_live_bytes = live;
  r.peak_reserved_bytes = reserved;
  r.fragmentation_ratio = static_cast<double>(reserved) / static_cast<double>(live);
  r.map_calls = maps;
  r.unmap_calls = unmaps;
  return r;
}

TraceReplay traced(std::string source, std::vector<ReplayResult> results) {
  TraceReplay replay;
  replay.trace.source = std::move(source);
  replay.results = std::move(results);
  return replay;
}

// A fresh directory under the system's temporary one, removed with the object.
class TemporaryDirectory {
 public:
  explicit TemporaryDirectory(const std::string& name)
      : path_(std::filesystem::temp_directory_path() /
              (name + "-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
               std::to_string(reinterpret_cast<std::uintptr_t>(this)))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TemporaryDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;
  TemporaryDirectory(TemporaryDirectory&&) = delete;
  TemporaryDirectory& operator=(TemporaryDirectory&&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  void write(const std::string& name, const std::string& text) const { std::ofstream(path_ / name) << text; }

 private:
  std::filesystem::path path_;
};

TEST(Replay, UpstreamReplayOfTheDemoTraceIsExact) {
  const test::TraceFacts facts = test::read_trace_facts(test::demo_trace_path());
  const ReplayResult r = replay(load_trace(test::demo_trace_path()), "upstream");
  EXPECT_EQ(r.events, facts.events);
  EXPECT_EQ(r.allocations, facts.allocations);
  EXPECT_EQ(r.frees, facts.frees);
  EXPECT_EQ(r.peak_live_bytes, facts.peak_live_bytes);
  // Every allocation and every free goes to the backend.
  EXPECT_EQ(r.upstream_allocations, facts.allocations);
  EXPECT_EQ(r.upstream_deallocations, facts.frees);
  EXPECT_EQ(r.failed_allocations, 0U);
  EXPECT_EQ(r.skipped_frees, 0U);
  EXPECT_GE(r.peak_reserved_bytes, r.peak_live_bytes);
  EXPECT_DOUBLE_EQ(r.fragmentation_ratio,
                   static_cast<double>(r.peak_reserved_bytes) / static_cast<double>(r.peak_live_bytes));
  EXPECT_EQ(r.largest_free_range_at_peak_live, 0U) << "the upstream caches nothing";
  EXPECT_GT(r.ns_per_op, 0.0);
  EXPECT_GT(r.ns_per_op_with_lookup, 0.0);
}

TEST(Replay, DefaultStackReplaysTheDemoTraceWithFewerUpstreamCalls) {
  const Trace trace = load_trace(test::demo_trace_path());
  const ReplayResult r = replay(trace, kDefaultResourceSpec);
  EXPECT_EQ(r.peak_live_bytes, trace.peak_live_bytes);
  EXPECT_GE(r.peak_reserved_bytes, r.peak_live_bytes);
  EXPECT_GE(r.reserved_bytes_at_peak_live, r.peak_live_bytes);
  EXPECT_LE(r.reserved_bytes_at_peak_live, r.peak_reserved_bytes);
  EXPECT_LE(r.largest_free_range_at_peak_live, r.reserved_bytes_at_peak_live - trace.peak_live_bytes);
  EXPECT_LT(r.upstream_allocations, trace.allocations) << "a pool reuses memory";
  EXPECT_EQ(r.failed_allocations, 0U);
}

TEST(Replay, CountsFailedAllocationsAndSkipsTheirFrees) {
  const Trace trace = parse(
      "0,t,allocate,0x1000,629145600,0x0\n"  // 600 MiB
      "0,t,allocate,0x2000,629145600,0x0\n"  // does not fit in 1 GiB
      "0,t,free,0x2000,629145600,0x0\n"
      "0,t,free,0x1000,629145600,0x0\n"
      "0,t,allocate,0x3000,629145600,0x0\n"  // fits again
      "0,t,free,0x3000,629145600,0x0\n");
  const ReplayResult r = replay(trace, "upstream", "sim:1GiB");
  EXPECT_EQ(r.failed_allocations, 1U);
  EXPECT_EQ(r.skipped_frees, 1U);
  EXPECT_EQ(r.upstream_allocations, 2U);
  EXPECT_EQ(r.upstream_deallocations, 2U);
  EXPECT_EQ(r.peak_live_bytes, 2 * 629145600U) << "peak live is the trace's own";
  EXPECT_EQ(r.peak_reserved_bytes, 629145600U);
}

TEST(Replay, TraceLeftLiveAtTheEndIsReleasedWithoutMisuse) {
  const Trace trace = parse("0,t,allocate,0x10,4096,0x0\n0,t,allocate,0x20,8192,0x0\n");
  const ReplayResult r = replay(trace, "upstream", "sim:1GiB", 2);
  EXPECT_EQ(r.upstream_allocations, 2U);
  EXPECT_EQ(r.upstream_deallocations, 0U) << "counted at the end of the trace, before the cleanup";
}

TEST(Replay, RejectsABadRepeatCount) {
  const Trace trace = parse("0,t,allocate,0x10,64,0x0\n");
  EXPECT_THROW((void)replay(trace, "upstream", "sim:1GiB", 0), InvalidArgument);
}

TEST(Replay, StacksReplayInOrderAndBadSpecsFailFirst) {
  const Trace trace = load_trace(test::demo_trace_path());
  const DeviceSelection selection({"sim:80GiB"});
  const auto results = replay_stacks(trace, selection.front(), {"upstream", "coalescing"}, repeated(1));
  ASSERT_EQ(results.size(), 2U);
  EXPECT_EQ(results[0].resource, "upstream");
  EXPECT_EQ(results[1].resource, "coalescing");
  EXPECT_EQ(results[0].peak_live_bytes, results[1].peak_live_bytes);
  try {
    (void)replay_stacks(trace, selection.front(), {"upstream", "coalescing:grow=2"}, repeated(1));
    ADD_FAILURE() << "a bad spec was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("coalescing:grow=2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'grow'"), std::string::npos) << e.what();
  }
}

TEST(Replay, JsonSchemaKeysArePresent) {
  const Trace trace = load_trace(test::demo_trace_path());
  const DeviceSelection selection({"sim:80GiB"});
  const auto results = replay_stacks(trace, selection.front(), {"upstream"}, repeated(1));
  const nlohmann::json doc =
      nlohmann::json::parse(replay_json(trace, selection.front(), repeated(1), results).dump());
  for (const char* key : {"unimem_version", "trace", "device", "repeat", "streams", "results"}) {
    EXPECT_TRUE(doc.contains(key)) << key;
  }
  for (const char* key : {"path", "events", "allocations", "frees", "recorded_failures", "skipped_lines",
                          "peak_live_bytes", "live_at_end", "live_bytes_at_end"}) {
    EXPECT_TRUE(doc["trace"].contains(key)) << key;
  }
  for (const char* key : {"spec", "id", "name", "total_bytes", "memory_kind"}) {
    EXPECT_TRUE(doc["device"].contains(key)) << key;
  }
  ASSERT_EQ(doc["results"].size(), 1U);
  const auto& result = doc["results"][0];
  const std::vector<std::string> keys = {"resource",
                                         "events",
                                         "allocations",
                                         "frees",
                                         "peak_live_bytes",
                                         "peak_reserved_bytes",
                                         "fragmentation_ratio",
                                         "reserved_bytes_at_peak_live",
                                         "largest_free_range_at_peak_live",
                                         "upstream_allocations",
                                         "upstream_deallocations",
                                         "map_calls",
                                         "unmap_calls",
                                         "failed_allocations",
                                         "skipped_frees",
                                         "ns_per_allocate",
                                         "ns_per_free",
                                         "ns_per_op",
                                         "ns_per_op_with_lookup"};
  for (const auto& key : keys) EXPECT_TRUE(result.contains(key)) << key;
  EXPECT_EQ(result.size(), keys.size()) << "a key was added without updating docs/cli.md and this test";
  EXPECT_EQ(doc["trace"]["peak_live_bytes"], trace.peak_live_bytes);
  EXPECT_EQ(doc["device"]["id"], "sim:0");
  EXPECT_EQ(doc["streams"], 1);
  EXPECT_EQ(result["upstream_allocations"], trace.allocations);
}

TEST(Replay, TableShowsEveryStackSideBySide) {
  const Trace trace = parse("0,t,allocate,0x10,4096,0x0\n0,t,free,0x10,4096,0x0\n");
  const DeviceSelection selection({"sim:1GiB"});
  const auto results = replay_stacks(trace, selection.front(), {"upstream", "size-class"}, repeated(1));
  const std::string table = replay_table(trace, selection.front(), repeated(1), results);
  for (const char* text :
       {"inline.csv", "upstream", "size-class", "fragmentation", "ns per op with lookup", "sim:0"}) {
    EXPECT_NE(table.find(text), std::string::npos) << text << "\n" << table;
  }
}

TEST(Replay, ALoggingAdaptorLogReplays) {
  SimulatedBackend backend({SimulatedDeviceSpec::parse("1GiB")});
  std::ostringstream log;
  std::size_t live = 0;
  std::size_t peak = 0;
  {
    BackendResource upstream(backend, 0, MemoryKind::Device);
    LoggingAdaptor logging(upstream, log);
    std::vector<Allocation> allocations;
    for (std::size_t i = 1; i <= 8; ++i) {
      allocations.push_back(logging.allocate(i * KiB));
      live += i * KiB;
      peak = std::max(peak, live);
    }
    for (std::size_t i = 0; i < allocations.size(); i += 2) {
      live -= allocations[i].size;
      logging.deallocate(allocations[i]);
    }
    allocations.push_back(logging.allocate(MiB));
    live += MiB;
    peak = std::max(peak, live);
    for (std::size_t i = 1; i < allocations.size(); i += 2) logging.deallocate(allocations[i]);
    logging.deallocate(allocations.back());
    logging.flush();
  }
  std::istringstream in(log.str());
  const Trace trace = parse_trace(in, "logging-adaptor");
  EXPECT_EQ(trace.allocations, 9U);
  EXPECT_EQ(trace.frees, 9U);
  EXPECT_EQ(trace.peak_live_bytes, peak);
  const ReplayResult r = replay(trace, "upstream", "sim:1GiB");
  EXPECT_EQ(r.upstream_allocations, 9U);
}

TEST(Replay, SharedMediumTraceReportsItsPeak) {
  const std::filesystem::path path = test::shared_traces_dir() / "transformer_medium_512_train.csv";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no recorded trace at " << path;
  const test::TraceFacts facts = test::read_trace_facts(path);
  const ReplayResult r = replay(load_trace(path), kDefaultResourceSpec);
  EXPECT_EQ(r.peak_live_bytes, facts.peak_live_bytes);
  EXPECT_EQ(r.failed_allocations, 0U);
  EXPECT_GE(r.peak_reserved_bytes, facts.peak_live_bytes);
}

TEST(ReplaySummary, WorstMeanMapCallsAndTargetPerStack) {
  constexpr std::size_t kGiB = std::size_t{1} << 30U;
  const std::vector<TraceReplay> replays = {
      traced("dir/a.csv", {hand_made("hybrid", kGiB, kGiB + kGiB / 50, 1000, 10, 5),  // 1.02, 1.5 per 100
                           hand_made("upstream", kGiB, kGiB)}),
      traced("dir/b.csv", {hand_made("hybrid", kGiB, kGiB + kGiB / 10, 200, 4, 4),  // 1.10, 4 per 100
                           hand_made("upstream", kGiB, kGiB)}),
      traced("dir/c.csv", {hand_made("hybrid", kGiB, kGiB, 50),  // 1.00
                           hand_made("upstream", kGiB, kGiB)}),
  };
  const std::vector<StackSummary> summaries = summarize_replays(replays);
  ASSERT_EQ(summaries.size(), 2U);
  const StackSummary& hybrid = summaries[0];
  EXPECT_EQ(hybrid.resource, "hybrid");
  EXPECT_DOUBLE_EQ(hybrid.worst_fragmentation_ratio, replays[1].results[0].fragmentation_ratio);
  EXPECT_EQ(hybrid.worst_trace, "dir/b.csv");
  EXPECT_DOUBLE_EQ(
      hybrid.mean_fragmentation_ratio,
      (replays[0].results[0].fragmentation_ratio + replays[1].results[0].fragmentation_ratio + 1.0) / 3.0);
  EXPECT_DOUBLE_EQ(hybrid.max_map_calls_per_100_ops, 4.0);
  EXPECT_FALSE(hybrid.within_target) << "b.csv holds 10% over its peak";
  const StackSummary& upstream = summaries[1];
  EXPECT_EQ(upstream.resource, "upstream");
  EXPECT_DOUBLE_EQ(upstream.worst_fragmentation_ratio, 1.0);
  EXPECT_EQ(upstream.worst_trace, "dir/a.csv") << "the first of equals";
  EXPECT_DOUBLE_EQ(upstream.mean_fragmentation_ratio, 1.0);
  EXPECT_DOUBLE_EQ(upstream.max_map_calls_per_100_ops, 0.0);
  EXPECT_TRUE(upstream.within_target);
}

TEST(ReplaySummary, TargetIsFivePercentOrEightMiBWhicheverIsMore) {
  constexpr std::size_t kMiB = std::size_t{1} << 20U;
  // A small peak: 8 MiB of slack is more than 5%.
  EXPECT_TRUE(within_target(hand_made("s", kMiB, 9 * kMiB)));
  EXPECT_FALSE(within_target(hand_made("s", kMiB, 9 * kMiB + 1)));
  // A large peak: 5% is more than 8 MiB.
  EXPECT_TRUE(within_target(hand_made("s", 1000 * kMiB, 1050 * kMiB)));
  EXPECT_FALSE(within_target(hand_made("s", 1000 * kMiB, 1051 * kMiB)));
  // An empty trace reserves nothing.
  ReplayResult empty;
  EXPECT_TRUE(within_target(empty));
}

TEST(ReplaySummary, RejectsMismatchedOrRepeatedStacksAndNoTraces) {
  EXPECT_THROW((void)summarize_replays({}), InvalidArgument);
  const std::vector<TraceReplay> mismatched = {traced("a.csv", {hand_made("hybrid", 1, 1)}),
                                               traced("b.csv", {hand_made("upstream", 1, 1)})};
  try {
    (void)summarize_replays(mismatched);
    ADD_FAILURE() << "traces replayed against different stacks were summarized";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("b.csv"), std::string::npos) << e.what();
  }
  const std::vector<TraceReplay> repeated_stack = {
      traced("a.csv", {hand_made("hybrid", 1, 1), hand_made("hybrid", 1, 1)})};
  EXPECT_THROW((void)summarize_replays(repeated_stack), InvalidArgument);
}

TEST(ReplayStreams, RejectsAStreamCountOutOfRange) {
  const Trace trace = parse("0,t,allocate,0x10,64,0x0\n");
  for (const int streams : {0, -1, kMaxReplayStreams + 1}) {
    try {
      (void)replay(trace, "upstream", "sim:1GiB", 1, streams);
      ADD_FAILURE() << "stream count " << streams << " was accepted";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(std::to_string(streams)), std::string::npos) << e.what();
    }
  }
}

TEST(ReplayStreams, TwoStreamsHoldWhatOneDoesAndFreeEverything) {
  const Trace trace = interleaved_trace();
  ASSERT_GT(trace.live_at_end, 0U) << "the trace should leave some allocations for the cleanup";
  for (const char* spec : {"size-class", "coalescing"}) {
    SCOPED_TRACE(spec);
    const ReplayResult one = replay(trace, spec, "sim:80GiB", 1, 1);
    const ReplayResult two = replay(trace, spec, "sim:80GiB", 1, 2);
    EXPECT_EQ(two.peak_live_bytes, one.peak_live_bytes);
    // Where a range lands may depend on the stream it was freed on, so what is reserved may differ a little.
    EXPECT_LE(two.peak_reserved_bytes, one.peak_reserved_bytes + one.peak_reserved_bytes / 10);
    EXPECT_GE(two.peak_reserved_bytes + two.peak_reserved_bytes / 10, one.peak_reserved_bytes);
    EXPECT_EQ(two.failed_allocations, 0U);
    EXPECT_EQ(two.skipped_frees, 0U);
    EXPECT_GE(two.peak_reserved_bytes, two.peak_live_bytes);

    // Bytes in use after every event, on one stream and on two: the same, and nothing once the cleanup ran.
    SimulatedBackend backend({SimulatedDeviceSpec::parse("80GiB")});
    const auto in_use_after_each_event = [&](std::span<Stream* const> streams) {
      std::vector<std::size_t> in_use;
      const ResourceStack stack =
          make_resource_stack(parse_resource_spec(spec), backend, 0, MemoryKind::Device);
      const std::size_t failed = replay_observed(
          trace, stack.top(),
          [&](std::size_t /*event*/, bool /*failed*/, const MemoryResource& resource) {
            in_use.push_back(resource.usage().in_use_bytes);
          },
          streams);
      EXPECT_EQ(failed, 0U);
      EXPECT_EQ(stack.top().usage().in_use_bytes, 0U) << "the cleanup freed everything";
      return in_use;
    };
    const std::unique_ptr<Stream> first = backend.create_stream(0);
    const std::unique_ptr<Stream> second = backend.create_stream(0);
    const std::vector<Stream*> streams = {first.get(), second.get()};
    const std::vector<std::size_t> host_order = in_use_after_each_event({});
    const std::vector<std::size_t> on_two = in_use_after_each_event(streams);
    ASSERT_EQ(host_order.size(), trace.events.size());
    EXPECT_EQ(on_two, host_order);
    EXPECT_GT(*std::max_element(on_two.begin(), on_two.end()), 0U);
  }
}

TEST(ReplayTraces, ADirectoryIsEveryCsvInItSortedByName) {
  const TemporaryDirectory directory("unimem-replay-dir");
  const std::string header = "Thread,Time,Action,Pointer,Size,Stream\n";
  directory.write("b.csv", header + "0,t,allocate,0x10,8192,0x0\n0,t,free,0x10,8192,0x0\n");
  directory.write("a.csv", header + "0,t,allocate,0x10,4096,0x0\n0,t,free,0x10,4096,0x0\n");
  directory.write("notes.txt", "not a trace\n");
  const std::vector<std::filesystem::path> paths = expand_trace_paths({directory.path().string()});
  ASSERT_EQ(paths.size(), 2U);
  EXPECT_EQ(paths[0].filename(), "a.csv");
  EXPECT_EQ(paths[1].filename(), "b.csv");

  const DeviceSelection selection({"sim:1GiB"});
  ReplayOptions options = repeated(1);
  options.streams = 2;
  const auto replays = replay_traces(paths, selection.front(), {"upstream", "hybrid"}, options);
  ASSERT_EQ(replays.size(), 2U);
  EXPECT_EQ(replays[0].trace.peak_live_bytes, 4096U);
  EXPECT_EQ(replays[1].trace.peak_live_bytes, 8192U);
  ASSERT_EQ(replays[1].results.size(), 2U);
  EXPECT_EQ(replays[1].results[0].upstream_allocations, 1U);

  const nlohmann::json doc =
      nlohmann::json::parse(replay_document(replays, selection.front(), options).dump());
  EXPECT_EQ(doc["streams"], 2);
  EXPECT_EQ(doc["repeat"], 1);
  EXPECT_EQ(doc["device"]["id"], "sim:0");
  ASSERT_EQ(doc["traces"].size(), 2U);
  EXPECT_EQ(doc["traces"][1]["trace"]["peak_live_bytes"], 8192U);
  EXPECT_EQ(doc["traces"][0]["results"].size(), 2U);
  ASSERT_EQ(doc["summary"].size(), 2U);
  for (const char* stack : {"upstream", "hybrid"}) {
    for (const char* key : {"worst_fragmentation_ratio", "worst_trace", "mean_fragmentation_ratio",
                            "max_map_calls_per_100_ops", "within_target"}) {
      EXPECT_TRUE(doc["summary"][stack].contains(key)) << stack << " " << key;
    }
  }
  EXPECT_EQ(doc["summary"]["upstream"]["within_target"], true);

  const std::string table = replay_report(replays, selection.front(), options);
  for (const char* text : {"a.csv", "b.csv", "summary", "worst", "within target", "streams: 2"}) {
    EXPECT_NE(table.find(text), std::string::npos) << text << "\n" << table;
  }
  EXPECT_LT(table.find("summary"), table.rfind("worst"));
}

TEST(ReplayTraces, ADirectoryWithoutTracesAndRepeatedStacksAreRejected) {
  const TemporaryDirectory directory("unimem-replay-empty");
  directory.write("readme.txt", "nothing\n");
  try {
    (void)expand_trace_paths({directory.path().string()});
    ADD_FAILURE() << "a directory without traces was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(directory.path().filename().string()), std::string::npos)
        << e.what();
  }
  EXPECT_THROW((void)expand_trace_paths({}), InvalidArgument);
  const std::vector<std::filesystem::path> two = {test::demo_trace_path(), test::demo_trace_path()};
  const DeviceSelection selection({"sim:80GiB"});
  EXPECT_THROW((void)replay_traces(two, selection.front(), {"hybrid", "hybrid"}, repeated(1)),
               InvalidArgument);
}

TEST(ReplayTraces, OneTraceGivesTheSingleTraceDocumentAndTable) {
  const Trace trace = parse("0,t,allocate,0x10,4096,0x0\n0,t,free,0x10,4096,0x0\n");
  const DeviceSelection selection({"sim:1GiB"});
  const auto results = replay_stacks(trace, selection.front(), {"upstream"}, repeated(1));
  const std::vector<TraceReplay> replays = {{trace, results}};
  EXPECT_EQ(replay_document(replays, selection.front(), repeated(1)),
            replay_json(trace, selection.front(), repeated(1), results));
  EXPECT_EQ(replay_report(replays, selection.front(), repeated(1)),
            replay_table(trace, selection.front(), repeated(1), results));
}

}  // namespace
}  // namespace unimem::cli
