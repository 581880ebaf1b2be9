#pragma once
/// @file nn/module.hpp
/// What a module is (DESIGN.md section 6): the `grad::nn::module` concept, and `module_base`, a CRTP
/// base that derives parameters(), named_parameters(), named_buffers(), train()/eval() and zero_grad()
/// from one `visit` member that lists a module's parameters, buffers and children.
///
/// A module written on module_base:
///
///     struct net : grad::nn::module_base<net> {
///       grad::nn::linear fc1{784, 256}, fc2{256, 10};
///       grad::tensor forward(const grad::tensor& x) { return fc2(grad::relu(fc1(x))); }
///       template <class V> void visit(V& v) { v.child("fc1", fc1); v.child("fc2", fc2); }
///     };
///
/// Modules hold tensor handles: copying a module shares its parameters (as copying a tensor shares
/// its value). Build a fresh module to get fresh parameters.

#include <concepts>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "grad/core/tensor.hpp"

namespace grad::nn {

/// A list of (dotted name, tensor) pairs, as named_parameters() and named_buffers() return.
template <element T>
using named_tensors = std::vector<std::pair<std::string, basic_tensor<T>>>;

/// What every module has: a value_type, its (named) parameters and buffers, train/eval, zero_grad.
/// forward is not part of it, since its arguments differ between modules (tensor, index_tensor, ...).
template <class M>
concept module = requires(M& m, const M& cm, bool on) {
  typename M::value_type;
  requires element<typename M::value_type>;
  { cm.named_parameters() } -> std::same_as<named_tensors<typename M::value_type>>;
  { cm.parameters() } -> std::same_as<std::vector<basic_tensor<typename M::value_type>>>;
  { cm.named_buffers() } -> std::same_as<named_tensors<typename M::value_type>>;
  m.train(on);
  m.eval();
  { cm.is_training() } -> std::convertible_to<bool>;
  m.zero_grad();
};

/// A module whose forward takes an In: `module_for<nn::linear, tensor>`.
template <class M, class In>
concept module_for = module<M> && std::invocable<M&, In>;

namespace detail {

/// Visitor that collects parameters (or buffers) under a dotted prefix; children are asked through
/// their public named_parameters()/named_buffers(), so any type satisfying `module` can be a child.
template <class T>
struct collect_visitor {
  named_tensors<T>& out;
  std::string prefix;
  bool buffers = false;

  void param(std::string_view name, basic_tensor<T>& t) {
    if (!buffers && t.defined()) // an undefined tensor is an absent parameter (bias = false)
      out.emplace_back(prefix + std::string(name), t);
  }
  void buffer(std::string_view name, basic_tensor<T>& t) {
    if (buffers && t.defined())
      out.emplace_back(prefix + std::string(name), t);
  }
  template <class M>
  void child(std::string_view name, M& m) {
    for (auto& [k, t] : buffers ? m.named_buffers() : m.named_parameters())
      out.emplace_back(prefix + std::string(name) + "." + k, t);
  }
  template <class M>
  void child(std::string_view name, std::vector<M>& ms) { // a list of children: name.0, name.1, ...
    for (std::size_t i = 0; i < ms.size(); ++i)
      child(std::string(name) + "." + std::to_string(i), ms[i]);
  }
};

/// Visitor that switches children between training and evaluation.
struct train_visitor {
  bool on = true;
  template <class T>
  void param(std::string_view, T&) {}
  template <class T>
  void buffer(std::string_view, T&) {}
  template <class M>
  void child(std::string_view, M& m) {
    m.train(on);
  }
  template <class M>
  void child(std::string_view, std::vector<M>& ms) {
    for (auto& m : ms)
      m.train(on);
  }
};

} // namespace detail

/// CRTP base of modules: Derived supplies `forward(...)` and `template <class V> void visit(V& v)`
/// calling v.param(name, tensor), v.buffer(name, tensor) and v.child(name, module or vector of
/// modules); the base derives everything else. Modules without state need no visit.
template <class Derived, element T = float>
class module_base {
public:
  using value_type = T; ///< element type of the parameters

  /// Parameters with dotted names (`fc1.weight`, `layers.0.bias`), in declaration order.
  named_tensors<T> named_parameters() const { return collect(false); }
  /// Buffers (state that is saved but not trained, e.g. batch-norm running statistics) with dotted names.
  named_tensors<T> named_buffers() const { return collect(true); }
  /// The parameters: handles sharing storage with the module's, for optimizers.
  std::vector<basic_tensor<T>> parameters() const {
    std::vector<basic_tensor<T>> r;
    for (auto& [name, t] : named_parameters())
      r.push_back(t);
    return r;
  }
  /// Switches this module and its children to training (true) or evaluation (false) mode.
  void train(bool on = true) {
    training_ = on;
    detail::train_visitor v{on};
    self().visit(v);
  }
  /// Switches to evaluation mode (dropout off, batch norm on running statistics).
  void eval() { train(false); }
  /// True in training mode (the default).
  bool is_training() const { return training_; }
  /// Sets the gradient of every parameter to zero.
  void zero_grad() {
    for (auto& p : parameters())
      p.zero_grad();
  }
  /// Calls forward.
  template <class... A>
  decltype(auto) operator()(A&&... a) {
    return self().forward(std::forward<A>(a)...);
  }
  /// Calls forward on a const module.
  template <class... A>
  decltype(auto) operator()(A&&... a) const {
    return static_cast<const Derived&>(*this).forward(std::forward<A>(a)...);
  }
  /// No parameters, buffers or children (Derived's own visit hides this one).
  template <class V>
  void visit(V&) {}

private:
  // visit is written once, non-const; collecting only copies handles, so running it on a const
  // module is safe.
  Derived& self() const { return const_cast<Derived&>(static_cast<const Derived&>(*this)); }
  named_tensors<T> collect(bool buffers) const {
    named_tensors<T> out;
    detail::collect_visitor<T> v{out, "", buffers};
    self().visit(v);
    return out;
  }
  bool training_ = true;
};

/// Total number of elements of m's parameters (e.g. 269322 for a 784-256-256-10 mlp).
template <module M>
std::size_t parameter_count(const M& m) {
  std::size_t n = 0;
  for (const auto& p : m.parameters())
    n += p.numel();
  return n;
}

/// Sets the gradient of every parameter of m to zero.
template <module M>
void zero_grad(M& m) {
  m.zero_grad();
}

} // namespace grad::nn
