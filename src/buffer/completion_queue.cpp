#include "unimem/buffer/completion_queue.hpp"

#include <new>
#include <string>
#include <utility>

#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"

namespace unimem {

CompletionQueue::CompletionQueue() : worker_([this] { run(); }) {}

CompletionQueue::~CompletionQueue() {
  {
    const std::lock_guard lock(mutex_);
    stop_ = true;
  }
  work_ready_.notify_all();
  worker_.join();
}

CompletionQueue& CompletionQueue::shared() {
  static CompletionQueue queue;
  return queue;
}

void CompletionQueue::submit(TransferFuture transfer, TransferCallback callback) {
  if (!callback) throw InvalidArgument("CompletionQueue::submit: the callback is empty");
  Work work{std::move(transfer), std::move(callback)};
  try {
    const std::lock_guard lock(mutex_);
    if (!stop_) {
      queue_.push_back(std::move(work));
      ++pending_;
      work_ready_.notify_one();
      return;
    }
  } catch (const std::bad_alloc&) {
    // The queue could not take the work (push_back left it untouched): deliver it here instead.
  }
  // Out of memory, or submitted by a callback while the queue shuts down.
  deliver(work);
}

void CompletionQueue::drain() {
  if (std::this_thread::get_id() == worker_.get_id()) {
    throw InvalidArgument(
        "CompletionQueue::drain: called from a completion callback, which would wait for itself");
  }
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return pending_ == 0; });
}

std::size_t CompletionQueue::pending() const {
  const std::lock_guard lock(mutex_);
  return pending_;
}

void CompletionQueue::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    work_ready_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything has been delivered
    {
      Work work = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      deliver(work);
    }  // the callback and the transfer are released before the work counts as done
    lock.lock();
    if (--pending_ == 0) idle_.notify_all();
  }
}

void CompletionQueue::deliver(Work& work) noexcept {
  std::exception_ptr error = work.transfer.wait_for_error();
  try {
    work.callback(std::move(error));
  } catch (const std::exception& e) {
    report_misuse(std::string("CompletionQueue: a transfer callback threw: ") + e.what());
  } catch (...) {
    report_misuse("CompletionQueue: a transfer callback threw something that is not a std::exception");
  }
}

}  // namespace unimem
