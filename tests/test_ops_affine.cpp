// Tests of ops/affine.hpp: y = x W + b with W stored (in, out) (GPT-2's Conv1D layout): values
// against a naive loop, gradients against finite differences, shape errors, and FLOP counts.
#include <doctest/doctest.h>

#include <vector>

#include <grad/grad.hpp>
#include <grad/ops/affine.hpp>
#include <grad/profile/profiler.hpp>

#include "op_check.hpp"

using grad::shape_type;
using op_check::array;

namespace {

/// y (..., out) = x (..., in) W (in, out) [+ b (out)], in double.
array naive_affine(const std::vector<array>& in) {
  const array& x = in[0];
  const array& w = in[1];
  const std::size_t k = w.shape[0], n = w.shape[1], m = op_check::count(x.shape) / k;
  shape_type out_shape = x.shape;
  out_shape.back() = n;
  array y{out_shape, std::vector<double>(m * n, 0.0)};
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double s = in.size() > 2 ? in[2].v[j] : 0.0;
      for (std::size_t p = 0; p < k; ++p)
        s += x.v[i * k + p] * w.v[p * n + j];
      y.v[i * n + j] = s;
    }
  return y;
}

} // namespace

TEST_CASE("affine: values and gradients with and without bias, 2-d and 3-d inputs") {
  op_check::check(
      "affine", [](const auto& x) { return grad::affine(x[0], x[1], x[2]); }, naive_affine,
      {{{3, 4}, {4, 5}, {5}}, {{2, 3, 7}, {7, 2}, {2}}, {{1, 1}, {1, 1}, {1}}, {{5, 17}, {17, 33}, {33}}});
  op_check::check("affine (no bias)", [](const auto& x) { return grad::affine(x[0], x[1]); }, naive_affine,
                  {{{3, 4}, {4, 5}}, {{2, 3, 7}, {7, 2}}});
}

TEST_CASE("affine: shape errors name the op and both shapes") {
  const auto x = grad::zeros<float>({2, 3});
  CHECK_THROWS_WITH_AS(grad::affine(x, grad::zeros<float>({4, 5})), doctest::Contains("affine"),
                       grad::shape_error);
  CHECK_THROWS_WITH_AS(grad::affine(x, grad::zeros<float>({3})), doctest::Contains("(3,)"),
                       grad::shape_error);
  CHECK_THROWS_WITH_AS(grad::affine(x, grad::zeros<float>({3, 5}), grad::zeros<float>({4})),
                       doctest::Contains("bias"), grad::shape_error);
}

TEST_CASE("affine: forward FLOPs 2 M N K + M N, backward one product per input needing a gradient") {
  grad::generator gen(3);
  const std::size_t m = 6, k = 5, n = 4;
  auto x = grad::randn<float>({m, k}, gen);
  auto w = grad::randn<float>({k, n}, gen).requires_grad_();
  auto b = grad::randn<float>({n}, gen).requires_grad_();
  grad::profiler prof;
  grad::sum(grad::affine(x, w, b)).backward();
  prof.stop();
  std::uint64_t fwd = 0, bwd = 0;
  for (const auto& r : prof.table())
    if (r.name == "affine")
      (r.phase == "forward" ? fwd : bwd) = r.flops;
  CHECK(fwd == 2 * m * n * k + m * n);
  CHECK(bwd == 2 * m * n * k + m * n); // dW and db; x needs no gradient
}
