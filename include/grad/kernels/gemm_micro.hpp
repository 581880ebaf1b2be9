#pragma once
/// @file kernels/gemm_micro.hpp
/// Register-blocked GEMM micro-kernels: C[MR x NV*W] = alpha * A-sliver * B-sliver + beta * C.

#include <cstddef>
#include <cstdint>

#include "gemm_simd.hpp"

namespace grad::detail::gemm_impl {
inline namespace GRAD_GEMM_ARCH_NS {

/// Register tile of the micro-kernel for T on this target: MR rows of C by NV vectors of W lanes.
template <class T>
struct gemm_shape {
  /// Lanes per vector.
  static constexpr std::size_t w = simd_width<T>;
  /// Rows of C per micro-tile: each k step broadcasts MR values of A.
  static constexpr std::size_t mr = 6;
  /// Vectors of C per micro-tile row. MR * NV accumulators + NV B vectors + 1 broadcast must fit the
  /// register file: 6 x 4 = 24 (+5) of AVX-512's 32 zmm, 6 x 2 = 12 (+3) of AVX2/SSE's 16.
  static constexpr std::size_t nv = simd_registers >= 32 ? 4 : 2;
  /// Columns of C per micro-tile.
  static constexpr std::size_t nr = nv * w;
};

/// Arguments of one micro-kernel call (a struct so all tile variants share one pointer type).
template <class T>
struct micro_args {
  std::size_t kc;    ///< depth of the sliver product
  const T* a;        ///< A sliver: element (i, p) at a[i * ars + p * acs]
  std::size_t ars;   ///< A row stride (row-major A, read in place: lda; transposed A: 1)
  std::size_t acs;   ///< A column stride (row-major A: 1; transposed A: MR when packed, else lda)
  std::size_t rows;  ///< rows of the tile, 1..MR
  const T* b;        ///< B sliver: element (p, j) at b[p * bs + j]
  std::size_t bs;    ///< B row stride (packed panel width, or ldb when B is read in place)
  T* c;              ///< top-left of the C tile
  std::size_t ldc;   ///< leading dimension of C
  T alpha;           ///< scale of the product
  T beta;            ///< scale of the old C (0: C is not read)
  std::size_t nlast; ///< valid lanes of the last vector of each row, 1..W
};

/// C tile (rows x NV vectors) = alpha * sum_p A(:, p) B(p, :) + beta * C. The MR x NV accumulators
/// stay in registers for the whole kc loop (Goto & van de Geijn, "Anatomy of high-performance matrix
/// multiplication", ACM TOMS 34(3), 2008; Van Zee & van de Geijn, "BLIS", ACM TOMS 41(3), 2015).
/// A tile with fewer than MR rows repeats its last row (computed, not stored): one variant per NV
/// instead of MR * NV (8 kernels instead of 48 for float and double: a translation unit using both
/// compiles in 4.0 s instead of 6.7 s), and a short tile is bound by streaming B anyway.
/// Every C element gets the same FMA sequence in p order whatever the tile, so results do not depend
/// on how C was split between tiles or threads.
template <class T, std::size_t NV>
void micro_kernel(const micro_args<T>& g) noexcept {
  using V = simd<T>;
  constexpr std::size_t w = simd_width<T>, mr = gemm_shape<T>::mr;
  const std::size_t rows = g.rows;
  const T* arow[mr];
#pragma GCC unroll 8
  for (std::size_t i = 0; i < mr; ++i)
    arow[i] = g.a + (i < rows ? i : rows - 1) * g.ars;
  V acc[mr][NV];
#pragma GCC unroll 8
  for (std::size_t i = 0; i < mr; ++i)
#pragma GCC unroll 8
    for (std::size_t v = 0; v < NV; ++v)
      acc[i][v] = V(T(0));

  // Prefetch the C tile for writing: its first touch comes after the whole kc loop, long enough for
  // the lines to arrive.
  for (std::size_t i = 0; i < rows; ++i)
#pragma GCC unroll 8
    for (std::size_t v = 0; v < NV; ++v)
      __builtin_prefetch(g.c + i * g.ldc + v * w, 1, 3);

  const T* b = g.b;
  const std::size_t acs = g.acs, bs = g.bs;
  // With mask registers the last vector is always a masked load (full mask inside the matrix): no
  // branch in the loop, and an unpacked B with a ragged edge is never read out of bounds.
  [[maybe_unused]] const std::uint32_t mask = lane_mask<T>(g.nlast);
  std::size_t off = 0;
  // Not unrolled: MR * NV FMAs per iteration already hide the loop overhead; unrolling by 2 or 4
  // measured 5-8% slower (g++ hoists loads of later steps and runs out of registers).
  const std::size_t kc = g.kc;
#pragma GCC unroll 1
  for (std::size_t p = 0; p < kc; ++p) {
    V bv[NV];
#pragma GCC unroll 8
    for (std::size_t v = 0; v + 1 < NV; ++v)
      bv[v] = V::load_unaligned(b + v * w);
    if constexpr (has_masked_memops)
      bv[NV - 1] = load_masked(b + (NV - 1) * w, mask);
    else
      bv[NV - 1] = V::load_unaligned(b + (NV - 1) * w);
#pragma GCC unroll 8
    for (std::size_t i = 0; i < mr; ++i) {
      const V ai(arow[i][off]);
#pragma GCC unroll 8
      for (std::size_t v = 0; v < NV; ++v)
        acc[i][v] = fmadd(ai, bv[v], acc[i][v]);
    }
    off += acs;
    b += bs;
  }

  // C = alpha * acc + beta * C, with no special cases for alpha == 1 or beta == 1: x * 1 is exact and
  // fma(1, c, x) rounds like c + x. Only beta == 0 differs: C is then never read (it may hold NaN).
  const V valpha(g.alpha), vbeta(g.beta);
  const bool read_c = g.beta != T(0);
  [[maybe_unused]] const std::size_t nl = g.nlast;
#pragma GCC unroll 8
  for (std::size_t i = 0; i < mr; ++i) {
    if (i >= rows)
      break;
    T* cr = g.c + i * g.ldc;
#pragma GCC unroll 8
    for (std::size_t v = 0; v + 1 < NV; ++v) {
      V r = acc[i][v] * valpha;
      if (read_c)
        r = fmadd(vbeta, V::load_unaligned(cr + v * w), r);
      r.store_unaligned(cr + v * w);
    }
    T* cp = cr + (NV - 1) * w;
    V r = acc[i][NV - 1] * valpha;
    if constexpr (has_masked_memops) {
      if (read_c)
        r = fmadd(vbeta, load_masked(cp, mask), r);
      store_masked(cp, r, mask);
    } else if (nl == w) {
      if (read_c)
        r = fmadd(vbeta, V::load_unaligned(cp), r);
      r.store_unaligned(cp);
    } else {
      if (read_c)
        r = fmadd(vbeta, load_partial(cp, nl), r);
      store_partial(cp, r, nl);
    }
  }
}

/// Runs the micro-kernel for a tile of g.rows rows by `vecs` vectors.
template <class T>
inline void run_micro(std::size_t vecs, const micro_args<T>& g) noexcept {
  static_assert(gemm_shape<T>::nv == 2 || gemm_shape<T>::nv == 4);
  if constexpr (gemm_shape<T>::nv == 4) {
    switch (vecs) {
    case 4:
      return micro_kernel<T, 4>(g);
    case 3:
      return micro_kernel<T, 3>(g);
    case 2:
      return micro_kernel<T, 2>(g);
    default:
      return micro_kernel<T, 1>(g);
    }
  } else {
    if (vecs == 2)
      return micro_kernel<T, 2>(g);
    return micro_kernel<T, 1>(g);
  }
}

} // namespace GRAD_GEMM_ARCH_NS
} // namespace grad::detail::gemm_impl
