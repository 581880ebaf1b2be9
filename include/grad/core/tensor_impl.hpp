#pragma once
/// @file core/tensor_impl.hpp
/// What a tensor handle points to: the value, the lazily allocated gradient, and where it came from.

#include <algorithm>
#include <cstdint>
#include <utility>

#include "grad/detail/xtensor.hpp"

namespace grad::detail {

struct node;

/// Sets d[0, n) to zero; a few elements are stored directly (a call to memset costs more).
template <class T>
inline void fill_zero(T* d, std::size_t n) noexcept {
  if (n > 16) {
    std::fill(d, d + n, T(0));
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    d[i] = T(0);
#if defined(__GNUC__)
    __asm__ volatile("" : : : "memory"); // keeps the compiler from turning the loop into memset
#endif
  }
}

/// Tag of the constructors that leave a value uninitialised.
struct uninitialized_t {
  explicit uninitialized_t() = default;
};
inline constexpr uninitialized_t uninitialized{};

/// The shared state behind a basic_tensor<T> handle. The value and the gradient are array objects
/// from the thread's array_cache (an array of a recently used shape costs no allocation and no
/// xtensor shape set-up); `value` is never null.
template <class T>
struct tensor_impl {
  array_ptr<T> value; // row-major, contiguous
  array_ptr<T> grad;  // same shape as value, allocated on first accumulation
  bool requires_grad = false;
  bool retain_grad = false;    // keep the gradient of a non-leaf after backward
  node* creator = nullptr;     // the tape node that produced it; nullptr for a leaf
  std::uint64_t epoch = 0;     // epoch of the tape `creator` lives on (detects freed graphs)
  std::uint64_t grad_pass = 0; // backward pass that wrote `grad` of a non-leaf

  /// A tensor state holding `v`.
  explicit tensor_impl(grad::xarray<T>&& v) : value(array_cache<T>::create(std::move(v))) {}
  /// A tensor state with an uninitialised value of this shape.
  template <class Shape>
  tensor_impl(uninitialized_t, const Shape& shape) : value(array_cache<T>::take(shape)) {}
  tensor_impl(const tensor_impl&) = delete;
  tensor_impl& operator=(const tensor_impl&) = delete;
  /// Drops the gradient (its array goes back to the cache).
  void release_grad() noexcept { grad.reset(); }
  /// The gradient buffer, zero-filled on first use.
  grad::xarray<T>& grad_buffer() {
    if (!grad) {
      grad.reset(array_cache<T>::take(value->shape()));
      fill_zero(grad->data(), grad->size());
    }
    return *grad;
  }

  /// The buffer backward pass `pass` accumulates into. Leaves accumulate across passes; a non-leaf's
  /// gradient belongs to one pass, so a gradient kept by retain_grad is not propagated twice.
  grad::xarray<T>& grad_for_pass(std::uint64_t pass) {
    if (creator && grad_pass != pass) {
      release_grad();
      grad_pass = pass;
    }
    return grad_buffer();
  }

  /// True when this pass wrote a gradient that must flow on (leaves have no node to run).
  bool has_grad_in_pass(std::uint64_t pass) const noexcept { return grad != nullptr && grad_pass == pass; }
};

/// Number of the backward pass running on this thread (0 before the first).
inline std::uint64_t& backward_pass() noexcept {
  thread_local std::uint64_t pass = 0;
  return pass;
}

} // namespace grad::detail
