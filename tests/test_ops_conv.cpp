// Tests of conv2d's fast paths (ops/conv.hpp): the range-based im2col/col2im at every stride, padding and
// dilation (taps wholly in the padding, strides that do not divide the input), the 1x1 stride-1 path
// that skips im2col, batch 1, the image-parallel forward and backward on 2 threads (against a naive
// reference and bitwise against 1 thread), gradients of a subset of the inputs, and the per-thread
// scratch buffers across calls of different sizes. The basic conv2d cases and errors are in
// test_ops_nn.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include <grad/grad.hpp>
#include <grad/kernels/parallel.hpp>
#include <grad/ops/conv.hpp>

#include "op_check.hpp"

using grad::shape_type;
using op_check::array;

namespace {

struct conv_cfg {
  std::size_t sh, sw, ph, pw, dh, dw;
};

grad::conv2d_options to_options(const conv_cfg& c) {
  grad::conv2d_options o;
  o.stride = {c.sh, c.sw};
  o.padding = {c.ph, c.pw};
  o.dilation = {c.dh, c.dw};
  return o;
}

/// Sizes of the naive reference.
struct ref_geom {
  std::size_t n, ch, h, wd, o, kh, kw, oh, ow;
};

ref_geom ref_geometry(const shape_type& x, const shape_type& w, const conv_cfg& c) {
  ref_geom g{x[0], x[1], x[2], x[3], w[0], w[2], w[3], 0, 0};
  g.oh = (g.h + 2 * c.ph - c.dh * (g.kh - 1) - 1) / c.sh + 1;
  g.ow = (g.wd + 2 * c.pw - c.dw * (g.kw - 1) - 1) / c.sw + 1;
  return g;
}

/// Calls f(x index, w index, y index) for every multiply-add of the convolution, written from its
/// definition y[b, f, i, j] = sum over q, a, e of x[b, q, i sh + a dh - ph, j sw + e dw - pw] w[f, q, a, e].
template <class F>
void for_each_tap(const ref_geom& g, const conv_cfg& c, F f) {
  for (std::size_t b = 0; b < g.n; ++b)
    for (std::size_t o = 0; o < g.o; ++o)
      for (std::size_t i = 0; i < g.oh; ++i)
        for (std::size_t j = 0; j < g.ow; ++j)
          for (std::size_t q = 0; q < g.ch; ++q)
            for (std::size_t a = 0; a < g.kh; ++a)
              for (std::size_t e = 0; e < g.kw; ++e) {
                const long iy = long(i * c.sh + a * c.dh) - long(c.ph),
                           ix = long(j * c.sw + e * c.dw) - long(c.pw);
                if (iy < 0 || ix < 0 || iy >= long(g.h) || ix >= long(g.wd))
                  continue;
                f(((b * g.ch + q) * g.h + std::size_t(iy)) * g.wd + std::size_t(ix),
                  ((o * g.ch + q) * g.kh + a) * g.kw + e, ((b * g.o + o) * g.oh + i) * g.ow + j);
              }
}

array conv_ref(const std::vector<array>& in, const conv_cfg& c) {
  const ref_geom g = ref_geometry(in[0].shape, in[1].shape, c);
  array y{{g.n, g.o, g.oh, g.ow}, std::vector<double>(g.n * g.o * g.oh * g.ow, 0.0)};
  if (in.size() > 2)
    for (std::size_t k = 0; k < y.v.size(); ++k)
      y.v[k] = in[2].v[(k / (g.oh * g.ow)) % g.o];
  for_each_tap(g, c,
               [&](std::size_t xi, std::size_t wi, std::size_t yi) { y.v[yi] += in[0].v[xi] * in[1].v[wi]; });
  return y;
}

/// Gradients dx, dw, db of sum(conv(x, w, b) * dy), from the same definition.
std::vector<std::vector<double>> conv_ref_grads(const std::vector<double>& x, const shape_type& xs,
                                                const std::vector<double>& w, const shape_type& ws,
                                                const std::vector<double>& dy, const conv_cfg& c) {
  const ref_geom g = ref_geometry(xs, ws, c);
  std::vector<double> dx(x.size(), 0.0), dw(w.size(), 0.0), db(g.o, 0.0);
  for_each_tap(g, c, [&](std::size_t xi, std::size_t wi, std::size_t yi) {
    dx[xi] += w[wi] * dy[yi]; // d(x w)/dx = w
    dw[wi] += x[xi] * dy[yi]; // d(x w)/dw = x
  });
  for (std::size_t k = 0; k < dy.size(); ++k)
    db[(k / (g.oh * g.ow)) % g.o] += dy[k];
  return {dx, dw, db};
}

op_check::options loose() {
  op_check::options o;
  o.double_rtol = o.double_atol = 1e-10;
  o.float_rtol = o.float_atol = 2e-5;
  return o;
}

/// op_check (values in float and double, gradcheck, float vs double backward) of conv2d with bias for
/// one configuration and list of (x, w) shapes.
void check_conv(const std::string& name, const conv_cfg& c, const std::vector<std::vector<shape_type>>& cases,
                const std::vector<op_check::domain>& domains = {}) {
  op_check::check(
      name, [c](const auto& x) { return grad::conv2d(x[0], x[1], x[2], to_options(c)); },
      [c](const std::vector<array>& in) { return conv_ref(in, c); }, cases, domains, loose());
}

/// Restores the thread count when a test ends.
struct thread_guard {
  int saved = grad::get_num_threads();
  ~thread_guard() { grad::set_num_threads(saved); }
};

std::vector<float> random_floats(std::size_t n, grad::generator& gen) {
  std::vector<float> v(n);
  for (auto& x : v)
    x = static_cast<float>(gen.uniform(-1.0, 1.0));
  return v;
}

/// Forward and backward of a float conv2d: y, dx, dw, db for a given dy.
struct conv_run {
  std::vector<float> y, dx, dw, db;
};

conv_run run_conv(const std::vector<float>& x, const shape_type& xs, const std::vector<float>& w,
                  const shape_type& ws, const std::vector<float>& b, const std::vector<float>& dy,
                  const conv_cfg& c, bool grad_x = true, bool grad_w = true) {
  const auto tx = grad::from<float>(x, xs, {.requires_grad = grad_x});
  const auto tw = grad::from<float>(w, ws, {.requires_grad = grad_w});
  const auto tb = grad::from<float>(b, {ws[0]}, {.requires_grad = true});
  const auto y = grad::conv2d(tx, tw, tb, to_options(c));
  y.backward(grad::from<float>(dy, y.shape()));
  conv_run r;
  r.y.assign(y.data(), y.data() + y.numel());
  if (grad_x)
    r.dx.assign(tx.grad().data(), tx.grad().data() + tx.numel());
  if (grad_w)
    r.dw.assign(tw.grad().data(), tw.grad().data() + tw.numel());
  r.db.assign(tb.grad().data(), tb.grad().data() + tb.numel());
  return r;
}

/// got matches want within rtol relative to the largest |want| (float products of up to a few hundred terms).
void check_close(const std::vector<float>& got, const std::vector<double>& want, const char* what) {
  REQUIRE(got.size() == want.size());
  double scale = 1e-30, worst = 0;
  for (double v : want)
    scale = std::max(scale, std::abs(v));
  for (std::size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::abs(double(got[i]) - want[i]));
  CHECK_MESSAGE(worst <= 1e-5 * scale, what, ": worst error ", worst, " for values up to ", scale);
}

/// A conv large enough for the parallel path (>= 2^20 multiply-adds), run on 1 and on 2 threads: both
/// match the naive reference and each other bit for bit (work is split over images and the weight
/// gradient is summed in fixed chunks, whatever the thread count).
void check_threaded(const shape_type& xs, const shape_type& ws, const conv_cfg& c, bool grad_x = true,
                    bool grad_w = true) {
  INFO("x ", op_check::shapes_string({xs, ws}), " stride (", c.sh, ", ", c.sw, ") padding (", c.ph, ", ",
       c.pw, ") dilation (", c.dh, ", ", c.dw, ")");
  const ref_geom g = ref_geometry(xs, ws, c);
  REQUIRE(std::uint64_t(g.n) * g.o * g.oh * g.ow * g.ch * g.kh * g.kw >= (std::uint64_t(1) << 20));
  grad::generator gen(11);
  const auto x = random_floats(op_check::count(xs), gen), w = random_floats(op_check::count(ws), gen);
  const auto b = random_floats(ws[0], gen), dy = random_floats(g.n * g.o * g.oh * g.ow, gen);
  thread_guard guard;
  grad::set_num_threads(1);
  const conv_run one = run_conv(x, xs, w, ws, b, dy, c, grad_x, grad_w);
  grad::set_num_threads(2);
  const conv_run two = run_conv(x, xs, w, ws, b, dy, c, grad_x, grad_w);
  CHECK(one.y == two.y);
  CHECK(one.dx == two.dx);
  CHECK(one.dw == two.dw);
  CHECK(one.db == two.db);

  const auto to_d = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
  const array y = conv_ref({{xs, to_d(x)}, {ws, to_d(w)}, {{ws[0]}, to_d(b)}}, c);
  const auto grads = conv_ref_grads(to_d(x), xs, to_d(w), ws, to_d(dy), c);
  check_close(two.y, y.v, "y");
  if (grad_x)
    check_close(two.dx, grads[0], "dx");
  if (grad_w)
    check_close(two.dw, grads[1], "dw");
  check_close(two.db, grads[2], "db");
}

} // namespace

TEST_CASE("conv2d im2col at every stride, padding and dilation, odd sizes, batch 1") {
  check_conv("stride 2 padding 1, odd extents", {2, 2, 1, 1, 1, 1}, {{{1, 3, 7, 9}, {4, 3, 3, 3}, {4}}});
  check_conv("stride 3 (does not divide), no padding", {3, 3, 0, 0, 1, 1},
             {{{2, 2, 8, 7}, {3, 2, 2, 2}, {3}}});
  check_conv("dilation 2 padding 2", {1, 1, 2, 2, 2, 2}, {{{2, 2, 9, 8}, {3, 2, 3, 3}, {3}}});
  check_conv("stride (1, 2) padding (0, 3) dilation (3, 1)", {1, 2, 0, 3, 3, 1},
             {{{1, 2, 9, 5}, {2, 2, 2, 4}, {2}}});
  // Padding larger than the kernel reach: whole rows and columns of taps fall in the padding.
  check_conv("padding 3 around a 2x3 image", {1, 1, 3, 3, 1, 1}, {{{1, 1, 2, 3}, {2, 1, 3, 3}, {2}}});
  check_conv("stride 2 dilation 3 padding 4", {2, 2, 4, 4, 3, 3}, {{{2, 1, 5, 6}, {2, 1, 2, 3}, {2}}});
  // A kernel as large as the padded input: one output pixel.
  check_conv("kernel covers the padded input", {1, 1, 1, 1, 1, 1}, {{{1, 2, 3, 4}, {2, 2, 5, 6}, {2}}});
}

TEST_CASE("conv2d at stride 1 with the output as wide as the input (shifted planes)") {
  check_conv("3x3 padding 1", {1, 1, 1, 1, 1, 1},
             {{{2, 3, 5, 6}, {4, 3, 3, 3}, {4}}, {{1, 1, 1, 1}, {2, 1, 3, 3}, {2}}});
  check_conv("5x5 padding 2", {1, 1, 2, 2, 1, 1}, {{{1, 2, 6, 5}, {3, 2, 5, 5}, {3}}});
  check_conv("3x3 dilation 2 padding 2", {1, 1, 2, 2, 2, 2}, {{{2, 2, 5, 7}, {2, 2, 3, 3}, {2}}});
  // taps wholly in the padding (dilation 3 over a 3-row image)
  check_conv("3x3 dilation 3 padding 3", {1, 1, 3, 3, 3, 3}, {{{1, 2, 3, 4}, {2, 2, 3, 3}, {2}}});
  // output height differs from the input's: (3, 1) kernel without padding, (2, 3) kernel with padding 1
  check_conv("3x1 no padding", {1, 1, 0, 0, 1, 1}, {{{2, 2, 6, 4}, {3, 2, 3, 1}, {3}}});
  check_conv("2x3 padding 1", {1, 1, 1, 1, 1, 1}, {{{1, 2, 4, 5}, {2, 2, 2, 3}, {2}}});
  check_conv("1x3 padding (0, 1), one-pixel-wide image", {1, 1, 0, 1, 1, 1},
             {{{2, 1, 3, 1}, {2, 1, 1, 3}, {2}}});
}

TEST_CASE("conv2d 1x1 at stride 1 without padding reads the image as its columns") {
  check_conv("1x1", {1, 1, 0, 0, 1, 1},
             {{{2, 3, 4, 5}, {4, 3, 1, 1}, {4}}, {{1, 1, 1, 1}, {2, 1, 1, 1}, {2}}});
  // 1x1 kernels that still need im2col: a stride, padding; a dilation does not matter for 1x1
  check_conv("1x1 stride 2", {2, 2, 0, 0, 1, 1}, {{{2, 3, 5, 5}, {2, 3, 1, 1}, {2}}});
  check_conv("1x1 padding 1", {1, 1, 1, 1, 1, 1}, {{{1, 2, 3, 4}, {3, 2, 1, 1}, {3}}});
  check_conv("1x1 dilation 2", {1, 1, 0, 0, 2, 2}, {{{2, 2, 3, 3}, {2, 2, 1, 1}, {2}}});
}

TEST_CASE("conv2d gradients of a subset of the inputs") {
  const op_check::domain constant{[](grad::generator& g) { return std::clamp(g.normal(), -3.0, 3.0); }, false,
                                  true};
  // input images (no dx: the first layer of a network), only the bias, only the input
  check_conv("x constant", {1, 1, 1, 1, 1, 1}, {{{3, 2, 5, 4}, {3, 2, 3, 3}, {3}}}, {constant});
  check_conv("x and w constant", {2, 1, 1, 0, 1, 1}, {{{3, 2, 5, 4}, {3, 2, 3, 3}, {3}}},
             {constant, constant});
  check_conv("w and b constant", {1, 1, 1, 1, 1, 1}, {{{3, 2, 5, 4}, {3, 2, 3, 3}, {3}}},
             {op_check::normal(), constant, constant});
  check_conv("1x1, w and b constant", {1, 1, 0, 0, 1, 1}, {{{3, 2, 2, 3}, {3, 2, 1, 1}, {3}}},
             {op_check::normal(), constant, constant});
}

TEST_CASE("conv2d on 2 threads equals 1 thread bit for bit and the naive reference") {
  // example 05's second layer at batch 9 (not a multiple of the backward's chunks)
  check_threaded({9, 16, 14, 14}, {32, 16, 3, 3}, {1, 1, 1, 1, 1, 1});
  // batch 1: a single task
  check_threaded({1, 8, 33, 31}, {16, 8, 3, 3}, {1, 1, 1, 1, 1, 1});
  // stride, dilation, asymmetric padding, odd sizes
  check_threaded({7, 5, 33, 27}, {12, 5, 3, 2}, {2, 1, 2, 1, 2, 3});
  // 5x5 "same" convolution at dilation 2 (shifted planes), odd sizes
  check_threaded({3, 6, 21, 19}, {10, 6, 5, 5}, {1, 1, 4, 4, 2, 2});
  // 1x1 at stride 1: no im2col
  check_threaded({5, 24, 15, 17}, {40, 24, 1, 1}, {1, 1, 0, 0, 1, 1});
  // input images without gradient (example 05's first layer), and only the bias's gradient
  check_threaded({17, 1, 28, 28}, {16, 1, 3, 3}, {1, 1, 1, 1, 1, 1}, /*grad_x=*/false);
  check_threaded({9, 16, 14, 14}, {32, 16, 3, 3}, {1, 1, 1, 1, 1, 1}, false, false);
}

TEST_CASE("conv2d reuses its scratch buffers across calls of different sizes") {
  // large, small, large again: results must not depend on what an earlier call left in the buffers
  const std::vector<std::pair<shape_type, shape_type>> shapes = {
      {{2, 6, 20, 20}, {5, 6, 5, 5}}, {{1, 1, 3, 3}, {1, 1, 2, 2}}, {{3, 6, 20, 20}, {4, 6, 5, 5}}};
  const conv_cfg c{1, 1, 2, 2, 1, 1};
  grad::generator gen(5);
  for (int round = 0; round < 2; ++round)
    for (const auto& pair : shapes) {
      const shape_type &xs = pair.first, &ws = pair.second; // not a structured binding: INFO captures them
      INFO("round ", round, ", x ", op_check::shapes_string({xs, ws}));
      const auto x = random_floats(op_check::count(xs), gen), w = random_floats(op_check::count(ws), gen);
      const auto b = random_floats(ws[0], gen);
      const ref_geom g = ref_geometry(xs, ws, c);
      const auto dy = random_floats(g.n * g.o * g.oh * g.ow, gen);
      const conv_run r = run_conv(x, xs, w, ws, b, dy, c);
      const auto to_d = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
      check_close(r.y, conv_ref({{xs, to_d(x)}, {ws, to_d(w)}, {{ws[0]}, to_d(b)}}, c).v, "y");
      const auto grads = conv_ref_grads(to_d(x), xs, to_d(w), ws, to_d(dy), c);
      check_close(r.dx, grads[0], "dx");
      check_close(r.dw, grads[1], "dw");
      check_close(r.db, grads[2], "db");
    }
}
