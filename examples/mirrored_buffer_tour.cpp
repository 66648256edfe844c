// MirroredBuffer through the manager (the README's MirroredBuffer example): an iterative loop where the
// device updates a state and the host inspects it a few times per step. The tests build and run it: ctest -R
// mirrored_buffer_tour. It prints the transfers the buffer made and avoided, against a program that copies
// on every access.

#include <algorithm>
#include <cstdio>
#include <string>

#include "unimem/manager/memory_manager.hpp"

int main() {
  using namespace unimem;

  MemoryManager manager;  // under POCL_DEVICES="pthread pthread": the first OpenCL device, pinned host copy
  constexpr int kSteps = 16;
  constexpr std::size_t kCount = 1 << 20;

  MirroredBuffer<float> state = manager.allocate_mirrored<float>(kCount);
  std::ranges::fill(state.host_span(), 0.0F);  // host writes: the device copy is stale
  bool intact = true;
  int accesses = 1;
  for (int step = 1; step <= kSteps; ++step) {
    state.device_view().fill(static_cast<float>(step));  // device work (uploads only when the host is newer)
    state.mark_device_modified();                        // the host copy is stale now
    const float first = state.host_span_const()[0];      // downloads once...
    const float last = state.host_span_const()[kCount - 1];  // ...and a read after a read moves nothing
    {
      const MirroredBuffer<float>::Mapping view = state.map(MapMode::Read);
      intact =
          intact && first == static_cast<float>(step) && last == first && view.span()[kCount / 2] == first;
    }
    accesses += 4;
  }
  std::printf(
      "%s: %d accesses of %zu floats on %s, %llu transfers done, %llu avoided (copying on every access: "
      "%d)%s\n",
      state.single_copy() ? "one copy" : "two copies", accesses, state.size(),
      to_string(state.device()).c_str(), static_cast<unsigned long long>(state.transfers_done()),
      static_cast<unsigned long long>(state.transfers_avoided()), accesses, intact ? "" : "; DATA WRONG");
  return intact ? 0 : 1;
}
