// Tests of the first three examples: the training code they run (from the headers beside them) does
// what the examples claim.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <grad/grad.hpp>

#include "../examples/linear_regression.hpp"
#include "../examples/seven_days.hpp"
#include "../examples/sum_of_sigmoids.hpp"

namespace {

// examples/ of this source tree, found from this file's own location (CMake passes absolute paths),
// so the test does not depend on the directory it runs in.
std::filesystem::path examples_dir() {
#ifdef GRAD_TESTS_SOURCE_DIR
  return std::filesystem::path(GRAD_TESTS_SOURCE_DIR).parent_path() / "examples";
#else
  return std::filesystem::path(__FILE__).parent_path().parent_path() / "examples";
#endif
}

} // namespace

TEST_CASE("01 linear regression: gradient descent recovers b and w within the noise") {
  // 100 points, x uniform in [-2, 2], noise std sigma = 0.1. The least-squares estimates have standard
  // errors se(b) = sigma / sqrt(n) = 0.010 and se(w) = sigma / (sqrt(n) * std(x)) = 0.1 / (10 * 1.155)
  // = 0.0087 (std of U(-2, 2) is 4 / sqrt(12)). A tolerance of 0.05 is 5 standard errors for both: a
  // correct fit fails it with probability below 1e-6, whatever the seed.
  for (std::uint64_t seed : {1u, 2u, 3u, 42u}) {
    CAPTURE(seed);
    const examples::line_data d = examples::make_line_data(100, 3.0, 2.0, 0.1, -2.0, 2.0, seed);
    const examples::line_fit fit = examples::fit_line(d.x, d.y, 0.01f, 1000);
    CHECK(std::abs(fit.b - 3.0) < 0.05);
    CHECK(std::abs(fit.w - 2.0) < 0.05);
    // Converged: the exact least-squares line for these points, to float precision.
    const auto [ls_b, ls_w] = examples::least_squares_line(d.x, d.y);
    CHECK(fit.b == doctest::Approx(ls_b).epsilon(1e-4));
    CHECK(fit.w == doctest::Approx(ls_w).epsilon(1e-4));
    // The loss ends near the noise variance 0.01 (the loss of the true line) and never went up (beyond
    // float rounding, about 1e-9 here, once it has converged).
    CHECK(fit.losses.back() == doctest::Approx(0.01).epsilon(0.3));
    float worst_rise = 0;
    for (std::size_t s = 1; s < fit.losses.size(); ++s)
      worst_rise = std::max(worst_rise, fit.losses[s] - fit.losses[s - 1]);
    CHECK(worst_rise <= 1e-7f);
  }
}

TEST_CASE("02 seven days: seven previous values beat one on the shipped sunspot series") {
  const std::filesystem::path csv = examples_dir() / "data" / "sunspots.csv";
  REQUIRE_MESSAGE(std::filesystem::exists(csv), csv.string());
  std::vector<double> years;
  const std::vector<double> series = examples::read_series(csv.string(), &years);
  REQUIRE(series.size() == 309);
  CHECK(years.front() == 1700);
  CHECK(years.back() == 2008);

  const examples::lagged_data d1 = examples::make_lagged(series, 1, 12, 0.8);
  const examples::lagged_data d7 = examples::make_lagged(series, 7, 12, 0.8);
  // Same targets for both models, split in time order.
  CHECK(d1.t_train == d7.t_train);
  CHECK(d1.t_test == d7.t_test);
  CHECK(d7.t_train.back() < d7.t_test.front());
  CHECK(d7.x_train.shape() == grad::shape_type{d7.t_train.size(), 7});

  examples::linear_model m1(1), m7(7);
  examples::train_linear(m1, d1.x_train, d1.y_train, 0.1f, 2000);
  examples::train_linear(m7, d7.x_train, d7.y_train, 0.1f, 2000);
  const double train1 = examples::mse_in_units(m1, d1.x_train, d1.y_train, d1.std);
  const double train7 = examples::mse_in_units(m7, d7.x_train, d7.y_train, d7.std);
  const double test1 = examples::mse_in_units(m1, d1.x_test, d1.y_test, d1.std);
  const double test7 = examples::mse_in_units(m7, d7.x_test, d7.y_test, d7.std);
  CHECK(train7 < train1);
  CHECK(test7 < test1); // on this series the gain holds on the held-out years too
  // The 1-value model is a least-squares AR(1) fit: its weight is about the lag-1 autocorrelation.
  CHECK(m1.w.value()(0, 0) == doctest::Approx(0.82).epsilon(0.05));
}

TEST_CASE("03 sum of sigmoids: the loss falls as sigmoids are added") {
  const examples::curve_data d = examples::make_curve_data(200, 0.1, -3, 3, 1);
  examples::line_model line;
  examples::train_momentum(line, d.x, d.y, 0.1f, 0.9f, 1000, [](int, float) {});
  float previous = examples::evaluate(line, d.x, d.y);
  for (std::size_t k : {1, 3, 10}) {
    CAPTURE(k);
    grad::generator gen(1 + k);
    examples::sigmoid_model m(k, -3, 3, gen);
    const std::vector<float> losses =
        examples::train_momentum(m, d.x, d.y, 0.1f, 0.9f, 1000, [](int, float) {});
    const float loss = examples::evaluate(m, d.x, d.y);
    CHECK(loss < losses.front()); // training lowered it
    CHECK(loss < previous);       // and more sigmoids fit better
    previous = loss;
  }
  CHECK(previous < 0.02f); // ten sigmoids come close to the noise variance 0.01
}

TEST_CASE("03 sum of sigmoids: the model's shapes") {
  grad::generator gen(3);
  examples::sigmoid_model m(5, -1, 1, gen);
  CHECK(m.w.shape() == grad::shape_type{1, 5});
  CHECK(m.b0.shape() == grad::shape_type{1, 1});
  const grad::tensor x = grad::zeros({7, 1});
  grad::no_grad guard;
  CHECK(m(x).shape() == grad::shape_type{7, 1});
}
