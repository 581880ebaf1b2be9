#pragma once
/// @file nn/embedding.hpp
/// Embedding: a lookup table of V vectors of size C, indexed by token ids (grad::index_tensor).

#include "grad/core/factories.hpp"
#include "grad/core/index_tensor.hpp"
#include "grad/nn/init.hpp"
#include "grad/nn/module.hpp"
#include "grad/ops/embedding.hpp"

namespace grad::nn {

/// Rows of weight (V, C) selected by ids: ids (B, T) -> (B, T, C). Initialised N(0, 1) as PyTorch does.
template <element T = float>
class basic_embedding : public module_base<basic_embedding<T>, T> {
public:
  basic_tensor<T> weight; ///< (V, C)

  /// A table of num_embeddings vectors of size embedding_dim, drawn from gen.
  basic_embedding(std::size_t num_embeddings, std::size_t embedding_dim, generator& gen = default_generator())
      : weight(grad::zeros<T>({num_embeddings, embedding_dim}, {.requires_grad = true})) {
    init::normal(weight, 0.0, 1.0, gen);
  }
  /// ids (any shape S) -> (S..., C); throws value_error for an id outside [0, V).
  basic_tensor<T> forward(const index_tensor& ids) const { return grad::embedding(ids, weight); }
  /// Number of vectors V.
  std::size_t num_embeddings() const { return weight.size(0); }
  /// Size C of each vector.
  std::size_t embedding_dim() const { return weight.size(1); }
  /// Lists weight.
  template <class V>
  void visit(V& v) {
    v.param("weight", weight);
  }
};
/// Embedding module in float.
using embedding = basic_embedding<float>;

} // namespace grad::nn
