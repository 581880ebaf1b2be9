#pragma once
/// @file core/tensor_impl.hpp
/// What a tensor handle points to: the value, the lazily allocated gradient, and where it came from.

#include <cstdint>
#include <optional>
#include <utility>

#include "grad/detail/xtensor.hpp"

namespace grad::detail {

struct node;

/// The shared state behind a basic_tensor<T> handle.
template <class T>
struct tensor_impl {
  xt::xarray<T> value;               // row-major, contiguous
  std::optional<xt::xarray<T>> grad; // same shape as value, allocated on first accumulation
  bool requires_grad = false;
  bool retain_grad = false;    // keep the gradient of a non-leaf after backward
  node* creator = nullptr;     // the tape node that produced it; nullptr for a leaf
  std::uint64_t epoch = 0;     // epoch of the tape `creator` lives on (detects freed graphs)
  std::uint64_t grad_pass = 0; // backward pass that wrote `grad` of a non-leaf

  tensor_impl() = default;
  /// A tensor state holding `v` (constructing the value in place avoids the one-element buffer a
  /// default-constructed xt::xarray allocates).
  explicit tensor_impl(xt::xarray<T>&& v) noexcept : value(std::move(v)) {}
  tensor_impl(const tensor_impl&) = delete;
  tensor_impl& operator=(const tensor_impl&) = delete;
  /// Large value and gradient buffers go back to this thread's array pool for reuse.
  ~tensor_impl() {
    recycle_array(std::move(value));
    release_grad();
  }
  /// Drops the gradient (a large buffer goes back to the array pool).
  void release_grad() noexcept {
    if (grad) {
      recycle_array(std::move(*grad));
      grad.reset();
    }
  }
  /// The gradient buffer, zero-filled on first use.
  xt::xarray<T>& grad_buffer() {
    if (!grad)
      grad.emplace(zeros_array<T>(value.shape()));
    return *grad;
  }

  /// The buffer backward pass `pass` accumulates into. Leaves accumulate across passes; a non-leaf's
  /// gradient belongs to one pass, so a gradient kept by retain_grad is not propagated twice.
  xt::xarray<T>& grad_for_pass(std::uint64_t pass) {
    if (creator && grad_pass != pass) {
      release_grad();
      grad_pass = pass;
    }
    return grad_buffer();
  }

  /// True when this pass wrote a gradient that must flow on (leaves have no node to run).
  bool has_grad_in_pass(std::uint64_t pass) const noexcept { return grad.has_value() && grad_pass == pass; }
};

/// Number of the backward pass running on this thread (0 before the first).
inline std::uint64_t& backward_pass() noexcept {
  thread_local std::uint64_t pass = 0;
  return pass;
}

} // namespace grad::detail
