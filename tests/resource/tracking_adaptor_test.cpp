#include "unimem/resource/tracking_adaptor.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/backend_resource.hpp"

namespace unimem {
namespace {

using namespace std::chrono_literals;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class TrackingAdaptorTest : public ::testing::Test {
 protected:
  SimulatedBackend sim_{{SimulatedDeviceSpec{.capacity_bytes = GiB, .backed = false}}};
  BackendResource upstream_{sim_, 0, MemoryKind::Device};
};

TEST_F(TrackingAdaptorTest, IdsAreUniqueAndCountsFollowTheLiveSet) {
  TrackingAdaptor tracking(upstream_);
  std::vector<Allocation> allocations;
  std::size_t bytes = 0;
  for (std::size_t i = 1; i <= 20; ++i) {
    allocations.push_back(tracking.allocate(i * 100));
    bytes += i * 100;
  }
  EXPECT_EQ(tracking.live_count(), 20U);
  EXPECT_EQ(tracking.live_bytes(), bytes);
  std::set<std::uint64_t> ids;
  std::uint64_t previous = 0;
  for (const TrackedAllocation& record : tracking.live_allocations()) {
    EXPECT_GT(record.id, previous) << "oldest first, ids in allocation order";
    previous = record.id;
    ids.insert(record.id);
    EXPECT_EQ(record.device, upstream_.device());
    EXPECT_EQ(record.kind, MemoryKind::Device);
    EXPECT_TRUE(record.frames.empty()) << "no backtrace unless asked for";
  }
  EXPECT_EQ(ids.size(), 20U);
  tracking.deallocate(allocations[4]);
  bytes -= allocations[4].size;
  EXPECT_EQ(tracking.live_count(), 19U);
  EXPECT_EQ(tracking.live_bytes(), bytes);
  allocations.erase(allocations.begin() + 4);
  for (const Allocation& a : allocations) tracking.deallocate(a);
  EXPECT_EQ(tracking.live_count(), 0U);
  EXPECT_EQ(tracking.live_bytes(), 0U);
  EXPECT_EQ(upstream_.live_allocations(), 0U);
  const Allocation later = tracking.allocate(1);
  EXPECT_EQ(tracking.live_allocations().front().id, 21U) << "ids are never reused";
  tracking.deallocate(later);
}

TEST_F(TrackingAdaptorTest, TagsComeFromTheCallOrTheScope) {
  TrackingAdaptor tracking(upstream_);
  const Allocation untagged = tracking.allocate(10);
  const Allocation explicit_tag = tracking.allocate_tagged(20, "weights");
  Allocation scoped;
  Allocation nested;
  Allocation explicit_in_scope;
  Allocation after_nested;
  {
    const TrackingAdaptor::ScopedTag layer("layer1");
    scoped = tracking.allocate(30);
    {
      const TrackingAdaptor::ScopedTag inner("layer1/attention");
      nested = tracking.allocate(40);
    }
    explicit_in_scope = tracking.allocate_tagged(50, "kv-cache");
    after_nested = tracking.allocate(60);
  }
  const Allocation outside = tracking.allocate(70);
  std::vector<std::string> tags;
  for (const auto& record : tracking.live_allocations()) tags.push_back(record.tag);
  const std::vector<std::string> expected = {"",         "weights", "layer1", "layer1/attention",
                                             "kv-cache", "layer1",  ""};
  EXPECT_EQ(tags, expected);
  EXPECT_THROW((void)tracking.allocate_tagged(0, "zero"), InvalidArgument);
  for (const Allocation& a :
       {untagged, explicit_tag, scoped, nested, explicit_in_scope, after_nested, outside}) {
    tracking.deallocate(a);
  }
}

TEST_F(TrackingAdaptorTest, FindsAllocationsOlderThanAnAge) {
  TrackingAdaptor tracking(upstream_);
  const Allocation old_one = tracking.allocate_tagged(100, "old");
  std::this_thread::sleep_for(60ms);
  const Allocation young = tracking.allocate_tagged(200, "young");
  const auto old_enough = tracking.allocations_older_than(30ms);
  ASSERT_EQ(old_enough.size(), 1U);
  EXPECT_EQ(old_enough[0].tag, "old");
  EXPECT_GE(old_enough[0].age(), 60ms);
  EXPECT_EQ(tracking.allocations_older_than(0ms).size(), 2U);
  EXPECT_TRUE(tracking.allocations_older_than(1h).empty());
  EXPECT_THROW((void)tracking.allocations_older_than(-1ms), InvalidArgument);
  tracking.deallocate(old_one);
  tracking.deallocate(young);
}

TEST_F(TrackingAdaptorTest, LeakReportListsEachLiveAllocation) {
  TrackingAdaptor tracking(upstream_);
  const Allocation a = tracking.allocate_tagged(1234, "activations");
  const Allocation b = tracking.allocate(4321);
  const Allocation freed = tracking.allocate_tagged(999, "freed");
  tracking.deallocate(freed);
  const std::string report = tracking.leak_report();
  EXPECT_TRUE(contains(report, "2 live allocation(s)")) << report;
  EXPECT_TRUE(contains(report, std::to_string(1234 + 4321) + " bytes")) << report;
  EXPECT_TRUE(contains(report, "#1 [activations] 1234 bytes on " + to_string(upstream_.device()))) << report;
  EXPECT_TRUE(contains(report, "#2 (untagged) 4321 bytes")) << report;
  EXPECT_FALSE(contains(report, "freed")) << report;
  EXPECT_TRUE(contains(report, "age ")) << report;
  EXPECT_EQ(std::count(report.begin(), report.end(), '\n'), 3) << report;
  tracking.deallocate(a);
  tracking.deallocate(b);
  EXPECT_TRUE(contains(tracking.leak_report(), "0 live allocation(s), 0 bytes")) << tracking.leak_report();
}

TEST_F(TrackingAdaptorTest, BacktracesWhenEnabled) {
  TrackingAdaptor tracking(upstream_, TrackingOptions{.capture_backtraces = true, .backtrace_depth = 16});
  const Allocation a = tracking.allocate_tagged(64, "traced");
  const auto records = tracking.live_allocations();
  ASSERT_EQ(records.size(), 1U);
  EXPECT_FALSE(records[0].frames.empty());
  EXPECT_LE(records[0].frames.size(), 16U);
  const auto lines = records[0].backtrace();
  EXPECT_EQ(lines.size(), records[0].frames.size());
  EXPECT_FALSE(lines.front().empty());
  const std::string report = tracking.leak_report();
  EXPECT_TRUE(contains(report, "      at " + lines.front())) << report;
  tracking.deallocate(a);
}

TEST_F(TrackingAdaptorTest, UntrackedFreesAreReportedAndNotForwarded) {
  TrackingAdaptor tracking(upstream_);
  std::vector<std::string> reports;
  const ScopedMisuseHandler capture([&](std::string_view m) { reports.emplace_back(m); });
  const Allocation direct = upstream_.allocate(512);  // made below the tracker
  tracking.deallocate(direct);
  EXPECT_EQ(upstream_.live_allocations(), 1U) << "an untracked free must not reach the upstream";
  const Allocation tracked = tracking.allocate(256);
  Allocation resized = tracked;
  resized.size = 128;
  tracking.deallocate(resized);
  tracking.deallocate(tracked);
  tracking.deallocate(tracked);  // double free: only the tracker reports it, the upstream never sees it
  ASSERT_EQ(reports.size(), 3U);
  EXPECT_TRUE(contains(reports[0], "512 bytes")) << reports[0];
  EXPECT_TRUE(contains(reports[0], "not tracked here")) << reports[0];
  EXPECT_TRUE(contains(reports[1], "has 256 bytes")) << reports[1];
  EXPECT_TRUE(contains(reports[2], "already freed")) << reports[2];
  EXPECT_EQ(upstream_.live_allocations(), 1U);
  upstream_.deallocate(direct);
}

TEST_F(TrackingAdaptorTest, DestroyedWithLiveAllocationsReportsThem) {
  std::vector<std::string> reports;
  const ScopedMisuseHandler capture([&](std::string_view m) { reports.emplace_back(m); });
  Allocation leaked;
  {
    TrackingAdaptor tracking(upstream_);
    leaked = tracking.allocate_tagged(777, "leaky");
  }
  ASSERT_EQ(reports.size(), 1U);
  EXPECT_TRUE(contains(reports[0], "[leaky] 777 bytes")) << reports[0];
  upstream_.deallocate(leaked);
}

TEST_F(TrackingAdaptorTest, ConcurrentTrackingKeepsEveryAllocation) {
  TrackingAdaptor tracking(upstream_);
  constexpr int kThreads = 4;
  std::vector<std::vector<Allocation>> kept(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const TrackingAdaptor::ScopedTag tag("thread" + std::to_string(t));
      for (int i = 0; i < 100; ++i) {
        const Allocation a = tracking.allocate(64);
        if (i % 2 == 0) {
          tracking.deallocate(a);
        } else {
          kept[t].push_back(a);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const auto live = tracking.live_allocations();
  EXPECT_EQ(live.size(), 200U);
  std::set<std::uint64_t> ids;
  for (const auto& record : live) {
    ids.insert(record.id);
    EXPECT_EQ(record.tag.rfind("thread", 0), 0U) << record.tag;
  }
  EXPECT_EQ(ids.size(), 200U);
  for (const auto& allocations : kept) {
    for (const Allocation& a : allocations) tracking.deallocate(a);
  }
  EXPECT_EQ(tracking.live_count(), 0U);
  EXPECT_EQ(upstream_.live_allocations(), 0U);
}

}  // namespace
}  // namespace unimem
