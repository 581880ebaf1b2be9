#pragma once
/// @file core/tensor_impl.hpp
/// What a tensor handle points to: the value, the lazily allocated gradient, and where it came from.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

#if defined(__GLIBC__) && __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define GRAD_HAVE_LIBC_SINGLE_THREADED 1
#else
#define GRAD_HAVE_LIBC_SINGLE_THREADED 0
#endif

#include "grad/core/tape.hpp"
#include "grad/detail/xtensor.hpp"

namespace grad::detail {

/// True while the process has only ever run one thread (glibc's flag, set false for good when a
/// second thread starts). Reference counts then need no locked instruction, as in libstdc++'s
/// shared_ptr; thread creation orders every earlier plain update before the new thread's atomics.
inline bool single_threaded() noexcept {
#if GRAD_HAVE_LIBC_SINGLE_THREADED
  return __libc_single_threaded != 0;
#else
  return false;
#endif
}

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

/// The shared state behind basic_tensor<T> handles, reference-counted by impl_ref<T> (intrusive: one
/// block from the thread's block_cache, no separate control block, no weak count). The value and the
/// gradient are array objects from the thread's array_cache (an array of a recently used shape costs
/// no allocation and no xtensor shape set-up); `value` is never null.
///
/// The node that produced a tensor does not own it: node::out points to the tensor while it lives,
/// and the tensor's end clears that pointer (so backward skips a node whose output nobody holds, and
/// the tape's collector frees it). A node that ends first sets `node_linked` false. Both links are
/// plain fields: a tensor recorded on a tape belongs to that tape's thread until backward or
/// the end of its tape_scope (DESIGN.md section 3); other threads may read and copy it.
template <class T>
struct tensor_impl {
  array_ptr<T> value; // row-major, contiguous
  array_ptr<T> grad;  // same shape as value, allocated on first accumulation
  bool requires_grad = false;
  bool retain_grad = false;         // keep the gradient of a non-leaf after backward
  bool node_linked = false;         // `creator` is alive and its node::out points here
  node* creator = nullptr;          // the tape node that produced it; nullptr for a leaf
  std::uint64_t epoch = 0;          // epoch of the tape `creator` lives on (detects freed graphs)
  std::uint64_t grad_pass = 0;      // backward pass that wrote `grad` of a non-leaf
  std::atomic<std::size_t> refs{0}; // handles (impl_ref) pointing here

  /// A tensor state holding `v`.
  explicit tensor_impl(grad::xarray<T>&& v) : value(array_cache<T>::create(std::move(v))) {}
  /// A tensor state with an uninitialised value of this shape.
  template <class Shape>
  tensor_impl(uninitialized_t, const Shape& shape) : value(array_cache<T>::take(shape)) {}
  tensor_impl(const tensor_impl&) = delete;
  tensor_impl& operator=(const tensor_impl&) = delete;
  ~tensor_impl() {
    if (node_linked)
      creator->out = nullptr; // nothing can read this output any more: backward skips the node
  }
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

/// Owning, reference-counting handle to a tensor_impl (what basic_tensor<T> holds).
template <class T>
class impl_ref {
public:
  using element_type = tensor_impl<T>;

  impl_ref() noexcept = default;
  impl_ref(std::nullptr_t) noexcept {} // NOLINT: implicit, like a null shared_ptr
  impl_ref(const impl_ref& o) noexcept : p_(o.p_) {
    if (p_)
      acquire(*p_);
  }
  impl_ref(impl_ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  impl_ref& operator=(const impl_ref& o) noexcept {
    impl_ref(o).swap(*this);
    return *this;
  }
  impl_ref& operator=(impl_ref&& o) noexcept {
    impl_ref(std::move(o)).swap(*this);
    return *this;
  }
  ~impl_ref() {
    if (p_)
      release(p_);
  }

  /// A new tensor state, constructed from args, with this handle as its only owner.
  template <class... Args>
  static impl_ref make(Args&&... args) {
    void* mem = block_cache::allocate(sizeof(tensor_impl<T>));
    tensor_impl<T>* p;
    try {
      p = ::new (mem) tensor_impl<T>(std::forward<Args>(args)...);
    } catch (...) {
      block_cache::deallocate(mem, sizeof(tensor_impl<T>));
      throw;
    }
    p->refs.store(1, std::memory_order_relaxed);
    impl_ref r;
    r.p_ = p;
    return r;
  }

  tensor_impl<T>* get() const noexcept { return p_; }
  tensor_impl<T>& operator*() const noexcept { return *p_; }
  tensor_impl<T>* operator->() const noexcept { return p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  /// Number of handles to the state (0 for a null handle).
  std::size_t use_count() const noexcept { return p_ ? p_->refs.load(std::memory_order_relaxed) : 0; }
  void reset() noexcept { impl_ref().swap(*this); }
  void swap(impl_ref& o) noexcept { std::swap(p_, o.p_); }
  friend bool operator==(const impl_ref& a, const impl_ref& b) noexcept { return a.p_ == b.p_; }
  friend bool operator==(const impl_ref& a, std::nullptr_t) noexcept { return a.p_ == nullptr; }

private:
  static void acquire(tensor_impl<T>& s) noexcept {
    if (single_threaded())
      s.refs.store(s.refs.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    else
      s.refs.fetch_add(1, std::memory_order_relaxed);
  }
  static void release(tensor_impl<T>* p) noexcept {
    // The only handle: no other thread can hold one to copy from, so the state ends without a
    // locked instruction (the common case when a tape frees its intermediates).
    if (p->refs.load(std::memory_order_acquire) == 1) {
      p->~tensor_impl<T>();
      block_cache::deallocate(p, sizeof(tensor_impl<T>));
      return;
    }
    if (single_threaded()) {
      const std::size_t n = p->refs.load(std::memory_order_relaxed) - 1;
      p->refs.store(n, std::memory_order_relaxed);
      if (n != 0)
        return;
    } else if (p->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) {
      return;
    }
    p->~tensor_impl<T>();
    block_cache::deallocate(p, sizeof(tensor_impl<T>));
  }

  tensor_impl<T>* p_ = nullptr;
};

/// Number of the backward pass running on this thread (0 before the first).
inline std::uint64_t& backward_pass() noexcept {
  thread_local std::uint64_t pass = 0;
  return pass;
}

} // namespace grad::detail
