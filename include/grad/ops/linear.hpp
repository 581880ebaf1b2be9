#pragma once
/// @file ops/linear.hpp
/// Fused linear layer y = x W^T + b with PyTorch's weight layout (out, in): one GEMM that reads W
/// transposed in place (no transpose copy), the bias added in the same pass over y.

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>

#include "grad/core/apply.hpp"
#include "grad/ops/gemm_dispatch.hpp"

namespace grad {
namespace ops {

/// x (..., in) @ W^T (in, out) + b (out) -> (..., out). Inputs: x, W and optionally b.
struct linear_op {
  static constexpr std::string_view name = "linear";
  std::uint64_t out_numel_ = 0; ///< M N of the last forward

  static shape_type check(const shape_type& x, const shape_type& w) {
    if (w.size() != 2)
      throw shape_error("linear: weight must be 2-d (out_features, in_features), got " + to_string(w));
    if (x.empty() || x.back() != w[1])
      throw shape_error("linear: input " + to_string(x) +
                        " does not end in in_features = " + std::to_string(w[1]) + " of weight " +
                        to_string(w) + " (weight layout is (out, in), as in PyTorch)");
    shape_type out = x;
    out.back() = w[0];
    return out;
  }
  shape_type shape(const shape_type& x, const shape_type& w) const { return check(x, w); }
  shape_type shape(const shape_type& x, const shape_type& w, const shape_type& b) const {
    shape_type out = check(x, w);
    if (b.size() != 1 || b[0] != w[0])
      throw shape_error("linear: bias " + to_string(b) + " must have shape (" + std::to_string(w[0]) +
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
  /// Backward: dx = dy W and dW = dy^T x each cost the forward's product (2 M N K); db sums dy's
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
    const std::size_t k = c.in(1).shape()[1], n = c.in(1).shape()[0]; // in, out
    const std::size_t m = k ? c.in(0).size() / k : c.out().size() / std::max<std::size_t>(n, 1);
    T* y = c.out().data();
    // y (M, out) = x (M, in) @ W^T (in, out)
    detail::gemm_dispatch<T>(false, true, m, n, k, T(1), c.in(0).data(), k, c.in(1).data(), k, T(0), y, n);
    if (c.size() == 3) {
      const T* b = c.in(2).data();
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j)
          y[i * n + j] += b[j];
    }
  }

  template <class C>
  void backward(C& c) const {
    using T = typename C::value_type;
    const std::size_t k = c.in(1).shape()[1], n = c.in(1).shape()[0];
    const std::size_t m = n ? c.out().size() / n : 0;
    const T* g = c.dout().data(); // (M, out)
    if (c.needs_grad(0))          // dx (M, in) += g (M, out) @ W (out, in)      d(x W^T)/dx = W
      detail::gemm_dispatch<T>(false, false, m, k, n, T(1), g, n, c.in(1).data(), k, T(1), c.din(0).data(),
                               k);
    if (c.needs_grad(1)) // dW (out, in) += g^T (out, M) @ x (M, in)    d(x W^T)/dW = x
      detail::gemm_dispatch<T>(true, false, n, k, m, T(1), g, n, c.in(0).data(), k, T(1), c.din(1).data(), k);
    if (c.size() == 3 && c.needs_grad(2)) { // db (out) += sum over rows of g    d(y)/db = 1
      T* db = c.din(2).data();
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j)
          db[j] += g[i * n + j];
    }
  }
};

} // namespace ops

/// y = x W^T (x (..., in), weight (out, in)) -> (..., out).
template <element T>
basic_tensor<T> linear(const basic_tensor<T>& x, const basic_tensor<T>& weight) {
  return apply(ops::linear_op{}, x, weight);
}

/// y = x W^T + b (x (..., in), weight (out, in), bias (out)) -> (..., out); an undefined bias is skipped.
template <element T>
basic_tensor<T> linear(const basic_tensor<T>& x, const basic_tensor<T>& weight, const basic_tensor<T>& bias) {
  if (!bias.defined())
    return apply(ops::linear_op{}, x, weight);
  return apply(ops::linear_op{}, x, weight, bias);
}

} // namespace grad
