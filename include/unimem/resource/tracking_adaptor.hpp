#pragma once
// TrackingAdaptor: remembers every live allocation that passed through it (an id, an optional tag, size,
// device, when, and optionally the call stack) to find leaks and long-lived allocations. This is the "rich on
// demand" layer (DESIGN decision 6): one map under a mutex, and a backtrace only when asked for.
//
// A free of an allocation it does not track (already freed, made elsewhere, or altered) is reported through
// report_misuse() and not forwarded, so the upstream never sees it. Destroying the adaptor with live
// allocations reports them (the leak report), but frees nothing: the adaptor owns no memory.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "unimem/resource/resource_adaptor.hpp"

namespace unimem {

struct TrackingOptions {
  bool capture_backtraces = false;   // record the call stack of each allocation (costs a stack walk per call)
  std::size_t backtrace_depth = 32;  // frames kept per allocation, the adaptor's own frames included
};

struct TrackedAllocation {
  std::uint64_t id = 0;  // 1, 2, 3, ... in allocation order, unique within the adaptor
  std::string tag;       // empty when none was given
  std::size_t bytes = 0;
  DeviceId device;
  MemoryKind kind = MemoryKind::Host;
  const void* address = nullptr;  // Allocation::native_plus_offset(): names it on every backend
  std::chrono::steady_clock::time_point allocated_at;
  std::vector<void*> frames;  // return addresses, innermost first; empty without capture_backtraces

  [[nodiscard]] std::chrono::steady_clock::duration age() const {
    return std::chrono::steady_clock::now() - allocated_at;
  }
  // The frames as "binary(function+offset) [address]" lines.
  [[nodiscard]] std::vector<std::string> backtrace() const;
};

class TrackingAdaptor final : public ResourceAdaptor {
 public:
  explicit TrackingAdaptor(MemoryResource& upstream, TrackingOptions options = {});
  ~TrackingAdaptor() override;
  TrackingAdaptor(const TrackingAdaptor&) = delete;
  TrackingAdaptor& operator=(const TrackingAdaptor&) = delete;
  TrackingAdaptor(TrackingAdaptor&&) = delete;
  TrackingAdaptor& operator=(TrackingAdaptor&&) = delete;

  // Tags the allocations the calling thread makes while it lives (through any TrackingAdaptor), restoring the
  // enclosing tag after. Nestable; the innermost tag wins.
  class ScopedTag {
   public:
    explicit ScopedTag(std::string tag);
    ~ScopedTag();
    ScopedTag(const ScopedTag&) = delete;
    ScopedTag& operator=(const ScopedTag&) = delete;
    ScopedTag(ScopedTag&&) = delete;
    ScopedTag& operator=(ScopedTag&&) = delete;

   private:
    std::string previous_;
  };

  // allocate() with an explicit tag, which takes precedence over a scoped one. Validates as allocate() does.
  [[nodiscard]] Allocation allocate_tagged(std::size_t bytes, std::string_view tag, Stream* stream = nullptr,
                                           std::size_t alignment = kDefaultAlignment);

  [[nodiscard]] std::size_t live_count() const;
  [[nodiscard]] std::size_t live_bytes() const;
  // Live allocations, oldest first.
  [[nodiscard]] std::vector<TrackedAllocation> live_allocations() const;
  // Live allocations made at least `age` ago, oldest first. Throws InvalidArgument for a negative age.
  [[nodiscard]] std::vector<TrackedAllocation> allocations_older_than(
      std::chrono::steady_clock::duration age) const;
  // A readable account of the live allocations: their count and bytes, then one line per allocation (id, tag,
  // size, device, age) followed by its backtrace when one was captured.
  [[nodiscard]] std::string leak_report() const;

 private:
  Allocation do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) override;
  bool do_deallocate(const Allocation& allocation, Stream* stream) noexcept override;

  TrackingOptions options_;
  mutable std::mutex mutex_;
  std::unordered_map<AllocationKey, TrackedAllocation, AllocationKeyHash> live_;
  std::uint64_t next_id_ = 1;
  std::size_t live_bytes_ = 0;
};

}  // namespace unimem
