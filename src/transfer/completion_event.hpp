#pragma once
// Completion of work that host threads do (a transfer run by an engine worker, the parts of a batch), in the
// shape the buffer layer's TransferFuture waits on: an Event. The work signals a CompletionSignal once per
// part; the event is complete when the last part is, and carries the first failure.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>

#include "unimem/backend/backend.hpp"
#include "unimem/buffer/transfer_future.hpp"

namespace unimem::detail {

class CompletionSignal {
 public:
  explicit CompletionSignal(std::size_t parts) noexcept : remaining_(parts) {}

  // One part has finished, with its failure or nullptr. The first failure is kept; the last part completes
  // the signal and wakes its waiters. The signal is not touched after the lock is released.
  void finish_part(std::exception_ptr error) noexcept;
  // True once every part has finished.
  [[nodiscard]] bool done() const;
  // Blocks until every part has finished; returns the first failure.
  [[nodiscard]] std::exception_ptr wait() const;
  // When the last part finished (after wait()).
  [[nodiscard]] std::chrono::steady_clock::time_point finished_at() const;

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable finished_;
  std::size_t remaining_;
  std::exception_ptr error_;
  std::chrono::steady_clock::time_point finished_at_{};
};

// A TransferFuture that completes with `signal`, and owns it: whoever signals must be done with it once the
// last part has finished (the future may then be destroyed at once). `host` and `stream` (a stream of `host`,
// device 0) are only needed to mark the event recorded; the future does not use them afterwards and may
// outlive them.
[[nodiscard]] TransferFuture future_of(std::unique_ptr<CompletionSignal> signal, const Backend& host,
                                       Stream& stream);

}  // namespace unimem::detail
