#pragma once
// Misuse detected where throwing is not allowed (deallocation is noexcept, DESIGN decision 4): a double free,
// a foreign handle, a leak found in a destructor. It is reported through one handler, never thrown through.
// The default handler writes one line to stderr; tests install their own to assert on reports.

#include <cstdint>
#include <functional>
#include <string_view>

namespace unimem {

using MisuseHandler = std::function<void(std::string_view message)>;

// Reports misuse: counts it and passes the message to the current handler. Never throws.
void report_misuse(std::string_view message) noexcept;

// Installs `handler` (an empty function restores the default) and returns the previous one. Thread-safe.
MisuseHandler set_misuse_handler(MisuseHandler handler);

// Reports made since the program started.
[[nodiscard]] std::uint64_t misuse_count() noexcept;

// Installs a handler for the lifetime of the scope and restores the previous one after.
class ScopedMisuseHandler {
 public:
  explicit ScopedMisuseHandler(MisuseHandler handler) : previous_(set_misuse_handler(std::move(handler))) {}
  ~ScopedMisuseHandler() { set_misuse_handler(std::move(previous_)); }
  ScopedMisuseHandler(const ScopedMisuseHandler&) = delete;
  ScopedMisuseHandler& operator=(const ScopedMisuseHandler&) = delete;
  ScopedMisuseHandler(ScopedMisuseHandler&&) = delete;
  ScopedMisuseHandler& operator=(ScopedMisuseHandler&&) = delete;

 private:
  MisuseHandler previous_;
};

}  // namespace unimem
