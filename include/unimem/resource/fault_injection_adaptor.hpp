#pragma once
// FaultInjectionAdaptor: makes chosen allocations fail without asking the upstream, to test that the layers
// above recover (no leak, pools still consistent, fallbacks taken). Frees, trim and usage pass through.
//
// Calls are numbered 1, 2, 3, ... in the order they reach the adaptor. Call n fails when fail_every_nth is
// non-zero and divides n, or else with `probability`, decided by a hash of (seed, n): the same seed gives the
// same failing call numbers on every run, whatever the threads' timing does to which thread gets which
// number. Thread-safe and lock-free (two atomics).

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "unimem/resource/resource_adaptor.hpp"

namespace unimem {

enum class InjectedFault : std::uint8_t {
  OutOfMemory,   // throws OutOfMemory, as a full device would
  BackendError,  // throws BackendError with code -1, as a failing driver would
};

struct FaultInjectionOptions {
  std::uint64_t fail_every_nth = 0;  // 0: off
  double probability = 0;            // in [0, 1]; 0: off
  std::uint64_t seed = 1;
  InjectedFault fault = InjectedFault::OutOfMemory;
};

class FaultInjectionAdaptor final : public ResourceAdaptor {
 public:
  static constexpr std::int64_t kInjectedErrorCode = -1;

  // Throws InvalidArgument for a probability outside [0, 1].
  FaultInjectionAdaptor(MemoryResource& upstream, FaultInjectionOptions options);

  // Allocation calls seen, and how many of them were made to fail.
  [[nodiscard]] std::uint64_t calls() const noexcept { return calls_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t injected_faults() const noexcept {
    return injected_.load(std::memory_order_relaxed);
  }
  // Whether call number `call` (from 1) fails under these options.
  [[nodiscard]] bool fails(std::uint64_t call) const noexcept;

 private:
  Allocation do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) override;

  [[noreturn]] void throw_fault(std::size_t bytes, std::uint64_t call) const;

  FaultInjectionOptions options_;
  std::atomic<std::uint64_t> calls_{0};
  std::atomic<std::uint64_t> injected_{0};
};

}  // namespace unimem
