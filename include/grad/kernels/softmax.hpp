#pragma once
/// @file kernels/softmax.hpp
/// Softmax and log-softmax over the last axis of a row-major (rows, cols) matrix, and their backward
/// kernels. Numerically stable: the row maximum is subtracted before exponentiating, and row sums use
/// the pairwise order of kernels/reduce.hpp. y may alias x (in place). A row holding NaN, or whose
/// maximum is +inf or -inf (e.g. every entry masked to -inf), gives NaN, as in PyTorch; entries of
/// -inf next to finite ones give exactly 0 (log-softmax: -inf).

#include <cmath>
#include <cstddef>

#include "grad/kernels/math.hpp"
#include "grad/kernels/reduce.hpp"

namespace grad::detail {

/// Rows x cols below which softmax kernels stay on one thread (exp per element: costly).
inline constexpr std::size_t softmax_parallel = std::size_t(1) << 15;

/// out[i] = f(in[i]...) for i < n (<= reduce_leaf), returning the sum of the written values as a batch
/// of partial sums in leaf_sum's order.
template <class A, class T, class F, class... In>
inline xsimd::batch<T, A> leaf_map_sum(std::size_t n, const F& f, T* out, const In*... in) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  B a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0)), a4(T(0)), a5(T(0)), a6(T(0)), a7(T(0));
  B* acc[8] = {&a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7};
  std::size_t i = 0, j = 0;
  for (; i + W <= n; i += W, j = (j + 1) % 8) {
    const B v = f(B::load_unaligned(in + i)...);
    v.store_unaligned(out + i);
    *acc[j] += v;
  }
  if (i < n) {
    const B v = f(load_n<A>(in + i, n - i)...);
    store_n<A>(out + i, v, n - i);
    *acc[j] += xsimd::select(first_lanes<A, T>(n - i), v, B(T(0)));
  }
  return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
}

/// softmax of one row of n >= 1 elements.
template <class A, class T>
inline void softmax_row(const T* x, T* y, std::size_t n) {
  using B = xsimd::batch<T, A>;
  const B m(max_serial<A>(x, n));
  const auto e = [m](const B& v) { return kernels::math::exp(v - m); };
  const B s = tree_serial<B>(
      0, n, reduce_leaf,
      [&](std::size_t b, std::size_t len) { return leaf_map_sum<A, T>(len, e, y + b, x + b); },
      [](const B& u, const B& v) { return u + v; });
  const B inv(T(1) / lane_sum(s));
  ew_serial<A>(
      n, [inv](const B& v) { return v * inv; }, y, y);
}

/// log-softmax of one row of n >= 1 elements: (x - max) - log(sum exp(x - max)).
template <class A, class T>
inline void log_softmax_row(const T* x, T* y, std::size_t n) {
  using B = xsimd::batch<T, A>;
  const B m(max_serial<A>(x, n));
  const T s = sum_of<A, T>(
      n, ~std::size_t(0), [m](const B& v) { return kernels::math::exp(v - m); }, x);
  const B ls(std::log(s));
  ew_serial<A>(
      n, [m, ls](const B& v) { return (v - m) - ls; }, y, x);
}

} // namespace grad::detail

namespace grad::kernels {

/// y[i, :] = softmax(x[i, :]) for the row-major (rows, cols) x.
template <class T, class A = xsimd::default_arch>
void softmax_last(const T* x, T* y, std::size_t rows, std::size_t cols) {
  if (cols == 0)
    return;
  detail::for_rows(rows, cols, detail::softmax_parallel,
                   [&](std::size_t i) { detail::softmax_row<A>(x + i * cols, y + i * cols, cols); });
}

/// y[i, :] = log_softmax(x[i, :]) for the row-major (rows, cols) x.
template <class T, class A = xsimd::default_arch>
void log_softmax_last(const T* x, T* y, std::size_t rows, std::size_t cols) {
  if (cols == 0)
    return;
  detail::for_rows(rows, cols, detail::softmax_parallel,
                   [&](std::size_t i) { detail::log_softmax_row<A>(x + i * cols, y + i * cols, cols); });
}

/// dx += y (dy - sum_j dy_j y_j) per row, from the saved output y = softmax(x).
template <class T, class A = xsimd::default_arch>
void softmax_last_backward(const T* y, const T* dy, T* dx, std::size_t rows, std::size_t cols) {
  using B = xsimd::batch<T, A>;
  // d softmax_i / dx_j = y_i (delta_ij - y_j)  =>  dx_j = y_j (dy_j - <dy, y>)
  detail::for_rows(rows, cols, detail::reduce_parallel, [&](std::size_t i) {
    const T* yr = y + i * cols;
    const T* gr = dy + i * cols;
    const B dot(detail::sum_of<A, T>(
        cols, ~std::size_t(0), [](const B& u, const B& v) { return u * v; }, gr, yr));
    detail::ew_serial<A>(
        cols, [dot](const B& d, const B& vy, const B& g) { return detail::fmadd(vy, g - dot, d); },
        dx + i * cols, dx + i * cols, yr, gr);
  });
}

/// dx += dy - exp(y) sum_j dy_j per row, from the saved output y = log_softmax(x).
template <class T, class A = xsimd::default_arch>
void log_softmax_last_backward(const T* y, const T* dy, T* dx, std::size_t rows, std::size_t cols) {
  using B = xsimd::batch<T, A>;
  // d logsoftmax_i / dx_j = delta_ij - softmax_j  =>  dx_j = dy_j - softmax_j sum_i dy_i
  detail::for_rows(rows, cols, detail::softmax_parallel, [&](std::size_t i) {
    const T* yr = y + i * cols;
    const T* gr = dy + i * cols;
    const B s(detail::sum_of<A, T>(
        cols, ~std::size_t(0), [](const B& v) { return v; }, gr));
    detail::ew_serial<A>(
        cols, [s](const B& d, const B& vy, const B& g) { return d + detail::fmadd(-math::exp(vy), s, g); },
        dx + i * cols, dx + i * cols, yr, gr);
  });
}

} // namespace grad::kernels
