#include "unimem/resource/fault_injection_adaptor.hpp"

#include <string>

#include "unimem/backend/backend.hpp"
#include "unimem/core/error.hpp"

namespace unimem {

namespace {
// splitmix64's finalizer: a well-mixed 64-bit hash, so neighbouring call numbers draw independent values.
std::uint64_t mix(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27U)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31U);
}

// A uniform draw in [0, 1) from the top 53 bits.
double unit_interval(std::uint64_t bits) noexcept {
  return static_cast<double>(bits >> 11U) * 0x1.0p-53;
}
}  // namespace

FaultInjectionAdaptor::FaultInjectionAdaptor(MemoryResource& upstream, FaultInjectionOptions options)
    : ResourceAdaptor(upstream), options_(options) {
  if (!(options.probability >= 0.0 && options.probability <= 1.0)) {
    throw InvalidArgument("FaultInjectionAdaptor: probability " + std::to_string(options.probability) +
                          " is outside [0, 1]");
  }
}

bool FaultInjectionAdaptor::fails(std::uint64_t call) const noexcept {
  if (options_.fail_every_nth != 0 && call % options_.fail_every_nth == 0) return true;
  return options_.probability > 0.0 && unit_interval(mix(options_.seed ^ mix(call))) < options_.probability;
}

Allocation FaultInjectionAdaptor::do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) {
  const std::uint64_t call = calls_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (fails(call)) [[unlikely]] {
    injected_.fetch_add(1, std::memory_order_relaxed);
    throw_fault(bytes, call);
  }
  return ResourceAdaptor::do_allocate(bytes, stream, alignment);
}

void FaultInjectionAdaptor::throw_fault(std::size_t bytes, std::uint64_t call) const {
  const std::string what = "allocate of " + std::to_string(bytes) + " bytes on " + to_string(device()) +
                           " (fault injected at call " + std::to_string(call) + ")";
  if (options_.fault == InjectedFault::BackendError) {
    throw BackendError(std::string(backend().name()), kInjectedErrorCode, "UNIMEM_INJECTED_FAULT", what);
  }
  throw OutOfMemory(bytes, to_string(device()), 0, 0, what);
}

}  // namespace unimem
