#pragma once
/// @file kernels/binary.hpp
/// Same-shape binary elementwise kernels (add, sub, mul, div, scalar and accumulate forms, row
/// broadcast) on raw pointers, and the elementwise loop machinery the unary kernels share.
///
/// Conventions of every kernel in grad::kernels: inputs first, then outputs, then sizes; pointers may
/// have any alignment; an output may alias an input exactly (same pointer), never partially; n = 0 is a
/// no-op. `acc*` and `*_backward` kernels accumulate (dst +=). Templates on the xsimd architecture A
/// (defaulted), so translation units built for different -march never share a symbol.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "grad/detail/xsimd.hpp"
#include "grad/kernels/parallel.hpp"

namespace grad::detail {

/// Elements below which a cheap (memory bound) elementwise kernel stays on one thread.
inline constexpr std::size_t ew_parallel_cheap = std::size_t(1) << 17;
/// Elements below which a transcendental elementwise kernel (exp, tanh, gelu, ...) stays on one thread.
inline constexpr std::size_t ew_parallel_costly = std::size_t(1) << 14;
/// Elements per task handed to a thread by the parallel elementwise loop.
inline constexpr std::size_t ew_task = std::size_t(1) << 14;

/// True when A has AVX-512 masked loads and stores (tails in one instruction).
template <class A>
inline constexpr bool has_avx512_masks =
#if defined(__AVX512F__)
    std::is_base_of_v<xsimd::avx512f, A>;
#else
    false;
#endif

/// True when A has AVX2's masked loads and stores (vmaskmov: tails in one or two instructions).
template <class A>
inline constexpr bool has_avx2_masks =
#if defined(__AVX2__)
    std::is_base_of_v<xsimd::avx2, A> && !has_avx512_masks<A>;
#else
    false;
#endif

#if defined(__AVX2__)
/// Lane mask of an AVX2 batch of T whose first k lanes are set (k < lane count).
template <class T>
inline __m256i avx2_lane_mask(std::size_t k) noexcept {
  // A window of 8 (or 4) lanes over "all set, then all clear" starts k lanes before the clear part.
  alignas(32) static constexpr std::int32_t words[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                         0,  0,  0,  0,  0,  0,  0,  0};
  const std::size_t lanes_before_clear = std::is_same_v<T, float> ? k : 2 * k; // doubles: 2 words a lane
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(words + 8 - lanes_before_clear));
}
#endif

/// Loads the first k (< lane count) elements at p into a batch whose other lanes hold `fill`; never
/// reads past p + k.
template <class A, class T>
inline xsimd::batch<T, A> load_n(const T* p, std::size_t k, T fill = T(0)) noexcept {
#if defined(__AVX512F__)
  if constexpr (has_avx512_masks<A>) {
    if constexpr (std::is_same_v<T, float>)
      return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), static_cast<__mmask16>((1u << k) - 1u), p);
    else
      return _mm512_mask_loadu_pd(_mm512_set1_pd(fill), static_cast<__mmask8>((1u << k) - 1u), p);
  }
#endif
#if defined(__AVX2__)
  if constexpr (has_avx2_masks<A>) {
    const __m256i m = avx2_lane_mask<T>(k);
    if constexpr (std::is_same_v<T, float>)
      return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
    else
      return _mm256_blendv_pd(_mm256_set1_pd(fill), _mm256_maskload_pd(p, m), _mm256_castsi256_pd(m));
  }
#endif
  alignas(64) T buf[xsimd::batch<T, A>::size];
  std::fill(buf, buf + xsimd::batch<T, A>::size, fill);
  std::memcpy(buf, p, k * sizeof(T));
  return xsimd::batch<T, A>::load_aligned(buf);
}

/// Stores the first k (< lane count) lanes of v to p; never writes past p + k.
template <class A, class T>
inline void store_n(T* p, const xsimd::batch<T, A>& v, std::size_t k) noexcept {
#if defined(__AVX512F__)
  if constexpr (has_avx512_masks<A>) {
    if constexpr (std::is_same_v<T, float>)
      _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << k) - 1u), v);
    else
      _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << k) - 1u), v);
    return;
  }
#endif
#if defined(__AVX2__)
  if constexpr (has_avx2_masks<A>) {
    if constexpr (std::is_same_v<T, float>)
      _mm256_maskstore_ps(p, avx2_lane_mask<T>(k), v);
    else
      _mm256_maskstore_pd(p, avx2_lane_mask<T>(k), v);
    return;
  }
#endif
  alignas(64) T buf[xsimd::batch<T, A>::size];
  v.store_aligned(buf);
  std::memcpy(p, buf, k * sizeof(T));
}

/// out[i] = f(in[i]...) for i < n on one thread: 4 batches per step, then single batches, then one
/// partial batch. The tail goes through the same f as the body, so an element's result never depends
/// on its position or on n.
template <class A, class T, class F, class... In>
inline void ew_serial(std::size_t n, const F& f, T* out, const In*... in) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    const B r0 = f(B::load_unaligned(in + i)...);
    const B r1 = f(B::load_unaligned(in + i + W)...);
    const B r2 = f(B::load_unaligned(in + i + 2 * W)...);
    const B r3 = f(B::load_unaligned(in + i + 3 * W)...);
    r0.store_unaligned(out + i);
    r1.store_unaligned(out + i + W);
    r2.store_unaligned(out + i + 2 * W);
    r3.store_unaligned(out + i + 3 * W);
  }
  for (; i + W <= n; i += W)
    f(B::load_unaligned(in + i)...).store_unaligned(out + i);
  if (i < n)
    store_n<A>(out + i, f(load_n<A>(in + i, n - i)...), n - i);
}

/// out[i] = f(in[i]...) for i < n, on several threads when n >= threshold. Deterministic: an element's
/// value does not depend on how the range is split.
template <class A, class T, class F, class... In>
inline void ew(std::size_t n, std::size_t threshold, const F& f, T* out, const In*... in) {
  const int threads = n >= threshold ? get_num_threads() : 1;
  if (threads <= 1) {
    ew_serial<A>(n, f, out, in...);
    return;
  }
  const std::size_t tasks = (n + ew_task - 1) / ew_task;
  parallel_tasks(tasks, threads, [&](std::size_t t) {
    const std::size_t b = t * ew_task, len = std::min(ew_task, n - b);
    ew_serial<A>(len, f, out + b, (in + b)...);
  });
}

/// Calls row_fn(i) for each of `rows` rows, on several threads when rows * cols >= threshold.
template <class F>
inline void for_rows(std::size_t rows, std::size_t cols, std::size_t threshold, const F& row_fn) {
  const int threads = rows > 1 && rows * cols >= threshold ? get_num_threads() : 1;
  if (threads <= 1) {
    for (std::size_t i = 0; i < rows; ++i)
      row_fn(i);
    return;
  }
  // Tasks of at least ew_task elements, so that short rows are grouped.
  const std::size_t per = std::max<std::size_t>(1, ew_task / std::max<std::size_t>(cols, 1));
  const std::size_t tasks = (rows + per - 1) / per;
  parallel_tasks(tasks, threads, [&](std::size_t t) {
    const std::size_t end = std::min(rows, (t + 1) * per);
    for (std::size_t i = t * per; i < end; ++i)
      row_fn(i);
  });
}

} // namespace grad::detail

namespace grad::kernels {

/// y = x (a vectorized copy; the memory-bandwidth reference of the benchmarks).
template <class T, class A = xsimd::default_arch>
void copy(const T* x, T* y, std::size_t n) {
  detail::ew<A>(
      n, detail::ew_parallel_cheap, [](const auto& a) { return a; }, y, x);
}

/// y = value.
template <class T, class A = xsimd::default_arch>
void fill(T value, T* y, std::size_t n) {
  const xsimd::batch<T, A> v(value);
  detail::ew<A>(
      n, detail::ew_parallel_cheap, [v]() { return v; }, y);
}

/// z = x + y.
template <class T, class A = xsimd::default_arch>
void add(const T* x, const T* y, T* z, std::size_t n) {
  detail::ew<A>(
      n, detail::ew_parallel_cheap, [](const auto& a, const auto& b) { return a + b; }, z, x, y);
}

/// z = x - y.
template <class T, class A = xsimd::default_arch>
void sub(const T* x, const T* y, T* z, std::size_t n) {
  detail::ew<A>(
      n, detail::ew_parallel_cheap, [](const auto& a, const auto& b) { return a - b; }, z, x, y);
}

/// z = x * y.
template <class T, class A = xsimd::default_arch>
void mul(const T* x, const T* y, T* z, std::size_t n) {
  detail::ew<A>(
      n, detail::ew_parallel_cheap, [](const auto& a, const auto& b) { return a * b; }, z, x, y);
}

/// z = x / y.
template <class T, class A = xsimd::default_arch>
void div(const T* x, const T* y, T* z, std::size_t n) {
  detail::ew<A>(
      n, detail::ew_parallel_cheap, [](const auto& a, const auto& b) { return a / b; }, z, x, y);
}

/// y = x + a.
template <class T, class A = xsimd::default_arch>
void add_scalar(const T* x, T a, T* y, std::size_t n) {
  const xsimd::batch<T, A> va(a);
  detail::ew<A>(
      n, detail::ew_parallel_cheap, [va](const auto& v) { return v + va; }, y, x);
}

/// y = a * x.
template <class T, class A = xsimd::default_arch>
void mul_scalar(const T* x, T a, T* y, std::size_t n) {
  const xsimd::batch<T, A> va(a);
  detail::ew<A>(
      n, detail::ew_parallel_cheap, [va](const auto& v) { return va * v; }, y, x);
}

/// z = x * y + w, with one rounding where the target has FMA.
template <class T, class A = xsimd::default_arch>
void mul_add(const T* x, const T* y, const T* w, T* z, std::size_t n) {
  detail::ew<A>(
      n, detail::ew_parallel_cheap,
      [](const auto& a, const auto& b, const auto& c) { return detail::fmadd(a, b, c); }, z, x, y, w);
}

/// y += a * x (BLAS axpy), with one rounding where the target has FMA.
template <class T, class A = xsimd::default_arch>
void axpy(T a, const T* x, T* y, std::size_t n) {
  const xsimd::batch<T, A> va(a);
  detail::ew<A>(
      n, detail::ew_parallel_cheap, [va](const auto& d, const auto& v) { return detail::fmadd(va, v, d); }, y,
      y, x);
}

/// y += x (gradient accumulation).
template <class T, class A = xsimd::default_arch>
void acc(const T* x, T* y, std::size_t n) {
  detail::ew<A>(
      n, detail::ew_parallel_cheap, [](const auto& d, const auto& v) { return d + v; }, y, y, x);
}

/// y -= x (gradient of the subtrahend).
template <class T, class A = xsimd::default_arch>
void acc_neg(const T* x, T* y, std::size_t n) {
  detail::ew<A>(
      n, detail::ew_parallel_cheap, [](const auto& d, const auto& v) { return d - v; }, y, y, x);
}

/// y += a * b (gradient of a product: da += dz * b), with one rounding where the target has FMA.
template <class T, class A = xsimd::default_arch>
void acc_mul(const T* a, const T* b, T* y, std::size_t n) {
  detail::ew<A>(
      n, detail::ew_parallel_cheap,
      [](const auto& d, const auto& u, const auto& v) { return detail::fmadd(u, v, d); }, y, y, a, b);
}

/// y += a / b (gradient of a quotient's numerator: dx += dz / y).
template <class T, class A = xsimd::default_arch>
void acc_div(const T* a, const T* b, T* y, std::size_t n) {
  detail::ew<A>(
      n, detail::ew_parallel_cheap, [](const auto& d, const auto& u, const auto& v) { return d + u / v; }, y,
      y, a, b);
}

/// dy -= dz * z / y: gradient of z = x / y with respect to y, from the saved output z.
template <class T, class A = xsimd::default_arch>
void div_backward_rhs(const T* y, const T* z, const T* dz, T* dy, std::size_t n) {
  // d(x/y)/dy = -x/y^2 = -z/y
  detail::ew<A>(
      n, detail::ew_parallel_cheap,
      [](const auto& d, const auto& vy, const auto& vz, const auto& g) { return d - g * vz / vy; }, dy, dy, y,
      z, dz);
}

/// y[i, j] = x[i, j] + row[j] for a row-major (rows, cols) x: bias add.
template <class T, class A = xsimd::default_arch>
void add_row(const T* x, const T* row, T* y, std::size_t rows, std::size_t cols) {
  const auto f = [](const auto& a, const auto& b) { return a + b; };
  detail::for_rows(rows, cols, detail::ew_parallel_cheap,
                   [&](std::size_t i) { detail::ew_serial<A>(cols, f, y + i * cols, x + i * cols, row); });
}

/// y[i, j] = x[i, j] * row[j] for a row-major (rows, cols) x: per-column scale (layer-norm gain).
template <class T, class A = xsimd::default_arch>
void mul_row(const T* x, const T* row, T* y, std::size_t rows, std::size_t cols) {
  const auto f = [](const auto& a, const auto& b) { return a * b; };
  detail::for_rows(rows, cols, detail::ew_parallel_cheap,
                   [&](std::size_t i) { detail::ew_serial<A>(cols, f, y + i * cols, x + i * cols, row); });
}

} // namespace grad::kernels
