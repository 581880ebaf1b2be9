// Tests of ops/arithmetic.hpp: + - * / between tensors (broadcasting) and with scalars on both sides,
// neg, pow with a scalar exponent, square. Values and gradients go through op_check.hpp.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <grad/grad.hpp>

#include "op_check.hpp"

using op_check::array;
using op_check::binary_shapes;
using op_check::unary_shapes;

namespace {

/// The reference of an elementwise unary op: f at every element.
template <class F>
auto unary_ref(F f) {
  return [f](const std::vector<array>& in) { return op_check::map(in[0], f); };
}
/// The reference of a broadcasting binary op.
template <class F>
auto binary_ref(F f) {
  return [f](const std::vector<array>& in) { return op_check::zip(in[0], in[1], f); };
}

} // namespace

TEST_CASE("add: values and gradients with broadcasting, float and double") {
  op_check::check(
      "a + b", [](const auto& x) { return x[0] + x[1]; },
      binary_ref([](double a, double b) { return a + b; }), binary_shapes());
  op_check::check("add(a, b)", [](const auto& x) { return grad::add(x[0], x[1]); },
                  binary_ref([](double a, double b) { return a + b; }), {{{3, 1}, {1, 4}}});
}

TEST_CASE("sub: values and gradients with broadcasting") {
  op_check::check(
      "a - b", [](const auto& x) { return x[0] - x[1]; },
      binary_ref([](double a, double b) { return a - b; }), binary_shapes());
  op_check::check("sub(a, b)", [](const auto& x) { return grad::sub(x[0], x[1]); },
                  binary_ref([](double a, double b) { return a - b; }), {{{2, 3, 4}, {4}}});
}

TEST_CASE("mul: values and gradients with broadcasting") {
  op_check::check(
      "a * b", [](const auto& x) { return x[0] * x[1]; },
      binary_ref([](double a, double b) { return a * b; }), binary_shapes());
  op_check::check("mul(a, b)", [](const auto& x) { return grad::mul(x[0], x[1]); },
                  binary_ref([](double a, double b) { return a * b; }), {{{}, {3}}});
}

TEST_CASE("div: values and gradients with broadcasting, divisor away from 0") {
  op_check::check("a / b", [](const auto& x) { return x[0] / x[1]; },
                  binary_ref([](double a, double b) { return a / b; }), binary_shapes(),
                  {op_check::normal(), op_check::nonzero()});
  op_check::check("div(a, b)", [](const auto& x) { return grad::div(x[0], x[1]); },
                  binary_ref([](double a, double b) { return a / b; }), {{{3, 1}, {1, 4}}},
                  {op_check::normal(), op_check::nonzero()});
}

TEST_CASE("a composite expression of the four operators is differentiated through the tape") {
  op_check::check(
      "(a * b - c) / (b * b + 1)", [](const auto& x) { return (x[0] * x[1] - x[2]) / (x[1] * x[1] + 1); },
      [](const std::vector<array>& in) {
        const array num = op_check::zip(op_check::zip(in[0], in[1], [](double a, double b) { return a * b; }),
                                        in[2], [](double ab, double c) { return ab - c; });
        const array den = op_check::map(in[1], [](double b) { return b * b + 1; });
        return op_check::zip(num, den, [](double n, double d) { return n / d; });
      },
      {{{3, 4}, {3, 4}, {3, 4}}, {{3, 1}, {1, 4}, {}}, {{2, 3, 4}, {4}, {3, 1}}});
}

TEST_CASE("tensor-scalar operators on both sides") {
  const auto shapes = unary_shapes();
  op_check::check(
      "x + 2", [](const auto& x) { return x[0] + 2; }, unary_ref([](double v) { return v + 2; }), shapes);
  op_check::check(
      "2.5 + x", [](const auto& x) { return 2.5 + x[0]; }, unary_ref([](double v) { return 2.5 + v; }),
      shapes);
  op_check::check(
      "x - 2", [](const auto& x) { return x[0] - 2; }, unary_ref([](double v) { return v - 2; }), shapes);
  op_check::check(
      "2 - x", [](const auto& x) { return 2 - x[0]; }, unary_ref([](double v) { return 2 - v; }), shapes);
  op_check::check(
      "x * 3", [](const auto& x) { return x[0] * 3; }, unary_ref([](double v) { return v * 3; }), shapes);
  op_check::check(
      "-1.5 * x", [](const auto& x) { return -1.5 * x[0]; }, unary_ref([](double v) { return -1.5 * v; }),
      shapes);
  op_check::check(
      "x / 2", [](const auto& x) { return x[0] / 2; }, unary_ref([](double v) { return v / 2; }), shapes);
  op_check::check(
      "x / 3", [](const auto& x) { return x[0] / 3.0; }, unary_ref([](double v) { return v / 3; }), shapes);
  op_check::check("2 / x", [](const auto& x) { return 2 / x[0]; }, unary_ref([](double v) { return 2 / v; }),
                  shapes, {op_check::nonzero()});
  op_check::check(
      "-x", [](const auto& x) { return -x[0]; }, unary_ref([](double v) { return -v; }), shapes);
  op_check::check(
      "neg(x)", [](const auto& x) { return grad::neg(x[0]); }, unary_ref([](double v) { return -v; }),
      shapes);
}

TEST_CASE("scalar operands of other arithmetic types: unsigned, int64, float on a double tensor") {
  const auto x = grad::from<double>({1.5, -2.0, 4.0});
  const auto check_values = [](const grad::dtensor& t, std::vector<double> want) {
    REQUIRE(t.numel() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i)
      CHECK(t.data()[i] == doctest::Approx(want[i]));
  };
  check_values(x - 1u, {0.5, -3.0, 3.0}); // an unsigned scalar must not wrap around when negated
  check_values(x - std::size_t(2), {-0.5, -4.0, 2.0});
  check_values(std::uint8_t(3) - x, {1.5, 5.0, -1.0});
  check_values(x + std::int64_t(-4), {-2.5, -6.0, 0.0});
  check_values(x * 2.0f, {3.0, -4.0, 8.0});
  check_values(x / 4u, {0.375, -0.5, 1.0});
  check_values(8u / x, {8 / 1.5, -4.0, 2.0});
}

TEST_CASE("pow with exponents 2, 3, 0.5, -1, 0, 1.5 and square") {
  const auto shapes = unary_shapes();
  op_check::check(
      "pow(x, 2)", [](const auto& x) { return grad::pow(x[0], 2); },
      unary_ref([](double v) { return v * v; }), shapes);
  op_check::check(
      "pow(x, 3)", [](const auto& x) { return grad::pow(x[0], 3); },
      unary_ref([](double v) { return v * v * v; }), shapes);
  op_check::check("pow(x, 0.5)", [](const auto& x) { return grad::pow(x[0], 0.5); },
                  unary_ref([](double v) { return std::sqrt(v); }), shapes, {op_check::positive()});
  op_check::check("pow(x, -1)", [](const auto& x) { return grad::pow(x[0], -1); },
                  unary_ref([](double v) { return 1 / v; }), shapes, {op_check::nonzero()});
  op_check::check(
      "pow(x, 0)", [](const auto& x) { return grad::pow(x[0], 0); }, unary_ref([](double) { return 1.0; }),
      shapes);
  op_check::check("pow(x, 1.5f)", [](const auto& x) { return grad::pow(x[0], 1.5f); },
                  unary_ref([](double v) { return v * std::sqrt(v); }), shapes, {op_check::positive()});
  op_check::check(
      "square(x)", [](const auto& x) { return grad::square(x[0]); },
      unary_ref([](double v) { return v * v; }), shapes);
}

TEST_CASE("pow: x^0 is 1 at 0 with gradient 0, x^2 at 0 has gradient 0") {
  auto x = grad::from<double>({0.0, 2.0}, {.requires_grad = true});
  auto y = grad::pow(x, 0);
  CHECK(y.data()[0] == 1.0);
  CHECK(y.data()[1] == 1.0);
  auto z = grad::sum(grad::pow(x, 2) + y);
  z.backward();
  CHECK(x.grad().data()[0] == 0.0); // d(x^2 + x^0)/dx at 0
  CHECK(x.grad().data()[1] == 4.0); // 2x at 2, x^0 contributes nothing
}

TEST_CASE("the same tensor on both sides of an operator") {
  auto x = grad::from<double>({1.0, -2.0, 3.0}, {.requires_grad = true});
  grad::sum(x * x).backward(); // d(x^2)/dx = 2x
  CHECK(x.grad().data()[0] == 2.0);
  CHECK(x.grad().data()[1] == -4.0);
  CHECK(x.grad().data()[2] == 6.0);
  x.zero_grad();
  grad::sum(x / x - x).backward(); // d(1 - x)/dx = -1
  for (std::size_t i = 0; i < 3; ++i)
    CHECK(x.grad().data()[i] == doctest::Approx(-1.0));
}

TEST_CASE("a constant operand gets no gradient; the other one does") {
  auto a = grad::from<double>({1.0, 2.0}, {.requires_grad = true});
  auto b = grad::from<double>({3.0, 5.0});
  grad::sum(a * b).backward();
  CHECK(a.grad().data()[0] == 3.0);
  CHECK(a.grad().data()[1] == 5.0);
  CHECK_FALSE(b.has_grad());
  CHECK_FALSE(b.requires_grad());
}

TEST_CASE("the tape records the op name, FLOPs (one per output element) and bytes") {
  auto a = grad::ones<float>({3, 4}, {.requires_grad = true});
  auto b = grad::ones<float>({4});
  auto c = a * b; // (3, 4) * (4,) -> (3, 4)
  const auto& tp = grad::current_tape();
  REQUIRE(tp.size() >= 1);
  const auto* n = tp.nodes().back();
  CHECK(n->name == "mul");
  CHECK(n->flops == 12);
  CHECK(n->bytes == (12 + 4 + 12) * sizeof(float)); // both inputs read, the output written
  auto d = c + 1.0;
  CHECK(tp.nodes().back()->name == "add_scalar");
  CHECK(tp.nodes().back()->flops == 12);
}

TEST_CASE("shape errors name the op and both shapes") {
  const auto a = grad::ones<float>({2, 3});
  const auto b = grad::ones<float>({4});
  const auto c = grad::ones<float>({3, 2});
  using op_check::error_message;
  using op_check::mentions;
  CHECK(mentions(error_message<grad::shape_error>([&] { (void)(a + b); }), {"add", "(2, 3)", "(4,)"}));
  CHECK(mentions(error_message<grad::shape_error>([&] { (void)(a - c); }), {"sub", "(2, 3)", "(3, 2)"}));
  CHECK(mentions(error_message<grad::shape_error>([&] { (void)(b * a); }), {"mul", "(4,)", "(2, 3)"}));
  CHECK(mentions(error_message<grad::shape_error>([&] { (void)(c / a); }), {"div", "(3, 2)", "(2, 3)"}));
  const auto d = grad::ones<float>({2, 1, 3});
  const auto e = grad::ones<float>({4, 2});
  CHECK(mentions(error_message<grad::shape_error>([&] { (void)grad::add(d, e); }),
                 {"add", "(2, 1, 3)", "(4, 2)"}));
  CHECK_THROWS_AS((void)(grad::tensor() + a), grad::value_error); // an undefined operand
}
