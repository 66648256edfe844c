#include "unimem/manager/inference_estimate.hpp"

#include <gtest/gtest.h>

#include <limits>

#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem {
namespace {

// Mistral 7B: 4096 hidden, 14336 intermediate, 32 layers, 32000 vocab, 32 heads, 8 KV heads.
constexpr TransformerShape kMistral7B{4096, 14336, 32, 32000, 32, 8};

TEST(InferenceEstimate, Mistral7BMatchesItsPublishedParameterCount) {
  const auto e = estimate_inference_memory(kMistral7B, 4096, 2);
  EXPECT_EQ(e.parameters, 7'241'732'096U);  // the count Mistral AI publishes
  EXPECT_EQ(e.weights_bytes, 2 * e.parameters);
  // 2 (K and V) x 32 layers x 1024 KV width x 2 bytes = 128 KiB per token; 4096 tokens = 512 MiB.
  EXPECT_EQ(e.kv_cache_bytes, 512 * MiB);
  EXPECT_EQ(e.total_bytes, e.weights_bytes + e.kv_cache_bytes + e.activation_bytes);
  EXPECT_GT(e.activation_bytes, 0U);
  EXPECT_LT(e.activation_bytes, e.weights_bytes / 4) << "one layer's working set is small next to the weights";
}

TEST(InferenceEstimate, ScalesAsTheFormulasSay) {
  const auto a = estimate_inference_memory(kMistral7B, 1024, 2);
  const auto b = estimate_inference_memory(kMistral7B, 2048, 2);
  EXPECT_EQ(b.kv_cache_bytes, 2 * a.kv_cache_bytes);
  EXPECT_EQ(a.weights_bytes, b.weights_bytes);
  const auto fp32 = estimate_inference_memory(kMistral7B, 1024, 4);
  EXPECT_EQ(fp32.weights_bytes, 2 * a.weights_bytes);
  const auto batch4 = estimate_inference_memory(kMistral7B, 1024, 2, 4);
  EXPECT_EQ(batch4.kv_cache_bytes, 4 * a.kv_cache_bytes);
  // Full multi-head attention (kv_heads == heads) quadruples Mistral's KV cache.
  TransformerShape mha = kMistral7B;
  mha.kv_heads = 32;
  EXPECT_EQ(estimate_inference_memory(mha, 1024, 2).kv_cache_bytes, 4 * a.kv_cache_bytes);
  const auto positional = estimate_inference_memory(4096, 14336, 32, 32000, 32, 8, 1024, 2);
  EXPECT_EQ(positional.total_bytes, a.total_bytes);
}

TEST(InferenceEstimate, RejectsBadShapesByName) {
  auto message = [](TransformerShape s, std::size_t seq, std::size_t bytes) -> std::string {
    try {
      (void)estimate_inference_memory(s, seq, bytes);
    } catch (const InvalidArgument& e) {
      return e.what();
    }
    return "accepted";
  };
  TransformerShape s = kMistral7B;
  s.layers = 0;
  EXPECT_NE(message(s, 16, 2).find("layers"), std::string::npos);
  EXPECT_NE(message(kMistral7B, 0, 2).find("seq_len"), std::string::npos);
  EXPECT_NE(message(kMistral7B, 16, 0).find("bytes_per_element"), std::string::npos);
  s = kMistral7B;
  s.heads = 30;
  EXPECT_NE(message(s, 16, 2).find("not a multiple of heads"), std::string::npos);
  s = kMistral7B;
  s.kv_heads = 5;
  EXPECT_NE(message(s, 16, 2).find("kv_heads"), std::string::npos);
  EXPECT_NE(message(kMistral7B, std::numeric_limits<std::size_t>::max() / 4, 2).find("overflow"),
            std::string::npos);
}

}  // namespace
}  // namespace unimem
