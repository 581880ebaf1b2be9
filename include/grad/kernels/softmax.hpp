#pragma once
/// @file kernels/softmax.hpp
/// Softmax and log-softmax over the last axis of a row-major (rows, cols) matrix, and their backward
/// kernels. Numerically stable: the row maximum is subtracted before exponentiating, and row sums use
/// the pairwise order of kernels/reduce.hpp. y may alias x (in place). A row holding NaN, or whose
/// maximum is +inf or -inf (e.g. every entry masked to -inf), gives NaN, as in PyTorch; entries of
/// -inf next to finite ones give exactly 0 (log-softmax: -inf).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>

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
  std::size_t i = 0;
  // Eight batches per step with the accumulators in registers (a runtime index into them would keep
  // them in memory), then the same round-robin as leaf_sum for the rest.
  const auto step = [&](B& acc, std::size_t at) {
    const B v = f(B::load_unaligned(in + at)...);
    v.store_unaligned(out + at);
    acc += v;
  };
  for (; i + 8 * W <= n; i += 8 * W) {
    step(a0, i);
    step(a1, i + W);
    step(a2, i + 2 * W);
    step(a3, i + 3 * W);
    step(a4, i + 4 * W);
    step(a5, i + 5 * W);
    step(a6, i + 6 * W);
    step(a7, i + 7 * W);
  }
  B* acc[8] = {&a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7};
  std::size_t j = 0;
  for (; i + W <= n; i += W, ++j)
    step(*acc[j], i);
  if (i < n) {
    const B v = f(load_n<A>(in + i, n - i)...);
    store_n<A>(out + i, v, n - i);
    *acc[j] += xsimd::select(first_lanes<A, T>(n - i), v, B(T(0)));
  }
  return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
}

/// max(a, b) by lanes (either operand if one is NaN); on AVX-512 the masked form, whose unmasked twin
/// starts from _mm512_undefined and trips g++ 12's -Wuninitialized (see scale_pow2).
template <class A, class T>
inline xsimd::batch<T, A> max2(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b) noexcept {
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, A>) {
    if constexpr (std::is_same_v<T, float>)
      return _mm512_mask_max_ps(a, __mmask16(0xffff), a, b);
    else
      return _mm512_mask_max_pd(a, __mmask8(0xff), a, b);
  }
#endif
  return xsimd::max(a, b);
}

/// Maximum of x[0, n) for n >= 1 for the softmax rows, without max_serial's NaN tracking: a NaN it
/// drops still turns the row's sum of exponentials, hence every output, into NaN.
template <class A, class T>
inline T row_max(const T* x, std::size_t n) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B lowest(-std::numeric_limits<T>::infinity());
  B m0 = lowest, m1 = lowest, m2 = lowest, m3 = lowest;
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    m0 = max2<A>(m0, B::load_unaligned(x + i));
    m1 = max2<A>(m1, B::load_unaligned(x + i + W));
    m2 = max2<A>(m2, B::load_unaligned(x + i + 2 * W));
    m3 = max2<A>(m3, B::load_unaligned(x + i + 3 * W));
  }
  for (; i + W <= n; i += W)
    m0 = max2<A>(m0, B::load_unaligned(x + i));
  if (i < n)
    m1 = max2<A>(m1, load_n<A>(x + i, n - i, -std::numeric_limits<T>::infinity()));
  alignas(64) T lanes[W];
  max2<A>(max2<A>(m0, m1), max2<A>(m2, m3)).store_aligned(lanes);
  return *std::max_element(lanes, lanes + W);
}

/// Cursors over the next row of a row kernel's input and output: step() prefetches one cache line of
/// each (the output's for writing) and moves on. The exponential passes call it once per batch, so
/// while one row is computed the next streams in: the rows are short, and the hardware prefetcher
/// alone leaves the row's first pass waiting on memory with the FP units idle, the exp pass computing
/// with the memory idle, and the stores of a row waiting for their lines' reads for ownership.
struct next_row_prefetch {
  const char* in = nullptr;
  char* out = nullptr;
  std::size_t lines = 0; // left to prefetch (the pointers never pass the row's end)

  template <class T>
  next_row_prefetch(const T* next_in, T* next_out, std::size_t n) noexcept
      : in(reinterpret_cast<const char*>(next_in)), out(reinterpret_cast<char*>(next_out)),
        lines(next_in != nullptr ? (n * sizeof(T) + 63) / 64 : 0) {}

  void step() noexcept {
    if (lines == 0)
      return;
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(in, 0, 3);
    __builtin_prefetch(out, 1, 3);
#endif
    if (--lines > 0) {
      in += 64;
      out += 64;
    }
  }
};

/// softmax of one row of n >= 1 elements; next_in, next_out (null for none) the next row's, to prefetch.
template <class A, class T>
inline void softmax_row(const T* x, T* y, std::size_t n, const T* next_in, T* next_out) {
  using B = xsimd::batch<T, A>;
  const B m(row_max<A>(x, n));
  next_row_prefetch pf(next_in, next_out, n);
  next_row_prefetch* pc = &pf;
  const auto e = [m, pc](const B& v) {
    pc->step();
    const B d = v - m; // <= 0 (or NaN)
    return exp_impl<false, T, A, true>(d, d);
  };
  const B s = tree_serial<B>(
      0, n, reduce_leaf,
      [&](std::size_t b, std::size_t len) { return leaf_map_sum<A, T>(len, e, y + b, x + b); },
      [](const B& u, const B& v) { return u + v; });
  const B inv(T(1) / lane_sum(s));
  ew_serial<A>(
      n, [inv](const B& v) { return v * inv; }, y, y);
}

/// log-softmax of one row of n >= 1 elements: (x - max) - log(sum exp(x - max)); next_in and next_out as for
/// softmax_row.
template <class A, class T>
inline void log_softmax_row(const T* x, T* y, std::size_t n, const T* next_in, T* next_out) {
  using B = xsimd::batch<T, A>;
  const B m(row_max<A>(x, n));
  next_row_prefetch pf(next_in, next_out, n);
  next_row_prefetch* pc = &pf;
  const T s = sum_of<A, T>(
      n, ~std::size_t(0),
      [m, pc](const B& v) {
        pc->step();
        const B d = v - m; // <= 0 (or NaN)
        return exp_impl<false, T, A, true>(d, d);
      },
      x);
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
  detail::for_rows(rows, cols, detail::softmax_parallel, [&](std::size_t i) {
    const bool more = i + 1 < rows;
    detail::softmax_row<A>(x + i * cols, y + i * cols, cols, more ? x + (i + 1) * cols : nullptr,
                           more ? y + (i + 1) * cols : nullptr);
  });
}

/// y[i, :] = log_softmax(x[i, :]) for the row-major (rows, cols) x.
template <class T, class A = xsimd::default_arch>
void log_softmax_last(const T* x, T* y, std::size_t rows, std::size_t cols) {
  if (cols == 0)
    return;
  detail::for_rows(rows, cols, detail::softmax_parallel, [&](std::size_t i) {
    const bool more = i + 1 < rows;
    detail::log_softmax_row<A>(x + i * cols, y + i * cols, cols, more ? x + (i + 1) * cols : nullptr,
                               more ? y + (i + 1) * cols : nullptr);
  });
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
