#include "backend/host/host_address_space.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "unimem/backend/host_backend.hpp"
#include "unimem/core/error.hpp"

namespace unimem::detail {

namespace {
std::string errno_text(int error) {
  return std::string(strerrorname_np(error) != nullptr ? strerrorname_np(error) : "errno ") + " (" +
         std::strerror(error) + ")";
}
}  // namespace

std::size_t host_page_size() noexcept {
  static const std::size_t page = [] {
    const long size = sysconf(_SC_PAGESIZE);
    return size > 0 ? static_cast<std::size_t>(size) : std::size_t{4096};
  }();
  return page;
}

void* reserve_host_addresses(std::size_t bytes, std::string_view device) {
  void* base = mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    const int error = errno;
    const MemoryInfo memory = host_memory_info();
    throw OutOfMemory(
        bytes, std::string(device), memory.free_bytes, memory.total_bytes,
        "reserving " + std::to_string(bytes) + " bytes of addresses failed: " + errno_text(error));
  }
  return base;
}

void commit_host_pages(void* base, std::size_t offset, std::size_t bytes, std::string_view device) {
  if (mprotect(static_cast<std::byte*>(base) + offset, bytes, PROT_READ | PROT_WRITE) != 0) {
    const int error = errno;
    const MemoryInfo memory = host_memory_info();
    throw OutOfMemory(bytes, std::string(device), memory.free_bytes, memory.total_bytes,
                      "committing " + std::to_string(bytes) + " bytes at offset " + std::to_string(offset) +
                          " of a reserved range failed: " + errno_text(error));
  }
}

void decommit_host_pages(void* base, std::size_t offset, std::size_t bytes, std::string_view device) {
  std::byte* start = static_cast<std::byte*>(base) + offset;
  if (madvise(start, bytes, MADV_DONTNEED) != 0 || mprotect(start, bytes, PROT_NONE) != 0) {
    const int error = errno;
    throw BackendError("host", error, strerrorname_np(error) != nullptr ? strerrorname_np(error) : "errno",
                       "decommitting " + std::to_string(bytes) + " bytes at offset " +
                           std::to_string(offset) + " of a reserved range on " + std::string(device) +
                           " failed: " + std::strerror(error));
  }
}

void release_host_addresses(void* base, std::size_t bytes) noexcept {
  munmap(base, bytes);
}

}  // namespace unimem::detail
