// libFuzzer target: unimem::parse_bytes. Besides "a value or a unimem error", it checks the value against a
// reference reading of the documented grammar (optional spaces, decimal digits, an optional "." and
// fraction, an optional unit B / K / M / G / T / P with an optional "B" or "iB", any case, binary multiples):
//   - every result is at least one byte;
//   - digits with no point: the result is exactly value x 2^(10 k), and the parse must succeed whenever that
//     product fits in 64 bits (and value > 0), and must fail when it does not;
//   - digits with a point: whole x 2^(10 k) <= result <= (whole + 1) x 2^(10 k) (the fraction is rounded to
//     the nearest byte, so never more than one unit above the whole part);
//   - input outside the grammar must be rejected.

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "parser_fuzz_support.hpp"
#include "unimem/core/size.hpp"

namespace {

using unimem::fuzz::require;
using u128 = unsigned __int128;

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

struct Reading {
  bool in_grammar = false;
  bool has_point = false;
  bool whole_fits = true;  // the whole part is below 2^64
  std::uint64_t whole = 0;
  unsigned shift = 0;      // 10 x the unit's power of 1024
};

Reading read(std::string_view text) {
  Reading r;
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  std::size_t i = 0;
  std::size_t whole_digits = 0;
  for (; i < text.size() && is_digit(text[i]); ++i, ++whole_digits) {
    const u128 next = static_cast<u128>(r.whole) * 10U + static_cast<unsigned>(text[i] - '0');
    if (next > UINT64_MAX) r.whole_fits = false;
    r.whole = static_cast<std::uint64_t>(next);
  }
  std::size_t fraction_digits = 0;
  if (i < text.size() && text[i] == '.') {
    r.has_point = true;
    for (++i; i < text.size() && is_digit(text[i]); ++i) ++fraction_digits;
  }
  if (whole_digits == 0 && fraction_digits == 0) return r;
  std::string unit;
  for (; i < text.size(); ++i) {
    if (!is_space(text[i])) unit += static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
  }
  if (!unit.empty() && unit != "b") {
    const std::string_view prefixes = "kmgtp";
    const std::size_t power = prefixes.find(unit[0]);
    const std::string_view suffix = std::string_view(unit).substr(1);
    if (power == std::string_view::npos || !(suffix.empty() || suffix == "b" || suffix == "ib")) return r;
    r.shift = static_cast<unsigned>(10 * (power + 1));
  }
  r.in_grammar = true;
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = unimem::fuzz::as_text(data, size);
  const auto result = unimem::fuzz::parse_or_typed_error([&] { return unimem::parse_bytes(text); });
  const Reading r = read(text);
  if (!result) {
    // Exact forms that fit must parse.
    if (r.in_grammar && !r.has_point && r.whole_fits && r.whole > 0) {
      const u128 exact = static_cast<u128>(r.whole) << r.shift;
      require(exact > UINT64_MAX, "parse_bytes rejected a size that fits in 64 bits", text);
    }
    return 0;
  }
  const std::size_t bytes = *result;
  require(bytes >= 1, "parse_bytes returned 0", text);
  require(r.in_grammar, "parse_bytes accepted text outside its grammar", text);
  require(r.whole_fits, "parse_bytes accepted a whole part of 2^64 or more", text);
  const u128 low = static_cast<u128>(r.whole) << r.shift;
  if (!r.has_point) {
    require(static_cast<u128>(bytes) == low, "parse_bytes returned a value other than value x unit", text);
  } else {
    const u128 high = low + (static_cast<u128>(1) << r.shift);
    require(static_cast<u128>(bytes) >= low && static_cast<u128>(bytes) <= high,
            "parse_bytes returned a value outside [whole, whole + 1] x unit", text);
  }
  (void)unimem::format_bytes(bytes);
  return 0;
}
