#pragma once
// Shared by the parser fuzzers (one libFuzzer target per parser, so that each keeps its own corpus and its own
// coverage feedback). The property every parser must keep: any bytes in, and the parser either returns a
// valid result or throws an exception derived from unimem::Error whose message is bounded. Anything else (a
// std::exception of another type, an unknown exception, an oversized message, a violated invariant on the
// result) stops the fuzzer with the reason on stderr; AddressSanitizer and UndefinedBehaviorSanitizer catch
// crashes, overflows and undefined behaviour.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "unimem/core/error.hpp"

namespace unimem::fuzz {

[[noreturn]] inline void fail(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "parser fuzz property violated: %s\n", what);
  if (!detail.empty()) {
    std::fprintf(stderr, "  detail (%zu bytes): %.*s\n", detail.size(), static_cast<int>(detail.size()),
                 detail.data());
  }
  __builtin_trap();
}

inline void require(bool condition, const char* what, std::string_view detail = {}) {
  if (!condition) fail(what, detail);
}

// Messages name the caller's text through unimem::quoted(), which cuts it and writes any byte that is not
// printable ASCII as \xNN: no message needs more than this, and none holds another byte. Building with
// -DUNIMEM_FUZZ_CHECK_MESSAGES=0 turns both message checks off (to look past a known long-message defect).
#ifndef UNIMEM_FUZZ_CHECK_MESSAGES
#define UNIMEM_FUZZ_CHECK_MESSAGES 1
#endif
inline constexpr std::size_t kMaxMessageBytes = 512;

inline void check_message(std::string_view message) {
  if (message.empty()) fail("a unimem error with an empty message");
  if (UNIMEM_FUZZ_CHECK_MESSAGES == 0) return;
  if (message.size() > kMaxMessageBytes) fail("a unimem error message longer than 512 bytes", message);
  for (const char c : message) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte > 0x7e) fail("a unimem error message with a byte that is not printable ASCII", message);
  }
}

// Runs `parse` (a callable returning the parsed value). Returns the value, or nullopt when it threw a unimem
// error with a bounded message; traps on any other outcome.
template <typename Parse>
auto parse_or_typed_error(Parse&& parse) -> std::optional<decltype(std::forward<Parse>(parse)())> {
  try {
    return std::forward<Parse>(parse)();
  } catch (const Error& e) {
    check_message(e.what());
    return std::nullopt;
  } catch (const std::exception& e) {
    fail("an exception not derived from unimem::Error", e.what());
  } catch (...) {
    fail("an exception that is not a std::exception");
  }
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) noexcept {
  return size == 0 ? std::string_view{} : std::string_view(reinterpret_cast<const char*>(data), size);
}

}  // namespace unimem::fuzz
