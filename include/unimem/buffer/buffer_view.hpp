#pragma once
// BufferView<T>: a non-owning, typed window onto elements of a buffer, a workspace slot or any allocation. It
// copies like a std::span and offers the same operations as Buffer<T>; it does not keep the memory alive.

#include "unimem/buffer/buffer_access.hpp"
#include "unimem/buffer/raw_view.hpp"

namespace unimem {

template <typename T>
class BufferView : public BufferAccess<T, BufferView<T>> {
 public:
  BufferView() noexcept = default;
  // The elements of `raw` as T. Throws TypeMismatch naming both types when `raw` holds another type (raw
  // bytes excepted), InvalidArgument when its bytes are not a whole, aligned number of T.
  explicit BufferView(const RawView& raw) : raw_(raw.as(element_type_of<T>())) {}

  [[nodiscard]] const RawView& raw() const noexcept { return raw_; }

 private:
  RawView raw_;
};

}  // namespace unimem
