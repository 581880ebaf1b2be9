#pragma once
/// @file nn/activation.hpp
/// Modules without parameters: activations, flatten, identity, and dropout (whose only state is p and
/// the training flag). Each is a template on the element type with a float alias (`nn::relu`).

#include <cstdint>
#include <string>

#include "grad/core/generator.hpp"
#include "grad/nn/module.hpp"
#include "grad/ops/activation.hpp"
#include "grad/ops/dropout.hpp"
#include "grad/ops/movement.hpp"
#include "grad/ops/softmax.hpp"
#include "grad/ops/unary.hpp"

namespace grad::nn {

/// max(x, 0) as a module.
template <element T = float>
struct basic_relu : module_base<basic_relu<T>, T> {
  /// Applies relu.
  basic_tensor<T> forward(const basic_tensor<T>& x) const { return grad::relu(x); }
};
/// ReLU module in float.
using relu = basic_relu<float>;

/// GELU as a module (exact by default, or the tanh approximation GPT-2 uses).
template <element T = float>
struct basic_gelu : module_base<basic_gelu<T>, T> {
  gelu_approximate approximate = gelu_approximate::none; ///< erf or tanh form
  basic_gelu() = default;
  /// GELU with the given form.
  explicit basic_gelu(gelu_approximate a) : approximate(a) {}
  /// Applies gelu.
  basic_tensor<T> forward(const basic_tensor<T>& x) const { return grad::gelu(x, approximate); }
};
/// GELU module in float.
using gelu = basic_gelu<float>;

/// tanh as a module.
template <element T = float>
struct basic_tanh : module_base<basic_tanh<T>, T> {
  /// Applies tanh.
  basic_tensor<T> forward(const basic_tensor<T>& x) const { return grad::tanh(x); }
};
/// Tanh module in float.
using tanh = basic_tanh<float>;

/// Logistic sigmoid as a module.
template <element T = float>
struct basic_sigmoid : module_base<basic_sigmoid<T>, T> {
  /// Applies sigmoid.
  basic_tensor<T> forward(const basic_tensor<T>& x) const { return grad::sigmoid(x); }
};
/// Sigmoid module in float.
using sigmoid = basic_sigmoid<float>;

/// SiLU (x sigmoid(x)) as a module.
template <element T = float>
struct basic_silu : module_base<basic_silu<T>, T> {
  /// Applies silu.
  basic_tensor<T> forward(const basic_tensor<T>& x) const { return grad::silu(x); }
};
/// SiLU module in float.
using silu = basic_silu<float>;

/// Leaky ReLU as a module.
template <element T = float>
struct basic_leaky_relu : module_base<basic_leaky_relu<T>, T> {
  double negative_slope = 0.01; ///< slope for x < 0
  basic_leaky_relu() = default;
  /// Leaky ReLU with the given negative slope.
  explicit basic_leaky_relu(double slope) : negative_slope(slope) {}
  /// Applies leaky_relu.
  basic_tensor<T> forward(const basic_tensor<T>& x) const { return grad::leaky_relu(x, negative_slope); }
};
/// Leaky ReLU module in float.
using leaky_relu = basic_leaky_relu<float>;

/// Softmax along an axis (default: the last) as a module.
template <element T = float>
struct basic_softmax : module_base<basic_softmax<T>, T> {
  std::int64_t axis = -1; ///< the axis that sums to 1
  basic_softmax() = default;
  /// Softmax along `axis`.
  explicit basic_softmax(std::int64_t a) : axis(a) {}
  /// Applies softmax.
  basic_tensor<T> forward(const basic_tensor<T>& x) const { return grad::softmax(x, axis); }
};
/// Softmax module in float.
using softmax = basic_softmax<float>;

/// Log-softmax along an axis (default: the last) as a module.
template <element T = float>
struct basic_log_softmax : module_base<basic_log_softmax<T>, T> {
  std::int64_t axis = -1; ///< the normalised axis
  basic_log_softmax() = default;
  /// Log-softmax along `axis`.
  explicit basic_log_softmax(std::int64_t a) : axis(a) {}
  /// Applies log_softmax.
  basic_tensor<T> forward(const basic_tensor<T>& x) const { return grad::log_softmax(x, axis); }
};
/// Log-softmax module in float.
using log_softmax = basic_log_softmax<float>;

/// Returns its input.
template <element T = float>
struct basic_identity : module_base<basic_identity<T>, T> {
  /// Returns x.
  basic_tensor<T> forward(const basic_tensor<T>& x) const { return x; }
};
/// Identity module in float.
using identity = basic_identity<float>;

/// Flattens dimensions start..end (default 1..-1: everything but the batch) into one.
template <element T = float>
struct basic_flatten : module_base<basic_flatten<T>, T> {
  std::int64_t start_dim = 1; ///< first flattened dimension
  std::int64_t end_dim = -1;  ///< last flattened dimension (inclusive)
  basic_flatten() = default;
  /// Flattens start..end.
  basic_flatten(std::int64_t start, std::int64_t end = -1) : start_dim(start), end_dim(end) {}
  /// (N, C, H, W) -> (N, C H W) with the defaults.
  basic_tensor<T> forward(const basic_tensor<T>& x) const { return grad::flatten(x, start_dim, end_dim); }
};
/// Flatten module in float.
using flatten = basic_flatten<float>;

/// Dropout: zeroes elements with probability p and scales the rest by 1/(1-p) in training mode; the
/// identity in evaluation mode. Draws from `gen` if given, else from the thread's default generator.
template <element T = float>
class basic_dropout : public module_base<basic_dropout<T>, T> {
public:
  /// Dropout with probability p in [0, 1]; gen (optional) must outlive the module.
  explicit basic_dropout(double p = 0.5, generator* gen = nullptr) : p_(p), gen_(gen) {
    if (!(p >= 0 && p <= 1))
      throw value_error("dropout: probability has to be between 0 and 1, but got " + std::to_string(p));
  }
  /// Applies dropout (training) or returns x (evaluation).
  basic_tensor<T> forward(const basic_tensor<T>& x) const {
    return grad::dropout(x, p_, this->is_training(), gen_ ? *gen_ : default_generator());
  }
  /// The drop probability.
  double p() const { return p_; }

private:
  double p_;
  generator* gen_;
};
/// Dropout module in float.
using dropout = basic_dropout<float>;

} // namespace grad::nn
