#pragma once
// TransferFuture: the handle an asynchronous copy returns. It is backed by an event recorded on the copy's
// stream right after the copy, so that waiting costs what waiting for the stream would, and it carries any
// failure of the transfer: one raised while queueing the copy, or one the event reports on completion. wait()
// rethrows it, every time it is called.
//
// A future is used by one thread at a time. Destroying one that has not completed waits for it first: the
// host memory an asynchronous copy reads or writes must stay valid until the copy is done, and the usual way
// to keep it valid is to keep it alive next to the future. A failure nobody waited for is reported through
// report_misuse() rather than lost.

#include <exception>
#include <memory>

#include "unimem/backend/stream.hpp"

namespace unimem {

class TransferFuture {
 public:
  // An empty future: nothing to wait for, ready at once.
  TransferFuture() noexcept = default;
  // Completes when `event` (already recorded after the transfer) completes.
  explicit TransferFuture(std::unique_ptr<Event> event) noexcept : event_(std::move(event)) {}
  // A transfer that failed before it could be queued.
  [[nodiscard]] static TransferFuture failed(std::exception_ptr error) noexcept;

  ~TransferFuture();
  TransferFuture(const TransferFuture&) = delete;
  TransferFuture& operator=(const TransferFuture&) = delete;
  TransferFuture(TransferFuture&& other) noexcept;
  TransferFuture& operator=(TransferFuture&& other) noexcept;

  // True once the transfer has completed or failed. Never throws: a failure found here is kept for wait().
  [[nodiscard]] bool ready() noexcept;
  // Blocks until the transfer has completed; rethrows its failure.
  void wait();
  // Blocks until the transfer has completed; returns its failure instead of throwing it (nullptr: success).
  [[nodiscard]] std::exception_ptr wait_for_error() noexcept;

 private:
  // Waits for the event (if any) and folds what it reports into error_. Never throws.
  void settle() noexcept;

  std::unique_ptr<Event> event_;
  std::exception_ptr error_;
  bool settled_ = false;   // the event has completed (or failed): nothing left to wait for
  bool observed_ = false;  // wait() or wait_for_error() has handed the outcome to the caller
};

}  // namespace unimem
