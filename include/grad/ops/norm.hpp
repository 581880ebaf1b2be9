#pragma once
/// @file ops/norm.hpp
/// Fused normalisations with hand-written backward: layer_norm over the last dimensions (Ba, Kiros and
/// Hinton 2016, arXiv:1607.06450) and batch_norm over the batch and spatial dimensions per channel
/// (Ioffe and Szegedy 2015, arXiv:1502.03167), training and evaluation modes.

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "grad/core/apply.hpp"

namespace grad {
namespace detail {

/// The backward shared by both norms, over one group of m elements with mean and rstd = 1/sqrt(var + eps)
/// (derivation as in llm.c's layernorm_backward): with xhat = (x - mean) rstd and dxhat = g * w,
/// dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)). Element j < m of the group is at index(j);
/// dw[j] and db[j] (when not null) receive the per-element parameter gradients.
template <class T, class Index, class W>
void norm_backward_group(std::size_t m, Index index, const T* x, const T* g, T* dx, T mean, T rstd,
                         W weight_of, T* dw, T* db) {
  T mean_d = 0, mean_dx = 0;
  for (std::size_t j = 0; j < m; ++j) {
    const std::size_t i = index(j);
    const T xhat = (x[i] - mean) * rstd;
    const T d = g[i] * weight_of(j);
    mean_d += d;
    mean_dx += d * xhat;
    if (dw) // d y / d w = xhat
      dw[j] += g[i] * xhat;
    if (db) // d y / d b = 1
      db[j] += g[i];
  }
  mean_d /= static_cast<T>(m);
  mean_dx /= static_cast<T>(m);
  if (dx)
    for (std::size_t j = 0; j < m; ++j) {
      const std::size_t i = index(j);
      const T xhat = (x[i] - mean) * rstd;
      dx[i] += rstd * (g[i] * weight_of(j) - mean_d - xhat * mean_dx);
    }
}

} // namespace detail

namespace ops {

/// y = (x - mean) / sqrt(var + eps) * weight + bias over the last dimensions `normalized` (biased
/// variance, as PyTorch). Inputs: x (..., *normalized) and optionally weight and bias (*normalized).
struct layer_norm_op {
  static constexpr std::string_view name = "layer_norm";
  shape_type normalized; // the trailing shape normalised over, e.g. (C)
  double eps = 1e-5;
  std::vector<double> mean, rstd; // (rows): saved by forward for backward

  void check(const shape_type& x) const {
    const bool ok = !normalized.empty() && x.size() >= normalized.size() &&
                    std::equal(normalized.begin(), normalized.end(),
                               x.end() - static_cast<std::ptrdiff_t>(normalized.size()));
    if (!ok)
      throw shape_error("layer_norm: input " + to_string(x) + " does not end in normalized_shape " +
                        to_string(normalized));
  }
  void check_param(const char* what, const shape_type& p) const {
    if (p != normalized)
      throw shape_error("layer_norm: " + std::string(what) + " " + to_string(p) +
                        " must have normalized_shape " + to_string(normalized));
  }
  shape_type shape(const shape_type& x) const {
    check(x);
    return x;
  }
  shape_type shape(const shape_type& x, const shape_type& w) const {
    check(x);
    check_param("weight", w);
    return x;
  }
  shape_type shape(const shape_type& x, const shape_type& w, const shape_type& b) const {
    check_param("bias", b);
    return shape(x, w);
  }
  template <class... S>
  std::uint64_t flops(const shape_type& out, const S&...) const {
    return 8 * numel(out);
  }

  template <class C>
  void forward(C& c) {
    using T = typename C::value_type;
    const std::size_t d = numel(normalized);
    const std::size_t rows = d ? c.in(0).size() / d : 0;
    const T* x = c.in(0).data();
    const T* w = c.size() > 1 ? c.in(1).data() : nullptr;
    const T* b = c.size() > 2 ? c.in(2).data() : nullptr;
    T* y = c.out().data();
    mean.assign(rows, 0);
    rstd.assign(rows, 0);
    for (std::size_t r = 0; r < rows; ++r) {
      const T* xr = x + r * d;
      double s = 0; // double accumulators: float sums over wide rows lose digits
      for (std::size_t j = 0; j < d; ++j)
        s += xr[j];
      const double mu = s / static_cast<double>(d);
      double v = 0;
      for (std::size_t j = 0; j < d; ++j)
        v += (xr[j] - mu) * (xr[j] - mu);
      const double rs = 1.0 / std::sqrt(v / static_cast<double>(d) + eps);
      mean[r] = mu;
      rstd[r] = rs;
      const T m = static_cast<T>(mu), q = static_cast<T>(rs);
      for (std::size_t j = 0; j < d; ++j) {
        const T xhat = (xr[j] - m) * q;
        y[r * d + j] = (w ? xhat * w[j] : xhat) + (b ? b[j] : T(0));
      }
    }
  }

  template <class C>
  void backward(C& c) const {
    using T = typename C::value_type;
    const std::size_t d = numel(normalized);
    const T* x = c.in(0).data();
    const T* w = c.size() > 1 ? c.in(1).data() : nullptr;
    const T* g = c.dout().data();
    T* dx = c.needs_grad(0) ? c.din(0).data() : nullptr;
    T* dw = c.size() > 1 && c.needs_grad(1) ? c.din(1).data() : nullptr;
    T* db = c.size() > 2 && c.needs_grad(2) ? c.din(2).data() : nullptr;
    for (std::size_t r = 0; r < mean.size(); ++r)
      detail::norm_backward_group<T>(
          d, [&](std::size_t j) { return r * d + j; }, x, g, dx, static_cast<T>(mean[r]),
          static_cast<T>(rstd[r]), [&](std::size_t j) { return w ? w[j] : T(1); }, dw, db);
  }
};

/// Batch normalisation of x (N, C, *) per channel. Training (or without running statistics): the
/// batch's mean and biased variance, and the running statistics (when given) move towards the batch's
/// mean and unbiased variance by `momentum`. Evaluation: the running statistics, as constants.
/// Inputs: x and optionally weight and bias (C).
template <class T>
struct batch_norm_op {
  static constexpr std::string_view name = "batch_norm";
  basic_tensor<T> running_mean, running_var; // (C) buffers, or undefined
  bool training = true;
  double momentum = 0.1;
  double eps = 1e-5;
  std::vector<double> mean, rstd; // (C): statistics used by forward, saved for backward

  bool batch_stats() const { return training || !running_mean.defined(); }
  void check(const shape_type& x) const {
    if (x.size() < 2)
      throw shape_error("batch_norm: input must be (N, C) or (N, C, ...), got " + to_string(x));
    for (const auto* r : {&running_mean, &running_var})
      if (r->defined() && r->shape() != shape_type{x[1]})
        throw shape_error("batch_norm: running statistics of shape " + to_string(r->shape()) + " for input " +
                          to_string(x) + " with " + std::to_string(x[1]) + " channels");
    if (batch_stats() && numel(x) / std::max<std::size_t>(x[1], 1) <= 1)
      throw value_error("batch_norm: expected more than 1 value per channel when training, got input " +
                        to_string(x));
  }
  void check_param(const char* what, const shape_type& x, const shape_type& p) const {
    if (p != shape_type{x[1]})
      throw shape_error("batch_norm: " + std::string(what) + " " + to_string(p) + " must have shape (" +
                        std::to_string(x[1]) + ",) for input " + to_string(x));
  }
  shape_type shape(const shape_type& x) const {
    check(x);
    return x;
  }
  shape_type shape(const shape_type& x, const shape_type& w, const shape_type& b) const {
    check(x);
    check_param("weight", x, w);
    check_param("bias", x, b);
    return x;
  }
  template <class... S>
  std::uint64_t flops(const shape_type& out, const S&...) const {
    return 8 * numel(out);
  }

  template <class C>
  void forward(C& c) {
    const auto& xs = c.in(0).shape();
    const std::size_t n = xs[0], ch = xs[1], s = n * ch != 0 ? c.in(0).size() / (n * ch) : 0;
    const T* x = c.in(0).data();
    const T* w = c.size() > 1 ? c.in(1).data() : nullptr;
    const T* b = c.size() > 1 ? c.in(2).data() : nullptr;
    T* y = c.out().data();
    mean.assign(ch, 0);
    rstd.assign(ch, 0);
    const double m = static_cast<double>(n * s);
    for (std::size_t k = 0; k < ch; ++k) {
      double mu, var;
      if (batch_stats()) {
        double acc = 0, sq = 0;
        for (std::size_t i = 0; i < n; ++i)
          for (std::size_t p = 0; p < s; ++p)
            acc += x[(i * ch + k) * s + p];
        mu = acc / m;
        for (std::size_t i = 0; i < n; ++i)
          for (std::size_t p = 0; p < s; ++p) {
            const double dv = x[(i * ch + k) * s + p] - mu;
            sq += dv * dv;
          }
        var = sq / m;
        if (running_mean
                .defined()) { // r <- (1 - momentum) r + momentum * batch statistic (unbiased variance)
          T& rm = running_mean.data()[k];
          T& rv = running_var.data()[k];
          rm = static_cast<T>((1 - momentum) * rm + momentum * mu);
          rv = static_cast<T>((1 - momentum) * rv + momentum * sq / (m - 1));
        }
      } else {
        mu = running_mean.data()[k];
        var = running_var.data()[k];
      }
      mean[k] = mu;
      rstd[k] = 1.0 / std::sqrt(var + eps);
      const T mt = static_cast<T>(mu), q = static_cast<T>(rstd[k]);
      const T wk = w ? w[k] : T(1), bk = b ? b[k] : T(0);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t p = 0; p < s; ++p) {
          const std::size_t at = (i * ch + k) * s + p;
          y[at] = (x[at] - mt) * q * wk + bk;
        }
    }
  }

  template <class C>
  void backward(C& c) const {
    const auto& xs = c.in(0).shape();
    const std::size_t n = xs[0], ch = xs[1], s = n * ch != 0 ? c.in(0).size() / (n * ch) : 0;
    const T* x = c.in(0).data();
    const T* w = c.size() > 1 ? c.in(1).data() : nullptr;
    const T* g = c.dout().data();
    T* dx = c.needs_grad(0) ? c.din(0).data() : nullptr;
    T* dw = c.size() > 1 && c.needs_grad(1) ? c.din(1).data() : nullptr;
    T* db = c.size() > 1 && c.needs_grad(2) ? c.din(2).data() : nullptr;
    for (std::size_t k = 0; k < ch; ++k) {
      const T mt = static_cast<T>(mean[k]), q = static_cast<T>(rstd[k]);
      const T wk = w ? w[k] : T(1);
      auto at = [&](std::size_t j) { return (j / s * ch + k) * s + j % s; }; // j-th element of channel k
      if (batch_stats()) {
        T dwk = 0, dbk = 0;
        detail::norm_backward_group<T>(
            n * s, at, x, g, dx, mt, q, [&](std::size_t) { return wk; }, nullptr, nullptr);
        for (std::size_t j = 0; j < n * s; ++j) {
          dwk += g[at(j)] * (x[at(j)] - mt) * q; // d y / d w = xhat
          dbk += g[at(j)];                       // d y / d b = 1
        }
        if (dw)
          dw[k] += dwk;
        if (db)
          db[k] += dbk;
        continue;
      }
      // running statistics are constants: y = (x - mean) rstd w + b, d y / d x = rstd w
      T dwk = 0, dbk = 0;
      for (std::size_t j = 0; j < n * s; ++j) {
        const std::size_t i = at(j);
        if (dx)
          dx[i] += g[i] * q * wk;
        dwk += g[i] * (x[i] - mt) * q;
        dbk += g[i];
      }
      if (dw)
        dw[k] += dwk;
      if (db)
        db[k] += dbk;
    }
  }
};

} // namespace ops

/// Layer normalisation over the trailing `normalized_shape` of x; weight and bias (that shape) may be
/// undefined tensors (no affine transform).
template <element T>
basic_tensor<T> layer_norm(const basic_tensor<T>& x, const shape_type& normalized_shape,
                           const basic_tensor<T>& weight = {}, const basic_tensor<T>& bias = {},
                           double eps = 1e-5) {
  ops::layer_norm_op op{normalized_shape, eps, {}, {}};
  if (bias.defined() && !weight.defined())
    throw value_error("layer_norm: a bias without a weight is not supported; pass ones as the weight");
  if (!weight.defined())
    return apply(std::move(op), x);
  if (!bias.defined())
    return apply(std::move(op), x, weight);
  return apply(std::move(op), x, weight, bias);
}

/// Options of batch_norm.
struct batch_norm_options {
  bool training = true;  ///< batch statistics (and update the running ones) or the running statistics
  double momentum = 0.1; ///< weight of the batch statistics in the running-statistics update
  double eps = 1e-5;     ///< added to the variance
};

/// Batch normalisation of x (N, C, *) per channel with running statistics (C) (undefined: none) and
/// optional weight and bias (C); the running statistics are updated in place in training mode.
template <element T>
basic_tensor<T> batch_norm(const basic_tensor<T>& x, const basic_tensor<T>& running_mean,
                           const basic_tensor<T>& running_var, const basic_tensor<T>& weight = {},
                           const basic_tensor<T>& bias = {}, const batch_norm_options& opt = {}) {
  if (running_mean.defined() != running_var.defined())
    throw value_error("batch_norm: give both running_mean and running_var, or neither");
  if (weight.defined() != bias.defined())
    throw value_error("batch_norm: give both weight and bias, or neither");
  ops::batch_norm_op<T> op{running_mean, running_var, opt.training, opt.momentum, opt.eps, {}, {}};
  if (!weight.defined())
    return apply(std::move(op), x);
  return apply(std::move(op), x, weight, bias);
}

} // namespace grad
