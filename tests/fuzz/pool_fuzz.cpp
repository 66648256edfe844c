// libFuzzer target: the pool models of tests/resource/pool_model.hpp and expandable_model.hpp driven by fuzz
// input instead of a seeded generator, against each pool on an unbacked simulated device. Any violation of
// a model aborts with the reason; AddressSanitizer and UndefinedBehaviorSanitizer catch the rest.
//
// Input: byte 0 picks the pool, byte 1 how often the upstream fails (0: never) or, for the expandable pool,
// its options and device (a 256 MiB one fills up: failed maps), then one operation per group of bytes
// (allocate, free, trim, double free, forged free) until the input runs out.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "resource/expandable_model.hpp"
#include "resource/pool_model.hpp"
#include "unimem/backend/simulated_backend.hpp"
#include "unimem/resource/backend_resource.hpp"

namespace {

using namespace unimem;

class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) noexcept : data_(data), size_(size) {}
  [[nodiscard]] bool empty() const noexcept { return position_ >= size_; }
  std::uint8_t byte() noexcept { return empty() ? 0 : data_[position_++]; }
  std::uint32_t bytes(int count) noexcept {
    std::uint32_t value = 0;
    for (int i = 0; i < count; ++i) value = (value << 8U) | byte();
    return value;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t position_ = 0;
};

void require(const std::string& error, const char* operation) {
  if (error.empty()) return;
  std::fprintf(stderr, "pool model violated by %s: %s\n", operation, error.c_str());
  std::abort();
}

// Runs the operations left in `in` against either model (both have the same operations).
template <typename Model>
void drive(Model& model, Input& in) {
  while (!in.empty()) {
    switch (in.byte() % 8) {
      case 0:
      case 1:
      case 2: {
        // Sizes up to 16 MiB, spread over every order of magnitude.
        const unsigned magnitude = in.byte() % 25U;
        const std::size_t bytes = 1 + in.bytes(3) % (std::size_t{1} << magnitude);
        constexpr std::size_t kAlignments[] = {256, 256, 256, 256, 1, 64, 512, 4096};
        require(model.allocate(bytes, kAlignments[in.byte() % 8]), "allocate");
        break;
      }
      case 3:
      case 4:
      case 5:
        require(model.free(in.bytes(2)), "free");
        break;
      case 6:
        require(model.trim(), "trim");
        break;
      default:
        if (in.byte() % 2 == 0) {
          require(model.free_again(in.byte()), "double free");
        } else {
          require(model.free_forged(in.bytes(2), in.byte()), "forged free");
        }
        break;
    }
  }
  require(model.finish(), "finish");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static SimulatedBackend sim({SimulatedDeviceSpec{.capacity_bytes = 64 * GiB, .backed = false},
                               SimulatedDeviceSpec{.capacity_bytes = 256 * MiB, .backed = false}});
  static BackendResource device(sim, 0, MemoryKind::Device);
  static BackendResource small_device(sim, 1, MemoryKind::Device);
  Input in(data, size);
  constexpr test::PoolKind kKinds[] = {test::PoolKind::SizeClass, test::PoolKind::Coalescing,
                                       test::PoolKind::Hybrid, test::PoolKind::Expandable};
  const test::PoolKind kind = kKinds[in.byte() % 4];
  const std::uint8_t setting = in.byte();
  if (kind == test::PoolKind::Expandable) {
    // Bits 0-1: the reservation (the device's memory, or ranges used up after a few requests); bit 2: a
    // 4 MiB granule; bit 3: the 256 MiB device.
    constexpr std::size_t kReservations[] = {0, 8 * MiB, 32 * MiB, 64 * MiB};
    const ExpandablePoolOptions options{.granule = (setting & 4U) != 0 ? 4 * MiB : 0,
                                        .reservation = kReservations[setting % 4U]};
    test::ExpandableModel model((setting & 8U) != 0 ? small_device : device, options);
    drive(model, in);
  } else {
    test::PoolModel model(kind, device, setting % 8);
    drive(model, in);
  }
  if (sim.live_segment_count() != 0) {
    std::fprintf(stderr, "%zu segments leaked\n", sim.live_segment_count());
    std::abort();
  }
  return 0;
}
