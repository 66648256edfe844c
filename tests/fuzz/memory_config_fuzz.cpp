// libFuzzer target: unimem::MemoryConfig::parse (the UNIMEM_CONF syntax). A config it returns must pass
// validate() and must round-trip: parse(to_string()) gives the same config back, from any base.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "parser_fuzz_support.hpp"
#include "unimem/manager/memory_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using unimem::MemoryConfig;
  using unimem::fuzz::require;
  const std::string_view text = unimem::fuzz::as_text(data, size);
  const auto config = unimem::fuzz::parse_or_typed_error([&] { return MemoryConfig::parse(text); });
  // The same text over another base exercises the preset ordering; its outcome need not match.
  (void)unimem::fuzz::parse_or_typed_error([&] { return MemoryConfig::parse(text, MemoryConfig::for_constrained()); });
  if (!config) return 0;
  const auto valid = unimem::fuzz::parse_or_typed_error([&] {
    config->validate();
    return true;
  });
  require(valid.has_value(), "MemoryConfig::parse returned a config that validate() rejects", text);
  const std::string written = config->to_string();
  const auto again =
      unimem::fuzz::parse_or_typed_error([&] { return MemoryConfig::parse(written, MemoryConfig::for_inference()); });
  require(again.has_value(), "MemoryConfig::parse rejects what to_string() wrote", written);
  require(*again == *config, "MemoryConfig does not round-trip through to_string()", written);
  return 0;
}
