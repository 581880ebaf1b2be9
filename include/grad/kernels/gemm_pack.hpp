#pragma once
/// @file kernels/gemm_pack.hpp
/// Packing of GEMM operands into the contiguous slivers the micro-kernels stream through.

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "gemm_micro.hpp"

namespace grad::detail::gemm_impl {
inline namespace GRAD_GEMM_ARCH_NS {

/// Packs the mc x kc block of op(A) for A stored transposed (k x m, leading dimension lda) into
/// k-major MR-row slivers: sliver s at dst + s * MR * kc, element (i, p) at [p * MR + i], which the
/// micro-kernel reads with row stride 1 and column stride MR. No transposition is involved: a storage
/// row of A holds MR consecutive values of every sliver. Row-major A needs no packing at all (see
/// choose_packing). Rows past mc in the last sliver are left unset: the kernel never reads them.
template <class T>
inline void pack_a(const T* a, std::size_t lda, std::size_t mc, std::size_t kc, T* dst) noexcept {
  constexpr std::size_t mr = gemm_shape<T>::mr;
  // Each sliver takes MR values per storage row. Copy a power-of-two 8 instead (one unaligned vector
  // move; element-wise copies, and masked 6-lane stores that straddle cache lines, cost 3x more): the 2
  // extra values land where the next row's copy overwrites them, so only the last row, and reads
  // that would pass the end of a row, need the exact copy.
  constexpr std::size_t wide = 8;
  static_assert(wide >= mr);
  // Storage rows are visited in groups of 16, sliver by sliver inside a group: the group's rows stay in
  // L1 (reading one sliver down all kc rows would touch a new page and, for lda a multiple of 1 KiB,
  // the same cache set at every row) while each sliver is still written sequentially.
  constexpr std::size_t group = 16;
  for (std::size_t p0 = 0; p0 < kc; p0 += group) {
    const std::size_t p1 = std::min(kc, p0 + group);
    const std::size_t pw = std::min(p1, kc - 1); // rows before the last one may take the wide copy
    std::size_t i = 0;
    for (; i + wide <= mc; i += mr) {
      T* d = dst + i * kc;
      const T* src = a + i;
      std::size_t p = p0;
      for (; p < pw; ++p)
        std::memcpy(d + p * mr, src + p * lda, wide * sizeof(T));
      for (; p < p1; ++p)
        std::memcpy(d + p * mr, src + p * lda, mr * sizeof(T));
    }
    for (; i < mc; i += mr)
      for (std::size_t p = p0; p < p1; ++p)
        std::memcpy(dst + i * kc + p * mr, a + p * lda + i, std::min(mr, mc - i) * sizeof(T));
  }
}

/// Width of the packed B panel starting at column jr of an nc-wide block: NR, or the remainder rounded
/// up to whole vectors (the padding lanes are zero).
template <class T>
constexpr std::size_t packed_b_width(std::size_t nc, std::size_t jr) noexcept {
  using sh = gemm_shape<T>;
  const std::size_t rest = nc - jr;
  return rest >= sh::nr ? sh::nr : (rest + sh::w - 1) / sh::w * sh::w;
}

/// Packs the kc x nc block of op(B) at b into NR-column panels, panel q at dst + q * NR * kc with row
/// stride packed_b_width. Transposed B (stored n x k) goes through W x W in-register transposes, so
/// A B^T costs about the same as A B.
template <class T>
inline void pack_b(bool trans_b, const T* b, std::size_t ldb, std::size_t kc, std::size_t nc,
                   T* dst) noexcept {
  using V = simd<T>;
  constexpr std::size_t w = simd_width<T>;
  constexpr std::size_t nr = gemm_shape<T>::nr;
  if (!trans_b) {
    for (std::size_t p = 0; p < kc; ++p) {
      const T* src = b + p * ldb;
      for (std::size_t jr = 0; jr < nc; jr += nr) {
        const std::size_t pw = packed_b_width<T>(nc, jr);
        T* d = dst + jr * kc + p * pw;
        const std::size_t n = std::min(nr, nc - jr);
        std::size_t j = 0;
        for (; j + w <= n; j += w)
          V::load_unaligned(src + jr + j).store_aligned(d + j);
        if (j < n)
          load_partial(src + jr + j, n - j).store_aligned(d + j);
      }
    }
    return;
  }
  // B stored (n x k): W rows of the storage (W columns of op(B)) at a time, W values of p per step.
  V r[w];
  for (std::size_t j0 = 0; j0 < nc; j0 += w) {
    const std::size_t jr = j0 / nr * nr;
    const std::size_t pw = packed_b_width<T>(nc, jr);
    T* d = dst + jr * kc + (j0 - jr);
    const std::size_t rows = std::min(w, nc - j0);
    const T* src = b + j0 * ldb;
    std::size_t p = 0;
    for (; p + w <= kc; p += w) {
      for (std::size_t i = 0; i < rows; ++i)
        r[i] = V::load_unaligned(src + i * ldb + p);
      for (std::size_t i = rows; i < w; ++i)
        r[i] = V(T(0));
      transpose_square<T>(r);
      for (std::size_t t = 0; t < w; ++t)
        r[t].store_aligned(d + (p + t) * pw);
    }
    if (p < kc) {
      const std::size_t left = kc - p;
      for (std::size_t i = 0; i < rows; ++i)
        r[i] = load_partial(src + i * ldb + p, left);
      for (std::size_t i = rows; i < w; ++i)
        r[i] = V(T(0));
      transpose_square<T>(r);
      for (std::size_t t = 0; t < left; ++t)
        r[t].store_aligned(d + (p + t) * pw);
    }
  }
}

} // namespace GRAD_GEMM_ARCH_NS
} // namespace grad::detail::gemm_impl
