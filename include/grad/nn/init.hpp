#pragma once
/// @file nn/init.hpp
/// Parameter initialisation with torch.nn.init's names and formulas, writing into an existing tensor
/// (under no_grad) from a seeded generator, so every run can be reproduced. A tensor is a handle: the
/// functions take it by value, fill the shared storage, and return the handle.

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>
#include <utility>

#include "grad/core/error.hpp"
#include "grad/core/generator.hpp"
#include "grad/core/tape.hpp"
#include "grad/core/tensor.hpp"

namespace grad::nn::init {

/// Which fan kaiming initialisation preserves: fan_in keeps forward activations' variance, fan_out
/// the backward gradients'.
enum class fan_mode { fan_in, fan_out };

/// Recommended gain for a nonlinearity (torch.nn.init.calculate_gain): linear, conv*, sigmoid -> 1,
/// tanh -> 5/3, relu -> sqrt 2, leaky_relu -> sqrt(2 / (1 + a^2)), selu -> 3/4.
inline double calculate_gain(std::string_view nonlinearity, double param = 0.01) {
  if (nonlinearity == "linear" || nonlinearity == "sigmoid" || nonlinearity.starts_with("conv"))
    return 1.0;
  if (nonlinearity == "tanh")
    return 5.0 / 3.0;
  if (nonlinearity == "relu")
    return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu")
    return std::sqrt(2.0 / (1.0 + param * param));
  if (nonlinearity == "selu")
    return 0.75;
  throw value_error("calculate_gain: unsupported nonlinearity '" + std::string(nonlinearity) +
                    "' (linear, conv1d/2d/3d, sigmoid, tanh, relu, leaky_relu, selu)");
}

/// (fan_in, fan_out) of a weight: (size(1), size(0)) times the receptive field (the product of the
/// dimensions after the second), as torch.nn.init computes them; needs at least 2 dimensions.
template <element T>
std::pair<std::size_t, std::size_t> fans(const basic_tensor<T>& t) {
  if (t.dim() < 2)
    throw shape_error("init: fan in and fan out cannot be computed for a tensor of shape " +
                      to_string(t.shape()) + " (fewer than 2 dimensions)");
  std::size_t receptive = 1;
  for (std::size_t d = 2; d < t.dim(); ++d)
    receptive *= t.size(static_cast<std::int64_t>(d));
  return {t.size(1) * receptive, t.size(0) * receptive};
}

namespace detail {
inline bool& skip_random_init() noexcept {
  thread_local bool skip = false;
  return skip;
}
} // namespace detail

/// RAII guard, as transformers' no_init_weights: while it lives, uniform() and normal() (and the
/// kaiming and xavier initialisers built on them) leave tensors untouched and draw nothing from the
/// generator. Code that builds a model only to overwrite its weights from a checkpoint uses it
/// (from_pretrained_gpt: GPT-2 small loads in a fraction of the time). Per thread; guards nest.
class no_init_weights {
public:
  no_init_weights() noexcept : previous_(detail::skip_random_init()) { detail::skip_random_init() = true; }
  ~no_init_weights() { detail::skip_random_init() = previous_; }
  no_init_weights(const no_init_weights&) = delete;
  no_init_weights& operator=(const no_init_weights&) = delete;

private:
  bool previous_;
};

/// Fills t with samples of U(lo, hi).
template <element T>
basic_tensor<T> uniform(basic_tensor<T> t, double lo = 0.0, double hi = 1.0,
                        generator& gen = default_generator()) {
  if (!(lo <= hi))
    throw value_error("init::uniform: lower bound " + std::to_string(lo) + " is above upper bound " +
                      std::to_string(hi));
  if (detail::skip_random_init())
    return t;
  no_grad guard;
  for (std::size_t i = 0; i < t.numel(); ++i)
    t.data()[i] = static_cast<T>(gen.uniform(lo, hi));
  return t;
}

/// Fills t with samples of N(mean, std^2).
template <element T>
basic_tensor<T> normal(basic_tensor<T> t, double mean = 0.0, double stddev = 1.0,
                       generator& gen = default_generator()) {
  if (!(stddev >= 0))
    throw value_error("init::normal: standard deviation must be non-negative, got " + std::to_string(stddev));
  if (detail::skip_random_init())
    return t;
  no_grad guard;
  for (std::size_t i = 0; i < t.numel(); ++i)
    t.data()[i] = static_cast<T>(gen.normal(mean, stddev));
  return t;
}

/// Fills t with v.
template <element T>
basic_tensor<T> constant(basic_tensor<T> t, double v) {
  no_grad guard;
  std::fill(t.data(), t.data() + t.numel(), static_cast<T>(v));
  return t;
}

/// Fills t with zeros.
template <element T>
basic_tensor<T> zeros(basic_tensor<T> t) {
  return constant(t, 0.0);
}

/// Fills t with ones.
template <element T>
basic_tensor<T> ones(basic_tensor<T> t) {
  return constant(t, 1.0);
}

/// Options of kaiming_uniform and kaiming_normal.
struct kaiming_options {
  double a = 0;                                 ///< negative slope of the leaky_relu that follows
  fan_mode mode = fan_mode::fan_in;             ///< which fan to preserve
  std::string_view nonlinearity = "leaky_relu"; ///< the gain's nonlinearity (torch's default)
};

namespace detail {
template <element T>
double kaiming_std(const basic_tensor<T>& t, const kaiming_options& opt) {
  const auto [fan_in, fan_out] = fans(t);
  const std::size_t fan = opt.mode == fan_mode::fan_in ? fan_in : fan_out;
  // an empty weight has nothing to fill; avoid dividing by zero
  return fan ? calculate_gain(opt.nonlinearity, opt.a) / std::sqrt(static_cast<double>(fan)) : 0.0;
}
} // namespace detail

/// Kaiming (He et al. 2015, arXiv:1502.01852) uniform: U(-b, b) with b = gain * sqrt(3 / fan).
/// With a = sqrt(5) this is PyTorch's default for Linear and Conv weights: b = 1 / sqrt(fan_in).
template <element T>
basic_tensor<T> kaiming_uniform(basic_tensor<T> t, const kaiming_options& opt = {},
                                generator& gen = default_generator()) {
  const double bound = std::sqrt(3.0) * detail::kaiming_std(t, opt);
  return uniform(t, -bound, bound, gen);
}

/// Kaiming normal: N(0, std^2) with std = gain / sqrt(fan).
template <element T>
basic_tensor<T> kaiming_normal(basic_tensor<T> t, const kaiming_options& opt = {},
                               generator& gen = default_generator()) {
  return normal(t, 0.0, detail::kaiming_std(t, opt), gen);
}

/// Xavier/Glorot (Glorot and Bengio 2010) uniform: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).
template <element T>
basic_tensor<T> xavier_uniform(basic_tensor<T> t, double gain = 1.0, generator& gen = default_generator()) {
  const auto [fan_in, fan_out] = fans(t);
  const double bound = fan_in + fan_out ? gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out)) : 0.0;
  return uniform(t, -bound, bound, gen);
}

/// Xavier/Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)).
template <element T>
basic_tensor<T> xavier_normal(basic_tensor<T> t, double gain = 1.0, generator& gen = default_generator()) {
  const auto [fan_in, fan_out] = fans(t);
  const double stddev =
      fan_in + fan_out ? gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out)) : 0.0;
  return normal(t, 0.0, stddev, gen);
}

} // namespace grad::nn::init
