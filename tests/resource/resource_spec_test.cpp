#include "unimem/resource/resource_spec.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem {
namespace {

// The message of the InvalidArgument that parsing `spec` throws, or "" when it does not throw.
std::string spec_error(std::string_view spec) {
  try {
    (void)parse_resource_spec(spec);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

TEST(ResourceSpec, ParsesKindsAndAliases) {
  EXPECT_EQ(parse_resource_spec("upstream").kind, ResourceSpecKind::Upstream);
  EXPECT_EQ(parse_resource_spec("size-class").kind, ResourceSpecKind::SizeClass);
  EXPECT_EQ(parse_resource_spec("coalescing").kind, ResourceSpecKind::Coalescing);
  EXPECT_EQ(parse_resource_spec("pool").kind, ResourceSpecKind::Coalescing);
  EXPECT_EQ(parse_resource_spec("hybrid").kind, ResourceSpecKind::Hybrid);
  EXPECT_EQ(parse_resource_spec(kDefaultResourceSpec).kind, ResourceSpecKind::Hybrid);
  EXPECT_EQ(parse_resource_spec("pool:initial=1GiB").text, "pool:initial=1GiB");
  EXPECT_EQ(to_string(ResourceSpecKind::SizeClass), "size-class");
}

TEST(ResourceSpec, ParsesSizeClassOptions) {
  const ResourceSpec spec = parse_resource_spec(
      "size-class:max_block=1MiB,max_pooled_per_bucket=8,min_block=512,per_thread_cache=off");
  EXPECT_EQ(spec.size_class.max_block, MiB);
  EXPECT_EQ(spec.size_class.max_pooled_per_bucket, 8U);
  EXPECT_EQ(spec.size_class.min_block, 512U);
  EXPECT_FALSE(spec.size_class.per_thread_cache);
  EXPECT_TRUE(parse_resource_spec("size-class:per_thread_cache=yes").size_class.per_thread_cache);
}

TEST(ResourceSpec, ParsesCoalescingOptions) {
  const ResourceSpec spec =
      parse_resource_spec("coalescing:initial=1GiB,growth=1.5,max=64GiB,release=false,max_step=2GiB");
  EXPECT_EQ(spec.coalescing.initial_size, GiB);
  EXPECT_DOUBLE_EQ(spec.coalescing.growth_factor, 1.5);
  EXPECT_EQ(spec.coalescing.maximum_size, 64 * GiB);
  EXPECT_FALSE(spec.coalescing.release_free_segments);
  EXPECT_EQ(spec.coalescing.max_growth_step, 2 * GiB);
}

TEST(ResourceSpec, HybridKeysReachBothPools) {
  const ResourceSpec spec =
      parse_resource_spec("hybrid:threshold=256KiB,max_pooled_per_bucket=4,initial=2GiB");
  EXPECT_EQ(spec.hybrid.small_threshold, 256 * KiB);
  EXPECT_EQ(spec.hybrid.small.max_pooled_per_bucket, 4U);
  EXPECT_EQ(spec.hybrid.large.initial_size, 2 * GiB);
}

TEST(ResourceSpec, RejectsBadSpecsNamingSpecAndKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"slab", "unknown kind 'slab'"},
      {"", "unknown kind ''"},
      {"upstream:initial=1GiB", "unknown key 'initial'"},
      {"size-class:initial=1GiB", "unknown key 'initial'"},
      {"coalescing:max_block=1MiB", "unknown key 'max_block'"},
      {"coalescing:initial=lots", "key 'initial'"},
      {"coalescing:initial=0", "key 'initial'"},
      {"coalescing:growth=fast", "key 'growth'"},
      {"size-class:max_pooled_per_bucket=-1", "key 'max_pooled_per_bucket'"},
      {"size-class:per_thread_cache=maybe", "key 'per_thread_cache'"},
      {"coalescing:initial=1GiB,initial=2GiB", "key 'initial' given twice"},
      {"coalescing:initial", "'initial' is not key=value"},
      {"coalescing:", "'' is not key=value"},
      {"coalescing:initial=1GiB,", "'' is not key=value"},
  };
  for (const auto& [spec, why] : cases) {
    const std::string message = spec_error(spec);
    EXPECT_NE(message.find("resource spec '" + spec + "'"), std::string::npos) << spec << " -> " << message;
    EXPECT_NE(message.find(why), std::string::npos) << spec << " -> " << message;
  }
}

TEST(ResourceSpec, BuildsEachKindOfStack) {
  SimulatedBackend backend({SimulatedDeviceSpec::parse("4GiB")});
  const std::vector<std::pair<std::string, std::size_t>> cases = {
      {"upstream", 1}, {"size-class", 2}, {"coalescing:initial=64MiB", 2}, {"pool", 2}, {"hybrid", 2}};
  for (const auto& [spec, layers] : cases) {
    const ResourceStack stack = make_resource_stack(spec, backend, 0, MemoryKind::Device);
    EXPECT_EQ(stack.size(), layers) << spec;
    MemoryResource& top = stack.top();
    EXPECT_EQ(top.device(), (DeviceId{BackendKind::Simulated, 0})) << spec;
    const Allocation small = top.allocate(1000);
    const Allocation large = top.allocate(8 * MiB);
    EXPECT_GE(top.usage().in_use_bytes, 1000 + 8 * MiB) << spec;
    top.deallocate(small);
    top.deallocate(large);
  }
  EXPECT_EQ(backend.live_segment_count(), 0U);
}

TEST(ResourceSpec, PoolRejectionsNameTheSpec) {
  SimulatedBackend backend({SimulatedDeviceSpec::parse("4GiB")});
  try {
    (void)make_resource_stack("coalescing:growth=0.5", backend, 0, MemoryKind::Device);
    ADD_FAILURE() << "a growth factor below 1 was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("resource spec 'coalescing:growth=0.5'"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW((void)make_resource_stack("upstream", backend, 3, MemoryKind::Device), InvalidArgument);
  EXPECT_EQ(backend.live_segment_count(), 0U);
}

}  // namespace
}  // namespace unimem
