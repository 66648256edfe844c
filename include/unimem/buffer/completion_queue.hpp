#pragma once
// CompletionQueue: runs a callback when an asynchronous transfer completes, on a thread of its own, so that
// callers of Tensor::download_async never block and never poll.
//
// One worker thread takes the submitted transfers in order, waits for each, and calls its callback exactly
// once with the transfer's error (nullptr on success). Waiting in submission order keeps the worker simple
// and delivers callbacks in the order their transfers were queued; a slow transfer delays the callbacks
// behind it, never the transfers themselves. A callback that throws is reported through report_misuse() and
// does not stop the worker.
//
// Destruction delivers everything still queued and then joins the worker, so no callback is lost or run
// twice, and nothing runs after the destructor returns. shared() is the process-wide queue; it is created on
// first use and joined during static destruction. Callbacks run on the worker thread: they must not wait for
// work they submit to the same queue (drain() from a callback throws).

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "unimem/buffer/transfer_future.hpp"

namespace unimem {

// Receives the transfer's failure, or nullptr when it succeeded.
using TransferCallback = std::function<void(std::exception_ptr error)>;

class CompletionQueue {
 public:
  CompletionQueue();
  ~CompletionQueue();
  CompletionQueue(const CompletionQueue&) = delete;
  CompletionQueue& operator=(const CompletionQueue&) = delete;
  CompletionQueue(CompletionQueue&&) = delete;
  CompletionQueue& operator=(CompletionQueue&&) = delete;

  // The process-wide queue.
  [[nodiscard]] static CompletionQueue& shared();

  // Calls `callback` once `transfer` completes. Throws InvalidArgument for an empty callback (before taking
  // anything). Otherwise the callback runs exactly once: on the worker, or, if the queue cannot take the work
  // (out of memory), here, after waiting for the transfer.
  void submit(TransferFuture transfer, TransferCallback callback);

  // Blocks until every callback submitted so far has returned. Throws InvalidArgument when called from a
  // callback (the worker would wait for itself).
  void drain();

  // Transfers submitted whose callbacks have not yet returned.
  [[nodiscard]] std::size_t pending() const;

 private:
  struct Work {
    TransferFuture transfer;
    TransferCallback callback;
  };

  void run();
  static void deliver(Work& work) noexcept;

  mutable std::mutex mutex_;
  std::condition_variable work_ready_;  // the worker waits for work or for stop_
  std::condition_variable idle_;        // drain() waits for pending_ to reach zero
  std::deque<Work> queue_;
  std::size_t pending_ = 0;  // queued plus the one being delivered
  bool stop_ = false;
  std::thread worker_;  // last: started once everything above is initialized
};

}  // namespace unimem
