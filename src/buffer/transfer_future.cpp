#include "unimem/buffer/transfer_future.hpp"

#include <exception>
#include <string>
#include <utility>

#include "unimem/core/misuse.hpp"

namespace unimem {

namespace {
std::string describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}
}  // namespace

TransferFuture TransferFuture::failed(std::exception_ptr error) noexcept {
  TransferFuture future;
  future.error_ = std::move(error);
  future.settled_ = true;
  return future;
}

TransferFuture::~TransferFuture() {
  settle();
  if (error_ && !observed_) {
    report_misuse("TransferFuture destroyed without wait(); its transfer failed: " + describe(error_));
  }
}

TransferFuture::TransferFuture(TransferFuture&& other) noexcept
    : event_(std::move(other.event_)),
      error_(std::exchange(other.error_, nullptr)),
      settled_(std::exchange(other.settled_, true)),
      observed_(std::exchange(other.observed_, false)) {}

TransferFuture& TransferFuture::operator=(TransferFuture&& other) noexcept {
  if (this != &other) {
    TransferFuture previous(std::move(*this));  // waits for (and reports) what this future held
    event_ = std::move(other.event_);
    error_ = std::exchange(other.error_, nullptr);
    settled_ = std::exchange(other.settled_, true);
    observed_ = std::exchange(other.observed_, false);
  }
  return *this;
}

bool TransferFuture::ready() noexcept {
  if (settled_ || event_ == nullptr) return true;
  try {
    if (!event_->query()) return false;
  } catch (...) {
    error_ = std::current_exception();
  }
  settled_ = true;
  event_.reset();
  return true;
}

void TransferFuture::wait() {
  if (std::exception_ptr error = wait_for_error()) std::rethrow_exception(error);
}

std::exception_ptr TransferFuture::wait_for_error() noexcept {
  settle();
  observed_ = true;
  return error_;
}

void TransferFuture::settle() noexcept {
  if (settled_) return;
  if (event_ != nullptr) {
    try {
      event_->synchronize();
    } catch (...) {
      error_ = std::current_exception();
    }
    event_.reset();
  }
  settled_ = true;
}

}  // namespace unimem
