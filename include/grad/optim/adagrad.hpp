#pragma once
/// @file optim/adagrad.hpp
/// Adagrad (Duchi, Hazan & Singer 2011) with learning-rate decay and L2 weight decay.

#include <initializer_list>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "grad/optim/optimizer.hpp"

namespace grad::optim {

/// Options of adagrad (PyTorch's torch.optim.Adagrad defaults).
struct adagrad_options {
  double lr = 1e-2;                     ///< learning rate (gamma)
  double lr_decay = 0;                  ///< eta: step t uses gamma / (1 + (t - 1) eta)
  double weight_decay = 0;              ///< L2 penalty (lambda) added to the gradient
  double initial_accumulator_value = 0; ///< starting value of the sum of squared gradients
  double eps = 1e-10;                   ///< added to the denominator, > 0
  bool maximize = false;                ///< ascend the objective instead of descending it
};

/// Adagrad: `adagrad opt(net.parameters(), {.lr = 0.1});`.
///
/// Update (torch.optim.Adagrad): gamma~ = gamma / (1 + (t - 1) eta); g = ±grad + lambda x;
/// s = s + g^2; x = x - gamma~ g / (sqrt(s) + eps).
template <element T>
class adagrad : public detail::optimizer_base<adagrad<T>, T, adagrad_options> {
  using base = detail::optimizer_base<adagrad<T>, T, adagrad_options>;
  friend base;

public:
  /// Name used in errors and in the saved state ("optimizer.adagrad").
  static constexpr std::string_view name = "adagrad";

  /// Optimizes `params` (handles shared with the model); throws value_error on bad options or params.
  explicit adagrad(std::vector<basic_tensor<T>> params, adagrad_options opt = {})
      : base(std::move(params), opt) {}
  /// Optimizes a braced list of tensors: `adagrad opt({w, b}, {.lr = 0.1})`.
  adagrad(std::initializer_list<basic_tensor<T>> params, adagrad_options opt = {})
      : adagrad(std::vector<basic_tensor<T>>(params), opt) {}

  /// Throws value_error naming the first invalid option.
  static void validate(const adagrad_options& o) {
    detail::require_non_negative(name, "lr", o.lr);
    detail::require_non_negative(name, "lr_decay", o.lr_decay);
    detail::require_non_negative(name, "weight_decay", o.weight_decay);
    detail::require_non_negative(name, "initial_accumulator_value", o.initial_accumulator_value);
    detail::require_positive(name, "eps", o.eps);
  }

private:
  static std::vector<detail::buffer_spec> buffers(const adagrad_options& o) {
    return {{"sum", o.initial_accumulator_value}};
  }

  static constexpr auto fields() {
    using O = adagrad_options;
    return std::make_tuple(detail::field("lr", &O::lr), detail::field("lr_decay", &O::lr_decay),
                           detail::field("weight_decay", &O::weight_decay),
                           detail::field("initial_accumulator_value", &O::initial_accumulator_value),
                           detail::field("eps", &O::eps), detail::field("maximize", &O::maximize));
  }

  void update(T* x, const T* g, std::size_t n, detail::param_state<T>& s) {
    const auto& o = this->options();
    // Source: the torch.optim.Adagrad algorithm box and its _single_tensor_adagrad code.
    const T clr = static_cast<T>(o.lr / (1 + static_cast<double>(s.step - 1) * o.lr_decay));
    const T wd = static_cast<T>(o.weight_decay), eps = static_cast<T>(o.eps);
    const bool maximize = o.maximize;
    detail::update_loop(
        n, x, g,
        [=](auto& xv, auto gv, auto& sum) {
          using V = std::remove_cvref_t<decltype(xv)>;
          if (maximize)
            gv = -gv;
          if (wd != 0)
            gv = gv + V(wd) * xv; // L2 penalty: d(lambda/2 |x|^2)/dx = lambda x
          sum = sum + gv * gv;
          xv = xv - V(clr) * (gv / (detail::vsqrt(sum) + V(eps)));
        },
        s.buffers[0].data());
  }
};

} // namespace grad::optim
