#include "unimem/overlap_bench.hpp"

#include <gtest/gtest.h>

#include <string>

#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem::cli {
namespace {

TEST(BenchOverlapModel, TakesTheLargerBoundAndSaysWhich) {
  OverlapBenchRow row;
  row.produce = 2.0;
  row.download = 3.0;
  row.handoff = 0.5;  // device work: 2 + 3 - 2 * 0.5 = 4
  row.consume = 3.0;
  row.issue = 0.5;  // host work: 3.5
  row.synchronous = 8.75;
  row.double_buffered = 7.0;
  row.memory_concurrency = 1.4;
  EXPECT_DOUBLE_EQ(row.device_work(), 4.0);
  EXPECT_DOUBLE_EQ(row.host_work(), 3.5);
  EXPECT_DOUBLE_EQ(row.separate_engines_bound(), 4.0);
  EXPECT_DOUBLE_EQ(row.shared_memory_bound(), 5.0);
  EXPECT_DOUBLE_EQ(row.model(), 5.0);
  EXPECT_STREQ(row.binding_bound(), "memory");
  EXPECT_DOUBLE_EQ(row.model_speedup(), 1.75);
  EXPECT_DOUBLE_EQ(row.measured_speedup(), 1.25);

  row.memory_concurrency = 2.0;  // two full streams: the device's work against the host's binds
  EXPECT_DOUBLE_EQ(row.model(), 4.0);
  EXPECT_STREQ(row.binding_bound(), "engines");

  row.issue = 4.0;  // a backend that runs its stream on the calling thread: the host does everything
  EXPECT_DOUBLE_EQ(row.model(), 7.0);
  EXPECT_DOUBLE_EQ(row.model_speedup(), 1.25);

  row.handoff = 10.0;  // hand-offs measured longer than the work: no negative device work
  EXPECT_DOUBLE_EQ(row.device_work(), 0.0);
}

TEST(BenchOverlap, OneRowPerDeviceAndSizeWithEveryPartTimed) {
  const DeviceSelection selection({"host", "sim:64MiB:backed"});
  const OverlapBenchOptions options{.sizes = {64 * KiB, 256 * KiB}, .steps = 4, .repeat = 2};
  const auto rows = bench_overlap(selection.devices(), options);
  ASSERT_EQ(rows.size(), 4U);
  EXPECT_EQ(rows[0].device, "host:0");
  EXPECT_EQ(rows[2].device, "sim:0");
  EXPECT_EQ(rows[1].size, 256 * KiB);
  for (const auto& row : rows) {
    for (const double seconds :
         {row.produce, row.download, row.consume, row.synchronous, row.double_buffered}) {
      EXPECT_GT(seconds, 0.0) << row.device << " " << row.size;
    }
    EXPECT_GT(row.memory_concurrency, 0.0);
    EXPECT_GE(row.model(), row.separate_engines_bound());
    EXPECT_GE(row.model(), row.shared_memory_bound());
  }

  const nlohmann::json doc =
      nlohmann::json::parse(overlap_bench_json(selection.devices(), options, rows).dump());
  EXPECT_EQ(doc["benchmark"], "overlap");
  EXPECT_EQ(doc["steps"], 4);
  ASSERT_EQ(doc["results"].size(), 4U);
  for (const auto& result : doc["results"]) {
    EXPECT_DOUBLE_EQ(result["model_speedup"].get<double>(),
                     result["synchronous_seconds"].get<double>() / result["model_seconds"].get<double>());
    EXPECT_DOUBLE_EQ(result["host_work_seconds"].get<double>(),
                     result["issue_seconds"].get<double>() + result["consume_seconds"].get<double>());
    EXPECT_DOUBLE_EQ(
        result["measured_speedup"].get<double>(),
        result["synchronous_seconds"].get<double>() / result["double_buffered_seconds"].get<double>());
    const std::string bound = result["binding_bound"];
    EXPECT_TRUE(bound == "memory" || bound == "engines") << bound;
  }
  const std::string table = overlap_bench_table(rows);
  for (const char* text :
       {"host:0", "sim:0", "256.00 KiB", "produce", "download", "consume", "hand-off", "issue", "model"}) {
    EXPECT_NE(table.find(text), std::string::npos) << text << "\n" << table;
  }
}

TEST(BenchOverlap, OpenCLDevicesAreMeasured) {
  const DeviceSelection all({});
  const Backend* opencl = all.registry().find(BackendKind::OpenCL);
  if (opencl == nullptr || opencl->device_count() == 0) GTEST_SKIP() << "no OpenCL device";
  const DeviceSelection selection({"opencl:0"});
  const auto rows = bench_overlap(selection.devices(), {.sizes = {1 * MiB}, .steps = 4, .repeat = 1});
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].device, "opencl:0");
  EXPECT_GT(rows[0].double_buffered, 0.0);
  EXPECT_GT(rows[0].measured_speedup(), 0.0);
}

TEST(BenchOverlap, RejectsBadOptionsNamingTheValue) {
  const DeviceSelection selection({"host"});
  const auto message = [&](const OverlapBenchOptions& options) {
    try {
      (void)bench_overlap(selection.devices(), options);
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string("no InvalidArgument");
  };
  EXPECT_NE(message({.sizes = {0}}).find("a size of 0 bytes"), std::string::npos);
  EXPECT_NE(message({.sizes = {12}}).find("a size of 12 bytes"), std::string::npos);
  EXPECT_NE(message({.sizes = {KiB}, .steps = 1}).find("1 steps"), std::string::npos);
  EXPECT_NE(message({.sizes = {KiB}, .repeat = 0}).find("repeat count 0"), std::string::npos);
}

TEST(BenchOverlap, AnUnbackedDeviceCannotBeMeasured) {
  const DeviceSelection selection({"sim:1GiB"});
  EXPECT_THROW((void)bench_overlap(selection.devices(), {.sizes = {4 * KiB}, .steps = 2, .repeat = 1}),
               NotSupported);
}

}  // namespace
}  // namespace unimem::cli
