// Accuracy of the vectorized math functions of kernels/math.hpp against the C library in a wider
// type: dense sweeps over the useful ranges, every binade of log, and the special values.
// Set GRAD_TEST_VERBOSE=1 to print the measured maximum errors.

#include <doctest/doctest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "grad/kernels/math.hpp"

namespace {

namespace gm = grad::kernels::math;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif
#else
constexpr bool sanitized = false;
#endif

template <class T>
using wide = std::conditional_t<std::is_same_v<T, float>, double, long double>;

/// Relative error bound a function must meet, per precision.
template <class T>
constexpr double bound = std::is_same_v<T, float> ? 1e-6 : 1e-14;

/// Points in a sweep: a few million for float, fewer for double (the long double oracle is slow), and
/// a quarter under the sanitizers.
template <class T>
std::size_t sweep_points() {
  const std::size_t n = std::is_same_v<T, float> ? (std::size_t(1) << 22) : (std::size_t(1) << 19);
  return sanitized ? n / 4 : n;
}

struct result {
  double max_rel = 0;
  double at = 0;
};

/// Applies f to x batch by batch (tail padded with the last element) and returns f(x).
template <class T, class F>
std::vector<T> apply(const std::vector<T>& x, F f) {
  using B = xsimd::batch<T>;
  std::vector<T> y(x.size());
  std::size_t i = 0;
  for (; i + B::size <= x.size(); i += B::size)
    f(B::load_unaligned(x.data() + i)).store_unaligned(y.data() + i);
  if (i < x.size()) {
    alignas(64) T in[B::size], out[B::size];
    for (std::size_t k = 0; k < B::size; ++k)
      in[k] = x[std::min(i + k, x.size() - 1)];
    f(B::load_aligned(in)).store_aligned(out);
    for (std::size_t k = 0; i + k < x.size(); ++k)
      y[i + k] = out[k];
  }
  return y;
}

/// Max relative error of f against the oracle g over x; values whose exact result is not a normal
/// number of T are skipped (their relative precision is lower by definition).
template <class T, class F, class G>
result max_rel_error(const std::vector<T>& x, F f, G g) {
  const std::vector<T> y = apply(x, f);
  result r;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const wide<T> ref = g(wide<T>(x[i]));
    if (!(std::abs(ref) >= wide<T>(std::numeric_limits<T>::min())) || !std::isfinite(double(ref)))
      continue;
    const double e = double(std::abs((wide<T>(y[i]) - ref) / ref));
    if (!(e <= r.max_rel)) { // also catches NaN
      r.max_rel = e;
      r.at = double(x[i]);
    }
  }
  return r;
}

template <class T>
std::vector<T> linspace(double lo, double hi, std::size_t n) {
  std::vector<T> x(n);
  for (std::size_t i = 0; i < n; ++i)
    x[i] = T(lo + (hi - lo) * (double(i) / double(n - 1)));
  return x;
}

/// Positive values spread evenly over the bit patterns in [lo, hi]: every binade gets the same share.
template <class T>
std::vector<T> bitspace(T lo, T hi, std::size_t n) {
  using U = std::conditional_t<std::is_same_v<T, float>, std::uint32_t, std::uint64_t>;
  U a, b;
  std::memcpy(&a, &lo, sizeof(T));
  std::memcpy(&b, &hi, sizeof(T));
  std::vector<T> x(n);
  for (std::size_t i = 0; i < n; ++i) {
    const U u = U(a + U(double(b - a) * (double(i) / double(n - 1))));
    std::memcpy(&x[i], &u, sizeof(T));
  }
  return x;
}

template <class T>
void check(const char* name, const result& r, double limit = bound<T>) {
  if (std::getenv("GRAD_TEST_VERBOSE")) {
    std::ostringstream os;
    os << name << (std::is_same_v<T, float> ? " float" : " double") << ": max rel err " << r.max_rel << " ("
       << r.max_rel / std::numeric_limits<T>::epsilon() << " eps) at x = " << r.at;
    MESSAGE(os.str());
  }
  INFO(name << " worst at x = " << r.at);
  CHECK(r.max_rel < limit);
}

template <class T>
T nan() {
  return std::numeric_limits<T>::quiet_NaN();
}
template <class T>
T inf() {
  return std::numeric_limits<T>::infinity();
}

/// f applied to a single value (through a full batch).
template <class T, class F>
T at(F f, T v) {
  return f(xsimd::batch<T>(v)).get(0);
}

} // namespace

TEST_CASE_TEMPLATE("math::exp is accurate over the whole range and handles the edges", T, float, double) {
  const auto f = [](const auto& b) { return gm::exp(b); };
  const auto g = [](auto v) { return std::exp(v); };
  const double lo = std::is_same_v<T, float> ? -87.3 : -708.3, hi = std::is_same_v<T, float> ? 88.7 : 709.7;
  check<T>("exp", max_rel_error(linspace<T>(lo, hi, sweep_points<T>()), f, g));
  check<T>("exp near 0", max_rel_error(linspace<T>(-1e-3, 1e-3, 100001), f, g));
  CHECK(at<T>(f, T(0)) == T(1));
  CHECK(at<T>(f, -inf<T>()) == T(0));
  CHECK(at<T>(f, inf<T>()) == inf<T>());
  CHECK(std::isnan(at<T>(f, nan<T>())));
  CHECK(at<T>(f, T(-1e6)) == T(0));
  CHECK(at<T>(f, T(1e6)) == inf<T>());
  // Gradual underflow: results below the smallest normal are subnormal, not flushed, nor garbage.
  const T sub = at<T>(f, std::is_same_v<T, float> ? T(-95) : T(-720));
  CHECK(sub > T(0));
  CHECK(sub < std::numeric_limits<T>::min());
  CHECK(std::abs(double(sub) - double(std::exp(wide<T>(std::is_same_v<T, float> ? -95 : -720)))) <=
        double(sub) * 1e-3);
  const double big = std::is_same_v<T, float> ? 88.72 : 709.78;
  CHECK(std::isfinite(at<T>(f, T(big))));
  CHECK(at<T>(f, T(big + 0.01)) == inf<T>());
}

TEST_CASE_TEMPLATE("math::log is accurate on every binade, subnormals included", T, float, double) {
  const auto f = [](const auto& b) { return gm::log(b); };
  const auto g = [](auto v) { return std::log(v); };
  check<T>("log", max_rel_error(bitspace<T>(std::numeric_limits<T>::denorm_min(),
                                            std::numeric_limits<T>::max(), sweep_points<T>()),
                                f, g));
  check<T>("log near 1", max_rel_error(linspace<T>(0.5, 2, sweep_points<T>() / 4), f, g));
  CHECK(at<T>(f, T(1)) == T(0));
  CHECK(at<T>(f, T(0)) == -inf<T>());
  CHECK(at<T>(f, T(-0.0)) == -inf<T>());
  CHECK(std::isnan(at<T>(f, T(-1))));
  CHECK(std::isnan(at<T>(f, -inf<T>())));
  CHECK(std::isnan(at<T>(f, nan<T>())));
  CHECK(at<T>(f, inf<T>()) == inf<T>());
  const T dmin = std::numeric_limits<T>::denorm_min();
  CHECK(double(at<T>(f, dmin)) == doctest::Approx(double(std::log(wide<T>(dmin)))).epsilon(1e-7));
}

TEST_CASE_TEMPLATE("math::tanh is accurate for tiny, moderate and large arguments", T, float, double) {
  const auto f = [](const auto& b) { return gm::tanh(b); };
  const auto g = [](auto v) { return std::tanh(v); };
  const double hi = std::is_same_v<T, float> ? 10 : 20;
  check<T>("tanh", max_rel_error(linspace<T>(-hi, hi, sweep_points<T>()), f, g));
  // tanh(x) ~ x down to the smallest subnormal, where the relative error must not grow.
  check<T>("tanh tiny",
           max_rel_error(bitspace<T>(std::numeric_limits<T>::min(), T(1), sweep_points<T>() / 4), f, g));
  CHECK(at<T>(f, inf<T>()) == T(1));
  CHECK(at<T>(f, -inf<T>()) == T(-1));
  CHECK(at<T>(f, T(1e30)) == T(1));
  CHECK(at<T>(f, T(-50)) == T(-1));
  CHECK(std::isnan(at<T>(f, nan<T>())));
  CHECK(at<T>(f, T(0)) == T(0));
  CHECK(std::signbit(at<T>(f, T(-0.0))));
  CHECK(!std::signbit(at<T>(f, T(0.0))));
  const T d = std::numeric_limits<T>::denorm_min() * T(7);
  CHECK(at<T>(f, d) == d);
  CHECK(at<T>(f, -d) == -d);
}

TEST_CASE_TEMPLATE("math::sigmoid is accurate in both tails", T, float, double) {
  const auto f = [](const auto& b) { return gm::sigmoid(b); };
  const auto g = [](auto v) { return 1 / (1 + std::exp(-v)); };
  const double lo = std::is_same_v<T, float> ? -87 : -708, hi = std::is_same_v<T, float> ? 17 : 37;
  check<T>("sigmoid", max_rel_error(linspace<T>(lo, hi, sweep_points<T>()), f, g));
  CHECK(at<T>(f, T(0)) == T(0.5));
  CHECK(at<T>(f, inf<T>()) == T(1));
  CHECK(at<T>(f, -inf<T>()) == T(0));
  CHECK(at<T>(f, T(-1e6)) == T(0));
  CHECK(std::isnan(at<T>(f, nan<T>())));
}

TEST_CASE_TEMPLATE("math::erf and math::erfc are accurate, erfc also in the far tail", T, float, double) {
  const auto fe = [](const auto& b) { return gm::erf(b); };
  const auto fc = [](const auto& b) { return gm::erfc(b); };
  const auto ge = [](auto v) { return std::erf(v); };
  const auto gc = [](auto v) { return std::erfc(v); };
  const double hi = std::is_same_v<T, float> ? 10.0 : 26.5;
  check<T>("erf", max_rel_error(linspace<T>(-6, 6, sweep_points<T>()), fe, ge));
  check<T>("erf tiny",
           max_rel_error(bitspace<T>(std::numeric_limits<T>::min(), T(1), sweep_points<T>() / 4), fe, ge));
  check<T>("erfc", max_rel_error(linspace<T>(-6, hi, sweep_points<T>()), fc, gc));
  CHECK(at<T>(fe, T(0)) == T(0));
  CHECK(at<T>(fe, inf<T>()) == T(1));
  CHECK(at<T>(fe, -inf<T>()) == T(-1));
  CHECK(at<T>(fc, inf<T>()) == T(0));
  CHECK(at<T>(fc, -inf<T>()) == T(2));
  CHECK(std::isnan(at<T>(fe, nan<T>())));
  CHECK(std::isnan(at<T>(fc, nan<T>())));
}

TEST_CASE_TEMPLATE("math::normal_cdf and its density are accurate, the lower tail included", T, float,
                   double) {
  const auto f = [](const auto& b) { return gm::normal_cdf(b); };
  const auto fp = [](const auto& b) {
    std::decay_t<decltype(b)> pdf;
    gm::normal_cdf(b, &pdf);
    return pdf;
  };
  const auto g = [](auto v) { return std::erfc(-v / std::sqrt(decltype(v)(2))) / 2; };
  const auto gp = [](auto v) {
    return std::exp(-v * v / 2) / std::sqrt(2 * decltype(v)(3.14159265358979323846264338327950288L));
  };
  const double lo = std::is_same_v<T, float> ? -14 : -37.5, hi = std::is_same_v<T, float> ? 6 : 9;
  check<T>("normal_cdf", max_rel_error(linspace<T>(lo, hi, sweep_points<T>()), f, g));
  check<T>("normal_pdf", max_rel_error(linspace<T>(lo, -lo, sweep_points<T>()), fp, gp));
  CHECK(at<T>(f, T(0)) == T(0.5));
  CHECK(at<T>(f, inf<T>()) == T(1));
  CHECK(at<T>(f, -inf<T>()) == T(0));
}
