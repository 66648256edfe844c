#include "resource/pool_support.hpp"

#include <string>

#include "unimem/backend/backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"

namespace unimem::detail {

void check_pool_stream(const MemoryResource& pool, const Stream* stream, std::string_view pool_name) {
  if (is_pool_stream(pool, stream)) [[likely]] {
    return;
  }
  throw InvalidArgument(
      std::string(pool_name) + " on " + to_string(pool.device()) + ": the stream of " +
      to_string(stream->device()) +
      (&stream->backend() == &pool.backend() ? " is another device's" : " belongs to another backend"));
}

}  // namespace unimem::detail
