#pragma once
/// @file nn/conv.hpp
/// Convolution and pooling modules over NCHW images: conv2d, max_pool2d, avg_pool2d.

#include <cmath>

#include "grad/core/factories.hpp"
#include "grad/nn/init.hpp"
#include "grad/nn/module.hpp"
#include "grad/ops/conv.hpp"
#include "grad/ops/pool.hpp"

namespace grad::nn {

/// Options of the conv2d module.
struct conv2d_options {
  size2 stride = 1;   ///< step between receptive fields
  size2 padding = 0;  ///< zeros added on each side
  size2 dilation = 1; ///< spacing between kernel taps
  bool bias = true;   ///< learn a bias per output channel
};

/// 2-d convolution (N, C, H, W) -> (N, O, OH, OW) with weight (O, C, KH, KW) and bias (O), initialised
/// as PyTorch does: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = C KH KW for both.
template <element T = float>
class basic_conv2d : public module_base<basic_conv2d<T>, T> {
public:
  basic_tensor<T> weight; ///< (O, C, KH, KW)
  basic_tensor<T> bias;   ///< (O), undefined without bias

  /// A convolution from in_channels to out_channels with the given kernel, drawing from gen.
  basic_conv2d(std::size_t in_channels, std::size_t out_channels, size2 kernel,
               const conv2d_options& opt = {}, generator& gen = default_generator())
      : weight(grad::zeros<T>({out_channels, in_channels, kernel.h, kernel.w}, {.requires_grad = true})),
        opt_{opt.stride, opt.padding, opt.dilation} {
    init::kaiming_uniform(weight, {.a = std::sqrt(5.0)}, gen);
    if (opt.bias) {
      const std::size_t fan_in = in_channels * kernel.h * kernel.w;
      const double bound = fan_in ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
      bias = init::uniform(grad::zeros<T>({out_channels}, {.requires_grad = true}), -bound, bound, gen);
    }
  }
  /// (N, C, H, W) -> (N, O, OH, OW).
  basic_tensor<T> forward(const basic_tensor<T>& x) const { return grad::conv2d(x, weight, bias, opt_); }
  /// Stride, padding and dilation.
  const grad::conv2d_options& options() const { return opt_; }
  /// Lists weight and bias.
  template <class V>
  void visit(V& v) {
    v.param("weight", weight);
    v.param("bias", bias);
  }

private:
  grad::conv2d_options opt_;
};
/// Conv2d module in float.
using conv2d = basic_conv2d<float>;

/// Max pooling as a module.
template <element T = float>
struct basic_max_pool2d : module_base<basic_max_pool2d<T>, T> {
  size2 kernel;                 ///< window size
  grad::max_pool2d_options opt; ///< stride (0: the kernel), padding, dilation
  /// Pooling with the given window.
  explicit basic_max_pool2d(size2 k, const grad::max_pool2d_options& o = {}) : kernel(k), opt(o) {}
  /// (N, C, H, W) -> (N, C, OH, OW).
  basic_tensor<T> forward(const basic_tensor<T>& x) const { return grad::max_pool2d(x, kernel, opt); }
};
/// Max pooling module in float.
using max_pool2d = basic_max_pool2d<float>;

/// Average pooling as a module.
template <element T = float>
struct basic_avg_pool2d : module_base<basic_avg_pool2d<T>, T> {
  size2 kernel;                 ///< window size
  grad::avg_pool2d_options opt; ///< stride (0: the kernel), padding, count_include_pad
  /// Pooling with the given window.
  explicit basic_avg_pool2d(size2 k, const grad::avg_pool2d_options& o = {}) : kernel(k), opt(o) {}
  /// (N, C, H, W) -> (N, C, OH, OW).
  basic_tensor<T> forward(const basic_tensor<T>& x) const { return grad::avg_pool2d(x, kernel, opt); }
};
/// Average pooling module in float.
using avg_pool2d = basic_avg_pool2d<float>;

} // namespace grad::nn
