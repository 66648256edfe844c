#include "unimem/core/misuse.hpp"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <utility>

namespace unimem {

namespace {
std::mutex& handler_mutex() {
  static std::mutex m;
  return m;
}
MisuseHandler& current_handler() {
  static MisuseHandler handler;
  return handler;
}
std::atomic<std::uint64_t> g_misuse_count{0};
}  // namespace

void report_misuse(std::string_view message) noexcept {
  g_misuse_count.fetch_add(1, std::memory_order_relaxed);
  try {
    const std::lock_guard lock(handler_mutex());
    if (current_handler()) {
      current_handler()(message);
      return;
    }
  } catch (...) {
    // A throwing handler must not turn a report into a crash in a noexcept path; fall through to stderr.
  }
  std::fprintf(stderr, "unimem: misuse: %.*s\n", static_cast<int>(message.size()), message.data());
}

MisuseHandler set_misuse_handler(MisuseHandler handler) {
  const std::lock_guard lock(handler_mutex());
  return std::exchange(current_handler(), std::move(handler));
}

std::uint64_t misuse_count() noexcept { return g_misuse_count.load(std::memory_order_relaxed); }

}  // namespace unimem
