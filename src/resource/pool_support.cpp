#include "resource/pool_support.hpp"

#include <string>

#include "unimem/backend/backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"

namespace unimem::detail {

void throw_foreign_stream(const MemoryResource& pool, const Stream& stream, std::string_view pool_name) {
  throw InvalidArgument(
      std::string(pool_name) + " on " + to_string(pool.device()) + ": the stream of " +
      to_string(stream.device()) +
      (&stream.backend() == &pool.backend() ? " is another device's" : " belongs to another backend"));
}

namespace {
std::string where(const MemoryResource& pool, std::string_view pool_name) {
  return std::string(pool_name) + "::deallocate on " + to_string(pool.device()) + ": ";
}
}  // namespace

void report_not_live(const MemoryResource& pool, std::string_view pool_name,
                     const Allocation& allocation) noexcept {
  report_misuse(where(pool, pool_name) + "allocation of " + std::to_string(allocation.size) +
                " bytes at offset " + std::to_string(allocation.offset) +
                " is not live here: already freed, or allocated by another resource");
}

void synchronize_foreign_free(const MemoryResource& pool, std::string_view pool_name, Stream& stream) {
  report_misuse(where(pool, pool_name) + "a stream of " + to_string(stream.device()) +
                " cannot order this free; synchronizing it instead");
  stream.synchronize();
}

void report_failed_free(const MemoryResource& pool, std::string_view pool_name,
                        const std::exception& error) noexcept {
  report_misuse(where(pool, pool_name) + error.what() + "; the allocation stays out of use");
}

}  // namespace unimem::detail
