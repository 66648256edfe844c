#include "unimem/resource/fault_injection_adaptor.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/resource/statistics_adaptor.hpp"

namespace unimem {
namespace {

// Makes `calls` allocations through `resource`, frees the ones that succeed, and returns which calls failed.
std::vector<bool> failure_pattern(MemoryResource& resource, int calls) {
  std::vector<bool> failed;
  std::vector<Allocation> held;
  for (int i = 0; i < calls; ++i) {
    try {
      held.push_back(resource.allocate(256));
      failed.push_back(false);
    } catch (const OutOfMemory&) {
      failed.push_back(true);
    }
  }
  for (const Allocation& a : held) resource.deallocate(a);
  return failed;
}

class FaultInjectionTest : public ::testing::Test {
 protected:
  SimulatedBackend sim_{{SimulatedDeviceSpec{.capacity_bytes = GiB, .backed = false}}};
  BackendResource upstream_{sim_, 0, MemoryKind::Device};
};

TEST_F(FaultInjectionTest, FailsEveryNthCallWithoutReachingTheUpstream) {
  FaultInjectionAdaptor faulty(upstream_, FaultInjectionOptions{.fail_every_nth = 3});
  const std::vector<bool> failed = failure_pattern(faulty, 12);
  for (std::size_t i = 0; i < failed.size(); ++i) EXPECT_EQ(failed[i], (i + 1) % 3 == 0) << "call " << i + 1;
  EXPECT_EQ(faulty.calls(), 12U);
  EXPECT_EQ(faulty.injected_faults(), 4U);
  EXPECT_EQ(upstream_.usage().upstream_allocations, 8U);
  EXPECT_EQ(sim_.live_segment_count(), 0U);
}

TEST_F(FaultInjectionTest, SeededProbabilityIsReproducible) {
  constexpr int kCalls = 400;
  const FaultInjectionOptions options{.probability = 0.25, .seed = 42};
  FaultInjectionAdaptor first(upstream_, options);
  FaultInjectionAdaptor second(upstream_, options);
  FaultInjectionAdaptor other_seed(upstream_, FaultInjectionOptions{.probability = 0.25, .seed = 43});
  const std::vector<bool> a = failure_pattern(first, kCalls);
  const std::vector<bool> b = failure_pattern(second, kCalls);
  const std::vector<bool> c = failure_pattern(other_seed, kCalls);
  EXPECT_EQ(a, b) << "the same seed must fail the same calls";
  EXPECT_NE(a, c) << "another seed should fail other calls";
  std::uint64_t failures = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i], first.fails(i + 1)) << "call " << i + 1;
    failures += a[i] ? 1U : 0U;
  }
  EXPECT_EQ(failures, first.injected_faults());
  // 400 draws at p = 0.25: 100 expected, and the pattern is fixed by the seed, so this cannot flake.
  EXPECT_GT(failures, 60U);
  EXPECT_LT(failures, 140U);
  EXPECT_EQ(sim_.live_segment_count(), 0U);
}

TEST_F(FaultInjectionTest, InjectsBackendErrorsWhenAsked) {
  FaultInjectionAdaptor faulty(
      upstream_, FaultInjectionOptions{.fail_every_nth = 1, .fault = InjectedFault::BackendError});
  try {
    (void)faulty.allocate(1000);
    FAIL() << "every call fails";
  } catch (const BackendError& e) {
    EXPECT_EQ(e.code(), FaultInjectionAdaptor::kInjectedErrorCode);
    EXPECT_EQ(e.code_name(), "UNIMEM_INJECTED_FAULT");
    EXPECT_EQ(e.backend(), "sim");
    EXPECT_NE(std::string(e.what()).find("1000 bytes"), std::string::npos) << e.what();
  }
  EXPECT_EQ(upstream_.usage().upstream_allocations, 0U);
}

TEST_F(FaultInjectionTest, OffByDefaultAndValidated) {
  FaultInjectionAdaptor off(upstream_, FaultInjectionOptions{});
  EXPECT_EQ(failure_pattern(off, 50), std::vector<bool>(50, false));
  FaultInjectionAdaptor always(upstream_, FaultInjectionOptions{.probability = 1.0});
  EXPECT_EQ(failure_pattern(always, 10), std::vector<bool>(10, true));
  EXPECT_THROW(FaultInjectionAdaptor(upstream_, FaultInjectionOptions{.probability = 1.5}), InvalidArgument);
  EXPECT_THROW(FaultInjectionAdaptor(upstream_, FaultInjectionOptions{.probability = -0.1}), InvalidArgument);
}

TEST_F(FaultInjectionTest, LayersAboveStayConsistent) {
  // Statistics above the faults count only what succeeded; nothing leaks below.
  FaultInjectionAdaptor faulty(upstream_, FaultInjectionOptions{.fail_every_nth = 4});
  StatisticsAdaptor stats(faulty);
  const std::vector<bool> failed = failure_pattern(stats, 20);
  const auto failures = static_cast<std::uint64_t>(std::count(failed.begin(), failed.end(), true));
  EXPECT_EQ(failures, 5U);
  const MemoryStats s = stats.stats();
  EXPECT_EQ(s.allocation_count, 20U - failures);
  EXPECT_EQ(s.free_count, 20U - failures);
  EXPECT_EQ(s.in_use_bytes, 0U);
  EXPECT_EQ(s.upstream_allocations, s.upstream_deallocations);
  EXPECT_EQ(sim_.live_segment_count(), 0U);
}

}  // namespace
}  // namespace unimem
