#pragma once
// BufferAccess<T, Self>: the typed operations every buffer and view of T offers, written once. `Self`
// (Buffer<T>, BufferView<T>, ...) provides `const RawView& raw() const`; everything here converts element
// counts and spans to that untyped view's calls, which validate and do the work (see raw_view.hpp for the
// ordering rules and the errors).

#include <cstddef>
#include <span>
#include <type_traits>
#include <vector>

#include "unimem/buffer/element_type.hpp"
#include "unimem/buffer/raw_view.hpp"
#include "unimem/buffer/transfer_future.hpp"
#include "unimem/core/alignment.hpp"

namespace unimem {

template <typename T>
class BufferView;

template <typename T, typename Self>
class BufferAccess {
  static_assert(std::is_trivially_copyable_v<T>,
                "unimem buffers hold trivially copyable types only: their elements are moved as raw bytes "
                "(memcpy, DMA, memset)");
  static_assert(!std::is_const_v<T> && !std::is_volatile_v<T>,
                "a buffer's element type is not const- or volatile-qualified; use a const buffer instead");
  static_assert(alignof(T) <= kDefaultAlignment,
                "buffers place elements at kDefaultAlignment (256-byte) boundaries at most");

 public:
  using value_type = T;

  [[nodiscard]] bool empty() const noexcept { return raw().empty(); }
  // Elements.
  [[nodiscard]] std::size_t size() const noexcept { return raw().size(); }
  [[nodiscard]] std::size_t bytes() const noexcept { return raw().bytes(); }
  [[nodiscard]] DeviceId device() const noexcept { return raw().device(); }
  [[nodiscard]] MemoryKind kind() const noexcept { return raw().kind(); }
  [[nodiscard]] Backend* backend() const noexcept { return raw().backend(); }
  [[nodiscard]] const Allocation& allocation() const noexcept { return raw().allocation(); }
  [[nodiscard]] bool host_visible() const noexcept { return raw().host_visible(); }

  // Copies data.size() elements from the host into elements [offset, offset + data.size()).
  void copy_from_host(std::span<const T> data, std::size_t offset = 0) {
    raw().copy_from_host(data.data(), data.size(), offset);
  }
  // Copies out.size() elements starting at `offset` into `out`.
  void copy_to_host(std::span<T> out, std::size_t offset = 0) const {
    raw().copy_to_host(out.data(), out.size(), offset);
  }
  // All elements, in a new vector.
  [[nodiscard]] std::vector<T> to_vector() const {
    std::vector<T> out(size());
    copy_to_host(out);
    return out;
  }
  // Queued on `stream`; `data` / `out` stay alive and untouched until the future completes.
  [[nodiscard]] TransferFuture copy_from_host_async(std::span<const T> data, Stream& stream,
                                                    std::size_t offset = 0) {
    return raw().copy_from_host_async(data.data(), data.size(), offset, stream);
  }
  [[nodiscard]] TransferFuture copy_to_host_async(std::span<T> out, Stream& stream,
                                                  std::size_t offset = 0) const {
    return raw().copy_to_host_async(out.data(), out.size(), offset, stream);
  }

  // Every element becomes `value` (one memset when its bytes are all equal).
  void fill(const T& value) { raw().fill(&value); }
  // Every byte becomes zero, in place.
  void zero() { raw().fill_bytes(0); }

  // The elements in place, for host-visible memory (host, pinned, unified, a host device's memory). Throws
  // NotSupported naming the device and kind otherwise. Asynchronous work on the memory must have completed.
  [[nodiscard]] std::span<T> host_span() { return {reinterpret_cast<T*>(raw().host_data()), size()}; }
  [[nodiscard]] std::span<const T> host_span() const {
    return {reinterpret_cast<const T*>(raw().host_data()), size()};
  }

  // All elements, or elements [offset, offset + count), as a non-owning view.
  [[nodiscard]] BufferView<T> view() const { return BufferView<T>(raw()); }
  [[nodiscard]] BufferView<T> view(std::size_t offset, std::size_t count) const {
    return BufferView<T>(raw().subview(offset, count));
  }
  // The same bytes as elements of U: only between raw bytes (std::byte, unsigned char) and other types;
  // anything else throws TypeMismatch naming both types.
  template <typename U>
  [[nodiscard]] BufferView<U> as() const {
    return BufferView<U>(raw());
  }

 protected:
  BufferAccess() = default;

 private:
  [[nodiscard]] const RawView& raw() const noexcept { return static_cast<const Self&>(*this).raw(); }
};

}  // namespace unimem
