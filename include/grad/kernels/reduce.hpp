#pragma once
/// @file kernels/reduce.hpp
/// Reductions on raw pointers: sum, max, mean, dot of a whole array; sum, max, mean over the last axis
/// of a row-major (rows, cols) matrix; column sums (over the first axis), vectorized across columns.
///
/// Summation order (deterministic, documented because results depend on it): the array is cut into
/// leaves of 2048 elements; a leaf is summed in 8 SIMD accumulators (element i goes to lane i mod W of
/// accumulator (i / W) mod 8, W the lane count) that are then added pairwise; leaves are combined by a
/// pairwise tree whose left part is always the largest power-of-two number of leaves below the total.
/// Rounding error therefore grows like log2(n), not n. The order depends on n and on W (so SSE, AVX2
/// and AVX-512 builds may differ in the last bits) but never on the thread count: parallel tasks are
/// whole subtrees of that same tree. Column sums use the same idea over rows (leaves of 8 rows).

#include <algorithm>
#include <cstddef>
#include <limits>
#include <vector>

#include "grad/kernels/binary.hpp"

namespace grad::detail {

/// Elements per leaf of the summation tree.
inline constexpr std::size_t reduce_leaf = 2048;
/// Leaves per parallel task; a power of two, so that every task is a subtree of the serial tree.
inline constexpr std::size_t reduce_task_leaves = 16;
/// Elements below which a reduction stays on one thread.
inline constexpr std::size_t reduce_parallel = std::size_t(1) << 17;
/// Rows per leaf of the column-sum tree.
inline constexpr std::size_t colsum_leaf_rows = 8;
/// Columns per parallel task of the column sums.
inline constexpr std::size_t colsum_task_cols = 512;

/// Sum of the lanes of v, pairwise in a fixed order (xsimd 8.1's avx512 hadd trips g++ 12 warnings).
template <class T, class A>
inline T lane_sum(const xsimd::batch<T, A>& v) noexcept {
  constexpr std::size_t W = xsimd::batch<T, A>::size;
  alignas(64) T l[W];
  v.store_aligned(l);
  for (std::size_t w = W / 2; w > 0; w /= 2)
    for (std::size_t i = 0; i < w; ++i)
      l[i] += l[i + w];
  return l[0];
}

/// Lanes [0, k) true, the others false.
template <class A, class T>
inline xsimd::batch_bool<T, A> first_lanes(std::size_t k) noexcept {
  using B = xsimd::batch<T, A>;
  alignas(64) T idx[B::size];
  for (std::size_t i = 0; i < B::size; ++i)
    idx[i] = T(i);
  return B::load_aligned(idx) < B(T(k));
}

/// Sum over i < n of f(in[i]...) as one batch of partial sums, for n <= reduce_leaf, in the leaf order
/// described in the file comment.
template <class A, class T, class F, class... In>
inline xsimd::batch<T, A> leaf_sum(std::size_t n, const F& f, const In*... in) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  B a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0)), a4(T(0)), a5(T(0)), a6(T(0)), a7(T(0));
  std::size_t i = 0;
  for (; i + 8 * W <= n; i += 8 * W) {
    a0 += f(B::load_unaligned(in + i)...);
    a1 += f(B::load_unaligned(in + i + W)...);
    a2 += f(B::load_unaligned(in + i + 2 * W)...);
    a3 += f(B::load_unaligned(in + i + 3 * W)...);
    a4 += f(B::load_unaligned(in + i + 4 * W)...);
    a5 += f(B::load_unaligned(in + i + 5 * W)...);
    a6 += f(B::load_unaligned(in + i + 6 * W)...);
    a7 += f(B::load_unaligned(in + i + 7 * W)...);
  }
  // The rest continues the same round-robin over the accumulators, so the order is a function of i.
  B* acc[8] = {&a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7};
  std::size_t j = 0;
  for (; i + W <= n; i += W, ++j)
    *acc[j] += f(B::load_unaligned(in + i)...);
  if (i < n)
    *acc[j] += xsimd::select(first_lanes<A, T>(n - i), f(load_n<A>(in + i, n - i)...), B(T(0)));
  return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
}

/// Combines leaf(b, len) over [begin, begin + n) (n >= 1) by the pairwise tree of the file comment, with
/// leaves of `unit` elements (a power-of-two multiple of reduce_leaf).
template <class B, class Leaf, class Comb>
inline B tree_serial(std::size_t begin, std::size_t n, std::size_t unit, const Leaf& leaf, const Comb& comb) {
  if (n <= unit)
    return leaf(begin, n);
  std::size_t h = unit;
  while (2 * h < n)
    h *= 2;
  const B left = tree_serial<B>(begin, h, unit, leaf, comb);
  return comb(left, tree_serial<B>(begin + h, n - h, unit, leaf, comb));
}

/// tree_serial over [0, n) (n >= 1), on several threads when n >= threshold; same result either way.
template <class B, class Leaf, class Comb>
inline B tree_reduce(std::size_t n, const Leaf& leaf, const Comb& comb, std::size_t threshold) {
  constexpr std::size_t chunk = reduce_leaf * reduce_task_leaves;
  const int threads = n >= threshold && n > chunk ? get_num_threads() : 1;
  if (threads <= 1)
    return tree_serial<B>(0, n, reduce_leaf, leaf, comb);
  // Each task is a subtree of `chunk` elements (the last may be shorter); the same tree then joins them.
  const std::size_t tasks = (n + chunk - 1) / chunk;
  std::vector<B> part(tasks);
  parallel_tasks(tasks, threads, [&](std::size_t t) {
    const std::size_t b = t * chunk;
    part[t] = tree_serial<B>(b, std::min(chunk, n - b), reduce_leaf, leaf, comb);
  });
  return tree_serial<B>(
      0, n, chunk, [&](std::size_t b, std::size_t) { return part[b / chunk]; }, comb);
}

/// Sum over i < n of f(in[i]...), in the documented order; 0 for n = 0.
template <class A, class T, class F, class... In>
inline T sum_of(std::size_t n, std::size_t threshold, const F& f, const In*... in) {
  using B = xsimd::batch<T, A>;
  if (n == 0)
    return T(0);
  const B s = tree_reduce<B>(
      n, [&](std::size_t b, std::size_t len) { return leaf_sum<A, T>(len, f, (in + b)...); },
      [](const B& u, const B& v) { return u + v; }, threshold);
  return lane_sum(s);
}

/// Maximum of x[0, n) for n >= 1; NaN if any element is NaN.
template <class A, class T>
inline T max_serial(const T* x, std::size_t n) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const T lowest = -std::numeric_limits<T>::infinity();
  B m0(lowest), m1(lowest), m2(lowest), m3(lowest);
  // x86 max drops a NaN operand, so NaNs are tracked on the side (one compare per batch, free when
  // memory bound). xsimd::isnan, not v != v: xsimd 8.1's AVX-512 != is an ordered compare, false for NaN.
  auto nan = xsimd::isnan(B(T(0)));
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    const B v0 = B::load_unaligned(x + i), v1 = B::load_unaligned(x + i + W);
    const B v2 = B::load_unaligned(x + i + 2 * W), v3 = B::load_unaligned(x + i + 3 * W);
    nan = nan | xsimd::isnan(v0) | xsimd::isnan(v1) | xsimd::isnan(v2) | xsimd::isnan(v3);
    m0 = xsimd::max(m0, v0);
    m1 = xsimd::max(m1, v1);
    m2 = xsimd::max(m2, v2);
    m3 = xsimd::max(m3, v3);
  }
  for (; i + W <= n; i += W) {
    const B v = B::load_unaligned(x + i);
    nan = nan | xsimd::isnan(v);
    m0 = xsimd::max(m0, v);
  }
  if (i < n) {
    const B v = load_n<A>(x + i, n - i, lowest);
    nan = nan | xsimd::isnan(v);
    m1 = xsimd::max(m1, v);
  }
  if (xsimd::any(nan))
    return std::numeric_limits<T>::quiet_NaN();
  alignas(64) T lanes[W];
  xsimd::max(xsimd::max(m0, m1), xsimd::max(m2, m3)).store_aligned(lanes);
  return *std::max_element(lanes, lanes + W);
}

/// out[j] (+)= sum of the `rows` (1..colsum_leaf_rows) rows of x (leading dimension ld) in row order.
template <class A, class T>
inline void colsum_leaf(const T* x, std::size_t ld, std::size_t rows, std::size_t cols, T* out,
                        bool accumulate) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const auto column = [&](std::size_t j, auto load, auto store) {
    B s = load(x + j);
    for (std::size_t r = 1; r < rows; ++r)
      s += load(x + r * ld + j);
    if (accumulate)
      s = load(out + j) + s;
    store(out + j, s);
  };
  std::size_t j = 0;
  for (; j + W <= cols; j += W)
    column(
        j, [](const T* p) { return B::load_unaligned(p); }, [](T* p, const B& v) { v.store_unaligned(p); });
  if (j < cols) {
    const std::size_t k = cols - j;
    column(
        j, [k](const T* p) { return load_n<A>(p, k); }, [k](T* p, const B& v) { store_n<A>(p, v, k); });
  }
}

/// Levels of scratch rows colsum_tree needs for `rows` rows (a template on A like everything here: ODR).
template <class A>
inline std::size_t colsum_depth(std::size_t rows) noexcept {
  std::size_t d = 0;
  for (std::size_t h = colsum_leaf_rows; h < rows; h *= 2)
    ++d;
  return d;
}

/// out[j] = sum over r < rows (>= 1) of x[r ld + j], by a pairwise tree over leaves of
/// colsum_leaf_rows rows; scratch holds colsum_depth(rows) * cols elements.
template <class A, class T>
inline void colsum_tree(const T* x, std::size_t ld, std::size_t rows, std::size_t cols, T* out, T* scratch) {
  if (rows <= colsum_leaf_rows) {
    colsum_leaf<A>(x, ld, rows, cols, out, false);
    return;
  }
  std::size_t h = colsum_leaf_rows;
  while (2 * h < rows)
    h *= 2;
  colsum_tree<A>(x, ld, h, cols, out, scratch); // its own temporaries are done before the next line
  colsum_tree<A>(x + h * ld, ld, rows - h, cols, scratch, scratch + cols);
  ew_serial<A>(
      cols, [](const auto& u, const auto& v) { return u + v; }, out, out, scratch);
}

/// out[j] (+)= column sums of the row-major (rows, cols) x, deterministic for any thread count.
template <class A, class T>
inline void colsum(const T* x, std::size_t rows, std::size_t cols, T* out, bool accumulate) {
  if (cols == 0)
    return;
  if (rows == 0) {
    if (!accumulate)
      std::fill(out, out + cols, T(0));
    return;
  }
  if (rows <= colsum_leaf_rows) {
    colsum_leaf<A>(x, cols, rows, cols, out, accumulate);
    return;
  }
  // Column blocks are independent, so splitting them over threads cannot change any result. Blocks
  // of colsum_task_cols columns, or, when that leaves a thread idle (e.g. (10000, 1000) on two
  // threads: one block of 1000 ran at 0.7x the two-thread copy bandwidth), one block per thread
  // rounded up to whole vectors.
  constexpr std::size_t W = xsimd::batch<T, A>::size;
  const int threads = rows * cols >= reduce_parallel ? get_num_threads() : 1;
  std::size_t cb = cols >= 2 * colsum_task_cols ? colsum_task_cols : cols;
  if (threads > 1 && (cols + cb - 1) / cb < std::size_t(threads)) {
    const std::size_t per = (cols + std::size_t(threads) - 1) / std::size_t(threads);
    cb = std::min(cols, std::max(W, (per + W - 1) / W * W));
  }
  const std::size_t tasks = (cols + cb - 1) / cb;
  const std::size_t levels = colsum_depth<A>(rows) + (accumulate ? 1 : 0);
  parallel_tasks(tasks, threads, [&](std::size_t t) {
    const std::size_t j0 = t * cb, w = std::min(cb, cols - j0);
    // Own scratch per task: a task is at least 8 x 512 elements of work, or a thread's share of a
    // matrix of at least reduce_parallel elements; the allocation is noise.
    std::vector<T> scratch(levels * w);
    T* s = scratch.data();
    if (accumulate) {
      colsum_tree<A>(x + j0, cols, rows, w, s, s + w);
      ew_serial<A>(
          w, [](const auto& u, const auto& v) { return u + v; }, out + j0, out + j0, s);
    } else {
      colsum_tree<A>(x + j0, cols, rows, w, out + j0, s);
    }
  });
}

} // namespace grad::detail

namespace grad::kernels {

/// Sum of x[0, n) in the documented pairwise order; 0 for n = 0.
template <class T, class A = xsimd::default_arch>
T sum(const T* x, std::size_t n) {
  return detail::sum_of<A, T>(
      n, detail::reduce_parallel, [](const auto& v) { return v; }, x);
}

/// Sum of x[i] y[i] for i < n, in the same order as sum.
template <class T, class A = xsimd::default_arch>
T dot(const T* x, const T* y, std::size_t n) {
  return detail::sum_of<A, T>(
      n, detail::reduce_parallel, [](const auto& u, const auto& v) { return u * v; }, x, y);
}

/// Mean of x[0, n); NaN for n = 0.
template <class T, class A = xsimd::default_arch>
T mean(const T* x, std::size_t n) {
  return sum<T, A>(x, n) / T(n);
}

/// Largest element of x[0, n); NaN if any is NaN; -inf for n = 0.
template <class T, class A = xsimd::default_arch>
T max(const T* x, std::size_t n) {
  const int threads = n >= detail::reduce_parallel ? get_num_threads() : 1;
  if (threads <= 1 || n == 0)
    return n == 0 ? -std::numeric_limits<T>::infinity() : detail::max_serial<A>(x, n);
  // max is exact, so any split gives the same value; only NaN needs care when joining.
  constexpr std::size_t chunk = detail::reduce_leaf * detail::reduce_task_leaves;
  const std::size_t tasks = (n + chunk - 1) / chunk;
  std::vector<T> part(tasks);
  detail::parallel_tasks(tasks, threads, [&](std::size_t t) {
    part[t] = detail::max_serial<A>(x + t * chunk, std::min(chunk, n - t * chunk));
  });
  T m = part[0];
  for (const T v : part) {
    if (v != v)
      return v;
    m = v > m ? v : m;
  }
  return m;
}

/// y[i] = sum of row i of the row-major (rows, cols) x (each row in the order of sum).
template <class T, class A = xsimd::default_arch>
void sum_last(const T* x, T* y, std::size_t rows, std::size_t cols) {
  detail::for_rows(rows, cols, detail::reduce_parallel, [&](std::size_t i) {
    y[i] = detail::sum_of<A, T>(
        cols, ~std::size_t(0), [](const auto& v) { return v; }, x + i * cols);
  });
}

/// y[i] = mean of row i of the row-major (rows, cols) x; NaN for cols = 0.
template <class T, class A = xsimd::default_arch>
void mean_last(const T* x, T* y, std::size_t rows, std::size_t cols) {
  detail::for_rows(rows, cols, detail::reduce_parallel, [&](std::size_t i) {
    y[i] = detail::sum_of<A, T>(
               cols, ~std::size_t(0), [](const auto& v) { return v; }, x + i * cols) /
           T(cols);
  });
}

/// y[i] = largest element of row i of the row-major (rows, cols) x (NaN if the row has one).
template <class T, class A = xsimd::default_arch>
void max_last(const T* x, T* y, std::size_t rows, std::size_t cols) {
  detail::for_rows(rows, cols, detail::reduce_parallel, [&](std::size_t i) {
    y[i] = cols == 0 ? -std::numeric_limits<T>::infinity() : detail::max_serial<A>(x + i * cols, cols);
  });
}

/// y[j] = sum over i of x[i, j] for the row-major (rows, cols) x: column sums, overwriting y.
template <class T, class A = xsimd::default_arch>
void sum_first(const T* x, T* y, std::size_t rows, std::size_t cols) {
  detail::colsum<A>(x, rows, cols, y, false);
}

/// drow[j] += sum over i of dy[i, j]: the backward of add_row (bias gradient), accumulating.
template <class T, class A = xsimd::default_arch>
void sum_rows(const T* dy, T* drow, std::size_t rows, std::size_t cols) {
  detail::colsum<A>(dy, rows, cols, drow, true);
}

} // namespace grad::kernels
