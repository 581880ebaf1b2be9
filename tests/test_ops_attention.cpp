// Tests of the fused causal self-attention op (ops/attention.hpp): values against a naive loop
// reference (op_check: float and double, gradcheck in double) and against the composition of existing
// ops (slice, reshape, permute, matmul, masking, softmax), attention dropout, FLOPs, and shape errors.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include <grad/grad.hpp>
#include <grad/ops/attention.hpp>
#include <grad/ops/softmax.hpp>

#include "op_check.hpp"

using grad::shape_type;
using op_check::array;
using op_check::error_message;
using op_check::mentions;

namespace {

/// Naive causal attention on qkv (B, T, 3C) with nh heads, written from the definition.
array attention_ref(const array& qkv, std::size_t nh) {
  const std::size_t b = qkv.shape[0], t = qkv.shape[1], c = qkv.shape[2] / 3, hs = c / nh;
  array y{{b, t, c}, std::vector<double>(b * t * c, 0.0)};
  auto at = [&](std::size_t bi, std::size_t ti, std::size_t part, std::size_t h, std::size_t e) {
    return qkv.v[(bi * t + ti) * 3 * c + part * c + h * hs + e];
  };
  for (std::size_t bi = 0; bi < b; ++bi)
    for (std::size_t h = 0; h < nh; ++h)
      for (std::size_t i = 0; i < t; ++i) {
        std::vector<double> s(i + 1);
        double m = -std::numeric_limits<double>::infinity();
        for (std::size_t j = 0; j <= i; ++j) {
          double dot = 0;
          for (std::size_t e = 0; e < hs; ++e)
            dot += at(bi, i, 0, h, e) * at(bi, j, 1, h, e);
          s[j] = dot / std::sqrt(static_cast<double>(hs));
          m = std::max(m, s[j]);
        }
        double z = 0;
        for (auto& x : s)
          z += (x = std::exp(x - m));
        for (std::size_t e = 0; e < hs; ++e) {
          double acc = 0;
          for (std::size_t j = 0; j <= i; ++j)
            acc += s[j] / z * at(bi, j, 2, h, e);
          y.v[(bi * t + i) * c + h * hs + e] = acc;
        }
      }
  return y;
}

/// The same attention composed from existing ops (the fused op's oracle, DESIGN.md section 4).
template <class T>
grad::basic_tensor<T> attention_composed(const grad::basic_tensor<T>& qkv, std::size_t nh) {
  const auto b = static_cast<std::int64_t>(qkv.size(0)), t = static_cast<std::int64_t>(qkv.size(1));
  const auto c = static_cast<std::int64_t>(qkv.size(2) / 3), hs = c / static_cast<std::int64_t>(nh);
  auto heads = [&](std::int64_t part) { // (B, T, C) -> (B, NH, T, HS)
    auto x = grad::slice(qkv, 2, part * c, (part + 1) * c);
    return grad::permute(grad::reshape(x, {b, t, static_cast<std::int64_t>(nh), hs}), {0, 2, 1, 3});
  };
  const auto q = heads(0), k = heads(1), v = heads(2);
  auto s = grad::matmul(q, grad::transpose(k)) * (1.0 / std::sqrt(static_cast<double>(hs))); // (B, NH, T, T)
  std::vector<T> mask(static_cast<std::size_t>(t * t), T(0));
  for (std::int64_t i = 0; i < t; ++i)
    for (std::int64_t j = i + 1; j < t; ++j)
      mask[static_cast<std::size_t>(i * t + j)] = -std::numeric_limits<T>::infinity();
  s = s + grad::from<T>(mask, shape_type{static_cast<std::size_t>(t), static_cast<std::size_t>(t)});
  auto y = grad::matmul(grad::softmax(s, -1), v);                  // (B, NH, T, HS)
  return grad::reshape(grad::permute(y, {0, 2, 1, 3}), {b, t, c}); // (B, T, C)
}

} // namespace

TEST_CASE("causal_attention: values vs a naive loop, gradcheck in double (T = 1, several B, T, NH)") {
  for (std::size_t nh : {1, 2, 3}) {
    const std::size_t c = 2 * nh;
    std::vector<std::vector<shape_type>> cases = {
        {{1, 1, 3 * c}}, {{2, 1, 3 * c}}, {{1, 3, 3 * c}}, {{2, 5, 3 * c}}, {{3, 4, 3 * c}}};
    if (nh == 2)
      cases.push_back({{1, 67, 3 * c}}); // more rows than one causal block (64)
    op_check::options o;
    o.double_rtol = o.double_atol = 1e-11;
    o.float_rtol = o.float_atol = 3e-5;
    op_check::check(
        "causal_attention nh=" + std::to_string(nh),
        [nh](const auto& x) { return grad::causal_attention(x[0], nh); },
        [nh](const std::vector<array>& in) { return attention_ref(in[0], nh); }, cases, {}, o);
  }
}

TEST_CASE("causal_attention equals its composition from matmul, mask and softmax (values and gradients)") {
  struct shape_case {
    std::size_t b, t, c, nh;
  };
  for (const auto& sc : {shape_case{1, 1, 4, 2}, shape_case{2, 7, 12, 3}, shape_case{2, 130, 16, 4},
                         shape_case{1, 64, 8, 1}, shape_case{3, 65, 8, 2}}) {
    INFO("B=", sc.b, " T=", sc.t, " C=", sc.c, " NH=", sc.nh);
    grad::generator gen(11);
    const auto base = grad::randn<double>({sc.b, sc.t, 3 * sc.c}, gen);
    auto x1 = grad::from<double>(base.value(), {.requires_grad = true});
    auto x2 = grad::from<double>(base.value(), {.requires_grad = true});
    const auto y1 = grad::causal_attention(x1, sc.nh);
    const auto y2 = attention_composed(x2, sc.nh);
    REQUIRE(y1.shape() == y2.shape());
    for (std::size_t i = 0; i < y1.numel(); ++i)
      REQUIRE(y1.data()[i] == doctest::Approx(y2.data()[i]).epsilon(1e-10));
    const auto w = grad::randn<double>(y1.shape(), gen);
    grad::sum(y1 * w).backward({.retain_graph = true});
    grad::sum(y2 * w).backward();
    for (std::size_t i = 0; i < x1.numel(); ++i)
      REQUIRE(x1.grad().data()[i] == doctest::Approx(x2.grad().data()[i]).epsilon(1e-9));
  }
}

TEST_CASE("causal_attention in float agrees with double on a GPT-sized block, 1 and 2 threads") {
  grad::generator gen(5);
  const auto xd = grad::randn<double>({2, 128, 3 * 64}, gen);
  const auto xf = grad::from<float>(xd.value());
  const auto yd = grad::causal_attention(xd, 4);
  for (int threads : {1, 2}) {
    grad::set_num_threads(threads);
    const auto yf = grad::causal_attention(xf, 4);
    double worst = 0;
    for (std::size_t i = 0; i < yd.numel(); ++i)
      worst = std::max(worst, std::abs(yd.data()[i] - static_cast<double>(yf.data()[i])));
    CHECK(worst < 1e-5);
  }
  grad::set_num_threads(0);
}

TEST_CASE("causal_attention: the output at position t does not depend on later positions") {
  grad::generator gen(2);
  auto x = grad::randn<double>({1, 6, 12}, gen);
  const auto y = grad::causal_attention(x, 2);
  auto x2 = grad::from<double>(x.value());
  for (std::size_t j = 0; j < 12; ++j) // change the last position's q, k and v
    x2.data()[5 * 12 + j] += 1.0;
  const auto y2 = grad::causal_attention(x2, 2);
  for (std::size_t i = 0; i < 5 * 4; ++i)
    CHECK(y.data()[i] == y2.data()[i]);
  bool last_changed = false;
  for (std::size_t i = 5 * 4; i < 6 * 4; ++i)
    last_changed = last_changed || y.data()[i] != y2.data()[i];
  CHECK(last_changed);
}

TEST_CASE(
    "causal_attention with attention dropout: identity when not training, gradcheck with a fixed mask") {
  grad::generator gen(9);
  const auto x = grad::randn<double>({2, 9, 18}, gen);
  grad::generator g1(1);
  const auto y_eval = grad::causal_attention(x, 3, 0.5, false, g1);
  const auto y_ref = grad::causal_attention(x, 3);
  for (std::size_t i = 0; i < y_ref.numel(); ++i)
    CHECK(y_eval.data()[i] == y_ref.data()[i]);

  // The same seed gives the same mask, so finite differences see one function.
  auto f = [](const std::vector<grad::dtensor>& in) {
    grad::generator g(42);
    return grad::causal_attention(in[0], 3, 0.3, true, g);
  };
  auto xg = grad::from<double>(x.value(), {.requires_grad = true});
  const auto r = grad::gradcheck(f, {xg});
  CHECK_MESSAGE(r.ok, r.message);

  // Dropout changes the result.
  const auto y_drop = f({x});
  bool differs = false;
  for (std::size_t i = 0; i < y_ref.numel(); ++i)
    differs = differs || y_drop.data()[i] != y_ref.data()[i];
  CHECK(differs);
}

TEST_CASE("causal_attention: FLOP count and recording on the tape") {
  auto x = grad::randn<float>({2, 8, 3 * 16}, grad::default_generator());
  x.requires_grad_();
  const std::size_t before = grad::current_tape().size();
  const auto y = grad::causal_attention(x, 4);
  CHECK(grad::current_tape().size() == before + 1);
  // per (b, h): T (T + 1) / 2 causal pairs, each 2 HS multiply-adds twice plus 5 for the softmax
  const grad::ops::causal_attention_op<float> op{4, 0.0, 0, {}, {}, {}};
  CHECK(op.flops({2, 8, 16}, {2, 8, 48}) == 2ull * 4 * (8 * 9 / 2) * (4 * 4 + 5));
  grad::sum(y).backward();
  CHECK(x.grad().shape() == x.shape());
}

TEST_CASE("causal_attention: shape errors name the op and the shapes") {
  const auto x2 = grad::zeros<float>({4, 12});
  CHECK(mentions(error_message<grad::shape_error>([&] { (void)grad::causal_attention(x2, 2); }),
                 {"causal_attention", "(4, 12)", "(B, T, 3C)"}));
  const auto x3 = grad::zeros<float>({1, 4, 10});
  CHECK(mentions(error_message<grad::shape_error>([&] { (void)grad::causal_attention(x3, 2); }),
                 {"causal_attention", "(1, 4, 10)"}));
  const auto x4 = grad::zeros<float>({1, 4, 12});
  CHECK(mentions(error_message<grad::shape_error>([&] { (void)grad::causal_attention(x4, 3); }),
                 {"causal_attention", "n_head = 3", "C = 4"}));
  CHECK(mentions(error_message<grad::value_error>([&] { (void)grad::causal_attention(x4, 0); }),
                 {"causal_attention", "n_head"}));
  grad::generator g(1);
  CHECK(mentions(error_message<grad::value_error>([&] { (void)grad::causal_attention(x4, 2, 1.0, true, g); }),
                 {"causal_attention", "dropout"}));
}
