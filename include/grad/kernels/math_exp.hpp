#pragma once
/// @file kernels/math_exp.hpp
/// Vectorized e^x and ln x on xsimd batches (float, double), and the exp/expm1 cores that tanh, sigmoid,
/// erfc and the normal CDF build on. Method, accuracy and special values: kernels/math.hpp.

#include <limits>
#include <type_traits>

#include "grad/kernels/math_base.hpp"

namespace grad::detail {

/// e^(x + xlo) where xlo is a small correction (|xlo| < 0.05) to x, or e^x when HasLo is false. With
/// NonPositive the caller guarantees x <= 0 (or NaN), and the clamp to the overflow bound is skipped.
template <bool HasLo, class T, class A, bool NonPositive = false>
inline xsimd::batch<T, A> exp_impl(xsimd::batch<T, A> x, const xsimd::batch<T, A>& xlo) noexcept {
  using B = xsimd::batch<T, A>;
  using C = math_consts<T>;
  if constexpr (NonPositive)
    x = max_keep_nan(x, C::exp_min);
  else
    x = clamp_keep_nan(x, C::exp_min, C::exp_max);
#if defined(__AVX512F__)
  if constexpr (has_scalef<A> && std::is_same_v<T, float>) {
    // AVX-512 float: x = (k + j/16) ln2 + r with j = k16 mod 16, |r| <= ln2/32, and
    // e^x = 2^k 2^(j/16) e^r: 2^(j/16) from a 16-entry table held in one register (vpermps, which runs
    // beside the FMA units), e^r - 1 = r + r^2 (1/2 + r/6) (truncation r^4/24 < 1e-8). Three
    // instructions fewer than the polynomial for |r| <= ln2/2; max relative error about 1.1 ulp (the
    // table entries are rounded), against 0.75.
    const B ks = fmadd(HasLo ? x + xlo : x, B(16.0f * C::log2e), B(C::round_shift));
    const B k16 = ks - B(C::round_shift); // round(16 x log2 e); the low 4 bits of ks hold k16 mod 16
    B r = fmadd(k16, B(-C::ln2_hi / 16.0f), x);
    r = fmadd(k16, B(-C::ln2_lo / 16.0f), r);
    if constexpr (HasLo)
      r = r + xlo;
    const B pm1 = fmadd(r * r, fmadd(r, B(1.0f / 6.0f), B(0.5f)), r); // e^r - 1
    const __m512 table = C::exp2_16ths();                             // (the masked form: see scale_pow2)
    const B tj = _mm512_mask_permutexvar_ps(table, __mmask16(0xffff), _mm512_castps_si512(ks), table);
    // 2^floor(k16 / 16) by vscalef, which floors its exponent operand itself (k16 / 16 is exact).
    return scale_pow2(fmadd(tj, pm1, tj), k16 * B(0.0625f));
  }
#endif
  // x = k ln2 + r, |r| <= ln2/2 (+|xlo|): Cody-Waite, the first step exact (Sterbenz, exact product).
  const B k = round_small(HasLo ? (x + xlo) * B(C::log2e) : x * B(C::log2e));
  B r = fmadd(k, B(-C::ln2_hi), x);
  r = fmadd(k, B(-C::ln2_lo), r);
  if constexpr (HasLo)
    r = r + xlo;
  const B em1 = fmadd(r * r, polyval(r, C::expm1_p), r); // e^r - 1
  return scale_pow2(em1 + B(T(1)), k);
}

/// e^z - 1 for z <= 0 (and NaN), accurate also for tiny |z|.
template <class T, class A>
inline xsimd::batch<T, A> expm1_nonpositive(xsimd::batch<T, A> z) noexcept {
  using B = xsimd::batch<T, A>;
  using C = math_consts<T>;
  z = max_keep_nan(z, C::tanh_zmin);
  const B k = round_small(z * B(C::log2e));
  B r = fmadd(k, B(-C::ln2_hi), z);
  r = fmadd(k, B(-C::ln2_lo), r);
  const B p = fmadd(r * r, polyval(r, C::expm1_p), r); // e^r - 1
  // e^z - 1 = 2^k (1 + p) - 1 = 2^k p + (2^k - 1); 2^k - 1 is exact for the k that matter (>= -24),
  // and for k = 0 the result is p itself, so tiny |z| keep full relative accuracy.
  // (2^k by vscalef on AVX-512: g++ 12 warns about its own headers' 512-bit shifts.)
  B s;
  if constexpr (has_scalef<A>)
    s = scale_pow2(B(T(1)), k);
  else
    s = pow2i(k);
  return fmadd(s, p, s - B(T(1)));
}

} // namespace grad::detail

namespace grad::kernels::math {

/// e^x, elementwise (accuracy and special values: the comment of kernels/math.hpp).
template <class T, class A>
GRAD_MATH_INLINE xsimd::batch<T, A> exp(const xsimd::batch<T, A>& x) noexcept {
  return detail::exp_impl<false>(x, x);
}

/// Natural logarithm, elementwise; subnormal inputs exact, log(0) = -inf, log(x < 0) = NaN.
template <class T, class A>
GRAD_MATH_INLINE xsimd::batch<T, A> log(const xsimd::batch<T, A>& x) noexcept {
  using B = xsimd::batch<T, A>;
  using C = detail::math_consts<T>;
  using UT = typename C::uint_type;
  using U = xsimd::batch<UT, A>;
  constexpr int p = C::mantissa_bits;
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, A> && std::is_same_v<T, float>) {
    // AVX-512 float, 20 instructions against 27 for the form below (measured side by side: 1.4x its
    // speed on 1e5 floats in cache): x = 2^e m with m in [3/4, 3/2) from one vgetmant (no compare and
    // selects to centre m on 1), e = getexp(x) - getexp(m) (getexp(m) is -1 for m < 1, else 0;
    // getexp(x * 4/3) would overflow past 1.5 * 2^127), subnormals included; log1p(f) = f + f^2 Q(f),
    // f = m - 1 exact; every special value from x's class by one vfixupimm instead of four compares and
    // blends. Max relative error 0.89 ulp on every positive float (0.73 for the form below: near x = 3/4,
    // where log1p(f) of f up to 1/2 cancels against -ln2). (The masked forms: see scale_pow2.)
    const __mmask16 all = 0xffff;
    const B m = _mm512_mask_getmant_ps(x, all, x, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_src);
    const B e = B(_mm512_mask_getexp_ps(x, all, x)) - B(_mm512_mask_getexp_ps(m, all, m));
    const B f = m - B(1.0f); // exact (Sterbenz)
    // Q(f) in two halves, Q = lo + f^4 hi, which run side by side: Horner's single chain of 8 FMAs was
    // 1.1x slower (latency bound, 4 batches in flight).
    const B f2 = f * f;
    constexpr auto& q = C::log_q34;
    const B lo = detail::fmadd(detail::fmadd(detail::fmadd(B(q[3]), f, B(q[2])), f, B(q[1])), f, B(q[0]));
    const B hi = detail::fmadd(
        detail::fmadd(detail::fmadd(detail::fmadd(B(q[8]), f, B(q[7])), f, B(q[6])), f, B(q[5])), f, B(q[4]));
    const B qv = detail::fmadd(f2 * f2, hi, lo);
    // e ln2 + log1p(f): f enters after the small terms, e ln2_hi last (an exact product).
    const B r = detail::fmadd(e, B(C::ln2_hi), detail::fmadd(f2, qv, e * B(C::ln2_lo)) + f);
    // vfixupimm: one 4-bit response per class of x, from QNaN (bits 0-3) to positive (bits 28-31): QNaN
    // and SNaN -> quiet x (2), +-0 -> -inf (4), 1 -> r (0, r is +0), -inf -> NaN (3), +inf -> +inf (5),
    // negative -> NaN (3), positive (subnormals too, unless DAZ) -> r (0).
    return _mm512_mask_fixupimm_ps(r, all, x, _mm512_set1_epi32(0x03530422), 0);
  }
#endif
  B m, e; // x = 2^e m, m in [1, 2)
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, A>) {
    // vgetmant / vgetexp: one instruction each, subnormals included.
    if constexpr (std::is_same_v<T, float>) {
      m = _mm512_mask_getmant_ps(x, __mmask16(0xffff), x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
      e = _mm512_mask_getexp_ps(x, __mmask16(0xffff), x);
    } else {
      m = _mm512_mask_getmant_pd(x, __mmask8(0xff), x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
      e = _mm512_mask_getexp_pd(x, __mmask8(0xff), x);
    }
  } else
#endif
  {
    // Subnormals: scale into the normal range first so that the exponent field means what it says.
    const auto tiny = x < B(C::min_normal);
    const U bits = xsimd::bitwise_cast<U>(xsimd::select(tiny, x * B(C::subnormal_scale), x));
    // m from the mantissa bits under a zero exponent; e from the exponent field read as a float by the
    // pow2i trick in reverse, (2^p | E) - (2^p + bias), which needs no int-to-float conversion.
    m = xsimd::bitwise_cast<B>((bits & U((UT(1) << p) - 1)) | U(C::one_bits));
    e = xsimd::bitwise_cast<B>((bits >> p) | U(C::two_p_bits)) - B(C::exp_bits_shift);
    e = e - xsimd::select(tiny, B(C::subnormal_exp), B(T(0)));
  }
  // Centre m on 1, m in [sqrt(1/2), sqrt(2)), so that log(m) has no cancellation against e ln2 near x = 1.
  const auto big = m > B(C::sqrt2);
  m = xsimd::select(big, m * B(T(0.5)), m);
  e = e + xsimd::select(big, B(T(1)), B(T(0)));
  const B f = m - B(T(1)); // exact (Sterbenz)
  B r;
  if constexpr (std::is_same_v<T, float>) {
    // log1p(f) = f - f^2/2 + f^3 P(f): f is exact, the rest a small correction.
    const B f2 = f * f;
    const B y = detail::fmadd(f2 * f, detail::polyval(f, C::log_p), f2 * B(-0.5f));
    r = detail::fmadd(e, B(C::ln2_lo), y) + f;
  } else {
    // fdlibm's form: keeps f exact and the rounding of s = f / (2 + f) in a term 5x smaller than f.
    const B s = f / (f + B(2.0));
    const B z = s * s;
    const B hfsq = B(0.5) * f * f;
    const B t = hfsq - s * detail::fmadd(z, detail::polyval(z, C::log_q), hfsq);
    r = (detail::fmadd(e, B(C::ln2_lo), -t)) + f;
  }
  r = detail::fmadd(e, B(C::ln2_hi), r); // exact product
  const B inf(std::numeric_limits<T>::infinity());
  r = xsimd::select(x > B(T(0)), r,
                    xsimd::select(x == B(T(0)), -inf, B(std::numeric_limits<T>::quiet_NaN())));
  return xsimd::select(x == inf, inf, r);
}

} // namespace grad::kernels::math
