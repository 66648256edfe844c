// The stream-ordering contract of memory_resource.hpp, kept by every pool through their one StreamOrder
// (src/resource/stream_order.hpp): same-stream reuse at once, another stream only after the free's event
// (or made to wait for it), host-order frees ready for every stream, and memory given back upstream only
// once its frees have completed. Streams here complete work only when the test says so (ManualBackend).

#include <gtest/gtest.h>

#include <memory>
#include <ostream>

#include "resource/pool_model.hpp"
#include "resource/pool_test_support.hpp"
#include "unimem/resource/backend_resource.hpp"

namespace unimem::test {
namespace {

// A request each pool serves from the same memory again when it is free: a size-class block, the
// coalescing pool's first segment (exactly the request's size), or the expandable pool's first range.
constexpr std::size_t kRequest = 3000;

bool same_memory(const Allocation& a, const Allocation& b) {
  return a.segment == b.segment && a.offset == b.offset;
}

class StreamOrderContract : public ::testing::TestWithParam<PoolKind> {
 protected:
  StreamOrderContract()
      : stream_a_(manual_.create_stream(0)),
        stream_b_(manual_.create_stream(0)),
        a_(dynamic_cast<ManualStream&>(*stream_a_)),
        b_(dynamic_cast<ManualStream&>(*stream_b_)),
        pool_(make_pool(GetParam(), upstream_)) {}

  // Allocates on `stream`, leaves a kernel using the memory pending there, and frees it on `stream`.
  Allocation free_pending(ManualStream& stream) {
    const Allocation first = pool_->allocate(kRequest, &stream);
    stream.enqueue();
    EXPECT_TRUE(pool_->deallocate(first, &stream));
    return first;
  }

  // With virtual memory only for the expandable pool, which needs it: the other pools run as before.
  ManualBackend manual_{GiB, GetParam() == PoolKind::Expandable ? 2 * MiB : 0};
  BackendResource upstream_{manual_, 0, MemoryKind::Device};
  std::unique_ptr<Stream> stream_a_;
  std::unique_ptr<Stream> stream_b_;
  ManualStream& a_;
  ManualStream& b_;
  std::unique_ptr<MemoryResource> pool_;
};

TEST_P(StreamOrderContract, TheFreeingStreamReusesAtOnce) {
  const Allocation first = free_pending(a_);
  const Allocation again = pool_->allocate(kRequest, &a_);
  EXPECT_TRUE(same_memory(again, first)) << "same-stream reuse needs no event";
  EXPECT_EQ(a_.waits(), 0);
  EXPECT_EQ(a_.completed(), 0U) << "nothing was waited for";
  pool_->deallocate(again, &a_);
}

TEST_P(StreamOrderContract, AnotherStreamTakesAPendingFreeOnlyAfterWaitingForIt) {
  const Allocation first = free_pending(a_);
  const Allocation other = pool_->allocate(kRequest, &b_);
  EXPECT_TRUE(same_memory(other, first)) << "waiting for the one pending free beats growing the pool";
  EXPECT_EQ(b_.waits(), 1) << "stream B took A's pending free without waiting for its event";
  EXPECT_EQ(a_.completed(), 0U) << "making a stream wait must not block the host";
  pool_->deallocate(other, &b_);
}

TEST_P(StreamOrderContract, ACompletedFreeIsReadyForEveryStream) {
  const Allocation first = free_pending(a_);
  a_.complete();
  const Allocation other = pool_->allocate(kRequest, &b_);
  EXPECT_TRUE(same_memory(other, first));
  EXPECT_EQ(b_.waits(), 0) << "the free's event had completed";
  pool_->deallocate(other, &b_);
}

TEST_P(StreamOrderContract, AHostOrderFreeIsReadyForEveryStream) {
  const Allocation first = pool_->allocate(kRequest);
  pool_->deallocate(first);
  const Allocation on_a = pool_->allocate(kRequest, &a_);
  EXPECT_TRUE(same_memory(on_a, first));
  pool_->deallocate(on_a);
  const Allocation on_b = pool_->allocate(kRequest, &b_);
  EXPECT_TRUE(same_memory(on_b, first));
  EXPECT_EQ(a_.waits() + b_.waits(), 0);
  pool_->deallocate(on_b);
}

TEST_P(StreamOrderContract, AHostOrderAllocationWaitsOnTheHostForAPendingFree) {
  const Allocation first = free_pending(a_);
  const Allocation host = pool_->allocate(kRequest);
  EXPECT_TRUE(same_memory(host, first));
  EXPECT_EQ(a_.completed(), a_.submitted()) << "the host used memory stream A may still be using";
  pool_->deallocate(host);
}

TEST_P(StreamOrderContract, TrimGivesBackPendingFreesOnlyAfterTheyComplete) {
  (void)free_pending(a_);
  EXPECT_GT(pool_->trim(), 0U);
  EXPECT_EQ(a_.completed(), a_.submitted()) << "memory went upstream while stream A may still use it";
  EXPECT_EQ(pool_->usage().reserved_bytes, 0U);
  EXPECT_EQ(manual_.live_bytes(0), 0U);
  // The expandable pool keeps its reserved address range (no memory behind it) until it is destroyed.
  EXPECT_EQ(manual_.live_segment_count(), GetParam() == PoolKind::Expandable ? 1U : 0U);
}

TEST_P(StreamOrderContract, EventsAreReusedAcrossFrees) {
  for (int i = 0; i < 50; ++i) {
    const Allocation a = pool_->allocate(kRequest, &a_);
    a_.enqueue();
    pool_->deallocate(a, &a_);
  }
  EXPECT_LE(manual_.events_created(), 2) << "a free on a stream should reuse the event of the last one";
}

INSTANTIATE_TEST_SUITE_P(Pools, StreamOrderContract,
                         ::testing::Values(PoolKind::SizeClass, PoolKind::Coalescing, PoolKind::Hybrid,
                                           PoolKind::Expandable),
                         [](const auto& param_info) { return std::string(to_string(param_info.param)); });

}  // namespace
}  // namespace unimem::test
