// Tests of grad::kernels::gemm / gemm_batched against the naive reference, for every layout, edge
// shapes around the register and cache blocks, alpha/beta, leading dimensions and threads. Built for
// the native target and for x86-64-v2 / -v3, so nothing here assumes a vector width.
#include <doctest/doctest.h>

#include <grad/kernels/gemm.hpp>
#include <grad/kernels/parallel.hpp>
#include <grad/kernels/reference/gemm.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

/// One test product: shape, layout, scalars and how much wider than needed each matrix is stored.
struct gemm_case {
  bool ta = false, tb = false;
  std::size_t m = 1, n = 1, k = 1;
  double alpha = 1, beta = 0;
  std::size_t pad_a = 0, pad_b = 0, pad_c = 0; // extra columns: leading dimension > width
};

std::string describe(const gemm_case& t) {
  std::ostringstream s;
  s << (t.ta ? 'T' : 'N') << (t.tb ? 'T' : 'N') << " m=" << t.m << " n=" << t.n << " k=" << t.k
    << " alpha=" << t.alpha << " beta=" << t.beta << " pads=" << t.pad_a << "," << t.pad_b << "," << t.pad_c;
  return s.str();
}

template <class T>
std::vector<T> random_values(std::size_t count, std::mt19937& rng) {
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<T> v(count);
  for (auto& x : v)
    x = static_cast<T>(dist(rng));
  return v;
}

/// Operands of one case, stored with the case's layout and leading dimensions.
template <class T>
struct operands {
  std::size_t lda, ldb, ldc;
  std::vector<T> a, b, c0;
  operands(const gemm_case& t, std::mt19937& rng) {
    const std::size_t a_rows = t.ta ? t.k : t.m, a_cols = t.ta ? t.m : t.k;
    const std::size_t b_rows = t.tb ? t.n : t.k, b_cols = t.tb ? t.k : t.n;
    lda = a_cols + t.pad_a;
    ldb = b_cols + t.pad_b;
    ldc = t.n + t.pad_c;
    a = random_values<T>(a_rows * lda, rng);
    b = random_values<T>(b_rows * ldb, rng);
    c0 = random_values<T>(t.m * ldc, rng);
    if (t.beta == 0) // beta == 0 must not read C
      for (std::size_t i = 0; i < t.m; ++i)
        for (std::size_t j = 0; j < t.n; ++j)
          c0[i * ldc + j] = std::numeric_limits<T>::quiet_NaN();
  }
};

/// Runs one case through gemm and the reference; checks every element within a tolerance scaled with
/// k and that the padding columns of C are untouched.
template <class T>
std::vector<T> check_case(const gemm_case& t, const operands<T>& op) {
  INFO(describe(t));
  std::vector<T> c = op.c0, ref = op.c0;
  const T alpha = static_cast<T>(t.alpha), beta = static_cast<T>(t.beta);
  grad::kernels::gemm<T>(t.ta, t.tb, t.m, t.n, t.k, alpha, op.a.data(), op.lda, op.b.data(), op.ldb, beta,
                         c.data(), op.ldc);
  grad::kernels::reference::gemm<T>(t.ta, t.tb, t.m, t.n, t.k, alpha, op.a.data(), op.lda, op.b.data(),
                                    op.ldb, beta, ref.data(), op.ldc);
  // Error bound of a k-term dot product of values in [-1, 1], with sqrt(k) growth for random signs
  // (a wrong or missing term is off by about 0.25, far above it).
  const double eps = std::numeric_limits<T>::epsilon();
  const double growth = 4.0 * (std::sqrt(double(t.k)) + 2.0);
  auto bound = [&](std::size_t at) {
    const double old = t.beta == 0 ? 0.0 : std::abs(double(op.c0[at]));
    return eps * growth * (std::abs(t.alpha) * double(t.k) + std::abs(t.beta) * old + 1.0);
  };
  std::size_t bad = 0;
  for (std::size_t i = 0; i < t.m && bad < 5; ++i) {
    for (std::size_t j = 0; j < op.ldc && bad < 5; ++j) {
      const std::size_t at = i * op.ldc + j;
      if (j >= t.n) { // padding of C: must keep its bits
        if (std::memcmp(&c[at], &op.c0[at], sizeof(T)) != 0) {
          ++bad;
          FAIL_CHECK("padding written at (" << i << ", " << j << ")");
        }
        continue;
      }
      const double tol = bound(at);
      const double err = std::abs(double(c[at]) - double(ref[at]));
      if (!(err <= tol)) {
        ++bad;
        FAIL_CHECK("C(" << i << ", " << j << ") = " << c[at] << ", reference " << ref[at] << ", tol " << tol);
      }
    }
  }
  CHECK_MESSAGE(bad == 0, describe(t));
  return c;
}

template <class T>
std::vector<T> check_case(const gemm_case& t, std::mt19937& rng) {
  return check_case<T>(t, operands<T>(t, rng));
}

struct layout {
  bool ta, tb;
};
constexpr layout layouts[4] = {{false, false}, {false, true}, {true, false}, {true, true}};

} // namespace

TEST_CASE_TEMPLATE("gemm: small shapes, every layout", T, float, double) {
  grad::set_num_threads(1);
  std::mt19937 rng(1);
  const std::size_t sizes[] = {1, 2, 3, 7, 13, 17, 31};
  for (const layout lay : layouts)
    for (std::size_t m : sizes)
      for (std::size_t n : sizes)
        for (std::size_t k : sizes)
          check_case<T>({lay.ta, lay.tb, m, n, k, 1.0, 0.0}, rng);
}

TEST_CASE_TEMPLATE("gemm: blocked shapes (register, cache and depth blocks), every layout", T, float,
                   double) {
  grad::set_num_threads(1);
  std::mt19937 rng(2);
  // Around MR = 6, NR = 16..64, MC = 192, NC = 512, KC = 512 floats / 256 doubles, and primes;
  // 200 x 1100 x 600 TN reuses packed A over three column blocks (see gemm_tile).
  const gemm_case shapes[] = {
      {false, false, 64, 65, 127},  {false, false, 200, 257, 31}, {false, false, 127, 200, 257},
      {false, false, 257, 64, 600}, {false, false, 13, 523, 65},  {false, false, 65, 17, 513},
      {false, false, 2, 300, 200},  {false, false, 300, 3, 200},  {false, false, 5, 1, 700},
      {false, false, 1, 257, 513},  {false, false, 257, 1, 513},  {false, false, 199, 77, 1100},
      {false, false, 64, 10, 256},  {false, false, 31, 513, 7},   {false, false, 100, 5, 600},
      {false, false, 513, 2, 70},   {false, false, 50, 6, 45},    {false, false, 40, 7, 300},
      {false, false, 200, 20, 50},  {false, false, 20, 100, 64},  {false, false, 24, 200, 300},
      {false, false, 150, 17, 40},  {false, false, 70, 40, 30},   {false, false, 200, 1100, 600},
  };
  for (const layout lay : layouts)
    for (gemm_case t : shapes) {
      t.ta = lay.ta;
      t.tb = lay.tb;
      check_case<T>(t, rng);
    }
}

TEST_CASE_TEMPLATE("gemm: alpha and beta", T, float, double) {
  grad::set_num_threads(1);
  std::mt19937 rng(3);
  const double scalars[][2] = {{1, 0}, {1, 1}, {1, 0.5}, {-2, 0}, {0.5, 1}, {0.25, -1.5}, {0, 0.5}, {0, 0}};
  for (const layout lay : layouts)
    for (const auto& ab : scalars)
      for (const auto& shape : {gemm_case{false, false, 37, 70, 45}, gemm_case{false, false, 7, 1, 33},
                                gemm_case{false, false, 1, 50, 20}, gemm_case{false, false, 70, 90, 600}}) {
        gemm_case t = shape;
        t.ta = lay.ta;
        t.tb = lay.tb;
        t.alpha = ab[0];
        t.beta = ab[1];
        check_case<T>(t, rng);
      }
}

TEST_CASE_TEMPLATE("gemm: leading dimensions larger than the width (submatrices)", T, float, double) {
  grad::set_num_threads(1);
  std::mt19937 rng(4);
  for (const layout lay : layouts)
    for (const auto& shape : {gemm_case{false, false, 13, 17, 31}, gemm_case{false, false, 67, 129, 70},
                              gemm_case{false, false, 1, 40, 19}, gemm_case{false, false, 40, 1, 19},
                              gemm_case{false, false, 6, 77, 520}, gemm_case{false, false, 200, 31, 9},
                              gemm_case{false, false, 70, 3, 40}}) {
      for (const std::size_t pad : {1, 5, 16}) {
        gemm_case t = shape;
        t.ta = lay.ta;
        t.tb = lay.tb;
        t.beta = pad == 5 ? 1.0 : 0.0;
        t.pad_a = pad;
        t.pad_b = pad + 2;
        t.pad_c = pad + 1;
        check_case<T>(t, rng);
      }
    }
}

TEST_CASE_TEMPLATE("gemm: degenerate sizes", T, float, double) {
  grad::set_num_threads(1);
  std::mt19937 rng(5);
  for (const layout lay : layouts) {
    // k == 0: C = beta * C (beta == 0: zeros even over NaN).
    check_case<T>({lay.ta, lay.tb, 5, 7, 0, 1.0, 0.0}, rng);
    check_case<T>({lay.ta, lay.tb, 5, 7, 0, 1.0, 0.5}, rng);
    check_case<T>({lay.ta, lay.tb, 1, 1, 1, 2.0, 0.5}, rng);
  }
  // m == 0 or n == 0: nothing is touched.
  std::vector<T> c(4, T(7));
  const T a[1] = {T(1)}, b[1] = {T(1)};
  grad::kernels::gemm<T>(false, false, 0, 2, 1, T(1), a, 1, b, 2, T(0), c.data(), 2);
  grad::kernels::gemm<T>(false, false, 2, 0, 1, T(1), a, 1, b, 1, T(0), c.data(), 2);
  CHECK(c == std::vector<T>(4, T(7)));
  // alpha == 0 must not read A or B (BLAS semantics): NaN operands leave beta * C.
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const std::vector<T> an(6, nan), bn(6, nan);
  std::vector<T> c2 = {T(1), T(2), T(3), T(4)};
  grad::kernels::gemm<T>(false, false, 2, 2, 3, T(0), an.data(), 3, bn.data(), 2, T(0.5), c2.data(), 2);
  CHECK(c2 == std::vector<T>{T(0.5), T(1), T(1.5), T(2)});
}

TEST_CASE_TEMPLATE("gemm_batched: strides and broadcasts", T, float, double) {
  grad::set_num_threads(2);
  std::mt19937 rng(6);
  struct bcase {
    std::size_t batch, m, n, k;
    bool bcast_a, bcast_b, sum_c;
  };
  const bcase cases[] = {{3, 7, 9, 5, false, false, false},      {4, 33, 20, 17, true, false, false},
                         {3, 20, 33, 17, false, true, false},    {5, 64, 70, 90, false, false, false},
                         {3, 150, 130, 140, false, true, false}, {4, 12, 13, 50, false, false, true},
                         {2, 1, 40, 30, true, false, false},     {3, 40, 1, 30, false, true, false}};
  for (const layout lay : layouts)
    for (const bcase& q : cases) {
      INFO("batch=" << q.batch << " m=" << q.m << " n=" << q.n << " k=" << q.k << " ta=" << lay.ta
                    << " tb=" << lay.tb);
      const bool ta = lay.ta, tb = lay.tb;
      const std::size_t lda = (ta ? q.m : q.k) + 1, ldb = (tb ? q.k : q.n) + 2, ldc = q.n + 3;
      const std::size_t sa = (ta ? q.k : q.m) * lda, sb = (tb ? q.n : q.k) * ldb, sc = q.m * ldc;
      const std::size_t stride_a = q.bcast_a ? 0 : sa, stride_b = q.bcast_b ? 0 : sb,
                        stride_c = q.sum_c ? 0 : sc;
      const std::vector<T> a = random_values<T>(q.batch * sa, rng), b = random_values<T>(q.batch * sb, rng);
      const std::vector<T> c0 = random_values<T>(q.batch * sc, rng);
      const T beta = q.sum_c ? T(1) : T(0.5);
      std::vector<T> c = c0, ref = c0;
      grad::kernels::gemm_batched<T>(q.batch, ta, tb, q.m, q.n, q.k, T(1.5), a.data(), lda, stride_a,
                                     b.data(), ldb, stride_b, beta, c.data(), ldc, stride_c);
      grad::kernels::reference::gemm_batched<T>(q.batch, ta, tb, q.m, q.n, q.k, T(1.5), a.data(), lda,
                                                stride_a, b.data(), ldb, stride_b, beta, ref.data(), ldc,
                                                stride_c);
      const double tol = std::numeric_limits<T>::epsilon() * 8.0 * (std::sqrt(double(q.k)) + 2.0) *
                         double(q.k) * double(q.batch);
      std::size_t bad = 0;
      for (std::size_t i = 0; i < c.size(); ++i)
        bad += !(std::abs(double(c[i]) - double(ref[i])) <= tol);
      CHECK(bad == 0);
    }
  grad::set_num_threads(1);
}

TEST_CASE_TEMPLATE("gemm: threads give the same bits as one thread", T, float, double) {
  std::mt19937 rng(7);
  const gemm_case shapes[] = {{false, false, 300, 257, 130}, {false, false, 64, 700, 300},
                              {false, false, 700, 40, 300},  {false, false, 1, 3000, 400},
                              {false, false, 3000, 1, 400},  {false, false, 130, 1100, 33}};
  for (const layout lay : layouts)
    for (gemm_case t : shapes) {
      t.ta = lay.ta;
      t.tb = lay.tb;
      t.beta = 0.5;
      grad::set_num_threads(2);
      const operands<T> op(t, rng);
      const std::vector<T> two = check_case<T>(t, op);
      grad::set_num_threads(1);
      std::vector<T> one = op.c0;
      grad::kernels::gemm<T>(t.ta, t.tb, t.m, t.n, t.k, T(t.alpha), op.a.data(), op.lda, op.b.data(), op.ldb,
                             T(t.beta), one.data(), op.ldc);
      CHECK_MESSAGE(std::memcmp(one.data(), two.data(), one.size() * sizeof(T)) == 0, describe(t));
    }
  grad::set_num_threads(0);
  CHECK(grad::get_num_threads() >= 1);
  grad::set_num_threads(1);
  CHECK(grad::get_num_threads() == 1);
}

TEST_CASE("parallel_tasks: every task runs once; an exception reaches the caller") {
  grad::set_num_threads(2);
  std::vector<std::atomic<int>> runs(1000);
  grad::detail::parallel_tasks(runs.size(), 2, [&](std::size_t t) { runs[t].fetch_add(1); });
  std::size_t once = 0;
  for (const auto& r : runs)
    once += r.load() == 1;
  CHECK(once == runs.size());
  CHECK_THROWS_AS(grad::detail::parallel_tasks(100, 2,
                                               [](std::size_t t) {
                                                 if (t == 37)
                                                   throw std::runtime_error("task 37");
                                               }),
                  std::runtime_error);
  grad::set_num_threads(1);
}

TEST_CASE("parallel_tasks: during a back-off every task runs once, on the caller") {
  grad::detail::parallel_backoff& state = grad::detail::parallel_state();
  state.serial_until.store(grad::detail::now_ns() + std::int64_t(60) * 1000000000);
  const std::thread::id caller = std::this_thread::get_id();
  std::vector<int> runs(64, 0);
  bool elsewhere = false;
  grad::detail::parallel_tasks(runs.size(), 2, [&](std::size_t t) {
    ++runs[t];
    elsewhere = elsewhere || std::this_thread::get_id() != caller;
  });
  CHECK(std::count(runs.begin(), runs.end(), 1) == 64);
  CHECK_FALSE(elsewhere);
  state.serial_until.store(0);
  state.period.store(0);
  state.last_bad.store(false);
}
