#pragma once
/// @file optim/clip.hpp
/// Gradient clipping: by the total norm of all gradients, or elementwise by value (torch.nn.utils).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "grad/core/error.hpp"
#include "grad/core/tensor.hpp"
#include "grad/detail/xsimd.hpp"
#include "grad/optim/optimizer.hpp"

namespace grad::optim {
namespace detail {

/// Sum over x of op(x), in blocks of 256: each block is reduced in T by four SIMD accumulators (at most
/// 16 additions per lane, even with SSE), then added into a double, so a float sum over millions of
/// elements keeps its precision.
template <class T, class Op>
inline double blocked_sum(const T* x, std::size_t n, Op op) {
  using V = grad::detail::simd<T>;
  constexpr std::size_t block = 256; // a multiple of 4 batches for every SIMD width up to AVX-512
  static_assert(block % (4 * V::size) == 0);
  double total = 0;
  std::size_t i = 0;
  for (; i + block <= n; i += block) {
    V a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0));
    for (std::size_t j = i; j < i + block; j += 4 * V::size) {
      a0 = a0 + op(V::load_unaligned(x + j));
      a1 = a1 + op(V::load_unaligned(x + j + V::size));
      a2 = a2 + op(V::load_unaligned(x + j + 2 * V::size));
      a3 = a3 + op(V::load_unaligned(x + j + 3 * V::size));
    }
    total += static_cast<double>(grad::detail::hsum((a0 + a1) + (a2 + a3)));
  }
  for (; i < n; ++i)
    total += static_cast<double>(op(x[i]));
  return total;
}

/// The largest |x|.
template <class T>
inline double max_abs(const T* x, std::size_t n) {
  using V = grad::detail::simd<T>;
  V acc(T(0));
  std::size_t i = 0;
  for (; i + V::size <= n; i += V::size)
    acc = xsimd::max(acc, xsimd::abs(V::load_unaligned(x + i)));
  double m = 0;
  alignas(64) T lanes[V::size];
  acc.store_aligned(lanes);
  for (std::size_t k = 0; k < V::size; ++k)
    m = std::max(m, static_cast<double>(lanes[k]));
  for (; i < n; ++i)
    m = std::max(m, std::abs(static_cast<double>(x[i])));
  return m;
}

/// True if any element is NaN (xsimd::max would hide it in the inf-norm).
template <class T>
inline bool any_nan(const T* x, std::size_t n) {
  return std::any_of(x, x + n, [](T v) { return v != v; });
}

} // namespace detail

/// Scales all gradients together so that their total `norm_type`-norm is at most `max_norm`, and
/// returns the total norm before clipping (torch.nn.utils.clip_grad_norm_). The norm is taken over
/// the concatenation of all gradients; `norm_type` is any p > 0 or infinity. Parameters without a
/// gradient are skipped. Gradients are multiplied by max_norm / (total + 1e-6) when that is < 1.
template <element T>
T clip_grad_norm(const std::vector<basic_tensor<T>>& params, double max_norm, double norm_type = 2.0,
                 bool error_if_nonfinite = false) {
  if (!(max_norm >= 0) || std::isnan(max_norm))
    throw value_error("clip_grad_norm: invalid max_norm " + detail::num(max_norm) + "; it must be >= 0");
  const bool inf = std::isinf(norm_type) && norm_type > 0;
  if (!inf && !(norm_type > 0 && std::isfinite(norm_type)))
    throw value_error("clip_grad_norm: invalid norm_type " + detail::num(norm_type) +
                      "; it must be > 0 (2 = Euclidean, 1, or infinity for the largest |g|)");
  std::vector<basic_tensor<T>> with_grad;
  for (const auto& p : params)
    if (p.defined() && p.has_grad())
      with_grad.push_back(p);

  double total = 0;
  for (auto& p : with_grad) {
    const T* g = p.grad().data();
    const std::size_t n = p.numel();
    if (inf) {
      if (detail::any_nan(g, n)) { // std::max would drop a NaN; PyTorch's norm returns it
        total = std::numeric_limits<double>::quiet_NaN();
        break;
      }
      total = std::max(total, detail::max_abs(g, n));
    } else if (norm_type == 2) {
      total += detail::blocked_sum(g, n, [](auto v) { return v * v; });
    } else if (norm_type == 1) {
      total += detail::blocked_sum(g, n, [](auto v) {
        using std::abs;
        using xsimd::abs;
        return abs(v);
      });
    } else {
      for (std::size_t i = 0; i < n; ++i) // rare norms: a plain loop over std::pow
        total += std::pow(std::abs(static_cast<double>(g[i])), norm_type);
    }
  }
  if (!inf && norm_type != 1)
    total = norm_type == 2 ? std::sqrt(total) : std::pow(total, 1.0 / norm_type);

  if (error_if_nonfinite && !std::isfinite(total))
    throw value_error("clip_grad_norm: the total norm of order " + detail::num(norm_type) +
                      " of the gradients is non-finite (" + detail::num(total) +
                      "), so they cannot be clipped; a NaN or inf came out of backward");
  // Formula from torch.nn.utils.clip_grad_norm_: clip_coef = max_norm / (total_norm + 1e-6).
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1) {
    const T c = static_cast<T>(coef);
    for (auto& p : with_grad) {
      T* g = p.grad().data();
      const std::size_t n = p.numel();
      for (std::size_t i = 0; i < n; ++i) // a plain loop the compiler vectorizes
        g[i] *= c;
    }
  }
  return static_cast<T>(total);
}

/// clip_grad_norm over a braced list: `clip_grad_norm({w, b}, 1.0)`.
template <element T>
T clip_grad_norm(std::initializer_list<basic_tensor<T>> params, double max_norm, double norm_type = 2.0,
                 bool error_if_nonfinite = false) {
  return clip_grad_norm(std::vector<basic_tensor<T>>(params), max_norm, norm_type, error_if_nonfinite);
}

/// Clamps every gradient element into [-clip_value, clip_value] (torch.nn.utils.clip_grad_value_).
/// Parameters without a gradient are skipped.
template <element T>
void clip_grad_value(const std::vector<basic_tensor<T>>& params, double clip_value) {
  if (!(clip_value >= 0))
    throw value_error("clip_grad_value: invalid clip_value " + detail::num(clip_value) + "; it must be >= 0");
  const T hi = static_cast<T>(clip_value), lo = -hi;
  for (auto p : params) {
    if (!p.defined() || !p.has_grad())
      continue;
    T* g = p.grad().data();
    const std::size_t n = p.numel();
    for (std::size_t i = 0; i < n; ++i)
      g[i] = std::min(std::max(g[i], lo), hi);
  }
}

/// clip_grad_value over a braced list: `clip_grad_value({w, b}, 0.5)`.
template <element T>
void clip_grad_value(std::initializer_list<basic_tensor<T>> params, double clip_value) {
  clip_grad_value(std::vector<basic_tensor<T>>(params), clip_value);
}

} // namespace grad::optim
