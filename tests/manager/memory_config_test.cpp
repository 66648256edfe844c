#include "unimem/manager/memory_config.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem {
namespace {

std::string error_of(const std::string& text) {
  try {
    (void)MemoryConfig::parse(text);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "no error";
}

TEST(MemoryConfig, DefaultsAreTheDocumentedOnes) {
  const MemoryConfig c = MemoryConfig::defaults();
  EXPECT_DOUBLE_EQ(c.gpu_memory_fraction, 0.9);
  EXPECT_TRUE(c.cpu_fallback_enabled);
  EXPECT_EQ(c.min_free_bytes, 512 * MiB);
  EXPECT_EQ(c.max_pooled_per_bucket, 8U);
#ifdef NDEBUG
  EXPECT_FALSE(c.track_allocations);
#else
  EXPECT_TRUE(c.track_allocations);
#endif
  EXPECT_NO_THROW(c.validate());
}

TEST(MemoryConfig, PresetsDifferWhereTheySayTheyDo) {
  const MemoryConfig d = MemoryConfig::defaults();
  const MemoryConfig inference = MemoryConfig::for_inference();
  const MemoryConfig constrained = MemoryConfig::for_constrained();
  EXPECT_GT(inference.gpu_memory_fraction, d.gpu_memory_fraction);
  EXPECT_GT(inference.initial_pool_bytes, d.initial_pool_bytes);
  EXPECT_GT(inference.max_pooled_per_bucket, d.max_pooled_per_bucket);
  EXPECT_LT(constrained.gpu_memory_fraction, d.gpu_memory_fraction);
  EXPECT_LT(constrained.max_pooled_per_bucket, d.max_pooled_per_bucket);
  EXPECT_TRUE(constrained.trim_on_pressure);
  EXPECT_FALSE(inference.trim_on_pressure);
  EXPECT_NO_THROW(inference.validate());
  EXPECT_NO_THROW(constrained.validate());
}

TEST(MemoryConfig, BuilderChains) {
  const MemoryConfig c = MemoryConfig::defaults()
                             .with_gpu_memory_fraction(0.8)
                             .with_cpu_fallback(false)
                             .with_memory_limit(4 * GiB)
                             .with_pool_growth(GiB, 1.5, 8 * GiB)
                             .with_max_pooled_per_bucket(4)
                             .with_tracking(true)
                             .with_min_free_bytes(0)
                             .with_trim_on_pressure(true);
  EXPECT_DOUBLE_EQ(c.gpu_memory_fraction, 0.8);
  EXPECT_FALSE(c.cpu_fallback_enabled);
  EXPECT_EQ(c.memory_limit_bytes, 4 * GiB);
  EXPECT_EQ(c.initial_pool_bytes, GiB);
  EXPECT_DOUBLE_EQ(c.pool_growth_factor, 1.5);
  EXPECT_EQ(c.max_pool_bytes, 8 * GiB);
  EXPECT_EQ(c.max_pooled_per_bucket, 4U);
  EXPECT_TRUE(c.track_allocations);
  EXPECT_EQ(c.min_free_bytes, 0U);
  EXPECT_TRUE(c.trim_on_pressure);
}

TEST(MemoryConfig, ValidationNamesTheField) {
  auto message = [](const MemoryConfig& c) -> std::string {
    try {
      c.validate();
    } catch (const InvalidArgument& e) {
      return e.what();
    }
    return "valid";
  };
  EXPECT_NE(message(MemoryConfig{}.with_gpu_memory_fraction(0)).find("gpu_memory_fraction = 0"),
            std::string::npos);
  EXPECT_NE(message(MemoryConfig{}.with_gpu_memory_fraction(1.01)).find("gpu_memory_fraction"),
            std::string::npos);
  EXPECT_NE(message(MemoryConfig{}.with_gpu_memory_fraction(-0.5)).find("-0.5"), std::string::npos);
  EXPECT_EQ(message(MemoryConfig{}.with_gpu_memory_fraction(1.0)), "valid");
  EXPECT_NE(message(MemoryConfig{}.with_pool_growth(0, 0.5, 0)).find("pool_growth_factor"),
            std::string::npos);
  EXPECT_NE(message(MemoryConfig{}.with_memory_limit(std::size_t{1} << 60U)).find("memory_limit_bytes"),
            std::string::npos);
  EXPECT_NE(message(MemoryConfig{}.with_max_pooled_per_bucket(5000)).find("max_pooled_per_bucket"),
            std::string::npos);
  EXPECT_NE(message(MemoryConfig{}.with_pool_growth(2 * GiB, 2, GiB)).find("max_pool_bytes"),
            std::string::npos);
}

TEST(MemoryConfig, ParsesTheEnvironmentFormat) {
  const MemoryConfig c = MemoryConfig::parse(
      "fraction=0.8, fallback=off,min_free=1GiB,track=on,max_pooled_per_bucket=16,"
      "limit=6GiB,initial_pool=256MiB,growth=1.5,max_pool=4GiB,trim_on_pressure=yes");
  EXPECT_DOUBLE_EQ(c.gpu_memory_fraction, 0.8);
  EXPECT_FALSE(c.cpu_fallback_enabled);
  EXPECT_EQ(c.min_free_bytes, GiB);
  EXPECT_TRUE(c.track_allocations);
  EXPECT_EQ(c.max_pooled_per_bucket, 16U);
  EXPECT_EQ(c.memory_limit_bytes, 6 * GiB);
  EXPECT_EQ(c.initial_pool_bytes, 256 * MiB);
  EXPECT_DOUBLE_EQ(c.pool_growth_factor, 1.5);
  EXPECT_EQ(c.max_pool_bytes, 4 * GiB);
  EXPECT_TRUE(c.trim_on_pressure);
  EXPECT_EQ(MemoryConfig::parse(""), MemoryConfig::defaults());
}

TEST(MemoryConfig, PresetKeyAppliesFirst) {
  const MemoryConfig c = MemoryConfig::parse("growth=1.5,preset=constrained");
  EXPECT_DOUBLE_EQ(c.pool_growth_factor, 1.5);
  EXPECT_EQ(c.max_pooled_per_bucket, MemoryConfig::for_constrained().max_pooled_per_bucket);
}

TEST(MemoryConfig, ToStringRoundTrips) {
  for (const MemoryConfig& c :
       {MemoryConfig::defaults(), MemoryConfig::for_inference(), MemoryConfig::for_constrained(),
        MemoryConfig::defaults().with_gpu_memory_fraction(0.123456789).with_memory_limit(12345)}) {
    EXPECT_EQ(MemoryConfig::parse(c.to_string()), c) << c.to_string();
  }
}

TEST(MemoryConfig, RejectsBadInputByName) {
  EXPECT_NE(error_of("fraction=0.8,colour=blue").find("unknown key 'colour'"), std::string::npos);
  EXPECT_NE(error_of("fraction=abc").find("fraction='abc'"), std::string::npos);
  EXPECT_NE(error_of("fraction=1.5").find("gpu_memory_fraction"), std::string::npos);
  EXPECT_NE(error_of("fallback=maybe").find("fallback='maybe'"), std::string::npos);
  EXPECT_NE(error_of("min_free=-5").find("min_free"), std::string::npos);
  EXPECT_NE(error_of("limit=12XB").find("limit"), std::string::npos);
  EXPECT_NE(error_of("max_pooled_per_bucket=-1").find("max_pooled_per_bucket='-1'"), std::string::npos);
  EXPECT_NE(error_of("fraction").find("'fraction' is not key=value"), std::string::npos);
  EXPECT_NE(error_of("fraction=0.5,fraction=0.6").find("twice"), std::string::npos);
  EXPECT_NE(error_of("preset=turbo").find("preset='turbo'"), std::string::npos);
  EXPECT_NE(error_of("granule=3MiB").find("pool_granule = 3145728 bytes is not a power of two"),
            std::string::npos);
  EXPECT_EQ(error_of("granule=4MiB"), "no error");
}

TEST(MemoryConfig, ReadsUnimemConfFromTheEnvironment) {
  ASSERT_EQ(setenv("UNIMEM_CONF", "fraction=0.7,fallback=off", 1), 0);
  const MemoryConfig c = MemoryConfig::from_environment();
  EXPECT_DOUBLE_EQ(c.gpu_memory_fraction, 0.7);
  EXPECT_FALSE(c.cpu_fallback_enabled);
  ASSERT_EQ(setenv("UNIMEM_CONF", "bogus=1", 1), 0);
  EXPECT_THROW((void)MemoryConfig::from_environment(), InvalidArgument);
  ASSERT_EQ(unsetenv("UNIMEM_CONF"), 0);
  EXPECT_EQ(MemoryConfig::from_environment(MemoryConfig::for_inference()), MemoryConfig::for_inference());
}

}  // namespace
}  // namespace unimem
