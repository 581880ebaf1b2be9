#pragma once
/// @file core/apply.hpp
/// apply<Op>: the only code that checks shapes, allocates the output, runs an op's forward and records
/// its node (DESIGN.md section 4). Also the `op` concept and the context an op's code works on.

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "grad/core/broadcast.hpp"
#include "grad/core/profile_hook.hpp"
#include "grad/core/tape.hpp"
#include "grad/core/tensor.hpp"

namespace grad {
namespace detail {

template <class T, class Shape>
inline shape_type to_shape(const Shape& s) {
  return shape_type(s.begin(), s.end());
}

template <class A, class B>
inline bool same_shape(const A& a, const B& b) {
  const std::size_t n = a.size();
  if (n != b.size())
    return false;
  const auto* pa = a.data();
  const auto* pb = b.data();
  for (std::size_t i = 0; i < n; ++i) // shapes are short: a loop, not a call to memcmp
    if (pa[i] != pb[i])
      return false;
  return true;
}

template <class T>
using impl_ptr = impl_ref<T>;

template <class Inputs>
struct inputs_traits;
// Gradient buffers in a broadcast shape, summed down by op_context::finish; null until used.
template <class T, std::size_t N>
struct inputs_traits<std::array<impl_ptr<T>, N>> {
  using scratch = std::array<array_ptr<T>, N>;
  static scratch make(std::size_t) { return {}; }
};
template <class T>
struct inputs_traits<std::vector<impl_ptr<T>>> {
  using scratch = std::vector<array_ptr<T>>;
  static scratch make(std::size_t n) { return scratch(n); }
};

/// A zero-filled array of this shape from the thread's array cache.
template <class T>
inline array_ptr<T> zeros_array_ptr(const shape_type& shape) {
  array_ptr<T> a(array_cache<T>::take(shape));
  fill_zero(a->data(), a->size());
  return a;
}

} // namespace detail

/// What an op's forward and backward see: the inputs, the output, and (in backward) the gradients.
/// In backward, `din(i) += ...` accumulates d(loss)/d(input i); the op never handles broadcasting:
/// an op that declares `broadcasting = true` gets din(i) in the output's shape and the tape sums it
/// down to the input's shape.
template <class T, class Op, class Inputs>
class op_context {
public:
  using value_type = T;               ///< element type
  using array_type = grad::xarray<T>; ///< storage type of the values and gradients

  op_context(const Op& op, const Inputs& ins, detail::tensor_impl<T>& out, std::uint64_t pass = 0)
      : op_(op), ins_(ins), out_(out), pass_(pass),
        scratch_(detail::inputs_traits<Inputs>::make(ins.size())) {}

  /// Number of inputs.
  std::size_t size() const noexcept { return ins_.size(); }
  /// Value of input i.
  const array_type& in(std::size_t i) const { return *ins_[i]->value; }
  /// Value of the output (written by forward, read by backward).
  array_type& out() { return *out_.value; }
  /// Value of the output.
  const array_type& out() const { return *out_.value; }
  /// Gradient of the loss with respect to the output (backward only).
  const array_type& dout() const { return *out_.grad; }
  /// True when input i needs a gradient: skip computing din(i) otherwise.
  bool needs_grad(std::size_t i) const { return ins_[i]->requires_grad; }
  /// Gradient buffer of input i to accumulate into (`+=`), in the op's gradient shape for input i.
  array_type& din(std::size_t i) {
    auto& in = *ins_[i];
    if (!in.requires_grad) { // the op did not check needs_grad: give it a scratch buffer to write into
      if (!scratch_[i])
        scratch_[i] = detail::zeros_array_ptr<T>(grad_shape(i));
      return *scratch_[i];
    }
    if (scratch_[i])
      return *scratch_[i];
    if (!direct(i)) {
      scratch_[i] = detail::zeros_array_ptr<T>(grad_shape(i));
      return *scratch_[i];
    }
    return in.grad_for_pass(pass_);
  }

  /// Sums gradients that were written in a broadcast shape down to the inputs' shapes.
  void finish() {
    for (std::size_t i = 0; i < ins_.size(); ++i) {
      if (!scratch_[i] || !ins_[i]->requires_grad)
        continue;
      auto& in = *ins_[i];
      auto& g = in.grad_for_pass(pass_);
      const auto& s = *scratch_[i];
      detail::sum_to_accumulate(s.data(), detail::to_shape<T>(s.shape()), g.data(),
                                detail::to_shape<T>(in.value->shape()));
    }
  }

private:
  shape_type grad_shape(std::size_t i) const {
    const shape_type in = detail::to_shape<T>(ins_[i]->value->shape());
    if constexpr (requires(const Op& o, std::size_t j, const shape_type& sh) { o.grad_shape(j, sh, sh); })
      return op_.grad_shape(i, detail::to_shape<T>(out_.value->shape()), in);
    else if constexpr (requires { Op::broadcasting; }) {
      if constexpr (Op::broadcasting)
        return detail::to_shape<T>(out_.value->shape());
      else
        return in;
    } else
      return in;
  }
  // True when din(i) is the input's own gradient buffer (its gradient shape is the input's shape).
  bool direct(std::size_t i) const {
    if constexpr (requires(const Op& o, std::size_t j, const shape_type& sh) { o.grad_shape(j, sh, sh); })
      return detail::same_shape(grad_shape(i), ins_[i]->value->shape());
    else if constexpr (requires { Op::broadcasting; }) {
      if constexpr (Op::broadcasting)
        return detail::same_shape(out_.value->shape(), ins_[i]->value->shape());
      else
        return true;
    } else
      return true;
  }

  const Op& op_;
  const Inputs& ins_;
  detail::tensor_impl<T>& out_;
  std::uint64_t pass_;
  typename detail::inputs_traits<Inputs>::scratch scratch_;
};

namespace detail {

template <class T, std::size_t N>
using fixed_inputs = std::array<impl_ptr<T>, N>;
template <class T>
using list_inputs = std::vector<impl_ptr<T>>;

template <class Op, std::size_t... I>
constexpr bool has_fixed_shape_rule(std::index_sequence<I...>) {
  return requires(const Op& op, const shape_type& s) {
    { op.shape((void(I), s)...) } -> std::convertible_to<shape_type>;
    { op.flops(s, (void(I), s)...) } -> std::convertible_to<std::uint64_t>;
  };
}

} // namespace detail

/// What an op with N inputs must have (N = 0 means a list of inputs, as concat takes):
/// a `name`, a shape rule that throws shape_error, a FLOP count, a forward and a backward.
template <class Op, class T, std::size_t N>
concept op_for = element<T> && requires {
  { Op::name } -> std::convertible_to<std::string_view>;
} &&
    (N == 0 ? requires(const Op& op, std::span<const shape_type> s, const shape_type& o) {
      { op.shape(s) } -> std::convertible_to<shape_type>;
      { op.flops(o, s) } -> std::convertible_to<std::uint64_t>;
    }
            : detail::has_fixed_shape_rule<Op>(std::make_index_sequence<N>{})) &&
    requires(Op& op, op_context<T, Op, std::conditional_t<N == 0, detail::list_inputs<T>, detail::fixed_inputs<T, N>>>& c) {
  op.forward(c);
  op.backward(c);
};

namespace detail {

/// The tape node of one call of Op: the op (with any state its forward saved), inputs and output.
template <class T, class Op, class Inputs>
struct op_node final : node {
  Op op;
  Inputs inputs;
  // The output does not own its node and the node does not own its output: node::out points to the
  // output while a handle to it lives (a dead output just means there is nothing to backpropagate).

  op_node(Op o, Inputs in, tensor_impl<T>* output) : op(std::move(o)), inputs(std::move(in)) {
    name = Op::name;
    out = output;
  }
  ~op_node() override {
    if (out)
      output()->node_linked = false;
  }
  op_node(const op_node&) = delete;
  op_node& operator=(const op_node&) = delete;
  tensor_impl<T>* output() const noexcept { return static_cast<tensor_impl<T>*>(out); }
  void backward() override {
    if (!out)
      return;
    op_context<T, Op, Inputs> c(op, inputs, *output(), backward_pass());
    op.backward(c);
    c.finish();
  }
  std::uint64_t backward_flops() const override {
    // An op may count its backward itself (a matrix product's backward costs one product per input
    // that needs a gradient); otherwise the backward is counted like the forward.
    if constexpr (requires(const Op& o, std::span<const bool> s) {
                    { o.backward_flops(std::uint64_t{}, s) } -> std::convertible_to<std::uint64_t>;
                  }) {
      std::array<bool, 8> fixed{};
      const std::size_t n = inputs.size();
      if (n <= fixed.size()) {
        for (std::size_t i = 0; i < n; ++i)
          fixed[i] = inputs[i]->requires_grad;
        return op.backward_flops(flops, std::span<const bool>(fixed.data(), n));
      }
      auto buf = std::make_unique<bool[]>(n);
      for (std::size_t i = 0; i < n; ++i)
        buf[i] = inputs[i]->requires_grad;
      return op.backward_flops(flops, std::span<const bool>(buf.get(), n));
    } else {
      return flops;
    }
  }
  bool has_output_grad() const noexcept override {
    return out && output()->has_grad_in_pass(backward_pass());
  }
  void release_output_grad() noexcept override {
    if (out && !output()->retain_grad)
      output()->release_grad();
  }
};

/// Runs forward on a local copy of the op, then moves that copy into the node: state an op saves in
/// forward (a mask, statistics, the broadcast batch shape) is therefore there for its backward.
template <class T, class Op, class Inputs>
basic_tensor<T> run_op(Op op, Inputs ins, const shape_type& out_shape, std::uint64_t flops) {
  op_event_sink* const sink = op_sink();
  const std::int64_t t0 = sink ? profile_clock_ns() : 0;
  auto out = impl_ref<T>::make(uninitialized, out_shape);
  {
    op_context<T, Op, Inputs> c(op, ins, *out);
    op.forward(c);
  }
  if (sink) {
    std::uint64_t bytes = out->value->size();
    for (const auto& p : ins)
      bytes += p->value->size();
    sink->record(Op::name, op_phase::forward, t0, profile_clock_ns() - t0, flops, bytes * sizeof(T));
  }
  bool record = false;
  if (is_grad_enabled())
    for (const auto& p : ins) {
      record = record || p->requires_grad;
      // A non-leaf whose graph was freed cannot pass gradients on: recording it would silently give
      // the leaves behind it zero gradient, so refuse (PyTorch raises here too).
      if (p->requires_grad && p->creator && p->epoch != current_tape().epoch() && !find_tape(p->epoch))
        throw autograd_error(
            std::string(Op::name) +
            ": an input was computed by a graph that was already freed (by backward, or "
            "because its tape_scope ended), so gradients cannot flow through it; use "
            "backward_options{.retain_graph = true}, or detach() the input to use it as a constant");
    }
  if (record) {
    std::uint64_t bytes = out->value->size();
    for (const auto& p : ins)
      bytes += p->value->size();
    tape& tp = current_tape();
    auto* n = tp.template emplace<op_node<T, Op, Inputs>>(std::move(op), std::move(ins), out.get());
    n->flops = flops;
    n->bytes = bytes * sizeof(T);
    out->requires_grad = true;
    out->creator = n;
    out->node_linked = true;
    out->epoch = tp.epoch();
  }
  return basic_tensor<T>(std::move(out));
}

template <class T>
inline const impl_ptr<T>& checked_impl(std::string_view op, const basic_tensor<T>& t) {
  if (!t.defined())
    throw value_error(std::string(op) + ": an input is an undefined tensor");
  return t.impl();
}

template <class X>
struct is_tensor : std::false_type {};
template <element T>
struct is_tensor<basic_tensor<T>> : std::true_type {};

/// A tensor handle argument of any value category.
template <class X>
concept tensor_arg = is_tensor<std::remove_cvref_t<X>>::value;

/// The state of an input for the node: moved out of a temporary handle (no reference count
/// traffic), shared with any other.
template <class X>
inline auto input_ref(X&& t) {
  using tensor_type = std::remove_cvref_t<X>;
  if constexpr (std::is_rvalue_reference_v<X&&> && !std::is_const_v<std::remove_reference_t<X>>)
    return std::move(t).release_impl();
  else
    return impl_ptr<typename tensor_type::value_type>(t.impl());
}

} // namespace detail

/// Runs op on fixed inputs: checks shapes (op.shape), allocates the output, runs forward and, when
/// grad mode is on and an input requires grad, records the node for backward. A temporary input
/// (an rvalue handle) is moved into the node rather than shared.
template <class Op, detail::tensor_arg First, detail::tensor_arg... Rest>
requires(std::same_as<std::remove_cvref_t<Rest>, std::remove_cvref_t<First>>&&...) &&
    op_for<Op, typename std::remove_cvref_t<First>::value_type,
           1 + sizeof...(Rest)> std::remove_cvref_t<First> apply(Op op, First&& first, Rest&&... rest) {
  using T = typename std::remove_cvref_t<First>::value_type;
  constexpr std::size_t N = 1 + sizeof...(Rest);
  (void)detail::checked_impl(Op::name, first);
  ((void)detail::checked_impl(Op::name, rest), ...);
  const std::array<shape_type, N> shapes{first.shape(), rest.shape()...};
  detail::fixed_inputs<T, N> ins{detail::input_ref(std::forward<First>(first)),
                                 detail::input_ref(std::forward<Rest>(rest))...};
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    const shape_type out_shape = op.shape(shapes[I]...);
    const std::uint64_t flops = op.flops(out_shape, shapes[I]...);
    return detail::run_op<T>(std::move(op), std::move(ins), out_shape, flops);
  }
  (std::make_index_sequence<N>{});
}

/// Runs an op that takes a list of inputs (concat, stack).
template <class Op, element T>
requires op_for<Op, T, 0> basic_tensor<T> apply_list(Op op, const std::vector<basic_tensor<T>>& inputs) {
  detail::list_inputs<T> ins;
  std::vector<shape_type> shapes;
  ins.reserve(inputs.size());
  shapes.reserve(inputs.size());
  for (const auto& t : inputs) {
    ins.push_back(detail::checked_impl(Op::name, t));
    shapes.push_back(t.shape());
  }
  const shape_type out_shape = op.shape(std::span<const shape_type>(shapes));
  const std::uint64_t flops = op.flops(out_shape, std::span<const shape_type>(shapes));
  return detail::run_op<T>(std::move(op), std::move(ins), out_shape, flops);
}

} // namespace grad
