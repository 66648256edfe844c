// libFuzzer target: unimem::parse_resource_spec ("hybrid:threshold=1MiB,..."). A spec it returns keeps the
// text and names the kind the text starts with; it is then built on an unbacked simulated device (the pools'
// own option checks must also answer with unimem errors) and the stack serves one small allocation.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "parser_fuzz_support.hpp"
#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/resource_spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace unimem;
  using unimem::fuzz::require;
  // 1 TiB unbacked: address ranges only, so large initial pools cost nothing.
  static SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = std::size_t{1} << 40U, .backed = false}});
  const std::string_view text = fuzz::as_text(data, size);
  const auto spec = fuzz::parse_or_typed_error([&] { return parse_resource_spec(text); });
  if (!spec) return 0;
  require(spec->text == text, "parse_resource_spec did not keep the text", text);
  const std::string_view kind_name = text.substr(0, text.find(':'));
  const std::string_view expected = kind_name == "pool" ? std::string_view("coalescing") : kind_name;
  require(to_string(spec->kind) == expected, "parse_resource_spec returned another kind", text);
  (void)fuzz::parse_or_typed_error([&] {
    ResourceStack stack = make_resource_stack(*spec, sim, 0, MemoryKind::Device);
    require(!stack.empty(), "make_resource_stack returned an empty stack", text);
    MemoryResource& top = stack.top();
    const Allocation a = top.allocate(64);
    require(top.deallocate(a), "a resource stack refused its own allocation back", text);
    return true;
  });
  return 0;
}
