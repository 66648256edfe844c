// PmrResource: std::pmr containers over host, pinned, unified and host-visible device memory; alignment;
// equality; device-only memory (a backed simulated device, OpenCL device memory) refused at construction.

#include "unimem/resource/pmr_resource.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory_resource>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend_fixture.hpp"
#include "unimem/core/error.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/resource/hybrid_pool.hpp"

namespace unimem {
namespace {

struct PmrTarget {
  const char* label;
  BackendKind backend;
  int device;
  MemoryKind kind;
};

void PrintTo(const PmrTarget& target, std::ostream* out) {
  *out << target.label;
}

class PmrOnHostVisibleMemory : public ::testing::TestWithParam<PmrTarget> {
 protected:
  void SetUp() override {
    std::string why;
    Backend* backend = test::backend_with_devices(GetParam().backend, why);
    if (backend == nullptr) GTEST_SKIP() << why;
    if (!backend->supports(GetParam().device, GetParam().kind)) GTEST_SKIP() << "no such memory here";
    upstream_ = std::make_unique<BackendResource>(*backend, GetParam().device, GetParam().kind);
    pool_ = std::make_unique<HybridPool>(*upstream_);
  }
  std::unique_ptr<BackendResource> upstream_;
  std::unique_ptr<HybridPool> pool_;
};

TEST_P(PmrOnHostVisibleMemory, ContainersHoldTheirValues) {
  PmrResource pmr(*pool_);
  std::pmr::vector<float> values(&pmr);
  for (int i = 0; i < 50000; ++i) values.push_back(static_cast<float>(i));
  EXPECT_EQ(std::accumulate(values.begin(), values.end(), 0.0), 50000.0 * 49999.0 / 2.0);
  std::pmr::map<int, std::pmr::string> names(&pmr);
  for (int i = 0; i < 100; ++i) names.emplace(i, std::pmr::string(40, static_cast<char>('a' + i % 26)));
  EXPECT_EQ(std::string_view(names.at(27)), std::string(40, 'b'));
  EXPECT_EQ(names.get_allocator().resource(), &pmr);
}

TEST_P(PmrOnHostVisibleMemory, AlignmentIsHonouredUpToTheMaximum) {
  PmrResource pmr(*pool_);
  for (std::size_t alignment = 1; alignment <= MemoryResource::kMaxAlignment; alignment *= 2) {
    void* p = pmr.allocate(100, alignment);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % alignment, 0U) << alignment;
    pmr.deallocate(p, 100, alignment);
  }
  void* zero = pmr.allocate(0, 8);
  EXPECT_NE(zero, nullptr);
  pmr.deallocate(zero, 0, 8);
  try {
    (void)pmr.allocate(64, 2 * MemoryResource::kMaxAlignment);
    FAIL() << "an alignment above the maximum was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("alignment 8192"), std::string::npos) << e.what();
  }
}

TEST_P(PmrOnHostVisibleMemory, EqualAdaptorsFreeEachOthersBlocks) {
  PmrResource a(*pool_);
  PmrResource b(*pool_);
  EXPECT_TRUE(a.is_equal(b));
  void* p = a.allocate(1000, 16);
  b.deallocate(p, 1000, 16);  // equal resources may free each other's memory
  EXPECT_EQ(pool_->usage().in_use_bytes, 0U);

  HybridPool other_pool(*upstream_);
  const PmrResource c(other_pool);
  EXPECT_FALSE(a.is_equal(c));
  EXPECT_FALSE(a.is_equal(*std::pmr::new_delete_resource()));
}

INSTANTIATE_TEST_SUITE_P(
    Memory, PmrOnHostVisibleMemory,
    ::testing::Values(PmrTarget{"host", BackendKind::Host, 0, MemoryKind::Device},
                      PmrTarget{"opencl_pinned", BackendKind::OpenCL, 0, MemoryKind::PinnedHost},
                      PmrTarget{"opencl_unified", BackendKind::OpenCL, 0, MemoryKind::Unified}),
    [](const auto& param_info) { return std::string(param_info.param.label); });

TEST(PmrResource, DeviceOnlyMemoryIsRefusedNamingTheDevice) {
  std::string why;
  Backend* sim = test::backend_with_devices(BackendKind::Simulated, why);
  ASSERT_NE(sim, nullptr) << why;
  // A backed simulated device stands for a discrete GPU: its bytes exist, but not for the host.
  BackendResource backed(*sim, 0, MemoryKind::Device);
  try {
    const PmrResource pmr(backed);
    FAIL() << "device-only memory was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("sim:0"), std::string::npos) << e.what();
  }
  Backend* opencl = test::backend_with_devices(BackendKind::OpenCL, why);
  if (opencl == nullptr) GTEST_SKIP() << why;
  BackendResource device(*opencl, 0, MemoryKind::Device);
  EXPECT_THROW(const PmrResource pmr(device), InvalidArgument);
}

}  // namespace
}  // namespace unimem
