#pragma once
// Host virtual memory, shared by the host backend and backed simulated devices: addresses reserved with no
// memory behind them, committed and decommitted in pages.
//
// Reserve: mmap(PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE), so that the reservation costs no
// memory and no commit charge. Commit: mprotect(PROT_READ | PROT_WRITE); pages become resident on first
// touch, as with any anonymous memory. Decommit: madvise(MADV_DONTNEED) drops the pages at once (they stop
// counting in the process's resident set) and mprotect(PROT_NONE) makes a stale access fault instead of
// reading zeros.

#include <cstddef>
#include <string_view>

namespace unimem::detail {

// The host's page size (sysconf), the granule of everything below.
[[nodiscard]] std::size_t host_page_size() noexcept;

// Throws OutOfMemory naming `device` when the address space has no room for `bytes`.
[[nodiscard]] void* reserve_host_addresses(std::size_t bytes, std::string_view device);
// Throws OutOfMemory naming `device` when the pages cannot be made accessible.
void commit_host_pages(void* base, std::size_t offset, std::size_t bytes, std::string_view device);
// Throws BackendError naming `device` when the pages cannot be dropped.
void decommit_host_pages(void* base, std::size_t offset, std::size_t bytes, std::string_view device);
void release_host_addresses(void* base, std::size_t bytes) noexcept;

}  // namespace unimem::detail
