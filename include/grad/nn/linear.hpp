#pragma once
/// @file nn/linear.hpp
/// Fully connected modules: linear (y = x W^T + b, PyTorch's layout and initialisation) and mlp, a stack
/// of linears with an activation between them, sized at run time.

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "grad/core/factories.hpp"
#include "grad/nn/init.hpp"
#include "grad/nn/module.hpp"
#include "grad/ops/linear.hpp"
#include "grad/ops/unary.hpp"

namespace grad::nn {

/// Options of linear.
struct linear_options {
  bool bias = true; ///< add a learned bias
};

/// y = x W^T + b for x (..., in): weight (out, in) and bias (out), initialised as PyTorch does
/// (kaiming_uniform with a = sqrt 5, i.e. U(-1/sqrt(in), 1/sqrt(in)), for both).
template <element T = float>
class basic_linear : public module_base<basic_linear<T>, T> {
public:
  basic_tensor<T> weight; ///< (out, in)
  basic_tensor<T> bias;   ///< (out), undefined without bias

  /// A layer from in to out features, drawing its initial values from gen.
  basic_linear(std::size_t in, std::size_t out, const linear_options& opt = {},
               generator& gen = default_generator())
      : weight(grad::zeros<T>({out, in}, {.requires_grad = true})) {
    init::kaiming_uniform(weight, {.a = std::sqrt(5.0)}, gen);
    if (opt.bias) {
      const double bound = in ? 1.0 / std::sqrt(static_cast<double>(in)) : 0.0;
      bias = init::uniform(grad::zeros<T>({out}, {.requires_grad = true}), -bound, bound, gen);
    }
  }
  /// A layer with a bias, drawing its initial values from gen.
  basic_linear(std::size_t in, std::size_t out, generator& gen) : basic_linear(in, out, {}, gen) {}

  /// x (..., in) -> (..., out).
  basic_tensor<T> forward(const basic_tensor<T>& x) const { return grad::linear(x, weight, bias); }
  /// Number of input features.
  std::size_t in_features() const { return weight.size(1); }
  /// Number of output features.
  std::size_t out_features() const { return weight.size(0); }
  /// Lists weight and bias.
  template <class V>
  void visit(V& v) {
    v.param("weight", weight);
    v.param("bias", bias);
  }
};

/// Linear layer in float.
using linear = basic_linear<float>;

/// Options of mlp.
struct mlp_options {
  bool bias = true; ///< biases in every layer
};

/// Multi-layer perceptron: linear layers in -> hidden[0] -> ... -> out with an activation after every
/// layer but the last. Parameters are named layers.0.weight, layers.0.bias, layers.1.weight, ...
template <element T = float>
class basic_mlp : public module_base<basic_mlp<T>, T> {
public:
  using activation_type = std::function<basic_tensor<T>(const basic_tensor<T>&)>; ///< applied between layers
  std::vector<basic_linear<T>> layers; ///< the linear layers, in order
  activation_type activation;          ///< applied after every layer but the last

  /// An mlp with the given layer widths; `activation` is any callable on tensors (grad::nn::gelu{}, a
  /// lambda), relu by default.
  basic_mlp(std::size_t in, const std::vector<std::size_t>& hidden, std::size_t out, activation_type act = {},
            const mlp_options& opt = {}, generator& gen = default_generator())
      : activation(act ? std::move(act)
                       : activation_type([](const basic_tensor<T>& x) { return grad::relu(x); })) {
    std::size_t prev = in;
    for (std::size_t h : hidden) {
      layers.emplace_back(prev, h, linear_options{.bias = opt.bias}, gen);
      prev = h;
    }
    layers.emplace_back(prev, out, linear_options{.bias = opt.bias}, gen);
  }

  /// x (..., in) -> (..., out).
  basic_tensor<T> forward(const basic_tensor<T>& x) const {
    basic_tensor<T> h = x;
    for (std::size_t i = 0; i < layers.size(); ++i) {
      h = layers[i](h);
      if (i + 1 < layers.size())
        h = activation(h);
    }
    return h;
  }
  /// Lists the layers as `layers.<i>`.
  template <class V>
  void visit(V& v) {
    v.child("layers", layers);
  }
};

/// Multi-layer perceptron in float.
using mlp = basic_mlp<float>;

} // namespace grad::nn
