#include "unimem/manager/memory_manager.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <mutex>
#include <new>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

#include "manager/manager_test_support.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/backend_resource.hpp"

namespace unimem {
namespace {

using test::kHost;
using test::kSim0;
using test::kSim1;
using test::manager_options;
using test::message_of;
using test::whole_device_config;

// ---- devices and configuration ----

TEST(MemoryManager, ManagesTheHostFirstAndEverySimulatedDevice) {
  MemoryManager manager(manager_options(whole_device_config(), {"sim:64MiB", "sim:32MiB:backed"}));
  const std::vector<DeviceId> devices = manager.devices();
  ASSERT_FALSE(devices.empty());
  EXPECT_EQ(devices.front(), kHost);
  EXPECT_NE(std::find(devices.begin(), devices.end(), kSim0), devices.end());
  EXPECT_NE(std::find(devices.begin(), devices.end(), kSim1), devices.end());
  EXPECT_EQ(manager.device_info(kSim1).memory.total_bytes, 32 * MiB);
  EXPECT_EQ(manager.registry().devices().size(), devices.size());
}

TEST(MemoryManager, DefaultDeviceIsTheFirstCudaThenOpenclThenSimulatedDevice) {
  MemoryManager manager(manager_options(whole_device_config(), {"sim:64MiB"}, std::nullopt));
  DeviceId expected = kSim0;
  for (const BackendKind kind : {BackendKind::OpenCL, BackendKind::Cuda}) {
    const Backend* backend = manager.registry().find(kind);
    if (backend != nullptr && backend->device_count() > 0) expected = DeviceId{kind, 0};
  }
  EXPECT_EQ(manager.default_device(), expected);
}

TEST(MemoryManager, DefaultDeviceFromTheOptionsIsValidated) {
  MemoryManager chosen(manager_options(whole_device_config(), {"sim:64MiB", "sim:64MiB"}, kSim1));
  EXPECT_EQ(chosen.default_device(), kSim1);
  const std::string message = message_of<InvalidArgument>([] {
    MemoryManager bad(manager_options(whole_device_config(), {}, DeviceId{BackendKind::Simulated, 5}));
  });
  EXPECT_NE(message.find("sim:5"), std::string::npos) << message;
}

TEST(MemoryManager, InvalidConfigIsRejectedNamingTheField) {
  const std::string message = message_of<InvalidArgument>(
      [] { MemoryManager bad(manager_options(MemoryConfig::defaults().with_gpu_memory_fraction(1.5))); });
  EXPECT_NE(message.find("gpu_memory_fraction"), std::string::npos) << message;
}

TEST(MemoryManager, PlatformIsInjectedOrDetected) {
  ManagerOptions options = manager_options(whole_device_config());
  options.platform = classify_platform("Linux version 5.15.90.1-microsoft-standard-WSL2 (gcc)");
  MemoryManager injected(options);
  EXPECT_EQ(injected.platform().visibility, MemoryVisibility::DeviceScopeOnly);

  MemoryManager detected(manager_options(whole_device_config()));
  EXPECT_EQ(detected.platform().name, detect_platform().name);
  EXPECT_EQ(detected.platform().visibility, detect_platform().visibility);
}

TEST(MemoryManager, UnknownDeviceIsRejectedNamingIt) {
  MemoryManager manager(manager_options(whole_device_config(), {"sim:64MiB"}));
  const DeviceId unknown{BackendKind::Simulated, 3};
  for (const std::string& message : {message_of<InvalidArgument>([&] { (void)manager.device_info(unknown); }),
                                     message_of<InvalidArgument>([&] { (void)manager.stats(unknown); }),
                                     message_of<InvalidArgument>([&] { (void)manager.pressure(unknown); }),
                                     message_of<InvalidArgument>([&] {
                                       (void)manager.allocate<int>(4, AllocationMode::Pooled, unknown);
                                     })}) {
    EXPECT_NE(message.find("sim:3"), std::string::npos) << message;
    EXPECT_NE(message.find("sim:0"), std::string::npos) << "lists the managed devices: " << message;
  }
}

// ---- limits ----

TEST(MemoryManager, DeviceLimitIsTheFractionOfTotalLessMinFree) {
  MemoryManager manager(manager_options(
      MemoryConfig::defaults().with_gpu_memory_fraction(0.5).with_min_free_bytes(64 * MiB), {"sim:1GiB"}));
  EXPECT_EQ(manager.limit(kSim0), 512 * MiB - 64 * MiB);
}

TEST(MemoryManager, MinFreeIsClampedToHalfTheShareOnSmallDevices) {
  MemoryManager manager(manager_options(
      MemoryConfig::defaults().with_gpu_memory_fraction(0.5).with_min_free_bytes(512 * MiB), {"sim:256MiB"}));
  EXPECT_EQ(manager.limit(kSim0), 64 * MiB);  // share 128 MiB, min_free clamped to 64 MiB
}

TEST(MemoryManager, HostLimitIsTotalLessMinFreeWithoutTheFraction) {
  MemoryManager manager(
      manager_options(MemoryConfig::defaults().with_gpu_memory_fraction(0.5).with_min_free_bytes(256 * MiB)));
  const std::size_t total = manager.device_info(kHost).memory.total_bytes;
  EXPECT_EQ(manager.limit(kHost), total - std::min(256 * MiB, total / 2));
}

TEST(MemoryManager, MemoryLimitCapsEveryDevice) {
  MemoryManager manager(manager_options(whole_device_config().with_memory_limit(4 * MiB), {"sim:1GiB"}));
  EXPECT_EQ(manager.limit(kHost), 4 * MiB);
  EXPECT_EQ(manager.limit(kSim0), 4 * MiB);
}

TEST(MemoryManager, LimitIsEnforcedWithFiguresWhenFallbackIsOff) {
  MemoryManager manager(manager_options(
      whole_device_config().with_cpu_fallback(false).with_memory_limit(64 * MiB), {"sim:1GiB"}));
  const Buffer<std::byte> held = manager.allocate<std::byte>(48 * MiB, AllocationMode::Pooled, kSim0);
  try {
    (void)manager.allocate<std::byte>(32 * MiB, AllocationMode::Pooled, kSim0);
    FAIL() << "allocated past the limit";
  } catch (const OutOfMemory& e) {
    EXPECT_EQ(e.requested(), 32 * MiB);
    EXPECT_EQ(e.device(), "sim:0");
    EXPECT_EQ(e.free_bytes(), 16 * MiB);
    EXPECT_EQ(e.total_bytes(), 64 * MiB);
    EXPECT_NE(std::string(e.what()).find("largest free range"), std::string::npos) << e.what();
  }
  EXPECT_EQ(held.size(), 48 * MiB);
}

// ---- allocation modes ----

TEST(MemoryManager, PooledBuffersComeBackFromThePool) {
  MemoryManager manager(manager_options(whole_device_config()));
  { const Buffer<float> first = manager.allocate<float>(1024); }
  const MemoryStats before = manager.stats(kHost);
  const Buffer<float> second = manager.allocate<float>(1024);
  const MemoryStats after = manager.stats(kHost);
  EXPECT_EQ(second.device(), kHost);
  EXPECT_EQ(after.allocation_count, before.allocation_count + 1);
  EXPECT_EQ(after.cache_hits, before.cache_hits + 1);
  EXPECT_EQ(after.upstream_allocations, before.upstream_allocations);
}

TEST(MemoryManager, UnpooledBuffersGoStraightToTheBackend) {
  MemoryManager manager(manager_options(whole_device_config()));
  const MemoryStats before = manager.stats(kHost);
  { const Buffer<float> b = manager.allocate<float>(1024, AllocationMode::Unpooled); }
  const MemoryStats after = manager.stats(kHost);
  EXPECT_EQ(after.upstream_allocations, before.upstream_allocations + 1);
  EXPECT_EQ(after.upstream_deallocations, before.upstream_deallocations + 1);
  EXPECT_EQ(after.pooled_bytes, before.pooled_bytes);
}

TEST(MemoryManager, PinnedAndUnifiedAreRefusedNamingTheDeviceWhereNotServed) {
  MemoryManager manager(manager_options(whole_device_config(), {"sim:64MiB"}));
  for (const auto& [mode, device] :
       {std::pair{AllocationMode::Pinned, kHost}, std::pair{AllocationMode::Unified, kSim0}}) {
    const std::string message =
        message_of<NotSupported>([&, m = mode, d = device] { (void)manager.allocate<int>(4, m, d); });
    EXPECT_NE(message.find(to_string(device)), std::string::npos) << message;
  }
}

TEST(MemoryManager, PinnedMemoryWhereADeviceServesIt) {
  MemoryManager manager(manager_options(whole_device_config()));
  const std::optional<DeviceId> device = test::device_serving(manager, MemoryKind::PinnedHost);
  if (!device) GTEST_SKIP() << "no managed device serves pinned host memory";
  Buffer<int> pinned = manager.allocate<int>(256, AllocationMode::Pinned, device);
  EXPECT_EQ(pinned.kind(), MemoryKind::PinnedHost);
  std::iota(pinned.host_span().begin(), pinned.host_span().end(), 0);
  EXPECT_EQ(pinned.to_vector()[255], 255);
  EXPECT_EQ(manager.stats(*device).active_buffers, 1U);
}

TEST(MemoryManager, UnifiedMemoryWhereADeviceServesIt) {
  MemoryManager manager(manager_options(whole_device_config()));
  const std::optional<DeviceId> device = test::device_serving(manager, MemoryKind::Unified);
  if (!device) GTEST_SKIP() << "no managed device serves unified memory";
  const Buffer<int> unified = manager.allocate<int>(256, AllocationMode::Unified, device);
  EXPECT_EQ(unified.kind(), MemoryKind::Unified);
  EXPECT_EQ(manager.stats(*device).active_buffers, 1U);
}

TEST(MemoryManager, ReleaseGivesTheMemoryBackAndRefusesForeignBuffers) {
  MemoryManager manager(manager_options(whole_device_config()));
  Buffer<int> b = manager.allocate<int>(64);
  EXPECT_EQ(manager.stats(kHost).active_buffers, 1U);
  manager.release(std::move(b));
  EXPECT_EQ(manager.stats(kHost).active_buffers, 0U);
  EXPECT_THROW(manager.release(std::move(b)), InvalidArgument);  // NOLINT(bugprone-use-after-move): empty now

  BackendResource foreign(manager.registry().host(), 0, MemoryKind::Device);
  Buffer<int> theirs(foreign, 64);
  const std::string message = message_of<InvalidArgument>([&] { manager.release(std::move(theirs)); });
  EXPECT_NE(message.find("did not come from this manager"), std::string::npos) << message;
  EXPECT_FALSE(theirs.empty());  // NOLINT(bugprone-use-after-move): refused, so left as it was
}

TEST(MemoryManager, TrimGivesCachedMemoryBack) {
  MemoryManager manager(manager_options(whole_device_config()));
  {
    const Buffer<std::byte> small = manager.allocate<std::byte>(4 * KiB);
    const Buffer<std::byte> large = manager.allocate<std::byte>(2 * MiB);
  }
  const std::size_t cached = manager.stats(kHost).pooled_bytes;
  EXPECT_GE(cached, 2 * MiB + 4 * KiB);
  EXPECT_EQ(manager.trim(), cached);
  EXPECT_EQ(manager.stats(kHost).pooled_bytes, 0U);
}

TEST(MemoryManager, TrimAtAPressureLevelTrimsOnlyDevicesAtOrAboveIt) {
  MemoryManager manager(manager_options(whole_device_config().with_cpu_fallback(false), {"sim:1GiB"}));
  const Buffer<std::byte> heavy = manager.allocate<std::byte>(700 * MiB, AllocationMode::Pooled, kSim0);
  { const Buffer<std::byte> cached = manager.allocate<std::byte>(8 * MiB, AllocationMode::Pooled, kSim0); }
  { const Buffer<std::byte> cached = manager.allocate<std::byte>(2 * MiB, AllocationMode::Pooled, kHost); }
  ASSERT_EQ(manager.pressure(kSim0), PressureLevel::Medium);
  ASSERT_EQ(manager.pressure(kHost), PressureLevel::Low);
  const std::size_t host_cached = manager.stats(kHost).pooled_bytes;
  ASSERT_GT(manager.stats(kSim0).pooled_bytes, 0U);

  EXPECT_GE(manager.trim(PressureLevel::Medium), 8 * MiB);
  EXPECT_EQ(manager.stats(kSim0).pooled_bytes, 0U);
  EXPECT_EQ(manager.stats(kHost).pooled_bytes, host_cached);
  EXPECT_EQ(manager.trim(kHost), host_cached);
  EXPECT_EQ(manager.stats(kHost).pooled_bytes, 0U);
}

// ---- statistics ----

TEST(MemoryManager, OverallStatsAreTheSumOfTheDevices) {
  MemoryManager manager(manager_options(whole_device_config(), {"sim:64MiB"}));
  const Buffer<float> on_host = manager.allocate<float>(1000);
  const Buffer<float> on_sim = manager.allocate<float>(3000, AllocationMode::Pooled, kSim0);
  const Buffer<float> unpooled = manager.allocate<float>(500, AllocationMode::Unpooled, kSim0);
  EXPECT_EQ(manager.stats(kHost).in_use_bytes, 4000U);
  EXPECT_EQ(manager.stats(kSim0).in_use_bytes, 14000U);
  EXPECT_EQ(manager.stats(kSim0).active_buffers, 2U);
  const MemoryStats all = manager.stats();
  EXPECT_EQ(all.in_use_bytes, 18000U);
  EXPECT_EQ(all.active_buffers, 3U);
  EXPECT_EQ(all.allocation_count, 3U);
}

// ---- pressure ----

using Transition = std::tuple<DeviceId, PressureLevel, PressureLevel>;

TEST(MemoryManager, PressureTransitionsReachTheCallbacks) {
  MemoryManager manager(manager_options(whole_device_config().with_cpu_fallback(false), {"sim:1GiB"}));
  std::mutex mutex;
  std::vector<Transition> seen;
  const std::uint64_t id = manager.on_pressure_change([&](DeviceId d, PressureLevel from, PressureLevel to) {
    const std::lock_guard lock(mutex);
    seen.emplace_back(d, from, to);
  });
  using enum PressureLevel;
  {
    const Buffer<std::byte> a = manager.allocate<std::byte>(650 * MiB, AllocationMode::Pooled, kSim0);
    EXPECT_EQ(manager.pressure(kSim0), Medium);
    const Buffer<std::byte> b = manager.allocate<std::byte>(200 * MiB, AllocationMode::Pooled, kSim0);
    EXPECT_EQ(manager.pressure(kSim0), High);
    const Buffer<std::byte> c = manager.allocate<std::byte>(130 * MiB, AllocationMode::Pooled, kSim0);
    EXPECT_EQ(manager.pressure(kSim0), Critical);
    EXPECT_EQ(manager.pressure(kHost), Low);
  }
  EXPECT_EQ(manager.pressure(kSim0), Low);
  const std::vector<Transition> expected = {{kSim0, Low, Medium},    {kSim0, Medium, High},
                                            {kSim0, High, Critical}, {kSim0, Critical, High},
                                            {kSim0, High, Medium},   {kSim0, Medium, Low}};
  EXPECT_EQ(seen, expected);

  EXPECT_TRUE(manager.remove_pressure_callback(id));
  EXPECT_FALSE(manager.remove_pressure_callback(id));
  { const Buffer<std::byte> again = manager.allocate<std::byte>(650 * MiB, AllocationMode::Pooled, kSim0); }
  EXPECT_EQ(seen.size(), expected.size());
  EXPECT_THROW((void)manager.on_pressure_change({}), InvalidArgument);
}

// Cached memory of a device under pressure: 64 KiB in the small-object pool, then a request that takes the
// device to High. What is left cached afterwards depends on trim_on_pressure.
std::size_t cached_after_high_pressure(bool trim_on_pressure) {
  MemoryManager manager(manager_options(
      whole_device_config().with_cpu_fallback(false).with_trim_on_pressure(trim_on_pressure), {"sim:1GiB"}));
  { const Buffer<std::byte> small = manager.allocate<std::byte>(64 * KiB, AllocationMode::Pooled, kSim0); }
  const Buffer<std::byte> heavy = manager.allocate<std::byte>(900 * MiB, AllocationMode::Pooled, kSim0);
  EXPECT_EQ(manager.pressure(kSim0), PressureLevel::High);
  return manager.stats(kSim0).pooled_bytes;
}

TEST(MemoryManager, TrimOnPressureGivesCachedMemoryBackAtHigh) {
  EXPECT_EQ(cached_after_high_pressure(false), 64 * KiB) << "the class's first chunk: one 64 KiB block";
  EXPECT_EQ(cached_after_high_pressure(true), 0U);
}

// ---- CPU fallback ----

TEST(MemoryManager, FullDeviceFallsBackToHostMemory) {
  MemoryManager manager(manager_options(whole_device_config(), {"sim:1MiB"}));
  ASSERT_EQ(manager.limit(kSim0), MiB);
  const Buffer<std::byte> fell = manager.allocate<std::byte>(2 * MiB, AllocationMode::Pooled, kSim0);
  EXPECT_EQ(fell.device(), kHost);
  EXPECT_EQ(location_of(fell.device(), fell.kind()), BufferLocation::Host);
  EXPECT_EQ(manager.stats(kSim0).fallbacks, 1U);
  EXPECT_EQ(manager.stats(kHost).in_use_bytes, 2 * MiB);

  const FallbackBuffer<std::byte> also = manager.allocate_with_fallback<std::byte>(2 * MiB, kSim0);
  EXPECT_TRUE(also.fell_back());
  EXPECT_TRUE(also.on_host());
  const FallbackBuffer<std::byte> fits = manager.allocate_with_fallback<std::byte>(64 * KiB, kSim0);
  EXPECT_FALSE(fits.fell_back());
  EXPECT_EQ(fits.location(), BufferLocation::Device);
  EXPECT_EQ(fits.device(), kSim0);
  EXPECT_EQ(manager.stats(kSim0).fallbacks, 2U);
  EXPECT_EQ(manager.stats().fallbacks, 2U);
}

TEST(MemoryManager, WithoutFallbackAFullDeviceIsOutOfMemory) {
  MemoryManager manager(manager_options(whole_device_config().with_cpu_fallback(false), {"sim:1MiB"}));
  try {
    (void)manager.allocate<std::byte>(2 * MiB, AllocationMode::Pooled, kSim0);
    FAIL() << "allocated 2 MiB on a 1 MiB device";
  } catch (const OutOfMemory& e) {
    EXPECT_EQ(e.requested(), 2 * MiB);
    EXPECT_EQ(e.device(), "sim:0");
    EXPECT_EQ(e.total_bytes(), MiB);
    EXPECT_NE(std::string(e.what()).find("largest free range"), std::string::npos) << e.what();
  }
  EXPECT_EQ(manager.stats(kSim0).fallbacks, 0U);
  const std::string message =
      message_of<NotSupported>([&] { (void)manager.allocate_with_fallback<int>(4, kSim0); });
  EXPECT_NE(message.find("cpu_fallback_enabled"), std::string::npos) << message;
}

TEST(MemoryManager, TheHostHasNoFallback) {
  MemoryManager manager(manager_options(whole_device_config()));
  const std::string message =
      message_of<NotSupported>([&] { (void)manager.allocate_with_fallback<int>(4, kHost); });
  EXPECT_NE(message.find("host:0"), std::string::npos) << message;
}

TEST(MemoryManager, FragmentationOutOfMemoryShowsTheLargestFreeRange) {
  // One 64 MiB segment filled by eight 8 MiB buffers; freeing every other one leaves 32 MiB free in 8 MiB
  // pieces, so a 16 MiB request fails under the limit.
  MemoryManager manager(manager_options(whole_device_config()
                                            .with_cpu_fallback(false)
                                            .with_pool_growth(64 * MiB, 2.0, 0)
                                            .with_large_pool(LargePoolKind::Coalescing),
                                        {"sim:64MiB"}));
  const std::vector<Buffer<std::byte>> pieces = test::shatter_pool(manager, kSim0);
  try {
    (void)manager.allocate<std::byte>(16 * MiB, AllocationMode::Pooled, kSim0);
    FAIL() << "a 16 MiB range was found among 8 MiB holes";
  } catch (const OutOfMemory& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.requested(), 16 * MiB);
    EXPECT_NE(what.find("largest free range " + std::to_string(8 * MiB) + " bytes"), std::string::npos)
        << what;
    EXPECT_NE(what.find("fragmentation 0.75"), std::string::npos) << what;
  }
}

TEST(MemoryManager, AnExpandablePoolServesWhatFragmentationRefusedACoalescingOne) {
  // The same eight 8 MiB buffers with every other one freed: the expandable pool maps the 16 MiB request
  // past them (or into coalesced holes) instead of failing.
  MemoryManager manager(manager_options(whole_device_config().with_cpu_fallback(false), {"sim:64MiB"}));
  EXPECT_EQ(manager.large_pool_kind(kSim0), LargePoolKind::Expandable);
  const std::vector<Buffer<std::byte>> pieces = test::shatter_pool(manager, kSim0);
  const Buffer<std::byte> served = manager.allocate<std::byte>(16 * MiB, AllocationMode::Pooled, kSim0);
  EXPECT_EQ(served.device(), kSim0);
  MemoryManager coalescing(
      manager_options(whole_device_config().with_large_pool(LargePoolKind::Coalescing), {"sim:64MiB"}));
  EXPECT_EQ(coalescing.large_pool_kind(kSim0), LargePoolKind::Coalescing);
}

// ---- importing host data ----

TEST(MemoryManager, ImportToTheHostIsZeroCopy) {
  MemoryManager manager(manager_options(whole_device_config()));
  std::vector<int> data(100);
  std::iota(data.begin(), data.end(), 0);
  const std::uint64_t allocations = manager.stats().allocation_count;
  ImportedBuffer<int> imported = manager.import_host<int>(data, kHost);
  EXPECT_TRUE(imported.zero_copy());
  EXPECT_EQ(imported.device(), kHost);
  EXPECT_EQ(imported.host_data().data(), data.data());
  EXPECT_EQ(imported.host_segment().host_ptr, reinterpret_cast<std::byte*>(data.data()));
  EXPECT_EQ(imported.host_segment().size, data.size() * sizeof(int));
  EXPECT_THROW((void)imported.device_buffer(), NotSupported);
  imported.copy_back();
  EXPECT_EQ(data[99], 99);
  EXPECT_EQ(manager.stats().allocation_count, allocations);
}

TEST(MemoryManager, ImportToADeviceCopiesAndCopiesBack) {
  MemoryManager manager(manager_options(whole_device_config(), {"sim:16MiB:backed"}));
  std::vector<int> data(100);
  std::iota(data.begin(), data.end(), 0);
  ImportedBuffer<int> imported = manager.import_host<int>(data, kSim0);
  EXPECT_FALSE(imported.zero_copy());
  EXPECT_EQ(imported.device(), kSim0);
  EXPECT_EQ(imported.device_buffer().to_vector(), data);
  EXPECT_EQ(manager.stats(kSim0).active_buffers, 1U);

  const std::vector<int> results(100, 7);
  imported.device_buffer().copy_from_host(results);
  EXPECT_EQ(data[0], 0);
  imported.copy_back();
  EXPECT_EQ(data, results);
}

TEST(MemoryManager, ImportOfNothingIsInvalid) {
  MemoryManager manager(manager_options(whole_device_config()));
  std::vector<int> empty;
  EXPECT_THROW((void)manager.import_host<int>(empty), InvalidArgument);
}

// ---- backend selection ----

int preference(BackendKind kind) {
  switch (kind) {
    case BackendKind::Cuda:
      return 0;
    case BackendKind::OpenCL:
      return 1;
    case BackendKind::Simulated:
      return 2;
    case BackendKind::Host:
      return 3;
  }
  return 4;
}

TEST(MemoryManager, SelectionTakesTheMostPreferredDeviceWithRoom) {
  MemoryManager manager(manager_options(whole_device_config().with_cpu_fallback(false), {"sim:1GiB"}));
  const BackendSelection selected = manager.select_backend_for_model(256 * MiB);
  EXPECT_NE(selected.backend, BackendKind::Host);
  EXPECT_EQ(selected.backend, selected.device.backend);
  EXPECT_GE(selected.available_bytes, 256 * MiB);
  for (const DeviceId d : manager.devices()) {
    if (preference(d.backend) < preference(selected.backend)) {
      EXPECT_LT(manager.available_bytes(d), 256 * MiB);
    }
  }

  const Buffer<std::byte> fill = manager.allocate<std::byte>(900 * MiB, AllocationMode::Pooled, kSim0);
  EXPECT_EQ(manager.available_bytes(kSim0), 124 * MiB);
  EXPECT_NE(manager.select_backend_for_model(256 * MiB).device, kSim0);
  EXPECT_EQ(manager.select_backend_for_model(100 * MiB).backend == BackendKind::Simulated,
            selected.device == kSim0);
}

TEST(MemoryManager, SelectionFailsNamingTheDeviceWithTheMostRoom) {
  MemoryManager manager(manager_options(whole_device_config(), {"sim:1GiB"}));
  const std::size_t huge = std::size_t{1} << 50U;
  try {
    (void)manager.select_backend_for_model(huge);
    FAIL() << "a 1 PiB model was placed";
  } catch (const OutOfMemory& e) {
    EXPECT_EQ(e.requested(), huge);
    const std::vector<DeviceId> devices = manager.devices();
    const auto named =
        std::find_if(devices.begin(), devices.end(), [&](DeviceId d) { return to_string(d) == e.device(); });
    ASSERT_NE(named, devices.end()) << e.what();
    EXPECT_EQ(e.total_bytes(), manager.limit(*named));
    EXPECT_LE(e.free_bytes(), e.total_bytes());
  }
  EXPECT_THROW((void)manager.select_backend_for_model(0), InvalidArgument);
}

// ---- leaks ----

TEST(MemoryManager, LeakCheckCountsLiveUnnamedAllocations) {
  MemoryManager manager(manager_options(whole_device_config(), {"sim:64MiB"}));
  EXPECT_TRUE(manager.check_leaks().clean());
  Buffer<float> a = manager.allocate<float>(100);
  const Buffer<float> b = manager.allocate<float>(50, AllocationMode::Pooled, kSim0);
  const LeakReport report = manager.check_leaks();
  EXPECT_FALSE(report.clean());
  ASSERT_EQ(report.unnamed.size(), 2U);
  EXPECT_EQ(report.unnamed[0].device, kHost);
  EXPECT_EQ(report.unnamed[0].count, 1U);
  EXPECT_EQ(report.unnamed[0].bytes, 400U);
  EXPECT_EQ(report.unnamed[1].device, kSim0);
  EXPECT_NE(manager.leak_report().find("1 unnamed allocation(s) of 200 bytes"), std::string::npos)
      << manager.leak_report();
  a = Buffer<float>();
  EXPECT_EQ(manager.check_leaks().unnamed.size(), 1U);
}

TEST(MemoryManager, TrackingAddsOneLinePerAllocationToTheLeakReport) {
  MemoryManager manager(manager_options(whole_device_config().with_tracking(true)));
  const Buffer<float> a = manager.allocate<float>(100);
  EXPECT_NE(manager.leak_report().find("host:0 pooled allocations"), std::string::npos)
      << manager.leak_report();
  MemoryManager untracked(manager_options(whole_device_config().with_tracking(false)));
  const Buffer<float> b = untracked.allocate<float>(100);
  EXPECT_EQ(untracked.leak_report().find("pooled allocations"), std::string::npos) << untracked.leak_report();
}

TEST(MemoryManager, DestroyingTheManagerWithLiveBuffersReportsThem) {
  std::vector<std::string> reports;
  const ScopedMisuseHandler capture([&](std::string_view message) { reports.emplace_back(message); });
  // An unnamed buffer must not outlive the manager; this one is never destroyed, and lives on an unbacked
  // device, so that no memory is lost with it.
  alignas(Buffer<int>) std::byte storage[sizeof(Buffer<int>)];
  {
    MemoryManager manager(manager_options(whole_device_config(), {"sim:64MiB"}));
    (void)manager.named().create<int>("still_here", 16);
    new (storage) Buffer<int>(manager.allocate<int>(16, AllocationMode::Pooled, kSim0));
  }
  ASSERT_FALSE(reports.empty());
  EXPECT_NE(reports.front().find("MemoryManager destroyed with live buffers"), std::string::npos)
      << reports.front();
  EXPECT_NE(reports.front().find("'still_here'"), std::string::npos) << reports.front();
  EXPECT_NE(reports.front().find("1 unnamed allocation(s) of 64 bytes"), std::string::npos)
      << reports.front();
  EXPECT_NE(reports.front().find("live on sim:0"), std::string::npos) << reports.front();
}

}  // namespace
}  // namespace unimem
