#include "unimem/transfer/transfer_engine.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "transfer/transfer_fixture.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem::test {
namespace {

// Small chunks, so that a 1 MiB copy runs the staging pipeline through several buffers and wraps around them.
TransferEngineOptions small_chunks() {
  TransferEngineOptions options;
  options.chunk_bytes = 256 * KiB;
  return options;
}

TransferEngine& shared_engine() {
  // The engine holds staging memory of the shared backends: the registry must be constructed first, so that
  // it is destroyed after the engine.
  (void)shared_registry();
  static TransferEngine engine(small_chunks());
  return engine;
}

struct CopyCase {
  std::size_t size;
  std::size_t src_offset;
  std::size_t dst_offset;
};

// Odd sizes and offsets: one byte, a few, just under a KiB, just over a MiB (five staging chunks).
constexpr CopyCase kCases[] = {{1, 0, 0}, {3, 5, 0}, {1023, 0, 17}, {MiB + 7, 4099, 131}};
constexpr std::size_t kSlack = 64;  // bytes after the copied range that must stay untouched

// Copies `c.size` bytes between the two locations through `engine` and checks every byte of the destination:
// the copied range equals the source's, and the bytes before and after it are what they were.
void check_copy(TransferEngine& engine, const Location& from, const Location& to, const CopyCase& c,
                const TransferOptions& options = {}) {
  std::string why;
  const auto src = TestMemory::make(from, c.src_offset + c.size + kSlack, why);
  const auto dst = TestMemory::make(to, c.dst_offset + c.size + kSlack, why);
  if (src == nullptr || dst == nullptr) GTEST_SKIP() << why;
  const std::vector<std::byte> source = pattern(src->segment().size, 1);
  std::vector<std::byte> expected = pattern(dst->segment().size, 2);
  src->write(source);
  dst->write(expected);
  engine.copy(dst->endpoint(c.dst_offset), src->endpoint(c.src_offset), c.size, options);
  std::copy_n(source.begin() + static_cast<long>(c.src_offset), c.size,
              expected.begin() + static_cast<long>(c.dst_offset));
  const std::vector<std::byte> actual = dst->read();
  EXPECT_EQ(first_difference(actual, expected), -1)
      << c.size << " bytes from " << from.label << "+" << c.src_offset << " to " << to.label << "+"
      << c.dst_offset << " with strategy " << to_string(options.strategy);
}

class EveryPair : public ::testing::TestWithParam<std::tuple<Location, Location>> {};

TEST_P(EveryPair, CopiesEveryByteAtOddSizesAndOffsets) {
  const auto& [from, to] = GetParam();
  for (const CopyCase& c : kCases) {
    check_copy(shared_engine(), from, to, c);
    if (IsSkipped() || HasFailure()) return;
  }
}

TEST_P(EveryPair, EveryStrategyThatAcceptsThePairCopiesEveryByte) {
  const auto& [from, to] = GetParam();
  std::string why;
  const auto src = TestMemory::make(from, 64, why);
  const auto dst = TestMemory::make(to, 64, why);
  if (src == nullptr || dst == nullptr) GTEST_SKIP() << why;
  const TransferStrategy chosen = shared_engine().choose_strategy(dst->endpoint(), src->endpoint());
  bool chosen_accepted = false;
  for (const TransferStrategy strategy : kAllTransferStrategies) {
    if (strategy == TransferStrategy::Auto) continue;
    try {
      shared_engine().copy(dst->endpoint(), src->endpoint(), 1, TransferOptions{strategy});
    } catch (const NotSupported& refused) {
      EXPECT_NE(strategy, chosen) << "the automatic choice refused: " << refused.what();
      EXPECT_NE(std::string(refused.what()).find(std::string(to_string(strategy))), std::string::npos)
          << refused.what();
      continue;
    }
    chosen_accepted = chosen_accepted || strategy == chosen;
    check_copy(shared_engine(), from, to, kCases[3], TransferOptions{strategy});
    check_copy(shared_engine(), from, to, kCases[1], TransferOptions{strategy});
  }
  EXPECT_TRUE(chosen_accepted) << to_string(chosen);
}

std::string pair_name(const ::testing::TestParamInfo<std::tuple<Location, Location>>& info) {
  return std::string(std::get<0>(info.param).label) + "_to_" + std::get<1>(info.param).label;
}

INSTANTIATE_TEST_SUITE_P(Locations, EveryPair,
                         ::testing::Combine(::testing::ValuesIn(locations()),
                                            ::testing::ValuesIn(locations())),
                         pair_name);

TEST(TransferEngine, ChoosesTheStrategyFromWhereTheBytesAre) {
  struct Expectation {
    const char* from;
    const char* to;
    TransferStrategy strategy;
  };
  // Pageable memory is staged for an OpenCL device unless its memory is host RAM (PoCL's CPU devices).
  std::string no_opencl;
  const Backend* opencl = backend_serving(BackendKind::OpenCL, 0, MemoryKind::Device, no_opencl);
  const TransferStrategy pageable_opencl =
      opencl != nullptr && opencl->device_info(0).capabilities.host_unified_memory
          ? TransferStrategy::Direct
          : TransferStrategy::PinnedStaging;
  // Two such devices copy directly too; others stage through the host (OpenCL has no peer access).
  const TransferStrategy between_opencl_devices =
      opencl != nullptr && opencl->device_count() > 1 &&
              opencl->device_info(0).capabilities.host_unified_memory &&
              opencl->device_info(1).capabilities.host_unified_memory
          ? TransferStrategy::Direct
          : TransferStrategy::HostStaged;
  const Expectation expectations[] = {
      {"pageable", "pageable", TransferStrategy::Direct},
      {"pageable", "host_memory", TransferStrategy::Direct},
      {"pageable", "sim0", TransferStrategy::Direct},  // no pinned memory to stage through
      {"sim0", "sim0", TransferStrategy::DeviceLocal},
      {"sim0", "sim1", TransferStrategy::HostStaged},  // no peer access
      {"pageable", "opencl0_device", pageable_opencl},
      {"opencl0_device", "host_memory", pageable_opencl},
      {"opencl0_pinned", "opencl0_device", TransferStrategy::Direct},
      {"opencl0_device", "opencl0_unified", TransferStrategy::Direct},
      {"opencl1_pinned", "opencl0_device", TransferStrategy::Direct},
      {"opencl0_device", "opencl0_device", TransferStrategy::DeviceLocal},
      {"opencl0_device", "opencl1_device", between_opencl_devices},
      {"opencl0_device", "sim0", TransferStrategy::HostStaged},
      {"opencl0_pinned", "opencl0_unified", TransferStrategy::Direct},
  };
  int checked = 0;
  for (const Expectation& e : expectations) {
    std::string why;
    const auto src = TestMemory::make(location(e.from), 16, why);
    const auto dst = TestMemory::make(location(e.to), 16, why);
    if (src == nullptr || dst == nullptr) continue;
    EXPECT_EQ(shared_engine().choose_strategy(dst->endpoint(), src->endpoint()), e.strategy)
        << e.from << " -> " << e.to << ": "
        << to_string(shared_engine().choose_strategy(dst->endpoint(), src->endpoint()));
    ++checked;
  }
  EXPECT_GE(checked, 5) << "host and simulated rows always run";
}

TEST(TransferEngine, MovesHalfAGigabyteBetweenHostAndAnOpenCLDeviceIntact) {
  std::string why;
  Backend* opencl = backend_serving(BackendKind::OpenCL, 0, MemoryKind::Device, why);
  if (opencl == nullptr) GTEST_SKIP() << why;
  constexpr std::size_t kBytes = 500 * 1000 * 1000;
  constexpr std::size_t kWords = kBytes / sizeof(std::uint64_t);
  std::vector<std::uint64_t> source(kWords);
  for (std::size_t i = 0; i < kWords; ++i) source[i] = i * 0x9E3779B97F4A7C15ULL;
  std::vector<std::uint64_t> back(kWords, 0);
  const Segment device = opencl->allocate(0, MemoryKind::Device, kBytes);
  TransferEngine engine;
  // Forced: PoCL's devices would get Direct, and this is the staging pipeline's test.
  const TransferOptions staged{TransferStrategy::PinnedStaging};
  engine.copy(TransferEndpoint::from(device), TransferEndpoint::host(std::span<const std::uint64_t>(source)),
              kBytes, staged);
  engine.copy(TransferEndpoint::host(std::span(back)), TransferEndpoint::from(device), kBytes, staged);
  opencl->deallocate(device);
  EXPECT_TRUE(source == back) << "the 500 MB came back different";
  const TransferStatistics stats = engine.statistics();
  EXPECT_EQ(stats[TransferStrategy::PinnedStaging].transfers, 2U);
  EXPECT_EQ(stats[TransferStrategy::PinnedStaging].bytes, 2 * kBytes);
}

TEST(TransferEngine, CountsBytesTransfersAndBusyTimePerStrategy) {
  TransferEngine engine;
  std::vector<std::byte> a = pattern(4096, 3);
  std::vector<std::byte> b(4096);
  std::string why;
  const auto sim = TestMemory::make(location("sim0"), 4096, why);
  ASSERT_NE(sim, nullptr) << why;
  engine.copy(TransferEndpoint::host(std::span(b)), TransferEndpoint::host(std::span<const std::byte>(a)),
              100);
  engine.copy(sim->endpoint(), TransferEndpoint::host(std::span<const std::byte>(a)), 4096);
  engine.copy(sim->endpoint(1000), sim->endpoint(), 3000);
  const TransferStatistics stats = engine.statistics();
  EXPECT_EQ(stats[TransferStrategy::Direct].transfers, 2U);
  EXPECT_EQ(stats[TransferStrategy::Direct].bytes, 4196U);
  EXPECT_EQ(stats[TransferStrategy::DeviceLocal].transfers, 1U);
  EXPECT_EQ(stats[TransferStrategy::DeviceLocal].bytes, 3000U);
  EXPECT_EQ(stats[TransferStrategy::PinnedStaging].transfers, 0U);
  EXPECT_EQ(stats.transfers(), 3U);
  EXPECT_EQ(stats.bytes(), 7196U);
  EXPECT_EQ(stats.failures(), 0U);
  EXPECT_GT(stats[TransferStrategy::Direct].busy_seconds, 0.0);
  EXPECT_GT(stats[TransferStrategy::Direct].bandwidth(), 0.0);
  EXPECT_EQ(stats[TransferStrategy::Peer].bandwidth(), 0.0);
  EXPECT_EQ(stats.max_in_flight, 1U);
  engine.reset_statistics();
  EXPECT_EQ(engine.statistics().transfers(), 0U);
}

TEST(TransferEngine, RefusesBadRequestsNamingTheValues) {
  TransferEngine engine;
  std::vector<std::byte> data(100);
  const std::vector<std::byte> constant(100);
  const TransferEndpoint out = TransferEndpoint::host(std::span(data));
  const TransferEndpoint in = TransferEndpoint::host(std::span<const std::byte>(constant));
  EXPECT_NE(message_of<InvalidArgument>([&] { engine.copy(out, in, 0); }).find("0 bytes"), std::string::npos);
  EXPECT_NE(message_of<InvalidArgument>([&] { engine.copy(out, in, 101); }).find("101 bytes"),
            std::string::npos);
  EXPECT_NE(message_of<InvalidArgument>([&] { engine.copy(in, out, 10); }).find("read-only"),
            std::string::npos);
  EXPECT_NE(message_of<InvalidArgument>([&] { engine.copy(TransferEndpoint{}, in, 10); }).find("empty"),
            std::string::npos);
  TransferEndpoint forged = out;
  forged.offset = 90;  // a window of 100 bytes from byte 90 of a 100-byte segment
  EXPECT_NE(message_of<InvalidArgument>([&] { engine.copy(forged, in, 10); }).find("runs past"),
            std::string::npos);
  const std::string refused =
      message_of<NotSupported>([&] { engine.copy(out, in, 10, TransferOptions{TransferStrategy::Peer}); });
  EXPECT_NE(refused.find("peer"), std::string::npos) << refused;
  EXPECT_NE(refused.find("host view"), std::string::npos) << refused;
  EXPECT_EQ(engine.statistics().transfers() + engine.statistics().failures(), 0U) << "nothing ran";
}

TEST(TransferEngine, RefusesOptionsOutsideTheirRange) {
  TransferEngineOptions no_turns;
  no_turns.max_concurrent_transfers = 0;
  EXPECT_THROW(TransferEngine{no_turns}, InvalidArgument);
  TransferEngineOptions no_chunk;
  no_chunk.chunk_bytes = 0;
  EXPECT_THROW(TransferEngine{no_chunk}, InvalidArgument);
  TransferEngineOptions deep;
  deep.pipeline_depth = 9;
  EXPECT_NE(message_of<InvalidArgument>([&] { TransferEngine engine(deep); }).find("9"), std::string::npos);
  TransferEngineOptions null_staging;
  null_staging.staging_resources.push_back(nullptr);
  EXPECT_THROW(TransferEngine{null_staging}, InvalidArgument);
}

TEST(TransferEngine, AnUnpipelinedEngineCopiesTheSameBytes) {
  TransferEngineOptions options;
  options.chunk_bytes = 64 * KiB;
  options.pipeline_depth = 1;
  TransferEngine engine(options);
  for (const char* device : {"opencl0_device", "sim0"}) {
    check_copy(engine, location("pageable"), location(device), kCases[3]);
    check_copy(engine, location(device), location("pageable"), kCases[3]);
    check_copy(engine, location(device), location("sim1"), kCases[3]);
  }
}

}  // namespace
}  // namespace unimem::test
