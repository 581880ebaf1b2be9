#pragma once
/// @file optim/rmsprop.hpp
/// RMSprop (Hinton, Coursera lecture 6.5), optionally centered (Graves 2013) and with momentum.

#include <initializer_list>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "grad/optim/optimizer.hpp"

namespace grad::optim {

/// Options of rmsprop (PyTorch's torch.optim.RMSprop defaults).
struct rmsprop_options {
  double lr = 1e-2;        ///< learning rate (gamma)
  double alpha = 0.99;     ///< smoothing constant of the squared-gradient average, in [0, 1]
  double eps = 1e-8;       ///< added to the denominator, > 0
  double weight_decay = 0; ///< L2 penalty (lambda) added to the gradient
  double momentum = 0;     ///< momentum factor (mu); 0 = none
  bool centered = false;   ///< divide by an estimate of the variance instead of the second moment
  bool maximize = false;   ///< ascend the objective instead of descending it
};

/// RMSprop: `rmsprop opt(net.parameters(), {.lr = 1e-3, .momentum = 0.9});`.
///
/// Update (torch.optim.RMSprop): g = ±grad + lambda x; v = alpha v + (1 - alpha) g^2;
/// centered: a = alpha a + (1 - alpha) g, v~ = v - a^2, else v~ = v;
/// momentum: b = mu b + g / (sqrt(v~) + eps), x = x - gamma b; else x = x - gamma g / (sqrt(v~) + eps).
template <element T>
class rmsprop : public detail::optimizer_base<rmsprop<T>, T, rmsprop_options> {
  using base = detail::optimizer_base<rmsprop<T>, T, rmsprop_options>;
  friend base;

public:
  /// Name used in errors and in the saved state ("optimizer.rmsprop").
  static constexpr std::string_view name = "rmsprop";

  /// Optimizes `params` (handles shared with the model); throws value_error on bad options or params.
  explicit rmsprop(std::vector<basic_tensor<T>> params, rmsprop_options opt = {})
      : base(std::move(params), opt) {}
  /// Optimizes a braced list of tensors: `rmsprop opt({w, b}, {.lr = 1e-2})`.
  rmsprop(std::initializer_list<basic_tensor<T>> params, rmsprop_options opt = {})
      : rmsprop(std::vector<basic_tensor<T>>(params), opt) {}

  /// Throws value_error naming the first invalid option.
  static void validate(const rmsprop_options& o) {
    detail::require_non_negative(name, "lr", o.lr);
    detail::require_unit_closed(name, "alpha", o.alpha);
    detail::require_positive(name, "eps", o.eps);
    detail::require_non_negative(name, "weight_decay", o.weight_decay);
    detail::require_non_negative(name, "momentum", o.momentum);
  }

private:
  // Buffer order: square_avg, then momentum_buffer (momentum > 0), then grad_avg (centered).
  static std::vector<detail::buffer_spec> buffers(const rmsprop_options& o) {
    std::vector<detail::buffer_spec> b{{"square_avg", 0.0}};
    if (o.momentum > 0)
      b.push_back({"momentum_buffer", 0.0});
    if (o.centered)
      b.push_back({"grad_avg", 0.0});
    return b;
  }

  static constexpr auto fields() {
    using O = rmsprop_options;
    return std::make_tuple(detail::field("lr", &O::lr), detail::field("alpha", &O::alpha),
                           detail::field("eps", &O::eps), detail::field("weight_decay", &O::weight_decay),
                           detail::field("momentum", &O::momentum), detail::field("centered", &O::centered),
                           detail::field("maximize", &O::maximize));
  }

  void update(T* x, const T* g, std::size_t n, detail::param_state<T>& s) {
    const auto& o = this->options();
    if (o.momentum > 0 && o.centered)
      run<true, true>(x, g, n, s.buffers[0].data(), s.buffers[1].data(), s.buffers[2].data());
    else if (o.momentum > 0)
      run<true, false>(x, g, n, s.buffers[0].data(), s.buffers[1].data());
    else if (o.centered)
      run<false, true>(x, g, n, s.buffers[0].data(), s.buffers[1].data());
    else
      run<false, false>(x, g, n, s.buffers[0].data());
  }

  // `extra` are the momentum buffer (if Momentum) then the gradient average (if Centered).
  template <bool Momentum, bool Centered, class... B>
  void run(T* x, const T* g, std::size_t n, B*... bufs) const {
    const auto& o = this->options();
    const T lr = static_cast<T>(o.lr), wd = static_cast<T>(o.weight_decay), eps = static_cast<T>(o.eps);
    const T alpha = static_cast<T>(o.alpha), c = static_cast<T>(1 - o.alpha), mu = static_cast<T>(o.momentum);
    const bool maximize = o.maximize;
    // Source: the torch.optim.RMSprop algorithm box and its _single_tensor_rmsprop code.
    detail::update_loop(
        n, x, g,
        [=](auto& xv, auto gv, auto& sq, auto&... extra) {
          using V = std::remove_cvref_t<decltype(xv)>;
          auto refs = std::tie(extra...);
          if (maximize)
            gv = -gv;
          if (wd != 0)
            gv = gv + V(wd) * xv; // L2 penalty: d(lambda/2 |x|^2)/dx = lambda x
          sq = V(alpha) * sq + V(c) * gv * gv;
          const V avg = [&] {
            if constexpr (Centered) {
              auto& ga = std::get < Momentum ? 1 : 0 > (refs);
              ga = V(alpha) * ga + V(c) * gv;
              // v - a^2 >= 0 in exact arithmetic (Cauchy-Schwarz); clamp the rounding error that would
              // give sqrt(negative) = NaN where torch produces one.
              return detail::vsqrt(detail::vmax(V(sq - ga * ga), V(0))) + V(eps);
            } else {
              return detail::vsqrt(sq) + V(eps);
            }
          }();
          if constexpr (Momentum) {
            auto& b = std::get<0>(refs);
            b = V(mu) * b + gv / avg;
            xv = xv - V(lr) * b;
          } else {
            xv = xv - V(lr) * (gv / avg);
          }
        },
        bufs...);
  }
};

} // namespace grad::optim
