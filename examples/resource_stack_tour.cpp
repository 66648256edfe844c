// Composing a resource stack by hand (the README's second example). The tests build and run it: ctest -R
// resource_stack_tour.

#include <cstdio>
#include <vector>

#include "unimem/backend/backend_registry.hpp"
#include "unimem/buffer/tensor.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/resource/hybrid_pool.hpp"
#include "unimem/resource/resource_stack.hpp"
#include "unimem/resource/statistics_adaptor.hpp"

int main() {
  using namespace unimem;

  BackendRegistry registry;
  // OpenCL device memory when there is an OpenCL device, host memory otherwise.
  Backend* opencl = registry.find(BackendKind::OpenCL);
  Backend& backend = opencl != nullptr && opencl->device_count() > 0 ? *opencl : registry.host();

  ResourceStack stack;
  auto& upstream = stack.push<BackendResource>(backend, 0, MemoryKind::Device);
  auto& pool = stack.push<HybridPool>(upstream);
  auto& stats = stack.push<StatisticsAdaptor>(pool);

  std::vector<float> values(256 * 1024, 1.5F);
  std::vector<float> back(values.size());
  for (int step = 0; step < 3; ++step) {
    Tensor<float> t(stats, TensorShape{256, 1024});  // RAII: the memory goes back to the pool
    t.upload(values, TensorShape{256, 1024});
    t.download(back, TensorShape{256, 1024});
  }
  const MemoryStats s = stats.stats();
  std::printf("%s: %llu allocations, %llu cache hits, %llu upstream allocations, data %s\n",
              std::string(backend.name()).c_str(), static_cast<unsigned long long>(s.allocation_count),
              static_cast<unsigned long long>(s.cache_hits),
              static_cast<unsigned long long>(s.upstream_allocations),
              back == values ? "intact" : "CORRUPTED");
  return back == values && s.cache_hits >= 2 ? 0 : 1;
}
