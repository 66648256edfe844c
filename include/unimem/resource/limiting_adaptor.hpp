#pragma once
// LimitingAdaptor: a byte cap on what is live through it. A request that would take the bytes handed out past
// the limit throws OutOfMemory naming the request, the limit and the bytes in use, without reaching the
// upstream. Thread-safe and lock-free: the bytes in use are one atomic, reserved by compare-exchange before
// the upstream is asked and released when it fails.
//
// The cap counts requested bytes (Allocation::size), not the upstream's rounding. Frees are trusted: a double
// or foreign free is the upstream's to report; one that would take the count below zero is reported here too.

#include <atomic>
#include <cstddef>

#include "unimem/resource/resource_adaptor.hpp"

namespace unimem {

class LimitingAdaptor final : public ResourceAdaptor {
 public:
  // Throws InvalidArgument for a zero limit.
  LimitingAdaptor(MemoryResource& upstream, std::size_t limit_bytes);

  [[nodiscard]] std::size_t limit() const noexcept { return limit_; }
  [[nodiscard]] std::size_t in_use_bytes() const noexcept { return in_use_.load(std::memory_order_relaxed); }

 private:
  Allocation do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) override;
  bool do_deallocate(const Allocation& allocation, Stream* stream) noexcept override;

  [[noreturn]] void throw_over_limit(std::size_t bytes, std::size_t in_use) const;

  std::size_t limit_;
  std::atomic<std::size_t> in_use_{0};
};

}  // namespace unimem
