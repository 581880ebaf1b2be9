#pragma once
/// @file nn/any_module.hpp
/// any_module: a type-erased module from tensor to tensor, for networks whose layers are chosen at run
/// time (`std::vector<nn::any_module>`). It costs one virtual call per forward; sequential does not.

#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "grad/nn/module.hpp"

namespace grad::nn {

/// Holds any module whose forward maps basic_tensor<T> to basic_tensor<T>. Copies share the module
/// (and so its parameters), like tensor handles.
template <element T = float>
class basic_any_module {
public:
  using value_type = T; ///< element type

  /// Wraps m (moved in).
  template <class M>
  requires(!std::is_same_v<std::remove_cvref_t<M>, basic_any_module> && module<std::remove_cvref_t<M>> &&
           std::is_same_v<typename std::remove_cvref_t<M>::value_type, T> &&
           std::is_invocable_r_v<basic_tensor<T>, std::remove_cvref_t<M>&, const basic_tensor<T>&>)
      basic_any_module(M&& m) // NOLINT: implicit, so a vector<any_module> takes modules directly
      : impl_(std::make_shared<model<std::remove_cvref_t<M>>>(std::forward<M>(m))) {}

  /// Runs the wrapped module.
  basic_tensor<T> forward(const basic_tensor<T>& x) { return impl_->forward(x); }
  /// Runs the wrapped module.
  basic_tensor<T> operator()(const basic_tensor<T>& x) { return impl_->forward(x); }
  /// The wrapped module's named parameters.
  named_tensors<T> named_parameters() const { return impl_->named_parameters(); }
  /// The wrapped module's named buffers.
  named_tensors<T> named_buffers() const { return impl_->named_buffers(); }
  /// The wrapped module's parameters.
  std::vector<basic_tensor<T>> parameters() const {
    std::vector<basic_tensor<T>> r;
    for (auto& [name, t] : named_parameters())
      r.push_back(t);
    return r;
  }
  /// Switches the wrapped module to training (true) or evaluation (false).
  void train(bool on = true) { impl_->train(on); }
  /// Switches to evaluation.
  void eval() { impl_->train(false); }
  /// True in training mode.
  bool is_training() const { return impl_->is_training(); }
  /// Zeroes the wrapped module's gradients.
  void zero_grad() {
    for (auto& p : parameters())
      p.zero_grad();
  }
  /// The wrapped module if it is an M, else nullptr.
  template <class M>
  M* target() {
    auto* p = dynamic_cast<model<M>*>(impl_.get());
    return p ? &p->m : nullptr;
  }

private:
  struct concept_base {
    virtual ~concept_base() = default;
    virtual basic_tensor<T> forward(const basic_tensor<T>& x) = 0;
    virtual named_tensors<T> named_parameters() const = 0;
    virtual named_tensors<T> named_buffers() const = 0;
    virtual void train(bool on) = 0;
    virtual bool is_training() const = 0;
  };
  template <class M>
  struct model final : concept_base {
    M m;
    explicit model(M x) : m(std::move(x)) {}
    basic_tensor<T> forward(const basic_tensor<T>& x) override { return m(x); }
    named_tensors<T> named_parameters() const override { return m.named_parameters(); }
    named_tensors<T> named_buffers() const override { return m.named_buffers(); }
    void train(bool on) override { m.train(on); }
    bool is_training() const override { return m.is_training(); }
  };
  std::shared_ptr<concept_base> impl_;
};

/// Type-erased module in float.
using any_module = basic_any_module<float>;

} // namespace grad::nn
