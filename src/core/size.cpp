#include "unimem/core/size.hpp"

#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <string>

namespace unimem {

void throw_size_overflow(const char* op, std::size_t a, std::size_t b) {
  throw InvalidArgument("size overflow: " + std::to_string(a) + " " + op + " " + std::to_string(b) +
                        " does not fit in 64 bits");
}

void check_range(std::string_view what, std::size_t offset, std::size_t bytes, std::size_t size) {
  std::size_t end = 0;
  if (__builtin_add_overflow(offset, bytes, &end) || end > size) {
    throw InvalidArgument(std::string(what) + ": range [" + std::to_string(offset) + ", " +
                          std::to_string(offset) + " + " + std::to_string(bytes) + ") lies outside its " +
                          std::to_string(size) + " bytes");
  }
}

std::string format_bytes(std::size_t bytes) {
  static constexpr std::array<const char*, 6> kUnits = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < KiB) return std::to_string(bytes) + " B";
  auto value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < kUnits.size()) {
    value /= 1024.0;
    ++unit;
  }
  std::array<char, 32> text{};
  std::snprintf(text.data(), text.size(), "%.2f %s", value, kUnits[unit]);
  return text.data();
}

std::size_t parse_bytes(std::string_view text) {
  const std::string original(text);
  auto fail = [&](const char* why) -> std::size_t {
    throw InvalidArgument("cannot parse size '" + original + "': " + why);
  };
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())) != 0) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())) != 0) text.remove_suffix(1);
  std::size_t digits = 0;
  bool seen_point = false;
  while (digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) != 0 ||
                                  (text[digits] == '.' && !seen_point))) {
    seen_point = seen_point || text[digits] == '.';
    ++digits;
  }
  if (digits == 0) return fail("expected a number");
  const std::string number(text.substr(0, digits));
  std::string unit;
  for (char c : text.substr(digits)) {
    if (std::isspace(static_cast<unsigned char>(c)) == 0) unit += static_cast<char>(std::tolower(c));
  }
  double multiplier = 1.0;
  if (unit.empty() || unit == "b") {
    multiplier = 1.0;
  } else {
    static constexpr std::string_view kPrefixes = "kmgtp";
    const std::size_t power = kPrefixes.find(unit[0]);
    const std::string_view rest = std::string_view(unit).substr(1);
    if (power == std::string_view::npos || !(rest.empty() || rest == "b" || rest == "ib")) {
      return fail("unknown unit (use B, KiB, MiB, GiB, TiB, PiB)");
    }
    multiplier = std::ldexp(1.0, static_cast<int>(10 * (power + 1)));
  }
  const double value = std::stod(number) * multiplier;
  if (!(value >= 1.0)) return fail("a size must be at least one byte");
  if (value >= 18446744073709551616.0) return fail("larger than 2^64 bytes");
  if (!seen_point) {
    // Integers are exact: multiply in integer arithmetic so that "17179869184" keeps every bit.
    const std::size_t count = std::stoull(number);
    return checked_mul(count, static_cast<std::size_t>(multiplier));
  }
  return static_cast<std::size_t>(std::llround(value));
}

}  // namespace unimem
