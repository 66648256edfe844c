#include "unimem/resource/resource_adaptor.hpp"

#include <string>

#include "unimem/core/misuse.hpp"

namespace unimem {

std::optional<std::size_t> ResourceAdaptor::release_bytes(std::atomic<std::size_t>& in_use, std::size_t bytes,
                                                          std::string_view adaptor) const noexcept {
  std::size_t current = in_use.load();
  do {
    if (bytes > current) {
      report_misuse(std::string(adaptor) + "::deallocate on " + to_string(device()) + ": freeing " +
                    std::to_string(bytes) + " bytes with only " + std::to_string(current) +
                    " bytes in use through the adaptor (a double or foreign free)");
      return std::nullopt;
    }
  } while (!in_use.compare_exchange_weak(current, current - bytes));
  return current - bytes;
}

}  // namespace unimem
