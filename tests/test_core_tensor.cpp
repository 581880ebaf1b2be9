// Tests of core/tensor.hpp: the handle (sharing, shape queries, item, value/data access, undefined
// tensors), requires_grad and leaves, detach, retain_grad, zero_grad, backward's argument checks.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <grad/grad.hpp>

#include "op_check.hpp"

using grad::shape_type;
using op_check::values;

TEST_CASE("a tensor is a handle: copies share the value and the gradient") {
  auto a = grad::from<float>({1.0f, 2.0f, 3.0f}, {.requires_grad = true});
  auto b = a; // NOLINT: the copy is the point
  b.data()[1] = 20.0f;
  CHECK(a.data()[1] == 20.0f);
  CHECK(a.impl() == b.impl());
  grad::sum(b * 2.0f).backward();
  CHECK(values(a.grad()) == std::vector<double>{2, 2, 2});
  b.value()(0) = -1.0f; // value() is the xarray itself
  CHECK(a.data()[0] == -1.0f);
}

TEST_CASE("shape, dim, numel and size(d) with negative d") {
  const auto t = grad::zeros<double>({2, 3, 4});
  CHECK(t.shape() == shape_type{2, 3, 4});
  CHECK(t.dim() == 3);
  CHECK(t.numel() == 24);
  CHECK(t.size(0) == 2);
  CHECK(t.size(-1) == 4);
  CHECK(t.size(-3) == 2);
  CHECK(op_check::mentions(op_check::error_message<grad::value_error>([&] { (void)t.size(3); }),
                           {"size", "axis 3", "3-d"}));
  CHECK_THROWS_AS((void)t.size(-4), grad::value_error);
  const auto s = grad::scalar_tensor<float>(2.5f);
  CHECK(s.shape() == shape_type{});
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  const auto e = grad::zeros<float>({3, 0});
  CHECK(e.numel() == 0);
  CHECK(e.dim() == 2);
}

TEST_CASE("item: the value of a one-element tensor of any rank; value_error otherwise") {
  CHECK(grad::scalar_tensor<double>(4.25).item() == 4.25);
  CHECK(grad::full<float>({1, 1, 1}, -3.0f).item() == -3.0f);
  CHECK(grad::from<double>({7.0}).item() == 7.0);
  CHECK(op_check::mentions(op_check::error_message<grad::value_error>([] {
                             (void)grad::zeros<float>({2, 3}).item();
                           }),
                           {"item", "6 elements", "(2, 3)"}));
  CHECK_THROWS_AS((void)grad::zeros<float>({0}).item(), grad::value_error);
}

TEST_CASE("value and data: row-major and contiguous") {
  const auto t = grad::from<double>({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}});
  CHECK(t.value()(1, 0) == 4.0);
  CHECK(t.value()(0, 2) == 3.0);
  for (std::size_t i = 0; i < 6; ++i)
    CHECK(t.data()[i] == static_cast<double>(i + 1));
  CHECK(t.data() == t.value().data());
}

TEST_CASE("an undefined tensor: defined() is false and operations throw value_error") {
  grad::tensor u;
  CHECK_FALSE(u.defined());
  CHECK_THROWS_AS((void)u.shape(), grad::value_error);
  CHECK_THROWS_AS((void)u.numel(), grad::value_error);
  CHECK_THROWS_AS((void)u.item(), grad::value_error);
  CHECK_THROWS_AS((void)u.requires_grad(), grad::value_error);
  CHECK_THROWS_AS((void)grad::exp(u), grad::value_error);
  CHECK_THROWS_AS(u.backward(), grad::autograd_error);
  CHECK(op_check::mentions(op_check::error_message<grad::value_error>([&] { (void)grad::matmul(u, u); }),
                           {"matmul", "undefined"}));
}

TEST_CASE("requires_grad: leaves by option or requires_grad_(), results of recorded ops") {
  auto x = grad::ones<float>({2});
  CHECK_FALSE(x.requires_grad());
  CHECK(x.is_leaf());
  auto y = x * 2.0f;
  CHECK_FALSE(y.requires_grad()); // nothing to record: no input requires grad
  CHECK(y.is_leaf());
  x.requires_grad_();
  CHECK(x.requires_grad());
  auto z = x * 2.0f;
  CHECK(z.requires_grad());
  CHECK_FALSE(z.is_leaf());
  CHECK(op_check::mentions(op_check::error_message<grad::autograd_error>([&] { z.requires_grad_(false); }),
                           {"requires_grad_", "leaf", "detach"}));
  x.requires_grad_(false);
  CHECK_FALSE(x.requires_grad());
  auto w = grad::ones<float>({2}).requires_grad_(); // chaining returns the tensor
  CHECK(w.requires_grad());
}

TEST_CASE("detach: a new leaf with a copy of the value, cut from the graph") {
  auto x = grad::from<double>({1.0, 2.0}, {.requires_grad = true});
  auto y = x * 3.0;
  auto d = y.detach();
  CHECK(d.is_leaf());
  CHECK_FALSE(d.requires_grad());
  CHECK(values(d) == std::vector<double>{3, 6});
  d.data()[0] = 100.0; // a copy: y is untouched
  CHECK(y.data()[0] == 3.0);
  grad::sum(y * d).backward(); // d is a constant: d(y * d)/dx = 3 d
  CHECK(values(x.grad()) == std::vector<double>{300, 18});
  CHECK_FALSE(d.has_grad());
}

TEST_CASE("gradients: leaves keep theirs, intermediates release theirs unless retain_grad()") {
  auto x = grad::from<double>({1.0, 2.0}, {.requires_grad = true});
  auto h = x * x;
  auto k = x + 1.0;
  k.retain_grad();
  grad::sum(h * k).backward(); // d/dh = k, d/dk = h
  CHECK(x.has_grad());
  CHECK_FALSE(h.has_grad());
  REQUIRE(k.has_grad());
  CHECK(values(k.grad()) == std::vector<double>{1, 4});
  // d/dx (x^2 (x + 1)) = 3x^2 + 2x
  CHECK(values(x.grad()) == std::vector<double>{5, 16});
}

TEST_CASE("zero_grad keeps the buffer and zeroes it; a fresh tensor has no gradient") {
  auto x = grad::from<float>({1.0f, 2.0f}, {.requires_grad = true});
  CHECK_FALSE(x.has_grad());
  x.zero_grad(); // nothing to zero
  CHECK_FALSE(x.has_grad());
  grad::sum(x * 5.0f).backward();
  const float* buffer = x.grad().data();
  x.zero_grad();
  CHECK(x.has_grad());
  CHECK(x.grad().data() == buffer);
  CHECK(values(x.grad()) == std::vector<double>{0, 0});
  grad::sum(x * 2.0f).backward();
  CHECK(values(x.grad()) == std::vector<double>{2, 2});
}

TEST_CASE("grad() is writable (clipping) and has the value's shape") {
  auto w = grad::ones<double>({2, 3}, {.requires_grad = true});
  grad::sum(w * 4.0).backward();
  CHECK(w.grad().shape().size() == 2);
  CHECK(w.grad().shape()[0] == 2);
  CHECK(w.grad().shape()[1] == 3);
  w.grad() *= 0.5;
  CHECK(values(w.grad()) == std::vector<double>(6, 2.0));
}

TEST_CASE("backward's argument checks") {
  auto x = grad::ones<float>({2, 2}, {.requires_grad = true});
  auto y = x * 3.0f;
  CHECK(op_check::mentions(op_check::error_message<grad::autograd_error>([&] { y.backward(); }),
                           {"backward", "one-element", "(2, 2)"}));
  CHECK(op_check::mentions(
      op_check::error_message<grad::shape_error>([&] { y.backward(grad::ones<float>({4})); }),
      {"backward", "(4,)", "(2, 2)"}));
  CHECK(op_check::mentions(
      op_check::error_message<grad::autograd_error>([] { grad::ones<float>({1}).backward(); }),
      {"backward", "does not require grad"}));
  y.backward(grad::from<float>({{1.0f, 2.0f}, {3.0f, 4.0f}})); // a non-scalar with a gradient works
  CHECK(values(x.grad()) == std::vector<double>{3, 6, 9, 12});
}

TEST_CASE("backward on a leaf seeds its own gradient") {
  auto x = grad::scalar_tensor<double>(3.0, {.requires_grad = true});
  x.backward();
  CHECK(x.grad().data()[0] == 1.0);
  auto v = grad::zeros<double>({2}, {.requires_grad = true});
  v.backward(grad::from<double>({5.0, 6.0}));
  CHECK(values(v.grad()) == std::vector<double>{5, 6});
}

TEST_CASE("basic_tensor from an xarray, with options") {
  xt::xarray<double> a = {{1.0, 2.0}, {3.0, 4.0}};
  grad::dtensor t(a, {.requires_grad = true});
  CHECK(t.shape() == shape_type{2, 2});
  CHECK(t.requires_grad());
  CHECK(values(t) == std::vector<double>{1, 2, 3, 4});
}
