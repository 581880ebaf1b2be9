#pragma once
/// @file optim/sgd.hpp
/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and L2 weight decay.

#include <initializer_list>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "grad/optim/optimizer.hpp"

namespace grad::optim {

/// Options of sgd (PyTorch's torch.optim.SGD defaults).
struct sgd_options {
  double lr = 1e-3;        ///< learning rate (gamma)
  double momentum = 0;     ///< momentum factor (mu); 0 = plain SGD
  double dampening = 0;    ///< dampening of the gradient added to the momentum buffer (tau), in [0, 1]
  double weight_decay = 0; ///< L2 penalty (lambda) added to the gradient
  bool nesterov = false;   ///< Nesterov momentum (needs momentum > 0 and dampening = 0)
  bool maximize = false;   ///< ascend the objective instead of descending it
};

/// Stochastic gradient descent: `sgd opt(net.parameters(), {.lr = 0.1, .momentum = 0.9});`.
///
/// Update (torch.optim.SGD, as implemented: maximize negates the gradient first):
///   g = ±grad + lambda x;  b = g on the first step, else mu b + (1 - tau) g;
///   g = g + mu b (nesterov) or b;  x = x - gamma g.
template <element T>
class sgd : public detail::optimizer_base<sgd<T>, T, sgd_options> {
  using base = detail::optimizer_base<sgd<T>, T, sgd_options>;
  friend base;

public:
  /// Name used in errors and in the saved state ("optimizer.sgd").
  static constexpr std::string_view name = "sgd";

  /// Optimizes `params` (handles shared with the model); throws value_error on bad options or params.
  explicit sgd(std::vector<basic_tensor<T>> params, sgd_options opt = {}) : base(std::move(params), opt) {}
  /// Optimizes a braced list of tensors: `sgd opt({w, b}, {.lr = 0.1})`.
  sgd(std::initializer_list<basic_tensor<T>> params, sgd_options opt = {})
      : sgd(std::vector<basic_tensor<T>>(params), opt) {}

  /// Throws value_error naming the first invalid option.
  static void validate(const sgd_options& o) {
    detail::require_non_negative(name, "lr", o.lr);
    detail::require_non_negative(name, "momentum", o.momentum);
    detail::require_unit_closed(name, "dampening", o.dampening);
    detail::require_non_negative(name, "weight_decay", o.weight_decay);
    // PyTorch: "Nesterov momentum requires a momentum and zero dampening".
    if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
      throw value_error("sgd: nesterov = true requires momentum > 0 and dampening = 0 (got momentum " +
                        detail::num(o.momentum) + ", dampening " + detail::num(o.dampening) + ")");
  }

private:
  static std::vector<detail::buffer_spec> buffers(const sgd_options& o) {
    if (o.momentum == 0)
      return {};
    return {{"momentum_buffer", 0.0}};
  }

  static constexpr auto fields() {
    using O = sgd_options;
    return std::make_tuple(detail::field("lr", &O::lr), detail::field("momentum", &O::momentum),
                           detail::field("dampening", &O::dampening),
                           detail::field("weight_decay", &O::weight_decay),
                           detail::field("nesterov", &O::nesterov), detail::field("maximize", &O::maximize));
  }

  void update(T* x, const T* g, std::size_t n, detail::param_state<T>& s) {
    const auto& o = this->options();
    const T lr = static_cast<T>(o.lr), wd = static_cast<T>(o.weight_decay);
    const T mu = static_cast<T>(o.momentum), keep = static_cast<T>(1 - o.dampening);
    const bool maximize = o.maximize, nesterov = o.nesterov, first = s.step == 1;
    // Source: the torch.optim.SGD algorithm box (maximize applied to the gradient, as in its code).
    auto grad_of = [=](auto& xv, auto gv) {
      using V = std::remove_cvref_t<decltype(xv)>;
      if (maximize)
        gv = -gv;
      if (wd != 0)
        gv = gv + V(wd) * xv; // L2 penalty: d(lambda/2 |x|^2)/dx = lambda x
      return gv;
    };
    if (o.momentum == 0) {
      detail::update_loop(n, x, g, [=](auto& xv, auto gv) {
        using V = std::remove_cvref_t<decltype(xv)>;
        xv = xv - V(lr) * grad_of(xv, gv);
      });
      return;
    }
    detail::update_loop(
        n, x, g,
        [=](auto& xv, auto gv, auto& b) {
          using V = std::remove_cvref_t<decltype(xv)>;
          auto d = grad_of(xv, gv);
          b = first ? d : V(mu) * b + V(keep) * d; // b_1 = g_1, then b_t = mu b_{t-1} + (1 - tau) g_t
          d = nesterov ? d + V(mu) * b : b;
          xv = xv - V(lr) * d;
        },
        s.buffers[0].data());
  }
};

} // namespace grad::optim
