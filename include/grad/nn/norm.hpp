#pragma once
/// @file nn/norm.hpp
/// Normalisation modules: layer_norm, and batch_norm1d / batch_norm2d with running statistics.

#include <string>

#include "grad/core/factories.hpp"
#include "grad/nn/module.hpp"
#include "grad/ops/norm.hpp"

namespace grad::nn {

/// Options of layer_norm.
struct layer_norm_options {
  double eps = 1e-5;              ///< added to the variance
  bool elementwise_affine = true; ///< learn a weight (ones) and a bias (zeros)
  bool bias = true;               ///< learn the bias (with elementwise_affine)
};

/// Layer normalisation over the trailing normalized_shape (e.g. (C)), with a learned weight and bias.
template <element T = float>
class basic_layer_norm : public module_base<basic_layer_norm<T>, T> {
public:
  basic_tensor<T> weight; ///< normalized_shape, ones; undefined without elementwise_affine
  basic_tensor<T> bias;   ///< normalized_shape, zeros; undefined without it

  /// Normalises over the trailing shape `normalized_shape`.
  explicit basic_layer_norm(shape_type normalized_shape, const layer_norm_options& opt = {})
      : shape_(std::move(normalized_shape)), eps_(opt.eps) {
    if (opt.elementwise_affine) {
      weight = grad::ones<T>(shape_, {.requires_grad = true});
      if (opt.bias)
        bias = grad::zeros<T>(shape_, {.requires_grad = true});
    }
  }
  /// Normalises over the last dimension of size c.
  explicit basic_layer_norm(std::size_t c, const layer_norm_options& opt = {})
      : basic_layer_norm(shape_type{c}, opt) {}
  /// Normalises over the last dimension of size c with the given eps.
  basic_layer_norm(std::size_t c, double eps)
      : basic_layer_norm(shape_type{c}, layer_norm_options{.eps = eps}) {}

  /// x (..., *normalized_shape) -> same shape.
  basic_tensor<T> forward(const basic_tensor<T>& x) const {
    return grad::layer_norm(x, shape_, weight, bias, eps_);
  }
  /// The normalised trailing shape.
  const shape_type& normalized_shape() const { return shape_; }
  /// Lists weight and bias.
  template <class V>
  void visit(V& v) {
    v.param("weight", weight);
    v.param("bias", bias);
  }

private:
  shape_type shape_;
  double eps_;
};
/// Layer norm module in float.
using layer_norm = basic_layer_norm<float>;

/// Options of batch_norm1d / batch_norm2d.
struct batch_norm_options {
  double eps = 1e-5;               ///< added to the variance
  double momentum = 0.1;           ///< running statistics move this far towards each batch's
  bool affine = true;              ///< learn a weight (ones) and a bias (zeros)
  bool track_running_stats = true; ///< keep running statistics (buffers) for evaluation
};

/// Batch normalisation per channel; Spatial = 1 takes (N, C) or (N, C, L), Spatial = 2 takes
/// (N, C, H, W). Training uses batch statistics and updates running_mean / running_var (buffers);
/// evaluation uses the running statistics.
template <element T, std::size_t Spatial>
class basic_batch_norm : public module_base<basic_batch_norm<T, Spatial>, T> {
public:
  basic_tensor<T> weight;       ///< (C), ones; undefined without affine
  basic_tensor<T> bias;         ///< (C), zeros; undefined without affine
  basic_tensor<T> running_mean; ///< (C) buffer, zeros; undefined without track_running_stats
  basic_tensor<T> running_var;  ///< (C) buffer, ones; undefined without track_running_stats

  /// Normalises num_features channels.
  explicit basic_batch_norm(std::size_t num_features, const batch_norm_options& opt = {}) : opt_(opt) {
    if (opt.affine) {
      weight = grad::ones<T>({num_features}, {.requires_grad = true});
      bias = grad::zeros<T>({num_features}, {.requires_grad = true});
    }
    if (opt.track_running_stats) {
      running_mean = grad::zeros<T>({num_features});
      running_var = grad::ones<T>({num_features});
    }
  }

  /// x (N, C, ...) -> same shape.
  basic_tensor<T> forward(const basic_tensor<T>& x) const {
    const bool ok = Spatial == 1 ? (x.dim() == 2 || x.dim() == 3) : x.dim() == 4;
    if (!ok)
      throw shape_error(std::string(Spatial == 1 ? "batch_norm1d: expected 2-d (N, C) or 3-d (N, C, L) input"
                                                 : "batch_norm2d: expected 4-d (N, C, H, W) input") +
                        ", got " + to_string(x.shape()));
    return grad::batch_norm(x, running_mean, running_var, weight, bias,
                            {.training = this->is_training(), .momentum = opt_.momentum, .eps = opt_.eps});
  }
  /// Lists weight and bias (parameters), running_mean and running_var (buffers).
  template <class V>
  void visit(V& v) {
    v.param("weight", weight);
    v.param("bias", bias);
    v.buffer("running_mean", running_mean);
    v.buffer("running_var", running_var);
  }

private:
  batch_norm_options opt_;
};

/// Batch norm over (N, C) or (N, C, L).
template <element T = float>
using basic_batch_norm1d = basic_batch_norm<T, 1>;
/// Batch norm over (N, C, H, W).
template <element T = float>
using basic_batch_norm2d = basic_batch_norm<T, 2>;
/// Batch norm over (N, C) or (N, C, L), in float.
using batch_norm1d = basic_batch_norm<float, 1>;
/// Batch norm over (N, C, H, W), in float.
using batch_norm2d = basic_batch_norm<float, 2>;

} // namespace grad::nn
