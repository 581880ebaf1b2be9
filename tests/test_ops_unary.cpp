// Tests of ops/unary.hpp: exp, log, sqrt, abs, tanh, sigmoid, relu, clamp. Inputs stay away from the
// points where an op is not differentiable (abs/relu at 0, clamp at its bounds, log/sqrt at <= 0); the
// conventions at those points (PyTorch's) are checked by hand.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include <grad/grad.hpp>

#include "op_check.hpp"

using op_check::array;
using op_check::unary_shapes;

namespace {

template <class F>
auto unary_ref(F f) {
  return [f](const std::vector<array>& in) { return op_check::map(in[0], f); };
}

/// Gradient of sum(f(x)) at the given points, in double.
template <class F>
std::vector<double> grad_at(F f, std::vector<double> points) {
  auto x = grad::from<double>(points, {points.size()}, {.requires_grad = true});
  grad::sum(f(x)).backward();
  return std::vector<double>(x.grad().data(), x.grad().data() + x.numel());
}

} // namespace

TEST_CASE("exp") {
  op_check::check(
      "exp", [](const auto& x) { return grad::exp(x[0]); }, unary_ref([](double v) { return std::exp(v); }),
      unary_shapes());
}

TEST_CASE("log on positive inputs") {
  op_check::check("log", [](const auto& x) { return grad::log(x[0]); },
                  unary_ref([](double v) { return std::log(v); }), unary_shapes(), {op_check::positive()});
}

TEST_CASE("sqrt on positive inputs") {
  op_check::check("sqrt", [](const auto& x) { return grad::sqrt(x[0]); },
                  unary_ref([](double v) { return std::sqrt(v); }), unary_shapes(), {op_check::positive()});
}

TEST_CASE("abs away from 0") {
  op_check::check("abs", [](const auto& x) { return grad::abs(x[0]); },
                  unary_ref([](double v) { return v < 0 ? -v : v; }), unary_shapes(), {op_check::nonzero()});
}

TEST_CASE("tanh") {
  op_check::check(
      "tanh", [](const auto& x) { return grad::tanh(x[0]); },
      unary_ref([](double v) { return (std::exp(2 * v) - 1) / (std::exp(2 * v) + 1); }), unary_shapes());
}

TEST_CASE("sigmoid") {
  op_check::check(
      "sigmoid", [](const auto& x) { return grad::sigmoid(x[0]); },
      unary_ref([](double v) { return 1 / (1 + std::exp(-v)); }), unary_shapes());
}

TEST_CASE("relu away from 0") {
  op_check::check("relu", [](const auto& x) { return grad::relu(x[0]); },
                  unary_ref([](double v) { return v > 0 ? v : 0.0; }), unary_shapes(), {op_check::nonzero()});
}

TEST_CASE("clamp away from its bounds") {
  op_check::check("clamp(x, -0.5, 1)", [](const auto& x) { return grad::clamp(x[0], -0.5, 1); },
                  unary_ref([](double v) { return v < -0.5 ? -0.5 : (v > 1 ? 1.0 : v); }), unary_shapes(),
                  {op_check::away_from({-0.5, 1.0})});
  op_check::check("clamp(x, 0, 0) (lo == hi)", [](const auto& x) { return grad::clamp(x[0], 0, 0); },
                  unary_ref([](double) { return 0.0; }), {{{3, 4}}}, {op_check::nonzero()});
}

TEST_CASE("a chain of unary functions") {
  op_check::check(
      "log(1 + exp(tanh(x)) * sigmoid(x))",
      [](const auto& x) { return grad::log(1 + grad::exp(grad::tanh(x[0])) * grad::sigmoid(x[0])); },
      unary_ref([](double v) { return std::log(1 + std::exp(std::tanh(v)) / (1 + std::exp(-v))); }),
      unary_shapes());
}

TEST_CASE("conventions at the non-differentiable points, as PyTorch") {
  // abs'(0) = 0, relu'(0) = 0
  CHECK(grad_at([](const auto& x) { return grad::abs(x); }, {-1.0, 0.0, 2.0}) ==
        std::vector<double>{-1, 0, 1});
  CHECK(grad_at([](const auto& x) { return grad::relu(x); }, {-1.0, 0.0, 2.0}) ==
        std::vector<double>{0, 0, 1});
  // clamp passes the gradient on [lo, hi] including the bounds, 0 outside
  CHECK(grad_at([](const auto& x) { return grad::clamp(x, -1, 1); }, {-2.0, -1.0, 0.0, 1.0, 2.0}) ==
        std::vector<double>{0, 1, 1, 1, 0});
}

TEST_CASE("sigmoid and tanh saturate without overflow or NaN") {
  const auto x = grad::from<float>({-100.0f, -30.0f, 0.0f, 30.0f, 100.0f}, {.requires_grad = true});
  const auto s = grad::sigmoid(x);
  CHECK(s.data()[0] >= 0.0f);
  CHECK(s.data()[0] < 1e-30f);
  CHECK(s.data()[2] == 0.5f);
  CHECK(s.data()[4] == 1.0f);
  const auto t = grad::tanh(x);
  CHECK(t.data()[0] == -1.0f);
  CHECK(t.data()[4] == 1.0f);
  grad::sum(s + t).backward();
  for (std::size_t i = 0; i < 5; ++i)
    CHECK(std::isfinite(x.grad().data()[i]));
  CHECK(x.grad().data()[2] == doctest::Approx(0.25 + 1.0)); // s'(0) = 1/4, tanh'(0) = 1
  // large negative inputs in double: exp(-x) overflows in the naive formula, not here
  const auto y = grad::sigmoid(grad::from<double>({-800.0, 800.0}));
  CHECK(y.data()[0] == 0.0);
  CHECK(y.data()[1] == 1.0);
}

TEST_CASE("log and sqrt at 0 and below follow IEEE (-inf, nan), as PyTorch") {
  const auto x = grad::from<double>({0.0, -1.0, 4.0});
  const auto l = grad::log(x);
  CHECK(l.data()[0] == -std::numeric_limits<double>::infinity());
  CHECK(std::isnan(l.data()[1]));
  const auto r = grad::sqrt(x);
  CHECK(r.data()[0] == 0.0);
  CHECK(std::isnan(r.data()[1]));
  CHECK(r.data()[2] == 2.0);
}

TEST_CASE("clamp with lo > hi throws value_error naming the op") {
  const auto x = grad::ones<float>({3});
  CHECK(op_check::mentions(op_check::error_message<grad::value_error>([&] { (void)grad::clamp(x, 1, -1); }),
                           {"clamp", "1", "-1"}));
}
