#pragma once
/// @file core/tensor.hpp
/// basic_tensor<T>: a cheap handle to a value, its gradient and its place on the tape.

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "grad/core/broadcast.hpp"
#include "grad/core/error.hpp"
#include "grad/core/profile_hook.hpp"
#include "grad/core/shape.hpp"
#include "grad/core/tape.hpp"
#include "grad/core/tensor_impl.hpp"
#include "grad/detail/xtensor.hpp"

namespace grad {

/// Element types a tensor can hold.
template <class T>
concept element = std::same_as<T, float> || std::same_as<T, double>;

/// Options of the factories (`zeros({2, 3}, {.requires_grad = true})`).
struct tensor_options {
  bool requires_grad = false; ///< record ops on it and accumulate its gradient
};

/// Options of backward().
struct backward_options {
  bool retain_graph = false; ///< keep the tape so backward can run again through the same graph
};

template <element T>
class basic_tensor;

namespace detail {
template <element T>
void run_backward(const basic_tensor<T>& root, const basic_tensor<T>* seed, backward_options opt);
} // namespace detail

/// A handle to a tensor: copying it is cheap and shares the value, like torch::Tensor.
template <element T>
class basic_tensor {
public:
  using value_type = T;                     ///< element type
  using array_type = grad::xarray<T>;       ///< the storage type of value() and grad()
  using impl_type = detail::tensor_impl<T>; ///< the shared state (internal)

  /// An undefined tensor (no storage); most operations on it throw.
  basic_tensor() = default;
  /// Wraps an existing state (used by ops and factories).
  explicit basic_tensor(detail::impl_ref<T> impl) noexcept : impl_(std::move(impl)) {}
  /// A leaf tensor holding `value`.
  explicit basic_tensor(array_type value, tensor_options opt = {})
      : impl_(detail::impl_ref<T>::make(std::move(value))) {
    impl_->requires_grad = opt.requires_grad;
  }

  /// True when the handle points to a tensor.
  bool defined() const noexcept { return static_cast<bool>(impl_); }
  /// The shape, one extent per dimension.
  shape_type shape() const { return shape_type(val().shape().begin(), val().shape().end()); }
  /// Extent of dimension `d` (negative counts from the end).
  std::size_t size(std::int64_t d) const { return val().shape()[detail::normalize_axis("size", d, dim())]; }
  /// Number of dimensions.
  std::size_t dim() const { return val().dimension(); }
  /// Number of elements.
  std::size_t numel() const { return val().size(); }

  /// The value (read; write only on leaves, e.g. under no_grad in an optimizer).
  const array_type& value() const { return val(); }
  /// The value, writable: change it only on leaves and never between forward and backward.
  array_type& value() { return val(); }
  /// Pointer to the first element (row-major, contiguous).
  const T* data() const { return val().data(); }
  /// Writable pointer to the first element.
  T* data() { return val().data(); }

  /// The single value of a one-element tensor.
  T item() const {
    if (numel() != 1)
      throw value_error("item: tensor has " + std::to_string(numel()) + " elements, shape " +
                        to_string(shape()) + "; only one-element tensors can be converted to a scalar");
    return *val().data();
  }

  /// True when ops on it are recorded and its gradient is computed.
  bool requires_grad() const { return state().requires_grad; }
  /// Sets requires_grad on a leaf; returns *this for chaining (`w.requires_grad_()`).
  basic_tensor& requires_grad_(bool on = true) {
    if (!is_leaf())
      throw autograd_error("requires_grad_: only leaf tensors can change requires_grad; use detach() "
                           "to get a leaf from a computed tensor");
    state().requires_grad = on;
    return *this;
  }
  /// True for tensors not produced by a recorded op (inputs and parameters).
  bool is_leaf() const { return state().creator == nullptr; }
  /// Keeps this non-leaf tensor's gradient after backward (leaves always keep theirs).
  basic_tensor& retain_grad() {
    state().retain_grad = true;
    return *this;
  }

  /// True once a gradient was accumulated (and not released).
  bool has_grad() const { return state().grad != nullptr; }
  /// The accumulated gradient, same shape as value(); zeros when none was accumulated yet.
  const array_type& grad() const { return state().grad_buffer(); }
  /// The gradient, writable (for clipping, or custom updates).
  array_type& grad() { return state().grad_buffer(); }
  /// Sets the gradient to zero (keeps the buffer), as optimizers do before each step.
  void zero_grad() {
    if (state().grad)
      std::fill(state().grad->data(), state().grad->data() + state().grad->size(), T(0));
  }

  /// A new leaf with a copy of the value that is not recorded and does not require grad.
  basic_tensor detach() const { return basic_tensor(array_type(val())); }

  /// Backpropagates from this one-element tensor: accumulates d(this)/d(leaf) into every leaf's grad().
  void backward(backward_options opt = {}) const { detail::run_backward<T>(*this, nullptr, opt); }
  /// Backpropagates with `gradient` (same shape) as d(loss)/d(this).
  void backward(const basic_tensor& gradient, backward_options opt = {}) const {
    detail::run_backward<T>(*this, &gradient, opt);
  }

  /// The shared state (internal: for ops, the tape and the profiler).
  const detail::impl_ref<T>& impl() const noexcept { return impl_; }
  /// Moves the shared state out of this handle, which becomes undefined (internal: apply uses it to
  /// take over a temporary operand without touching its reference count).
  detail::impl_ref<T> release_impl() && noexcept { return std::move(impl_); }

private:
  impl_type& state() const {
    if (!impl_)
      throw value_error("tensor: operation on an undefined tensor (default-constructed handle)");
    return *impl_;
  }
  array_type& val() const { return *state().value; }

  detail::impl_ref<T> impl_;
};

/// Single-precision tensor, the default for models.
using tensor = basic_tensor<float>;
/// Double-precision tensor, used for gradient checks.
using dtensor = basic_tensor<double>;

namespace detail {

template <element T>
void run_backward(const basic_tensor<T>& root, const basic_tensor<T>* seed, backward_options opt) {
  if (!root.defined())
    throw autograd_error("backward: called on an undefined tensor");
  auto& r = *root.impl();
  if (!r.requires_grad)
    throw autograd_error("backward: tensor of shape " + to_string(root.shape()) +
                         " does not require grad and has no graph; set requires_grad on the "
                         "parameters (tensor_options{.requires_grad = true}) and compute outside no_grad");
  if (seed) {
    if (!seed->defined() || seed->shape() != root.shape())
      throw shape_error("backward: gradient shape " +
                        (seed->defined() ? to_string(seed->shape()) : "undefined") +
                        " differs from the tensor's shape " + to_string(root.shape()));
  } else if (root.numel() != 1) {
    throw autograd_error(
        "backward: grad can be created implicitly only for one-element outputs, this one has shape " +
        to_string(root.shape()) + "; reduce it (sum, mean) or pass a gradient");
  }
  auto seed_into = [&](grad::xarray<T>& g) {
    if (seed)
      std::transform(g.data(), g.data() + g.size(), seed->data(), g.data(), std::plus<T>());
    else
      *g.data() += T(1);
  };
  if (!r.creator) { // a leaf: d(leaf)/d(leaf) = 1
    seed_into(r.grad_buffer());
    return;
  }
  tape* tp = find_tape(r.epoch);
  if (!tp)
    throw autograd_error(
        "backward: the graph of this tensor was freed: a backward() on this thread cleared the tape "
        "(it frees every graph recorded so far), or its tape_scope ended; pass "
        "backward_options{.retain_graph = true} to the earlier backward, or sum the losses "
        "and call backward once");
  const std::size_t last = r.creator->index;
  const auto& nodes = tp->nodes();
  GRAD_ASSERT(last < nodes.size() && nodes[last] == r.creator);
  const std::uint64_t pass = ++backward_pass();
  seed_into(r.grad_for_pass(pass));
  // Creation order is a topological order: a reverse walk visits every node after all its consumers.
  // Once a node ran, its output's gradient is complete and consumed: free it at once (unless the
  // user retains it), so the next gradient reuses a block that is still in cache and peak memory
  // holds only the gradients still in flight.
  if (op_event_sink* const sink = op_sink()) {
    for (std::size_t i = last + 1; i-- > 0;)
      if (nodes[i]->has_output_grad()) {
        const std::int64_t t0 = profile_clock_ns();
        nodes[i]->backward();
        // Bytes: the forward's operands are read again and their gradients written (an estimate).
        sink->record(nodes[i]->name, op_phase::backward, t0, profile_clock_ns() - t0,
                     nodes[i]->backward_flops(), 2 * nodes[i]->bytes);
        nodes[i]->release_output_grad();
      }
  } else {
    for (std::size_t i = last + 1; i-- > 0;)
      if (nodes[i]->has_output_grad()) {
        nodes[i]->backward();
        nodes[i]->release_output_grad();
      }
  }
  if (!opt.retain_graph)
    tp->clear();
}

} // namespace detail
} // namespace grad
