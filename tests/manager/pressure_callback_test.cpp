// Pressure callbacks run with no unimem mutex held: from inside one, every read-only query of the manager
// works, whichever kind of allocation or free changed the level. A callback that deadlocks fails the test
// through the watchdog instead of hanging the suite.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "manager/manager_test_support.hpp"
#include "unimem/core/size.hpp"
#include "unimem/manager/memory_manager.hpp"

namespace unimem {
namespace {

using test::kSim0;
using test::manager_options;
using test::whole_device_config;

// Runs `action` on another thread; a deadlock ends the test program with a message after 30 s.
void within_watchdog(const std::function<void()>& action, const char* what) {
  std::packaged_task<void()> task(action);
  std::future<void> done = task.get_future();
  std::thread runner(std::move(task));
  if (done.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    std::fprintf(stderr, "FATAL: '%s' did not finish in 30 s: a pressure callback deadlocked\n", what);
    std::_Exit(1);
  }
  runner.join();
  done.get();
}

// Every read-only query a callback may want, each of which takes one of the manager's locks.
void query_everything(const MemoryManager& manager, DeviceId device) {
  (void)manager.stats();
  (void)manager.stats(device);
  (void)manager.pressure(device);
  (void)manager.check_leaks();
  (void)manager.leak_report();
  (void)manager.named().contains("weights");
  (void)manager.named().count();
  (void)manager.named().bytes();
  (void)manager.named().peak_bytes();
  (void)manager.named().allocation_count();
  (void)manager.named().resize_count();
  (void)manager.named().async_transfer_count();
  (void)manager.available_bytes(device);
  (void)manager.limit(device);
  (void)manager.devices();
  (void)manager.device_info(device);
  (void)manager.select_backend_for_model(KiB);
}

class PressureCallbackQueries : public ::testing::Test {
 protected:
  PressureCallbackQueries()
      : manager_(manager_options(whole_device_config().with_tracking(true), {"sim:64MiB:backed"}, kSim0)) {
    manager_.on_pressure_change(
        [this](DeviceId device, PressureLevel /*previous*/, PressureLevel /*current*/) {
          query_everything(manager_, device);
          ++changes_;
        });
  }
  ~PressureCallbackQueries() override { test::free_named_buffers(manager_); }
  PressureCallbackQueries(const PressureCallbackQueries&) = delete;
  PressureCallbackQueries& operator=(const PressureCallbackQueries&) = delete;
  PressureCallbackQueries(PressureCallbackQueries&&) = delete;
  PressureCallbackQueries& operator=(PressureCallbackQueries&&) = delete;

  // 40 MiB of a 64 MiB device is Medium pressure. The device is backed so that a growth can copy.
  static constexpr std::size_t kMediumFloats = 40 * MiB / sizeof(float);

  MemoryManager manager_;
  int changes_ = 0;
};

TEST_F(PressureCallbackQueries, FromAnUnnamedAllocationAndItsFree) {
  within_watchdog([&] { const Buffer<float> big = manager_.allocate<float>(kMediumFloats); },
                  "unnamed allocate and free");  // the buffer is freed at the end of the action
  EXPECT_EQ(changes_, 2);
}

TEST_F(PressureCallbackQueries, FromANamedAllocationAndItsFree) {
  within_watchdog(
      [&] {
        manager_.named().create<float>("weights", kMediumFloats);
        manager_.named().free("weights");
      },
      "named allocate and free");
  EXPECT_EQ(changes_, 2);
}

TEST_F(PressureCallbackQueries, FromANamedBufferThatGrows) {
  within_watchdog(
      [&] {
        manager_.named().create<float>("weights", MiB / sizeof(float), BufferConfig::growable());
        (void)manager_.named().grow<float>("weights", kMediumFloats);
        EXPECT_EQ(manager_.named().resize_count(), 1U);
      },
      "named growth");
  EXPECT_GE(changes_, 1);
}

TEST_F(PressureCallbackQueries, ACallbackMayMakeNamedBufferCallsToo) {
  manager_.on_pressure_change([this](DeviceId /*device*/, PressureLevel /*previous*/, PressureLevel current) {
    if (current >= PressureLevel::Medium && !manager_.named().contains("scratch")) {
      manager_.named().create<float>("scratch", 16);
    }
  });
  within_watchdog([&] { manager_.named().create<float>("weights", kMediumFloats); },
                  "named call from a callback");
  EXPECT_TRUE(manager_.named().contains("scratch"));
}

}  // namespace
}  // namespace unimem
