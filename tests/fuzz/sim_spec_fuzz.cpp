// libFuzzer target: unimem::SimulatedDeviceSpec::parse ("80GiB", "sim:1GiB:backed"). A spec it returns has a
// capacity of at least one byte, is backed exactly when the text says ":backed", and builds a SimulatedBackend.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "parser_fuzz_support.hpp"
#include "unimem/backend/simulated_backend.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using unimem::SimulatedDeviceSpec;
  using unimem::fuzz::require;
  const std::string_view text = unimem::fuzz::as_text(data, size);
  const auto spec = unimem::fuzz::parse_or_typed_error([&] { return SimulatedDeviceSpec::parse(text); });
  if (!spec) return 0;
  require(spec->capacity_bytes >= 1, "SimulatedDeviceSpec::parse returned a capacity of 0", text);
  require(spec->backed == text.ends_with(":backed"), "SimulatedDeviceSpec::parse got backed/unbacked wrong",
          text);
  (void)spec->to_string();
  // An unbacked device of any capacity costs nothing; a backed one allocates nothing until asked.
  const auto built = unimem::fuzz::parse_or_typed_error([&] {
    const unimem::SimulatedBackend backend({*spec});
    return backend.device_count();
  });
  require(built.has_value() && *built == 1, "a parsed simulated device spec does not build a backend", text);
  return 0;
}
