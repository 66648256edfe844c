// ObjectPool<T> rent+return against new/delete and malloc/free of the same object, in one run so that the
// figures compare; then a rent alone and a return alone (the design quotes < 100 ns and < 50 ns).
//
//   unimem_object_pool_bench [--benchmark_filter=...]   (build with CMAKE_BUILD_TYPE=Release for figures)

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

#include "unimem/core/object_pool.hpp"

namespace {

using namespace unimem;

// A request descriptor of a typical size: 128 bytes.
struct Request {
  std::uint64_t fields[16] = {};
};

void BM_NewDelete(benchmark::State& state) {
  for (auto _ : state) {
    auto* request = new Request();
    benchmark::DoNotOptimize(request);
    delete request;
  }
}
BENCHMARK(BM_NewDelete)->ThreadRange(1, 2);

void BM_MallocFree(benchmark::State& state) {
  for (auto _ : state) {
    void* memory = std::malloc(sizeof(Request));
    auto* request = new (memory) Request();
    benchmark::DoNotOptimize(request);
    std::free(memory);
  }
}
BENCHMARK(BM_MallocFree)->ThreadRange(1, 2);

ObjectPool<Request>& shared_pool() {
  static ObjectPool<Request> pool;
  return pool;
}

void BM_PoolRentReturn(benchmark::State& state) {
  ObjectPool<Request>& pool = shared_pool();
  for (auto _ : state) {
    ObjectPool<Request>::Lease lease = pool.rent();
    benchmark::DoNotOptimize(lease.get());
  }
}
BENCHMARK(BM_PoolRentReturn)->ThreadRange(1, 2);

void BM_PoolRentReturnWithReset(benchmark::State& state) {
  ObjectPool<Request> pool({}, [](Request& r) { r.fields[0] = 0; });
  for (auto _ : state) {
    ObjectPool<Request>::Lease lease = pool.rent();
    benchmark::DoNotOptimize(lease.get());
  }
}
BENCHMARK(BM_PoolRentReturnWithReset);

// Rents and returns timed apart: a batch of leases is rented with the clock running, returned with it paused,
// and the other way round.
constexpr int kBatch = 32;

void BM_PoolRentOnly(benchmark::State& state) {
  ObjectPool<Request> pool;
  std::vector<ObjectPool<Request>::Lease> leases(kBatch);
  for (auto _ : state) {
    for (auto& lease : leases) lease = pool.rent();
    state.PauseTiming();
    for (auto& lease : leases) lease = {};
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_PoolRentOnly);

void BM_PoolReturnOnly(benchmark::State& state) {
  ObjectPool<Request> pool;
  std::vector<ObjectPool<Request>::Lease> leases(kBatch);
  for (auto _ : state) {
    state.PauseTiming();
    for (auto& lease : leases) lease = pool.rent();
    state.ResumeTiming();
    for (auto& lease : leases) lease = {};
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_PoolReturnOnly);

}  // namespace

BENCHMARK_MAIN();
