// Each pool against the reference model of pool_model.hpp: long seeded random sequences of allocations,
// frees, trims and misuse, then the same with an upstream that fails every few allocations.

#include "resource/pool_model.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

#include "unimem/backend/simulated_backend.hpp"
#include "unimem/resource/backend_resource.hpp"

namespace unimem::test {

namespace {

// One random operation. Sizes are log-uniform from 1 byte to 4 MiB; one request in ten asks for an unusual
// alignment; frees outnumber allocations once many are live, so the pools see both growth and reuse.
std::string random_operation(PoolModel& model, std::mt19937_64& rng) {
  const std::uint64_t dice = rng() % 1000;
  const bool crowded = model.live_count() > 200;
  if (dice < (crowded ? 300U : 520U)) {
    const std::size_t bytes = 1 + rng() % (std::size_t{1} << (rng() % 23));
    constexpr std::size_t kAlignments[] = {1, 64, 512, 1024, 4096};
    const std::size_t alignment = rng() % 10 == 0 ? kAlignments[rng() % 5] : kDefaultAlignment;
    return model.allocate(bytes, alignment);
  }
  if (dice < 980) return model.free(rng());
  if (dice < 986) return model.trim();
  if (dice < 993) return model.free_again(rng());
  return model.free_forged(rng(), static_cast<unsigned>(rng()));
}

class PoolModelTest : public ::testing::TestWithParam<PoolKind> {
 protected:
  SimulatedBackend sim_{{SimulatedDeviceSpec{.capacity_bytes = 64 * GiB, .backed = false}}};
  BackendResource device_{sim_, 0, MemoryKind::Device};
};

TEST_P(PoolModelTest, RandomSequenceMatchesTheModel) {
  PoolModel model(GetParam(), device_);
  std::mt19937_64 rng(20240611U + static_cast<unsigned>(GetParam()));
  constexpr int kOperations = 20000;
  for (int i = 0; i < kOperations; ++i) {
    const std::string error = random_operation(model, rng);
    ASSERT_EQ(error, "") << "operation " << i;
  }
  // The sequence reached reuse, growth and giving memory back.
  const ResourceUsage usage = model.usage();
  EXPECT_GT(usage.cache_hits, 1000U);
  EXPECT_GT(usage.cache_misses, 100U);
  EXPECT_GT(usage.upstream_deallocations, 10U);
  EXPECT_EQ(model.finish(), "");
  EXPECT_EQ(sim_.live_segment_count(), 0U);
}

TEST_P(PoolModelTest, FailingUpstreamLeavesThePoolConsistent) {
  PoolModel model(GetParam(), device_, /*fail_every=*/3);
  std::mt19937_64 rng(77U + static_cast<unsigned>(GetParam()));
  constexpr int kOperations = 5000;
  for (int i = 0; i < kOperations; ++i) {
    const std::string error = random_operation(model, rng);
    ASSERT_EQ(error, "") << "operation " << i;
  }
  EXPECT_GT(model.upstream().injected_failures(), 0U);
  EXPECT_GT(model.failed_allocations(), 0U) << "no injected failure reached the caller";
  EXPECT_EQ(model.finish(), "");
  EXPECT_EQ(sim_.live_segment_count(), 0U);
}

INSTANTIATE_TEST_SUITE_P(Pools, PoolModelTest,
                         ::testing::Values(PoolKind::SizeClass, PoolKind::Coalescing, PoolKind::Hybrid),
                         [](const auto& param_info) { return std::string(to_string(param_info.param)); });

}  // namespace
}  // namespace unimem::test
