#pragma once
// ThreadSafeAdaptor: one mutex around every call (allocate, deallocate, trim, usage), for an upstream that is
// not thread-safe itself (a single-threaded pool shared after all). Calls are serialized, so prefer a
// resource that is thread-safe by design on hot paths.

#include <cstddef>
#include <mutex>

#include "unimem/resource/resource_adaptor.hpp"

namespace unimem {

class ThreadSafeAdaptor final : public ResourceAdaptor {
 public:
  explicit ThreadSafeAdaptor(MemoryResource& upstream) : ResourceAdaptor(upstream) {}

 private:
  Allocation do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) override;
  bool do_deallocate(const Allocation& allocation, Stream* stream) noexcept override;
  std::size_t do_trim() override;
  ResourceUsage do_usage() const override;

  mutable std::mutex mutex_;
};

}  // namespace unimem
