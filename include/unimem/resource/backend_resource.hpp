#pragma once
// BackendResource: the upstream of every stack. Each allocation is one backend segment of one memory kind on
// one device (cudaMalloc, clCreateBuffer, a host allocation, a simulated range). Thread-safe.
//
// Alignments above the backend's kDefaultAlignment are served by over-allocating and offsetting inside the
// segment. Freed allocations are checked against the resource's live set, so a double free or a foreign
// allocation is reported (report_misuse), never acted on.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "unimem/backend/backend.hpp"
#include "unimem/resource/memory_resource.hpp"

namespace unimem {

class BackendResource final : public MemoryResource {
 public:
  // Throws InvalidArgument for a bad device index and NotSupported when the device does not serve `kind`.
  BackendResource(Backend& backend, int device, MemoryKind kind);
  ~BackendResource() override;
  BackendResource(const BackendResource&) = delete;
  BackendResource& operator=(const BackendResource&) = delete;
  BackendResource(BackendResource&&) = delete;
  BackendResource& operator=(BackendResource&&) = delete;

  // Allocations handed out and not yet freed.
  [[nodiscard]] std::size_t live_allocations() const;

 private:
  Allocation do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) override;
  bool do_deallocate(const Allocation& allocation, Stream* stream) noexcept override;
  ResourceUsage do_usage() const override;

  int device_index_;
  mutable std::mutex mutex_;
  // What was handed out, so that a free must match it exactly (a forged offset or size is refused).
  struct Live {
    Segment segment;
    std::size_t offset = 0;
    std::size_t size = 0;
  };
  // Keyed by segment id; node-based, so the Segment an Allocation points to stays put while it is live.
  std::unordered_map<std::uint64_t, Live> live_;
  ResourceUsage usage_;
};

}  // namespace unimem
