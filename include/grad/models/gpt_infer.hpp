#pragma once
/// @file models/gpt_infer.hpp
/// Plain kernels of GPT inference with a KV cache (no tape): row-wise layer norm, bias, GELU and the
/// attention of new queries against cached keys and values.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <vector>

#include "grad/kernels/gemm.hpp"
#include "grad/kernels/parallel.hpp"
#include "grad/kernels/softmax.hpp"
#include "grad/kernels/unary.hpp"

namespace grad::detail {

/// y (rows, c) = layer_norm(x) w + b per row (biased variance, double accumulation as ops/norm.hpp).
template <class T>
void gpt_layer_norm_rows(const T* x, T* y, std::size_t rows, std::size_t c, const T* w, const T* b,
                         double eps) {
  for (std::size_t r = 0; r < rows; ++r) {
    const T* xr = x + r * c;
    double s = 0;
    for (std::size_t j = 0; j < c; ++j)
      s += xr[j];
    const double mu = s / static_cast<double>(c);
    double v = 0;
    for (std::size_t j = 0; j < c; ++j)
      v += (xr[j] - mu) * (xr[j] - mu);
    const T m = static_cast<T>(mu), q = static_cast<T>(1.0 / std::sqrt(v / static_cast<double>(c) + eps));
    for (std::size_t j = 0; j < c; ++j)
      y[r * c + j] = (xr[j] - m) * q * w[j] + b[j];
  }
}

/// y[0, n) += x (k) W (k, n) for one row x: the weights streamed row after row, each task owning a
/// contiguous range of at least 1024 columns. Why not kernels::gemm's vector path: it walks W in strips
/// of 64 columns down all k rows (256 contiguous bytes per row), which measured about half the
/// bandwidth of reading W in order when W does not fit the cache (the decoding step of GPT-2 small
/// reads 340 MB of such weights per token).
template <class T>
void gpt_gemv_rows(const T* x, const T* w, T* y, std::size_t k, std::size_t n) {
  constexpr std::size_t min_cols = 1024;
  const std::size_t tasks = k * n >= (std::size_t(1) << 16) ? std::max<std::size_t>(1, n / min_cols) : 1;
  const std::size_t per = (n + tasks - 1) / tasks;
  parallel_tasks(tasks, get_num_threads(), [&](std::size_t t) {
    const std::size_t c0 = t * per, c1 = std::min(n, c0 + per), len = c1 > c0 ? c1 - c0 : 0;
    T* yc = y + c0;
    std::size_t p = 0;
    for (; p + 4 <= k; p += 4) { // four rows per pass: y is loaded and stored a quarter as often
      const T a0 = x[p], a1 = x[p + 1], a2 = x[p + 2], a3 = x[p + 3];
      const T* w0 = w + p * n + c0;
      const T* w1 = w0 + n;
      const T* w2 = w1 + n;
      const T* w3 = w2 + n;
      for (std::size_t j = 0; j < len; ++j)
        yc[j] += a0 * w0[j] + a1 * w1[j] + a2 * w2[j] + a3 * w3[j];
    }
    for (; p < k; ++p) {
      const T a = x[p];
      const T* wp = w + p * n + c0;
      for (std::size_t j = 0; j < len; ++j)
        yc[j] += a * wp[j];
    }
  });
}

/// y (rows, n) = x (rows, k) W (k, n) + b (n), or y += x W + b when accumulate (a residual add).
template <class T>
void gpt_affine_rows(const T* x, const T* w, const T* b, T* y, std::size_t rows, std::size_t k, std::size_t n,
                     bool accumulate) {
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < n; ++j)
      y[i * n + j] = accumulate ? y[i * n + j] + b[j] : b[j];
  if (rows == 1)
    gpt_gemv_rows(x, w, y, k, n);
  else
    kernels::gemm<T>(false, false, rows, n, k, T(1), x, k, w, n, T(1), y, n);
}

/// Attention of n new queries per row against the cached keys and values of positions [0, len + n):
/// qkv (B n, 3C) holds the new rows' q (k and v are already in the cache), y (B n, C) gets the output.
/// kc(b, h) / vc(b, h) give the cache's (Tmax, HS) block of row b, head h.
template <class T, class K, class V>
void gpt_cached_attention(const T* qkv, T* y, std::size_t batch, std::size_t n, std::size_t len,
                          std::size_t c, std::size_t nh, K kc, V vc) {
  const std::size_t hs = c / nh, total = len + n, ld = 3 * c;
  const T scale = T(1) / std::sqrt(static_cast<T>(hs));
  std::vector<T> scratch(batch * nh * n * total);
  parallel_tasks(batch * nh, get_num_threads(), [&](std::size_t bh) {
    const std::size_t b = bh / nh, h = bh % nh;
    const T* q = qkv + b * n * ld + h * hs; // (n, HS), leading dimension 3C
    T* s = scratch.data() + bh * n * total; // (n, len + n)
    // S = q K^T / sqrt(HS) over every cached position
    kernels::gemm<T>(false, true, n, total, hs, scale, q, ld, kc(b, h), hs, T(0), s, total);
    for (std::size_t i = 0; i < n; ++i) { // new query i sits at position len + i: keys 0..len + i
      T* row = s + i * total;
      kernels::softmax_last<T>(row, row, 1, len + i + 1);
      std::fill(row + len + i + 1, row + total, T(0));
    }
    // y = P V
    kernels::gemm<T>(false, false, n, hs, total, T(1), s, total, vc(b, h), hs, T(0), y + b * n * c + h * hs,
                     c);
  });
}

} // namespace grad::detail
