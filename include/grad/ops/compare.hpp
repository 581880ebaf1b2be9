#pragma once
/// @file ops/compare.hpp
/// maximum, minimum and where: selections between tensors, with broadcasting.

#include <cmath>

#include "grad/ops/arithmetic.hpp"

namespace grad {
namespace ops {

/// Elementwise max(a, b); NaN in either operand gives NaN, and on ties the gradient is split half and
/// half (both as PyTorch).
struct maximum_op : binary_base<maximum_op> {
  static constexpr std::string_view name = "maximum";
  template <class C>
  void forward(C& c) const {
    detail::binary_forward(c, [](auto a, auto b) { return a > b || std::isnan(a) ? a : b; });
  }
  template <class C>
  void backward(C& c) const {
    detail::binary_backward(
        c,
        [](auto a, auto b, auto, auto g) {
          return a > b ? g : (a == b ? g / 2 : decltype(g)(0));
        }, // 1 if a wins
        [](auto a, auto b, auto, auto g) {
          return b > a ? g : (a == b ? g / 2 : decltype(g)(0));
        }); // 1 if b wins
  }
};

/// Elementwise min(a, b); NaN in either operand gives NaN, and on ties the gradient is split half and
/// half (both as PyTorch).
struct minimum_op : binary_base<minimum_op> {
  static constexpr std::string_view name = "minimum";
  template <class C>
  void forward(C& c) const {
    detail::binary_forward(c, [](auto a, auto b) { return a < b || std::isnan(a) ? a : b; });
  }
  template <class C>
  void backward(C& c) const {
    detail::binary_backward(
        c, [](auto a, auto b, auto, auto g) { return a < b ? g : (a == b ? g / 2 : decltype(g)(0)); },
        [](auto a, auto b, auto, auto g) { return b < a ? g : (a == b ? g / 2 : decltype(g)(0)); });
  }
};

/// where(cond, a, b): a where cond != 0, else b; all three broadcast. cond gets no gradient.
struct where_op {
  static constexpr std::string_view name = "where";
  static constexpr bool broadcasting = true;
  shape_type shape(const shape_type& cond, const shape_type& a, const shape_type& b) const {
    return broadcast_shapes(name, cond, broadcast_shapes(name, a, b));
  }
  std::uint64_t flops(const shape_type&, const shape_type&, const shape_type&, const shape_type&) const {
    return 0;
  }
  template <class C>
  void forward(C& c) const {
    const auto* k = c.in(0).data();
    const auto* a = c.in(1).data();
    const auto* b = c.in(2).data();
    auto* y = c.out().data();
    detail::broadcast_each<3>(c, [&](std::size_t o, std::size_t i, std::size_t j, std::size_t l) {
      y[o] = k[i] != 0 ? a[j] : b[l];
    });
  }
  template <class C>
  void backward(C& c) const {
    const auto* k = c.in(0).data();
    const auto* g = c.dout().data();
    auto* da = c.needs_grad(1) ? c.din(1).data() : nullptr;
    auto* db = c.needs_grad(2) ? c.din(2).data() : nullptr;
    detail::broadcast_each<3>(c, [&](std::size_t o, std::size_t i, std::size_t, std::size_t) {
      if (k[i] != 0) { // d/da = cond, d/db = 1 - cond
        if (da)
          da[o] += g[o];
      } else if (db) {
        db[o] += g[o];
      }
    });
  }
};

} // namespace ops

/// Elementwise maximum of two tensors with broadcasting.
template <element T>
basic_tensor<T> maximum(const basic_tensor<T>& a, const basic_tensor<T>& b) {
  return apply(ops::maximum_op{}, a, b);
}
/// Elementwise minimum of two tensors with broadcasting.
template <element T>
basic_tensor<T> minimum(const basic_tensor<T>& a, const basic_tensor<T>& b) {
  return apply(ops::minimum_op{}, a, b);
}
/// a where cond != 0, else b (all three broadcast together); cond is not differentiated.
template <element T>
basic_tensor<T> where(const basic_tensor<T>& cond, const basic_tensor<T>& a, const basic_tensor<T>& b) {
  return apply(ops::where_op{}, cond, a, b);
}

} // namespace grad
