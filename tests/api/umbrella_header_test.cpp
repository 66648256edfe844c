// unimem.hpp compiles on its own (nothing else is included before it) and brings in every layer.

#include <gtest/gtest.h>

#include <string_view>

#include "unimem/unimem.hpp"

namespace unimem {
namespace {

TEST(UmbrellaHeader, EveryLayerIsThere) {
  HostBackend host;
  BackendResource memory(host, 0, MemoryKind::Device);
  const Buffer<int> buffer(memory, 4);
  EXPECT_EQ(buffer.size(), 4U);
  EXPECT_TRUE(host_addressable(memory));
  EXPECT_FALSE(std::string_view(UNIMEM_VERSION).empty());
}

// sizeof of an incomplete type does not compile: each of these is defined, not just declared.
static_assert(sizeof(MemoryManager) > 0 && sizeof(TransferEngine) > 0 && sizeof(P2PManager) > 0);
static_assert(sizeof(ObjectPool<int>) > 0 && sizeof(MirroredBuffer<int>) > 0 && sizeof(PmrResource) > 0);
static_assert(sizeof(Tensor<float>) > 0 && sizeof(HybridPool) > 0 && sizeof(ResourceStack) > 0);

}  // namespace
}  // namespace unimem
