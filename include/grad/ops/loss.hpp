#pragma once
/// @file ops/loss.hpp
/// Fused loss ops with per-sample outputs; functional/loss.hpp adds the reductions. Formulas follow
/// PyTorch's documentation of CrossEntropyLoss, NLLLoss, BCELoss and BCEWithLogitsLoss.

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "grad/core/apply.hpp"
#include "grad/core/index_tensor.hpp"

namespace grad {
namespace detail {

/// Checks targets (N) against inputs (N, C) for `op`: shape, then every value in [0, C) or ignore_index.
inline void check_targets(std::string_view op, const shape_type& in, const index_tensor& t,
                          std::int64_t ignore) {
  if (in.size() != 2)
    throw shape_error(std::string(op) + ": input must be 2-d (N, C), got " + to_string(in) +
                      "; reshape (B, T, V) logits to (B*T, V) and targets to (B*T)");
  if (t.shape() != shape_type{in[0]})
    throw shape_error(std::string(op) + ": target shape " + to_string(t.shape()) + " does not match input " +
                      to_string(in) + " (expected (" + std::to_string(in[0]) + ",))");
  for (std::size_t i = 0; i < t.numel(); ++i) {
    const std::int64_t v = t[i];
    if (v != ignore && (v < 0 || static_cast<std::size_t>(v) >= in[1]))
      throw value_error(std::string(op) + ": target " + std::to_string(v) + " at position " +
                        std::to_string(i) + " is out of range [0, " + std::to_string(in[1]) +
                        ") (and is not ignore_index " + std::to_string(ignore) + ")");
  }
}

inline void check_same(std::string_view op, const shape_type& a, const shape_type& b) {
  if (a != b)
    throw shape_error(std::string(op) + ": target shape " + to_string(b) + " differs from input shape " +
                      to_string(a));
}

} // namespace detail

namespace ops {

/// Per-sample cross entropy of logits (N, C) with class targets (N) -> (N), fused with log-softmax:
/// loss_i = (1 - eps) (lse_i - x_{i,t_i}) + eps (lse_i - mean_c x_{i,c}), lse_i = log sum_c exp x_{i,c};
/// eps is label_smoothing (the target distribution is (1 - eps) one_hot + eps / C). Ignored samples give 0.
struct cross_entropy_op {
  static constexpr std::string_view name = "cross_entropy";
  index_tensor targets;
  std::int64_t ignore_index = -100;
  double label_smoothing = 0;
  std::vector<double> lse; // (N): log-sum-exp of each row, saved for backward

  shape_type shape(const shape_type& x) const {
    detail::check_targets(name, x, targets, ignore_index);
    return {x[0]};
  }
  std::uint64_t flops(const shape_type&, const shape_type& x) const { return 5 * numel(x); }

  template <class C>
  void forward(C& c) {
    using T = typename C::value_type;
    const std::size_t n = c.in(0).shape()[0], k = c.in(0).shape()[1];
    const T* x = c.in(0).data();
    T* y = c.out().data();
    lse.assign(n, 0);
    const double eps = label_smoothing;
    for (std::size_t i = 0; i < n; ++i) {
      const T* xi = x + i * k;
      const double m = k ? *std::max_element(xi, xi + k) : 0.0;
      double s = 0, sx = 0;
      for (std::size_t j = 0; j < k; ++j) {
        s += std::exp(xi[j] - m);
        sx += xi[j];
      }
      lse[i] = m + std::log(s);
      if (targets[i] == ignore_index) {
        y[i] = 0;
        continue;
      }
      const double nll = lse[i] - xi[targets[i]];
      y[i] = static_cast<T>((1 - eps) * nll + (eps > 0 ? eps * (lse[i] - sx / static_cast<double>(k)) : 0.0));
    }
  }
  template <class C>
  void backward(C& c) const {
    using T = typename C::value_type;
    if (!c.needs_grad(0))
      return;
    const std::size_t n = c.in(0).shape()[0], k = c.in(0).shape()[1];
    const T* x = c.in(0).data();
    const T* g = c.dout().data();
    T* dx = c.din(0).data();
    const T eps = static_cast<T>(label_smoothing), off = eps / static_cast<T>(k);
    for (std::size_t i = 0; i < n; ++i) {
      if (targets[i] == ignore_index)
        continue;
      const T l = static_cast<T>(lse[i]);
      // d loss_i / d x_{i,c} = softmax_c - (1 - eps) [c = t_i] - eps / C
      for (std::size_t j = 0; j < k; ++j)
        dx[i * k + j] += g[i] * (std::exp(x[i * k + j] - l) - off);
      dx[i * k + static_cast<std::size_t>(targets[i])] -= g[i] * (T(1) - eps);
    }
  }
};

/// Per-sample negative log likelihood of log-probabilities (N, C) with class targets (N) -> (N):
/// loss_i = -x_{i,t_i}; ignored samples give 0.
struct nll_loss_op {
  static constexpr std::string_view name = "nll_loss";
  index_tensor targets;
  std::int64_t ignore_index = -100;

  shape_type shape(const shape_type& x) const {
    detail::check_targets(name, x, targets, ignore_index);
    return {x[0]};
  }
  std::uint64_t flops(const shape_type& out, const shape_type&) const { return numel(out); }
  template <class C>
  void forward(C& c) const {
    const std::size_t k = c.in(0).shape()[1];
    const auto* x = c.in(0).data();
    auto* y = c.out().data();
    for (std::size_t i = 0; i < targets.numel(); ++i)
      y[i] = targets[i] == ignore_index ? 0 : -x[i * k + static_cast<std::size_t>(targets[i])];
  }
  template <class C>
  void backward(C& c) const {
    if (!c.needs_grad(0))
      return;
    const std::size_t k = c.in(0).shape()[1];
    const auto* g = c.dout().data();
    auto* dx = c.din(0).data();
    for (std::size_t i = 0; i < targets.numel(); ++i) // d loss_i / d x_{i,t_i} = -1
      if (targets[i] != ignore_index)
        dx[i * k + static_cast<std::size_t>(targets[i])] -= g[i];
  }
};

/// Elementwise binary cross entropy of probabilities p and targets y (same shape):
/// -(y max(log p, -100) + (1 - y) max(log(1 - p), -100)); the clamp at -100 is PyTorch's, so p = 0 or
/// 1 gives a finite loss. Both inputs are differentiable.
struct binary_cross_entropy_op {
  static constexpr std::string_view name = "binary_cross_entropy";
  shape_type shape(const shape_type& p, const shape_type& y) const {
    detail::check_same(name, p, y);
    return p;
  }
  std::uint64_t flops(const shape_type& out, const shape_type&, const shape_type&) const {
    return 6 * numel(out);
  }
  template <class V>
  static V clamped_log(V v) {
    return std::max(std::log(v), V(-100));
  }
  template <class C>
  void forward(C& c) const {
    const auto* p = c.in(0).data();
    const auto* y = c.in(1).data();
    auto* out = c.out().data();
    for (std::size_t i = 0, n = c.out().size(); i < n; ++i) {
      if (!(p[i] >= 0 && p[i] <= 1))
        throw value_error("binary_cross_entropy: input " + std::to_string(p[i]) + " at position " +
                          std::to_string(i) +
                          " is not a probability in [0, 1]; use "
                          "binary_cross_entropy_with_logits for raw scores");
      out[i] = -(y[i] * clamped_log(p[i]) + (1 - y[i]) * clamped_log(1 - p[i]));
    }
  }
  template <class C>
  void backward(C& c) const {
    using T = typename C::value_type;
    const T* p = c.in(0).data();
    const T* y = c.in(1).data();
    const T* g = c.dout().data();
    T* dp = c.needs_grad(0) ? c.din(0).data() : nullptr;
    T* dy = c.needs_grad(1) ? c.din(1).data() : nullptr;
    for (std::size_t i = 0, n = c.out().size(); i < n; ++i) {
      if (dp) // d/dp = (p - y) / (p (1 - p)), the denominator kept >= 1e-12 as PyTorch does
        dp[i] += g[i] * (p[i] - y[i]) / std::max((1 - p[i]) * p[i], T(1e-12));
      if (dy) // d/dy = log(1 - p) - log p (clamped logs)
        dy[i] += g[i] * (clamped_log(1 - p[i]) - clamped_log(p[i]));
    }
  }
};

/// Elementwise binary cross entropy of logits x and targets y, in the stable form
/// max(x, 0) - x y + log(1 + exp(-|x|)) = -(y log s(x) + (1 - y) log(1 - s(x))), s the sigmoid.
struct binary_cross_entropy_with_logits_op {
  static constexpr std::string_view name = "binary_cross_entropy_with_logits";
  shape_type shape(const shape_type& x, const shape_type& y) const {
    detail::check_same(name, x, y);
    return x;
  }
  std::uint64_t flops(const shape_type& out, const shape_type&, const shape_type&) const {
    return 7 * numel(out);
  }
  template <class C>
  void forward(C& c) const {
    using T = typename C::value_type;
    const T* x = c.in(0).data();
    const T* y = c.in(1).data();
    T* out = c.out().data();
    for (std::size_t i = 0, n = c.out().size(); i < n; ++i)
      out[i] = std::max(x[i], T(0)) - x[i] * y[i] + std::log1p(std::exp(-std::abs(x[i])));
  }
  template <class C>
  void backward(C& c) const {
    using T = typename C::value_type;
    const T* x = c.in(0).data();
    const T* y = c.in(1).data();
    const T* g = c.dout().data();
    T* dx = c.needs_grad(0) ? c.din(0).data() : nullptr;
    T* dy = c.needs_grad(1) ? c.din(1).data() : nullptr;
    for (std::size_t i = 0, n = c.out().size(); i < n; ++i) {
      if (dx) { // d/dx = sigmoid(x) - y
        const T s = x[i] >= 0 ? T(1) / (T(1) + std::exp(-x[i])) : std::exp(x[i]) / (T(1) + std::exp(x[i]));
        dx[i] += g[i] * (s - y[i]);
      }
      if (dy) // d/dy = -x
        dy[i] -= g[i] * x[i];
    }
  }
};

} // namespace ops
} // namespace grad
