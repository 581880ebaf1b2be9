#pragma once
/// @file optim/optimizer.hpp
/// What every optimizer shares: the saved-state format, the concepts, option checks, the per-parameter
/// state and the SIMD update loop (DESIGN.md section 6).

#include <array>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "grad/core/error.hpp"
#include "grad/core/shape.hpp"
#include "grad/core/tensor.hpp"
#include "grad/detail/xsimd.hpp"
#include "grad/detail/xtensor.hpp"

namespace grad::optim {

/// Saved state of an optimizer or schedule: named arrays in a fixed order, ready for a tensor file.
template <class T>
using named_arrays = std::vector<std::pair<std::string, xt::xarray<T>>>;

/// Anything whose learning rate a schedule can read and set: `lr()` and `set_lr(x)`.
template <class O>
concept lr_optimizer = requires(O& o, const O& co, double x) {
  { co.lr() } -> std::convertible_to<double>;
  o.set_lr(x);
};

/// A grad optimizer: step(), zero_grad(), lr()/set_lr() and a state that can be saved and loaded.
template <class O>
concept optimizer = lr_optimizer<O> && requires(O& o, const O& co) {
  typename O::value_type;
  o.step();
  o.zero_grad();
  { co.state_dict() } -> std::same_as<named_arrays<typename O::value_type>>;
  o.load_state_dict(co.state_dict());
};

namespace detail {

/// Shortest round-trip text of a number, for error messages (`1e-08`, `0.0003`, `-0.1`).
inline std::string num(double v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

/// Throws "<who>: invalid <option> <value>; it must be <rule>" unless `ok`.
inline void require(bool ok, std::string_view who, std::string_view option, double value,
                    std::string_view rule) {
  if (!ok)
    throw value_error(std::string(who) + ": invalid " + std::string(option) + " " + num(value) +
                      "; it must be " + std::string(rule));
}

/// Checks a finite value >= 0 (learning rates, weight decay, momentum).
inline void require_non_negative(std::string_view who, std::string_view option, double v) {
  require(std::isfinite(v) && v >= 0, who, option, v, ">= 0 and finite");
}

/// Checks a finite value > 0 (eps: a zero eps divides by zero where a second moment is zero).
inline void require_positive(std::string_view who, std::string_view option, double v) {
  require(std::isfinite(v) && v > 0, who, option, v, "> 0 and finite");
}

/// Checks a value in [0, 1) (Adam's betas: beta = 1 never forgets, and 1 - beta^t = 0 divides by zero).
inline void require_unit_open(std::string_view who, std::string_view option, double v) {
  require(v >= 0 && v < 1, who, option, v, "in [0, 1)");
}

/// Checks a value in [0, 1] (dampening, RMSprop's alpha).
inline void require_unit_closed(std::string_view who, std::string_view option, double v) {
  require(v >= 0 && v <= 1, who, option, v, "in [0, 1]");
}

/// Rejects lists an optimizer cannot update: empty, undefined, frozen, computed or repeated tensors.
template <class T>
void check_params(std::string_view who, const std::vector<basic_tensor<T>>& params) {
  const std::string w(who);
  if (params.empty())
    throw value_error(w + ": got an empty parameter list; pass net.parameters() or tensors created with "
                          "tensor_options{.requires_grad = true}");
  std::unordered_map<const void*, std::size_t> seen;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    const std::string at = w + ": parameter " + std::to_string(i);
    if (!p.defined())
      throw value_error(at + " is an undefined tensor (a default-constructed handle)");
    if (!p.requires_grad())
      throw value_error(at + " (shape " + to_string(p.shape()) +
                        ") does not require grad, so it never gets a gradient; create it with "
                        "tensor_options{.requires_grad = true} or leave it out of the list (frozen weights)");
    if (!p.is_leaf())
      throw value_error(
          at + " (shape " + to_string(p.shape()) +
          ") is the result of an op, not a leaf; optimize the leaf tensors it was computed from");
    auto [it, fresh] = seen.emplace(p.impl().get(), i);
    if (!fresh)
      throw value_error(at + " is the same tensor as parameter " + std::to_string(it->second) +
                        "; pass each parameter once (it would be updated twice per step)");
  }
}

/// A moment buffer an optimizer keeps per parameter: its state_dict name and its initial value.
struct buffer_spec {
  std::string_view name; ///< e.g. "exp_avg", saved as "state.<i>.exp_avg"
  double init = 0;       ///< fill value when the buffer is created on the parameter's first step
};

/// Per-parameter state: created on the first step that finds a gradient, as PyTorch does.
template <class T>
struct param_state {
  std::int64_t step = 0;              // steps this parameter took; 0 = no state yet
  std::vector<xt::xarray<T>> buffers; // one per buffer_spec, same shape as the parameter
};

/// A hyper-parameter of an options struct, saved as "param_groups.0.<name>".
template <class Options, class V>
struct hyper_field {
  std::string_view name;
  V Options::*member;
};

/// Describes one field of an options struct (clang 14 has no aggregate CTAD, hence a function).
template <class Options, class V>
constexpr hyper_field<Options, V> field(std::string_view name, V Options::*member) {
  return {name, member};
}

/// A 0-d array holding `v`.
template <class T>
xt::xarray<T> scalar_array(double v) {
  auto a = grad::detail::empty_array<T>(shape_type{});
  a.data()[0] = static_cast<T>(v);
  return a;
}

template <class T>
xt::xarray<T> encode(double v) {
  return scalar_array<T>(v);
}
template <class T>
xt::xarray<T> encode(bool v) {
  return scalar_array<T>(v ? 1.0 : 0.0);
}
template <class T>
xt::xarray<T> encode(const std::array<double, 2>& v) {
  auto a = grad::detail::empty_array<T>(shape_type{2});
  a.data()[0] = static_cast<T>(v[0]);
  a.data()[1] = static_cast<T>(v[1]);
  return a;
}

template <class T>
void decode(const std::string& who, const std::string& key, const xt::xarray<T>& a, double& v) {
  if (a.size() != 1)
    throw value_error(who + ": entry '" + key + "' should hold one number, it has " +
                      std::to_string(a.size()));
  v = static_cast<double>(a.data()[0]);
}
template <class T>
void decode(const std::string& who, const std::string& key, const xt::xarray<T>& a, bool& v) {
  double d = 0;
  decode(who, key, a, d);
  if (d != 0 && d != 1)
    throw value_error(who + ": entry '" + key + "' is a flag and must be 0 or 1, not " + num(d));
  v = d == 1;
}
template <class T>
void decode(const std::string& who, const std::string& key, const xt::xarray<T>& a,
            std::array<double, 2>& v) {
  if (a.size() != 2)
    throw value_error(who + ": entry '" + key + "' should hold two numbers, it has " +
                      std::to_string(a.size()));
  v = {static_cast<double>(a.data()[0]), static_cast<double>(a.data()[1])};
}

/// sqrt of a scalar or of a SIMD batch, so one update formula serves the vector body and the tail.
template <std::floating_point T>
inline T vsqrt(T x) noexcept {
  return std::sqrt(x);
}
template <class T, class A>
inline xsimd::batch<T, A> vsqrt(const xsimd::batch<T, A>& x) noexcept {
  return xsimd::sqrt(x);
}

/// Elementwise maximum of scalars or SIMD batches.
template <std::floating_point T>
inline T vmax(T a, T b) noexcept {
  return a < b ? b : a;
}
template <class T, class A>
inline xsimd::batch<T, A> vmax(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b) noexcept {
  return xsimd::max(a, b);
}

/// Runs `f(x, g, bufs...)` over n elements: full SIMD batches, then a scalar tail with the same `f`.
/// `x` (the parameter) and the buffers are updated in place; `g` (the gradient) is passed by value.
template <class T, class F, class... B>
inline void update_loop(std::size_t n, T* x, const T* g, F&& f, B*... bufs) {
  static_assert((std::is_same_v<B, T> && ...), "update_loop: buffers must have the parameter's type");
  using V = grad::detail::simd<T>;
  std::size_t i = 0;
  for (; i + V::size <= n; i += V::size) {
    V xv = V::load_unaligned(x + i);
    [&](auto... bv) {
      f(xv, V::load_unaligned(g + i), bv...);
      (bv.store_unaligned(bufs + i), ...);
    }(V::load_unaligned(bufs + i)...);
    xv.store_unaligned(x + i);
  }
  for (; i < n; ++i)
    f(x[i], g[i], bufs[i]...);
}

/// The machinery shared by all optimizers (CRTP). `Derived` provides:
/// `name`, `static void validate(const Options&)`, `static std::vector<buffer_spec> buffers(const Options&)`,
/// `static constexpr auto fields()` (the saved hyper-parameters) and
/// `void update(T* x, const T* g, std::size_t n, param_state<T>& s)` (one parameter, one step).
template <class Derived, class T, class Options>
class optimizer_base {
public:
  using value_type = T;         ///< element type of the parameters
  using options_type = Options; ///< the options struct

  /// One optimization step over every parameter that has a gradient (the others are skipped).
  void step() {
    auto& self = static_cast<Derived&>(*this);
    for (std::size_t i = 0; i < params_.size(); ++i) {
      auto& p = params_[i];
      if (!p.has_grad()) // PyTorch skips parameters whose .grad is None
        continue;
      auto& s = state_[i];
      if (s.step == 0)
        init_state(p, s);
      else if (!s.buffers.empty() && s.buffers.front().size() != p.numel())
        throw value_error(std::string(Derived::name) + ": parameter " + std::to_string(i) +
                          " changed size since its state was created (" +
                          std::to_string(s.buffers.front().size()) + " -> " + std::to_string(p.numel()) +
                          " elements); build a new optimizer after replacing parameters");
      ++s.step;
      self.update(p.data(), p.grad().data(), p.numel(), s);
    }
  }

  /// Sets every parameter's gradient to zero (keeps the buffers, as `zero_grad(set_to_none=False)`).
  void zero_grad() {
    for (auto& p : params_)
      p.zero_grad();
  }

  /// The learning rate.
  double lr() const noexcept { return opt_.lr; }
  /// Changes the learning rate (what schedules call); it must be >= 0 and finite.
  void set_lr(double lr) {
    require_non_negative(Derived::name, "lr", lr);
    opt_.lr = lr;
  }
  /// The options in force (after load_state_dict, the loaded ones).
  const Options& options() const noexcept { return opt_; }
  /// The parameters, in the order given to the constructor (state "state.<i>" belongs to the i-th).
  const std::vector<basic_tensor<T>>& parameters() const noexcept { return params_; }
  /// Steps parameter `i` has taken (0 before its first gradient).
  std::int64_t step_count(std::size_t i) const { return state_.at(i).step; }

  /// The state as named arrays: "optimizer.<name>" (format version 1), "param_groups.0.params" (indices),
  /// "param_groups.0.<hyper-parameter>", then "state.<i>.step" and "state.<i>.<buffer>" for every
  /// parameter that has taken a step. Hyper-parameters and steps are stored as T.
  named_arrays<T> state_dict() const {
    named_arrays<T> out;
    out.emplace_back("optimizer." + std::string(Derived::name), scalar_array<T>(1));
    auto idx = grad::detail::empty_array<T>(shape_type{params_.size()});
    for (std::size_t i = 0; i < params_.size(); ++i)
      idx.data()[i] = static_cast<T>(i);
    out.emplace_back("param_groups.0.params", std::move(idx));
    std::apply(
        [&](const auto&... f) { (out.emplace_back(key_of(f.name), encode<T>(opt_.*(f.member))), ...); },
        Derived::fields());
    const auto specs = Derived::buffers(opt_);
    for (std::size_t i = 0; i < state_.size(); ++i) {
      const auto& s = state_[i];
      if (s.step == 0)
        continue;
      const std::string pre = "state." + std::to_string(i) + ".";
      out.emplace_back(pre + "step", scalar_array<T>(static_cast<double>(s.step)));
      for (std::size_t k = 0; k < specs.size(); ++k)
        out.emplace_back(pre + std::string(specs[k].name), s.buffers[k]);
    }
    return out;
  }

  /// Restores a state_dict() of the same optimizer type over the same parameters: hyper-parameters
  /// (including lr), step counts and buffers. Throws value_error, changing nothing, when the state is
  /// of another optimizer, another parameter count or shape, or has missing or unknown entries.
  void load_state_dict(const named_arrays<T>& sd) {
    const std::string who = std::string(Derived::name) + ": load_state_dict";
    std::map<std::string, const xt::xarray<T>*, std::less<>> entries;
    for (const auto& [k, a] : sd)
      if (!entries.emplace(k, &a).second)
        throw value_error(who + ": entry '" + k + "' appears twice");
    auto take = [&](const std::string& key) -> const xt::xarray<T>& {
      auto it = entries.find(key);
      if (it == entries.end())
        throw value_error(who + ": the state has no entry '" + key + "'");
      const auto* a = it->second;
      entries.erase(it);
      return *a;
    };

    const std::string marker = "optimizer." + std::string(Derived::name);
    if (!entries.count(marker)) {
      for (const auto& [k, a] : entries)
        if (k.rfind("optimizer.", 0) == 0)
          throw value_error(who + ": this state was saved by " + k.substr(10) + ", not " +
                            std::string(Derived::name));
      throw value_error(who + ": not an optimizer state (no '" + marker + "' entry)");
    }
    double version = 0;
    decode(who, marker, take(marker), version);
    if (version != 1)
      throw value_error(who + ": unsupported state format version " + num(version) +
                        " (this grad reads version 1)");

    const auto& idx = take("param_groups.0.params");
    if (idx.size() != params_.size())
      throw value_error(who + ": the state is for " + std::to_string(idx.size()) +
                        " parameters, this optimizer has " + std::to_string(params_.size()));

    Options o = opt_;
    std::apply(
        [&](const auto&... f) { (decode(who, key_of(f.name), take(key_of(f.name)), o.*(f.member)), ...); },
        Derived::fields());
    Derived::validate(o);

    const auto specs = Derived::buffers(o);
    std::vector<param_state<T>> st(params_.size());
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const std::string pre = "state." + std::to_string(i) + ".";
      if (!entries.count(pre + "step"))
        continue; // this parameter had not taken a step yet
      double step = 0;
      decode(who, pre + "step", take(pre + "step"), step);
      if (!(step >= 1 && step <= 9007199254740992.0 && step == std::floor(step)))
        throw value_error(who + ": entry '" + pre + "step' must be a whole number >= 1, not " + num(step));
      st[i].step = static_cast<std::int64_t>(step);
      const auto& value_shape = params_[i].value().shape();
      for (const auto& spec : specs) {
        const std::string key = pre + std::string(spec.name);
        const auto& a = take(key);
        if (!std::equal(a.shape().begin(), a.shape().end(), value_shape.begin(), value_shape.end()))
          throw value_error(who + ": entry '" + key + "' has shape " +
                            to_string(shape_type(a.shape().begin(), a.shape().end())) + ", parameter " +
                            std::to_string(i) + " has shape " + to_string(params_[i].shape()));
        st[i].buffers.push_back(a);
      }
    }
    if (!entries.empty())
      throw value_error(who + ": unexpected entry '" + entries.begin()->first +
                        "' (a state of another parameter list, or saved with other options?)");
    opt_ = o;
    state_ = std::move(st);
  }

protected:
  /// Validates the options and the parameter list; state is created lazily by step().
  optimizer_base(std::vector<basic_tensor<T>> params, Options opt) : params_(std::move(params)), opt_(opt) {
    Derived::validate(opt_);
    check_params(Derived::name, params_);
    state_.resize(params_.size());
  }

private:
  static std::string key_of(std::string_view hyper) { return "param_groups.0." + std::string(hyper); }

  void init_state(const basic_tensor<T>& p, param_state<T>& s) const {
    s.buffers.clear();
    for (const auto& spec : Derived::buffers(opt_)) {
      auto a = grad::detail::empty_array<T>(p.value().shape());
      std::fill(a.data(), a.data() + a.size(), static_cast<T>(spec.init));
      s.buffers.push_back(std::move(a));
    }
  }

  std::vector<basic_tensor<T>> params_; // handles: they share the tensors with the model
  std::vector<param_state<T>> state_;   // state_[i] belongs to params_[i]
  Options opt_;
};

} // namespace detail
} // namespace grad::optim
