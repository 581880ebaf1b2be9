#pragma once
/// @file functional/loss.hpp
/// Loss functions with PyTorch's names, options and reductions (DESIGN.md section 6):
/// `cross_entropy(logits, targets, {.label_smoothing = 0.1})`. Class targets are grad::index_tensor.

#include <cstdint>
#include <limits>
#include <string>

#include "grad/core/factories.hpp"
#include "grad/core/index_tensor.hpp"
#include "grad/ops/compare.hpp"
#include "grad/ops/loss.hpp"
#include "grad/ops/reduce.hpp"
#include "grad/ops/unary.hpp"

namespace grad {

/// How a loss combines its per-element values: none (keep them), mean (PyTorch's default) or sum.
enum class reduction { none, mean, sum };

/// Options of losses that only have a reduction (mse_loss, l1_loss, the binary cross entropies).
struct loss_options {
  grad::reduction reduction = grad::reduction::mean; ///< none, mean or sum
};

/// Options of huber_loss.
struct huber_loss_options {
  grad::reduction reduction = grad::reduction::mean; ///< none, mean or sum
  double delta = 1.0;                                ///< where the loss turns from quadratic to linear
};

/// Options of smooth_l1_loss.
struct smooth_l1_loss_options {
  grad::reduction reduction = grad::reduction::mean; ///< none, mean or sum
  double beta = 1.0;                                 ///< where the loss turns from quadratic to linear
};

/// Options of cross_entropy.
struct cross_entropy_options {
  grad::reduction reduction = grad::reduction::mean; ///< mean is over the non-ignored targets
  std::int64_t ignore_index = -100;                  ///< targets with this value add nothing
  double label_smoothing = 0.0;                      ///< in [0, 1]: mix eps/C into every class
};

/// Options of nll_loss.
struct nll_loss_options {
  grad::reduction reduction = grad::reduction::mean; ///< mean is over the non-ignored targets
  std::int64_t ignore_index = -100;                  ///< targets with this value add nothing
};

namespace detail {

template <element T>
basic_tensor<T> reduce_loss(const basic_tensor<T>& l, grad::reduction r) {
  switch (r) {
  case grad::reduction::none:
    return l;
  case grad::reduction::sum:
    return sum(l);
  default:
    return mean(l);
  }
}

/// Reduction of per-sample losses where ignored samples are zeros and do not count in the mean.
template <element T>
basic_tensor<T> reduce_ignored(const basic_tensor<T>& l, const index_tensor& targets, std::int64_t ignore,
                               grad::reduction r) {
  if (r != grad::reduction::mean)
    return reduce_loss(l, r);
  std::size_t count = 0;
  for (std::size_t i = 0; i < targets.numel(); ++i)
    count += targets[i] != ignore;
  // all targets ignored: 0 / 0 = NaN, as PyTorch
  return count ? sum(l) / static_cast<T>(count) : sum(l) * std::numeric_limits<T>::quiet_NaN();
}

inline void check_loss_shapes(std::string_view op, const shape_type& a, const shape_type& b) {
  if (a != b)
    throw shape_error(std::string(op) + ": input shape " + to_string(a) + " differs from target shape " +
                      to_string(b) + " (losses do not broadcast)");
}

} // namespace detail

/// Mean squared error: (x - y)^2 per element, then reduced.
template <element T>
basic_tensor<T> mse_loss(const basic_tensor<T>& input, const basic_tensor<T>& target,
                         const loss_options& opt = {}) {
  detail::check_loss_shapes("mse_loss", input.shape(), target.shape());
  return detail::reduce_loss(square(input - target), opt.reduction);
}

/// Mean absolute error: |x - y| per element, then reduced.
template <element T>
basic_tensor<T> l1_loss(const basic_tensor<T>& input, const basic_tensor<T>& target,
                        const loss_options& opt = {}) {
  detail::check_loss_shapes("l1_loss", input.shape(), target.shape());
  return detail::reduce_loss(abs(input - target), opt.reduction);
}

/// Huber loss: 0.5 d^2 where |d| < delta, delta (|d| - 0.5 delta) elsewhere (d = x - y), then reduced.
template <element T>
basic_tensor<T> huber_loss(const basic_tensor<T>& input, const basic_tensor<T>& target,
                           const huber_loss_options& opt = {}) {
  detail::check_loss_shapes("huber_loss", input.shape(), target.shape());
  if (!(opt.delta > 0))
    throw value_error("huber_loss: delta must be positive, got " + std::to_string(opt.delta));
  // With a = |d| and q = min(a, delta): q (a - q/2) is 0.5 a^2 below delta and delta (a - delta/2)
  // above, one expression for both branches with the right gradient on each side.
  const auto a = abs(input - target);
  const auto q = minimum(a, full<T>({}, static_cast<T>(opt.delta)));
  return detail::reduce_loss(q * (a - q * 0.5), opt.reduction);
}

/// Smooth L1 loss: huber_loss with delta = beta, divided by beta (0.5 d^2 / beta below beta).
template <element T>
basic_tensor<T> smooth_l1_loss(const basic_tensor<T>& input, const basic_tensor<T>& target,
                               const smooth_l1_loss_options& opt = {}) {
  if (!(opt.beta > 0))
    throw value_error("smooth_l1_loss: beta must be positive, got " + std::to_string(opt.beta));
  return huber_loss(input, target, {.reduction = opt.reduction, .delta = opt.beta}) / opt.beta;
}

/// Cross entropy of logits (N, C) and class targets (N), fused with log-softmax; ignore_index targets
/// add nothing (and do not count in the mean); label_smoothing mixes eps / C into every class.
template <element T>
basic_tensor<T> cross_entropy(const basic_tensor<T>& logits, const index_tensor& targets,
                              const cross_entropy_options& opt = {}) {
  if (!(opt.label_smoothing >= 0 && opt.label_smoothing <= 1))
    throw value_error("cross_entropy: label_smoothing must be in [0, 1], got " +
                      std::to_string(opt.label_smoothing));
  auto l = apply(ops::cross_entropy_op{targets, opt.ignore_index, opt.label_smoothing, {}}, logits);
  return detail::reduce_ignored(l, targets, opt.ignore_index, opt.reduction);
}

/// Negative log likelihood of log-probabilities (N, C) (e.g. log_softmax output) and class targets (N).
template <element T>
basic_tensor<T> nll_loss(const basic_tensor<T>& log_probs, const index_tensor& targets,
                         const nll_loss_options& opt = {}) {
  auto l = apply(ops::nll_loss_op{targets, opt.ignore_index}, log_probs);
  return detail::reduce_ignored(l, targets, opt.ignore_index, opt.reduction);
}

/// Binary cross entropy of probabilities p in [0, 1] and targets y (same shape), logs clamped at -100.
template <element T>
basic_tensor<T> binary_cross_entropy(const basic_tensor<T>& probs, const basic_tensor<T>& target,
                                     const loss_options& opt = {}) {
  return detail::reduce_loss(apply(ops::binary_cross_entropy_op{}, probs, target), opt.reduction);
}

/// Binary cross entropy of logits and targets (same shape), computed stably without forming sigmoid(x).
template <element T>
basic_tensor<T> binary_cross_entropy_with_logits(const basic_tensor<T>& logits, const basic_tensor<T>& target,
                                                 const loss_options& opt = {}) {
  return detail::reduce_loss(apply(ops::binary_cross_entropy_with_logits_op{}, logits, target),
                             opt.reduction);
}

} // namespace grad
