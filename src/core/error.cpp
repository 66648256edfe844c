#include "unimem/core/error.hpp"

#include <utility>

#include "unimem/core/size.hpp"

namespace unimem {

std::string quoted(std::string_view text, std::size_t limit) {
  static constexpr std::string_view kHex = "0123456789abcdef";
  std::string out = "'";
  std::size_t shown = 0;  // characters of `limit` used, escapes counted as written
  std::size_t used = 0;   // bytes of `text` shown
  for (; used < text.size(); ++used) {
    const auto byte = static_cast<unsigned char>(text[used]);
    const bool plain = byte >= 0x20 && byte < 0x7f && byte != '\\';
    if (shown + (plain ? 1 : 4) > limit) break;
    if (plain) {
      out += static_cast<char>(byte);
      shown += 1;
    } else {
      out += "\\x";
      out += kHex[byte >> 4U];
      out += kHex[byte & 0xfU];
      shown += 4;
    }
  }
  out += '\'';
  if (used < text.size()) out += " (cut, " + std::to_string(text.size()) + " bytes in all)";
  return out;
}

BackendError::BackendError(std::string backend, std::int64_t code, std::string code_name,
                           const std::string& what)
    : Error(backend + ": " + what + " failed: " + code_name + " (" + std::to_string(code) + ")"),
      backend_(std::move(backend)),
      code_(code),
      code_name_(std::move(code_name)) {}

namespace {
std::string out_of_memory_message(std::size_t requested, const std::string& device, std::size_t free_bytes,
                                  std::size_t total_bytes, const std::string& detail) {
  std::string msg = "out of memory on " + device + ": requested " + std::to_string(requested) + " bytes (" +
                    format_bytes(requested) + "), free " + format_bytes(free_bytes) + " of " +
                    format_bytes(total_bytes);
  if (!detail.empty()) msg += "; " + detail;
  return msg;
}
}  // namespace

OutOfMemory::OutOfMemory(std::size_t requested, std::string device, std::size_t free_bytes,
                         std::size_t total_bytes, const std::string& detail)
    : Error(out_of_memory_message(requested, device, free_bytes, total_bytes, detail)),
      requested_(requested),
      device_(std::move(device)),
      free_(free_bytes),
      total_(total_bytes) {}

std::string quoted_path(std::string_view path) {
  constexpr std::size_t kPathMax = 4096;
  return quoted(path, kPathMax);
}

}  // namespace unimem
