#include "unimem/transfer/ring_buffer_bridge.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <numeric>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "transfer/transfer_fixture.hpp"
#include "unimem/backend/host_backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/resource/backend_resource.hpp"

namespace unimem::test {
namespace {

struct RingCase {
  const char* label;
  const char* device;  // a location() label
  RingTransferMode mode;
};

void PrintTo(const RingCase& c, std::ostream* out) {
  *out << c.label;
}

// The resources of one case: the device's memory and a host ring (the device's pinned memory where it has
// some), or one unified resource.
class OnEveryMode : public ::testing::TestWithParam<RingCase> {
 protected:
  void SetUp() override {
    const Location& where = location(GetParam().device);
    std::string why;
    Backend* backend = backend_serving(where.backend, where.device, where.kind, why);
    if (backend == nullptr) GTEST_SKIP() << why;
    device_ = std::make_unique<BackendResource>(*backend, where.device, where.kind);
    host_ = backend->supports(where.device, MemoryKind::PinnedHost)
                ? std::make_unique<BackendResource>(*backend, where.device, MemoryKind::PinnedHost)
                : std::make_unique<BackendResource>(host_backend_, 0, MemoryKind::Device);
  }

  [[nodiscard]] std::unique_ptr<RingBufferBridge<std::int32_t>> make(std::size_t capacity) const {
    if (GetParam().mode == RingTransferMode::Unified) {
      return std::make_unique<RingBufferBridge<std::int32_t>>(*device_, capacity);
    }
    return std::make_unique<RingBufferBridge<std::int32_t>>(*host_, *device_, capacity, GetParam().mode);
  }

  HostBackend host_backend_;
  std::unique_ptr<BackendResource> device_;
  std::unique_ptr<BackendResource> host_;
};

std::vector<std::int32_t> values(std::int32_t first, std::size_t count) {
  std::vector<std::int32_t> v(count);
  std::iota(v.begin(), v.end(), first);
  return v;
}

TEST_P(OnEveryMode, AFlushThatWrapsAroundTheEndLandsInTwoPieces) {
  const auto ring = make(8);
  ring->push(values(100, 5));  // positions 0..4
  EXPECT_EQ(ring->pending(), 5U);
  EXPECT_EQ(ring->flush_to_device(), 5U);
  ring->wait();
  EXPECT_EQ(ring->free_space(), 8U);
  ring->push(values(200, 6));  // positions 5, 6, 7, then 0, 1, 2
  EXPECT_EQ(ring->flush_to_device(), 6U);
  ring->wait();
  std::vector<std::int32_t> device(8);
  ring->pull_from_device(device, 0);
  EXPECT_EQ(device, (std::vector<std::int32_t>{203, 204, 205, 103, 104, 200, 201, 202}));
  std::vector<std::int32_t> wrapped(4);
  ring->pull_from_device(wrapped, 6);  // positions 6, 7, 0, 1
  EXPECT_EQ(wrapped, (std::vector<std::int32_t>{201, 202, 203, 204}));
  const RingTransferCounters counters = ring->counters();
  EXPECT_EQ(counters.flushes, 2U);
  EXPECT_EQ(counters.wrapped_flushes, 1U);
  EXPECT_EQ(counters.bytes_to_device, 11 * sizeof(std::int32_t));
  EXPECT_EQ(counters.copies_to_device, GetParam().mode == RingTransferMode::Unified ? 0U : 3U);
  EXPECT_EQ(counters.pulls, 2U);
  EXPECT_EQ(counters.bytes_from_device, 12 * sizeof(std::int32_t));
  EXPECT_EQ(counters.copies_from_device, 3U);
  EXPECT_EQ(ring->flush_to_device(), 0U) << "nothing pending";
}

TEST_P(OnEveryMode, RefusesPushesPastTheFreeSpaceAndBadPulls) {
  const auto ring = make(4);
  ring->push(values(1, 3));
  const std::string full = message_of<InvalidArgument>([&] { ring->push(values(4, 2)); });
  EXPECT_NE(full.find("push of 2 elements with 1 free"), std::string::npos) << full;
  EXPECT_NE(full.find("3 pending"), std::string::npos) << full;
  EXPECT_EQ(ring->pending(), 3U) << "a refused push pushes nothing";
  EXPECT_THROW(ring->push(std::span<const std::int32_t>()), InvalidArgument);
  std::vector<std::int32_t> out(5);
  EXPECT_THROW(ring->pull_from_device(out, 0), InvalidArgument) << "more than the capacity";
  std::vector<std::int32_t> one(1);
  EXPECT_NE(message_of<InvalidArgument>([&] { ring->pull_from_device(one, 4); }).find("position 4"),
            std::string::npos);
  (void)ring->flush_to_device();
  ring->wait();
  ring->push(values(9, 4));
  EXPECT_EQ(ring->free_space(), 0U);
}

TEST_P(OnEveryMode, ProducersPushWhileAnotherThreadFlushes) {
  const auto ring = make(64);
  constexpr int kPerProducer = 2000;
  std::atomic<int> producers_done{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < 2; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer;) {
        const std::int32_t item = p * kPerProducer + i;
        if (ring->try_push(item)) {
          ++i;
        } else {
          std::this_thread::yield();
        }
      }
      ++producers_done;
    });
  }
  std::size_t flushed = 0;
  while (producers_done.load() < 2 || ring->pending() != 0) {
    flushed += ring->flush_to_device();
    (void)ring->poll();
  }
  for (std::thread& t : producers) t.join();
  ring->wait();
  EXPECT_EQ(flushed, 2U * kPerProducer);
  EXPECT_EQ(ring->counters().bytes_to_device, 2U * kPerProducer * sizeof(std::int32_t));
  EXPECT_EQ(ring->free_space(), 64U);
}

const RingCase kCases[] = {
    {"host_synchronous", "host_memory", RingTransferMode::Synchronous},
    {"sim_synchronous", "sim0", RingTransferMode::Synchronous},
    {"sim_async_stream", "sim0", RingTransferMode::AsyncStream},
    {"opencl_synchronous", "opencl0_device", RingTransferMode::Synchronous},
    {"opencl_async_stream", "opencl0_device", RingTransferMode::AsyncStream},
    {"opencl_dma_polling", "opencl1_device", RingTransferMode::DmaPolling},
    {"opencl_unified", "opencl0_unified", RingTransferMode::Unified},
    {"cuda_async_stream", "cuda_device", RingTransferMode::AsyncStream},
    {"cuda_unified", "cuda_unified", RingTransferMode::Unified},
};

INSTANTIATE_TEST_SUITE_P(Modes, OnEveryMode, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<RingCase>& param) {
                           return std::string(param.param.label);
                         });

TEST(RingBufferBridge, RefusesBadSetups) {
  HostBackend host;
  BackendResource host_memory(host, 0, MemoryKind::Device);
  std::string why;
  Backend* sim = backend_serving(BackendKind::Simulated, 0, MemoryKind::Device, why);
  ASSERT_NE(sim, nullptr) << why;
  BackendResource device(*sim, 0, MemoryKind::Device);
  EXPECT_NE(message_of<InvalidArgument>([&] {
              RingBufferBridge<float> ring(host_memory, device, 0);
            }).find("capacity of 0"),
            std::string::npos);
  EXPECT_THROW(RingBufferBridge<float>(host_memory, device, 4, RingTransferMode::Unified), InvalidArgument);
  EXPECT_NE(
      message_of<NotSupported>([&] { RingBufferBridge<float> ring(device, device, 4); }).find("host-visible"),
      std::string::npos);
  EXPECT_NE(message_of<NotSupported>([&] { RingBufferBridge<float> ring(device, 4); }).find("unified"),
            std::string::npos);
}

TEST(RingBufferBridge, AFailedFlushLeavesItsElementsPending) {
  HostBackend host;
  BackendResource host_memory(host, 0, MemoryKind::Device);
  std::string why;
  Backend* sim = backend_serving(BackendKind::Simulated, kUnbackedSimDevice, MemoryKind::Device, why);
  ASSERT_NE(sim, nullptr) << why;
  BackendResource unbacked(*sim, kUnbackedSimDevice, MemoryKind::Device);
  RingBufferBridge<std::int32_t> ring(host_memory, unbacked, 16);
  ring.push(values(0, 10));
  EXPECT_THROW((void)ring.flush_to_device(), NotSupported);
  EXPECT_EQ(ring.pending(), 10U);
  EXPECT_EQ(ring.counters().flushes, 0U);
}

}  // namespace
}  // namespace unimem::test
