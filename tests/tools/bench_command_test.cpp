#include "unimem/bench_command.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem::cli {
namespace {

TEST(BenchAlloc, OneRowPerResourceSizeAndThreadCount) {
  const DeviceSelection selection({"host"});
  const AllocBenchOptions options{.resources = {"upstream", "hybrid"},
                                  .sizes = {256, 64 * KiB},
                                  .threads = {1, 2},
                                  .pairs = 200,
                                  .repeat = 1};
  const auto rows = bench_alloc(selection.front(), options);
  ASSERT_EQ(rows.size(), 2U * 2U * 3U);  // threads x sizes x (malloc + 2 resources)
  std::set<std::string> resources;
  for (const auto& row : rows) {
    resources.insert(row.resource);
    EXPECT_GT(row.ns_per_pair, 0.0) << row.resource;
    EXPECT_GT(row.million_pairs_per_second, 0.0) << row.resource;
    EXPECT_TRUE(row.threads == 1 || row.threads == 2);
    EXPECT_TRUE(row.size == 256 || row.size == 64 * KiB);
  }
  EXPECT_EQ(resources, (std::set<std::string>{"malloc", "upstream", "hybrid"}));

  const nlohmann::json doc = nlohmann::json::parse(alloc_bench_json(selection.front(), options, rows).dump());
  EXPECT_EQ(doc["benchmark"], "alloc");
  EXPECT_EQ(doc["pairs_per_thread"], 200);
  ASSERT_EQ(doc["results"].size(), rows.size());
  for (const char* key : {"resource", "size", "threads", "ns_per_pair", "million_pairs_per_second"}) {
    EXPECT_TRUE(doc["results"][0].contains(key)) << key;
  }
  const std::string table = alloc_bench_table(selection.front(), options, rows);
  for (const char* text : {"malloc", "upstream", "hybrid", "64.00 KiB", "host:0"}) {
    EXPECT_NE(table.find(text), std::string::npos) << text << "\n" << table;
  }
}

TEST(BenchAlloc, RejectsBadOptions) {
  const DeviceSelection selection({"host"});
  AllocBenchOptions options;
  options.pairs = 1;
  options.repeat = 1;
  options.resources = {"bogus"};
  EXPECT_THROW((void)bench_alloc(selection.front(), options), InvalidArgument);
  options.resources = {"upstream"};
  options.sizes = {0};
  EXPECT_THROW((void)bench_alloc(selection.front(), options), InvalidArgument);
  options.sizes = {256};
  options.threads = {0};
  EXPECT_THROW((void)bench_alloc(selection.front(), options), InvalidArgument);
  options.threads = {1};
  options.pairs = 0;
  EXPECT_THROW((void)bench_alloc(selection.front(), options), InvalidArgument);
  options.pairs = 1;
  options.repeat = 0;
  EXPECT_THROW((void)bench_alloc(selection.front(), options), InvalidArgument);
  options.repeat = 1;
  EXPECT_EQ(bench_alloc(selection.front(), options).size(), 2U) << "the same options, all valid";
}

TEST(BenchTransfer, MeasuresEveryDirectionTheDeviceHas) {
  const DeviceSelection selection({"host", "sim:64MiB:backed"});
  const TransferBenchOptions options{.sizes = {4 * KiB, 256 * KiB}, .repeat = 3};
  const auto rows = bench_transfer(selection.devices(), options);
  std::set<std::string> host_directions;
  for (const auto& row : rows) {
    EXPECT_GT(row.gib_per_second.worst, 0.0) << row.device << " " << row.direction;
    EXPECT_LE(row.gib_per_second.worst, row.gib_per_second.median);
    EXPECT_LE(row.gib_per_second.median, row.gib_per_second.best);
    EXPECT_GT(row.memcpy_gib_per_second.worst, 0.0);
    EXPECT_LE(row.memcpy_gib_per_second.median, row.memcpy_gib_per_second.best);
    EXPECT_NEAR(row.gib_per_second.best * row.seconds,
                static_cast<double>(row.size) / static_cast<double>(GiB), 1e-9);
    if (row.device == "host:0") host_directions.insert(row.direction);
  }
  // Neither device has pinned memory or a second device of its backend.
  EXPECT_EQ(host_directions, (std::set<std::string>{"h2d-pageable", "d2h-pageable", "d2d"}));
  EXPECT_EQ(rows.size(), 2U * 2U * 3U);

  const nlohmann::json doc =
      nlohmann::json::parse(transfer_bench_json(selection.devices(), options, rows).dump());
  EXPECT_EQ(doc["benchmark"], "transfer");
  ASSERT_EQ(doc["devices"].size(), 2U);
  for (const char* key : {"device", "direction", "size", "seconds", "gib_per_second", "median_gib_per_second",
                          "worst_gib_per_second", "memcpy_gib_per_second", "memcpy_median_gib_per_second",
                          "fraction_of_memcpy", "median_fraction_of_memcpy"}) {
    EXPECT_TRUE(doc["results"][0].contains(key)) << key;
  }
  for (const auto& result : doc["results"]) {
    EXPECT_DOUBLE_EQ(
        result["median_fraction_of_memcpy"].get<double>(),
        result["median_gib_per_second"].get<double>() / result["memcpy_median_gib_per_second"].get<double>());
    EXPECT_LE(result["worst_gib_per_second"].get<double>(), result["gib_per_second"].get<double>());
  }
  const std::string table = transfer_bench_table(selection.devices(), rows);
  for (const char* text : {"host:0", "sim:0", "h2d-pageable", "memcpy", "256.00 KiB"}) {
    EXPECT_NE(table.find(text), std::string::npos) << text << "\n" << table;
  }
}

TEST(BenchTransfer, OpenCLDevicesHavePinnedAndPeerCopies) {
  const DeviceSelection all({});
  const Backend* opencl = all.registry().find(BackendKind::OpenCL);
  if (opencl == nullptr || opencl->device_count() < 2) GTEST_SKIP() << "needs two OpenCL devices";
  const DeviceSelection selection({"opencl:0"});
  const auto rows = bench_transfer(selection.devices(), {.sizes = {64 * KiB}, .repeat = 1});
  std::set<std::string> directions;
  for (const auto& row : rows) directions.insert(row.direction);
  EXPECT_EQ(directions, (std::set<std::string>{"h2d-pageable", "h2d-pinned", "d2h-pageable", "d2h-pinned",
                                               "d2d", "peer", "h2d-staged", "h2d-staged-plain", "d2h-staged",
                                               "peer-staged", "peer-staged-plain"}));
}

TEST(BenchTransfer, AnUnbackedDeviceCannotBeMeasured) {
  const DeviceSelection selection({"sim:1GiB"});
  EXPECT_THROW((void)bench_transfer(selection.devices(), {.sizes = {4 * KiB}, .repeat = 1}), NotSupported);
}

}  // namespace
}  // namespace unimem::cli
