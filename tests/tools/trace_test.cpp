#include "unimem/trace.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "tools/trace_test_support.hpp"
#include "unimem/core/error.hpp"

namespace unimem::cli {
namespace {

constexpr const char* kHeader = "Thread,Time,Action,Pointer,Size,Stream\n";

Trace parse(const std::string& body, bool lenient = false) {
  std::istringstream in(kHeader + body);
  return parse_trace(in, "t.csv", {.lenient = lenient});
}

// The message of the InvalidArgument that parsing `body` throws, or "" when it does not throw.
std::string parse_error(const std::string& body) {
  try {
    (void)parse(body);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

TEST(Trace, ParsesEventsSlotsAndPeak) {
  const Trace trace = parse(
      "0,00:00:00.000001,allocate,0x1000,100,0x0\n"
      "1,00:00:00.000002,allocate,0x2000,300,0x0\n"
      "0,00:00:00.000003,free,0x1000,100,0x0\n"
      "0,00:00:00.000004,allocate,0x3000,50,0x7f\n"
      "0,00:00:00.000005,allocate failure,0x0,1000000,0x0\n");
  ASSERT_EQ(trace.events.size(), 4U);
  EXPECT_EQ(trace.allocations, 3U);
  EXPECT_EQ(trace.frees, 1U);
  EXPECT_EQ(trace.recorded_failures, 1U);
  EXPECT_EQ(trace.peak_live_bytes, 400U);
  EXPECT_EQ(trace.peak_live_event, 1U);
  EXPECT_EQ(trace.slot_count, 2U) << "two allocations were live at most";
  EXPECT_EQ(trace.live_at_end, 2U);
  EXPECT_EQ(trace.live_bytes_at_end, 350U);
  EXPECT_EQ(trace.events[0].pointer, 0x1000U);
  EXPECT_EQ(trace.events[2].action, TraceAction::Free);
  EXPECT_EQ(trace.events[2].slot, trace.events[0].slot) << "a free carries its allocation's slot";
  EXPECT_EQ(trace.events[3].slot, trace.events[0].slot) << "a freed slot is reused";
  EXPECT_NE(trace.events[1].slot, trace.events[0].slot);
  EXPECT_EQ(trace.events[3].size, 50U);
}

TEST(Trace, AcceptsBlankLinesCarriageReturnsAndSpaces) {
  const Trace trace = parse("\n0, t ,allocate, 0xA0 ,64,0x0\r\n\n0,t,free,0xa0,64,0x0\r\n");
  EXPECT_EQ(trace.allocations, 1U);
  EXPECT_EQ(trace.frees, 1U);
}

TEST(Trace, AnAddressFreedCanBeAllocatedAgain) {
  const Trace trace = parse("0,t,allocate,0x10,8,0x0\n0,t,free,0x10,8,0x0\n0,t,allocate,0x10,16,0x0\n");
  EXPECT_EQ(trace.allocations, 2U);
  EXPECT_EQ(trace.peak_live_bytes, 16U);
}

TEST(Trace, RejectsEachMalformedLineNamingFileAndLine) {
  const std::string ok = "0,t,allocate,0x10,8,0x0\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"0,t,allocate,0x20,8\n", "6 comma-separated fields"},
      {"0,t,allocate,0x20,8,0x0,extra\n", "6 comma-separated fields"},
      {"0,t,allocate,0x20,eight,0x0\n", "size 'eight'"},
      {"0,t,allocate,0x20,-8,0x0\n", "size '-8'"},
      {"0,t,allocate,20,8,0x0\n", "pointer '20'"},
      {"0,t,allocate,0xZZ,8,0x0\n", "pointer '0xZZ'"},
      {"0,t,reallocate,0x20,8,0x0\n", "unknown action 'reallocate'"},
      {"0,t,free,0x30,8,0x0\n", "free of pointer 0x30, which is not live"},
      {"0,t,allocate,0x10,8,0x0\n", "allocation of pointer 0x10, which is already live"},
      {"0,t,free,0x10,9,0x0\n", "with size 9, allocated with size 8"},
      {"0,t,allocate,0x20,0,0x0\n", "allocation of 0 bytes"},
      // Regressions: 2^64-1 parsed and then failed in the replay with no file or line.
      {"0,t,allocate,0x20,18446744073709551615,0x0\n", "larger than 2^63 bytes"},
      {"0,t,allocate,0x20,18446744073709551616,0x0\n", "is not a decimal byte count"},
  };
  for (const auto& [line, why] : cases) {
    const std::string message = parse_error(ok + line);
    EXPECT_NE(message.find("t.csv:3: "), std::string::npos) << line << " -> " << message;
    EXPECT_NE(message.find(why), std::string::npos) << line << " -> " << message;
  }
}

// Regression: three allocations of 2^63 bytes wrapped the live-byte sum and printed a peak of 2^63.
TEST(Trace, LiveBytesThatWouldPass2To64AreAnError) {
  const std::string message = parse_error(
      "0,t,allocate,0x10,9223372036854775808,0x0\n"
      "0,t,allocate,0x20,9223372036854775808,0x0\n");
  EXPECT_NE(message.find("t.csv:3: "), std::string::npos) << message;
  EXPECT_NE(message.find("would pass 2^64"), std::string::npos) << message;
}

// Regression: a 1 MB size field made a 1 MB error message.
TEST(Trace, MessagesStayShortWhateverTheLine) {
  const std::string field(1'000'000, '7');
  for (const std::string& line : {"0,t,allocate,0x20," + field + ",0x0\n", "0,t," + field + ",0x20,8,0x0\n",
                                  "0,t,allocate,0x" + field + "z,8,0x0\n", field + "\n"}) {
    const std::string message = parse_error(line);
    EXPECT_FALSE(message.empty());
    EXPECT_LT(message.size(), 512U) << message.substr(0, 600);
  }
}

TEST(Trace, LoadNamesADirectory) {
  try {
    (void)load_trace(std::filesystem::temp_directory_path());
    ADD_FAILURE() << "a directory was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
  }
}

TEST(Trace, RequiresTheHeader) {
  std::istringstream in("0,t,allocate,0x10,8,0x0\n");
  EXPECT_THROW((void)parse_trace(in, "t.csv"), InvalidArgument);
  std::istringstream empty("");
  try {
    (void)parse_trace(empty, "empty.csv");
    ADD_FAILURE() << "an empty trace was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("empty.csv"), std::string::npos);
  }
}

TEST(Trace, LenientSkipsAndCountsMalformedLines) {
  const Trace trace = parse(
      "0,t,allocate,0x10,8,0x0\n"
      "garbage\n"
      "0,t,free,0x99,8,0x0\n"
      "0,t,allocate,0x10,8,0x0\n"
      "0,t,free,0x10,8,0x0\n",
      /*lenient=*/true);
  EXPECT_EQ(trace.skipped_lines, 3U);
  EXPECT_NE(trace.first_skipped.find("t.csv:3:"), std::string::npos) << trace.first_skipped;
  EXPECT_EQ(trace.allocations, 1U);
  EXPECT_EQ(trace.frees, 1U);
  EXPECT_EQ(trace.live_at_end, 0U);
}

TEST(Trace, LoadNamesAMissingFile) {
  try {
    (void)load_trace("/nonexistent/trace.csv");
    ADD_FAILURE() << "a missing file was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/trace.csv"), std::string::npos);
  }
}

void expect_matches_independent_reading(const std::filesystem::path& path) {
  const test::TraceFacts facts = test::read_trace_facts(path);
  const Trace trace = load_trace(path);
  EXPECT_EQ(trace.events.size(), facts.events) << path;
  EXPECT_EQ(trace.allocations, facts.allocations) << path;
  EXPECT_EQ(trace.frees, facts.frees) << path;
  EXPECT_EQ(trace.peak_live_bytes, facts.peak_live_bytes) << path;
  EXPECT_EQ(trace.slot_count, facts.most_live) << path;
  EXPECT_EQ(trace.live_at_end, facts.live_at_end) << path;
}

TEST(Trace, DemoTraceMatchesAnIndependentReading) {
  expect_matches_independent_reading(test::demo_trace_path());
}

TEST(Trace, SharedTracesMatchAnIndependentReading) {
  const std::filesystem::path dir = test::shared_traces_dir();
  if (!std::filesystem::is_directory(dir)) GTEST_SKIP() << "no recorded traces at " << dir;
  std::size_t seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".csv") continue;
    expect_matches_independent_reading(entry.path());
    ++seen;
  }
  EXPECT_GT(seen, 0U);
}

}  // namespace
}  // namespace unimem::cli
