#pragma once
/// @file kernels/math_base.hpp
/// Building blocks of the vectorized math functions (kernels/math.hpp): per-precision constants and
/// minimax coefficients, Horner evaluation, rounding, powers of two, bounded reciprocals and NaN-keeping
/// clamps. Every function is a template on the xsimd architecture A (DESIGN.md section 5).

#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "grad/detail/xsimd.hpp"

/// `inline`, and always inlined (g++, clang): the vectorized math functions that the elementwise loops call.
/// In a large translation unit (the elementwise benchmark, a program that includes grad.hpp) g++ 12 runs
/// out of inlining budget and calls them out of line from some of the six call sites of ew_serial (found
/// in bench_elementwise: 6 calls of log, 5 of tanh, 3 of sigmoid, 2 of gelu_tanh_forward), spilling and
/// reloading every constant around each call. GRAD_LAMBDA_INLINE does the same for a lambda (placed after
/// its parameters) that calls them: forcing them into the lambda alone makes the lambda too big to be
/// inlined into the loop.
#if defined(__GNUC__)
#define GRAD_MATH_INLINE [[gnu::always_inline]] inline
#define GRAD_LAMBDA_INLINE __attribute__((always_inline))
#else
#define GRAD_MATH_INLINE inline
#define GRAD_LAMBDA_INLINE
#endif

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
  // AVX-512 (vgetmant's [3/4, 3/2)): log1p(f) = f + f^2 Q(f) on [-1/4, 1/2]; Remez on the relative error
  // f^2 (Q - q) / log1p(f) that Q makes in the result, 4.8e-9 (8.4e-9 with the float coefficients).
  static constexpr float log_q34[] = {-0.5f,         0.333334535f,  -0.250000536f,
                                      0.199906066f,  -0.166477665f, 0.144820616f,
                                      -0.131622314f, 0.104483314f,  -0.0449096151f};
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
  // (normal_lower_tail) 2 ln 2 = ln2x2_hi + ln2x2_lo with ln2x2_hi holding 12 significant bits, so (k/16)
  // ln2x2_hi is exact for |k| < 4096.
  static constexpr float ln2x2_hi = 1.38623046875f;
  static constexpr float ln2x2_lo = 6.38923699e-05f;
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

} // namespace grad::detail
