// Tests of core/factories.hpp and core/generator.hpp: zeros/ones/full/arange/linspace/randn/rand/from,
// reproducible seeded generators.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <grad/grad.hpp>

#include "op_check.hpp"

using grad::shape_type;
using op_check::values;

TEST_CASE("zeros, ones, full: shape, value, element type, options") {
  const auto z = grad::zeros({2, 3});
  static_assert(std::is_same_v<std::decay_t<decltype(z)>, grad::tensor>); // float by default
  CHECK(z.shape() == shape_type{2, 3});
  CHECK(values(z) == std::vector<double>(6, 0.0));
  const auto o = grad::ones<double>({4});
  CHECK(values(o) == std::vector<double>(4, 1.0));
  const auto f = grad::full<float>({2, 2}, -1.5f, {.requires_grad = true});
  CHECK(values(f) == std::vector<double>(4, -1.5));
  CHECK(f.requires_grad());
  CHECK(f.is_leaf());
  CHECK_FALSE(z.requires_grad());
  CHECK(grad::zeros<float>({}).shape() == shape_type{});
  CHECK(grad::zeros<float>({}).item() == 0.0f);
  CHECK(grad::ones<float>({3, 0}).numel() == 0);
  CHECK(grad::scalar_tensor<double>(2.5).item() == 2.5);
  CHECK(grad::scalar_tensor<double>(2.5).shape() == shape_type{});
}

TEST_CASE("zeros_like, ones_like") {
  const auto t = grad::full<double>({3, 1, 2}, 7.0);
  const auto z = grad::zeros_like(t);
  CHECK(z.shape() == t.shape());
  CHECK(values(z) == std::vector<double>(6, 0.0));
  const auto o = grad::ones_like(t, {.requires_grad = true});
  CHECK(values(o) == std::vector<double>(6, 1.0));
  CHECK(o.requires_grad());
}

TEST_CASE("arange: integer, fractional and negative steps, empty ranges") {
  CHECK(values(grad::arange<double>(5)) == std::vector<double>{0, 1, 2, 3, 4});
  CHECK(values(grad::arange<double>(2, 5)) == std::vector<double>{2, 3, 4});
  CHECK(values(grad::arange<double>(1, 2.5, 0.5)) == std::vector<double>{1, 1.5, 2});
  CHECK(values(grad::arange<double>(5, 0, -1)) == std::vector<double>{5, 4, 3, 2, 1});
  CHECK(values(grad::arange<double>(1, -1, -0.5)) == std::vector<double>{1, 0.5, 0, -0.5});
  const auto tenth = grad::arange<double>(0, 1, 0.1); // 10 elements, as torch.arange(0, 1, 0.1)
  REQUIRE(tenth.numel() == 10);
  for (std::size_t i = 0; i < 10; ++i)
    CHECK(tenth.data()[i] == doctest::Approx(0.1 * static_cast<double>(i)));
  CHECK(grad::arange<double>(0, 0.3, 0.1).numel() == 3);
  CHECK(grad::arange<float>(0, 10, 3).numel() == 4); // 0 3 6 9
  CHECK(grad::arange<double>(3, 3).numel() == 0);
  CHECK(grad::arange<double>(0, -1).numel() == 0);
  CHECK(grad::arange<double>(0, 5, -1).numel() == 0);
  CHECK(grad::arange<double>(0).shape() == shape_type{0});
  CHECK(grad::arange<float>(4, {.requires_grad = true}).requires_grad());
  CHECK(op_check::mentions(
      op_check::error_message<grad::value_error>([] { (void)grad::arange<float>(0, 1, 0); }),
      {"arange", "step"}));
  CHECK_THROWS_AS((void)grad::arange<float>(0, std::numeric_limits<double>::infinity()), grad::value_error);
  CHECK_THROWS_AS((void)grad::arange<float>(std::nan(""), 1), grad::value_error);
}

TEST_CASE("linspace: inclusive ends, one and zero steps, decreasing") {
  CHECK(values(grad::linspace<double>(0, 1, 5)) == std::vector<double>{0, 0.25, 0.5, 0.75, 1});
  CHECK(values(grad::linspace<double>(1, -1, 3)) == std::vector<double>{1, 0, -1});
  CHECK(values(grad::linspace<double>(2, 9, 1)) == std::vector<double>{2});
  CHECK(grad::linspace<double>(0, 1, 0).numel() == 0);
  const auto l = grad::linspace<double>(-3, 7, 11);
  for (std::size_t i = 0; i < 11; ++i)
    CHECK(l.data()[i] == doctest::Approx(-3.0 + static_cast<double>(i)));
  CHECK(l.data()[10] == 7.0); // the end is hit exactly
}

namespace {

/// Mean and standard deviation of a tensor's elements.
template <class T>
std::pair<double, double> moments(const grad::basic_tensor<T>& t) {
  double s = 0, s2 = 0;
  for (std::size_t i = 0; i < t.numel(); ++i) {
    s += static_cast<double>(t.data()[i]);
    s2 += static_cast<double>(t.data()[i]) * static_cast<double>(t.data()[i]);
  }
  const double n = static_cast<double>(t.numel());
  return {s / n, std::sqrt(s2 / n - (s / n) * (s / n))};
}

} // namespace

TEST_CASE("randn: mean ~0 and std ~1 over 100000 samples; mean/std parameters") {
  grad::generator g(123);
  const auto x = grad::randn<double>({100000}, g);
  const auto [m, s] = moments(x);
  CHECK(std::abs(m) < 0.015); // standard error 0.003
  CHECK(std::abs(s - 1) < 0.015);
  std::size_t beyond2 = 0; // a normal, not a uniform: about 4.55% beyond 2 sigma
  for (std::size_t i = 0; i < x.numel(); ++i)
    beyond2 += std::abs(x.data()[i]) > 2;
  CHECK(beyond2 > 4000);
  CHECK(beyond2 < 5100);
  const auto y = grad::randn<float>({50000}, g, {}, 3.0, 0.5);
  const auto [my, sy] = moments(y);
  CHECK(std::abs(my - 3) < 0.02);
  CHECK(std::abs(sy - 0.5) < 0.02);
}

TEST_CASE("rand: in [0, 1), mean ~1/2; [lo, hi) parameters") {
  grad::generator g(5);
  const auto u = grad::rand<double>({100000}, g);
  double lo = 1, hi = 0;
  for (std::size_t i = 0; i < u.numel(); ++i) {
    lo = std::min(lo, u.data()[i]);
    hi = std::max(hi, u.data()[i]);
  }
  CHECK(lo >= 0.0);
  CHECK(hi < 1.0);
  CHECK(lo < 0.001);
  CHECK(hi > 0.999);
  const auto [m, s] = moments(u);
  CHECK(std::abs(m - 0.5) < 0.01);
  CHECK(std::abs(s - std::sqrt(1.0 / 12)) < 0.01);
  const auto v = grad::rand<float>({1000}, g, {}, -2.0, -1.0);
  const auto [vlo, vhi] = std::minmax_element(v.data(), v.data() + v.numel());
  CHECK(*vlo >= -2.0f);
  CHECK(*vhi <= -1.0f); // float rounding may reach hi itself
  CHECK(*vhi > -1.01f);
}

TEST_CASE("generators: same seed same values, different seeds differ, manual_seed restarts") {
  grad::generator a(7), b(7), c(8);
  const auto xa = grad::randn<float>({64}, a);
  const auto xb = grad::randn<float>({64}, b);
  const auto xc = grad::randn<float>({64}, c);
  CHECK(values(xa) == values(xb));
  CHECK(values(xa) != values(xc));
  a.manual_seed(7);
  CHECK(values(grad::randn<float>({64}, a)) == values(xa));
  // the default generator
  grad::manual_seed(99);
  const auto d1 = grad::rand<double>({16});
  const auto d2 = grad::randn<double>({3, 3});
  grad::manual_seed(99);
  CHECK(values(grad::rand<double>({16})) == values(d1));
  CHECK(values(grad::randn<double>({3, 3})) == values(d2));
  // an odd count leaves a Box-Muller spare behind: manual_seed must discard it
  grad::generator e(1);
  const double first = e.normal();
  (void)e.normal();
  (void)e.normal();
  e.manual_seed(1);
  CHECK(e.normal() == first);
}

TEST_CASE("generator: xoshiro256** seeded by splitmix64 gives the reference sequence") {
  // Expected values from an independent implementation of the published algorithms (Blackman and Vigna).
  grad::generator g(42);
  CHECK(g.next_u64() == 0x15780b2e0c2ec716ULL);
  CHECK(g.next_u64() == 0x6104d9866d113a7eULL);
  CHECK(g.next_u64() == 0xae17533239e499a1ULL);
  grad::generator z(0);
  CHECK(z.next_u64() == 0x99ec5f36cb75f2b4ULL);
  CHECK(z.next_u64() == 0xbf6e1f784956452aULL);
}

TEST_CASE("generator: uniform in [0, 1), randint in [0, n) and roughly uniform") {
  grad::generator g(3);
  std::vector<int> hist(7, 0); // hist[6] counts out-of-range results
  for (int i = 0; i < 60000; ++i)
    ++hist[std::min<std::uint64_t>(g.randint(6), 6)];
  CHECK(hist[6] == 0);
  hist.pop_back();
  for (int h : hist) {
    CHECK(h > 9500);
    CHECK(h < 10500);
  }
  CHECK(g.randint(1) == 0);
  int outside = 0;
  for (int i = 0; i < 100000; ++i) {
    const double u = g.uniform();
    outside += !(u >= 0.0 && u < 1.0);
  }
  CHECK(outside == 0);
}

TEST_CASE("from: initializer lists, nested lists, vector with shape, xarray") {
  const auto a = grad::from<float>({1.0f, 2.0f, 3.0f});
  CHECK(a.shape() == shape_type{3});
  CHECK(values(a) == std::vector<double>{1, 2, 3});
  const auto b = grad::from<double>({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, {.requires_grad = true});
  CHECK(b.shape() == shape_type{2, 3});
  CHECK(values(b) == std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK(b.requires_grad());
  const auto c = grad::from<double>(std::vector<double>{1, 2, 3, 4, 5, 6}, {3, 1, 2});
  CHECK(c.shape() == shape_type{3, 1, 2});
  CHECK(c.value()(2, 0, 1) == 6.0);
  CHECK(grad::from<double>(std::vector<double>{5}, {}).item() == 5.0);
  CHECK(op_check::mentions(op_check::error_message<grad::shape_error>([] {
                             (void)grad::from<float>(std::vector<float>{1, 2, 3}, {2, 2});
                           }),
                           {"from", "3 values", "(2, 2)"}));
  CHECK_THROWS_AS((void)grad::from<float>({{1.0f, 2.0f}, {3.0f}}), grad::shape_error); // ragged
  xt::xarray<double> x = {{1.0, 2.0}, {3.0, 4.0}};
  const auto d = grad::from(x);
  CHECK(d.shape() == shape_type{2, 2});
  x(0, 0) = 100.0; // from copies: the tensor does not alias the source
  CHECK(d.data()[0] == 1.0);
}
