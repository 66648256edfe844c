#pragma once
// TensorShape: the extents of a tensor, outermost first ({rows, columns} for a row-major matrix), and the
// checks every tensor operation applies to shapes. Every message names the shapes involved, as "[2, 3]".

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace unimem {

using TensorShape = std::vector<std::size_t>;

// The number of elements of a tensor of `shape`. Throws InvalidArgument naming the shape when it has no
// dimensions, an extent of zero, or a product that does not fit in std::size_t.
[[nodiscard]] std::size_t element_count(const TensorShape& shape);

// "[2, 3]"
[[nodiscard]] std::string format_shape(const TensorShape& shape);

// Throws InvalidArgument naming `operation` and both shapes unless they are equal.
void require_same_shape(std::string_view operation, const TensorShape& expected, const TensorShape& given);

// Throws InvalidArgument naming `operation`, the shape and both counts unless `given` elements fill `shape`.
void require_element_count(std::string_view operation, const TensorShape& shape, std::size_t given);

}  // namespace unimem
