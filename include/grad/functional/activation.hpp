#pragma once
/// @file functional/activation.hpp
/// Activation functions in one place: the fused ones (gelu, silu, leaky_relu, softmax, log_softmax), the
/// elementwise ones of ops/unary.hpp (relu, tanh, sigmoid), and a few compositions of them.

#include "grad/core/factories.hpp"
#include "grad/ops/activation.hpp"
#include "grad/ops/compare.hpp"
#include "grad/ops/softmax.hpp"
#include "grad/ops/unary.hpp"

namespace grad {

/// min(max(x, 0), 6).
template <element T>
basic_tensor<T> relu6(const basic_tensor<T>& x) {
  return clamp(x, 0, 6);
}

/// Softplus log(1 + e^x), written as relu(x) + log(1 + e^-|x|) so large |x| neither overflows nor loses
/// the linear part.
template <element T>
basic_tensor<T> softplus(const basic_tensor<T>& x) {
  return relu(x) + log(exp(-abs(x)) + 1);
}

/// Mish (Misra 2019, arXiv:1908.08681): x tanh(softplus(x)).
template <element T>
basic_tensor<T> mish(const basic_tensor<T>& x) {
  return x * tanh(softplus(x));
}

/// ELU: x for x > 0, alpha (e^x - 1) otherwise (Clevert et al. 2015, arXiv:1511.07289).
template <element T>
basic_tensor<T> elu(const basic_tensor<T>& x, double alpha = 1.0) {
  const auto zero = zeros<T>({});
  // e^min(x, 0) - 1 keeps exp from overflowing on the positive side, where the branch is unused
  return maximum(x, zero) + (exp(minimum(x, zero)) - 1) * alpha;
}

} // namespace grad
