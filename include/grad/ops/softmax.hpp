#pragma once
/// @file ops/softmax.hpp
/// softmax and log_softmax over one axis, fused: one pass for the maximum, one for the sum, and a
/// hand-written backward that needs only the saved output (no exp/log graph on the tape).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "grad/core/apply.hpp"

namespace grad {
namespace detail {

/// A tensor seen as (outer, n, inner) around one axis: element (o, j, i) is at (o * n + j) * inner + i.
struct axis_view {
  std::size_t outer = 1, n = 1, inner = 1;
};

inline axis_view axis_split(const shape_type& s, std::size_t axis) {
  axis_view v;
  for (std::size_t d = 0; d < axis; ++d)
    v.outer *= s[d];
  v.n = s[axis];
  for (std::size_t d = axis + 1; d < s.size(); ++d)
    v.inner *= s[d];
  return v;
}

/// Calls f(base, stride) for every line along the axis: its elements are base + j * stride, j < n.
template <class F>
inline void for_each_line(const axis_view& v, F f) {
  for (std::size_t o = 0; o < v.outer; ++o)
    for (std::size_t i = 0; i < v.inner; ++i)
      f(o * v.n * v.inner + i, v.inner);
}

} // namespace detail

namespace ops {

/// softmax (Log = false) or log_softmax (Log = true) along `axis`.
/// softmax(x)_j = exp(x_j - m) / sum_k exp(x_k - m) with m = max_k x_k (shifting by m avoids
/// overflow and leaves the value unchanged); log_softmax(x)_j = x_j - m - log sum_k exp(x_k - m).
template <bool Log>
struct softmax_op {
  static constexpr std::string_view name = Log ? "log_softmax" : "softmax";
  std::int64_t axis = -1;

  shape_type shape(const shape_type& in) const {
    if (in.empty())
      throw shape_error(std::string(name) + ": needs at least one dimension, got a 0-d tensor");
    (void)detail::normalize_axis(name, axis, in.size());
    return in;
  }
  // max, subtract, exp, sum, divide (or log and subtract) per element
  std::uint64_t flops(const shape_type& out, const shape_type&) const { return 5 * numel(out); }

  template <class C>
  void forward(C& c) const {
    using T = typename C::value_type;
    const shape_type s = detail::to_shape<T>(c.in(0).shape());
    const auto v = detail::axis_split(s, detail::normalize_axis(name, axis, s.size()));
    const T* x = c.in(0).data();
    T* y = c.out().data();
    detail::for_each_line(v, [&](std::size_t b, std::size_t st) {
      T m = -std::numeric_limits<T>::infinity();
      for (std::size_t j = 0; j < v.n; ++j)
        m = std::max(m, x[b + j * st]);
      if (std::isinf(m) && m < 0)
        m = 0; // a line of -inf: keep exp(x - m) = 0 instead of NaN from -inf - -inf
      T sum = 0;
      for (std::size_t j = 0; j < v.n; ++j) {
        const T e = std::exp(x[b + j * st] - m);
        sum += e;
        if constexpr (!Log)
          y[b + j * st] = e;
      }
      if constexpr (Log) {
        const T lse = m + std::log(sum);
        for (std::size_t j = 0; j < v.n; ++j)
          y[b + j * st] = x[b + j * st] - lse;
      } else {
        const T inv = T(1) / sum;
        for (std::size_t j = 0; j < v.n; ++j)
          y[b + j * st] *= inv;
      }
    });
  }

  template <class C>
  void backward(C& c) const {
    using T = typename C::value_type;
    if (!c.needs_grad(0))
      return;
    const shape_type s = detail::to_shape<T>(c.in(0).shape());
    const auto v = detail::axis_split(s, detail::normalize_axis(name, axis, s.size()));
    const T* y = c.out().data();
    const T* g = c.dout().data();
    T* dx = c.din(0).data();
    detail::for_each_line(v, [&](std::size_t b, std::size_t st) {
      T acc = 0;
      if constexpr (Log) {
        // y = log_softmax(x): dx_j = g_j - softmax_j * sum_k g_k
        for (std::size_t j = 0; j < v.n; ++j)
          acc += g[b + j * st];
        for (std::size_t j = 0; j < v.n; ++j)
          dx[b + j * st] += g[b + j * st] - std::exp(y[b + j * st]) * acc;
      } else {
        // y = softmax(x): dx_j = y_j (g_j - sum_k g_k y_k)
        for (std::size_t j = 0; j < v.n; ++j)
          acc += g[b + j * st] * y[b + j * st];
        for (std::size_t j = 0; j < v.n; ++j)
          dx[b + j * st] += y[b + j * st] * (g[b + j * st] - acc);
      }
    });
  }
};

} // namespace ops

/// Softmax along `axis` (default: the last): non-negative values that sum to 1 along it.
template <element T>
basic_tensor<T> softmax(const basic_tensor<T>& x, std::int64_t axis = -1) {
  return apply(ops::softmax_op<false>{axis}, x);
}

/// Log of softmax along `axis` (default: the last), computed stably (log-sum-exp with the maximum).
template <element T>
basic_tensor<T> log_softmax(const basic_tensor<T>& x, std::int64_t axis = -1) {
  return apply(ops::softmax_op<true>{axis}, x);
}

} // namespace grad
