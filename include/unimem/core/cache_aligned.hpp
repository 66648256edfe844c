#pragma once
// Layout helpers for hot, shared state: a value padded to its own cache line (no false sharing between
// per-thread counters), and fixed-size control blocks whose size is checked at compile time so that a field
// added later cannot silently push a pool's bookkeeping over a cache line.

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

#include "unimem/core/alignment.hpp"

namespace unimem {

template <typename T>
struct alignas(kCacheLine) CacheAligned {
  T value{};

  CacheAligned() = default;
  template <typename... Args>
  explicit CacheAligned(std::in_place_t /*tag*/, Args&&... args) : value(std::forward<Args>(args)...) {}

  T& operator*() noexcept { return value; }
  const T& operator*() const noexcept { return value; }
  T* operator->() noexcept { return &value; }
  const T* operator->() const noexcept { return &value; }
};

// `Payload` laid out in exactly `Size` bytes, aligned to `Size`. Fails to compile if the payload outgrows it.
template <typename Payload, std::size_t Size>
struct alignas(Size) ControlBlock {
  static_assert(is_power_of_two(Size), "a control block's size must be a power of two");
  static_assert(std::is_trivially_destructible_v<Payload>, "control blocks hold plain data");
  static_assert(sizeof(Payload) <= Size, "payload does not fit its control block");

  Payload data{};
};

template <typename Payload>
using ControlBlock64 = ControlBlock<Payload, 64>;
template <typename Payload>
using ControlBlock128 = ControlBlock<Payload, 128>;

}  // namespace unimem
