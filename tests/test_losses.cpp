// Tests of the losses (functional/loss.hpp, ops/loss.hpp): values against naive references for every
// reduction, gradcheck in double, the fused cross entropy against its composition (log_softmax built
// from exp/log/max/sum, then a product with the target distribution), and the error messages.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include <grad/core/index_tensor.hpp>
#include <grad/functional/loss.hpp>
#include <grad/grad.hpp>
#include <grad/ops/softmax.hpp>

#include "op_check.hpp"

using grad::index_tensor;
using grad::reduction;
using grad::shape_type;
using op_check::array;
using op_check::error_message;
using op_check::mentions;

namespace {

op_check::options loose() {
  op_check::options o;
  o.double_rtol = o.double_atol = 1e-10;
  o.float_rtol = o.float_atol = 2e-5;
  return o;
}

/// Reduces per-sample losses the way PyTorch does; `count` is the mean's divisor.
array reduce(const std::vector<double>& l, reduction r, double count) {
  if (r == reduction::none)
    return {{l.size()}, l};
  double s = 0;
  for (double v : l)
    s += v;
  return {{}, {r == reduction::sum ? s : s / count}};
}

array cross_entropy_ref(const array& x, const index_tensor& t, std::int64_t ignore, double eps, reduction r) {
  const std::size_t n = x.shape[0], c = x.shape[1];
  std::vector<double> l(n, 0.0);
  double count = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (t[i] == ignore)
      continue;
    ++count;
    double m = -INFINITY, s = 0, mean = 0;
    for (std::size_t j = 0; j < c; ++j)
      m = std::max(m, x.v[i * c + j]);
    for (std::size_t j = 0; j < c; ++j) {
      s += std::exp(x.v[i * c + j] - m);
      mean += x.v[i * c + j] / double(c);
    }
    const double lse = m + std::log(s);
    l[i] = (1 - eps) * (lse - x.v[i * c + std::size_t(t[i])]) + eps * (lse - mean);
  }
  return reduce(l, r, count);
}

constexpr reduction all_reductions[] = {reduction::none, reduction::mean, reduction::sum};

} // namespace

TEST_CASE("cross_entropy: every reduction, ignore_index, label_smoothing") {
  const index_tensor t{2, 0, 4, 1, 3};
  for (reduction r : all_reductions) {
    op_check::check(
        "cross_entropy", [=](const auto& x) { return grad::cross_entropy(x[0], t, {.reduction = r}); },
        [=](const std::vector<array>& in) { return cross_entropy_ref(in[0], t, -100, 0, r); }, {{{5, 5}}}, {},
        loose());
    op_check::check(
        "cross_entropy label_smoothing 0.2",
        [=](const auto& x) { return grad::cross_entropy(x[0], t, {.reduction = r, .label_smoothing = 0.2}); },
        [=](const std::vector<array>& in) { return cross_entropy_ref(in[0], t, -100, 0.2, r); }, {{{5, 5}}},
        {}, loose());
    op_check::check(
        "cross_entropy ignore_index 7 + smoothing",
        [=](const auto& x) {
          return grad::cross_entropy(x[0], index_tensor{2, 1, 4, 7, 3},
                                     {.reduction = r, .ignore_index = 7, .label_smoothing = 0.1});
        },
        [=](const std::vector<array>& in) {
          return cross_entropy_ref(in[0], index_tensor{2, 1, 4, 7, 3}, 7, 0.1, r);
        },
        {{{5, 5}}}, {}, loose());
    op_check::check(
        "cross_entropy default ignore_index -100",
        [=](const auto& x) {
          return grad::cross_entropy(x[0], index_tensor{2, -100, 4, 0, 3}, {.reduction = r});
        },
        [=](const std::vector<array>& in) {
          return cross_entropy_ref(in[0], index_tensor{2, -100, 4, 0, 3}, -100, 0, r);
        },
        {{{5, 5}}}, {}, loose());
  }
}

TEST_CASE(
    "fused cross_entropy equals log_softmax composed from exp, max, sum, log times the target distribution") {
  const index_tensor t{1, 3, -100, 0};
  const double eps = 0.15;
  const std::size_t n = 4, c = 6;
  grad::generator gen(2);
  const auto logits = grad::randn<double>({n, c}, gen);
  // q = (1 - eps) one_hot + eps / C on kept rows, 0 on ignored ones
  std::vector<double> q(n * c, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    if (t[i] != -100)
      for (std::size_t j = 0; j < c; ++j)
        q[i * c + j] = eps / double(c) + (j == std::size_t(t[i]) ? 1 - eps : 0.0);
  const auto qt = grad::from<double>(q, {n, c});
  for (reduction r : all_reductions) {
    auto a = grad::from<double>(logits.value(), {.requires_grad = true});
    auto b = grad::from<double>(logits.value(), {.requires_grad = true});
    const auto fused = grad::cross_entropy(a, t, {.reduction = r, .label_smoothing = eps});
    const auto s = b - grad::max(b, -1, true);
    const auto logp = s - grad::log(grad::sum(grad::exp(s), -1, true));
    const auto per_row = -grad::sum(logp * qt, -1);
    const auto composed = r == reduction::none  ? per_row
                          : r == reduction::sum ? grad::sum(per_row)
                                                : grad::sum(per_row) / 3.0;
    REQUIRE(fused.shape() == composed.shape());
    for (std::size_t i = 0; i < fused.numel(); ++i)
      CHECK(fused.data()[i] == doctest::Approx(composed.data()[i]).epsilon(1e-12));
    const auto w = grad::randn<double>(fused.shape(), gen);
    grad::sum(fused * w).backward({.retain_graph = true}); // both graphs share the tape
    grad::sum(composed * w).backward();
    for (std::size_t i = 0; i < a.numel(); ++i)
      CHECK(a.grad().data()[i] == doctest::Approx(b.grad().data()[i]).epsilon(1e-10));
  }
}

TEST_CASE("cross_entropy with every target ignored: mean is NaN, sum is 0 (as PyTorch)") {
  auto x = grad::randn<double>({2, 3}, {.requires_grad = true});
  CHECK(std::isnan(grad::cross_entropy(x, index_tensor{-100, -100}).item()));
  CHECK(grad::cross_entropy(x, index_tensor{-100, -100}, {.reduction = reduction::sum}).item() == 0.0);
  // large logits stay finite
  const auto big = grad::from<float>({{1000.f, 0.f}, {0.f, -1000.f}});
  CHECK(grad::cross_entropy(big, index_tensor{0, 0}).item() == doctest::Approx(0.0));
}

TEST_CASE("cross_entropy and nll_loss errors name the bad target and its position") {
  const auto x = grad::zeros<double>({3, 4});
  CHECK(mentions(error_message<grad::value_error>([&] {
                   (void)grad::cross_entropy(x, index_tensor{0, 4, 1});
                 }),
                 {"cross_entropy", "target 4", "position 1", "[0, 4)"}));
  CHECK(mentions(error_message<grad::value_error>([&] {
                   (void)grad::nll_loss(x, index_tensor{0, 1, -3});
                 }),
                 {"nll_loss", "target -3", "position 2"}));
  CHECK(mentions(error_message<grad::shape_error>([&] {
                   (void)grad::cross_entropy(x, index_tensor{0, 1});
                 }),
                 {"cross_entropy", "(2,)", "(3, 4)"}));
  CHECK(mentions(
      error_message<grad::shape_error>([&] {
        (void)grad::cross_entropy(grad::zeros<double>({2, 3, 4}), index_tensor{{0, 1, 2}, {0, 1, 2}});
      }),
      {"cross_entropy", "2-d", "(2, 3, 4)", "reshape"}));
  CHECK(mentions(error_message<grad::value_error>([&] {
                   (void)grad::cross_entropy(x, index_tensor{0, 1, 2}, {.label_smoothing = 1.5});
                 }),
                 {"cross_entropy", "label_smoothing"}));
}

TEST_CASE("nll_loss on log_softmax output equals cross_entropy") {
  const index_tensor t{3, -100, 0, 2};
  for (reduction r : all_reductions) {
    op_check::check(
        "nll_loss", [=](const auto& x) { return grad::nll_loss(x[0], t, {.reduction = r}); },
        [=](const std::vector<array>& in) {
          std::vector<double> l(4, 0.0);
          for (std::size_t i = 0; i < 4; ++i)
            if (t[i] != -100)
              l[i] = -in[0].v[i * 4 + std::size_t(t[i])];
          return reduce(l, r, 3);
        },
        {{{4, 4}}}, {}, loose());
    const auto x = grad::randn<double>({4, 4});
    const auto a = grad::nll_loss(grad::log_softmax(x), t, {.reduction = r});
    const auto b = grad::cross_entropy(x, t, {.reduction = r});
    for (std::size_t i = 0; i < a.numel(); ++i)
      CHECK(a.data()[i] == doctest::Approx(b.data()[i]).epsilon(1e-12));
  }
}

TEST_CASE("binary_cross_entropy on probabilities, both inputs differentiable") {
  const op_check::domain prob{[](grad::generator& g) { return g.uniform(0.05, 0.95); }};
  for (reduction r : all_reductions)
    op_check::check(
        "binary_cross_entropy",
        [=](const auto& x) { return grad::binary_cross_entropy(x[0], x[1], {.reduction = r}); },
        [=](const std::vector<array>& in) {
          std::vector<double> l(in[0].v.size());
          for (std::size_t i = 0; i < l.size(); ++i) {
            const double p = in[0].v[i], y = in[1].v[i];
            l[i] = -(y * std::log(p) + (1 - y) * std::log(1 - p));
          }
          array a = reduce(l, r, double(l.size()));
          if (r == reduction::none)
            a.shape = in[0].shape;
          return a;
        },
        {{{3, 4}, {3, 4}}, {{5}, {5}}}, {prob, prob}, loose());
}

TEST_CASE("binary_cross_entropy clamps log at -100 like PyTorch, and rejects non-probabilities") {
  const auto l =
      grad::binary_cross_entropy(grad::from<double>({0.0, 1.0, 0.0}), grad::from<double>({1.0, 0.0, 0.0}),
                                 {.reduction = reduction::none});
  CHECK(l.data()[0] == 100.0);
  CHECK(l.data()[1] == 100.0);
  CHECK(l.data()[2] == 0.0);
  CHECK(mentions(
      error_message<grad::value_error>([] {
        (void)grad::binary_cross_entropy(grad::from<double>({0.5, 1.5}), grad::from<double>({1.0, 0.0}));
      }),
      {"binary_cross_entropy", "1.5", "position 1"}));
  CHECK(
      mentions(error_message<grad::shape_error>([] {
                 (void)grad::binary_cross_entropy(grad::from<double>({0.5, 0.5}), grad::from<double>({1.0}));
               }),
               {"binary_cross_entropy", "(1,)", "(2,)"}));
}

TEST_CASE("binary_cross_entropy_with_logits: stable, equal to bce(sigmoid(x))") {
  const op_check::domain soft{[](grad::generator& g) { return g.uniform(0.0, 1.0); }};
  for (reduction r : all_reductions)
    op_check::check(
        "bce_with_logits",
        [=](const auto& x) { return grad::binary_cross_entropy_with_logits(x[0], x[1], {.reduction = r}); },
        [=](const std::vector<array>& in) {
          std::vector<double> l(in[0].v.size());
          for (std::size_t i = 0; i < l.size(); ++i) {
            const double x = in[0].v[i], y = in[1].v[i];
            const double s = 1 / (1 + std::exp(-x));
            l[i] = -(y * std::log(s) + (1 - y) * std::log(1 - s));
          }
          array a = reduce(l, r, double(l.size()));
          if (r == reduction::none)
            a.shape = in[0].shape;
          return a;
        },
        {{{3, 4}, {3, 4}}}, {op_check::normal(), soft}, loose());
  const auto big = grad::binary_cross_entropy_with_logits(grad::from<float>({1000.f, -1000.f, 1000.f}),
                                                          grad::from<float>({0.f, 1.f, 1.f}),
                                                          {.reduction = reduction::none});
  CHECK(big.data()[0] == doctest::Approx(1000.0));
  CHECK(big.data()[1] == doctest::Approx(1000.0));
  CHECK(big.data()[2] == doctest::Approx(0.0));
  const auto x = grad::randn<double>({6}), y = grad::rand<double>({6});
  CHECK(grad::binary_cross_entropy_with_logits(x, y).item() ==
        doctest::Approx(grad::binary_cross_entropy(grad::sigmoid(x), y).item()).epsilon(1e-12));
}

TEST_CASE("mse_loss, l1_loss, huber_loss, smooth_l1_loss with every reduction") {
  auto elementwise = [](auto f, reduction r) {
    return [=](const std::vector<array>& in) {
      std::vector<double> l(in[0].v.size());
      for (std::size_t i = 0; i < l.size(); ++i)
        l[i] = f(in[0].v[i] - in[1].v[i]);
      array a = reduce(l, r, double(l.size()));
      if (r == reduction::none)
        a.shape = in[0].shape;
      return a;
    };
  };
  const std::vector<std::vector<shape_type>> shapes{{{3, 4}, {3, 4}}, {{5}, {5}}};
  for (reduction r : all_reductions) {
    op_check::check(
        "mse_loss", [=](const auto& x) { return grad::mse_loss(x[0], x[1], {.reduction = r}); },
        elementwise([](double d) { return d * d; }, r), shapes, {}, loose());
    op_check::check(
        "l1_loss", [=](const auto& x) { return grad::l1_loss(x[0], x[1], {.reduction = r}); },
        elementwise([](double d) { return std::abs(d); }, r), shapes,
        {op_check::nonzero(), op_check::nonzero()}, loose());
    // delta 0.7 puts differences on both sides of the switch
    op_check::check(
        "huber_loss",
        [=](const auto& x) { return grad::huber_loss(x[0], x[1], {.reduction = r, .delta = 0.7}); },
        elementwise([](double d) { return std::abs(d) < 0.7 ? 0.5 * d * d : 0.7 * (std::abs(d) - 0.35); }, r),
        shapes, {}, loose());
    op_check::check(
        "smooth_l1_loss",
        [=](const auto& x) { return grad::smooth_l1_loss(x[0], x[1], {.reduction = r, .beta = 0.5}); },
        elementwise([](double d) { return std::abs(d) < 0.5 ? 0.5 * d * d / 0.5 : std::abs(d) - 0.25; }, r),
        shapes, {}, loose());
  }
}

TEST_CASE("regression loss errors") {
  const auto a = grad::zeros<double>({2, 3}), b = grad::zeros<double>({3, 2});
  CHECK(mentions(error_message<grad::shape_error>([&] { (void)grad::mse_loss(a, b); }),
                 {"mse_loss", "(2, 3)", "(3, 2)"}));
  CHECK(mentions(error_message<grad::shape_error>([&] { (void)grad::l1_loss(a, b); }), {"l1_loss"}));
  CHECK(mentions(error_message<grad::shape_error>([&] { (void)grad::huber_loss(a, b); }), {"huber_loss"}));
  CHECK(mentions(error_message<grad::value_error>([&] { (void)grad::huber_loss(a, a, {.delta = 0}); }),
                 {"huber_loss", "delta"}));
  CHECK(
      mentions(error_message<grad::shape_error>([&] { (void)grad::binary_cross_entropy_with_logits(a, b); }),
               {"binary_cross_entropy_with_logits", "(3, 2)"}));
}
