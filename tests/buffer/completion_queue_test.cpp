#include "unimem/buffer/completion_queue.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "unimem/backend/host_backend.hpp"
#include "unimem/buffer/transfer_future.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"

namespace unimem {
namespace {

// What a callback was told, and how often each was called.
class CallbackLog {
 public:
  TransferCallback callback(int id) {
    return [this, id](std::exception_ptr error) {
      const std::lock_guard lock(mutex_);
      calls_.push_back(id);
      errors_.push_back(std::move(error));
    };
  }
  std::vector<int> calls() const {
    const std::lock_guard lock(mutex_);
    return calls_;
  }
  std::exception_ptr error(std::size_t i) const {
    const std::lock_guard lock(mutex_);
    return errors_.at(i);
  }

 private:
  mutable std::mutex mutex_;
  std::vector<int> calls_;
  std::vector<std::exception_ptr> errors_;
};

TEST(TransferFuture, EmptyFutureIsReady) {
  TransferFuture future;
  EXPECT_TRUE(future.ready());
  EXPECT_NO_THROW(future.wait());
  EXPECT_EQ(future.wait_for_error(), nullptr);
}

TEST(TransferFuture, FailedFutureRethrowsOnEveryWait) {
  TransferFuture future =
      TransferFuture::failed(std::make_exception_ptr(NotSupported("no bytes behind sim:2")));
  EXPECT_TRUE(future.ready());
  EXPECT_THROW(future.wait(), NotSupported);
  EXPECT_THROW(future.wait(), NotSupported);
  TransferFuture moved(std::move(future));
  EXPECT_THROW(moved.wait(), NotSupported) << "the failure moves with the future";
}

TEST(TransferFuture, CompletesWithItsEvent) {
  HostBackend host;
  std::unique_ptr<Stream> stream = host.create_stream(0);
  std::unique_ptr<Event> event = host.create_event(0);
  event->record(*stream);
  TransferFuture future(std::move(event));
  EXPECT_TRUE(future.ready());
  EXPECT_NO_THROW(future.wait());
}

TEST(TransferFuture, UnobservedFailureIsReportedNotLost) {
  std::vector<std::string> reports;
  const ScopedMisuseHandler capture([&](std::string_view m) { reports.emplace_back(m); });
  {
    const TransferFuture ignored = TransferFuture::failed(
        std::make_exception_ptr(BackendError("opencl", -5, "CL_OUT_OF_RESOURCES", "clEnqueueReadBuffer")));
  }
  {
    TransferFuture observed = TransferFuture::failed(std::make_exception_ptr(InvalidArgument("seen")));
    EXPECT_NE(observed.wait_for_error(), nullptr);
  }
  ASSERT_EQ(reports.size(), 1U);
  EXPECT_NE(reports[0].find("CL_OUT_OF_RESOURCES"), std::string::npos) << reports[0];
  EXPECT_NE(reports[0].find("without wait()"), std::string::npos) << reports[0];
}

TEST(CompletionQueue, CallsEachCallbackOnceInSubmissionOrder) {
  CompletionQueue queue;
  CallbackLog log;
  for (int i = 0; i < 100; ++i) queue.submit(TransferFuture(), log.callback(i));
  queue.drain();
  EXPECT_EQ(queue.pending(), 0U);
  const std::vector<int> calls = log.calls();
  ASSERT_EQ(calls.size(), 100U);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(calls[static_cast<std::size_t>(i)], i);
}

TEST(CompletionQueue, HandsFailuresToTheCallback) {
  CompletionQueue queue;
  CallbackLog log;
  queue.submit(TransferFuture::failed(std::make_exception_ptr(NotSupported("unbacked"))), log.callback(0));
  queue.submit(TransferFuture(), log.callback(1));
  queue.drain();
  ASSERT_EQ(log.calls().size(), 2U);
  EXPECT_THROW(std::rethrow_exception(log.error(0)), NotSupported);
  EXPECT_EQ(log.error(1), nullptr);
}

TEST(CompletionQueue, DestructionDeliversEverythingThenJoins) {
  CallbackLog log;
  {
    CompletionQueue queue;
    // The first callback is slow, so the others are still queued when the destructor starts.
    queue.submit(TransferFuture(), [&log](std::exception_ptr error) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      log.callback(0)(std::move(error));
    });
    for (int i = 1; i < 50; ++i) queue.submit(TransferFuture(), log.callback(i));
  }
  EXPECT_EQ(log.calls().size(), 50U);
}

TEST(CompletionQueue, CallbackSubmittingDuringShutdownIsStillDeliveredOnce) {
  CallbackLog log;
  {
    CompletionQueue queue;
    queue.submit(TransferFuture(), [&](const std::exception_ptr& /*error*/) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      queue.submit(TransferFuture(), log.callback(7));
    });
  }
  const std::vector<int> calls = log.calls();
  ASSERT_EQ(calls.size(), 1U);
  EXPECT_EQ(calls[0], 7);
}

TEST(CompletionQueue, ThrowingCallbackIsReportedAndTheWorkerGoesOn) {
  std::vector<std::string> reports;
  const ScopedMisuseHandler capture([&](std::string_view m) { reports.emplace_back(m); });
  CompletionQueue queue;
  CallbackLog log;
  queue.submit(TransferFuture(),
               [](const std::exception_ptr& /*error*/) { throw std::runtime_error("callback bug"); });
  queue.submit(TransferFuture(), log.callback(1));
  queue.drain();
  EXPECT_EQ(log.calls().size(), 1U);
  ASSERT_EQ(reports.size(), 1U);
  EXPECT_NE(reports[0].find("callback bug"), std::string::npos) << reports[0];
}

TEST(CompletionQueue, RejectsAnEmptyCallbackAndDrainFromACallback) {
  CompletionQueue queue;
  EXPECT_THROW(queue.submit(TransferFuture(), TransferCallback()), InvalidArgument);
  bool refused = false;
  queue.submit(TransferFuture(), [&](const std::exception_ptr& /*error*/) {
    try {
      queue.drain();
    } catch (const InvalidArgument&) {
      refused = true;
    }
  });
  queue.drain();
  EXPECT_TRUE(refused);
}

TEST(CompletionQueue, ConcurrentProducersEachGetExactlyOneCall) {
  CompletionQueue queue;
  CallbackLog log;
  constexpr int kThreads = 4;
  constexpr int kEach = 50;
  std::vector<std::thread> producers;
  producers.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) queue.submit(TransferFuture(), log.callback(t * kEach + i));
    });
  }
  for (std::thread& p : producers) p.join();
  queue.drain();
  std::vector<int> calls = log.calls();
  std::sort(calls.begin(), calls.end());
  ASSERT_EQ(calls.size(), static_cast<std::size_t>(kThreads * kEach));
  for (std::size_t i = 0; i < calls.size(); ++i) EXPECT_EQ(calls[i], static_cast<int>(i));
}

}  // namespace
}  // namespace unimem
