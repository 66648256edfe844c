#pragma once
// The element type a buffer holds, known at run time: its name for messages, its size and alignment for
// arithmetic, and an identity for the checks that catch a buffer read back as another type (TypeMismatch).

#include <cstddef>
#include <string_view>
#include <type_traits>

namespace unimem {

namespace detail {

// Cuts T out of the compiler's signature of type_name<T>():
//   GCC:   "... type_name() [with T = float; std::string_view = ...]"
//   Clang: "... type_name() [T = float]"
constexpr std::string_view type_name_from_signature(std::string_view signature) noexcept {
  constexpr std::string_view kMarker = "T = ";
  const std::size_t start = signature.find(kMarker);
  if (start == std::string_view::npos) return "unknown type";
  const std::size_t first = start + kMarker.size();
  std::size_t end = signature.find(';', first);
  if (end == std::string_view::npos) end = signature.rfind(']');
  return signature.substr(first, end - first);
}

// One object per type; its address is the type's identity, the same in every translation unit.
template <typename T>
inline constexpr char element_type_tag = 0;

}  // namespace detail

// The name of T as the compiler spells it ("float", "std::byte", "unimem::Foo"): for messages only.
template <typename T>
[[nodiscard]] constexpr std::string_view type_name() noexcept {
  return detail::type_name_from_signature(__PRETTY_FUNCTION__);
}

struct ElementType {
  std::string_view name;
  std::size_t size = 0;
  std::size_t alignment = 0;
  const void* id = nullptr;  // nullptr: no type (an untyped workspace slot, an empty buffer)

  [[nodiscard]] bool known() const noexcept { return id != nullptr; }
  friend constexpr bool operator==(const ElementType& a, const ElementType& b) noexcept {
    return a.id == b.id;
  }
};

template <typename T>
[[nodiscard]] constexpr ElementType element_type_of() noexcept {
  using Plain = std::remove_cv_t<T>;
  return ElementType{type_name<Plain>(), sizeof(Plain), alignof(Plain), &detail::element_type_tag<Plain>};
}

// Raw bytes (std::byte, unsigned char) may be viewed as any other type, and any type as raw bytes.
[[nodiscard]] constexpr bool is_raw_bytes(const ElementType& type) noexcept {
  return type == element_type_of<std::byte>() || type == element_type_of<unsigned char>();
}

// Throws TypeMismatch naming both types unless `held` is `wanted`. `context` says what was asked, e.g.
// "Buffer<float> from a RawBuffer" or "workspace slot 'activations'".
void require_element_type(const ElementType& held, const ElementType& wanted, std::string_view context);

}  // namespace unimem
