// Allocate+free pairs per resource against malloc/free, 256 B to 1 MiB, on one and two threads. Every pool
// sits on a BackendResource over the host backend, as in a host memory stack.
//
//   unimem_pool_bench [--benchmark_filter=...]   (build with CMAKE_BUILD_TYPE=Release for figures)

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <vector>

#include "unimem/backend/host_backend.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/resource/coalescing_pool.hpp"
#include "unimem/resource/hybrid_pool.hpp"
#include "unimem/resource/size_class_pool.hpp"

namespace {

using namespace unimem;

enum class Resource { Backend, SizeClass, Coalescing, Hybrid };

// One set of resources for the whole program, shared by the threads of a multi-threaded run.
struct Resources {
  HostBackend host;
  BackendResource upstream{host, 0, MemoryKind::Host};
  SizeClassPool size_class{upstream};
  CoalescingPool coalescing{upstream};
  HybridPool hybrid{upstream};

  MemoryResource& get(Resource which) {
    switch (which) {
      case Resource::Backend:
        return upstream;
      case Resource::SizeClass:
        return size_class;
      case Resource::Coalescing:
        return coalescing;
      case Resource::Hybrid:
        return hybrid;
    }
    return upstream;
  }
};

Resources& resources() {
  static Resources shared;
  return shared;
}

void allocate_free_pairs(benchmark::State& state, Resource which) {
  MemoryResource& resource = resources().get(which);
  const auto bytes = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    Allocation allocation = resource.allocate(bytes);
    benchmark::DoNotOptimize(allocation);
    resource.deallocate(allocation);
  }
  state.SetItemsProcessed(state.iterations());
}

void malloc_free_pairs(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    void* p = std::malloc(bytes);
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
  state.SetItemsProcessed(state.iterations());
}

// A coalescing pool holding `state.range(0)` free ranges of assorted sizes between live ones (none can
// merge), serving 1 KiB pairs: the best-fit search over thousands of ranges.
void coalescing_fragmented(benchmark::State& state) {
  CoalescingPool pool(resources().upstream, CoalescingPoolOptions{.initial_size = 64 * MiB});
  const auto holes = static_cast<std::size_t>(state.range(0));
  std::vector<Allocation> blocks;
  for (std::size_t i = 0; i < 2 * holes; ++i)
    blocks.push_back(pool.allocate(kDefaultAlignment * (1 + i % 16)));
  for (std::size_t i = 0; i < blocks.size(); i += 2) pool.deallocate(blocks[i]);
  for (auto _ : state) {
    Allocation allocation = pool.allocate(KiB);
    benchmark::DoNotOptimize(allocation);
    pool.deallocate(allocation);
  }
  state.counters["free_ranges"] = static_cast<double>(pool.fragmentation().free_range_count);
  for (std::size_t i = 1; i < blocks.size(); i += 2) pool.deallocate(blocks[i]);
  state.SetItemsProcessed(state.iterations());
}

// Every request misses (nothing is cached): the cost of one upstream allocation per block.
void size_class_uncached(benchmark::State& state) {
  SizeClassPool pool(resources().upstream, SizeClassPoolOptions{.max_pooled_per_bucket = 0});
  const auto bytes = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    Allocation allocation = pool.allocate(bytes);
    benchmark::DoNotOptimize(allocation);
    pool.deallocate(allocation);
  }
  state.SetItemsProcessed(state.iterations());
}

void sizes(benchmark::internal::Benchmark* b) {
  b->RangeMultiplier(4)->Range(256, static_cast<std::int64_t>(MiB))->Threads(1)->Threads(2)->UseRealTime();
}

}  // namespace

BENCHMARK(malloc_free_pairs)->Apply(sizes);
BENCHMARK_CAPTURE(allocate_free_pairs, backend_resource, Resource::Backend)->Apply(sizes);
BENCHMARK_CAPTURE(allocate_free_pairs, size_class_pool, Resource::SizeClass)->Apply(sizes);
BENCHMARK_CAPTURE(allocate_free_pairs, coalescing_pool, Resource::Coalescing)->Apply(sizes);
BENCHMARK_CAPTURE(allocate_free_pairs, hybrid_pool, Resource::Hybrid)->Apply(sizes);
BENCHMARK(coalescing_fragmented)->Arg(1024)->Arg(4096);
BENCHMARK(size_class_uncached)->Arg(256)->Arg(64 * 1024);

BENCHMARK_MAIN();
