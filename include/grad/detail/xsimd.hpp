#pragma once
/// @file detail/xsimd.hpp
/// The one place that includes xsimd, plus the few helpers xsimd 8.1 lacks (see DESIGN.md section 5).

#include <cstddef>
#include <xsimd/xsimd.hpp>
#if defined(__AVX512F__) || defined(__AVX2__) || defined(__FMA__)
#include <immintrin.h>
#endif

namespace grad::detail {

/// SIMD batch of T for the architecture this translation unit is compiled for.
template <class T>
using simd = xsimd::batch<T>;

/// Lanes in one simd<T>.
template <class T>
inline constexpr std::size_t simd_width = simd<T>::size;

/// a * b + c as one fused instruction where the target has FMA. xsimd 8.1's avx512 `fma` is a plain
/// x*y+z that clang does not fuse, so this goes to the intrinsic directly.
template <class T, class A>
inline xsimd::batch<T, A> fmadd(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b,
                                const xsimd::batch<T, A>& c) noexcept {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<A, xsimd::avx512bw> || std::is_same_v<A, xsimd::avx512dq> ||
                std::is_same_v<A, xsimd::avx512cd> || std::is_same_v<A, xsimd::avx512f>) {
    if constexpr (std::is_same_v<T, float>)
      return _mm512_fmadd_ps(a, b, c);
    else if constexpr (std::is_same_v<T, double>)
      return _mm512_fmadd_pd(a, b, c);
  }
#endif
#if defined(__FMA__)
  if constexpr (sizeof(xsimd::batch<T, A>) == 32) {
    if constexpr (std::is_same_v<T, float>)
      return _mm256_fmadd_ps(a, b, c);
    else if constexpr (std::is_same_v<T, double>)
      return _mm256_fmadd_pd(a, b, c);
  }
  if constexpr (sizeof(xsimd::batch<T, A>) == 16) {
    if constexpr (std::is_same_v<T, float>)
      return _mm_fmadd_ps(a, b, c);
    else if constexpr (std::is_same_v<T, double>)
      return _mm_fmadd_pd(a, b, c);
  }
#endif
  return a * b + c;
}

/// Sum of the lanes of a batch (xsimd 8.1 has `hadd`, not `reduce_add`).
template <class T, class A>
inline T hsum(const xsimd::batch<T, A>& v) noexcept {
  return xsimd::hadd(v);
}

} // namespace grad::detail
