// Asynchronous transfers, batches, callbacks, the concurrency limit, and failures (no staging buffer leaks).
// These run under ThreadSanitizer too.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "transfer/transfer_fixture.hpp"
#include "unimem/core/error.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/resource/fault_injection_adaptor.hpp"
#include "unimem/transfer/transfer_engine.hpp"

namespace unimem::test {
namespace {

using namespace std::chrono_literals;

// Holds every transfer that reaches it until opened, counting how many are held at once.
class Gate {
 public:
  void pass() {
    std::unique_lock lock(mutex_);
    ++held_;
    changed_.notify_all();
    changed_.wait(lock, [this] { return open_; });
    --held_;
  }
  void open() {
    const std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  // Waits (up to 10 s) until `count` transfers are held; returns how many are.
  std::size_t wait_for_held(std::size_t count) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, 10s, [&] { return held_ >= count; });
    return held_;
  }
  std::size_t held() {
    const std::lock_guard lock(mutex_);
    return held_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t held_ = 0;
  bool open_ = false;
};

TransferEngineOptions gated(Gate& gate, std::size_t limit) {
  TransferEngineOptions options;
  options.max_concurrent_transfers = limit;
  options.before_transfer = [&gate] { gate.pass(); };
  return options;
}

TEST(TransferEngineAsync, RunsAtMostTheLimitAtOnceAndQueuesTheRest) {
  Gate gate;
  TransferEngine engine(gated(gate, 3));
  constexpr std::size_t kTransfers = 20;
  const std::vector<std::byte> source = pattern(kTransfers * 1000, 4);
  std::vector<std::byte> target(source.size());
  std::vector<TransferFuture> futures;
  for (std::size_t i = 0; i < kTransfers; ++i) {
    futures.push_back(engine.copy_async(TransferEndpoint::host_bytes(target.data() + i * 1000, 1000),
                                        TransferEndpoint::host_bytes(source.data() + i * 1000, 1000), 1000));
  }
  ASSERT_EQ(gate.wait_for_held(3), 3U);
  std::this_thread::sleep_for(50ms);  // a fourth transfer would have started by now
  EXPECT_EQ(gate.held(), 3U);
  TransferStatistics stats = engine.statistics();
  EXPECT_EQ(stats.in_flight, 3U);
  EXPECT_EQ(stats.queued, kTransfers - 3);
  for (TransferFuture& f : futures) EXPECT_FALSE(f.ready());
  gate.open();
  for (TransferFuture& f : futures) f.wait();
  stats = engine.statistics();
  EXPECT_EQ(stats.max_in_flight, 3U);
  EXPECT_EQ(stats.in_flight, 0U);
  EXPECT_EQ(stats[TransferStrategy::Direct].transfers, kTransfers);
  EXPECT_EQ(first_difference(target, source), -1);
}

TEST(TransferEngineAsync, SynchronousCopiesWaitForATurnToo) {
  Gate gate;
  TransferEngine engine(gated(gate, 1));
  std::vector<std::byte> a(64);
  std::vector<std::byte> b(64);
  const std::vector<std::byte> c = pattern(64, 5);
  TransferFuture held =
      engine.copy_async(TransferEndpoint::host(std::span(a)), TransferEndpoint::host(std::span(c)), 64);
  ASSERT_EQ(gate.wait_for_held(1), 1U);
  std::atomic<bool> copied{false};
  std::thread sync([&] {
    engine.copy(TransferEndpoint::host(std::span(b)), TransferEndpoint::host(std::span(c)), 64);
    copied = true;
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(copied.load()) << "the synchronous copy ran past the limit of 1";
  EXPECT_EQ(gate.held(), 1U);
  gate.open();
  sync.join();
  held.wait();
  EXPECT_TRUE(copied.load());
  EXPECT_EQ(engine.statistics().max_in_flight, 1U);
  EXPECT_EQ(first_difference(a, c), -1);
  EXPECT_EQ(first_difference(b, c), -1);
}

// What each callback was told, and how often it ran.
class CallbackLog {
 public:
  explicit CallbackLog(std::size_t n) : calls_(n, 0), errors_(n) {}
  TransferCallback callback(std::size_t id) {
    return [this, id](std::exception_ptr error) {
      const std::lock_guard lock(mutex_);
      ++calls_[id];
      errors_[id] = std::move(error);
    };
  }
  int calls(std::size_t id) {
    const std::lock_guard lock(mutex_);
    return calls_[id];
  }
  std::exception_ptr error(std::size_t id) {
    const std::lock_guard lock(mutex_);
    return errors_[id];
  }

 private:
  std::mutex mutex_;
  std::vector<int> calls_;
  std::vector<std::exception_ptr> errors_;
};

TEST(TransferEngineAsync, CallsEachCallbackExactlyOnceWithItsOutcome) {
  std::string why;
  const auto unbacked = TestMemory::make(kUnbackedSim, 4096, why);
  ASSERT_NE(unbacked, nullptr) << why;
  constexpr std::size_t kCount = 40;
  CallbackLog log(kCount);
  const std::vector<std::byte> source = pattern(kCount * 256, 6);
  std::vector<std::byte> target(source.size());
  {
    TransferEngine engine;
    for (std::size_t i = 0; i < kCount; ++i) {
      // Every fifth goes to the unbacked device, whose copies throw NotSupported.
      const TransferEndpoint to =
          i % 5 == 4 ? unbacked->endpoint() : TransferEndpoint::host_bytes(target.data() + i * 256, 256);
      engine.then(engine.copy_async(to, TransferEndpoint::host_bytes(source.data() + i * 256, 256), 256),
                  log.callback(i));
    }
  }  // the engine delivers every callback before it is gone
  for (std::size_t i = 0; i < kCount; ++i) {
    EXPECT_EQ(log.calls(i), 1) << "callback " << i;
    if (i % 5 == 4) {
      EXPECT_THROW(std::rethrow_exception(log.error(i)), NotSupported) << "callback " << i;
    } else {
      EXPECT_EQ(log.error(i), nullptr) << "callback " << i;
      EXPECT_TRUE(std::equal(source.begin() + static_cast<long>(i * 256),
                             source.begin() + static_cast<long>(i * 256 + 256),
                             target.begin() + static_cast<long>(i * 256)))
          << "transfer " << i;
    }
  }
}

TEST(TransferEngineAsync, AFailedTransferReportsThroughItsFuture) {
  std::string why;
  const auto unbacked = TestMemory::make(kUnbackedSim, 4096, why);
  ASSERT_NE(unbacked, nullptr) << why;
  TransferEngine engine;
  const std::vector<std::byte> source = pattern(4096, 7);
  TransferFuture future = engine.copy_async(unbacked->endpoint(),
                                            TransferEndpoint::host(std::span<const std::byte>(source)), 4096);
  const std::string message = [&] {
    try {
      future.wait();
    } catch (const NotSupported& e) {
      return std::string(e.what());
    }
    return std::string("nothing thrown");
  }();
  EXPECT_NE(message.find("unbacked"), std::string::npos) << message;
  EXPECT_THROW(future.wait(), NotSupported) << "the failure stays with the future";
  EXPECT_EQ(engine.statistics()[TransferStrategy::Direct].failures, 1U);
  EXPECT_EQ(engine.statistics()[TransferStrategy::Direct].transfers, 0U);
}

TEST(TransferEngineAsync, AFailedStagedTransferGivesEveryStagingBufferBack) {
  std::string why;
  const auto device = TestMemory::make(location("opencl0_device"), 3 * MiB, why);
  const auto unbacked = TestMemory::make(kUnbackedSim, 3 * MiB, why);
  if (device == nullptr || unbacked == nullptr) GTEST_SKIP() << why;
  Backend& opencl = *device->segment().owner;
  const std::size_t baseline = opencl.live_segment_count();
  TransferEngineOptions options;
  options.chunk_bytes = MiB;
  TransferEngine engine(options);
  // opencl:0 -> unbacked sim: staged through opencl:0's pinned buffers; the upload of the first chunk throws.
  EXPECT_EQ(engine.choose_strategy(unbacked->endpoint(), device->endpoint()), TransferStrategy::HostStaged);
  EXPECT_THROW(engine.copy(unbacked->endpoint(), device->endpoint(), 3 * MiB), NotSupported);
  TransferFuture future = engine.copy_async(unbacked->endpoint(), device->endpoint(), 3 * MiB);
  EXPECT_THROW(future.wait(), NotSupported);
  EXPECT_EQ(engine.staging_buffers_leased(), 0U);
  EXPECT_EQ(engine.statistics()[TransferStrategy::HostStaged].failures, 2U);
  EXPECT_GT(opencl.live_segment_count(), baseline) << "the staging buffers are kept for reuse";
  EXPECT_EQ(engine.staging_buffers_idle(), engine.options().pipeline_depth);
  EXPECT_EQ(engine.trim(), engine.options().pipeline_depth * MiB);
  EXPECT_EQ(engine.staging_buffers_idle(), 0U);
  EXPECT_EQ(opencl.live_segment_count(), baseline);
}

TEST(TransferEngineAsync, AStagingAllocationThatFailsLeaksNothing) {
  std::string why;
  Backend* opencl = backend_serving(BackendKind::OpenCL, 0, MemoryKind::PinnedHost, why);
  if (opencl == nullptr) GTEST_SKIP() << why;
  BackendResource pinned(*opencl, 0, MemoryKind::PinnedHost);
  FaultInjectionOptions faults;
  faults.fail_every_nth = 1;  // every staging buffer fails
  FaultInjectionAdaptor failing(pinned, faults);
  TransferEngineOptions options;
  options.chunk_bytes = 64 * KiB;
  options.staging_resources.push_back(&failing);
  const std::vector<std::byte> source = pattern(MiB, 8);
  const auto device = TestMemory::make(location("opencl0_device"), MiB, why);
  ASSERT_NE(device, nullptr) << why;
  device->write(std::vector<std::byte>(MiB));
  // Forced: PoCL's devices keep their memory in host RAM, so Auto would copy them directly. (A buffer that
  // fails mid-pipeline, the second of a transfer, is in transfer_strategy_choice_test.cpp.)
  const TransferOptions staged{TransferStrategy::PinnedStaging};
  {
    TransferEngine engine(options);
    EXPECT_THROW(engine.copy(device->endpoint(), TransferEndpoint::host(std::span<const std::byte>(source)),
                             MiB, staged),
                 OutOfMemory);
    EXPECT_EQ(engine.staging_buffers_leased(), 0U);
    EXPECT_EQ(failing.injected_faults(), 1U);
    EXPECT_EQ(pinned.live_allocations(), 0U);
    EXPECT_EQ(first_difference(device->read(), std::vector<std::byte>(MiB)), -1) << "no byte moved";
  }
  options.staging_resources = {&pinned};
  {
    TransferEngine engine(options);
    engine.copy(device->endpoint(), TransferEndpoint::host(std::span<const std::byte>(source)), MiB, staged);
    EXPECT_EQ(first_difference(device->read(), source), -1);
    EXPECT_EQ(engine.staging_buffers_leased(), 0U);
    EXPECT_EQ(pinned.live_allocations(), 1U) << "the pool keeps its buffer for reuse";
  }
  EXPECT_EQ(pinned.live_allocations(), 0U) << "the engine gave its staging buffers back";
}

TEST(TransferEngineAsync, ABatchIsOneHandleOverAllItsCopies) {
  std::string why;
  const auto sim = TestMemory::make(location("sim0"), 64 * KiB, why);
  ASSERT_NE(sim, nullptr) << why;
  const std::vector<std::byte> source = pattern(64 * KiB, 9);
  std::vector<std::byte> back(64 * KiB);
  TransferEngine engine;
  std::vector<TransferRequest> uploads;
  for (std::size_t i = 0; i < 16; ++i) {
    uploads.push_back(TransferRequest{sim->endpoint(i * 4 * KiB),
                                      TransferEndpoint::host_bytes(source.data() + i * 4 * KiB, 4 * KiB),
                                      4 * KiB,
                                      {}});
  }
  TransferFuture batch = engine.copy_batch_async(uploads);
  batch.wait();
  engine.copy_batch(
      {TransferRequest{TransferEndpoint::host(std::span(back)), sim->endpoint(), 64 * KiB, {}}});
  EXPECT_EQ(first_difference(back, source), -1);
  EXPECT_EQ(engine.statistics().transfers(), 17U);
}

TEST(TransferEngineAsync, ABatchFailsWithItsFirstFailureAndRunsTheRest) {
  std::string why;
  const auto unbacked = TestMemory::make(kUnbackedSim, 4096, why);
  ASSERT_NE(unbacked, nullptr) << why;
  const std::vector<std::byte> source = pattern(4096, 10);
  std::vector<std::byte> target(4096);
  TransferEngine engine;
  const TransferEndpoint from = TransferEndpoint::host(std::span<const std::byte>(source));
  TransferFuture batch =
      engine.copy_batch_async({TransferRequest{unbacked->endpoint(), from, 4096, {}},
                               TransferRequest{TransferEndpoint::host(std::span(target)), from, 4096, {}}});
  EXPECT_THROW(batch.wait(), NotSupported);
  EXPECT_EQ(first_difference(target, source), -1);
  EXPECT_EQ(engine.statistics().transfers(), 1U);
  EXPECT_EQ(engine.statistics().failures(), 1U);
}

TEST(TransferEngineAsync, ABadRequestInABatchRunsNothing) {
  TransferEngine engine;
  std::vector<std::byte> target(100);
  const std::vector<std::byte> source = pattern(100, 11);
  const TransferEndpoint to = TransferEndpoint::host(std::span(target));
  const TransferEndpoint from = TransferEndpoint::host(std::span<const std::byte>(source));
  const std::string message = message_of<InvalidArgument>([&] {
    (void)engine.copy_batch_async({TransferRequest{to, from, 100, {}}, TransferRequest{to, from, 0, {}}});
  });
  EXPECT_NE(message.find("request 1 of 2"), std::string::npos) << message;
  EXPECT_THROW((void)engine.copy_batch_async({}), InvalidArgument);
  EXPECT_EQ(engine.statistics().transfers(), 0U);
  EXPECT_EQ(target, std::vector<std::byte>(100));
  EXPECT_THROW(engine.then(TransferFuture{}, TransferCallback{}), InvalidArgument);
}

TEST(TransferEngineAsync, ManyThreadsShareOneEngine) {
  std::string why;
  const auto sim = TestMemory::make(location("sim0"), 4 * 64 * KiB, why);
  ASSERT_NE(sim, nullptr) << why;
  const auto opencl = TestMemory::make(location("opencl0_device"), 4 * 64 * KiB, why);
  TransferEngineOptions options;
  options.chunk_bytes = 16 * KiB;
  options.max_concurrent_transfers = 2;
  TransferEngine engine(options);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (std::size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const std::vector<std::byte> mine = pattern(64 * KiB, static_cast<std::uint32_t>(20 + t));
      std::vector<std::byte> back(64 * KiB);
      for (int round = 0; round < 5; ++round) {
        const bool on_opencl = opencl != nullptr && t % 2 == 1;
        TestMemory* device = on_opencl ? opencl.get() : sim.get();
        const TransferEndpoint slot = device->endpoint(t * 64 * KiB);
        // Every other round on OpenCL goes through the staging pipeline (Auto may copy PoCL's devices
        // directly).
        const TransferOptions how{on_opencl && round % 2 == 1 ? TransferStrategy::PinnedStaging
                                                              : TransferStrategy::Auto};
        engine.copy(slot, TransferEndpoint::host(std::span<const std::byte>(mine)), 64 * KiB, how);
        engine.copy_async(TransferEndpoint::host(std::span(back)), slot, 64 * KiB, how).wait();
        if (back != mine) ++mismatches;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_LE(engine.statistics().max_in_flight, 2U);
  EXPECT_EQ(engine.statistics().transfers(), 40U);
  EXPECT_EQ(engine.staging_buffers_leased(), 0U);
}

}  // namespace
}  // namespace unimem::test
