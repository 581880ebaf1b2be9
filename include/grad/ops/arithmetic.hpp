#pragma once
/// @file ops/arithmetic.hpp
/// + - * / between tensors (with broadcasting) and with scalars, neg, and pow with a scalar exponent.

#include <cmath>
#include <concepts>
#include <type_traits>

#include "grad/ops/elementwise.hpp"

namespace grad {
namespace ops {

/// Base of the broadcasting binary ops: shape rule and FLOP count (one per output element).
template <class Derived>
struct binary_base {
  static constexpr bool broadcasting = true;
  shape_type shape(const shape_type& a, const shape_type& b) const {
    return broadcast_shapes(Derived::name, a, b);
  }
  std::uint64_t flops(const shape_type& out, const shape_type&, const shape_type&) const {
    return numel(out);
  }
};

/// a + b.
struct add_op : binary_base<add_op> {
  static constexpr std::string_view name = "add";
  template <class C>
  void forward(C& c) const {
    if (detail::flat_binary_forward(c, kernels::add<typename C::value_type>))
      return;
    detail::binary_forward(c, [](auto a, auto b) { return a + b; });
  }
  template <class C>
  void backward(C& c) const {
    using T = typename C::value_type;
    if (detail::flat_binary_backward(
            c, [&](const T* g, T* d, std::size_t n) { kernels::acc<T>(g, d, n); },
            [&](const T* g, T* d, std::size_t n) { kernels::acc<T>(g, d, n); }))
      return;
    detail::binary_backward(
        c, [](auto, auto, auto, auto g) { return g; }, // d(a+b)/da = 1
        [](auto, auto, auto, auto g) { return g; });   // d(a+b)/db = 1
  }
};

/// a - b.
struct sub_op : binary_base<sub_op> {
  static constexpr std::string_view name = "sub";
  template <class C>
  void forward(C& c) const {
    if (detail::flat_binary_forward(c, kernels::sub<typename C::value_type>))
      return;
    detail::binary_forward(c, [](auto a, auto b) { return a - b; });
  }
  template <class C>
  void backward(C& c) const {
    using T = typename C::value_type;
    if (detail::flat_binary_backward(
            c, [&](const T* g, T* d, std::size_t n) { kernels::acc<T>(g, d, n); },
            [&](const T* g, T* d, std::size_t n) { kernels::acc_neg<T>(g, d, n); }))
      return;
    detail::binary_backward(
        c, [](auto, auto, auto, auto g) { return g; }, // d(a-b)/da = 1
        [](auto, auto, auto, auto g) { return -g; });  // d(a-b)/db = -1
  }
};

/// a * b.
struct mul_op : binary_base<mul_op> {
  static constexpr std::string_view name = "mul";
  template <class C>
  void forward(C& c) const {
    if (detail::flat_binary_forward(c, kernels::mul<typename C::value_type>))
      return;
    detail::binary_forward(c, [](auto a, auto b) { return a * b; });
  }
  template <class C>
  void backward(C& c) const {
    using T = typename C::value_type;
    if (detail::flat_binary_backward(
            c, [&](const T* g, T* d, std::size_t n) { kernels::acc_mul<T>(g, c.in(1).data(), d, n); },
            [&](const T* g, T* d, std::size_t n) { kernels::acc_mul<T>(g, c.in(0).data(), d, n); }))
      return;
    detail::binary_backward(
        c, [](auto, auto b, auto, auto g) { return g * b; }, // d(ab)/da = b
        [](auto a, auto, auto, auto g) { return g * a; });   // d(ab)/db = a
  }
};

/// a / b.
struct div_op : binary_base<div_op> {
  static constexpr std::string_view name = "div";
  template <class C>
  void forward(C& c) const {
    if (detail::flat_binary_forward(c, kernels::div<typename C::value_type>))
      return;
    detail::binary_forward(c, [](auto a, auto b) { return a / b; });
  }
  template <class C>
  void backward(C& c) const {
    using T = typename C::value_type;
    if (detail::flat_binary_backward(
            c, [&](const T* g, T* d, std::size_t n) { kernels::acc_div<T>(g, c.in(1).data(), d, n); },
            [&](const T* g, T* d, std::size_t n) {
              kernels::div_backward_rhs<T>(c.in(1).data(), c.out().data(), g, d, n);
            }))
      return;
    detail::binary_backward(
        c, [](auto, auto b, auto, auto g) { return g / b; },      // d(a/b)/da = 1/b
        [](auto, auto b, auto y, auto g) { return -g * y / b; }); // d(a/b)/db = -a/b^2 = -y/b
  }
};

/// Base of the elementwise unary ops: the output has the input's shape.
template <class Derived, std::uint64_t Flops = 1>
struct unary_base {
  shape_type shape(const shape_type& a) const { return a; }
  std::uint64_t flops(const shape_type& out, const shape_type&) const { return Flops * numel(out); }
};

/// x + s for a scalar s.
template <class T>
struct add_scalar_op : unary_base<add_scalar_op<T>> {
  static constexpr std::string_view name = "add_scalar";
  T s;
  template <class C>
  void forward(C& c) const {
    detail::unary_forward(c, [s = s](auto x) { return x + s; });
  }
  template <class C>
  void backward(C& c) const {
    detail::unary_backward(c, [](auto, auto, auto g) { return g; }); // d(x+s)/dx = 1
  }
};

/// x * s for a scalar s.
template <class T>
struct mul_scalar_op : unary_base<mul_scalar_op<T>> {
  static constexpr std::string_view name = "mul_scalar";
  T s;
  template <class C>
  void forward(C& c) const {
    detail::unary_forward(c, [s = s](auto x) { return x * s; });
  }
  template <class C>
  void backward(C& c) const {
    detail::unary_backward(c, [s = s](auto, auto, auto g) { return g * s; }); // d(xs)/dx = s
  }
};

/// s - x for a scalar s.
template <class T>
struct rsub_scalar_op : unary_base<rsub_scalar_op<T>> {
  static constexpr std::string_view name = "rsub_scalar";
  T s;
  template <class C>
  void forward(C& c) const {
    detail::unary_forward(c, [s = s](auto x) { return s - x; });
  }
  template <class C>
  void backward(C& c) const {
    detail::unary_backward(c, [](auto, auto, auto g) { return -g; }); // d(s-x)/dx = -1
  }
};

/// s / x for a scalar s.
template <class T>
struct rdiv_scalar_op : unary_base<rdiv_scalar_op<T>> {
  static constexpr std::string_view name = "rdiv_scalar";
  T s;
  template <class C>
  void forward(C& c) const {
    detail::unary_forward(c, [s = s](auto x) { return s / x; });
  }
  template <class C>
  void backward(C& c) const {
    detail::unary_backward(c, [](auto x, auto y, auto g) { return -g * y / x; }); // d(s/x)/dx = -s/x^2 = -y/x
  }
};

/// -x.
struct neg_op : unary_base<neg_op> {
  static constexpr std::string_view name = "neg";
  template <class C>
  void forward(C& c) const {
    detail::unary_forward(c, [](auto x) { return -x; });
  }
  template <class C>
  void backward(C& c) const {
    detail::unary_backward(c, [](auto, auto, auto g) { return -g; }); // d(-x)/dx = -1
  }
};

/// x^p for a scalar exponent p.
template <class T>
struct pow_scalar_op : unary_base<pow_scalar_op<T>> {
  static constexpr std::string_view name = "pow";
  T p;
  template <class C>
  void forward(C& c) const {
    if (p == T(2))
      detail::unary_forward(c, [](auto x) { return x * x; });
    else
      detail::unary_forward(c, [p = p](auto x) { return std::pow(x, p); });
  }
  template <class C>
  void backward(C& c) const {
    if (p == T(2))
      detail::unary_backward(c, [](auto x, auto, auto g) { return 2 * x * g; }); // d(x^2)/dx = 2x
    else if (p == T(0))
      return; // d(x^0)/dx = 0 (torch also gives 0 at x = 0)
    else
      detail::unary_backward(
          c, [p = p](auto x, auto, auto g) { return g * p * std::pow(x, p - 1); }); // p x^(p-1)
  }
};

} // namespace ops

/// Scalars usable on either side of a tensor operator.
template <class S>
concept arithmetic = std::is_arithmetic_v<S>;

/// Elementwise a + b with broadcasting.
template <element T>
basic_tensor<T> add(const basic_tensor<T>& a, const basic_tensor<T>& b) {
  return apply(ops::add_op{}, a, b);
}
/// Elementwise a - b with broadcasting.
template <element T>
basic_tensor<T> sub(const basic_tensor<T>& a, const basic_tensor<T>& b) {
  return apply(ops::sub_op{}, a, b);
}
/// Elementwise a * b with broadcasting.
template <element T>
basic_tensor<T> mul(const basic_tensor<T>& a, const basic_tensor<T>& b) {
  return apply(ops::mul_op{}, a, b);
}
/// Elementwise a / b with broadcasting.
template <element T>
basic_tensor<T> div(const basic_tensor<T>& a, const basic_tensor<T>& b) {
  return apply(ops::div_op{}, a, b);
}
/// Elementwise -x.
template <element T>
basic_tensor<T> neg(const basic_tensor<T>& x) {
  return apply(ops::neg_op{}, x);
}
/// Elementwise x^p for a scalar exponent p.
template <element T, arithmetic S>
basic_tensor<T> pow(const basic_tensor<T>& x, S p) {
  return apply(ops::pow_scalar_op<T>{{}, static_cast<T>(p)}, x);
}
/// Elementwise x^2.
template <element T>
basic_tensor<T> square(const basic_tensor<T>& x) {
  return pow(x, 2);
}

namespace detail {
/// Two tensor handles (of any value category) of the same element type: the operands of a binary
/// operator. The operators forward them to apply, which moves a temporary into the node.
template <class A, class B>
concept tensor_pair = tensor_arg<A> && std::same_as<std::remove_cvref_t<A>, std::remove_cvref_t<B>>;
} // namespace detail

/// a + b.
template <class A, class B>
requires detail::tensor_pair<A, B> std::remove_cvref_t<A>
operator+(A&& a, B&& b) {
  return apply(ops::add_op{}, std::forward<A>(a), std::forward<B>(b));
}
/// a - b.
template <class A, class B>
requires detail::tensor_pair<A, B> std::remove_cvref_t<A>
operator-(A&& a, B&& b) {
  return apply(ops::sub_op{}, std::forward<A>(a), std::forward<B>(b));
}
/// a * b.
template <class A, class B>
requires detail::tensor_pair<A, B> std::remove_cvref_t<A>
operator*(A&& a, B&& b) {
  return apply(ops::mul_op{}, std::forward<A>(a), std::forward<B>(b));
}
/// a / b.
template <class A, class B>
requires detail::tensor_pair<A, B> std::remove_cvref_t<A>
operator/(A&& a, B&& b) {
  return apply(ops::div_op{}, std::forward<A>(a), std::forward<B>(b));
}
/// -x.
template <element T>
basic_tensor<T> operator-(const basic_tensor<T>& x) {
  return neg(x);
}

/// x + s.
template <element T, arithmetic S>
basic_tensor<T> operator+(const basic_tensor<T>& x, S s) {
  return apply(ops::add_scalar_op<T>{{}, static_cast<T>(s)}, x);
}
/// s + x.
template <element T, arithmetic S>
basic_tensor<T> operator+(S s, const basic_tensor<T>& x) {
  return x + s;
}
/// x - s.
template <element T, arithmetic S>
basic_tensor<T> operator-(const basic_tensor<T>& x, S s) {
  // Negate after the cast: -s wraps around for an unsigned S.
  return apply(ops::add_scalar_op<T>{{}, -static_cast<T>(s)}, x);
}
/// s - x.
template <element T, arithmetic S>
basic_tensor<T> operator-(S s, const basic_tensor<T>& x) {
  return apply(ops::rsub_scalar_op<T>{{}, static_cast<T>(s)}, x);
}
/// x * s.
template <element T, arithmetic S>
basic_tensor<T> operator*(const basic_tensor<T>& x, S s) {
  return apply(ops::mul_scalar_op<T>{{}, static_cast<T>(s)}, x);
}
/// s * x.
template <element T, arithmetic S>
basic_tensor<T> operator*(S s, const basic_tensor<T>& x) {
  return x * s;
}
/// x / s.
template <element T, arithmetic S>
basic_tensor<T> operator/(const basic_tensor<T>& x, S s) {
  return apply(ops::mul_scalar_op<T>{{}, T(1) / static_cast<T>(s)}, x);
}
/// s / x.
template <element T, arithmetic S>
basic_tensor<T> operator/(S s, const basic_tensor<T>& x) {
  return apply(ops::rdiv_scalar_op<T>{{}, static_cast<T>(s)}, x);
}

} // namespace grad
