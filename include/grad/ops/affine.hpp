#pragma once
/// @file ops/affine.hpp
/// affine(x, W, b) = x W + b with W stored (in, out): GPT-2's Conv1D layout (linear.hpp has PyTorch's
/// (out, in)). Hugging Face GPT-2 checkpoints load into it without a transpose.

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>

#include "grad/core/apply.hpp"
#include "grad/ops/gemm_dispatch.hpp"

namespace grad {
namespace ops {

/// y = x W + b with W (in, out) (GPT-2's Conv1D layout) and b (out): x (..., in) -> (..., out).
/// Inputs: x, W and optionally b.
struct affine_op {
  static constexpr std::string_view name = "affine";
  std::uint64_t out_numel_ = 0; ///< M N of the last forward

  static shape_type check(const shape_type& x, const shape_type& w) {
    if (w.size() != 2)
      throw shape_error("affine: weight must be 2-d (in_features, out_features), got " + to_string(w));
    if (x.empty() || x.back() != w[0])
      throw shape_error("affine: input " + to_string(x) +
                        " does not end in in_features = " + std::to_string(w[0]) + " of weight " +
                        to_string(w) + " (weight layout is (in, out), as GPT-2's Conv1D)");
    shape_type out = x;
    out.back() = w[1];
    return out;
  }
  shape_type shape(const shape_type& x, const shape_type& w) const { return check(x, w); }
  shape_type shape(const shape_type& x, const shape_type& w, const shape_type& b) const {
    shape_type out = check(x, w);
    if (b.size() != 1 || b[0] != w[1])
      throw shape_error("affine: bias " + to_string(b) + " must have shape (" + std::to_string(w[1]) +
                        ",) to match weight " + to_string(w));
    return out;
  }
  std::uint64_t flops(const shape_type& out, const shape_type& x, const shape_type&) const {
    return 2ull * numel(out) * x.back();
  }
  std::uint64_t flops(const shape_type& out, const shape_type& x, const shape_type&,
                      const shape_type&) const {
    return 2ull * numel(out) * x.back() + numel(out);
  }
  /// Backward: dx = dy W^T and dW = x^T dy each cost the forward's product (2 M N K); db sums dy's
  /// M N values.
  std::uint64_t backward_flops(std::uint64_t forward, std::span<const bool> needs) const {
    const std::uint64_t bias = needs.size() > 2 ? out_numel_ : 0;
    const std::uint64_t product = forward - bias;
    return product * (std::uint64_t(needs[0]) + std::uint64_t(needs[1])) +
           (needs.size() > 2 && needs[2] ? bias : 0);
  }

  template <class C>
  void forward(C& c) {
    using T = typename C::value_type;
    out_numel_ = c.out().size();                                      // for backward_flops
    const std::size_t k = c.in(1).shape()[0], n = c.in(1).shape()[1]; // in, out
    const std::size_t m = n ? c.out().size() / n : 0;
    T* y = c.out().data();
    if (c.size() == 3) { // y = b broadcast over rows, then y += x W
      const T* b = c.in(2).data();
      for (std::size_t i = 0; i < m; ++i)
        std::copy(b, b + n, y + i * n);
    }
    // y (M, out) = x (M, in) @ W (in, out) (+ y)
    detail::gemm_dispatch<T>(false, false, m, n, k, T(1), c.in(0).data(), k, c.in(1).data(), n,
                             c.size() == 3 ? T(1) : T(0), y, n);
  }

  template <class C>
  void backward(C& c) const {
    using T = typename C::value_type;
    const std::size_t k = c.in(1).shape()[0], n = c.in(1).shape()[1];
    const std::size_t m = n ? c.out().size() / n : 0;
    const T* g = c.dout().data(); // (M, out)
    if (c.needs_grad(0))          // dx (M, in) += g (M, out) @ W^T (out, in)      d(x W)/dx = W^T
      detail::gemm_dispatch<T>(false, true, m, k, n, T(1), g, n, c.in(1).data(), n, T(1), c.din(0).data(), k);
    if (c.needs_grad(1)) // dW (in, out) += x^T (in, M) @ g (M, out)    d(x W)/dW = x^T
      detail::gemm_dispatch<T>(true, false, k, n, m, T(1), c.in(0).data(), k, g, n, T(1), c.din(1).data(), n);
    if (c.size() == 3 && c.needs_grad(2)) { // db (out) += sum over rows of g    d(y)/db = 1
      T* db = c.din(2).data();
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j)
          db[j] += g[i * n + j];
    }
  }
};

} // namespace ops

/// y = x W + b with W (in, out) (GPT-2's Conv1D layout): x (..., in) -> (..., out); an undefined bias
/// is skipped.
template <element T>
basic_tensor<T> affine(const basic_tensor<T>& x, const basic_tensor<T>& weight,
                       const basic_tensor<T>& bias = {}) {
  if (!bias.defined())
    return apply(ops::affine_op{}, x, weight);
  return apply(ops::affine_op{}, x, weight, bias);
}

} // namespace grad
