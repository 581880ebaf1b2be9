#pragma once
/// @file kernels/gemm_simd.hpp
/// SIMD pieces of the GEMM that xsimd 8.1 lacks: partial (masked) loads and stores and in-register
/// square transposes, plus the architecture-tagged inline namespace the GEMM code lives in.

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../detail/xsimd.hpp"
#if defined(__SSE2__) || defined(__AVX__)
#include <immintrin.h>
#endif

// ODR (DESIGN.md section 5): the GEMM is compiled for whatever -march the including translation unit
// uses, and two such units linked into one program must not share inline symbols. Every GEMM symbol
// therefore lives in an inline namespace named after the instruction set, so `grad::kernels::gemm` in
// an AVX2 unit and in an AVX-512 unit are different functions.
#ifndef GRAD_GEMM_ARCH_NS
#if defined(__AVX512BW__)
/// Name of the inline namespace holding the GEMM for the instruction set being compiled for.
#define GRAD_GEMM_ARCH_NS arch_avx512bw
#elif defined(__AVX512DQ__)
#define GRAD_GEMM_ARCH_NS arch_avx512dq
#elif defined(__AVX512CD__)
#define GRAD_GEMM_ARCH_NS arch_avx512cd
#elif defined(__AVX512F__)
#define GRAD_GEMM_ARCH_NS arch_avx512f
#elif defined(__AVX2__) && defined(__FMA__)
#define GRAD_GEMM_ARCH_NS arch_avx2_fma
#elif defined(__AVX2__)
#define GRAD_GEMM_ARCH_NS arch_avx2
#elif defined(__AVX__) && defined(__FMA__)
#define GRAD_GEMM_ARCH_NS arch_avx_fma
#elif defined(__AVX__)
#define GRAD_GEMM_ARCH_NS arch_avx
#elif defined(__SSE4_2__) && defined(__FMA__)
#define GRAD_GEMM_ARCH_NS arch_sse4_2_fma
#elif defined(__SSE4_2__)
#define GRAD_GEMM_ARCH_NS arch_sse4_2
#elif defined(__SSE4_1__)
#define GRAD_GEMM_ARCH_NS arch_sse4_1
#elif defined(__SSSE3__)
#define GRAD_GEMM_ARCH_NS arch_ssse3
#elif defined(__SSE3__)
#define GRAD_GEMM_ARCH_NS arch_sse3
#elif defined(__SSE2__)
#define GRAD_GEMM_ARCH_NS arch_sse2
#elif defined(__ARM_NEON)
#define GRAD_GEMM_ARCH_NS arch_neon
#else
#define GRAD_GEMM_ARCH_NS arch_generic
#endif
#endif

namespace grad::detail::gemm_impl {
inline namespace GRAD_GEMM_ARCH_NS {

/// True when the target has AVX-512 mask registers: partial loads and stores are single instructions
/// that never touch the masked-off lanes (no fault past the end of a row), so the GEMM can read an
/// unpacked B with a ragged right edge directly.
inline constexpr bool has_masked_memops =
#if defined(__AVX512F__)
    true;
#else
    false;
#endif

/// Number of vector registers of the target (drives the micro-kernel shape).
inline constexpr int simd_registers =
#if defined(__AVX512F__)
    32;
#elif defined(__x86_64__) || defined(_M_X64) || defined(__aarch64__)
    16;
#else
        8;
#endif

/// Mask selecting the first `n` of the lanes of one simd<T> (only meaningful with has_masked_memops).
template <class T>
inline std::uint32_t lane_mask(std::size_t n) noexcept {
  return n >= simd_width<T> ? (std::uint32_t(1) << simd_width<T>)-1u : (std::uint32_t(1) << n) - 1u;
}

/// Loads lanes selected by `mask` from p (others zero). Needs has_masked_memops; elsewhere a full load.
template <class T>
inline simd<T> load_masked(const T* p, [[maybe_unused]] std::uint32_t mask) noexcept {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float> && simd_width<T> == 16)
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>(mask), p);
  else if constexpr (std::is_same_v<T, double> && simd_width<T> == 8)
    return _mm512_maskz_loadu_pd(static_cast<__mmask8>(mask), p);
  else
#endif
    return simd<T>::load_unaligned(p);
}

/// Stores lanes selected by `mask` to p. Needs has_masked_memops; elsewhere a full store.
template <class T>
inline void store_masked(T* p, const simd<T>& v, [[maybe_unused]] std::uint32_t mask) noexcept {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float> && simd_width<T> == 16)
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>(mask), v);
  else if constexpr (std::is_same_v<T, double> && simd_width<T> == 8)
    _mm512_mask_storeu_pd(p, static_cast<__mmask8>(mask), v);
  else
#endif
    v.store_unaligned(p);
}

/// Loads the first n (< lanes) values of p, zero elsewhere, never reading past p[n - 1].
template <class T>
inline simd<T> load_partial(const T* p, std::size_t n) noexcept {
  if constexpr (has_masked_memops) {
    return load_masked(p, lane_mask<T>(n));
  } else {
    alignas(64) T tmp[simd_width<T>] = {};
    for (std::size_t i = 0; i < n; ++i)
      tmp[i] = p[i];
    return simd<T>::load_aligned(tmp);
  }
}

/// Stores the first n (< lanes) lanes of v to p, never writing past p[n - 1].
template <class T>
inline void store_partial(T* p, const simd<T>& v, std::size_t n) noexcept {
  if constexpr (has_masked_memops) {
    store_masked(p, v, lane_mask<T>(n));
  } else {
    alignas(64) T tmp[simd_width<T>];
    v.store_aligned(tmp);
    for (std::size_t i = 0; i < n; ++i)
      p[i] = tmp[i];
  }
}

/// True when transpose_square below is done in registers for simd<T> (else a scalar fallback).
template <class T>
inline constexpr bool has_fast_transpose =
#if defined(__AVX512F__)
    simd_width<T> * sizeof(T) == 64 ||
#endif
#if defined(__AVX__)
    simd_width<T> * sizeof(T) == 32 ||
#endif
#if defined(__SSE2__)
    simd_width<T> * sizeof(T) == 16 ||
#endif
    false;

// g++ 12 warns that the `undefined` source of some AVX-512 shuffle intrinsics is uninitialized when it
// inlines them (GCC PR105593); the warning is about its own header, not this code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

/// Transposes the W x W block held in r[0..W) (r[i] = row i), W = simd_width<T>, in registers.
/// Shuffle networks: unpack pairs of rows, then move 128-bit lanes (the classic 4-stage scheme).
template <class T>
inline void transpose_square(simd<T>* r) noexcept {
  constexpr std::size_t w = simd_width<T>;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float> && w == 16) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; ++i) {
      t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // u[4g + q] holds, in 128-bit lane L, rows 4g..4g+3 of column 4L + q.
    for (int g = 0; g < 4; ++g) {
      u[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], _MM_SHUFFLE(1, 0, 1, 0));
      u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], _MM_SHUFFLE(3, 2, 3, 2));
      u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(1, 0, 1, 0));
      u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int q = 0; q < 4; ++q) {
      const __m512 v0 = _mm512_shuffle_f32x4(u[q], u[4 + q], _MM_SHUFFLE(2, 0, 2, 0));
      const __m512 w0 = _mm512_shuffle_f32x4(u[q], u[4 + q], _MM_SHUFFLE(3, 1, 3, 1));
      const __m512 v1 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], _MM_SHUFFLE(2, 0, 2, 0));
      const __m512 w1 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], _MM_SHUFFLE(3, 1, 3, 1));
      r[q] = _mm512_shuffle_f32x4(v0, v1, _MM_SHUFFLE(2, 0, 2, 0));
      r[8 + q] = _mm512_shuffle_f32x4(v0, v1, _MM_SHUFFLE(3, 1, 3, 1));
      r[4 + q] = _mm512_shuffle_f32x4(w0, w1, _MM_SHUFFLE(2, 0, 2, 0));
      r[12 + q] = _mm512_shuffle_f32x4(w0, w1, _MM_SHUFFLE(3, 1, 3, 1));
    }
    return;
  } else if constexpr (std::is_same_v<T, double> && w == 8) {
    __m512d t[8];
    for (int i = 0; i < 4; ++i) {
      t[2 * i] = _mm512_unpacklo_pd(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm512_unpackhi_pd(r[2 * i], r[2 * i + 1]);
    }
    // t[2g + q] holds, in 128-bit lane L, rows 2g, 2g+1 of column 2L + q.
    for (int q = 0; q < 2; ++q) {
      const __m512d v0 = _mm512_shuffle_f64x2(t[q], t[2 + q], _MM_SHUFFLE(2, 0, 2, 0));
      const __m512d w0 = _mm512_shuffle_f64x2(t[q], t[2 + q], _MM_SHUFFLE(3, 1, 3, 1));
      const __m512d v1 = _mm512_shuffle_f64x2(t[4 + q], t[6 + q], _MM_SHUFFLE(2, 0, 2, 0));
      const __m512d w1 = _mm512_shuffle_f64x2(t[4 + q], t[6 + q], _MM_SHUFFLE(3, 1, 3, 1));
      r[q] = _mm512_shuffle_f64x2(v0, v1, _MM_SHUFFLE(2, 0, 2, 0));
      r[4 + q] = _mm512_shuffle_f64x2(v0, v1, _MM_SHUFFLE(3, 1, 3, 1));
      r[2 + q] = _mm512_shuffle_f64x2(w0, w1, _MM_SHUFFLE(2, 0, 2, 0));
      r[6 + q] = _mm512_shuffle_f64x2(w0, w1, _MM_SHUFFLE(3, 1, 3, 1));
    }
    return;
  }
#endif
#if defined(__AVX__)
  if constexpr (std::is_same_v<T, float> && w == 8) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; ++i) {
      t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 2; ++g) {
      u[4 * g + 0] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], _MM_SHUFFLE(1, 0, 1, 0));
      u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], _MM_SHUFFLE(3, 2, 3, 2));
      u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(1, 0, 1, 0));
      u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int q = 0; q < 4; ++q) {
      r[q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x20);
      r[4 + q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x31);
    }
    return;
  } else if constexpr (std::is_same_v<T, double> && w == 4) {
    const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
    const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
    r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
    return;
  }
#endif
#if defined(__SSE2__)
  if constexpr (std::is_same_v<T, float> && w == 4) {
    const __m128 t0 = _mm_unpacklo_ps(r[0], r[1]), t1 = _mm_unpackhi_ps(r[0], r[1]);
    const __m128 t2 = _mm_unpacklo_ps(r[2], r[3]), t3 = _mm_unpackhi_ps(r[2], r[3]);
    r[0] = _mm_movelh_ps(t0, t2);
    r[1] = _mm_movehl_ps(t2, t0);
    r[2] = _mm_movelh_ps(t1, t3);
    r[3] = _mm_movehl_ps(t3, t1);
    return;
  } else if constexpr (std::is_same_v<T, double> && w == 2) {
    const __m128d t0 = _mm_unpacklo_pd(r[0], r[1]), t1 = _mm_unpackhi_pd(r[0], r[1]);
    r[0] = t0;
    r[1] = t1;
    return;
  }
#endif
  alignas(64) T m[w * w];
  for (std::size_t i = 0; i < w; ++i)
    r[i].store_aligned(m + i * w);
  for (std::size_t i = 0; i < w; ++i) {
    alignas(64) T col[w];
    for (std::size_t j = 0; j < w; ++j)
      col[j] = m[j * w + i];
    r[i] = simd<T>::load_aligned(col);
  }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

} // namespace GRAD_GEMM_ARCH_NS
} // namespace grad::detail::gemm_impl
