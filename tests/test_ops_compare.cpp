// Tests of ops/compare.hpp: maximum, minimum (ties split the gradient half and half) and where, all
// with broadcasting.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include <grad/grad.hpp>

#include "op_check.hpp"

using op_check::array;
using op_check::binary_shapes;

TEST_CASE("maximum: values and gradients with broadcasting, no ties") {
  op_check::check(
      "maximum", [](const auto& x) { return grad::maximum(x[0], x[1]); },
      [](const std::vector<array>& in) {
        return op_check::zip(in[0], in[1], [](double a, double b) { return a > b ? a : b; });
      },
      binary_shapes(), {op_check::distinct(), op_check::distinct()});
}

TEST_CASE("minimum: values and gradients with broadcasting, no ties") {
  op_check::check(
      "minimum", [](const auto& x) { return grad::minimum(x[0], x[1]); },
      [](const std::vector<array>& in) {
        return op_check::zip(in[0], in[1], [](double a, double b) { return a < b ? a : b; });
      },
      binary_shapes(), {op_check::distinct(), op_check::distinct()});
}

TEST_CASE("where: values and gradients, the condition broadcast and not differentiated") {
  const auto ref = [](const std::vector<array>& in) {
    return op_check::zip3(in[0], in[1], in[2], [](double k, double a, double b) { return k != 0 ? a : b; });
  };
  op_check::check("where", [](const auto& x) { return grad::where(x[0], x[1], x[2]); }, ref,
                  {{{3, 4}, {3, 4}, {3, 4}},
                   {{3, 1}, {1, 4}, {}},
                   {{4}, {2, 3, 4}, {3, 1}},
                   {{2, 3, 4}, {4}, {1}},
                   {{}, {2, 3}, {2, 3}},
                   {{1}, {}, {}},
                   {{2, 1, 3}, {1, 5, 1}, {3}}},
                  {op_check::mask(), op_check::normal(), op_check::normal()});
}

TEST_CASE("where: hand-checked values and gradients") {
  const auto cond = grad::from<double>({1.0, 0.0, 2.0}); // any non-zero selects a
  auto a = grad::from<double>({10.0, 20.0, 30.0}, {.requires_grad = true});
  auto b = grad::from<double>({-1.0}, {.requires_grad = true}); // broadcast
  const auto y = grad::where(cond, a, b);
  CHECK(std::vector<double>(y.data(), y.data() + 3) == std::vector<double>{10, -1, 30});
  grad::sum(y * grad::from<double>({1.0, 2.0, 3.0})).backward();
  CHECK(std::vector<double>(a.grad().data(), a.grad().data() + 3) == std::vector<double>{1, 0, 3});
  CHECK(b.grad().data()[0] == 2.0);
  CHECK_FALSE(cond.has_grad());
}

TEST_CASE("maximum and minimum split the gradient half and half on ties") {
  auto a = grad::from<double>({1.0, 2.0, 3.0, -4.0}, {.requires_grad = true});
  auto b = grad::from<double>({1.0, 0.0, 5.0, -4.0}, {.requires_grad = true});
  const auto mx = grad::maximum(a, b);
  CHECK(std::vector<double>(mx.data(), mx.data() + 4) == std::vector<double>{1, 2, 5, -4});
  grad::sum(mx).backward();
  CHECK(std::vector<double>(a.grad().data(), a.grad().data() + 4) == std::vector<double>{0.5, 1, 0, 0.5});
  CHECK(std::vector<double>(b.grad().data(), b.grad().data() + 4) == std::vector<double>{0.5, 0, 1, 0.5});
  a.zero_grad();
  b.zero_grad();
  const auto mn = grad::minimum(a, b);
  CHECK(std::vector<double>(mn.data(), mn.data() + 4) == std::vector<double>{1, 0, 3, -4});
  grad::sum(mn).backward();
  CHECK(std::vector<double>(a.grad().data(), a.grad().data() + 4) == std::vector<double>{0.5, 0, 1, 0.5});
  CHECK(std::vector<double>(b.grad().data(), b.grad().data() + 4) == std::vector<double>{0.5, 1, 0, 0.5});
}

TEST_CASE("maximum with a broadcast 0-d operand: ties and wins summed into the scalar") {
  auto x = grad::from<double>({-1.0, 0.0, 2.0, 0.0}, {.requires_grad = true});
  auto zero = grad::scalar_tensor<double>(0.0, {.requires_grad = true}); // relu written as maximum
  grad::sum(grad::maximum(x, zero)).backward();
  CHECK(std::vector<double>(x.grad().data(), x.grad().data() + 4) == std::vector<double>{0, 0.5, 1, 0.5});
  CHECK(zero.grad().data()[0] == 1.0 + 0.5 + 0.5); // wins at -1, halves at the two ties
}

TEST_CASE("maximum and minimum return NaN when either operand is NaN, as PyTorch") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto a = grad::from<double>({nan, 1.0, nan});
  const auto b = grad::from<double>({1.0, nan, nan});
  for (const auto& y : {grad::maximum(a, b), grad::minimum(a, b), grad::maximum(b, a), grad::minimum(b, a)})
    for (std::size_t i = 0; i < 3; ++i)
      CHECK(std::isnan(y.data()[i]));
}

TEST_CASE("shape errors name the op and both shapes") {
  const auto a = grad::ones<float>({2, 3});
  const auto b = grad::ones<float>({3, 2});
  using op_check::error_message;
  using op_check::mentions;
  CHECK(mentions(error_message<grad::shape_error>([&] { (void)grad::maximum(a, b); }),
                 {"maximum", "(2, 3)", "(3, 2)"}));
  CHECK(mentions(error_message<grad::shape_error>([&] { (void)grad::minimum(b, a); }),
                 {"minimum", "(3, 2)", "(2, 3)"}));
  const auto c = grad::ones<float>({4});
  CHECK(mentions(error_message<grad::shape_error>([&] { (void)grad::where(c, a, a); }),
                 {"where", "(4,)", "(2, 3)"}));
  CHECK(mentions(error_message<grad::shape_error>([&] { (void)grad::where(a, a, b); }),
                 {"where", "(2, 3)", "(3, 2)"}));
}
