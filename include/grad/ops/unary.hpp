#pragma once
/// @file ops/unary.hpp
/// Elementwise functions: exp, log, sqrt, abs, tanh, sigmoid, relu, clamp.

#include <cmath>
#include <limits>
#include <string>

#include "grad/ops/arithmetic.hpp"

namespace grad {
namespace ops {

/// e^x.
struct exp_op : unary_base<exp_op> {
  static constexpr std::string_view name = "exp";
  template <class C>
  void forward(C& c) const {
    detail::unary_forward_kernel(c, kernels::exp<typename C::value_type>);
  }
  template <class C>
  void backward(C& c) const { // d(e^x)/dx = e^x
    detail::unary_backward_kernel(c, true, kernels::exp_backward<typename C::value_type>);
  }
};

/// Natural logarithm.
struct log_op : unary_base<log_op> {
  static constexpr std::string_view name = "log";
  template <class C>
  void forward(C& c) const {
    detail::unary_forward_kernel(c, kernels::log<typename C::value_type>);
  }
  template <class C>
  void backward(C& c) const { // d(ln x)/dx = 1/x
    detail::unary_backward_kernel(c, false, kernels::log_backward<typename C::value_type>);
  }
};

/// Square root.
struct sqrt_op : unary_base<sqrt_op> {
  static constexpr std::string_view name = "sqrt";
  template <class C>
  void forward(C& c) const {
    detail::unary_forward_kernel(c, kernels::sqrt<typename C::value_type>);
  }
  template <class C>
  void backward(C& c) const { // d(sqrt x)/dx = 1/(2 sqrt x)
    detail::unary_backward_kernel(c, true, kernels::sqrt_backward<typename C::value_type>);
  }
};

/// |x|; its gradient at 0 is 0 (as PyTorch).
struct abs_op : unary_base<abs_op> {
  static constexpr std::string_view name = "abs";
  template <class C>
  void forward(C& c) const {
    detail::unary_forward_kernel(c, kernels::abs<typename C::value_type>);
  }
  template <class C>
  void backward(C& c) const { // d|x|/dx = sign(x)
    detail::unary_backward_kernel(c, false, kernels::abs_backward<typename C::value_type>);
  }
};

/// Hyperbolic tangent.
struct tanh_op : unary_base<tanh_op> {
  static constexpr std::string_view name = "tanh";
  template <class C>
  void forward(C& c) const {
    detail::unary_forward_kernel(c, kernels::tanh<typename C::value_type>);
  }
  template <class C>
  void backward(C& c) const { // d(tanh x)/dx = 1 - tanh^2 x
    detail::unary_backward_kernel(c, true, kernels::tanh_backward<typename C::value_type>);
  }
};

/// Logistic sigmoid 1 / (1 + e^-x), computed without overflow for large |x|.
struct sigmoid_op : unary_base<sigmoid_op> {
  static constexpr std::string_view name = "sigmoid";
  template <class C>
  void forward(C& c) const {
    detail::unary_forward_kernel(c, kernels::sigmoid<typename C::value_type>);
  }
  template <class C>
  void backward(C& c) const { // s'(x) = s(x)(1 - s(x))
    detail::unary_backward_kernel(c, true, kernels::sigmoid_backward<typename C::value_type>);
  }
};

/// max(x, 0); its gradient at 0 is 0 (as PyTorch).
struct relu_op : unary_base<relu_op> {
  static constexpr std::string_view name = "relu";
  template <class C>
  void forward(C& c) const {
    detail::unary_forward_kernel(c, kernels::relu<typename C::value_type>);
  }
  template <class C>
  void backward(C& c) const { // 1 where x > 0
    detail::unary_backward_kernel(c, false, kernels::relu_backward<typename C::value_type>);
  }
};

/// min(max(x, lo), hi); the gradient passes where lo <= x <= hi (as PyTorch).
template <class T>
struct clamp_op : unary_base<clamp_op<T>> {
  static constexpr std::string_view name = "clamp";
  T lo, hi;
  template <class C>
  void forward(C& c) const {
    detail::unary_forward(c, [lo = lo, hi = hi](auto x) { return x < lo ? lo : (x > hi ? hi : x); });
  }
  template <class C>
  void backward(C& c) const {
    detail::unary_backward(c, [lo = lo, hi = hi](auto x, auto, auto g) {
      return (x >= lo && x <= hi) ? g : decltype(g)(0); // 1 inside [lo, hi], 0 outside
    });
  }
};

} // namespace ops

/// Elementwise e^x.
template <element T>
basic_tensor<T> exp(const basic_tensor<T>& x) {
  return apply(ops::exp_op{}, x);
}
/// Elementwise natural logarithm.
template <element T>
basic_tensor<T> log(const basic_tensor<T>& x) {
  return apply(ops::log_op{}, x);
}
/// Elementwise square root.
template <element T>
basic_tensor<T> sqrt(const basic_tensor<T>& x) {
  return apply(ops::sqrt_op{}, x);
}
/// Elementwise |x|.
template <element T>
basic_tensor<T> abs(const basic_tensor<T>& x) {
  return apply(ops::abs_op{}, x);
}
/// Elementwise tanh.
template <element T>
basic_tensor<T> tanh(const basic_tensor<T>& x) {
  return apply(ops::tanh_op{}, x);
}
/// Elementwise logistic sigmoid.
template <element T>
basic_tensor<T> sigmoid(const basic_tensor<T>& x) {
  return apply(ops::sigmoid_op{}, x);
}
/// Elementwise max(x, 0).
template <element T>
basic_tensor<T> relu(const basic_tensor<T>& x) {
  return apply(ops::relu_op{}, x);
}
/// Elementwise clamp into [lo, hi]; throws value_error when lo > hi.
template <element T, arithmetic S1, arithmetic S2>
basic_tensor<T> clamp(const basic_tensor<T>& x, S1 lo, S2 hi) {
  if (!(static_cast<T>(lo) <= static_cast<T>(hi)))
    throw value_error("clamp: lower bound " + std::to_string(lo) + " is greater than upper bound " +
                      std::to_string(hi));
  return apply(ops::clamp_op<T>{{}, static_cast<T>(lo), static_cast<T>(hi)}, x);
}

} // namespace grad
