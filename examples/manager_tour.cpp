// A short tour of the MemoryManager (the README's example). The tests build and run it: ctest -R
// manager_tour.

#include <cstdio>
#include <numeric>
#include <span>
#include <vector>

#include "unimem/core/size.hpp"
#include "unimem/manager/inference_estimate.hpp"
#include "unimem/manager/memory_manager.hpp"

int main() {
  using namespace unimem;

  // Every device of every backend, configured from UNIMEM_CONF (e.g. "preset=inference,fraction=0.8").
  MemoryManager manager;
  std::printf("default device %s; platform %s (%s)\n", to_string(manager.default_device()).c_str(),
              manager.platform().name.c_str(), std::string(to_string(manager.platform().visibility)).c_str());

  // An unnamed buffer: pooled on the default device (host memory if the device is full), back to the pool
  // when it goes out of scope.
  std::vector<float> input(1 << 16);
  std::iota(input.begin(), input.end(), 0.0F);
  {
    Buffer<float> x = manager.allocate<float>(input.size());
    x.copy_from_host(input);
    std::printf("x: %zu floats on %s\n", x.size(), to_string(x.device()).c_str());
  }

  // A named buffer: looked up by name, grown with its contents kept, freed by name.
  manager.named()
      .create<float>("kv_cache", 4096, BufferConfig::growable())
      .copy_from_host(std::span(input).first(4096));
  const BufferView<float> kv = manager.named().grow<float>("kv_cache", 6000);  // 8192 elements now
  std::printf("kv_cache: %zu floats, element 4095 = %.0f\n", kv.size(), kv.to_vector()[4095]);
  manager.named().free("kv_cache");

  // Statistics over every device and kind of memory.
  const MemoryStats stats = manager.stats();
  std::printf("%llu allocations, pool hit rate %.2f, %s pooled\n",
              static_cast<unsigned long long>(stats.allocation_count), stats.hit_rate(),
              format_bytes(stats.pooled_bytes).c_str());

  // Which device can serve Mistral 7B in fp16 with a 4096-token context?
  const InferenceMemoryEstimate mistral =
      estimate_inference_memory(TransformerShape{4096, 14336, 32, 32000, 32, 8}, 4096, 2);
  try {
    const BackendSelection where = manager.select_backend_for_model(mistral.total_bytes);
    std::printf("Mistral 7B (%s) fits on %s\n", format_bytes(mistral.total_bytes).c_str(),
                to_string(where.device).c_str());
  } catch (const OutOfMemory& e) {
    std::printf("Mistral 7B (%s) fits nowhere: %s\n", format_bytes(mistral.total_bytes).c_str(), e.what());
  }

  std::printf("%s\n", manager.leak_report().c_str());
  return manager.check_leaks().clean() ? 0 : 1;
}
