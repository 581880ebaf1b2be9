// Tests of the neural-network ops: softmax/log_softmax, activations, linear, conv2d, pooling, embedding,
// layer_norm, batch_norm, dropout. Each op is checked against a naive loop reference (op_check: values in
// float and double, gradcheck in double), fused ops also against their composition from existing ops,
// and every shape rule against its error message.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <grad/core/index_tensor.hpp>
#include <grad/functional/activation.hpp>
#include <grad/grad.hpp>
#include <grad/ops/activation.hpp>
#include <grad/ops/conv.hpp>
#include <grad/ops/dropout.hpp>
#include <grad/ops/embedding.hpp>
#include <grad/ops/linear.hpp>
#include <grad/ops/norm.hpp>
#include <grad/ops/pool.hpp>
#include <grad/ops/softmax.hpp>

#include "op_check.hpp"

using grad::shape_type;
using op_check::array;
using op_check::error_message;
using op_check::mentions;

namespace {

/// Applies f to every line of `a` along `axis` (f maps a std::vector<double> to one of the same size).
template <class F>
array along_axis(const array& a, std::size_t axis, F f) {
  array r{a.shape, a.v};
  std::size_t outer = 1, inner = 1;
  for (std::size_t d = 0; d < axis; ++d)
    outer *= a.shape[d];
  for (std::size_t d = axis + 1; d < a.shape.size(); ++d)
    inner *= a.shape[d];
  const std::size_t n = a.shape[axis];
  for (std::size_t o = 0; o < outer; ++o)
    for (std::size_t i = 0; i < inner; ++i) {
      std::vector<double> line(n);
      for (std::size_t j = 0; j < n; ++j)
        line[j] = a.v[(o * n + j) * inner + i];
      line = f(line);
      for (std::size_t j = 0; j < n; ++j)
        r.v[(o * n + j) * inner + i] = line[j];
    }
  return r;
}

std::vector<double> softmax_line(std::vector<double> v, bool log) {
  double m = -INFINITY, s = 0;
  for (double x : v)
    m = std::max(m, x);
  for (double x : v)
    s += std::exp(x - m);
  for (double& x : v)
    x = log ? x - m - std::log(s) : std::exp(x - m) / s;
  return v;
}

/// Values and projected gradients of two functions of the same inputs agree (fused vs composed).
template <class F, class G>
void same_as_composed(F fused, G composed, std::vector<shape_type> shapes, double tol = 1e-10) {
  grad::generator gen(3);
  std::vector<grad::dtensor> a, b;
  for (auto& s : shapes) {
    auto t = grad::randn<double>(s, gen);
    a.push_back(grad::from<double>(t.value(), {.requires_grad = true}));
    b.push_back(grad::from<double>(t.value(), {.requires_grad = true}));
  }
  const auto ya = fused(a), yb = composed(b);
  REQUIRE(ya.shape() == yb.shape());
  for (std::size_t i = 0; i < ya.numel(); ++i)
    CHECK(ya.data()[i] == doctest::Approx(yb.data()[i]).epsilon(tol));
  const auto w = grad::randn<double>(ya.shape(), gen);
  // one tape holds both graphs: the first backward must keep it for the second
  grad::sum(ya * w).backward({.retain_graph = true});
  grad::sum(yb * w).backward();
  for (std::size_t k = 0; k < a.size(); ++k)
    for (std::size_t i = 0; i < a[k].numel(); ++i)
      CHECK(a[k].grad().data()[i] == doctest::Approx(b[k].grad().data()[i]).epsilon(tol));
}

op_check::options loose() {
  op_check::options o;
  o.double_rtol = o.double_atol = 1e-10;
  o.float_rtol = o.float_atol = 2e-5;
  return o;
}

} // namespace

// ------------------------------------------------------------------------------------------------
// softmax, log_softmax

TEST_CASE("softmax and log_softmax along every axis") {
  for (bool log : {false, true})
    for (std::int64_t axis : {-1, 0, 1}) {
      const std::vector<std::vector<shape_type>> cases =
          axis == 1 ? std::vector<std::vector<shape_type>>{{{3, 4}}, {{2, 3, 4}}, {{2, 1, 3}}}
                    : std::vector<std::vector<shape_type>>{{{5}}, {{3, 4}}, {{2, 3, 4}}, {{1, 1}}};
      op_check::check(
          log ? "log_softmax" : "softmax",
          [=](const auto& x) { return log ? grad::log_softmax(x[0], axis) : grad::softmax(x[0], axis); },
          [=](const std::vector<array>& in) {
            const auto ax = static_cast<std::size_t>(
                axis < 0 ? axis + static_cast<std::int64_t>(in[0].shape.size()) : axis);
            return along_axis(in[0], ax,
                              [=](std::vector<double> v) { return softmax_line(std::move(v), log); });
          },
          cases, {}, loose());
    }
}

TEST_CASE("softmax and log_softmax equal their composition from exp, max, sum, log") {
  for (std::int64_t axis : {-1, 0, 1}) {
    auto composed_softmax = [axis](const auto& x) {
      const auto e = grad::exp(x[0] - grad::max(x[0], axis, true));
      return e / grad::sum(e, axis, true);
    };
    auto composed_log_softmax = [axis](const auto& x) {
      const auto s = x[0] - grad::max(x[0], axis, true);
      return s - grad::log(grad::sum(grad::exp(s), axis, true));
    };
    same_as_composed([axis](const auto& x) { return grad::softmax(x[0], axis); }, composed_softmax,
                     {{3, 4, 5}});
    same_as_composed([axis](const auto& x) { return grad::log_softmax(x[0], axis); }, composed_log_softmax,
                     {{3, 4, 5}});
  }
}

TEST_CASE("softmax is stable for large logits and rows of -inf") {
  const auto y = grad::softmax(grad::from<float>({1000.f, 1000.f, -1000.f}));
  CHECK(y.data()[0] == doctest::Approx(0.5));
  CHECK(y.data()[2] == 0.f);
  const auto l = grad::log_softmax(grad::from<double>({1000.0, 0.0}));
  CHECK(l.data()[0] == doctest::Approx(0.0));
  CHECK(l.data()[1] == doctest::Approx(-1000.0));
  const float inf = std::numeric_limits<float>::infinity();
  const auto z = grad::softmax(grad::from<float>({-inf, 0.f}));
  CHECK(z.data()[0] == 0.f);
  CHECK(z.data()[1] == 1.f);
}

TEST_CASE("softmax errors") {
  CHECK(mentions(error_message<grad::shape_error>([] { (void)grad::softmax(grad::scalar_tensor(1.0)); }),
                 {"softmax", "0-d"}));
  CHECK(mentions(error_message<grad::value_error>([] {
                   (void)grad::log_softmax(grad::zeros<double>({2, 3}), 2);
                 }),
                 {"log_softmax", "axis 2"}));
}

// ------------------------------------------------------------------------------------------------
// activations

TEST_CASE("gelu (erf and tanh), leaky_relu, silu") {
  const auto shapes = op_check::unary_shapes();
  op_check::check(
      "gelu", [](const auto& x) { return grad::gelu(x[0]); },
      [](const std::vector<array>& in) {
        return op_check::map(in[0], [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); });
      },
      shapes, {}, loose());
  op_check::check(
      "gelu tanh", [](const auto& x) { return grad::gelu(x[0], grad::gelu_approximate::tanh); },
      [](const std::vector<array>& in) {
        return op_check::map(in[0], [](double v) {
          return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
        });
      },
      shapes, {}, loose());
  op_check::check(
      "leaky_relu", [](const auto& x) { return grad::leaky_relu(x[0], 0.2); },
      [](const std::vector<array>& in) {
        return op_check::map(in[0], [](double v) { return v > 0 ? v : 0.2 * v; });
      },
      shapes, {op_check::nonzero()}, loose());
  op_check::check(
      "silu", [](const auto& x) { return grad::silu(x[0]); },
      [](const std::vector<array>& in) {
        return op_check::map(in[0], [](double v) { return v / (1 + std::exp(-v)); });
      },
      shapes, {}, loose());
}

TEST_CASE("fused gelu (tanh) and silu equal their compositions") {
  same_as_composed([](const auto& x) { return grad::gelu(x[0], grad::gelu_approximate::tanh); },
                   [](const auto& x) {
                     const auto& v = x[0];
                     return v * 0.5 * (grad::tanh((v + v * v * v * 0.044715) * std::sqrt(2 / M_PI)) + 1.0);
                   },
                   {{4, 5}});
  same_as_composed([](const auto& x) { return grad::silu(x[0]); },
                   [](const auto& x) { return x[0] * grad::sigmoid(x[0]); }, {{4, 5}});
  // leaky_relu at 0 passes slope * g, as PyTorch
  auto z = grad::from<double>({0.0, -1.0, 2.0}, {.requires_grad = true});
  grad::sum(grad::leaky_relu(z, 0.1)).backward();
  CHECK(z.grad().data()[0] == doctest::Approx(0.1));
  CHECK(z.grad().data()[1] == doctest::Approx(0.1));
  CHECK(z.grad().data()[2] == doctest::Approx(1.0));
}

TEST_CASE("composed activations of functional/activation.hpp: relu6, softplus, mish, elu") {
  const auto shapes = op_check::unary_shapes();
  auto softplus = [](double v) { return std::log1p(std::exp(v)); };
  op_check::check(
      "relu6", [](const auto& x) { return grad::relu6(x[0]); },
      [](const std::vector<array>& in) {
        return op_check::map(in[0], [](double v) { return std::clamp(v, 0.0, 6.0); });
      },
      shapes, {op_check::away_from({0.0, 6.0}, -3, 8)}, loose());
  op_check::check(
      "softplus", [](const auto& x) { return grad::softplus(x[0]); },
      [=](const std::vector<array>& in) { return op_check::map(in[0], softplus); }, shapes,
      {op_check::nonzero()}, loose());
  op_check::check(
      "mish", [](const auto& x) { return grad::mish(x[0]); },
      [=](const std::vector<array>& in) {
        return op_check::map(in[0], [=](double v) { return v * std::tanh(softplus(v)); });
      },
      shapes, {op_check::nonzero()}, loose());
  op_check::check(
      "elu", [](const auto& x) { return grad::elu(x[0], 0.5); },
      [](const std::vector<array>& in) {
        return op_check::map(in[0], [](double v) { return v > 0 ? v : 0.5 * (std::exp(v) - 1); });
      },
      shapes, {op_check::nonzero()}, loose());
  CHECK(grad::softplus(grad::from<float>({100.f})).item() == doctest::Approx(100.0));
}

// ------------------------------------------------------------------------------------------------
// linear

array linear_ref(const std::vector<array>& in) {
  const array& x = in[0];
  const array& w = in[1];
  const std::size_t k = w.shape[1], n = w.shape[0], m = x.v.size() / k;
  array y{x.shape, std::vector<double>(m * n)};
  y.shape.back() = n;
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double acc = in.size() > 2 ? in[2].v[j] : 0.0;
      for (std::size_t p = 0; p < k; ++p)
        acc += x.v[i * k + p] * w.v[j * k + p];
      y.v[i * n + j] = acc;
    }
  return y;
}

TEST_CASE("linear with 1-d, 2-d and 3-d input, with and without bias") {
  op_check::check(
      "linear + bias", [](const auto& x) { return grad::linear(x[0], x[1], x[2]); }, linear_ref,
      {{{2, 3, 4}, {5, 4}, {5}}, {{3, 4}, {2, 4}, {2}}, {{4}, {3, 4}, {3}}, {{1, 1}, {1, 1}, {1}}}, {},
      loose());
  op_check::check(
      "linear", [](const auto& x) { return grad::linear(x[0], x[1]); }, linear_ref,
      {{{2, 3, 4}, {5, 4}}, {{3, 4}, {2, 4}}}, {}, loose());
}

TEST_CASE("fused linear equals matmul(x, W^T) + b") {
  same_as_composed([](const auto& x) { return grad::linear(x[0], x[1], x[2]); },
                   [](const auto& x) { return grad::matmul(x[0], grad::transpose(x[1])) + x[2]; },
                   {{2, 3, 4}, {5, 4}, {5}});
  const auto y = grad::linear(grad::ones<double>({2, 3}), grad::ones<double>({4, 3}), grad::dtensor{});
  CHECK(y.shape() == shape_type{2, 4});
  CHECK(y.data()[0] == 3.0);
}

TEST_CASE("linear errors") {
  const auto x = grad::zeros<double>({2, 3});
  CHECK(mentions(error_message<grad::shape_error>([&] { (void)grad::linear(x, grad::zeros<double>({3})); }),
                 {"linear", "2-d", "(3,)"}));
  CHECK(mentions(error_message<grad::shape_error>([&] {
                   (void)grad::linear(x, grad::zeros<double>({4, 5}));
                 }),
                 {"linear", "(2, 3)", "(4, 5)"}));
  CHECK(mentions(error_message<grad::shape_error>([&] {
                   (void)grad::linear(x, grad::zeros<double>({4, 3}), grad::zeros<double>({3}));
                 }),
                 {"linear", "bias", "(3,)", "(4,)"}));
}

// ------------------------------------------------------------------------------------------------
// conv2d

struct conv_cfg {
  std::size_t sh, sw, ph, pw, dh, dw;
};

array conv_ref(const std::vector<array>& in, conv_cfg c) {
  const array& x = in[0];
  const array& w = in[1];
  const std::size_t n = x.shape[0], ch = x.shape[1], h = x.shape[2], wd = x.shape[3];
  const std::size_t o = w.shape[0], kh = w.shape[2], kw = w.shape[3];
  const std::size_t oh = (h + 2 * c.ph - c.dh * (kh - 1) - 1) / c.sh + 1;
  const std::size_t ow = (wd + 2 * c.pw - c.dw * (kw - 1) - 1) / c.sw + 1;
  array y{{n, o, oh, ow}, std::vector<double>(n * o * oh * ow)};
  for (std::size_t b = 0; b < n; ++b)
    for (std::size_t f = 0; f < o; ++f)
      for (std::size_t i = 0; i < oh; ++i)
        for (std::size_t j = 0; j < ow; ++j) {
          double acc = in.size() > 2 ? in[2].v[f] : 0.0;
          for (std::size_t q = 0; q < ch; ++q)
            for (std::size_t a = 0; a < kh; ++a)
              for (std::size_t e = 0; e < kw; ++e) {
                const long iy = long(i * c.sh + a * c.dh) - long(c.ph),
                           ix = long(j * c.sw + e * c.dw) - long(c.pw);
                if (iy < 0 || ix < 0 || iy >= long(h) || ix >= long(wd))
                  continue;
                acc += x.v[((b * ch + q) * h + std::size_t(iy)) * wd + std::size_t(ix)] *
                       w.v[((f * ch + q) * kh + a) * kw + e];
              }
          y.v[((b * o + f) * oh + i) * ow + j] = acc;
        }
  return y;
}

TEST_CASE("conv2d: stride, padding, dilation, non-square, with and without bias") {
  const conv_cfg c1{2, 1, 1, 2, 2, 1}; // stride (2, 1), padding (1, 2), dilation (2, 1)
  op_check::check(
      "conv2d s(2,1) p(1,2) d(2,1)",
      [c1](const auto& x) {
        return grad::conv2d(
            x[0], x[1], x[2],
            {.stride = {c1.sh, c1.sw}, .padding = {c1.ph, c1.pw}, .dilation = {c1.dh, c1.dw}});
      },
      [c1](const std::vector<array>& in) { return conv_ref(in, c1); }, {{{2, 3, 7, 6}, {4, 3, 3, 2}, {4}}},
      {}, loose());
  const conv_cfg c2{2, 2, 1, 1, 2, 2};
  op_check::check(
      "conv2d stride 2 padding 1 dilation 2",
      [c2](const auto& x) {
        return grad::conv2d(x[0], x[1], {.stride = c2.sh, .padding = c2.ph, .dilation = c2.dh});
      },
      [c2](const std::vector<array>& in) { return conv_ref(in, c2); }, {{{1, 2, 6, 7}, {3, 2, 2, 3}}}, {},
      loose());
  const conv_cfg c3{1, 1, 0, 0, 1, 1};
  op_check::check(
      "conv2d plain", [](const auto& x) { return grad::conv2d(x[0], x[1], x[2]); },
      [c3](const std::vector<array>& in) { return conv_ref(in, c3); },
      {{{2, 1, 4, 5}, {2, 1, 3, 3}, {2}}, {{1, 2, 3, 3}, {1, 2, 1, 1}, {1}}}, {}, loose());
}

TEST_CASE("conv2d errors") {
  const auto x = grad::zeros<double>({1, 3, 5, 5});
  const auto w = grad::zeros<double>({2, 3, 3, 3});
  CHECK(mentions(error_message<grad::shape_error>([&] {
                   (void)grad::conv2d(grad::zeros<double>({3, 5, 5}), w);
                 }),
                 {"conv2d", "4-d", "(3, 5, 5)"}));
  CHECK(mentions(error_message<grad::shape_error>([&] {
                   (void)grad::conv2d(x, grad::zeros<double>({2, 4, 3, 3}));
                 }),
                 {"conv2d", "(1, 3, 5, 5)", "(2, 4, 3, 3)", "channels"}));
  CHECK(mentions(error_message<grad::shape_error>([&] {
                   (void)grad::conv2d(x, grad::zeros<double>({2, 3, 7, 1}));
                 }),
                 {"conv2d", "smaller than the kernel"}));
  CHECK(
      mentions(error_message<grad::shape_error>([&] { (void)grad::conv2d(x, w, grad::zeros<double>({3})); }),
               {"conv2d", "bias", "(3,)"}));
  CHECK(mentions(error_message<grad::value_error>([&] { (void)grad::conv2d(x, w, {.stride = 0}); }),
                 {"conv2d", "stride"}));
}

// ------------------------------------------------------------------------------------------------
// pooling

array pool_ref(const array& x, std::size_t k, std::size_t s, std::size_t p, std::size_t d, bool is_max,
               bool include_pad) {
  const std::size_t n = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3];
  const std::size_t oh = (h + 2 * p - d * (k - 1) - 1) / s + 1, ow = (w + 2 * p - d * (k - 1) - 1) / s + 1;
  array y{{x.shape[0], x.shape[1], oh, ow}, std::vector<double>(n * oh * ow)};
  for (std::size_t b = 0; b < n; ++b)
    for (std::size_t i = 0; i < oh; ++i)
      for (std::size_t j = 0; j < ow; ++j) {
        double acc = is_max ? -INFINITY : 0.0;
        std::size_t count = 0;
        for (std::size_t a = 0; a < k; ++a)
          for (std::size_t e = 0; e < k; ++e) {
            const long iy = long(i * s + a * d) - long(p), ix = long(j * s + e * d) - long(p);
            if (iy < 0 || ix < 0 || iy >= long(h) || ix >= long(w))
              continue;
            const double v = x.v[(b * h + std::size_t(iy)) * w + std::size_t(ix)];
            acc = is_max ? std::max(acc, v) : acc + v;
            ++count;
          }
        if (!is_max) {
          const std::size_t y0 = i * s, x0 = j * s;
          const std::size_t full = (std::min(y0 + k, h + 2 * p) - y0) * (std::min(x0 + k, w + 2 * p) - x0);
          acc /= double(include_pad ? full : count);
        }
        y.v[(b * oh + i) * ow + j] = acc;
      }
  return y;
}

TEST_CASE("max_pool2d against a naive reference (distinct values: no ties)") {
  op_check::check(
      "max_pool2d k2", [](const auto& x) { return grad::max_pool2d(x[0], 2); },
      [](const std::vector<array>& in) { return pool_ref(in[0], 2, 2, 0, 1, true, true); }, {{{2, 2, 4, 5}}},
      {op_check::distinct()});
  op_check::check(
      "max_pool2d k3 s2 p1",
      [](const auto& x) { return grad::max_pool2d(x[0], 3, {.stride = 2, .padding = 1}); },
      [](const std::vector<array>& in) { return pool_ref(in[0], 3, 2, 1, 1, true, true); }, {{{1, 3, 5, 6}}},
      {op_check::distinct()});
  op_check::check(
      "max_pool2d k2 s1 d2",
      [](const auto& x) { return grad::max_pool2d(x[0], 2, {.stride = 1, .dilation = 2}); },
      [](const std::vector<array>& in) { return pool_ref(in[0], 2, 1, 0, 2, true, true); }, {{{1, 2, 5, 5}}},
      {op_check::distinct()});
}

TEST_CASE("avg_pool2d with and without counting the padding") {
  op_check::check(
      "avg_pool2d k2", [](const auto& x) { return grad::avg_pool2d(x[0], 2); },
      [](const std::vector<array>& in) { return pool_ref(in[0], 2, 2, 0, 1, false, true); }, {{{2, 2, 4, 5}}},
      {}, loose());
  op_check::check(
      "avg_pool2d k3 s2 p1",
      [](const auto& x) { return grad::avg_pool2d(x[0], 3, {.stride = 2, .padding = 1}); },
      [](const std::vector<array>& in) { return pool_ref(in[0], 3, 2, 1, 1, false, true); }, {{{1, 2, 5, 6}}},
      {}, loose());
  op_check::check(
      "avg_pool2d k3 s2 p1 exclude pad",
      [](const auto& x) {
        return grad::avg_pool2d(x[0], 3, {.stride = 2, .padding = 1, .count_include_pad = false});
      },
      [](const std::vector<array>& in) { return pool_ref(in[0], 3, 2, 1, 1, false, false); },
      {{{1, 2, 5, 6}}}, {}, loose());
}

TEST_CASE("pooling errors") {
  const auto x = grad::zeros<double>({1, 1, 4, 4});
  CHECK(mentions(error_message<grad::value_error>([&] { (void)grad::max_pool2d(x, 2, {.padding = 2}); }),
                 {"max_pool2d", "padding", "half"}));
  CHECK(mentions(error_message<grad::shape_error>([&] {
                   (void)grad::avg_pool2d(grad::zeros<double>({4, 4}), 2);
                 }),
                 {"avg_pool2d", "4-d", "(4, 4)"}));
  CHECK(mentions(error_message<grad::shape_error>([&] { (void)grad::max_pool2d(x, 5); }),
                 {"max_pool2d", "smaller than the kernel"}));
  CHECK(mentions(error_message<grad::value_error>([&] { (void)grad::max_pool2d(x, 0); }),
                 {"max_pool2d", "kernel"}));
}

// ------------------------------------------------------------------------------------------------
// embedding

TEST_CASE("embedding gathers rows; repeated ids accumulate their gradients") {
  const grad::index_tensor ids{{1, 3, 1}, {0, 1, 2}};
  op_check::check(
      "embedding", [ids](const auto& x) { return grad::embedding(ids, x[0]); },
      [ids](const std::vector<array>& in) {
        const std::size_t c = in[0].shape[1];
        array y{{2, 3, c}, {}};
        for (std::size_t i = 0; i < ids.numel(); ++i)
          for (std::size_t j = 0; j < c; ++j)
            y.v.push_back(in[0].v[std::size_t(ids[i]) * c + j]);
        return y;
      },
      {{{4, 5}}});
  auto w = grad::zeros<double>({4, 2}, {.requires_grad = true});
  grad::sum(grad::embedding(ids, w)).backward();
  CHECK(op_check::values(w.grad()) == std::vector<double>{1, 1, 3, 3, 1, 1, 1, 1}); // id 1 three times
}

TEST_CASE("embedding errors name the bad id and its position") {
  const auto w = grad::zeros<double>({4, 2});
  CHECK(mentions(error_message<grad::value_error>([&] {
                   (void)grad::embedding(grad::index_tensor{0, 4}, w);
                 }),
                 {"embedding", "index 4", "position 1", "[0, 4)"}));
  CHECK(mentions(error_message<grad::value_error>([&] {
                   (void)grad::embedding(grad::index_tensor{{0, 1}, {-1, 2}}, w);
                 }),
                 {"embedding", "-1", "position 2"}));
  CHECK(mentions(error_message<grad::shape_error>(
                     [&] { (void)grad::embedding(grad::index_tensor{0}, grad::zeros<double>({4})); }),
                 {"embedding", "2-d", "(4,)"}));
}

TEST_CASE("index_tensor") {
  const grad::index_tensor a{{1, 2, 3}, {4, 5, 6}};
  CHECK(a.shape() == shape_type{2, 3});
  CHECK(a.reshape({-1}).shape() == shape_type{6});
  CHECK(a.flatten()[4] == 5);
  CHECK(grad::index_tensor({1, 2, 3, 4}, {2, 2}).shape() == shape_type{2, 2});
  CHECK(grad::index_tensor::from(grad::from<float>({2.f, 0.f})) == grad::index_tensor{2, 0});
  CHECK(a.to_tensor<double>().data()[5] == 6.0);
  CHECK_THROWS_AS(grad::index_tensor({1, 2, 3}, {2, 2}), grad::shape_error);
  CHECK_THROWS_AS(grad::index_tensor::from(grad::from<float>({0.5f})), grad::value_error);
  CHECK_THROWS_AS((void)a.reshape({4, -1}), grad::shape_error);
}

// ------------------------------------------------------------------------------------------------
// layer_norm

array layer_norm_ref(const std::vector<array>& in, std::size_t d, double eps = 1e-5) {
  array y = in[0];
  for (std::size_t r = 0; r < y.v.size() / d; ++r) {
    double m = 0, v = 0;
    for (std::size_t j = 0; j < d; ++j)
      m += in[0].v[r * d + j] / double(d);
    for (std::size_t j = 0; j < d; ++j)
      v += (in[0].v[r * d + j] - m) * (in[0].v[r * d + j] - m) / double(d);
    for (std::size_t j = 0; j < d; ++j) {
      double z = (in[0].v[r * d + j] - m) / std::sqrt(v + eps);
      if (in.size() > 1)
        z *= in[1].v[j];
      if (in.size() > 2)
        z += in[2].v[j];
      y.v[r * d + j] = z;
    }
  }
  return y;
}

TEST_CASE("layer_norm over the last one and two dimensions, with and without affine") {
  op_check::check(
      "layer_norm (C)", [](const auto& x) { return grad::layer_norm(x[0], {5}, x[1], x[2]); },
      [](const std::vector<array>& in) { return layer_norm_ref(in, 5); },
      {{{2, 3, 5}, {5}, {5}}, {{4, 5}, {5}, {5}}}, {}, loose());
  op_check::check(
      "layer_norm (3, 4)",
      [](const auto& x) {
        return grad::layer_norm(x[0], {3, 4}, x[1]);
      },
      [](const std::vector<array>& in) { return layer_norm_ref(in, 12); }, {{{2, 3, 4}, {3, 4}}}, {},
      loose());
  op_check::check(
      "layer_norm no affine", [](const auto& x) { return grad::layer_norm(x[0], {6}); },
      [](const std::vector<array>& in) { return layer_norm_ref(in, 6); }, {{{3, 6}}}, {}, loose());
}

TEST_CASE("fused layer_norm equals its composition") {
  same_as_composed([](const auto& x) { return grad::layer_norm(x[0], {6}, x[1], x[2]); },
                   [](const auto& x) {
                     const auto m = grad::mean(x[0], -1, true);
                     const auto c = x[0] - m;
                     const auto v = grad::mean(c * c, -1, true);
                     return c / grad::sqrt(v + 1e-5) * x[1] + x[2];
                   },
                   {{3, 4, 6}, {6}, {6}}, 1e-9);
}

TEST_CASE("layer_norm errors") {
  const auto x = grad::zeros<double>({2, 3});
  CHECK(mentions(error_message<grad::shape_error>([&] { (void)grad::layer_norm(x, {4}); }),
                 {"layer_norm", "(2, 3)", "(4,)"}));
  CHECK(mentions(
      error_message<grad::shape_error>([&] { (void)grad::layer_norm(x, {3}, grad::ones<double>({2})); }),
      {"layer_norm", "weight", "(2,)", "(3,)"}));
  CHECK(mentions(error_message<grad::shape_error>([&] {
                   (void)grad::layer_norm(x, {3}, grad::ones<double>({3}), grad::ones<double>({1}));
                 }),
                 {"layer_norm", "bias", "(1,)"}));
}

// ------------------------------------------------------------------------------------------------
// batch_norm

array batch_norm_ref(const std::vector<array>& in, double eps = 1e-5) {
  const array& x = in[0];
  const std::size_t n = x.shape[0], c = x.shape[1], s = x.v.size() / (n * c);
  array y = x;
  for (std::size_t k = 0; k < c; ++k) {
    double m = 0, v = 0;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t p = 0; p < s; ++p)
        m += x.v[(i * c + k) * s + p] / double(n * s);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t p = 0; p < s; ++p)
        v += std::pow(x.v[(i * c + k) * s + p] - m, 2) / double(n * s);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t p = 0; p < s; ++p) {
        double z = (x.v[(i * c + k) * s + p] - m) / std::sqrt(v + eps);
        if (in.size() > 1)
          z = z * in[1].v[k] + in[2].v[k];
        y.v[(i * c + k) * s + p] = z;
      }
  }
  return y;
}

TEST_CASE("batch_norm in training mode: batch statistics, gradients through them") {
  op_check::check(
      "batch_norm train",
      [](const auto& x) {
        using T = typename std::decay_t<decltype(x[0])>::value_type;
        return grad::batch_norm(x[0], grad::basic_tensor<T>{}, grad::basic_tensor<T>{}, x[1], x[2]);
      },
      [](const std::vector<array>& in) { return batch_norm_ref(in); },
      {{{4, 3}, {3}, {3}}, {{2, 3, 5}, {3}, {3}}, {{2, 2, 3, 2}, {2}, {2}}}, {}, loose());
  op_check::check(
      "batch_norm train no affine",
      [](const auto& x) {
        using T = typename std::decay_t<decltype(x[0])>::value_type;
        return grad::batch_norm(x[0], grad::basic_tensor<T>{}, grad::basic_tensor<T>{});
      },
      [](const std::vector<array>& in) { return batch_norm_ref(in); }, {{{3, 2, 4}}}, {}, loose());
}

TEST_CASE("batch_norm updates running statistics in training and uses them in evaluation") {
  auto rm = grad::zeros<double>({2}), rv = grad::ones<double>({2});
  const auto x = grad::from<double>({{1.0, 10.0}, {3.0, 20.0}, {5.0, 30.0}});
  (void)grad::batch_norm(x, rm, rv, {}, {}, {.training = true, .momentum = 0.1});
  CHECK(rm.data()[0] == doctest::Approx(0.1 * 3.0));
  CHECK(rm.data()[1] == doctest::Approx(0.1 * 20.0));
  CHECK(rv.data()[0] == doctest::Approx(0.9 + 0.1 * 4.0));   // unbiased variance of 1, 3, 5 is 4
  CHECK(rv.data()[1] == doctest::Approx(0.9 + 0.1 * 100.0)); // of 10, 20, 30: 100
  const auto y = grad::batch_norm(x, rm, rv, {}, {}, {.training = false});
  CHECK(y.data()[0] == doctest::Approx((1.0 - 0.3) / std::sqrt(1.3 + 1e-5)));
  // evaluation: running statistics are constants
  auto w = grad::ones<double>({2}, {.requires_grad = true}),
       b = grad::zeros<double>({2}, {.requires_grad = true});
  auto xg = grad::from<double>(x.value(), {.requires_grad = true});
  const auto r = grad::gradcheck(
      [&](const auto& in) { return grad::batch_norm(in[0], rm, rv, in[1], in[2], {.training = false}); },
      {xg, w, b});
  CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("batch_norm errors") {
  const auto rm = grad::zeros<double>({3}), rv = grad::ones<double>({3});
  CHECK(mentions(error_message<grad::value_error>([&] {
                   (void)grad::batch_norm(grad::zeros<double>({1, 3}), rm, rv);
                 }),
                 {"batch_norm", "more than 1 value per channel"}));
  CHECK(mentions(error_message<grad::shape_error>([&] {
                   (void)grad::batch_norm(grad::zeros<double>({2, 4}), rm, rv);
                 }),
                 {"batch_norm", "(3,)", "(2, 4)"}));
  CHECK(mentions(error_message<grad::shape_error>([&] {
                   (void)grad::batch_norm(grad::zeros<double>({2, 3}), rm, rv, grad::ones<double>({2}),
                                          grad::ones<double>({3}));
                 }),
                 {"batch_norm", "weight", "(2,)"}));
  CHECK(mentions(
      error_message<grad::shape_error>([&] { (void)grad::batch_norm(grad::zeros<double>({3}), rm, rv); }),
      {"batch_norm", "(N, C)", "(3,)"}));
  CHECK_THROWS_AS((void)grad::batch_norm(grad::zeros<double>({2, 3}), rm, grad::dtensor{}),
                  grad::value_error);
}

// ------------------------------------------------------------------------------------------------
// dropout

TEST_CASE("dropout: scaled mask in training, identity in evaluation, reproducible") {
  grad::generator g1(5), g2(5);
  auto x = grad::ones<double>({100, 100}, {.requires_grad = true});
  const auto y = grad::dropout(x, 0.3, true, g1);
  std::size_t kept = 0;
  for (std::size_t i = 0; i < y.numel(); ++i) {
    CHECK((y.data()[i] == 0.0 || y.data()[i] == doctest::Approx(1 / 0.7)));
    kept += y.data()[i] != 0.0;
  }
  CHECK(double(kept) / 1e4 == doctest::Approx(0.7).epsilon(0.03));
  const auto y2 = grad::dropout(x, 0.3, true, g2);
  CHECK(op_check::values(y) == op_check::values(y2));
  grad::sum(y).backward(); // d y / d x = mask / (1 - p)
  CHECK(op_check::values(x.grad()) == op_check::values(y));

  const auto e = grad::dropout(x, 0.3, false);
  CHECK(e.impl() == x.impl());
  CHECK(op_check::values(grad::dropout(x, 1.0, true)) == std::vector<double>(1e4, 0.0));
  CHECK(mentions(error_message<grad::value_error>([&] { (void)grad::dropout(x, 1.5); }), {"dropout", "1.5"}));
  const auto r = grad::gradcheck(
      [](const auto& in) {
        grad::generator g(9);
        return grad::dropout(in[0], 0.5, true, g);
      },
      {grad::randn<double>({3, 4}, g1, {.requires_grad = true})});
  CHECK_MESSAGE(r.ok, r.message);
}
