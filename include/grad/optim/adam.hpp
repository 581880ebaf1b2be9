#pragma once
/// @file optim/adam.hpp
/// Adam (Kingma & Ba 2015) with L2 weight decay, and AdamW (Loshchilov & Hutter 2019) with decoupled
/// weight decay; both with optional AMSGrad (Reddi et al. 2018).

#include <array>
#include <cmath>
#include <initializer_list>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "grad/optim/optimizer.hpp"

namespace grad::optim {

/// Options of adam (PyTorch's torch.optim.Adam defaults).
struct adam_options {
  double lr = 1e-3;                           ///< learning rate (gamma)
  std::array<double, 2> betas = {0.9, 0.999}; ///< decay rates of the first and second moments, in [0, 1)
  double eps = 1e-8;                          ///< added to the denominator, > 0
  double weight_decay = 0;                    ///< L2 penalty (lambda) added to the gradient
  bool amsgrad = false;                       ///< use the running maximum of the second moment
  bool maximize = false;                      ///< ascend the objective instead of descending it
};

/// Options of adamw (PyTorch's torch.optim.AdamW defaults: weight_decay 1e-2).
struct adamw_options {
  double lr = 1e-3;                           ///< learning rate (gamma)
  std::array<double, 2> betas = {0.9, 0.999}; ///< decay rates of the first and second moments, in [0, 1)
  double eps = 1e-8;                          ///< added to the denominator, > 0
  double weight_decay = 1e-2;                 ///< decoupled decay: x = x (1 - gamma lambda) every step
  bool amsgrad = false;                       ///< use the running maximum of the second moment
  bool maximize = false;                      ///< ascend the objective instead of descending it
};

namespace detail {

/// The Adam update shared by adam (Decoupled = false) and adamw (Decoupled = true).
template <class Derived, class T, class Options, bool Decoupled>
class adam_base : public optimizer_base<Derived, T, Options> {
  using base = optimizer_base<Derived, T, Options>;
  friend base;

public:
  /// Throws value_error naming the first invalid option.
  static void validate(const Options& o) {
    require_non_negative(Derived::name, "lr", o.lr);
    require_unit_open(Derived::name, "betas[0]", o.betas[0]);
    require_unit_open(Derived::name, "betas[1]", o.betas[1]);
    require_positive(Derived::name, "eps", o.eps);
    require_non_negative(Derived::name, "weight_decay", o.weight_decay);
  }

protected:
  adam_base(std::vector<basic_tensor<T>> params, Options opt) : base(std::move(params), opt) {}

private:
  static std::vector<buffer_spec> buffers(const Options& o) {
    if (o.amsgrad)
      return {{"exp_avg", 0.0}, {"exp_avg_sq", 0.0}, {"max_exp_avg_sq", 0.0}};
    return {{"exp_avg", 0.0}, {"exp_avg_sq", 0.0}};
  }

  static constexpr auto fields() {
    return std::make_tuple(field("lr", &Options::lr), field("betas", &Options::betas),
                           field("eps", &Options::eps), field("weight_decay", &Options::weight_decay),
                           field("amsgrad", &Options::amsgrad), field("maximize", &Options::maximize));
  }

  void update(T* x, const T* g, std::size_t n, param_state<T>& s) {
    const auto& o = this->options();
    // Scalars in double, as PyTorch computes them in Python floats, then rounded once to T.
    const double t = static_cast<double>(s.step);
    const double bc1 = 1 - std::pow(o.betas[0], t); // bias corrections 1 - beta^t (Adam paper, Alg. 1)
    const double bc2 = 1 - std::pow(o.betas[1], t);
    const T step_size = static_cast<T>(o.lr / bc1);
    const T bc2_sqrt = static_cast<T>(std::sqrt(bc2));
    const T b1 = static_cast<T>(o.betas[0]), c1 = static_cast<T>(1 - o.betas[0]);
    const T b2 = static_cast<T>(o.betas[1]), c2 = static_cast<T>(1 - o.betas[1]);
    const T eps = static_cast<T>(o.eps);
    const T l2 = Decoupled ? T(0) : static_cast<T>(o.weight_decay);
    const T decay = static_cast<T>(1 - o.lr * o.weight_decay); // AdamW: x <- x (1 - gamma lambda)
    const bool decoupled = Decoupled && o.weight_decay != 0, maximize = o.maximize;
    // Source: the torch.optim.Adam / AdamW algorithm boxes and their _single_tensor_adam code:
    //   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  [amsgrad: vmax = max(vmax, v), use vmax for v]
    //   x = x - (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps), i.e. lr m^ / (sqrt(v^) + eps) as torch does it
    auto body = [=](auto& xv, auto gv, auto& m, auto& v, auto&... vmax_sq) {
      using V = std::remove_cvref_t<decltype(xv)>;
      if (maximize)
        gv = -gv;
      if (decoupled)
        xv = xv * V(decay);
      else if (l2 != 0)
        gv = gv + V(l2) * xv; // L2 penalty in the gradient (Adam); AdamW decays the weights instead
      m = V(b1) * m + V(c1) * gv;
      v = V(b2) * v + V(c2) * gv * gv;
      V vhat = v;
      ((vmax_sq = vmax(vmax_sq, v), vhat = vmax_sq), ...); // amsgrad
      xv = xv - V(step_size) * m / (vsqrt(vhat) / V(bc2_sqrt) + V(eps));
    };
    if (o.amsgrad)
      update_loop(n, x, g, body, s.buffers[0].data(), s.buffers[1].data(), s.buffers[2].data());
    else
      update_loop(n, x, g, body, s.buffers[0].data(), s.buffers[1].data());
  }
};

} // namespace detail

/// Adam: `adam opt(net.parameters(), {.lr = 3e-4, .betas = {0.9, 0.95}});`.
///
/// Update (torch.optim.Adam): g = ±grad + lambda x; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
/// m^ = m / (1 - b1^t); v^ = v / (1 - b2^t) (amsgrad: of max(v) so far); x = x - lr m^ / (sqrt(v^) + eps).
template <element T>
class adam : public detail::adam_base<adam<T>, T, adam_options, false> {
  using base = detail::adam_base<adam<T>, T, adam_options, false>;

public:
  /// Name used in errors and in the saved state ("optimizer.adam").
  static constexpr std::string_view name = "adam";
  /// Optimizes `params` (handles shared with the model); throws value_error on bad options or params.
  explicit adam(std::vector<basic_tensor<T>> params, adam_options opt = {}) : base(std::move(params), opt) {}
  /// Optimizes a braced list of tensors: `adam opt({w, b}, {.lr = 1e-2})`.
  adam(std::initializer_list<basic_tensor<T>> params, adam_options opt = {})
      : adam(std::vector<basic_tensor<T>>(params), opt) {}
};

/// AdamW: Adam with decoupled weight decay, `adamw opt(net.parameters(), {.lr = 3e-4, .weight_decay =
/// 0.1});`.
///
/// Update (torch.optim.AdamW): x = x (1 - lr lambda), then Adam's update without the L2 term.
template <element T>
class adamw : public detail::adam_base<adamw<T>, T, adamw_options, true> {
  using base = detail::adam_base<adamw<T>, T, adamw_options, true>;

public:
  /// Name used in errors and in the saved state ("optimizer.adamw").
  static constexpr std::string_view name = "adamw";
  /// Optimizes `params` (handles shared with the model); throws value_error on bad options or params.
  explicit adamw(std::vector<basic_tensor<T>> params, adamw_options opt = {})
      : base(std::move(params), opt) {}
  /// Optimizes a braced list of tensors: `adamw opt({w, b}, {.lr = 1e-2})`.
  adamw(std::initializer_list<basic_tensor<T>> params, adamw_options opt = {})
      : adamw(std::vector<basic_tensor<T>>(params), opt) {}
};

} // namespace grad::optim
