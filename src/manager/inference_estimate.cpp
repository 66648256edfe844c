#include "unimem/manager/inference_estimate.hpp"

#include <string>

#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem {

namespace {
void require_positive(const char* field, std::size_t value) {
  if (value == 0)
    throw InvalidArgument(std::string("estimate_inference_memory: ") + field + " must be positive");
}
}  // namespace

InferenceMemoryEstimate estimate_inference_memory(const TransformerShape& shape, std::size_t seq_len,
                                                  std::size_t bytes_per_element, std::size_t batch) {
  require_positive("hidden", shape.hidden);
  require_positive("intermediate", shape.intermediate);
  require_positive("layers", shape.layers);
  require_positive("vocab", shape.vocab);
  require_positive("heads", shape.heads);
  require_positive("kv_heads", shape.kv_heads);
  require_positive("seq_len", seq_len);
  require_positive("bytes_per_element", bytes_per_element);
  require_positive("batch", batch);
  if (shape.hidden % shape.heads != 0) {
    throw InvalidArgument("estimate_inference_memory: hidden " + std::to_string(shape.hidden) +
                          " is not a multiple of heads " + std::to_string(shape.heads));
  }
  if (shape.heads % shape.kv_heads != 0) {
    throw InvalidArgument("estimate_inference_memory: heads " + std::to_string(shape.heads) +
                          " is not a multiple of kv_heads " + std::to_string(shape.kv_heads));
  }
  const std::size_t h = shape.hidden;
  const std::size_t kv_width = checked_mul(h / shape.heads, shape.kv_heads);

  // Per layer: q and o projections (h x h each), k and v projections (h x kv_width each), the gated MLP's
  // gate, up and down projections (h x intermediate each), and two RMSNorm weight vectors.
  const std::size_t attention = checked_add(checked_mul(2 * h, h), checked_mul(2 * h, kv_width));
  const std::size_t mlp = checked_mul(3 * h, shape.intermediate);
  const std::size_t per_layer = checked_add(checked_add(attention, mlp), 2 * h);
  // Input embedding and output head (untied), and the final norm.
  const std::size_t embeddings = checked_add(checked_mul(2 * shape.vocab, h), h);

  InferenceMemoryEstimate e;
  e.parameters = checked_add(checked_mul(per_layer, shape.layers), embeddings);
  e.weights_bytes = checked_mul(e.parameters, bytes_per_element);
  // Keys and values for every layer and position.
  e.kv_cache_bytes = checked_mul(checked_mul(checked_mul(2 * shape.layers, seq_len), kv_width),
                                 checked_mul(bytes_per_element, batch));
  // Layers run one after another, so the peak is one layer's working set: the residual stream and one
  // normalized copy (2 x h), the MLP's gate and up outputs (2 x intermediate), and unfused attention scores
  // (heads x seq_len x seq_len); plus the logits of the last position in fp32.
  const std::size_t tokens = checked_mul(seq_len, batch);
  const std::size_t per_token = checked_add(2 * h, 2 * shape.intermediate);
  const std::size_t scores = checked_mul(checked_mul(shape.heads, seq_len), checked_mul(seq_len, batch));
  e.activation_bytes =
      checked_add(checked_mul(checked_add(checked_mul(tokens, per_token), scores), bytes_per_element),
                  checked_mul(checked_mul(shape.vocab, batch), 4));
  e.total_bytes = checked_add(checked_add(e.weights_bytes, e.kv_cache_bytes), e.activation_bytes);
  return e;
}

InferenceMemoryEstimate estimate_inference_memory(std::size_t hidden, std::size_t intermediate,
                                                  std::size_t layers, std::size_t vocab, std::size_t heads,
                                                  std::size_t kv_heads, std::size_t seq_len,
                                                  std::size_t bytes_per_element) {
  return estimate_inference_memory(TransformerShape{hidden, intermediate, layers, vocab, heads, kv_heads},
                                   seq_len, bytes_per_element);
}

}  // namespace unimem
