// Standard containers in pinned memory through PmrResource (the README's PmrResource example). The tests
// build and run it: ctest -R pmr_tour.

#include <cstdio>
#include <memory_resource>
#include <numeric>
#include <string>
#include <vector>

#include "unimem/backend/backend_registry.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/resource/hybrid_pool.hpp"
#include "unimem/resource/pmr_resource.hpp"

int main() {
  using namespace unimem;

  BackendRegistry registry;
  // Pinned memory of the first OpenCL device when there is one (PoCL here), host memory otherwise.
  Backend* opencl = registry.find(BackendKind::OpenCL);
  const bool pinned =
      opencl != nullptr && opencl->device_count() > 0 && opencl->supports(0, MemoryKind::PinnedHost);
  Backend& backend = pinned ? *opencl : registry.host();
  BackendResource upstream(backend, 0, pinned ? MemoryKind::PinnedHost : MemoryKind::Host);
  HybridPool pool(upstream);  // pinned allocations are slow: pool them

  PmrResource pmr(pool);
  std::pmr::vector<float> staging(&pmr);  // its elements live in page-locked memory
  for (int i = 0; i < 100000; ++i) staging.push_back(static_cast<float>(i % 7));
  const double sum = std::accumulate(staging.begin(), staging.end(), 0.0);

  std::printf("std::pmr::vector<float> of %zu elements in %s memory of %s, sum %.0f\n", staging.size(),
              std::string(to_string(upstream.kind())).c_str(), to_string(upstream.device()).c_str(), sum);
  return sum == 299995.0 ? 0 : 1;
}
