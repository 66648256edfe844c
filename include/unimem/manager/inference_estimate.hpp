#pragma once
// Memory needed to serve a decoder-only transformer (Llama/Mistral shape: grouped-query attention, gated MLP,
// untied embeddings). The formulas are in docs/manager.md; Mistral 7B gives 7,241,732,096 parameters, its
// published count.

#include <cstddef>

namespace unimem {

struct TransformerShape {
  std::size_t hidden = 0;        // model width
  std::size_t intermediate = 0;  // MLP width
  std::size_t layers = 0;
  std::size_t vocab = 0;
  std::size_t heads = 0;     // attention heads; hidden must be a multiple
  std::size_t kv_heads = 0;  // key/value heads (grouped-query attention); heads must be a multiple
};

struct InferenceMemoryEstimate {
  std::size_t parameters = 0;
  std::size_t weights_bytes = 0;
  std::size_t kv_cache_bytes = 0;
  std::size_t activation_bytes = 0;  // peak working set of one forward pass over the sequence
  std::size_t total_bytes = 0;
};

// Throws InvalidArgument naming the field for a zero dimension, hidden not a multiple of heads, heads not a
// multiple of kv_heads, or a product that overflows.
[[nodiscard]] InferenceMemoryEstimate estimate_inference_memory(const TransformerShape& shape, std::size_t seq_len,
                                                                std::size_t bytes_per_element, std::size_t batch = 1);

// The positional form.
[[nodiscard]] InferenceMemoryEstimate estimate_inference_memory(std::size_t hidden, std::size_t intermediate,
                                                                std::size_t layers, std::size_t vocab,
                                                                std::size_t heads, std::size_t kv_heads,
                                                                std::size_t seq_len, std::size_t bytes_per_element);

}  // namespace unimem
