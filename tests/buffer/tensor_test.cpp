#include "unimem/buffer/tensor.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "buffer/buffer_fixture.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem {
namespace {

using test::contains;
using test::MemoryTarget;
using test::message_of;
using test::ramp;

// Counts the callbacks of asynchronous downloads by id and keeps the errors they were given.
class Completions {
 public:
  TransferCallback callback(int id) {
    return [this, id](std::exception_ptr error) {
      // Notified under the lock: the waiter may destroy this object as soon as it sees the count.
      const std::lock_guard lock(mutex_);
      ++calls_[id];
      if (error) errors_[id] = std::move(error);
      ++total_;
      done_.notify_all();
    };
  }
  // Waits until `count` callbacks have run in all; false after a generous timeout.
  bool wait_for(int count) {
    std::unique_lock lock(mutex_);
    return done_.wait_for(lock, std::chrono::seconds(60), [&] { return total_ >= count; });
  }
  int calls(int id) const {
    const std::lock_guard lock(mutex_);
    const auto it = calls_.find(id);
    return it == calls_.end() ? 0 : it->second;
  }
  std::exception_ptr error(int id) const {
    const std::lock_guard lock(mutex_);
    const auto it = errors_.find(id);
    return it == errors_.end() ? nullptr : it->second;
  }
  int total() const {
    const std::lock_guard lock(mutex_);
    return total_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable done_;
  std::map<int, int> calls_;
  std::map<int, std::exception_ptr> errors_;
  int total_ = 0;
};

class TensorOnEveryTarget : public test::OnEveryTarget {};

TEST_P(TensorOnEveryTarget, RoundTripsOddCountsAndManyShapes) {
  const std::vector<TensorShape> shapes = {{1},      {7},       {1001},    {3, 5},
                                           {13, 17}, {2, 3, 4}, {1, 1, 1}, {5, 1, 9, 1}};
  for (const TensorShape& shape : shapes) {
    SCOPED_TRACE(format_shape(shape));
    Tensor<float> tensor(resource(), shape);
    const std::vector<float> values = ramp<float>(tensor.size(), -3.25F);
    EXPECT_EQ(tensor.shape(), shape);
    EXPECT_EQ(tensor.rank(), shape.size());
    EXPECT_EQ(tensor.bytes(), values.size() * sizeof(float));
    tensor.upload(values, shape);
    std::vector<float> out(values.size());
    tensor.download(out, shape);
    EXPECT_EQ(out, values);
  }
}

TEST_P(TensorOnEveryTarget, OneElementTensors) {
  for (const TensorShape& shape : {TensorShape{1}, TensorShape{1, 1}, TensorShape{1, 1, 1, 1}}) {
    Tensor<std::int64_t> tensor(resource(), shape);
    ASSERT_EQ(tensor.size(), 1U);
    const std::vector<std::int64_t> one = {std::numeric_limits<std::int64_t>::min()};
    tensor.upload(one);
    std::vector<std::int64_t> out(1);
    tensor.download(out);
    EXPECT_EQ(out, one);
  }
}

// The bits of a float or a double, to compare NaNs and signed zeros exactly.
template <typename T>
using BitsOf = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;

template <typename T>
void expect_bit_exact(const std::vector<T>& expected, const std::vector<T>& actual) {
  ASSERT_EQ(expected.size(), actual.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(std::bit_cast<BitsOf<T>>(expected[i]), std::bit_cast<BitsOf<T>>(actual[i])) << "element " << i;
  }
}

template <typename T>
std::vector<T> special_values() {
  using Limits = std::numeric_limits<T>;
  std::vector<T> values = {T{0},
                           -T{0},
                           Limits::infinity(),
                           -Limits::infinity(),
                           Limits::quiet_NaN(),
                           -Limits::quiet_NaN(),
                           Limits::signaling_NaN(),
                           Limits::denorm_min(),
                           -Limits::denorm_min(),
                           Limits::min() / T{2},  // a denormal in the middle of the range
                           Limits::min(),
                           Limits::max(),
                           Limits::lowest(),
                           Limits::epsilon()};
  // A NaN with a payload: the bits must survive, not only NaN-ness.
  values.push_back(std::bit_cast<T>(std::bit_cast<BitsOf<T>>(Limits::quiet_NaN()) | BitsOf<T>{0x2A}));
  return values;
}

template <typename T>
void round_trip_special_values(MemoryResource& resource) {
  const std::vector<T> values = special_values<T>();
  Tensor<T> tensor(resource, {values.size()});
  tensor.upload(values);
  std::vector<T> sync_out(values.size());
  tensor.download(sync_out);
  expect_bit_exact(values, sync_out);

  std::vector<T> async_out(values.size());
  Completions completions;
  tensor.download_async(async_out, completions.callback(0));
  ASSERT_TRUE(completions.wait_for(1));
  ASSERT_EQ(completions.error(0), nullptr);
  expect_bit_exact(values, async_out);
}

TEST_P(TensorOnEveryTarget, SpecialFloatsSurviveBitForBit) {
  round_trip_special_values<float>(resource());
  round_trip_special_values<double>(resource());
}

TEST_P(TensorOnEveryTarget, AsyncDownloadMatchesSyncDownload) {
  Tensor<std::int32_t> tensor(resource(), {64, 33});
  const std::vector<std::int32_t> values = ramp<std::int32_t>(tensor.size(), -1000);
  tensor.upload(values, {64, 33});
  std::vector<std::int32_t> sync_out(values.size());
  tensor.download(sync_out);
  std::vector<std::int32_t> async_out(values.size(), -1);
  Completions completions;
  tensor.download_async(async_out, completions.callback(0));
  ASSERT_TRUE(completions.wait_for(1));
  EXPECT_EQ(completions.error(0), nullptr);
  EXPECT_EQ(async_out, sync_out);
  EXPECT_EQ(async_out, values);
  EXPECT_EQ(completions.calls(0), 1);
}

TEST_P(TensorOnEveryTarget, AsyncDownloadOnACallersStream) {
  Tensor<double> tensor(resource(), {500});
  const std::vector<double> values = ramp<double>(500, 0.25);
  tensor.upload(values);
  std::unique_ptr<Stream> stream = backend().create_stream(GetParam().device);
  std::vector<double> out(values.size());
  Completions completions;
  static_cast<const Tensor<double>&>(tensor).download_async(out, *stream, completions.callback(0));
  ASSERT_TRUE(completions.wait_for(1));
  EXPECT_EQ(completions.error(0), nullptr);
  EXPECT_EQ(out, values);
}

// Downloads `tensors` concurrently (all queued before any is waited for) and checks each result.
void download_concurrently(std::vector<Tensor<std::uint32_t>>& tensors,
                           const std::vector<std::vector<std::uint32_t>>& expected) {
  std::vector<std::vector<std::uint32_t>> outs(tensors.size());
  Completions completions;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    outs[i].resize(tensors[i].size());
    tensors[i].download_async(outs[i], completions.callback(static_cast<int>(i)));
  }
  ASSERT_TRUE(completions.wait_for(static_cast<int>(tensors.size())));
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const int id = static_cast<int>(i);
    EXPECT_EQ(completions.calls(id), 1) << "tensor " << i;
    EXPECT_EQ(completions.error(id), nullptr) << "tensor " << i;
    EXPECT_EQ(outs[i], expected[i]) << "tensor " << i;
  }
  EXPECT_EQ(completions.total(), static_cast<int>(tensors.size()));
}

void concurrent_downloads(MemoryResource& resource, std::size_t count) {
  std::vector<Tensor<std::uint32_t>> tensors;
  std::vector<std::vector<std::uint32_t>> expected;
  for (std::size_t i = 0; i < count; ++i) {
    tensors.emplace_back(resource, TensorShape{256, 17 + i});  // a different size for each
    expected.push_back(ramp<std::uint32_t>(tensors.back().size(), static_cast<std::uint32_t>(i * 100'000)));
    tensors.back().upload(expected.back());
  }
  download_concurrently(tensors, expected);
}

TEST_P(TensorOnEveryTarget, FiveConcurrentAsyncDownloads) {
  concurrent_downloads(resource(), 5);
}

TEST_P(TensorOnEveryTarget, DozensOfConcurrentAsyncDownloads) {
  concurrent_downloads(resource(), 48);
}

TEST_P(TensorOnEveryTarget, FiftyMixedSyncAndAsyncOperations) {
  Tensor<std::int32_t> tensor(resource(), {32, 32});
  const std::size_t n = tensor.size();
  std::deque<std::vector<std::int32_t>> uploads;    // kept alive until their futures complete
  std::deque<std::vector<std::int32_t>> downloads;  // filled by async downloads
  std::vector<std::int32_t>
      expected_of_download;  // the upload each async download must see (its first value)
  std::vector<TransferFuture> pending;
  Completions completions;
  std::int32_t current = 0;
  for (int op = 0; op < 50; ++op) {
    switch (op % 4) {
      case 0:
        uploads.push_back(ramp<std::int32_t>(n, op * 10'000));
        tensor.upload(uploads.back());
        current = op * 10'000;
        break;
      case 1:
        uploads.push_back(ramp<std::int32_t>(n, op * 10'000));
        pending.push_back(tensor.upload_async(uploads.back()));
        current = op * 10'000;
        break;
      case 2: {
        std::vector<std::int32_t> out(n);
        tensor.download(out);  // must see the asynchronous upload queued just before
        EXPECT_EQ(out, ramp<std::int32_t>(n, current)) << "operation " << op;
        break;
      }
      default:
        downloads.emplace_back(n);
        expected_of_download.push_back(current);
        tensor.download_async(downloads.back(), completions.callback(op));
        break;
    }
  }
  for (TransferFuture& future : pending) future.wait();
  ASSERT_TRUE(completions.wait_for(static_cast<int>(downloads.size())));
  for (std::size_t i = 0; i < downloads.size(); ++i) {
    EXPECT_EQ(downloads[i], ramp<std::int32_t>(n, expected_of_download[i])) << "async download " << i;
  }
}

TEST_P(TensorOnEveryTarget, ThousandSmallTensors) {
  std::vector<Tensor<std::uint16_t>> tensors;
  tensors.reserve(1000);
  for (std::size_t i = 0; i < 1000; ++i) {
    tensors.emplace_back(resource(), TensorShape{3, 5});
    tensors.back().upload(ramp<std::uint16_t>(15, static_cast<std::uint16_t>(i * 15)));
  }
  EXPECT_EQ(resource().live_allocations(), 1000U);
  std::vector<std::uint16_t> out(15);
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    tensors[i].download(out);
    ASSERT_EQ(out, ramp<std::uint16_t>(15, static_cast<std::uint16_t>(i * 15))) << "tensor " << i;
  }
  tensors.clear();
  EXPECT_EQ(resource().live_allocations(), 0U);
}

TEST_P(TensorOnEveryTarget, HundredAllocateFreeCycles) {
  const std::size_t segments_before = backend().live_segment_count();
  std::vector<float> out(std::size_t{256} * 64);
  for (int cycle = 0; cycle < 100; ++cycle) {
    Tensor<float> tensor(resource(), {256, 64});
    const std::vector<float> values = ramp<float>(tensor.size(), static_cast<float>(cycle));
    tensor.upload(values);
    tensor.download(out);
    ASSERT_EQ(out.front(), values.front()) << "cycle " << cycle;
    ASSERT_EQ(out.back(), values.back()) << "cycle " << cycle;
  }
  EXPECT_EQ(resource().live_allocations(), 0U);
  EXPECT_EQ(backend().live_segment_count(), segments_before);
  EXPECT_EQ(resource().usage().upstream_allocations, 100U);
  EXPECT_EQ(resource().usage().upstream_deallocations, 100U);
}

TEST_P(TensorOnEveryTarget, ChecksShapesAndCounts) {
  Tensor<float> tensor(resource(), {2, 3});
  const std::vector<float> six(6, 1.0F);
  std::string message = message_of<InvalidArgument>([&] { tensor.upload(six, {3, 2}); });
  EXPECT_TRUE(contains(message, "[3, 2]")) << message;
  EXPECT_TRUE(contains(message, "[2, 3]")) << message;
  std::vector<float> out(6);
  message = message_of<InvalidArgument>([&] { tensor.download(out, {6}); });
  EXPECT_TRUE(contains(message, "[6]")) << message;
  EXPECT_TRUE(contains(message, "[2, 3]")) << message;
  message = message_of<InvalidArgument>([&] { tensor.upload(std::span(six).first(5)); });
  EXPECT_TRUE(contains(message, "5 elements")) << message;
  EXPECT_TRUE(contains(message, "holds 6")) << message;

  tensor.reshape({3, 2});
  EXPECT_EQ(tensor.shape(), (TensorShape{3, 2}));
  EXPECT_NO_THROW(tensor.upload(six, {3, 2}));
  message = message_of<InvalidArgument>([&] { tensor.reshape({4, 2}); });
  EXPECT_TRUE(contains(message, "[4, 2]")) << message;
}

INSTANTIATE_TEST_SUITE_P(Backends, TensorOnEveryTarget, ::testing::ValuesIn(test::memory_targets()),
                         test::target_name);

TEST(Tensor, RejectsDegenerateShapes) {
  std::string why;
  auto resource = test::make_resource(test::memory_targets().front(), why);
  ASSERT_NE(resource, nullptr) << why;
  std::string message = message_of<InvalidArgument>([&] { Tensor<int> t(*resource, {4, 0, 2}); });
  EXPECT_TRUE(contains(message, "[4, 0, 2]")) << message;
  message = message_of<InvalidArgument>([&] { Tensor<int> t(*resource, {}); });
  EXPECT_TRUE(contains(message, "no dimensions")) << message;
  message = message_of<InvalidArgument>([&] {
    Tensor<int> t(*resource, {std::numeric_limits<std::size_t>::max() / 2, 3});
  });
  EXPECT_TRUE(contains(message, "more elements than fit")) << message;
  EXPECT_EQ(resource->live_allocations(), 0U);
}

TEST(Tensor, CallbackRunsExactlyOnceWhenTheTransferFails) {
  // The unbacked simulated device allocates, but every copy throws NotSupported.
  Backend& sim = test::shared_registry().get(BackendKind::Simulated);
  BackendResource unbacked(sim, test::kUnbackedSimDevice, MemoryKind::Device);
  Tensor<float> tensor(unbacked, {1024, 1024});
  std::vector<float> out(tensor.size());
  Completions completions;
  tensor.download_async(out, completions.callback(1));
  tensor.download_async(out, completions.callback(2));
  ASSERT_TRUE(completions.wait_for(2));
  CompletionQueue::shared().drain();  // nothing else is delivered afterwards
  EXPECT_EQ(completions.calls(1), 1);
  EXPECT_EQ(completions.calls(2), 1);
  EXPECT_EQ(completions.total(), 2);
  ASSERT_NE(completions.error(1), nullptr);
  const std::string message = message_of<NotSupported>([&] { std::rethrow_exception(completions.error(1)); });
  EXPECT_TRUE(contains(message, "unbacked")) << message;
}

TEST(Tensor, DownloadAsyncThatThrowsNeverCallsBack) {
  std::string why;
  auto resource = test::make_resource(test::memory_targets().front(), why);
  ASSERT_NE(resource, nullptr) << why;
  Tensor<int> tensor(*resource, {10});
  std::vector<int> short_out(9);
  Completions completions;
  EXPECT_THROW(tensor.download_async(short_out, completions.callback(0)), InvalidArgument);
  std::vector<int> out(10);
  EXPECT_THROW(tensor.download_async(out, TransferCallback()), InvalidArgument);
  CompletionQueue::shared().drain();
  EXPECT_EQ(completions.total(), 0);
}

// Large tensors: 10 and 100 MB on every target; 200 and 500 MB once, on the first target with memory of its
// own (CUDA, then OpenCL, then the backed simulated device). Sizes a device cannot hold are skipped.
void round_trip_large(MemoryResource& resource, Backend& backend, int device, std::size_t megabytes) {
  const std::size_t bytes = megabytes * 1000 * 1000;
  const DeviceInfo info = backend.device_info(device);
  if (bytes > info.max_allocation_bytes || bytes > info.memory.free_bytes) {
    GTEST_SKIP() << to_string(info.id) << " takes at most " << format_bytes(info.max_allocation_bytes)
                 << " per allocation with " << format_bytes(info.memory.free_bytes) << " free; " << megabytes
                 << " MB does not fit";
  }
  const std::size_t count = bytes / sizeof(std::uint32_t);
  // Host arrays without a zeroing pass, and a pattern with a prime period laid out by doubling copies: both
  // keep this fast in sanitizer builds. A piece landing at a wrong offset still shows, because backends copy
  // in pieces of a power of two.
  constexpr std::size_t kPeriod = 262'147;
  const std::unique_ptr<std::uint32_t[]> values(new std::uint32_t[count]);
  for (std::size_t i = 0; i < kPeriod; ++i) values[i] = static_cast<std::uint32_t>(i * 2654435761U);
  for (std::size_t filled = kPeriod; filled < count; filled *= 2) {
    std::memcpy(&values[filled], &values[0], std::min(filled, count - filled) * sizeof(std::uint32_t));
  }
  Tensor<std::uint32_t> tensor(resource, {count / 1000, 1000});
  tensor.upload({values.get(), count});
  const std::unique_ptr<std::uint32_t[]> out(new std::uint32_t[count]);
  tensor.download({out.get(), count});
  EXPECT_EQ(std::memcmp(out.get(), values.get(), bytes), 0) << megabytes << " MB did not round-trip";
}

class LargeTensorOnEveryTarget : public ::testing::TestWithParam<std::tuple<MemoryTarget, std::size_t>> {};

TEST_P(LargeTensorOnEveryTarget, RoundTrips) {
  const auto& [target, megabytes] = GetParam();
  std::string why;
  auto resource = test::make_resource(target, why);
  if (resource == nullptr) GTEST_SKIP() << why;
  round_trip_large(*resource, resource->backend(), target.device, megabytes);
}

std::string large_case_name(const ::testing::TestParamInfo<LargeTensorOnEveryTarget::ParamType>& info) {
  return std::string(std::get<0>(info.param).label) + "_" + std::to_string(std::get<1>(info.param)) + "MB";
}

INSTANTIATE_TEST_SUITE_P(Backends, LargeTensorOnEveryTarget,
                         ::testing::Combine(::testing::ValuesIn(test::memory_targets()),
                                            ::testing::Values(std::size_t{10}, std::size_t{100})),
                         large_case_name);

class LargestTensors : public ::testing::TestWithParam<std::size_t> {};

TEST_P(LargestTensors, RoundTripOnTheFirstRealDevice) {
  std::string why;
  for (const MemoryTarget& target : {MemoryTarget{"cuda", BackendKind::Cuda, 0, MemoryKind::Device},
                                     MemoryTarget{"opencl", BackendKind::OpenCL, 0, MemoryKind::Device},
                                     MemoryTarget{"sim", BackendKind::Simulated, 0, MemoryKind::Device}}) {
    auto resource = test::make_resource(target, why);
    if (resource == nullptr) continue;
    RecordProperty("device", to_string(resource->device()));
    round_trip_large(*resource, resource->backend(), target.device, GetParam());
    return;
  }
  GTEST_SKIP() << "no device memory target: " << why;
}

std::string size_name(const ::testing::TestParamInfo<std::size_t>& info) {
  return std::to_string(info.param) + "MB";
}

INSTANTIATE_TEST_SUITE_P(Sizes, LargestTensors, ::testing::Values(std::size_t{200}, std::size_t{500}),
                         size_name);

}  // namespace
}  // namespace unimem
