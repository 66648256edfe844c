#include "unimem/resource/logging_adaptor.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/backend_resource.hpp"

namespace unimem {
namespace {

struct LogLine {
  std::uint64_t thread = 0;
  std::string time;
  std::string action;
  std::uint64_t pointer = 0;
  std::uint64_t size = 0;
  std::uint64_t stream = 0;
};

// A small reader of the CSV, independent of the adaptor's writer: fields split on commas, hex with 0x.
std::vector<LogLine> parse_log(const std::string& text, std::string* header = nullptr) {
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  if (header != nullptr) *header = line;
  std::vector<LogLine> lines;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::istringstream row(line);
    std::string field;
    while (std::getline(row, field, ',')) fields.push_back(field);
    EXPECT_EQ(fields.size(), 6U) << line;
    if (fields.size() != 6) continue;
    EXPECT_EQ(fields[3].substr(0, 2), "0x") << line;
    EXPECT_EQ(fields[5].substr(0, 2), "0x") << line;
    lines.push_back(LogLine{std::stoull(fields[0]), fields[1], fields[2], std::stoull(fields[3], nullptr, 16),
                            std::stoull(fields[4]), std::stoull(fields[5], nullptr, 16)});
  }
  return lines;
}

std::uint64_t address_of(const Allocation& a) {
  return reinterpret_cast<std::uintptr_t>(a.native_plus_offset());
}
std::uint64_t address_of(const Stream* s) {
  return reinterpret_cast<std::uintptr_t>(s);
}

const std::regex kTimeOfDay(R"(\d\d:\d\d:\d\d\.\d{6})");

TEST(LoggingAdaptor, LogParsesBackToTheOperations) {
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = MiB, .backed = false}});
  BackendResource upstream(sim, 0, MemoryKind::Device);
  const auto stream = sim.create_stream(0);
  std::ostringstream out;
  LogLine expected[5];
  {
    LoggingAdaptor logging(upstream, out);
    // Addresses are read while the allocations are live: a freed allocation's segment is gone.
    const Allocation a = logging.allocate(1000);
    expected[0] = {0, {}, "allocate", address_of(a), 1000, 0};
    expected[2] = {0, {}, "free", address_of(a), 1000, 0};
    const Allocation b = logging.allocate(2000, stream.get());
    expected[1] = {0, {}, "allocate", address_of(b), 2000, address_of(stream.get())};
    expected[4] = {0, {}, "free", address_of(b), 2000, address_of(stream.get())};
    expected[3] = {0, {}, "allocate failure", 0, 2 * MiB, address_of(stream.get())};
    logging.deallocate(a);
    EXPECT_THROW((void)logging.allocate(2 * MiB, stream.get()), OutOfMemory);
    logging.deallocate(b, stream.get());
  }
  std::string header;
  const auto lines = parse_log(out.str(), &header);
  EXPECT_EQ(header, LoggingAdaptor::kHeader);
  ASSERT_EQ(lines.size(), 5U) << out.str();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE("line " + std::to_string(i + 2) + ": " + lines[i].action);
    EXPECT_EQ(lines[i].thread, expected[i].thread);
    EXPECT_TRUE(std::regex_match(lines[i].time, kTimeOfDay)) << lines[i].time;
    EXPECT_EQ(lines[i].action, expected[i].action);
    EXPECT_EQ(lines[i].pointer, expected[i].pointer);
    EXPECT_EQ(lines[i].size, expected[i].size);
    EXPECT_EQ(lines[i].stream, expected[i].stream);
  }
  EXPECT_NE(lines[0].pointer, 0U);
  EXPECT_NE(lines[0].pointer, lines[1].pointer);
  EXPECT_EQ(sim.live_segment_count(), 0U);
}

TEST(LoggingAdaptor, WritesTheFormatOfTheRecordedTraces) {
  // The shared traces (../shared/traces, next to the repository) are the format's reference.
  const auto trace = std::filesystem::path(UNIMEM_SHARED_TRACES) / "alexnet_train.csv";
  std::ifstream in(trace);
  if (!in) GTEST_SKIP() << "no recorded trace at " << trace.string();
  std::string header;
  std::string first;
  std::getline(in, header);
  std::getline(in, first);
  EXPECT_EQ(header, LoggingAdaptor::kHeader);

  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = MiB, .backed = false}});
  BackendResource upstream(sim, 0, MemoryKind::Device);
  std::ostringstream out;
  {
    LoggingAdaptor logging(upstream, out);
    logging.deallocate(logging.allocate(256));
  }
  std::istringstream ours(out.str());
  std::string our_header;
  std::string our_first;
  std::getline(ours, our_header);
  std::getline(ours, our_first);
  EXPECT_EQ(our_header, header);
  // Same shape field by field: a decimal thread, a time of day, an action, 0x-hex, decimal, 0x-hex.
  const std::regex shape(R"(\d+,\d\d:\d\d:\d\d\.\d{6},(allocate|free),0x[0-9a-f]+,\d+,0x[0-9a-f]+)");
  EXPECT_TRUE(std::regex_match(first, shape)) << first;
  EXPECT_TRUE(std::regex_match(our_first, shape)) << our_first;
}

TEST(LoggingAdaptor, ThreadsGetTheirOwnNumbersAndEveryFreeFollowsItsAllocation) {
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = GiB, .backed = false}});
  BackendResource upstream(sim, 0, MemoryKind::Device);
  std::ostringstream out;
  constexpr int kThreads = 4;
  constexpr int kOps = 100;
  {
    LoggingAdaptor logging(upstream, out);
    std::vector<std::thread> threads;
    threads.reserve(kThreads);
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kOps; ++i) {
          logging.deallocate(
              logging.allocate(256 * static_cast<std::size_t>(t + 1) + static_cast<std::size_t>(i)));
        }
      });
    }
    for (auto& thread : threads) thread.join();
  }
  const auto lines = parse_log(out.str());
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(2 * kThreads * kOps));
  std::set<std::uint64_t> thread_numbers;
  std::map<std::uint64_t, std::uint64_t> live;  // pointer -> size
  for (const LogLine& line : lines) {
    thread_numbers.insert(line.thread);
    if (line.action == "allocate") {
      EXPECT_TRUE(live.emplace(line.pointer, line.size).second) << "pointer live twice";
    } else {
      ASSERT_EQ(line.action, "free");
      const auto it = live.find(line.pointer);
      ASSERT_NE(it, live.end()) << "free before its allocation";
      EXPECT_EQ(it->second, line.size);
      live.erase(it);
    }
  }
  EXPECT_TRUE(live.empty());
  EXPECT_EQ(thread_numbers, (std::set<std::uint64_t>{0, 1, 2, 3}));
}

TEST(LoggingAdaptor, LogsToAFile) {
  SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = MiB, .backed = false}});
  BackendResource upstream(sim, 0, MemoryKind::Device);
  const auto path =
      std::filesystem::temp_directory_path() /
      ("unimem_logging_adaptor_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
       std::to_string(reinterpret_cast<std::uintptr_t>(&upstream)) + ".csv");
  std::uint64_t address = 0;
  {
    LoggingAdaptor logging(upstream, path);
    const Allocation a = logging.allocate(4096);
    address = address_of(a);
    logging.flush();
    std::ifstream partial(path);
    std::stringstream text;
    text << partial.rdbuf();
    ASSERT_EQ(parse_log(text.str()).size(), 1U) << "flush() makes the lines visible";
    logging.deallocate(a);
  }
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const auto lines = parse_log(text.str());
  ASSERT_EQ(lines.size(), 2U);
  EXPECT_EQ(lines[0].pointer, address);
  EXPECT_EQ(lines[1].pointer, address);
  EXPECT_EQ(lines[1].action, "free");
  std::filesystem::remove(path);

  try {
    LoggingAdaptor bad(upstream, std::filesystem::path("/nonexistent-dir/unimem.csv"));
    FAIL() << "an unwritable path must throw";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/unimem.csv"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace unimem
