// Tests of grad/optim/clip.hpp: norms and clipped gradients computed by hand, as
// torch.nn.utils.clip_grad_norm_ / clip_grad_value_ define them.
#include <doctest/doctest.h>

#include <cmath>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include <grad/grad.hpp>
#include <grad/optim/clip.hpp>

namespace {

namespace optim = grad::optim;

template <class F>
void check_value_error(F&& f, std::initializer_list<std::string> parts) {
  bool thrown = false;
  try {
    f();
  } catch (const grad::value_error& e) {
    thrown = true;
    const std::string what = e.what();
    for (const auto& p : parts) {
      INFO("message: " << what);
      CHECK(what.find(p) != std::string::npos);
    }
  }
  CHECK(thrown);
}

template <class T>
grad::basic_tensor<T> with_grad(std::vector<T> g) {
  auto p = grad::zeros<T>({g.size()}, {.requires_grad = true});
  std::copy(g.begin(), g.end(), p.grad().data());
  return p;
}

template <class T>
std::vector<double> grads(const grad::basic_tensor<T>& p) {
  return std::vector<double>(p.grad().data(), p.grad().data() + p.numel());
}

} // namespace

TEST_CASE_TEMPLATE("clip_grad_norm: total 2-norm over all gradients", T, float, double) {
  auto a = with_grad<T>({3, -4});
  auto b = with_grad<T>({0, 0, 12});
  auto none = grad::zeros<T>({5}, {.requires_grad = true}); // no gradient: skipped, not allocated
  // sqrt(9 + 16 + 144) = 13; clip_coef = 6.5 / (13 + 1e-6).
  const T norm = optim::clip_grad_norm({a, b, none}, 6.5);
  CHECK(norm == doctest::Approx(13.0));
  const double c = 6.5 / (13 + 1e-6);
  const double tol = std::is_same_v<T, float> ? 1e-6 : 1e-14;
  const std::vector<double> ga = grads(a), gb = grads(b);
  CHECK(ga[0] == doctest::Approx(3 * c).epsilon(tol));
  CHECK(ga[1] == doctest::Approx(-4 * c).epsilon(tol));
  CHECK(gb[2] == doctest::Approx(12 * c).epsilon(tol));
  CHECK_FALSE(none.has_grad());

  // Below the limit nothing changes (clip_coef >= 1 is not applied).
  auto d = with_grad<T>({0.5, -0.25});
  CHECK(optim::clip_grad_norm({d}, 1.0) == doctest::Approx(std::sqrt(0.3125)));
  CHECK(grads(d) == std::vector<double>{0.5, -0.25});
}

TEST_CASE_TEMPLATE("clip_grad_norm: 1-norm, p-norm and inf-norm", T, float, double) {
  {
    auto a = with_grad<T>({3, -4}), b = with_grad<T>({0, 0, -12});
    CHECK(optim::clip_grad_norm({a, b}, 100.0, 1.0) == doctest::Approx(19.0)); // |3| + |-4| + |-12|
  }
  {
    auto a = with_grad<T>({3, -4}), b = with_grad<T>({0, 0, -12});
    // (27 + 64 + 1728)^(1/3)
    CHECK(optim::clip_grad_norm({a, b}, 100.0, 3.0) == doctest::Approx(12.207054953820636));
  }
  {
    auto a = with_grad<T>({3, -4}), b = with_grad<T>({0, 0, -12});
    const double inf = std::numeric_limits<double>::infinity();
    CHECK(optim::clip_grad_norm({a, b}, 6.0, inf) == doctest::Approx(12.0)); // max |g|
    const double c = 6.0 / (12 + 1e-6);
    CHECK(grads(b)[2] == doctest::Approx(-12 * c));
    CHECK(grads(a)[1] == doctest::Approx(-4 * c));
  }
}

TEST_CASE("clip_grad_norm: long gradients use the SIMD path and keep their precision") {
  // 100003 elements of 0.01 (not a multiple of any block or SIMD width): norm 0.01 * sqrt(100003).
  auto p = grad::zeros<float>({100003}, {.requires_grad = true});
  std::fill(p.grad().data(), p.grad().data() + p.numel(), 0.01f);
  p.grad().data()[777] = -0.01f;
  const double want = static_cast<double>(0.01f) * std::sqrt(100003.0);
  CHECK(optim::clip_grad_norm({p}, 1.0) == doctest::Approx(want).epsilon(1e-6));
  const double c = 1.0 / (want + 1e-6);
  CHECK(p.grad()(5) == doctest::Approx(0.01 * c).epsilon(1e-5));
  CHECK(p.grad()(777) == doctest::Approx(-0.01 * c).epsilon(1e-5));
  CHECK(p.grad()(100002) == doctest::Approx(0.01 * c).epsilon(1e-5));
  p.grad().data()[100001] = -7.0f;
  CHECK(optim::clip_grad_norm({p}, 100.0, std::numeric_limits<double>::infinity()) == 7.0f);
}

TEST_CASE("clip_grad_norm: non-finite norms and bad arguments") {
  auto a = with_grad<double>({1, std::nan("")});
  CHECK(std::isnan(optim::clip_grad_norm({a}, 1.0)));
  CHECK(grads(a)[0] == 1.0); // left as is: scaling by NaN would only spread it
  CHECK(std::isnan(optim::clip_grad_norm({a}, 1.0, std::numeric_limits<double>::infinity())));
  check_value_error([&] { optim::clip_grad_norm({a}, 1.0, 2.0, true); }, {"clip_grad_norm", "non-finite"});
  check_value_error([&] { optim::clip_grad_norm({a}, -1.0); }, {"max_norm", "-1"});
  check_value_error([&] { optim::clip_grad_norm({a}, 1.0, 0.0); }, {"norm_type", "0"});
  check_value_error([&] { optim::clip_grad_norm({a}, 1.0, -std::numeric_limits<double>::infinity()); },
                    {"norm_type", "-inf"});
}

TEST_CASE_TEMPLATE("clip_grad_value clamps each element", T, float, double) {
  auto a = with_grad<T>({-3, 0.25, 5, -0.5});
  auto none = grad::zeros<T>({2}, {.requires_grad = true});
  std::vector<grad::basic_tensor<T>> ps{a, none};
  optim::clip_grad_value(ps, 1.0);
  CHECK(grads(a) == std::vector<double>{-1, 0.25, 1, -0.5});
  CHECK_FALSE(none.has_grad());
  optim::clip_grad_value({a}, 0.0);
  CHECK(grads(a) == std::vector<double>{0, 0, 0, 0});
  check_value_error([&] { optim::clip_grad_value({a}, -0.1); }, {"clip_grad_value", "clip_value", "-0.1"});
}
