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
    detail::unary_forward(c, [](auto x) { return std::exp(x); });
  }
  template <class C>
  void backward(C& c) const {
    detail::unary_backward(c, [](auto, auto y, auto g) { return g * y; }); // d(e^x)/dx = e^x
  }
};

/// Natural logarithm.
struct log_op : unary_base<log_op> {
  static constexpr std::string_view name = "log";
  template <class C>
  void forward(C& c) const {
    detail::unary_forward(c, [](auto x) { return std::log(x); });
  }
  template <class C>
  void backward(C& c) const {
    detail::unary_backward(c, [](auto x, auto, auto g) { return g / x; }); // d(ln x)/dx = 1/x
  }
};

/// Square root.
struct sqrt_op : unary_base<sqrt_op> {
  static constexpr std::string_view name = "sqrt";
  template <class C>
  void forward(C& c) const {
    detail::unary_forward(c, [](auto x) { return std::sqrt(x); });
  }
  template <class C>
  void backward(C& c) const {
    detail::unary_backward(c,
                           [](auto, auto y, auto g) { return g / (2 * y); }); // d(sqrt x)/dx = 1/(2 sqrt x)
  }
};

/// |x|; its gradient at 0 is 0 (as PyTorch).
struct abs_op : unary_base<abs_op> {
  static constexpr std::string_view name = "abs";
  template <class C>
  void forward(C& c) const {
    detail::unary_forward(c, [](auto x) { return std::abs(x); });
  }
  template <class C>
  void backward(C& c) const {
    detail::unary_backward(c, [](auto x, auto, auto g) { // d|x|/dx = sign(x)
      return x > 0 ? g : (x < 0 ? -g : decltype(g)(0));
    });
  }
};

/// Hyperbolic tangent.
struct tanh_op : unary_base<tanh_op> {
  static constexpr std::string_view name = "tanh";
  template <class C>
  void forward(C& c) const {
    detail::unary_forward(c, [](auto x) { return std::tanh(x); });
  }
  template <class C>
  void backward(C& c) const {
    detail::unary_backward(
        c, [](auto, auto y, auto g) { return g * (1 - y * y); }); // d(tanh x)/dx = 1 - tanh^2 x
  }
};

/// Logistic sigmoid 1 / (1 + e^-x), computed without overflow for large |x|.
struct sigmoid_op : unary_base<sigmoid_op> {
  static constexpr std::string_view name = "sigmoid";
  template <class C>
  void forward(C& c) const {
    detail::unary_forward(c, [](auto x) {
      using V = decltype(x);
      if (x >= 0)
        return V(1) / (V(1) + std::exp(-x));
      const V e = std::exp(x);
      return e / (V(1) + e);
    });
  }
  template <class C>
  void backward(C& c) const {
    detail::unary_backward(c, [](auto, auto y, auto g) { return g * y * (1 - y); }); // s'(x) = s(x)(1 - s(x))
  }
};

/// max(x, 0); its gradient at 0 is 0 (as PyTorch).
struct relu_op : unary_base<relu_op> {
  static constexpr std::string_view name = "relu";
  template <class C>
  void forward(C& c) const {
    detail::unary_forward(c, [](auto x) { return x > 0 ? x : decltype(x)(0); });
  }
  template <class C>
  void backward(C& c) const {
    detail::unary_backward(c,
                           [](auto x, auto, auto g) { return x > 0 ? g : decltype(g)(0); }); // 1 where x > 0
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
