#pragma once
/// @file ops/embedding.hpp
/// embedding: gathers rows of a weight (V, C) by integer ids; backward scatter-adds into those rows.

#include <algorithm>
#include <string>

#include "grad/core/apply.hpp"
#include "grad/core/index_tensor.hpp"

namespace grad {
namespace detail {

/// Throws value_error naming `op`, the first id outside [0, n) and its position in `ids`.
inline void check_ids(std::string_view op, const index_tensor& ids, std::size_t n, std::string_view what) {
  for (std::size_t i = 0; i < ids.numel(); ++i) {
    const std::int64_t v = ids[i];
    if (v < 0 || static_cast<std::size_t>(v) >= n)
      throw value_error(std::string(op) + ": " + std::string(what) + " " + std::to_string(v) +
                        " at position " + std::to_string(i) + " is out of range [0, " + std::to_string(n) +
                        ")");
  }
}

} // namespace detail

namespace ops {

/// out[..., :] = weight[ids[...], :]: ids (B, T) and weight (V, C) give (B, T, C).
struct embedding_op {
  static constexpr std::string_view name = "embedding";
  index_tensor ids; // any shape; values in [0, V)

  shape_type shape(const shape_type& w) const {
    if (w.size() != 2)
      throw shape_error("embedding: weight must be 2-d (num_embeddings, embedding_dim), got " + to_string(w));
    detail::check_ids(name, ids, w[0], "index");
    shape_type out = ids.shape();
    out.push_back(w[1]);
    return out;
  }
  std::uint64_t flops(const shape_type&, const shape_type&) const { return 0; }

  template <class C>
  void forward(C& c) const {
    const std::size_t ch = c.in(0).shape()[1];
    const auto* w = c.in(0).data();
    auto* y = c.out().data();
    for (std::size_t i = 0; i < ids.numel(); ++i) {
      const auto* row = w + static_cast<std::size_t>(ids[i]) * ch;
      std::copy(row, row + ch, y + i * ch);
    }
  }
  template <class C>
  void backward(C& c) const {
    if (!c.needs_grad(0))
      return;
    const std::size_t ch = c.in(0).shape()[1];
    const auto* g = c.dout().data();
    auto* dw = c.din(0).data();
    for (std::size_t i = 0; i < ids.numel(); ++i) { // d out_i / d weight[ids_i] = 1; repeated ids accumulate
      auto* row = dw + static_cast<std::size_t>(ids[i]) * ch;
      for (std::size_t j = 0; j < ch; ++j)
        row[j] += g[i * ch + j];
    }
  }
};

} // namespace ops

/// Rows of weight (V, C) selected by ids (any shape S) -> (S..., C); throws value_error for an id
/// outside [0, V), naming it and its position.
template <element T>
basic_tensor<T> embedding(const index_tensor& ids, const basic_tensor<T>& weight) {
  return apply(ops::embedding_op{ids}, weight);
}

} // namespace grad
