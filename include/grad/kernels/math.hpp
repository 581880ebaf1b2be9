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
/// AVX-512 table, log on every positive float, subnormals included; 0.9 ulp for log with AVX-512, whose
/// mantissa range [3/4, 3/2) trades a little cancellation for fewer instructions), 2 ulp (sigmoid), 3.2 ulp
/// (tanh, a rational in float), 3.3 ulp (erf, erfc), 4.1 ulp (normal_cdf, a rational tail in float); for
/// double 0.75, 1.6 and 5.5 ulp (about 1.2e-15). (ulp here: FLT_EPSILON relative; GRAD_TEST_VERBOSE=1
/// test_kernels_math prints the measured values.) Special values: exp(-inf) = 0, exp(+inf) = +inf, results
/// below the smallest normal are gradual (subnormal), then 0; log(0) = -inf, log(x < 0) = NaN, log(+inf) =
/// +inf, subnormal inputs are handled exactly; tanh(+-inf) = +-1, tanh(-0) = -0, sigmoid(-inf) = 0; NaN in
/// gives NaN out everywhere.
///
/// Every function is a template on the xsimd architecture A (part of the mangled name), so two
/// translation units built with different -march never share a definition (DESIGN.md section 5).
///
/// The functions live in four headers, all included here: math_base.hpp (constants, helpers),
/// math_exp.hpp (exp, log), math_tanh.hpp (tanh, sigmoid), math_erf.hpp (erf, erfc, normal_cdf).

#include "grad/kernels/math_base.hpp"
#include "grad/kernels/math_erf.hpp"
#include "grad/kernels/math_exp.hpp"
#include "grad/kernels/math_tanh.hpp"
