#pragma once
// What the pools share besides their stream order (stream_order.hpp): the cookie layout that lets a pool
// recognise its own allocations, the rule that says where an alignment is measured from, the check that a
// stream belongs to the pool's device, and the lock of their central state.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>
#include <string_view>

#include "unimem/backend/segment.hpp"
#include "unimem/backend/stream.hpp"
#include "unimem/core/alignment.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/resource/memory_resource.hpp"

namespace unimem::detail {

// Pools hand out cookies of a record index (low half) and the generation the record had when it was handed
// out (high half). Generations start at 1 and change on every allocation, so a cookie of 0, a stale cookie
// and one from another pool's record of the same index are all told apart from a live allocation.
[[nodiscard]] constexpr std::uint64_t make_cookie(std::uint32_t index, std::uint32_t generation) noexcept {
  return (std::uint64_t{generation} << 32U) | index;
}
[[nodiscard]] constexpr std::uint32_t cookie_index(std::uint64_t cookie) noexcept {
  return static_cast<std::uint32_t>(cookie);
}
[[nodiscard]] constexpr std::uint32_t cookie_generation(std::uint64_t cookie) noexcept {
  return static_cast<std::uint32_t>(cookie >> 32U);
}
[[nodiscard]] constexpr std::uint32_t next_generation(std::uint32_t generation) noexcept {
  return generation == UINT32_MAX ? 1U : generation + 1U;
}

// Bytes to skip from `offset` so that the range starts `alignment`-aligned. Alignment is measured from the
// host address when the host can see the segment and from the native handle otherwise, as BackendResource
// does, except where the segment says its native handle is no address (Segment::native_is_address false, an
// OpenCL cl_mem): there the offset from the segment's start is aligned (what a sub-buffer's origin needs). Up
// to kDefaultAlignment nothing is skipped: segments start that aligned and pools keep every offset a multiple
// of it. Inline: every range pool's allocation asks, nearly always with the default alignment.
[[nodiscard]] inline std::size_t alignment_padding(const Segment& segment, std::size_t offset,
                                                   std::size_t alignment) noexcept {
  if (alignment <= kDefaultAlignment) return 0;
  std::uintptr_t base = 0;
  if (segment.host_ptr != nullptr) {
    base = reinterpret_cast<std::uintptr_t>(segment.host_ptr);
  } else if (segment.native_is_address) {
    base = reinterpret_cast<std::uintptr_t>(segment.native);
  }
  const std::uintptr_t start = base + offset;
  return static_cast<std::size_t>(((start + alignment - 1) & ~(alignment - 1)) - start);
}

// The worst-case padding a range that starts kDefaultAlignment-aligned needs for `alignment`.
[[nodiscard]] constexpr std::size_t alignment_slack(std::size_t alignment) noexcept {
  return alignment > kDefaultAlignment ? alignment - kDefaultAlignment : 0;
}

// True for the null stream and for streams of the resource's own backend and device: the only streams whose
// events a pool can record and wait for.
[[nodiscard]] inline bool is_pool_stream(const MemoryResource& pool, const Stream* stream) noexcept {
  return stream == nullptr || (&stream->backend() == &pool.backend() && stream->device() == pool.device());
}

// Throws InvalidArgument naming the pool and both devices.
[[noreturn]] void throw_foreign_stream(const MemoryResource& pool, const Stream& stream,
                                       std::string_view pool_name);

// Throws InvalidArgument naming the pool and both devices unless is_pool_stream(). The test inline: every
// pool allocation asks, nearly always for the null stream.
inline void check_pool_stream(const MemoryResource& pool, const Stream* stream, std::string_view pool_name) {
  if (!is_pool_stream(pool, stream)) [[unlikely]] {
    throw_foreign_stream(pool, *stream, pool_name);
  }
}

// The reports of checked_free and ordered_free, out of line so that the checks inline into the pools'
// deallocate.
[[gnu::cold]] void report_not_live(const MemoryResource& pool, std::string_view pool_name,
                                   const Allocation& allocation) noexcept;
// Reports a free ordered on a stream the pool cannot order on and synchronizes that stream; the free then
// counts as host-ordered. Throws what the synchronize throws.
[[gnu::cold]] void synchronize_foreign_free(const MemoryResource& pool, std::string_view pool_name,
                                            Stream& stream);
[[gnu::cold]] void report_failed_free(const MemoryResource& pool, std::string_view pool_name,
                                      const std::exception& error) noexcept;

// The stream-order part of a pool's deallocate, for a block or range it has claimed: a stream of another
// device is reported and synchronized, the free then counting as host-ordered; then free(stream) runs, and
// what it throws is reported with the allocation left out of use. Returns whether the free was accepted.
template <typename Free>
[[gnu::always_inline]] inline bool ordered_free(const MemoryResource& pool, std::string_view pool_name,
                                                Stream* stream, const Free& free) noexcept {
  try {
    if (!is_pool_stream(pool, stream)) [[unlikely]] {
      synchronize_foreign_free(pool, pool_name, *stream);
      stream = nullptr;
    }
    free(stream);
  } catch (const std::exception& e) {
    // The range stays allocated here, so the chain above must not count it as freed either.
    report_failed_free(pool, pool_name, e);
    return false;
  }
  return true;
}

// A range pool's deallocate once it holds its lock and has checked the cookie (`live`): an allocation that
// is not live is reported and refused; otherwise ordered_free.
template <typename Free>
[[gnu::always_inline]] inline bool checked_free(const MemoryResource& pool, std::string_view pool_name,
                                                const Allocation& allocation, bool live, Stream* stream,
                                                const Free& free) noexcept {
  if (!live) [[unlikely]] {
    report_not_live(pool, pool_name, allocation);
    return false;
  }
  return ordered_free(pool, pool_name, stream, free);
}

// A mutex that spins briefly before it blocks. A pool's critical section lasts tens of nanoseconds, far less
// than a sleep and wake-up through the kernel (two threads contending for a plain std::mutex made the
// coalescing pool's allocate+free pair 7x slower); an upstream call made under it may still take
// milliseconds, which the blocking fallback covers. Uncontended, lock and unlock are one atomic operation
// each (pthread's mutex took about 60 instructions a pair); blocked threads sleep in the kernel through
// std::atomic::wait and are woken only when one is waiting.
class PoolMutex {
 public:
  void lock() noexcept {
    std::uint32_t expected = kFree;
    if (state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire)) return;
    lock_contended();
  }
  void unlock() noexcept {
    if (state_.exchange(kFree, std::memory_order_release) == kWaiting) state_.notify_one();
  }

 private:
  static constexpr std::uint32_t kFree = 0;
  static constexpr std::uint32_t kLocked = 1;
  static constexpr std::uint32_t kWaiting = 2;  // locked, and a thread may be asleep on it
  static constexpr int kSpins = 100;

  static void pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }

  void lock_contended() noexcept {
    for (int spin = 0; spin < kSpins; ++spin) {
      pause();
      std::uint32_t expected = kFree;
      if (state_.load(std::memory_order_relaxed) == kFree &&
          state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire)) {
        return;
      }
    }
    // Marked as waited for, so that its unlock wakes a sleeper; whoever takes it this way keeps the mark.
    while (state_.exchange(kWaiting, std::memory_order_acquire) != kFree) state_.wait(kWaiting);
  }

  std::atomic<std::uint32_t> state_{kFree};
};

}  // namespace unimem::detail
