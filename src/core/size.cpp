#include "unimem/core/size.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <limits>
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
  auto fail = [&](const char* why) -> std::size_t {
    throw InvalidArgument("cannot parse size " + quoted(text) + ": " + why);
  };
  std::string_view rest = text;
  while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.front())) != 0) rest.remove_prefix(1);
  while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.back())) != 0) rest.remove_suffix(1);

  // Whole part in exact integer arithmetic; the fraction as a decimal string, scaled exactly below.
  std::size_t whole = 0;
  std::size_t whole_digits = 0;
  while (whole_digits < rest.size() && std::isdigit(static_cast<unsigned char>(rest[whole_digits])) != 0) {
    const auto digit = static_cast<std::size_t>(rest[whole_digits] - '0');
    if (__builtin_mul_overflow(whole, std::size_t{10}, &whole) ||
        __builtin_add_overflow(whole, digit, &whole)) {
      return fail("larger than 2^64 - 1 bytes");
    }
    ++whole_digits;
  }
  rest.remove_prefix(whole_digits);
  std::string_view fraction;
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    std::size_t n = 0;
    while (n < rest.size() && std::isdigit(static_cast<unsigned char>(rest[n])) != 0) ++n;
    fraction = rest.substr(0, n);
    rest.remove_prefix(n);
  }
  if (whole_digits == 0 && fraction.empty()) return fail("expected a number");

  std::string unit;
  for (char c : rest) {
    if (std::isspace(static_cast<unsigned char>(c)) == 0) unit += static_cast<char>(std::tolower(c));
  }
  unsigned shift = 0;
  if (!unit.empty() && unit != "b") {
    static constexpr std::string_view kPrefixes = "kmgtp";
    const std::size_t power = kPrefixes.find(unit[0]);
    const std::string_view suffix = std::string_view(unit).substr(1);
    if (power == std::string_view::npos || !(suffix.empty() || suffix == "b" || suffix == "ib")) {
      return fail("unknown unit (use B, KiB, MiB, GiB, TiB, PiB)");
    }
    shift = static_cast<unsigned>(10 * (power + 1));
  }

  if (shift > 0 && whole > (std::numeric_limits<std::size_t>::max() >> shift)) {
    return fail("larger than 2^64 - 1 bytes");
  }
  std::size_t bytes = whole << shift;
  // fraction * 2^shift by doubling the decimal digits `shift` times: exact, with no floating point. Digits
  // past the 30th cannot change a count below 2^64 by a whole byte.
  std::array<unsigned char, 30> digits{};
  const std::size_t count = std::min(fraction.size(), digits.size());
  for (std::size_t i = 0; i < count; ++i) digits[i] = static_cast<unsigned char>(fraction[i] - '0');
  std::size_t fraction_bytes = 0;
  for (unsigned step = 0; step < shift; ++step) {
    unsigned carry = 0;
    for (std::size_t i = count; i-- > 0;) {
      const unsigned doubled = digits[i] * 2U + carry;
      digits[i] = static_cast<unsigned char>(doubled % 10U);
      carry = doubled / 10U;
    }
    fraction_bytes = fraction_bytes * 2 + carry;
  }
  if (whole == 0 && fraction_bytes == 0) return fail("a size must be at least one byte");
  const std::size_t round_up = count > 0 && digits[0] >= 5 ? 1 : 0;
  if (__builtin_add_overflow(bytes, fraction_bytes + round_up, &bytes))
    return fail("larger than 2^64 - 1 bytes");
  return bytes;
}

}  // namespace unimem
