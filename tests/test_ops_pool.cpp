// Tests of max_pool2d's plane-parallel forward and backward (ops/pool.hpp): ties and NaN (which the
// distinct-value gradient checks of test_ops_nn.cpp avoid), and large inputs on 2 threads against 1
// thread and a naive reference, with padding, stride and dilation. The basic pooling cases and errors
// are in test_ops_nn.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include <grad/grad.hpp>
#include <grad/kernels/parallel.hpp>
#include <grad/ops/pool.hpp>

namespace {

/// Restores the thread count when a test ends.
struct thread_guard {
  int saved = grad::get_num_threads();
  ~thread_guard() { grad::set_num_threads(saved); }
};

struct pool_cfg {
  std::size_t k, s, p, d;
};

/// Naive max pooling of x (N, C, H, W) with square windows: values and, for each output, the flat index
/// of its first maximum (NaN wins), written from the definition.
void pool_ref(const std::vector<float>& x, const grad::shape_type& xs, const pool_cfg& c,
              std::vector<float>& y, std::vector<std::size_t>& arg) {
  const std::size_t planes = xs[0] * xs[1], h = xs[2], w = xs[3];
  const std::size_t oh = (h + 2 * c.p - c.d * (c.k - 1) - 1) / c.s + 1,
                    ow = (w + 2 * c.p - c.d * (c.k - 1) - 1) / c.s + 1;
  y.assign(planes * oh * ow, 0.0f);
  arg.assign(planes * oh * ow, 0);
  for (std::size_t q = 0; q < planes; ++q)
    for (std::size_t i = 0; i < oh; ++i)
      for (std::size_t j = 0; j < ow; ++j) {
        bool found = false;
        float m = 0;
        std::size_t best = 0;
        for (std::size_t a = 0; a < c.k; ++a)
          for (std::size_t e = 0; e < c.k; ++e) {
            const long iy = long(i * c.s + a * c.d) - long(c.p), ix = long(j * c.s + e * c.d) - long(c.p);
            if (iy < 0 || ix < 0 || iy >= long(h) || ix >= long(w))
              continue;
            const std::size_t at = (q * h + std::size_t(iy)) * w + std::size_t(ix);
            const float v = x[at];
            if (!found || (!std::isnan(m) && (std::isnan(v) || v > m))) {
              m = v;
              best = at;
              found = true;
            }
          }
        y[(q * oh + i) * ow + j] = m;
        arg[(q * oh + i) * ow + j] = best;
      }
}

/// Forward values and input gradient of max_pool2d for a given output gradient.
std::pair<std::vector<float>, std::vector<float>> run_pool(const std::vector<float>& x,
                                                           const grad::shape_type& xs, const pool_cfg& c,
                                                           const std::vector<float>& dy) {
  const auto tx = grad::from<float>(x, xs, {.requires_grad = true});
  const auto y = grad::max_pool2d(tx, c.k, {.stride = c.s, .padding = c.p, .dilation = c.d});
  y.backward(grad::from<float>(dy, y.shape()));
  return {std::vector<float>(y.data(), y.data() + y.numel()),
          std::vector<float>(tx.grad().data(), tx.grad().data() + tx.numel())};
}

/// Same bits: NaN equals NaN.
bool same(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i]))))
      return false;
  return true;
}

/// Pools x on 1 and 2 threads; both equal the naive reference (values, and the gradient routed to the
/// reference's argmax).
void check_pool(const std::vector<float>& x, const grad::shape_type& xs, const pool_cfg& c) {
  const std::size_t oh = (xs[2] + 2 * c.p - c.d * (c.k - 1) - 1) / c.s + 1,
                    ow = (xs[3] + 2 * c.p - c.d * (c.k - 1) - 1) / c.s + 1;
  REQUIRE(xs[0] * xs[1] * oh * ow * c.k * c.k >=
          (std::size_t(1) << 16)); // large enough for the parallel path
  INFO("x (", xs[0], ", ", xs[1], ", ", xs[2], ", ", xs[3], ") kernel ", c.k, " stride ", c.s, " padding ",
       c.p, " dilation ", c.d);
  std::vector<float> y_ref;
  std::vector<std::size_t> arg;
  pool_ref(x, xs, c, y_ref, arg);
  grad::generator gen(7);
  std::vector<float> dy(y_ref.size());
  for (auto& v : dy)
    v = static_cast<float>(gen.uniform(-1.0, 1.0));
  std::vector<float> dx_ref(x.size(), 0.0f);
  for (std::size_t o = 0; o < dy.size(); ++o)
    dx_ref[arg[o]] += dy[o];
  thread_guard guard;
  for (int threads : {1, 2}) {
    grad::set_num_threads(threads);
    const auto [y, dx] = run_pool(x, xs, c, dy);
    CHECK_MESSAGE(same(y, y_ref), "values on ", threads, " thread(s)");
    CHECK_MESSAGE(same(dx, dx_ref), "gradient on ", threads, " thread(s)");
  }
}

} // namespace

TEST_CASE("max_pool2d: ties go to the first maximum, NaN wins") {
  // one 2x2 window per case, values in row-major window order
  const auto pool = [](std::vector<float> v) {
    const auto x = grad::from<float>(v, {1, 1, 2, 2}, {.requires_grad = true});
    const auto y = grad::max_pool2d(x, 2);
    y.backward(grad::ones<float>({1, 1, 1, 1}));
    return std::pair{y.item(), std::vector<float>(x.grad().data(), x.grad().data() + 4)};
  };
  const auto [tie, dtie] = pool({1.0f, 3.0f, 3.0f, 2.0f});
  CHECK(tie == 3.0f);
  CHECK(dtie == std::vector<float>{0, 1, 0, 0});
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const auto [first_nan, dnan] = pool({1.0f, 5.0f, nan, nan});
  CHECK(std::isnan(first_nan));
  CHECK(dnan == std::vector<float>{0, 0, 1, 0});
  const auto [inf, dinf] = pool({-INFINITY, -INFINITY, -INFINITY, -INFINITY});
  CHECK(inf == -INFINITY);
  CHECK(dinf == std::vector<float>{1, 0, 0, 0});
}

TEST_CASE("max_pool2d on 2 threads equals 1 thread and the naive reference") {
  grad::generator gen(3);
  const auto random = [&](const grad::shape_type& s, bool with_ties) {
    std::vector<float> v(s[0] * s[1] * s[2] * s[3]);
    for (auto& e : v) // rounding to a coarse grid makes ties common
      e = with_ties ? std::round(static_cast<float>(gen.uniform(-3.0, 3.0)))
                    : static_cast<float>(gen.normal());
    return v;
  };
  // example 05's pools, at a batch that is not a multiple of anything
  const grad::shape_type s1{7, 16, 28, 28}, s2{13, 32, 14, 14};
  check_pool(random(s1, false), s1, {2, 2, 0, 1});
  check_pool(random(s2, true), s2, {2, 2, 0, 1});
  // padding, overlapping windows, dilation, odd sizes, ties and NaN
  const grad::shape_type s3{5, 9, 31, 27}, s4{12, 16, 35, 33};
  auto x3 = random(s3, true);
  for (std::size_t i = 0; i < x3.size(); i += 97)
    x3[i] = std::numeric_limits<float>::quiet_NaN();
  check_pool(x3, s3, {3, 2, 1, 1});
  check_pool(x3, s3, {3, 1, 1, 2});
  check_pool(random(s4, false), s4, {2, 3, 1, 1});
}
