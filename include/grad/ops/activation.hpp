#pragma once
/// @file ops/activation.hpp
/// Fused activation functions with hand-written derivatives: gelu (erf and tanh forms), leaky_relu,
/// silu. (relu, tanh and sigmoid live in ops/unary.hpp.)

#include <cmath>
#include <numbers>
#include <string>

#include "grad/ops/arithmetic.hpp"

namespace grad {

/// Which formula gelu uses: the exact one with erf, or the tanh approximation (GPT-2's).
enum class gelu_approximate { none, tanh };

namespace ops {

/// GELU (Hendrycks and Gimpel 2016, arXiv:1606.08415): x Phi(x) with Phi the standard normal CDF.
/// none: 0.5 x (1 + erf(x / sqrt 2)); tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
struct gelu_op : unary_base<gelu_op, 8> {
  static constexpr std::string_view name = "gelu";
  gelu_approximate approximate = gelu_approximate::none;

  template <class V>
  static V tanh_arg(V x) {
    const V k = static_cast<V>(std::numbers::sqrt2 * std::numbers::inv_sqrtpi); // sqrt(2/pi)
    return k * (x + V(0.044715) * x * x * x);
  }
  // The vectorized kernels of kernels/unary.hpp (same formulas; the scalar std::tanh / std::erf loop
  // measured ~30x slower, the largest cost of a GPT training step).
  template <class C>
  void forward(C& c) const {
    using T = typename C::value_type;
    if (approximate == gelu_approximate::tanh)
      detail::unary_forward_kernel(c, kernels::gelu_tanh<T>);
    else
      detail::unary_forward_kernel(c, kernels::gelu_erf<T>);
  }
  template <class C>
  void backward(C& c) const {
    using T = typename C::value_type;
    // tanh: d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2), t = tanh(u)
    // erf: d(x Phi(x))/dx = Phi(x) + x phi(x)
    if (approximate == gelu_approximate::tanh)
      detail::unary_backward_kernel(c, false, kernels::gelu_tanh_backward<T>);
    else
      detail::unary_backward_kernel(c, false, kernels::gelu_erf_backward<T>);
  }
};

/// x for x > 0, slope * x otherwise.
template <class T>
struct leaky_relu_op : unary_base<leaky_relu_op<T>> {
  static constexpr std::string_view name = "leaky_relu";
  T slope = T(0.01);
  template <class C>
  void forward(C& c) const {
    detail::unary_forward(c, [s = slope](auto x) { return x > 0 ? x : s * x; });
  }
  template <class C>
  void backward(C& c) const {
    // 1 where x > 0, slope elsewhere (at 0 too, as PyTorch)
    detail::unary_backward(c, [s = slope](auto x, auto, auto g) { return x > 0 ? g : s * g; });
  }
};

/// SiLU / swish: x sigmoid(x) (Elfwing et al. 2017, arXiv:1702.03118).
struct silu_op : unary_base<silu_op, 4> {
  static constexpr std::string_view name = "silu";
  template <class V>
  static V sigmoid(V x) {
    if (x >= 0)
      return V(1) / (V(1) + std::exp(-x));
    const V e = std::exp(x);
    return e / (V(1) + e);
  }
  template <class C>
  void forward(C& c) const {
    detail::unary_forward(c, [](auto x) { return x * sigmoid(x); });
  }
  template <class C>
  void backward(C& c) const {
    detail::unary_backward(c, [](auto x, auto, auto g) {
      using V = decltype(x);
      const V s = sigmoid(x);
      return g * s * (V(1) + x * (V(1) - s)); // d(x s)/dx = s + x s (1 - s)
    });
  }
};

} // namespace ops

/// GELU, exact (erf) by default or with the tanh approximation.
template <element T>
basic_tensor<T> gelu(const basic_tensor<T>& x, gelu_approximate approximate = gelu_approximate::none) {
  return apply(ops::gelu_op{{}, approximate}, x);
}

/// Leaky ReLU: x for x > 0, negative_slope * x otherwise.
template <element T>
basic_tensor<T> leaky_relu(const basic_tensor<T>& x, double negative_slope = 0.01) {
  return apply(ops::leaky_relu_op<T>{{}, static_cast<T>(negative_slope)}, x);
}

/// SiLU (swish): x * sigmoid(x).
template <element T>
basic_tensor<T> silu(const basic_tensor<T>& x) {
  return apply(ops::silu_op{}, x);
}

} // namespace grad
