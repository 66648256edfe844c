#include "unimem/buffer/tensor_shape.hpp"

#include "unimem/core/error.hpp"

namespace unimem {

std::size_t element_count(const TensorShape& shape) {
  if (shape.empty()) {
    throw InvalidArgument("tensor shape [] has no dimensions; a single element has shape [1]");
  }
  std::size_t count = 1;
  for (const std::size_t extent : shape) {
    if (extent == 0) throw InvalidArgument("tensor shape " + format_shape(shape) + " has an extent of zero");
    if (__builtin_mul_overflow(count, extent, &count)) {
      throw InvalidArgument("tensor shape " + format_shape(shape) + " has more elements than fit in 64 bits");
    }
  }
  return count;
}

std::string format_shape(const TensorShape& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i != 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

void require_same_shape(std::string_view operation, const TensorShape& expected, const TensorShape& given) {
  if (given != expected) {
    throw InvalidArgument(std::string(operation) + ": shape " + format_shape(given) +
                          " does not match the tensor's shape " + format_shape(expected));
  }
}

void require_element_count(std::string_view operation, const TensorShape& shape, std::size_t given) {
  const std::size_t expected = element_count(shape);
  if (given != expected) {
    throw InvalidArgument(std::string(operation) + ": " + std::to_string(given) +
                          " elements given for shape " + format_shape(shape) + ", which holds " +
                          std::to_string(expected));
  }
}

}  // namespace unimem
