// Tests of ops/matmul.hpp: torch.matmul semantics for 1-d and 2-d operands, batches and broadcast
// batches, against a naive triple loop written here; shape errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <grad/grad.hpp>

#include "op_check.hpp"

using grad::shape_type;
using op_check::array;
using op_check::values;

namespace {

/// Naive torch.matmul: a 1-d left operand is a row (1, k), a 1-d right operand a column (k, 1), the
/// added dimension is dropped from the result; leading dimensions broadcast as batch dimensions.
array matmul_ref(const array& a, const array& b) {
  const shape_type as = a.shape.size() == 1 ? shape_type{1, a.shape[0]} : a.shape;
  const shape_type bs = b.shape.size() == 1 ? shape_type{b.shape[0], 1} : b.shape;
  const std::size_t m = as[as.size() - 2], k = as.back(), n = bs.back();
  REQUIRE(bs[bs.size() - 2] == k);
  const shape_type abatch(as.begin(), as.end() - 2), bbatch(bs.begin(), bs.end() - 2);
  const shape_type batch = op_check::broadcast(abatch, bbatch);
  shape_type out = batch;
  if (a.shape.size() > 1)
    out.push_back(m);
  if (b.shape.size() > 1)
    out.push_back(n);
  array r{out, std::vector<double>(op_check::count(batch) * m * n, 0.0)};
  for (std::size_t t = 0; t < op_check::count(batch); ++t) {
    const auto idx = op_check::unravel(t, batch);
    const std::size_t ta = op_check::broadcast_index(idx, abatch),
                      tb = op_check::broadcast_index(idx, bbatch);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        double acc = 0;
        for (std::size_t p = 0; p < k; ++p)
          acc += a.v[(ta * m + i) * k + p] * b.v[(tb * k + p) * n + j];
        r.v[(t * m + i) * n + j] = acc;
      }
  }
  return r;
}

void check_matmul(const std::string& what, const std::vector<std::vector<shape_type>>& cases) {
  op_check::check(
      what, [](const auto& x) { return grad::matmul(x[0], x[1]); },
      [](const std::vector<array>& in) { return matmul_ref(in[0], in[1]); }, cases);
}

} // namespace

TEST_CASE("1-d @ 1-d is the dot product (0-d result)") {
  check_matmul("vector @ vector", {{{4}, {4}}, {{1}, {1}}, {{7}, {7}}});
  const auto d = grad::matmul(grad::from<double>({1.0, 2.0, 3.0}), grad::from<double>({4.0, -5.0, 6.0}));
  CHECK(d.shape() == shape_type{});
  CHECK(d.item() == 1 * 4 - 2 * 5 + 3 * 6);
}

TEST_CASE("1-d @ 2-d and 2-d @ 1-d") {
  check_matmul("vector @ matrix", {{{3}, {3, 4}}, {{1}, {1, 5}}, {{4}, {4, 1}}});
  check_matmul("matrix @ vector", {{{3, 4}, {4}}, {{1, 4}, {4}}, {{5, 1}, {1}}});
  const auto v =
      grad::matmul(grad::from<double>({1.0, 2.0}), grad::from<double>({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}));
  CHECK(v.shape() == shape_type{3});
  CHECK(values(v) == std::vector<double>{9, 12, 15});
  const auto w = grad::matmul(grad::from<double>({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}),
                              grad::from<double>({1.0, 0.0, -1.0}));
  CHECK(w.shape() == shape_type{2});
  CHECK(values(w) == std::vector<double>{-2, -2});
}

TEST_CASE("2-d @ 2-d, including k = 1 and extents of 1") {
  check_matmul("matrix @ matrix", {{{3, 4}, {4, 5}},
                                   {{2, 1}, {1, 3}},
                                   {{1, 1}, {1, 1}},
                                   {{1, 4}, {4, 1}},
                                   {{5, 3}, {3, 1}},
                                   {{7, 6}, {6, 9}}});
  const auto c = grad::matmul(grad::from<double>({{1.0, 2.0}, {3.0, 4.0}}),
                              grad::from<double>({{5.0, 6.0}, {7.0, 8.0}}));
  CHECK(values(c) == std::vector<double>{19, 22, 43, 50});
}

TEST_CASE("batched: 3-d @ 3-d, 3-d @ 2-d, 2-d @ 3-d, with 1-d operands") {
  check_matmul("batched", {{{2, 3, 4}, {2, 4, 5}},
                           {{2, 3, 4}, {4, 5}},
                           {{3, 4}, {2, 4, 5}},
                           {{2, 3, 4}, {4}},
                           {{4}, {2, 4, 5}},
                           {{1, 3, 4}, {2, 4, 2}},
                           {{2, 1, 1}, {2, 1, 3}}});
}

TEST_CASE("broadcast batch dimensions: (2,1,3,4) @ (5,4,2) and more") {
  check_matmul("broadcast batch", {{{2, 1, 3, 4}, {5, 4, 2}},
                                   {{5, 4, 2}, {2, 1, 2, 3}},
                                   {{3, 1, 2, 2}, {1, 4, 2, 2}},
                                   {{1, 2, 3}, {4, 3, 1}}});
}

TEST_CASE("ragged medium sizes: values and both gradients against naive loops") {
  // Sizes that are not multiples of any register or cache block, so a blocked GEMM's edge paths run;
  // too large for gradcheck, so the gradients dA = W B^T and dB = A^T W of sum(A B * W) are computed
  // by plain loops here.
  op_check::options opt;
  opt.gradcheck = false;
  opt.float_rtol = opt.float_atol = 1e-4;
  op_check::check(
      "medium", [](const auto& x) { return grad::matmul(x[0], x[1]); },
      [](const std::vector<array>& in) { return matmul_ref(in[0], in[1]); },
      {{{37, 129}, {129, 70}}, {{3, 17, 33}, {33, 65}}}, {}, opt);

  const std::size_t m = 37, k = 129, n = 70;
  grad::generator gen(11);
  auto a = grad::randn<double>({m, k}, gen, {.requires_grad = true});
  auto b = grad::randn<double>({k, n}, gen, {.requires_grad = true});
  const auto w = grad::randn<double>({m, n}, gen);
  grad::sum(grad::matmul(a, b) * w).backward();
  double worst_a = 0, worst_b = 0;
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t p = 0; p < k; ++p) {
      double acc = 0;
      for (std::size_t j = 0; j < n; ++j)
        acc += w.data()[i * n + j] * b.data()[p * n + j];
      worst_a = std::max(worst_a, std::abs(acc - a.grad().data()[i * k + p]));
    }
  for (std::size_t p = 0; p < k; ++p)
    for (std::size_t j = 0; j < n; ++j) {
      double acc = 0;
      for (std::size_t i = 0; i < m; ++i)
        acc += a.data()[i * k + p] * w.data()[i * n + j];
      worst_b = std::max(worst_b, std::abs(acc - b.grad().data()[p * n + j]));
    }
  CHECK(worst_a < 1e-10);
  CHECK(worst_b < 1e-10);
}

TEST_CASE("k = 0 gives zeros, m = 0 an empty result") {
  const auto c = grad::matmul(grad::zeros<double>({3, 0}), grad::zeros<double>({0, 4}));
  CHECK(c.shape() == shape_type{3, 4});
  CHECK(values(c) == std::vector<double>(12, 0.0));
  CHECK(grad::matmul(grad::zeros<float>({0, 2}), grad::ones<float>({2, 3})).shape() == shape_type{0, 3});
}

TEST_CASE("gradients of a broadcast batch are summed into the smaller operand (hand-checked)") {
  // (3, 1, 2) @ (2, 1): y_t = a_t b; d sum(y)/db = sum_t a_t^T 1 = column sums of all rows of a
  auto a = grad::from<double>({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {3, 1, 2}, {.requires_grad = true});
  auto b = grad::from<double>({{1.0}, {-1.0}}, {.requires_grad = true});
  const auto y = grad::matmul(a, b);
  CHECK(y.shape() == shape_type{3, 1, 1});
  CHECK(values(y) == std::vector<double>{-1, -1, -1});
  grad::sum(y).backward();
  CHECK(values(b.grad()) == std::vector<double>{1 + 3 + 5, 2 + 4 + 6});
  CHECK(values(a.grad()) == std::vector<double>{1, -1, 1, -1, 1, -1});
}

TEST_CASE("matmul records 2 m n k FLOPs per batch entry") {
  auto a = grad::ones<float>({2, 3, 4}, {.requires_grad = true});
  auto b = grad::ones<float>({4, 5});
  auto c = grad::matmul(a, b);
  CHECK(grad::current_tape().nodes().back()->name == "matmul");
  CHECK(grad::current_tape().nodes().back()->flops == 2 * 2 * 3 * 4 * 5);
}

TEST_CASE("shape errors name matmul and both shapes") {
  using op_check::error_message;
  using op_check::mentions;
  const auto x = grad::zeros<float>({64, 784});
  const auto w = grad::zeros<float>({256, 10});
  CHECK(mentions(error_message<grad::shape_error>([&] { (void)grad::matmul(x, w); }),
                 {"matmul", "(64, 784)", "(256, 10)"}));
  const auto wt = grad::zeros<float>({10, 784}); // x @ wt^T was meant: the hint says so
  CHECK(mentions(error_message<grad::shape_error>([&] { (void)grad::matmul(x, wt); }),
                 {"matmul", "(64, 784)", "(10, 784)", "transpose the second"}));
  CHECK(mentions(error_message<grad::shape_error>(
                     [&] { (void)grad::matmul(grad::zeros<float>({3}), grad::zeros<float>({4})); }),
                 {"matmul", "(3,)", "(4,)"}));
  CHECK(mentions(error_message<grad::shape_error>(
                     [&] { (void)grad::matmul(grad::zeros<float>({}), grad::zeros<float>({4})); }),
                 {"matmul", "()", "(4,)"}));
  // batch dimensions that do not broadcast: the message shows both full operand shapes
  CHECK(mentions(error_message<grad::shape_error>([&] {
                   (void)grad::matmul(grad::zeros<float>({2, 3, 4}), grad::zeros<float>({3, 4, 5}));
                 }),
                 {"matmul", "(2, 3, 4)", "(3, 4, 5)"}));
}
