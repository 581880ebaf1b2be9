#pragma once
/// @file ops/dropout.hpp
/// Inverted dropout (Srivastava et al. 2014, JMLR 15): zero each element with probability p and scale
/// the kept ones by 1/(1 - p), so evaluation (the identity) needs no rescaling.

#include <cstdint>
#include <string>
#include <vector>

#include "grad/core/apply.hpp"
#include "grad/core/generator.hpp"

namespace grad {
namespace ops {

/// y = x * keep / (1 - p) with a mask drawn before the call and saved for backward.
template <class T>
struct dropout_op {
  static constexpr std::string_view name = "dropout";
  std::vector<std::uint8_t> keep; // (numel): 1 where the element is kept
  T scale = 1;                    // 1 / (1 - p), or 0 when p = 1

  shape_type shape(const shape_type& x) const {
    if (numel(x) != keep.size())
      throw shape_error("dropout: mask of " + std::to_string(keep.size()) + " elements for input " +
                        to_string(x));
    return x;
  }
  std::uint64_t flops(const shape_type& out, const shape_type&) const { return numel(out); }
  template <class C>
  void forward(C& c) const {
    const T* x = c.in(0).data();
    T* y = c.out().data();
    for (std::size_t i = 0; i < keep.size(); ++i)
      y[i] = keep[i] ? x[i] * scale : T(0);
  }
  template <class C>
  void backward(C& c) const {
    if (!c.needs_grad(0))
      return;
    const T* g = c.dout().data();
    T* dx = c.din(0).data();
    for (std::size_t i = 0; i < keep.size(); ++i) // d y / d x = keep / (1 - p)
      if (keep[i])
        dx[i] += g[i] * scale;
  }
};

} // namespace ops

/// Dropout with probability p in [0, 1] drawn from `gen`; the identity when not training or p = 0.
template <element T>
basic_tensor<T> dropout(const basic_tensor<T>& x, double p, bool training, generator& gen) {
  if (!(p >= 0 && p <= 1))
    throw value_error("dropout: probability has to be between 0 and 1, but got " + std::to_string(p));
  if (!training || p == 0)
    return x;
  ops::dropout_op<T> op;
  op.keep.resize(x.numel());
  for (auto& k : op.keep)
    k = gen.uniform() >= p;
  op.scale = p < 1 ? static_cast<T>(1.0 / (1.0 - p)) : T(0);
  return apply(std::move(op), x);
}

/// Dropout drawing from the thread's default generator.
template <element T>
basic_tensor<T> dropout(const basic_tensor<T>& x, double p = 0.5, bool training = true) {
  return dropout(x, p, training, default_generator());
}

} // namespace grad
