#pragma once
/// @file kernels/math.hpp
/// Vectorized exp, log, tanh, sigmoid, erf, erfc and the normal CDF on xsimd batches (float, double).
///
/// Why our own rather than xsimd 8.1's (measured on AVX-512, float unless said, on a loaded machine):
/// its exp is about as fast as ours but flushes results below the smallest normal to 0; its tanh is
/// about 1.5x slower, its double exp and tanh 1.5-1.9x; its float erfc loses 4.5e-6 relative accuracy
/// in the tail (ours 3.3 ulp). Its erf is faster than ours: we pay for an erfc that is accurate in the
/// tail, which the exact GELU needs for x < -3.
///
/// Method (the classic Cody-Waite / Cephes scheme, with our own coefficients): range reduction, then a
/// minimax polynomial for the reduced function, fitted by a Remez exchange minimizing its maximum
/// relative error on the interval stated next to each table (mpmath, 50 digits). References:
/// - W. J. Cody and W. Waite, "Software Manual for the Elementary Functions", 1980 (reductions);
/// - S. L. Moshier, "Methods and Programs for Mathematical Functions", 1989 (Cephes: the split of
///   log into exponent and mantissa near 1, and exp(-z^2) with z^2 split in two exact parts in erfc);
/// - the fdlibm `log` scheme log1p(f) = f - (f^2/2 - s (f^2/2 + R(s^2))), s = f / (2 + f) (double).
///
/// Accuracy (tests/test_kernels_math.cpp, against the C library in double / long double, results that
/// are normal numbers): max relative error for float 0.75 ulp (exp on [-87.3, 88.7]: 1 ulp with the
/// AVX-512 table, log on every positive float, subnormals included), 2 ulp (sigmoid), 3.2 ulp (tanh,
/// a rational in float), 3.3 ulp (erf, erfc), 4.1 ulp (normal_cdf, a rational tail in float); for double
/// 0.75, 1.6 and 5.5 ulp (about 1.2e-15). (ulp here: FLT_EPSILON relative; GRAD_TEST_VERBOSE=1
/// test_kernels_math prints the measured values.) Special values: exp(-inf) = 0, exp(+inf) = +inf, results
/// below the smallest normal are gradual (subnormal), then 0; log(0) = -inf, log(x < 0) = NaN, log(+inf) =
/// +inf, subnormal inputs are handled exactly; tanh(+-inf) = +-1, tanh(-0) = -0, sigmoid(-inf) = 0; NaN in
/// gives NaN out everywhere.
///
/// Every function is a template on the xsimd architecture A (part of the mangled name), so two
/// translation units built with different -march never share a definition (DESIGN.md section 5).

#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "grad/detail/xsimd.hpp"

namespace grad::detail {

/// Constants and minimax coefficients of the math kernels, per precision.
template <class T>
struct math_consts;

template <>
struct math_consts<float> {
  using uint_type = std::uint32_t;
  static constexpr int mantissa_bits = 23;
  static constexpr float log2e = 1.44269502f;
  // ln 2 = ln2_hi + ln2_lo with ln2_hi holding 16 significant bits, so k * ln2_hi is exact for |k| < 256.
  static constexpr float ln2_hi = 0.693145751953125f;
  static constexpr float ln2_lo = 1.42860677e-06f;
  // Adding then subtracting 1.5 * 2^23 rounds a float with |v| < 2^22 to the nearest integer.
  static constexpr float round_shift = 12582912.0f;
  // k + (2^23 + 127) leaves the biased exponent k + 127 in the low mantissa bits (see pow2i).
  static constexpr float exp_bits_shift = 8388735.0f;
  static constexpr uint_type one_bits = 0x3f800000u;   // 1.0f
  static constexpr uint_type two_p_bits = 0x4b000000u; // 2^23
  // exp: below exp_min the result is 0 even after gradual underflow; above exp_max it is +inf.
  static constexpr float exp_min = -104.0f;
  static constexpr float exp_max = 89.0f;
  // expm1(r) = r + r^2 P(r) on [-ln2/2, ln2/2]; Remez, relative error of P 1.2e-7.
  static constexpr float expm1_p[] = {0.5f, 0.166665778f, 0.0416668542f, 0.00836314075f, 0.00139012851f};
  // tanh: below -tanh_zmin, expm1(z) rounds to -1 and tanh to +-1.
  static constexpr float tanh_zmin = -20.0f;
  // log1p(f) = f - f^2/2 + f^3 P(f) on [sqrt(1/2) - 1, sqrt(2) - 1]; Remez, relative error of P 4.1e-7.
  static constexpr float log_p[] = {0.333333313f, -0.25000304f,  0.200012013f, -0.166415811f,
                                    0.142099455f, -0.129892766f, 0.126556993f, -0.0797421783f};
  static constexpr float sqrt2 = 1.41421354f;
  static constexpr float min_normal = std::numeric_limits<float>::min();
  static constexpr float subnormal_scale = 33554432.0f; // 2^25
  static constexpr float subnormal_exp = 25.0f;
  // erf(x) = x P(x^2) for |x| < 1/2; Remez on x^2 in [0, 1/4], relative error 1.4e-9.
  static constexpr float erf_p[] = {1.12837911f, -0.376126081f, 0.112828225f, -0.0267571844f, 0.00471799029f};
  // erfc(z) = exp(-z^2) t G(t), t = 1 / (1 + c z), for z in [1/2, erfc_zmax]; Remez, relative error of G
  // 8.4e-9. Past erfc_zmax erfc underflows to 0.
  static constexpr float erfc_c = 0.5f;
  static constexpr float erfc_zmax = 10.1f;
  static constexpr float erfc_g[] = {0.28207624f,  0.282579213f,  0.241426989f, 0.210077196f,  -0.0457156859f,
                                     0.307633996f, -0.513932884f, 0.297379643f, -0.0615145676f};
  // Clearing the low 12 significand bits leaves 12, so the square of the high part is exact.
  static constexpr uint_type split_mask = 0xfffff000u;
  static constexpr float inv_sqrt2 = 0.707106769f;
  static constexpr float inv_sqrt_2pi = 0.398942292f;
  // tanh(x) = x P(x^2) / Q(x^2) for |x| <= tanh_xmax (past it tanh rounds to +-1, and so does the
  // rational at the clamp); weighted least squares with Lawson's minimax weights on relative error, 2.5e-8
  // (3e-7 with float coefficients evaluated in float).
  static constexpr float tanh_xmax = 9.2f;
  static constexpr float tanh_p[] = {1.0f, 0.133678824f, 0.00347999693f, 2.03533564e-05f, 1.30021327e-08f};
  static constexpr float tanh_q[] = {1.0f, 0.467011958f, 0.0258176196f, 0.00032601718f, 7.63187586e-07f};
  // Upper normal tail Phi(-z) = e^(-z^2/2) P(z) / Q(z) for z in [0, cdf_zmax] (past it Phi(-z) is 0 in
  // float); fitted as tanh_p, relative error 5.9e-9 (4e-7 with float coefficients evaluated in float).
  static constexpr float cdf_zmax = 14.5f;
  static constexpr float cdf_p[] = {0.5f, 0.438291341f, 0.183232307f, 0.0406322256f, 0.00411614869f};
  static constexpr float cdf_q[] = {1.0f, 1.67446768f, 1.20249176f, 0.46946311f, 0.101856329f, 0.0103175342f};
#if defined(__AVX512F__)
  /// 2^(j/16), j = 0..15, correctly rounded (the table of the AVX-512 exp).
  static __m512 exp2_16ths() noexcept {
    return _mm512_setr_ps(1.0f, 1.0442737824274138f, 1.0905077326652577f, 1.1387886347566916f,
                          1.189207115002721f, 1.241857812073484f, 1.2968395546510096f, 1.3542555469368927f,
                          1.4142135623730951f, 1.4768261459394993f, 1.5422108254079407f, 1.6104903319492543f,
                          1.681792830507429f, 1.7562521603732995f, 1.8340080864093424f, 1.9152065613971474f);
  }
#endif
};

template <>
struct math_consts<double> {
  using uint_type = std::uint64_t;
  static constexpr int mantissa_bits = 52;
  static constexpr double log2e = 1.4426950408889634;
  // ln2_hi holds 42 significant bits, so k * ln2_hi is exact for |k| < 2048.
  static constexpr double ln2_hi = 0.6931471805598903;
  static constexpr double ln2_lo = 5.497923018708371e-14;
  static constexpr double round_shift = 6755399441055744.0;    // 1.5 * 2^52
  static constexpr double exp_bits_shift = 4503599627371519.0; // 2^52 + 1023
  static constexpr uint_type one_bits = 0x3ff0000000000000ull;
  static constexpr uint_type two_p_bits = 0x4330000000000000ull; // 2^52
  static constexpr double exp_min = -746.0;
  static constexpr double exp_max = 710.0;
  // expm1(r) = r + r^2 P(r) on [-ln2/2, ln2/2]; Remez, relative error of P 2.0e-16.
  static constexpr double expm1_p[] = {0.50000000000000010,    0.16666666666666644,    0.041666666666624343,
                                       0.0083333333333561796,  0.0013888888917121461,  0.00019841269784704657,
                                       2.4801521422660970e-05, 2.7557355489059873e-06, 2.7620034118256027e-07,
                                       2.5068166619690447e-08};
  static constexpr double tanh_zmin = -40.0;
  // log1p(f) = f - (f^2/2 - s (f^2/2 + z Q(z))), s = f / (2 + f), z = s^2 in [0, 0.02944];
  // Q(z) = (2 atanh(s) - 2 s) / s^3; Remez, relative error of Q 3.0e-18.
  static constexpr double log_q[] = {0.66666666666666666, 0.40000000000000880, 0.28571428570801929,
                                     0.22222222392057528, 0.18181795606742379, 0.15386241368087369,
                                     0.13268731962839154, 0.13087026073252656};
  static constexpr double sqrt2 = 1.4142135623730951;
  static constexpr double min_normal = std::numeric_limits<double>::min();
  static constexpr double subnormal_scale = 18014398509481984.0; // 2^54
  static constexpr double subnormal_exp = 54.0;
  // erf(x) = x P(x^2) for |x| < 1/2; Remez on x^2 in [0, 1/4], relative error 3.9e-18.
  static constexpr double erf_p[] = {1.1283791670955126,     -0.37612638903183467,    0.11283791670924813,
                                     -0.026866170632715772,  0.0052239773703261267,   -0.00085482975243795989,
                                     0.00012053324313128172, -1.4845583730203070e-05, 1.4723215310356647e-06};
  // erfc(z) = exp(-z^2) t G(t), t = 1 / (1 + c z), z in [1/2, 27.3]; Remez, relative error of G 4.9e-16.
  static constexpr double erfc_c = 0.3;
  static constexpr double erfc_zmax = 27.3;
  static constexpr double erfc_g[] = {
      0.16925687513448945,  0.16925687072541358,   0.16164043838391130,    0.14640508891157391,
      0.12461041308223928,  0.098023885023495699,  0.071522747564465027,   0.037257791698260899,
      0.045761664035635937, -0.065366181333424360, 0.16064319334348152,    -0.29638188421891611,
      0.38960985594231997,  -0.39351075998610388,  0.27167414278934309,    -0.11010971978763420,
      0.018545027162498381, 0.0021010886987822746, -0.00094053763699746416};
  // Clearing the low 27 significand bits leaves 26, so the square of the high part is exact.
  static constexpr uint_type split_mask = 0xfffffffff8000000ull;
  static constexpr double inv_sqrt2 = 0.7071067811865476;
  static constexpr double inv_sqrt_2pi = 0.3989422804014327;
};

/// c[0] + v (c[1] + v (c[2] + ...)) by Horner's rule with fused multiply-adds.
template <class T, class A, std::size_t N>
inline xsimd::batch<T, A> polyval(const xsimd::batch<T, A>& v, const T (&c)[N]) noexcept {
  xsimd::batch<T, A> r(c[N - 1]);
  for (std::size_t i = N - 1; i-- > 0;)
    r = fmadd(r, v, xsimd::batch<T, A>(c[i]));
  return r;
}

/// c - a * b, one fused instruction where the target has FMA (writing fmadd(-a, b, c) costs a
/// separate negation: the compiler may not fold it, -0 and 0 differ).
template <class T, class A>
inline xsimd::batch<T, A> fnmadd(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b,
                                 const xsimd::batch<T, A>& c) noexcept {
#if defined(__AVX512F__)
  if constexpr (sizeof(xsimd::batch<T, A>) == 64) {
    if constexpr (std::is_same_v<T, float>)
      return _mm512_fnmadd_ps(a, b, c);
    else
      return _mm512_fnmadd_pd(a, b, c);
  }
#endif
#if defined(__FMA__)
  if constexpr (sizeof(xsimd::batch<T, A>) == 32) {
    if constexpr (std::is_same_v<T, float>)
      return _mm256_fnmadd_ps(a, b, c);
    else
      return _mm256_fnmadd_pd(a, b, c);
  }
  if constexpr (sizeof(xsimd::batch<T, A>) == 16) {
    if constexpr (std::is_same_v<T, float>)
      return _mm_fnmadd_ps(a, b, c);
    else
      return _mm_fnmadd_pd(a, b, c);
  }
#endif
  return c - a * b;
}

/// The integral value nearest to v (ties to even), for |v| < 2^22 (float) or 2^51 (double).
template <class T, class A>
inline xsimd::batch<T, A> round_small(const xsimd::batch<T, A>& v) noexcept {
  // Cheaper than a round instruction and available on SSE2; needs the default rounding mode.
  const xsimd::batch<T, A> shift(math_consts<T>::round_shift);
  return (v + shift) - shift;
}

/// 2^k for integral k in [-126, 127] (float) or [-1022, 1023] (double), built from the bits.
template <class T, class A>
inline xsimd::batch<T, A> pow2i(const xsimd::batch<T, A>& k) noexcept {
  using C = math_consts<T>;
  using U = xsimd::batch<typename C::uint_type, A>;
  // k + 2^p + bias is exact and holds k + bias in its low mantissa bits; shifting them up by p places
  // them in the exponent field (the 2^p bit and the old exponent are shifted out).
  const U bits = xsimd::bitwise_cast<U>(k + xsimd::batch<T, A>(C::exp_bits_shift));
  return xsimd::bitwise_cast<xsimd::batch<T, A>>(bits << C::mantissa_bits);
}

/// True when A has AVX-512's vscalef.
template <class A>
inline constexpr bool has_scalef =
#if defined(__AVX512F__)
    std::is_base_of_v<xsimd::avx512f, A>;
#else
    false;
#endif

/// v 2^k for integral k in [-150, 128] (float) or [-1076, 1024] (double), v in [1/2, 2]: overflows to
/// +inf and underflows gradually to 0 like a correctly rounded multiply.
template <class T, class A>
inline xsimd::batch<T, A> scale_pow2(const xsimd::batch<T, A>& v, const xsimd::batch<T, A>& k) noexcept {
#if defined(__AVX512F__)
  // One instruction, one rounding: vscalefps/pd computes v 2^floor(k) with IEEE overflow/underflow.
  if constexpr (std::is_base_of_v<xsimd::avx512f, A>) {
    // (The masked forms: the unmasked ones start from _mm512_undefined, which g++ 12 warns about.)
    if constexpr (std::is_same_v<T, float>)
      return _mm512_mask_scalef_ps(v, __mmask16(0xffff), v, k);
    else
      return _mm512_mask_scalef_pd(v, __mmask8(0xff), v, k);
  }
#endif
  using B = xsimd::batch<T, A>;
  // 2^k = 2^k1 2^k2 with both halves normal numbers: results below the smallest normal then underflow
  // gradually (to 0 past it), and k up to 128 / 1024 overflows to +inf, without a special case.
  const B k1 = round_small(k * B(T(0.5)));
  const B k2 = k - k1;
  return (v * pow2i(k1)) * pow2i(k2);
}

/// a / d for d in [1, 1024] (or NaN), the denominators of tanh, sigmoid, erfc and the normal tail. On AVX-512
/// float a 14-bit reciprocal r0 refined by one Newton step in its residual form, r = r0 + r0 (1 - d r0) (two
/// fused multiply-adds, relative error below 2^-28 + 2^-25), then q = a r: within 1.1 ulp of a / d,
/// four instructions instead of vdivps's low throughput (three when a is 1). Elsewhere the division.
template <class T, class A>
inline xsimd::batch<T, A> div_bounded(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& d) noexcept {
#if defined(__AVX512F__)
  if constexpr (has_scalef<A> && std::is_same_v<T, float>) {
    using B = xsimd::batch<T, A>;
    const B r0 = _mm512_maskz_rcp14_ps(__mmask16(0xffff), d);
    const B r = fmadd(r0, fnmadd(d, r0, B(1.0f)), r0);
    return a * r;
  }
#endif
  return a / d;
}

/// 1 / d for d in [1, 1024] (or NaN): div_bounded(1, d) without the multiply by 1.
template <class T, class A>
inline xsimd::batch<T, A> recip_bounded(const xsimd::batch<T, A>& d) noexcept {
#if defined(__AVX512F__)
  if constexpr (has_scalef<A> && std::is_same_v<T, float>) {
    using B = xsimd::batch<T, A>;
    const B r0 = _mm512_maskz_rcp14_ps(__mmask16(0xffff), d);
    return fmadd(r0, fnmadd(d, r0, B(1.0f)), r0);
  }
#endif
  return xsimd::batch<T, A>(T(1)) / d;
}

/// max(x, lo) with NaN kept: one vmaxps on x86 (which returns its second operand when either is NaN),
/// a compare and select elsewhere. (AVX-512: the masked form, see scale_pow2.)
template <class T, class A>
inline xsimd::batch<T, A> max_keep_nan(const xsimd::batch<T, A>& x, T lo) noexcept {
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, A>) {
    if constexpr (std::is_same_v<T, float>)
      return _mm512_mask_max_ps(x, __mmask16(0xffff), _mm512_set1_ps(lo), x);
    else
      return _mm512_mask_max_pd(x, __mmask8(0xff), _mm512_set1_pd(lo), x);
  }
#endif
#if defined(__AVX__)
  if constexpr (std::is_base_of_v<xsimd::avx, A> && !std::is_base_of_v<xsimd::avx512f, A>) {
    if constexpr (std::is_same_v<T, float>)
      return _mm256_max_ps(_mm256_set1_ps(lo), x);
    else
      return _mm256_max_pd(_mm256_set1_pd(lo), x);
  }
#endif
  const xsimd::batch<T, A> l(lo);
  return xsimd::select(x < l, l, x);
}

/// min(x, hi) with NaN kept (see max_keep_nan).
template <class T, class A>
inline xsimd::batch<T, A> min_keep_nan(const xsimd::batch<T, A>& x, T hi) noexcept {
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, A>) {
    if constexpr (std::is_same_v<T, float>)
      return _mm512_mask_min_ps(x, __mmask16(0xffff), _mm512_set1_ps(hi), x);
    else
      return _mm512_mask_min_pd(x, __mmask8(0xff), _mm512_set1_pd(hi), x);
  }
#endif
#if defined(__AVX__)
  if constexpr (std::is_base_of_v<xsimd::avx, A> && !std::is_base_of_v<xsimd::avx512f, A>) {
    if constexpr (std::is_same_v<T, float>)
      return _mm256_min_ps(_mm256_set1_ps(hi), x);
    else
      return _mm256_min_pd(_mm256_set1_pd(hi), x);
  }
#endif
  const xsimd::batch<T, A> h(hi);
  return xsimd::select(x > h, h, x);
}

/// x with NaN kept and other values clamped to [lo, hi] (selects, because min/max drop NaN on x86).
template <class T, class A>
inline xsimd::batch<T, A> clamp_keep_nan(const xsimd::batch<T, A>& x, T lo, T hi) noexcept {
  return min_keep_nan(max_keep_nan(x, lo), hi);
}

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

/// x^2 = hi + lo, hi exact square of the high half of x, lo the (small) rest; for finite x.
template <class T, class A>
inline void square_split(const xsimd::batch<T, A>& x, xsimd::batch<T, A>& hi,
                         xsimd::batch<T, A>& lo) noexcept {
  using B = xsimd::batch<T, A>;
  using U = xsimd::batch<typename math_consts<T>::uint_type, A>;
  // Dekker's split by masking: no FMA needed, so every target gets the same, exact, hi.
  const B xh = xsimd::bitwise_cast<B>(xsimd::bitwise_cast<U>(x) & U(math_consts<T>::split_mask));
  hi = xh * xh;
  lo = (x - xh) * (x + xh); // x^2 - xh^2, exactly up to one rounding of a number 2^-11 times smaller
}

/// erfc(a) for a in [1/2, erfc_zmax], given a^2 = qhi + qlo: exp(-a^2) t G(t), t = 1 / (1 + c a).
template <class T, class A>
inline xsimd::batch<T, A> erfc_tail(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& qhi,
                                    const xsimd::batch<T, A>& qlo) noexcept {
  using B = xsimd::batch<T, A>;
  using C = math_consts<T>;
  const B t = recip_bounded(fmadd(a, B(C::erfc_c), B(T(1))));
  // exp of the two-part -a^2: rounding a^2 to one number would cost a relative error of a^2 ulp.
  return exp_impl<true, T, A, true>(-qhi, -qlo) * (t * polyval(t, C::erfc_g));
}

/// erfc of |x| <= erfc_zmax given x^2 = qhi + qlo, for the tail branch; large |x| clamps.
template <class T, class A>
inline xsimd::batch<T, A> erfc_tail_of(const xsimd::batch<T, A>& ax) noexcept {
  using B = xsimd::batch<T, A>;
  const B a = xsimd::select(ax > B(math_consts<T>::erfc_zmax), B(math_consts<T>::erfc_zmax), ax);
  B qhi, qlo;
  square_split(a, qhi, qlo);
  return erfc_tail(a, qhi, qlo);
}

/// Float: Phi(-|x|) = e^(-z^2/2) P(z) / Q(z), z = min(|x|, cdf_zmax), returned with z; the density
/// e^(-z^2/2) / sqrt(2 pi) goes to pdf when not null. About half the instructions of the erfc form.
template <class A>
inline xsimd::batch<float, A> normal_lower_tail(const xsimd::batch<float, A>& x, xsimd::batch<float, A>& z,
                                                xsimd::batch<float, A>* pdf) noexcept {
  using B = xsimd::batch<float, A>;
  using C = math_consts<float>;
  z = min_keep_nan(xsimd::abs(x), C::cdf_zmax);
  // z^2 / 2 = hi + lo in two parts: rounding it to one number would cost a relative error of z^2/2 ulp.
  B hi, lo;
#if defined(__FMA__) || defined(__AVX512F__)
  const B h = z * B(0.5f); // exact
  hi = h * z;
  lo = fmadd(h, z, -hi); // the exact rounding error of hi
#else
  square_split(z, hi, lo);
  hi = hi * B(0.5f);
  lo = lo * B(0.5f);
#endif
  B e;
#if defined(__AVX512F__)
  if constexpr (has_scalef<A>) {
    // e^-(hi + lo) by the table exp of exp_impl with the signs folded into the constants, no clamp
    // (hi <= cdf_zmax^2 / 2 < 106, where vscalef underflows to 0) and k from hi alone (|lo| <= 2^-24 hi):
    // 12 instructions against 15. Here nr = -r and npm1 = -(e^r - 1).
    const B ks = fmadd(hi, B(-16.0f * C::log2e), B(C::round_shift));
    const B k16 = ks - B(C::round_shift);
    B nr = fmadd(k16, B(C::ln2_hi / 16.0f), hi);
    nr = fmadd(k16, B(C::ln2_lo / 16.0f), nr) + lo;
    const B npm1 = fnmadd(nr * nr, fnmadd(nr, B(1.0f / 6.0f), B(0.5f)), nr);
    const __m512 table = C::exp2_16ths();
    const B tj = _mm512_mask_permutexvar_ps(table, __mmask16(0xffff), _mm512_castps_si512(ks), table);
    e = scale_pow2(fnmadd(tj, npm1, tj), k16 * B(0.0625f));
  } else
#endif
  {
    e = exp_impl<true, float, A, true>(-hi, -lo);
  }
  if (pdf)
    *pdf = e * B(C::inv_sqrt_2pi);
  return e * div_bounded(polyval(z, C::cdf_p), polyval(z, C::cdf_q));
}

} // namespace grad::detail

namespace grad::kernels::math {

/// e^x, elementwise (see the file comment for accuracy and special values).
template <class T, class A>
inline xsimd::batch<T, A> exp(const xsimd::batch<T, A>& x) noexcept {
  return detail::exp_impl<false>(x, x);
}

/// Natural logarithm, elementwise; subnormal inputs exact, log(0) = -inf, log(x < 0) = NaN.
template <class T, class A>
inline xsimd::batch<T, A> log(const xsimd::batch<T, A>& x) noexcept {
  using B = xsimd::batch<T, A>;
  using C = detail::math_consts<T>;
  using UT = typename C::uint_type;
  using U = xsimd::batch<UT, A>;
  constexpr int p = C::mantissa_bits;
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

/// Hyperbolic tangent, elementwise; tanh(x) = -em / (2 + em) with em = e^(-2|x|) - 1, sign of x.
template <class T, class A>
inline xsimd::batch<T, A> tanh(const xsimd::batch<T, A>& x) noexcept {
  using B = xsimd::batch<T, A>;
  if constexpr (std::is_same_v<T, float>) {
    // Float: an odd rational on the clamped argument, 16 instructions on AVX-512 against 23 for the
    // expm1 form below; tiny |x| give x (P(0) = Q(0) = 1), -0 gives -0, the clamp gives exactly +-1.
    using C = detail::math_consts<T>;
    const B xc = detail::clamp_keep_nan(x, -C::tanh_xmax, C::tanh_xmax);
    const B s = xc * xc;
    return detail::div_bounded(xc * detail::polyval(s, C::tanh_p), detail::polyval(s, C::tanh_q));
  }
  const B ax = xsimd::abs(x);
  // One formula for all x: expm1 keeps tiny |x| accurate (no 1 - e^-2x cancellation) and saturates
  // to -1 for large |x|, so neither a small-argument polynomial nor a branch is needed.
  const B em = detail::expm1_nonpositive(B(T(-2)) * ax);
  const B t = detail::div_bounded(xsimd::abs(em), em + B(T(2))); // abs: em may be +0; +0, not -0
  return t | xsimd::bitofsign(x);
}

/// Logistic sigmoid 1 / (1 + e^-x), elementwise; e^-|x| keeps both tails accurate (no overflow).
template <class T, class A>
inline xsimd::batch<T, A> sigmoid(const xsimd::batch<T, A>& x) noexcept {
  using B = xsimd::batch<T, A>;
  const B e = detail::exp_impl<false, T, A, true>(x | B(T(-0.0)), x); // -|x|: one OR
  const B r = detail::recip_bounded(B(T(1)) + e);
  return xsimd::select(x >= B(T(0)), r, e * r); // sigmoid(-|x|) = e^-|x| / (1 + e^-|x|)
}

/// Complementary error function 1 - erf(x), elementwise, accurate relative to its value in the tail.
template <class T, class A>
inline xsimd::batch<T, A> erfc(const xsimd::batch<T, A>& x) noexcept {
  using B = xsimd::batch<T, A>;
  using C = detail::math_consts<T>;
  const B ax = xsimd::abs(x);
  const B tail = detail::erfc_tail_of(ax);
  const B small = B(T(1)) - x * detail::polyval(x * x, C::erf_p);
  const B big = xsimd::select(x < B(T(0)), B(T(2)) - tail, tail);
  return xsimd::select(ax < B(T(0.5)), small, big);
}

/// Error function, elementwise.
template <class T, class A>
inline xsimd::batch<T, A> erf(const xsimd::batch<T, A>& x) noexcept {
  using B = xsimd::batch<T, A>;
  using C = detail::math_consts<T>;
  const B ax = xsimd::abs(x);
  const B small = x * detail::polyval(x * x, C::erf_p);
  if (xsimd::all(ax < B(T(0.5))))
    return small;
  const B big = (B(T(1)) - detail::erfc_tail_of(ax)) | xsimd::bitofsign(x);
  return xsimd::select(ax < B(T(0.5)), small, big);
}

/// Standard normal CDF Phi(x) = erfc(-x / sqrt 2) / 2, elementwise, accurate in the lower tail; pdf
/// receives the density e^(-x^2/2) / sqrt(2 pi) when not null (it shares the exponential).
template <class T, class A>
inline xsimd::batch<T, A> normal_cdf(const xsimd::batch<T, A>& x,
                                     xsimd::batch<T, A>* pdf = nullptr) noexcept {
  using B = xsimd::batch<T, A>;
  using C = detail::math_consts<T>;
  if constexpr (std::is_same_v<T, float>) {
    B z;
    const B q = detail::normal_lower_tail(x, z, pdf); // Phi(-|x|), at most 1/2: 1 - q does not cancel
    return xsimd::select(x < B(0.0f), q, B(1.0f) - q);
  }
  const B u = x * B(C::inv_sqrt2);
  const B au = xsimd::abs(u);
  // x^2 / 2 split from x itself (halving is exact): the rounding of u = x / sqrt 2 then only enters
  // the slowly varying factor t G(t), not the exponent, whose error would be multiplied by x^2.
  const B lim(C::erfc_zmax * C::sqrt2);
  const B ax = xsimd::select(xsimd::abs(x) > lim, lim, xsimd::abs(x));
  B qhi, qlo;
  detail::square_split(ax, qhi, qlo);
  qhi = qhi * B(T(0.5));
  qlo = qlo * B(T(0.5));
  const B e = detail::exp_impl<true, T, A, true>(-qhi, -qlo);
  if (pdf)
    *pdf = e * B(C::inv_sqrt_2pi);
  const B t = detail::recip_bounded(detail::fmadd(ax * B(C::inv_sqrt2), B(C::erfc_c), B(T(1))));
  const B half_tail = B(T(0.5)) * e * (t * detail::polyval(t, C::erfc_g)); // erfc(|u|) / 2
  const B small = detail::fmadd(u, B(T(0.5)) * detail::polyval(u * u, C::erf_p), B(T(0.5)));
  const B big = xsimd::select(x < B(T(0)), half_tail, B(T(1)) - half_tail);
  return xsimd::select(au < B(T(0.5)), small, big);
}

} // namespace grad::kernels::math
