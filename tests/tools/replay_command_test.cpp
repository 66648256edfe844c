#include "unimem/replay_command.hpp"

#include <gtest/gtest.h>

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
                    int repeat = 1) {
  const DeviceSelection selection({device});
  return replay_trace(trace, spec, *selection.front().backend, selection.front().index, MemoryKind::Device,
                      repeated(repeat));
}

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
  const nlohmann::json doc = nlohmann::json::parse(replay_json(trace, selection.front(), 1, results).dump());
  for (const char* key : {"unimem_version", "trace", "device", "repeat", "results"}) {
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
  EXPECT_EQ(result["upstream_allocations"], trace.allocations);
}

TEST(Replay, TableShowsEveryStackSideBySide) {
  const Trace trace = parse("0,t,allocate,0x10,4096,0x0\n0,t,free,0x10,4096,0x0\n");
  const DeviceSelection selection({"sim:1GiB"});
  const auto results = replay_stacks(trace, selection.front(), {"upstream", "size-class"}, repeated(1));
  const std::string table = replay_table(trace, selection.front(), 1, results);
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

}  // namespace
}  // namespace unimem::cli
