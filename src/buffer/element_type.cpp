#include "unimem/buffer/element_type.hpp"

#include <string>

#include "unimem/core/error.hpp"

namespace unimem {

void require_element_type(const ElementType& held, const ElementType& wanted, std::string_view context) {
  if (held == wanted) return;
  throw TypeMismatch(std::string(context) + ": holds elements of type " + std::string(held.name) + ", not " +
                     std::string(wanted.name));
}

}  // namespace unimem
