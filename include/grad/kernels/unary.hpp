#pragma once
/// @file kernels/unary.hpp
/// Unary elementwise kernels (exp, log, sqrt, tanh, sigmoid, relu, GELU, neg, abs, square) and their
/// backward kernels on raw pointers. Conventions as in kernels/binary.hpp: y may alias x; backward
/// kernels accumulate, dx += dy * f'(x), taking the saved output y where that is cheaper.
/// Accuracy of the transcendental ones: see kernels/math.hpp.

#include <cstddef>
#include <type_traits>

#include "grad/kernels/binary.hpp"
#include "grad/kernels/math.hpp"

namespace grad::detail {

/// sqrt(2 / pi) and 0.044715: the tanh approximation of GELU (Hendrycks and Gimpel, 2016, eq. 3).
template <class T>
inline constexpr T gelu_k0 = T(0.79788456080286535588);
template <class T>
inline constexpr T gelu_k1 = T(0.044715);

/// GELU (tanh form) 0.5 x (1 + tanh(u)) = x sigmoid(2u), u = k0 (x + k1 x^3); with e = exp(-|2u|),
/// s = sigmoid(2u) and s (1 - s) are returned through the out-parameters for the backward.
template <class T, class A>
inline xsimd::batch<T, A> gelu_tanh_parts(const xsimd::batch<T, A>& x, xsimd::batch<T, A>& s,
                                          xsimd::batch<T, A>& s1ms, xsimd::batch<T, A>& du) noexcept {
  using B = xsimd::batch<T, A>;
  const B x2 = x * x;
  const B u2 = B(T(2) * gelu_k0<T>) * fmadd(B(gelu_k1<T>) * x2, x, x); // 2u
  // 1 + tanh(u) = 2 sigmoid(2u): no cancellation for negative x, unlike the textbook form.
  const B e = exp_impl<false, T, A, true>(u2 | B(T(-0.0)), u2); // -|2u|: one OR
  const B r = recip_bounded(B(T(1)) + e);
  s = xsimd::select(u2 >= B(T(0)), r, e * r);
  s1ms = e * r * r; // s (1 - s)
  // d(2u)/dx; x^2 capped where s (1 - s) is 0 anyway, so that huge |x| gives 0 * finite, not 0 * inf.
  const B x2c = xsimd::select(x2 > B(T(1e6)), B(T(1e6)), x2);
  du = B(T(2) * gelu_k0<T>) * fmadd(B(T(3) * gelu_k1<T>), x2c, B(T(1)));
  return x * s;
}

/// GELU (tanh form) alone, for the forward kernel: x sigmoid(2u) as in gelu_tanh_parts, with
/// 2u = x (2 k0 + 2 k0 k1 x^2) (three instructions) and nothing the backward needs.
template <class T, class A>
GRAD_MATH_INLINE xsimd::batch<T, A> gelu_tanh_forward(const xsimd::batch<T, A>& x) noexcept {
  using B = xsimd::batch<T, A>;
#if defined(__AVX512F__) && defined(__AVX512DQ__)
  if constexpr (has_scalef<A> && std::is_same_v<T, float>) {
    // AVX-512 float, 20 instructions against 24 for the general form below (measured side by side:
    // 1.23-1.28x its speed on 1e5 floats in cache, 1.07-1.11x on 1e7, where the general form had
    // reached only 0.74-0.9x the copy bandwidth on one thread); max relative error 3.4e-7 for
    // |x| < 1 and 2.3e-7 (1 + |2u|) elsewhere, against 3.2e-7 and 1.8e-7 (every 7th float in
    // [-12, 12], normal results, long double reference):
    // - -min(|2u|, 104) by one vrangeps (min of magnitudes, sign forced negative) instead of an OR
    //   and a clamp; e^-104 is below half the smallest subnormal, so the clamp changes no result;
    // - e^z = 2^k 2^(j/32) e^r, |r| <= ln2/64, with a 32-entry table in two registers (one vpermt2ps)
    //   and e^r - 1 = r (a + r/2): relative error 5.3e-8 (a near-minimax linear term, a - 1 = h^2/8
    //   for h = ln2/64, in place of r^3/6 = 2.1e-7 for a = 1), one instruction less than the cubic
    //   of exp_impl's 16-entry table;
    // - r = z - k ln2/32 with ln2/32 rounded to one float (no Cody-Waite second step): the constant's
    //   error (6e-11) times |k| moves the result by at most 2.7e-9 |z| relative, far below the |2u| ulp
    //   that rounding u itself costs;
    // - x sigmoid(2u) = x e / (1 + e) for x < 0 (sign of 2u = sign of x), x / (1 + e) otherwise: a
    //   masked multiply instead of a multiply, compare and blend.
    const B u2 = x * fmadd(x * x, B(2.0f * gelu_k0<float> * gelu_k1<float>), B(2.0f * gelu_k0<float>));
    const B z = _mm512_mask_range_ps(u2, __mmask16(0xffff), u2, B(104.0f), 0x0e); // -min(|2u|, 104)
    using C = math_consts<float>;
    const B ks = fmadd(z, B(32.0f * C::log2e), B(C::round_shift));
    const B k32 = ks - B(C::round_shift); // round(32 z log2 e); the low 5 bits of ks hold k32 mod 32
    const B r = fmadd(k32, B(-0.0216608494520187378f), z);       // ln2 / 32
    const B pm1 = r * fmadd(r, B(0.5f), B(1.0000146627426147f)); // e^r - 1
    const __m512 lo =
        _mm512_setr_ps(1.0f, 1.0218971967697144f, 1.0442737340927124f, 1.0671404600143433f,
                       1.0905077457427979f, 1.114386796951294f, 1.1387885808944702f, 1.1637248992919922f,
                       1.1892070770263672f, 1.215247392654419f, 1.2418577671051025f, 1.2690509557724f,
                       1.2968395948410034f, 1.3252366781234741f, 1.3542555570602417f, 1.3839099407196045f);
    const __m512 hi =
        _mm512_setr_ps(1.4142135381698608f, 1.4451807737350464f, 1.4768261909484863f, 1.5091644525527954f,
                       1.5422108173370361f, 1.5759809017181396f, 1.610490322113037f, 1.6457555294036865f,
                       1.6817928552627563f, 1.7186193466186523f, 1.7562521696090698f, 1.7947090864181519f,
                       1.8340080976486206f, 1.8741676807403564f, 1.9152065515518188f,
                       1.9571441411972046f); // 2^(j/32), j = 0..31, correctly rounded
    const B tj = _mm512_mask_permutex2var_ps(lo, __mmask16(0xffff), _mm512_castps_si512(ks), hi);
    const B e = scale_pow2(fmadd(tj, pm1, tj), k32 * B(0.03125f)); // vscalef floors k32 / 32 itself
    const B m = _mm512_mask_mul_ps(x, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ), x, e);
    return m * recip_bounded(B(1.0f) + e);
  }
#endif
  const B u2 = x * fmadd(x * x, B(T(2) * gelu_k0<T> * gelu_k1<T>), B(T(2) * gelu_k0<T>)); // 2u
  const B e = exp_impl<false, T, A, true>(u2 | B(T(-0.0)), u2); // e^-|2u|, -|2u| by one OR
  const B r = recip_bounded(B(T(1)) + e);
  return x * xsimd::select(u2 >= B(T(0)), r, e * r);
}

} // namespace grad::detail

namespace grad::kernels {

/// y = e^x.
template <class T, class A = xsimd::default_arch>
void exp(const T* x, T* y, std::size_t n) {
  detail::ew<A>(
      n, detail::ew_parallel_costly, [](const auto& v) GRAD_LAMBDA_INLINE { return math::exp(v); }, y, x);
}

/// y = ln x.
template <class T, class A = xsimd::default_arch>
void log(const T* x, T* y, std::size_t n) {
  detail::ew<A>(
      n, detail::ew_parallel_costly, [](const auto& v) GRAD_LAMBDA_INLINE { return math::log(v); }, y, x);
}

/// y = sqrt(x) (correctly rounded: the hardware instruction).
template <class T, class A = xsimd::default_arch>
void sqrt(const T* x, T* y, std::size_t n) {
  detail::ew<A>(
      n, detail::ew_parallel_cheap, [](const auto& v) { return xsimd::sqrt(v); }, y, x);
}

/// y = tanh x.
template <class T, class A = xsimd::default_arch>
void tanh(const T* x, T* y, std::size_t n) {
  detail::ew<A>(
      n, detail::ew_parallel_costly, [](const auto& v) GRAD_LAMBDA_INLINE { return math::tanh(v); }, y, x);
}

/// y = 1 / (1 + e^-x).
template <class T, class A = xsimd::default_arch>
void sigmoid(const T* x, T* y, std::size_t n) {
  detail::ew<A>(
      n, detail::ew_parallel_costly, [](const auto& v) GRAD_LAMBDA_INLINE { return math::sigmoid(v); }, y, x);
}

/// y = erf x.
template <class T, class A = xsimd::default_arch>
void erf(const T* x, T* y, std::size_t n) {
  detail::ew<A>(
      n, detail::ew_parallel_costly, [](const auto& v) { return math::erf(v); }, y, x);
}

/// y = max(x, 0); relu(NaN) = NaN.
template <class T, class A = xsimd::default_arch>
void relu(const T* x, T* y, std::size_t n) {
  using B = xsimd::batch<T, A>;
  detail::ew<A>(
      n, detail::ew_parallel_cheap, [](const B& v) { return xsimd::select(v < B(T(0)), B(T(0)), v); }, y, x);
}

/// y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): GELU, tanh approximation (GPT-2's).
template <class T, class A = xsimd::default_arch>
void gelu_tanh(const T* x, T* y, std::size_t n) {
  detail::ew<A>(
      n, detail::ew_parallel_costly,
      [](const auto& v) GRAD_LAMBDA_INLINE { return detail::gelu_tanh_forward(v); }, y, x);
}

/// y = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)): exact GELU, accurate also in the far negative tail.
template <class T, class A = xsimd::default_arch>
void gelu_erf(const T* x, T* y, std::size_t n) {
  detail::ew<A>(
      n, detail::ew_parallel_costly,
      [](const auto& v) GRAD_LAMBDA_INLINE {
        if constexpr (std::is_same_v<T, float>) {
          // x Phi(x) = max(x, 0) - |x| Phi(-|x|) (z = |x| clamped where Phi(-|x|) is 0 already)
          using B = std::decay_t<decltype(v)>;
          B z;
          const B q = detail::normal_lower_tail(v, z, static_cast<B*>(nullptr));
          return detail::fnmadd(z, q, detail::max_keep_nan(v, 0.0f));
        } else {
          // x Phi(x) is -inf * 0 at -inf: give its limit 0, as the float form does
          using B = std::decay_t<decltype(v)>;
          return xsimd::select(v == B(-std::numeric_limits<T>::infinity()), B(T(0)), v * math::normal_cdf(v));
        }
      },
      y, x);
}

/// y = -x.
template <class T, class A = xsimd::default_arch>
void neg(const T* x, T* y, std::size_t n) {
  detail::ew<A>(
      n, detail::ew_parallel_cheap, [](const auto& v) { return -v; }, y, x);
}

/// y = |x|.
template <class T, class A = xsimd::default_arch>
void abs(const T* x, T* y, std::size_t n) {
  detail::ew<A>(
      n, detail::ew_parallel_cheap, [](const auto& v) { return xsimd::abs(v); }, y, x);
}

/// y = x^2.
template <class T, class A = xsimd::default_arch>
void square(const T* x, T* y, std::size_t n) {
  detail::ew<A>(
      n, detail::ew_parallel_cheap, [](const auto& v) { return v * v; }, y, x);
}

/// dx += dy * y, from the saved output y = e^x.
template <class T, class A = xsimd::default_arch>
void exp_backward(const T* y, const T* dy, T* dx, std::size_t n) {
  // d(e^x)/dx = e^x = y
  detail::ew<A>(
      n, detail::ew_parallel_cheap,
      [](const auto& d, const auto& vy, const auto& g) { return detail::fmadd(g, vy, d); }, dx, dx, y, dy);
}

/// dx += dy / x.
template <class T, class A = xsimd::default_arch>
void log_backward(const T* x, const T* dy, T* dx, std::size_t n) {
  // d(ln x)/dx = 1/x
  detail::ew<A>(
      n, detail::ew_parallel_cheap, [](const auto& d, const auto& v, const auto& g) { return d + g / v; }, dx,
      dx, x, dy);
}

/// dx += dy / (2 y), from the saved output y = sqrt(x).
template <class T, class A = xsimd::default_arch>
void sqrt_backward(const T* y, const T* dy, T* dx, std::size_t n) {
  using B = xsimd::batch<T, A>;
  // d(sqrt x)/dx = 1 / (2 sqrt x) = 0.5 / y
  detail::ew<A>(
      n, detail::ew_parallel_cheap,
      [](const B& d, const B& vy, const B& g) { return d + B(T(0.5)) * g / vy; }, dx, dx, y, dy);
}

/// dx += dy (1 - y^2), from the saved output y = tanh x.
template <class T, class A = xsimd::default_arch>
void tanh_backward(const T* y, const T* dy, T* dx, std::size_t n) {
  using B = xsimd::batch<T, A>;
  // d(tanh x)/dx = 1 - tanh^2 x
  detail::ew<A>(
      n, detail::ew_parallel_cheap,
      [](const B& d, const B& vy, const B& g) { return detail::fmadd(g, B(T(1)) - vy * vy, d); }, dx, dx, y,
      dy);
}

/// dx += dy y (1 - y), from the saved output y = sigmoid(x).
template <class T, class A = xsimd::default_arch>
void sigmoid_backward(const T* y, const T* dy, T* dx, std::size_t n) {
  using B = xsimd::batch<T, A>;
  // d(sigmoid x)/dx = sigmoid(x) (1 - sigmoid(x))
  detail::ew<A>(
      n, detail::ew_parallel_cheap,
      [](const B& d, const B& vy, const B& g) { return detail::fmadd(g * vy, B(T(1)) - vy, d); }, dx, dx, y,
      dy);
}

/// dx += dy where x > 0 (the gradient at 0 is 0, as PyTorch).
template <class T, class A = xsimd::default_arch>
void relu_backward(const T* x, const T* dy, T* dx, std::size_t n) {
  using B = xsimd::batch<T, A>;
  // d(relu x)/dx = [x > 0]
  detail::ew<A>(
      n, detail::ew_parallel_cheap,
      [](const B& d, const B& v, const B& g) { return d + xsimd::select(v > B(T(0)), g, B(T(0))); }, dx, dx,
      x, dy);
}

/// dx += dy * gelu_tanh'(x).
template <class T, class A = xsimd::default_arch>
void gelu_tanh_backward(const T* x, const T* dy, T* dx, std::size_t n) {
  using B = xsimd::batch<T, A>;
  detail::ew<A>(
      n, detail::ew_parallel_costly,
      [](const B& d, const B& v, const B& g) {
        B s, s1ms, du;
        detail::gelu_tanh_parts(v, s, s1ms, du);
        // d(x s(2u))/dx = s + x s (1 - s) d(2u)/dx
        return detail::fmadd(g, detail::fmadd(v * s1ms, du, s), d);
      },
      dx, dx, x, dy);
}

/// dx += dy * gelu_erf'(x) = dy (Phi(x) + x phi(x)).
template <class T, class A = xsimd::default_arch>
void gelu_erf_backward(const T* x, const T* dy, T* dx, std::size_t n) {
  using B = xsimd::batch<T, A>;
  detail::ew<A>(
      n, detail::ew_parallel_costly,
      [](const B& d, const B& v, const B& g) {
        B pdf;
        const B cdf = math::normal_cdf(v, &pdf);
        // d(x Phi(x))/dx = Phi(x) + x phi(x)
        return detail::fmadd(g, detail::fmadd(v, pdf, cdf), d);
      },
      dx, dx, x, dy);
}

/// dx -= dy.
template <class T, class A = xsimd::default_arch>
void neg_backward(const T* dy, T* dx, std::size_t n) {
  acc_neg<T, A>(dy, dx, n); // d(-x)/dx = -1
}

/// dx += dy sign(x), sign(0) = 0 (as PyTorch).
template <class T, class A = xsimd::default_arch>
void abs_backward(const T* x, const T* dy, T* dx, std::size_t n) {
  using B = xsimd::batch<T, A>;
  // d|x|/dx = sign(x)
  detail::ew<A>(
      n, detail::ew_parallel_cheap,
      [](const B& d, const B& v, const B& g) {
        const B zero(T(0));
        return d + xsimd::select(v > zero, g, xsimd::select(v < zero, -g, zero));
      },
      dx, dx, x, dy);
}

/// dx += 2 x dy.
template <class T, class A = xsimd::default_arch>
void square_backward(const T* x, const T* dy, T* dx, std::size_t n) {
  using B = xsimd::batch<T, A>;
  // d(x^2)/dx = 2x
  detail::ew<A>(
      n, detail::ew_parallel_cheap,
      [](const B& d, const B& v, const B& g) { return detail::fmadd(B(T(2)) * v, g, d); }, dx, dx, x, dy);
}

} // namespace grad::kernels
