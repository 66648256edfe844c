// What every adaptor keeps, over every kind of upstream (host memory, backed and unbacked simulated devices,
// OpenCL device memory when a device is present, a pool): it presents the upstream's backend, device and
// kind, hands out the upstream's ranges with the requested alignment, frees them back, and reports the
// upstream's usage.

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "backend/backend_fixture.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/resource/coalescing_pool.hpp"
#include "unimem/resource/fallback_adaptor.hpp"
#include "unimem/resource/fault_injection_adaptor.hpp"
#include "unimem/resource/hybrid_pool.hpp"
#include "unimem/resource/limiting_adaptor.hpp"
#include "unimem/resource/logging_adaptor.hpp"
#include "unimem/resource/pressure_adaptor.hpp"
#include "unimem/resource/resource_stack.hpp"
#include "unimem/resource/statistics_adaptor.hpp"
#include "unimem/resource/thread_safe_adaptor.hpp"
#include "unimem/resource/tracking_adaptor.hpp"

namespace unimem {
namespace {

enum class Upstream { Host, SimBacked, SimUnbacked, OpenCL, CoalescingPoolOnSim, HybridPoolOnSim };
enum class Adaptor {
  Limiting,
  Statistics,
  Tracking,
  Logging,
  Fallback,
  Pressure,
  ThreadSafe,
  FaultInjection
};

std::string name_of(Upstream upstream) {
  switch (upstream) {
    case Upstream::Host:
      return "Host";
    case Upstream::SimBacked:
      return "SimBacked";
    case Upstream::SimUnbacked:
      return "SimUnbacked";
    case Upstream::OpenCL:
      return "OpenCL";
    case Upstream::CoalescingPoolOnSim:
      return "CoalescingPoolOnSim";
    case Upstream::HybridPoolOnSim:
      return "HybridPoolOnSim";
  }
  return "Unknown";
}

std::string name_of(Adaptor adaptor) {
  constexpr const char* kNames[] = {"Limiting", "Statistics", "Tracking",   "Logging",
                                    "Fallback", "Pressure",   "ThreadSafe", "FaultInjection"};
  return kNames[static_cast<int>(adaptor)];
}

class AdaptorConformance : public ::testing::TestWithParam<std::tuple<Upstream, Adaptor>> {
 protected:
  void SetUp() override {
    BackendRegistry& registry = test::shared_registry();
    Backend& sim = registry.get(BackendKind::Simulated);
    switch (std::get<0>(GetParam())) {
      case Upstream::Host:
        upstream_ = &stack_.push<BackendResource>(registry.host(), 0, MemoryKind::Device);
        break;
      case Upstream::SimBacked:
        upstream_ = &stack_.push<BackendResource>(sim, 0, MemoryKind::Device);
        break;
      case Upstream::SimUnbacked:
        upstream_ = &stack_.push<BackendResource>(sim, 2, MemoryKind::Device);
        break;
      case Upstream::OpenCL: {
        std::string why;
        Backend* opencl = test::backend_with_devices(BackendKind::OpenCL, why);
        if (opencl == nullptr) GTEST_SKIP() << why;
        upstream_ = &stack_.push<BackendResource>(*opencl, 0, MemoryKind::Device);
        break;
      }
      case Upstream::CoalescingPoolOnSim:
        upstream_ = &stack_.push<CoalescingPool>(stack_.push<BackendResource>(sim, 0, MemoryKind::Device));
        break;
      case Upstream::HybridPoolOnSim:
        upstream_ = &stack_.push<HybridPool>(stack_.push<BackendResource>(sim, 0, MemoryKind::Device));
        break;
    }
    adaptor_ = &push_adaptor(std::get<1>(GetParam()), *upstream_);
    live_segments_before_ = upstream_->backend().live_segment_count();
  }

  MemoryResource& push_adaptor(Adaptor adaptor, MemoryResource& upstream) {
    switch (adaptor) {
      case Adaptor::Limiting:
        return stack_.push<LimitingAdaptor>(upstream, GiB);
      case Adaptor::Statistics:
        return stack_.push<StatisticsAdaptor>(upstream);
      case Adaptor::Tracking:
        return stack_.push<TrackingAdaptor>(upstream, TrackingOptions{.capture_backtraces = true});
      case Adaptor::Logging:
        return stack_.push<LoggingAdaptor>(upstream, log_);
      case Adaptor::Fallback: {
        MemoryResource& host =
            stack_.push<BackendResource>(test::shared_registry().host(), 0, MemoryKind::Host);
        return stack_.push<FallbackAdaptor>(upstream, host);
      }
      case Adaptor::Pressure:
        return stack_.push<PressureAdaptor>(upstream);
      case Adaptor::ThreadSafe:
        return stack_.push<ThreadSafeAdaptor>(upstream);
      case Adaptor::FaultInjection:
        return stack_.push<FaultInjectionAdaptor>(upstream, FaultInjectionOptions{});
    }
    throw std::logic_error("unknown adaptor");
  }

  std::ostringstream log_;  // outlives the stack: declared first
  ResourceStack stack_;
  MemoryResource* upstream_ = nullptr;
  MemoryResource* adaptor_ = nullptr;
  std::size_t live_segments_before_ = 0;
};

TEST_P(AdaptorConformance, PresentsTheUpstreamsIdentity) {
  EXPECT_EQ(adaptor_->device(), upstream_->device());
  EXPECT_EQ(adaptor_->kind(), upstream_->kind());
  EXPECT_EQ(&adaptor_->backend(), &upstream_->backend());
}

TEST_P(AdaptorConformance, HandsOutAlignedRangesAndFreesThemBack) {
  std::vector<Allocation> held;
  for (std::size_t bytes : {std::size_t{1}, std::size_t{1000}, 64 * KiB}) {
    for (std::size_t alignment : {std::size_t{256}, std::size_t{4096}}) {
      const Allocation a = adaptor_->allocate(bytes, nullptr, alignment);
      ASSERT_TRUE(a);
      EXPECT_EQ(a.size, bytes);
      EXPECT_EQ(a.device(), upstream_->device());
      EXPECT_EQ(a.kind(), upstream_->kind());
      EXPECT_EQ(a.backend(), &upstream_->backend());
      if (a.host_ptr() != nullptr) {
        EXPECT_TRUE(is_aligned(a.host_ptr(), alignment)) << bytes << " bytes at alignment " << alignment;
        std::memset(a.host_ptr(), 0xab, bytes);
      }
      held.push_back(a);
    }
  }
  EXPECT_EQ(adaptor_->usage().in_use_bytes, upstream_->usage().in_use_bytes);
  EXPECT_GE(upstream_->usage().in_use_bytes, 2 * (1 + 1000 + 64 * KiB));
  EXPECT_GT(upstream_->backend().live_segment_count(), live_segments_before_);
  for (const Allocation& a : held) adaptor_->deallocate(a);
  EXPECT_EQ(upstream_->usage().in_use_bytes, 0U);
  (void)adaptor_->trim();  // a pool gives its now free segments back
  EXPECT_EQ(upstream_->backend().live_segment_count(), live_segments_before_);
}

TEST_P(AdaptorConformance, ForwardsUsageAndTrim) {
  const Allocation a = adaptor_->allocate(4096);
  const ResourceUsage mine = adaptor_->usage();
  const ResourceUsage theirs = upstream_->usage();
  EXPECT_EQ(mine.reserved_bytes, theirs.reserved_bytes);
  EXPECT_EQ(mine.in_use_bytes, theirs.in_use_bytes);
  EXPECT_EQ(mine.upstream_allocations, theirs.upstream_allocations);
  EXPECT_EQ(mine.cache_misses, theirs.cache_misses);
  EXPECT_EQ(mine.fallbacks, 0U);
  EXPECT_EQ(mine.cache_hits, theirs.cache_hits);
  adaptor_->deallocate(a);
  const ResourceUsage before_trim = upstream_->usage();
  const std::size_t trimmed = adaptor_->trim();
  EXPECT_EQ(trimmed, before_trim.reserved_bytes - upstream_->usage().reserved_bytes)
      << "trim reaches the upstream";
  EXPECT_EQ(adaptor_->usage().upstream_deallocations, upstream_->usage().upstream_deallocations);
}

INSTANTIATE_TEST_SUITE_P(
    EveryUpstream, AdaptorConformance,
    ::testing::Combine(::testing::Values(Upstream::Host, Upstream::SimBacked, Upstream::SimUnbacked,
                                         Upstream::OpenCL, Upstream::CoalescingPoolOnSim,
                                         Upstream::HybridPoolOnSim),
                       ::testing::Values(Adaptor::Limiting, Adaptor::Statistics, Adaptor::Tracking,
                                         Adaptor::Logging, Adaptor::Fallback, Adaptor::Pressure,
                                         Adaptor::ThreadSafe, Adaptor::FaultInjection)),
    [](const auto& test_info) {
      return name_of(std::get<0>(test_info.param)) + "_" + name_of(std::get<1>(test_info.param));
    });

}  // namespace
}  // namespace unimem
