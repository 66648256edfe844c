#include "unimem/buffer/buffer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "buffer/buffer_fixture.hpp"
#include "unimem/backend/host_backend.hpp"
#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem {
namespace {

using test::contains;
using test::message_of;
using test::ramp;

class BufferOnEveryTarget : public test::OnEveryTarget {};

TEST_P(BufferOnEveryTarget, RoundTripsAndDescribesItself) {
  const std::vector<std::int32_t> values = ramp<std::int32_t>(1000, -500);
  Buffer<std::int32_t> buffer(resource(), values.size());
  buffer.copy_from_host(values);
  EXPECT_EQ(buffer.to_vector(), values);

  EXPECT_EQ(buffer.size(), 1000U);
  EXPECT_EQ(buffer.bytes(), 4000U);
  EXPECT_EQ(buffer.allocation().size, 4000U);
  EXPECT_EQ(buffer.device(), (DeviceId{GetParam().backend, GetParam().device}));
  EXPECT_EQ(buffer.kind(), GetParam().kind);
  EXPECT_EQ(&buffer.resource(), &resource());
  EXPECT_EQ(buffer.backend(), &backend());
  EXPECT_TRUE(is_aligned(buffer.allocation().offset, alignof(std::int32_t)));
}

TEST_P(BufferOnEveryTarget, CopiesPartsAtOffsets) {
  Buffer<double> buffer(resource(), 100);
  buffer.zero();
  const std::vector<double> part = ramp<double>(10, 0.5);
  buffer.copy_from_host(part, 90);
  buffer.copy_from_host(std::span(part).first(3), 0);

  std::vector<double> tail(10);
  buffer.copy_to_host(tail, 90);
  EXPECT_EQ(tail, part);
  std::vector<double> all = buffer.to_vector();
  EXPECT_EQ(all[0], 0.5);
  EXPECT_EQ(all[2], 2.5);
  EXPECT_EQ(all[3], 0.0);
  EXPECT_EQ(all[89], 0.0);
  EXPECT_EQ(all[99], part[9]);
}

TEST_P(BufferOnEveryTarget, FillsWithAnyValueAndZeroes) {
  // More elements than one fill block (1 MiB), so that a pattern fill takes several copies.
  constexpr std::size_t kCount = 300'000;
  Buffer<float> buffer(resource(), kCount);
  buffer.fill(1.5F);  // bytes 00 00 c0 3f: a pattern, not one repeated byte
  std::vector<float> out = buffer.to_vector();
  EXPECT_EQ(std::count(out.begin(), out.end(), 1.5F), static_cast<std::ptrdiff_t>(kCount));

  buffer.zero();
  out = buffer.to_vector();
  EXPECT_EQ(std::count(out.begin(), out.end(), 0.0F), static_cast<std::ptrdiff_t>(kCount));

  Buffer<std::uint32_t> words(resource(), 77);
  words.fill(0xABABABABU);  // one repeated byte: a single memset
  for (const std::uint32_t w : words.to_vector()) ASSERT_EQ(w, 0xABABABABU);
}

TEST_P(BufferOnEveryTarget, HostSpanExactlyWhenHostVisible) {
  Buffer<std::uint16_t> buffer(resource(), 64);
  const bool host_visible = GetParam().kind != MemoryKind::Device || GetParam().backend == BackendKind::Host;
  EXPECT_EQ(buffer.host_visible(), host_visible);
  if (host_visible) {
    std::span<std::uint16_t> span = buffer.host_span();
    ASSERT_EQ(span.size(), 64U);
    for (std::size_t i = 0; i < span.size(); ++i) span[i] = static_cast<std::uint16_t>(i * 3);
    EXPECT_EQ(buffer.to_vector()[21], 63U);
    const Buffer<std::uint16_t>& read_only = buffer;
    EXPECT_EQ(read_only.host_span()[5], 15U);
  } else {
    const std::string message = message_of<NotSupported>([&] { (void)buffer.host_span(); });
    EXPECT_TRUE(contains(message, to_string(buffer.device()))) << message;
    EXPECT_TRUE(contains(message, "device memory")) << message;
    EXPECT_TRUE(contains(message, "not host-visible")) << message;
  }
}

TEST_P(BufferOnEveryTarget, FreesOnDestructionAndOnMove) {
  {
    Buffer<char> a(resource(), 10);
    EXPECT_EQ(resource().live_allocations(), 1U);
    Buffer<char> b(std::move(a));
    EXPECT_EQ(resource().live_allocations(), 1U);
    EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from buffers are empty by contract
    EXPECT_EQ(b.size(), 10U);
    b = Buffer<char>(resource(), 20);  // frees the 10
    EXPECT_EQ(resource().live_allocations(), 1U);
    EXPECT_EQ(b.size(), 20U);
    const std::string message = message_of<InvalidArgument>([&] { a.zero(); });
    EXPECT_TRUE(contains(message, "empty")) << message;
  }
  EXPECT_EQ(resource().live_allocations(), 0U);
  EXPECT_EQ(resource().usage().in_use_bytes, 0U);
}

TEST_P(BufferOnEveryTarget, ViewsWindowsAndReinterpretsRawBytes) {
  Buffer<std::byte> bytes(resource(), 64);
  bytes.zero();
  BufferView<float> floats = bytes.as<float>();
  ASSERT_EQ(floats.size(), 16U);
  const std::vector<float> values = {1.0F, -2.0F, 3.5F};
  floats.view(4, 3).copy_from_host(values);
  const std::vector<float> all = floats.to_vector();
  EXPECT_EQ(all[3], 0.0F);
  EXPECT_EQ(all[4], 1.0F);
  EXPECT_EQ(all[6], 3.5F);
  EXPECT_EQ(all[7], 0.0F);
  std::vector<std::byte> raw = bytes.to_vector();
  float fourth = 0.0F;
  std::memcpy(&fourth, raw.data() + 5 * sizeof(float), sizeof fourth);
  EXPECT_EQ(fourth, -2.0F);

  // Typed memory reads back as bytes, never as another type.
  EXPECT_EQ(floats.as<std::byte>().size(), 64U);
  const std::string message = message_of<TypeMismatch>([&] { (void)floats.as<std::int32_t>(); });
  EXPECT_TRUE(contains(message, "float")) << message;
  EXPECT_TRUE(contains(message, "int")) << message;
  EXPECT_THROW((void)bytes.view(60, 4).as<double>(), InvalidArgument);  // 4 bytes are not a double
  EXPECT_THROW((void)bytes.view(1, 8).as<float>(), InvalidArgument);    // misaligned
}

TEST_P(BufferOnEveryTarget, AsyncCopiesMatchSyncCopies) {
  const std::vector<std::int64_t> values = ramp<std::int64_t>(4096, 7);
  Buffer<std::int64_t> buffer(resource(), values.size());
  TransferFuture upload = buffer.copy_from_host_async(values);
  upload.wait();
  ASSERT_NE(buffer.stream(), nullptr) << "the buffer orders its work on its own stream after async use";

  std::vector<std::int64_t> async_out(values.size());
  TransferFuture download = buffer.copy_to_host_async(async_out);
  download.wait();
  EXPECT_TRUE(download.ready());
  EXPECT_EQ(async_out, values);
  EXPECT_EQ(buffer.to_vector(), async_out);

  // On a stream the caller owns.
  std::unique_ptr<Stream> stream = backend().create_stream(GetParam().device);
  std::vector<std::int64_t> half(values.size() / 2);
  TransferFuture second_half = buffer.copy_to_host_async(half, *stream, half.size());
  second_half.wait();
  EXPECT_TRUE(
      std::equal(half.begin(), half.end(), values.begin() + static_cast<std::ptrdiff_t>(half.size())));
}

TEST_P(BufferOnEveryTarget, RejectsRangesPastTheEnd) {
  Buffer<float> buffer(resource(), 100);
  std::vector<float> host(101);
  std::string message = message_of<InvalidArgument>([&] { buffer.copy_from_host(host); });
  EXPECT_TRUE(contains(message, "101 elements at offset 0")) << message;
  EXPECT_TRUE(contains(message, "100 float")) << message;

  message = message_of<InvalidArgument>([&] { buffer.copy_to_host(std::span(host).first(10), 95); });
  EXPECT_TRUE(contains(message, "10 elements at offset 95")) << message;
  EXPECT_TRUE(contains(message, "room for 5")) << message;

  message = message_of<InvalidArgument>([&] { buffer.copy_from_host(std::span(host).first(0), 101); });
  EXPECT_TRUE(contains(message, "offset 101 is past the end")) << message;

  std::unique_ptr<Stream> stream = backend().create_stream(GetParam().device);
  EXPECT_THROW((void)buffer.copy_to_host_async(host, *stream), InvalidArgument);
  EXPECT_THROW((void)buffer.view(90, 11), InvalidArgument);
  EXPECT_THROW((void)buffer.view(0, 0), InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Backends, BufferOnEveryTarget, ::testing::ValuesIn(test::memory_targets()),
                         test::target_name);

TEST(Buffer, RejectsZeroAndOverflowingCounts) {
  HostBackend host;
  BackendResource resource(host, 0, MemoryKind::Device);
  std::string message = message_of<InvalidArgument>([&] { Buffer<double> b(resource, 0); });
  EXPECT_TRUE(contains(message, "zero elements")) << message;
  EXPECT_TRUE(contains(message, "double")) << message;
  message = message_of<InvalidArgument>([&] { Buffer<double> b(resource, SIZE_MAX / 4); });
  EXPECT_TRUE(contains(message, "overflow")) << message;
  EXPECT_EQ(resource.live_allocations(), 0U);
}

TEST(Buffer, RejectsAStreamOfAnotherDeviceOrBackend) {
  Backend& sim = test::shared_registry().get(BackendKind::Simulated);
  HostBackend host;
  BackendResource resource(host, 0, MemoryKind::Device);
  std::unique_ptr<Stream> foreign = sim.create_stream(0);
  std::string message = message_of<InvalidArgument>([&] { Buffer<int> b(resource, 4, foreign.get()); });
  EXPECT_TRUE(contains(message, "sim:0")) << message;
  Buffer<int> buffer(resource, 4);
  std::vector<int> out(4);
  message = message_of<InvalidArgument>([&] { (void)buffer.copy_to_host_async(out, *foreign); });
  EXPECT_TRUE(contains(message, "sim:0")) << message;
  EXPECT_TRUE(contains(message, "host:0")) << message;
}

TEST(Buffer, AdoptsARawBufferOnlyOfItsOwnType) {
  HostBackend host;
  BackendResource resource(host, 0, MemoryKind::Device);
  RawBuffer raw(resource, element_type_of<float>(), 8);
  const Allocation original = raw.allocation();
  const std::string message = message_of<TypeMismatch>([&] { Buffer<std::int32_t> wrong(std::move(raw)); });
  EXPECT_TRUE(contains(message, "float")) << message;
  EXPECT_TRUE(contains(message, "int")) << message;
  ASSERT_FALSE(raw.empty()) << "a rejected adoption leaves the RawBuffer as it was";

  Buffer<float> typed(std::move(raw));
  EXPECT_EQ(typed.allocation().segment, original.segment);
  EXPECT_EQ(typed.size(), 8U);
  RawBuffer back = std::move(typed).release_raw();
  EXPECT_EQ(back.allocation().segment, original.segment);
  EXPECT_EQ(resource.live_allocations(), 1U);
}

TEST(Buffer, StreamOrderedBufferWorksOnItsStream) {
  std::string why;
  auto resource = test::make_resource({"sim", BackendKind::Simulated, 0, MemoryKind::Device}, why);
  ASSERT_NE(resource, nullptr) << why;
  std::unique_ptr<Stream> stream = resource->backend().create_stream(0);
  Buffer<int> buffer(*resource, 16, stream.get());
  EXPECT_EQ(buffer.stream(), stream.get());
  EXPECT_EQ(&buffer.own_stream(), stream.get())
      << "async work without a stream goes to the allocation stream";
  const std::vector<int> values = ramp<int>(16);
  buffer.copy_from_host_async(values).wait();
  EXPECT_EQ(buffer.to_vector(), values);
}

TEST(Buffer, UnbackedDeviceAllocatesButCannotCopy) {
  Backend& sim = test::shared_registry().get(BackendKind::Simulated);
  BackendResource resource(sim, test::kUnbackedSimDevice, MemoryKind::Device);
  Buffer<float> buffer(resource, 16 * GiB / sizeof(float));  // far more than this machine has
  EXPECT_EQ(buffer.bytes(), 16 * GiB);
  std::vector<float> out(4);
  EXPECT_THROW(buffer.copy_to_host(out), NotSupported);
  TransferFuture failed = buffer.copy_to_host_async(out);
  EXPECT_TRUE(failed.ready());
  EXPECT_THROW(failed.wait(), NotSupported);
  EXPECT_THROW(failed.wait(), NotSupported) << "every wait rethrows";
}

}  // namespace
}  // namespace unimem
