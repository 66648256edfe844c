#include "transfer/completion_event.hpp"

#include <utility>

#include "unimem/core/error.hpp"

namespace unimem::detail {

namespace {

// Completes when its signal does. Recording it marks nothing in a stream: the mark is the signal.
class CompletionEvent final : public Event {
 public:
  CompletionEvent(const Backend& backend, std::unique_ptr<CompletionSignal> signal) noexcept
      : Event(backend, DeviceId{backend.kind(), 0}), signal_(std::move(signal)) {}

 private:
  void do_record(Stream& /*stream*/) override {}

  bool do_query() override {
    if (!signal_->done()) return false;
    do_synchronize();  // rethrows the failure, as other events do for a failed command
    return true;
  }

  void do_synchronize() override {
    if (std::exception_ptr error = signal_->wait()) std::rethrow_exception(error);
  }

  void do_make_wait(Stream& /*stream*/) override { (void)signal_->wait(); }

  double do_elapsed_ms_since(Event& start) override {
    auto* begin = dynamic_cast<CompletionEvent*>(&start);
    if (begin == nullptr) {
      throw InvalidArgument("elapsed_ms_since: the start event is not a transfer completion event");
    }
    (void)begin->signal_->wait();
    (void)signal_->wait();
    return std::chrono::duration<double, std::milli>(signal_->finished_at() - begin->signal_->finished_at())
        .count();
  }

  std::unique_ptr<CompletionSignal> signal_;
};

}  // namespace

void CompletionSignal::finish_part(std::exception_ptr error) noexcept {
  const std::lock_guard lock(mutex_);
  if (error && !error_) error_ = std::move(error);
  if (--remaining_ != 0) return;
  finished_at_ = std::chrono::steady_clock::now();
  finished_.notify_all();
}

bool CompletionSignal::done() const {
  const std::lock_guard lock(mutex_);
  return remaining_ == 0;
}

std::exception_ptr CompletionSignal::wait() const {
  std::unique_lock lock(mutex_);
  finished_.wait(lock, [this] { return remaining_ == 0; });
  return error_;
}

std::chrono::steady_clock::time_point CompletionSignal::finished_at() const {
  const std::lock_guard lock(mutex_);
  return finished_at_;
}

TransferFuture future_of(std::unique_ptr<CompletionSignal> signal, const Backend& host, Stream& stream) {
  auto event = std::make_unique<CompletionEvent>(host, std::move(signal));
  event->record(stream);
  return TransferFuture(std::move(event));
}

}  // namespace unimem::detail
