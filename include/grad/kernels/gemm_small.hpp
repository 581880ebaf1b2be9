#pragma once
/// @file kernels/gemm_small.hpp
/// GEMM kernels for thin shapes, which read their operands in place (no packing):
/// matrix-vector products (m == 1 or n == 1), and dot-product tiles for a C narrower than a vector.

#include <algorithm>
#include <cstddef>

#include "gemm_simd.hpp"

namespace grad::detail::gemm_impl {
inline namespace GRAD_GEMM_ARCH_NS {

/// y[i * incy] = alpha * dot(x, A row i) + beta * y[i * incy] for i in [0, rows); row i at a + i * lda
/// and x both contiguous over [0, k). Four rows share each load of x; two accumulators per row hide
/// the FMA latency.
template <class T>
inline void gemv_dot(std::size_t rows, std::size_t k, T alpha, const T* a, std::size_t lda, const T* x,
                     T beta, T* y, std::size_t incy) noexcept {
  using V = simd<T>;
  constexpr std::size_t w = simd_width<T>;
  auto finish = [&](std::size_t i, T dot) {
    T& out = y[i * incy];
    out = beta == T(0) ? alpha * dot : alpha * dot + beta * out;
  };
  std::size_t i = 0;
  for (; i + 4 <= rows; i += 4) {
    const T* r0 = a + i * lda;
    const T* r1 = r0 + lda;
    const T* r2 = r1 + lda;
    const T* r3 = r2 + lda;
    V s0(T(0)), s1(T(0)), s2(T(0)), s3(T(0)), t0(T(0)), t1(T(0)), t2(T(0)), t3(T(0));
    std::size_t p = 0;
    for (; p + 2 * w <= k; p += 2 * w) {
      const V x0 = V::load_unaligned(x + p), x1 = V::load_unaligned(x + p + w);
      s0 = fmadd(V::load_unaligned(r0 + p), x0, s0);
      s1 = fmadd(V::load_unaligned(r1 + p), x0, s1);
      s2 = fmadd(V::load_unaligned(r2 + p), x0, s2);
      s3 = fmadd(V::load_unaligned(r3 + p), x0, s3);
      t0 = fmadd(V::load_unaligned(r0 + p + w), x1, t0);
      t1 = fmadd(V::load_unaligned(r1 + p + w), x1, t1);
      t2 = fmadd(V::load_unaligned(r2 + p + w), x1, t2);
      t3 = fmadd(V::load_unaligned(r3 + p + w), x1, t3);
    }
    for (; p < k; p += w) {
      const std::size_t n = std::min(w, k - p);
      const V x0 = load_partial(x + p, n);
      s0 = fmadd(load_partial(r0 + p, n), x0, s0);
      s1 = fmadd(load_partial(r1 + p, n), x0, s1);
      s2 = fmadd(load_partial(r2 + p, n), x0, s2);
      s3 = fmadd(load_partial(r3 + p, n), x0, s3);
    }
    finish(i, hsum(s0 + t0));
    finish(i + 1, hsum(s1 + t1));
    finish(i + 2, hsum(s2 + t2));
    finish(i + 3, hsum(s3 + t3));
  }
  for (; i < rows; ++i) {
    const T* r0 = a + i * lda;
    V s0(T(0)), t0(T(0));
    std::size_t p = 0;
    for (; p + 2 * w <= k; p += 2 * w) {
      s0 = fmadd(V::load_unaligned(r0 + p), V::load_unaligned(x + p), s0);
      t0 = fmadd(V::load_unaligned(r0 + p + w), V::load_unaligned(x + p + w), t0);
    }
    for (; p < k; p += w) {
      const std::size_t n = std::min(w, k - p);
      s0 = fmadd(load_partial(r0 + p, n), load_partial(x + p, n), s0);
    }
    finish(i, hsum(s0 + t0));
  }
}

/// y[j * incy] = alpha * sum_p x[p * incx] * B(p, j) + beta * y[j * incy] for j in [0, cols), with
/// B(p, j) = b[p * ldb + j]: rows of B scaled and added, 4 vectors of y at a time, even and odd p in
/// separate accumulators so that twice as many FMA chains are in flight.
template <class T>
inline void gemv_axpy(std::size_t cols, std::size_t k, T alpha, const T* x, std::size_t incx, const T* b,
                      std::size_t ldb, T beta, T* y, std::size_t incy) noexcept {
  using V = simd<T>;
  constexpr std::size_t w = simd_width<T>;
  constexpr std::size_t nv = 4;
  for (std::size_t j = 0; j < cols; j += nv * w) {
    const std::size_t n = std::min(nv * w, cols - j);
    const std::size_t vecs = (n + w - 1) / w, tail = n - (vecs - 1) * w;
    V s[nv], t[nv];
    for (std::size_t v = 0; v < nv; ++v)
      s[v] = t[v] = V(T(0));
    const T* bj = b + j;
    // The last vector of a ragged chunk is a partial load (a single masked load with AVX-512).
    auto row = [&](const T* r, std::size_t v) {
      return v + 1 < vecs || tail == w ? V::load_unaligned(r + v * w) : load_partial(r + v * w, tail);
    };
    std::size_t p = 0;
    if (vecs == nv && tail == w) { // full chunk: fixed trip counts the compiler unrolls
      for (; p + 2 <= k; p += 2) {
        const V x0(x[p * incx]), x1(x[(p + 1) * incx]);
        const T* r0 = bj + p * ldb;
        const T* r1 = r0 + ldb;
        for (std::size_t v = 0; v < nv; ++v) {
          s[v] = fmadd(x0, V::load_unaligned(r0 + v * w), s[v]);
          t[v] = fmadd(x1, V::load_unaligned(r1 + v * w), t[v]);
        }
      }
    } else {
      for (; p + 2 <= k; p += 2) {
        const V x0(x[p * incx]), x1(x[(p + 1) * incx]);
        const T* r0 = bj + p * ldb;
        for (std::size_t v = 0; v < vecs; ++v) {
          s[v] = fmadd(x0, row(r0, v), s[v]);
          t[v] = fmadd(x1, row(r0 + ldb, v), t[v]);
        }
      }
    }
    for (; p < k; ++p) {
      const V x0(x[p * incx]);
      for (std::size_t v = 0; v < vecs; ++v)
        s[v] = fmadd(x0, row(bj + p * ldb, v), s[v]);
    }
    alignas(64) T out[nv * w];
    for (std::size_t v = 0; v < nv; ++v)
      ((s[v] + t[v]) * V(alpha)).store_aligned(out + v * w);
    T* yj = y + j * incy;
    if (beta == T(0)) {
      for (std::size_t q = 0; q < n; ++q)
        yj[q * incy] = out[q];
    } else {
      for (std::size_t q = 0; q < n; ++q)
        yj[q * incy] = out[q] + beta * yj[q * incy];
    }
  }
}

// g++ 12 false positive on its own AVX-512 shuffle intrinsics (GCC PR105593), as in gemm_simd.hpp.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

/// Sums of the lanes of x[0..N), into out[0..N). For 16 AVX-512 float vectors a shuffle network (45
/// instructions instead of 16 separate reductions).
template <class T, std::size_t N>
inline void reduce_lanes(const simd<T>* x, T* out) noexcept {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float> && simd_width<T> == 16 && N == 16) {
    __m512 b[4];
    for (int q = 0; q < 4; ++q) {
      // Pairs: lane L of a01 = [x0 4L+0 + 4L+2, x1 same, x0 4L+1 + 4L+3, x1 same].
      const __m512 a01 = _mm512_add_ps(_mm512_unpacklo_ps(x[4 * q], x[4 * q + 1]),
                                       _mm512_unpackhi_ps(x[4 * q], x[4 * q + 1]));
      const __m512 a23 = _mm512_add_ps(_mm512_unpacklo_ps(x[4 * q + 2], x[4 * q + 3]),
                                       _mm512_unpackhi_ps(x[4 * q + 2], x[4 * q + 3]));
      // Lane L of b[q] = the sums over lane L of x[4q], ..., x[4q + 3].
      b[q] = _mm512_add_ps(_mm512_shuffle_ps(a01, a23, _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm512_shuffle_ps(a01, a23, _MM_SHUFFLE(3, 2, 3, 2)));
    }
    const __m512 c0 = _mm512_add_ps(_mm512_shuffle_f32x4(b[0], b[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                    _mm512_shuffle_f32x4(b[0], b[1], _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512 c1 = _mm512_add_ps(_mm512_shuffle_f32x4(b[2], b[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                    _mm512_shuffle_f32x4(b[2], b[3], _MM_SHUFFLE(3, 1, 3, 1)));
    _mm512_storeu_ps(out, _mm512_add_ps(_mm512_shuffle_f32x4(c0, c1, _MM_SHUFFLE(2, 0, 2, 0)),
                                        _mm512_shuffle_f32x4(c0, c1, _MM_SHUFFLE(3, 1, 3, 1))));
    return;
  }
#endif
  for (std::size_t i = 0; i < N; ++i)
    out[i] = hsum(x[i]);
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// Accumulators of a dot-product tile (half the register file).
inline constexpr std::size_t dot_accumulators = simd_registers >= 32 ? 16 : 8;

/// C[0:m, j0:min(j0+TC, n)] = alpha * A Bt^T + beta * C, by tiles of TR = dot_accumulators / TC rows
/// of A against TC rows of Bt, one vector accumulator per C element, reduced across lanes at the end.
/// Ragged tiles repeat their last row or column (computed and dropped).
template <class T, std::size_t TC>
inline void dot_tiles(std::size_t m, std::size_t n, std::size_t j0, std::size_t k, T alpha, const T* a,
                      std::size_t lda, const T* bt, std::size_t ldbt, T beta, T* c,
                      std::size_t ldc) noexcept {
  using V = simd<T>;
  constexpr std::size_t w = simd_width<T>, tc = TC, tr = dot_accumulators / TC;
  const std::size_t kfull = k / w * w, ktail = k - kfull;
  const T* br[tc];
  for (std::size_t j = 0; j < tc; ++j)
    br[j] = bt + std::min(j0 + j, n - 1) * ldbt;
  for (std::size_t i0 = 0; i0 < m; i0 += tr) {
    const T* ar[tr];
    for (std::size_t i = 0; i < tr; ++i)
      ar[i] = a + std::min(i0 + i, m - 1) * lda;
    V acc[tr * tc];
    for (std::size_t q = 0; q < tr * tc; ++q)
      acc[q] = V(T(0));
    for (std::size_t p = 0; p < kfull; p += w) {
      V bv[tc];
      for (std::size_t j = 0; j < tc; ++j)
        bv[j] = V::load_unaligned(br[j] + p);
      for (std::size_t i = 0; i < tr; ++i) {
        const V av = V::load_unaligned(ar[i] + p);
        for (std::size_t j = 0; j < tc; ++j)
          acc[i * tc + j] = fmadd(av, bv[j], acc[i * tc + j]);
      }
    }
    if (ktail) {
      V bv[tc];
      for (std::size_t j = 0; j < tc; ++j)
        bv[j] = load_partial(br[j] + kfull, ktail);
      for (std::size_t i = 0; i < tr; ++i) {
        const V av = load_partial(ar[i] + kfull, ktail);
        for (std::size_t j = 0; j < tc; ++j)
          acc[i * tc + j] = fmadd(av, bv[j], acc[i * tc + j]);
      }
    }
    T sums[tr * tc];
    reduce_lanes<T, tr * tc>(acc, sums);
    for (std::size_t i = 0; i < tr && i0 + i < m; ++i)
      for (std::size_t j = 0; j < tc && j0 + j < n; ++j) {
        T& out = c[(i0 + i) * ldc + j0 + j];
        out = beta == T(0) ? alpha * sums[i * tc + j] : alpha * sums[i * tc + j] + beta * out;
      }
  }
}

/// C = alpha * A Bt^T + beta * C by dot products: A (m x k) and Bt (n x k) both with rows contiguous
/// along k (lda, ldbt). For a C narrower than one vector the broadcast micro-kernel wastes most of
/// its lanes; here every lane does useful work and nothing is packed. Columns go 4 at a time, then
/// 2 and 1 with taller tiles, so no tile computes columns that are dropped.
template <class T>
inline void gemm_dot(std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda,
                     const T* bt, std::size_t ldbt, T beta, T* c, std::size_t ldc) noexcept {
  // Blocks of rows of A small enough to stay in L1 while every column group passes over them.
  constexpr std::size_t rows = dot_accumulators;
  for (std::size_t i0 = 0; i0 < m; i0 += rows) {
    const std::size_t mb = std::min(rows, m - i0);
    const T* ab = a + i0 * lda;
    T* cb = c + i0 * ldc;
    std::size_t j = 0;
    for (; j + 3 <= n; j += 4) // 3 columns left: a 4-column tile with one repeated
      dot_tiles<T, 4>(mb, n, j, k, alpha, ab, lda, bt, ldbt, beta, cb, ldc);
    if (j + 2 <= n) {
      dot_tiles<T, 2>(mb, n, j, k, alpha, ab, lda, bt, ldbt, beta, cb, ldc);
      j += 2;
    }
    if (j < n)
      dot_tiles<T, 1>(mb, n, j, k, alpha, ab, lda, bt, ldbt, beta, cb, ldc);
  }
}

} // namespace GRAD_GEMM_ARCH_NS
} // namespace grad::detail::gemm_impl
