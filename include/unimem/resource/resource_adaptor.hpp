#pragma once
// ResourceAdaptor: the base of every adaptor (limit, statistics, tracking, logging, fallback, pressure,
// thread safety, fault injection). It wraps an upstream resource held by reference, presents the upstream's
// backend, device and memory kind as its own, and forwards every call; an adaptor overrides only the hooks it
// changes. The upstream must outlive the adaptor (a ResourceStack guarantees it).

#include <atomic>
#include <cstddef>
#include <optional>
#include <string_view>

#include "unimem/resource/memory_resource.hpp"

namespace unimem {

class ResourceAdaptor : public MemoryResource {
 public:
  [[nodiscard]] MemoryResource& upstream() const noexcept { return *upstream_; }

 protected:
  explicit ResourceAdaptor(MemoryResource& upstream) noexcept
      : MemoryResource(upstream.backend(), upstream.device(), upstream.kind()), upstream_(&upstream) {}

  Allocation do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) override {
    return upstream_->allocate(bytes, stream, alignment);
  }
  bool do_deallocate(const Allocation& allocation, Stream* stream) noexcept override {
    return upstream_->deallocate(allocation, stream);
  }
  std::size_t do_trim() override { return upstream_->trim(); }
  ResourceUsage do_usage() const override { return upstream_->usage(); }

  // Takes `bytes` off an adaptor's count of bytes in use and returns what remains. A free of more than the
  // count holds can only be a double or foreign free: it is reported, naming `adaptor`, and the count is left
  // unchanged (nullopt).
  std::optional<std::size_t> release_bytes(std::atomic<std::size_t>& in_use, std::size_t bytes,
                                           std::string_view adaptor) const noexcept;

 private:
  MemoryResource* upstream_;
};

}  // namespace unimem
