#pragma once
/// @file detail/xtensor.hpp
/// The one place that includes xtensor (DESIGN.md section 1): storage and expressions of tensors.

#include <algorithm>
#include <cstddef>
#include <memory>
#include <new>
#include <unordered_map>
#include <utility>
#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xio.hpp>
#include <xtensor/xnoalias.hpp>

#include "grad/core/small_vector.hpp"
#include "grad/detail/allocator.hpp"

namespace grad {

/// The storage of tensor values and gradients: an xt::xarray (row-major, contiguous) whose buffer
/// comes from grad's caching allocator, 64-byte aligned. It converts to and from any xt::xarray and
/// takes part in xtensor expressions like one.
template <class T>
using xarray = xt::xarray<T, xt::layout_type::row_major, detail::cache_allocator<T>>;

} // namespace grad

namespace grad::detail {

/// Most bytes of one array whose xarray object (not only its buffer) is kept for reuse.
#ifndef GRAD_ARRAY_CACHE_MAX_BYTES
#define GRAD_ARRAY_CACHE_MAX_BYTES (std::size_t(64) << 10)
#endif

/// Spare xarray objects of this thread, by shape, with their buffers. Setting up an xt::xarray (its
/// shape, strides and back-strides) costs several hundred instructions, more than the arithmetic of
/// a small op; a tape creates two per op (the value and, in backward, the gradient). So the objects
/// of small arrays (<= GRAD_ARRAY_CACHE_MAX_BYTES) are kept when their tensor dies and handed out
/// again for the next array of the same shape. Their buffers count against the thread's
/// budget: at most a quarter of GRAD_ARRAY_POOL_BYTES.
template <class T>
class array_cache {
public:
  using array = grad::xarray<T>;

  /// An array of this shape with uninitialised contents (a spare one when there is one).
  template <class Shape>
  static array* take(const Shape& shape) {
    std::size_t n = 1;
    for (const auto d : shape)
      n *= static_cast<std::size_t>(d);
    if (n * sizeof(T) <= GRAD_ARRAY_CACHE_MAX_BYTES && shape.size() <= 6)
      if (array_cache* self = local())
        if (array* a = self->pop(shape))
          return a;
    return create(array::from_shape(shape));
  }
  /// A new array object holding `v`.
  static array* create(array&& v) {
    void* mem = block_cache::allocate(sizeof(array));
    try {
      return ::new (mem) array(std::move(v));
    } catch (...) {
      block_cache::deallocate(mem, sizeof(array));
      throw;
    }
  }
  /// Takes back an array from take() or create(): kept for reuse when small, else destroyed.
  static void give(array* a) noexcept {
    if (!a)
      return;
    if (a->size() * sizeof(T) <= GRAD_ARRAY_CACHE_MAX_BYTES && a->dimension() <= 6)
      if (array_cache* self = local())
        if (self->push(a))
          return;
    destroy(a);
  }
  /// This thread's cache, or null once thread exit destroyed it.
  static array_cache* local() noexcept {
    if (destroyed())
      return nullptr;
    thread_local array_cache cache;
    return &cache;
  }
  /// Destroys every spare array.
  void clear() noexcept {
    for (auto& [shape, list] : spare_)
      for (array* a : list)
        destroy(a);
    spare_.clear();
    last_ = nullptr;
    bytes_ = 0;
  }

  array_cache(const array_cache&) = delete;
  array_cache& operator=(const array_cache&) = delete;

private:
  using key = small_vector<std::size_t, 6>;
  struct key_hash {
    std::size_t operator()(const key& k) const noexcept {
      std::size_t h = k.size();
      for (const auto d : k)
        h = (h ^ d) * 0x9E3779B97F4A7C15ull;
      return h;
    }
  };
  using map = std::unordered_map<key, std::vector<array*>, key_hash>;

  array_cache() = default;
  ~array_cache() {
    clear();
    destroyed() = true;
  }
  static bool& destroyed() noexcept {
    thread_local bool flag = false;
    return flag;
  }
  static void destroy(array* a) noexcept {
    a->~array();
    block_cache::deallocate(a, sizeof(array));
  }
  template <class A, class B>
  static bool same(const A& a, const B& b) noexcept {
    if (a.size() != b.size())
      return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (static_cast<std::size_t>(a[i]) != static_cast<std::size_t>(b[i]))
        return false;
    return true;
  }
  template <class Shape>
  array* pop(const Shape& shape) noexcept {
    typename map::value_type* e = last_;
    if (!e || !same(e->first, shape)) {
      const auto it = spare_.find(key(shape.begin(), shape.end()));
      if (it == spare_.end())
        return nullptr;
      e = &*it;
      last_ = e;
    }
    if (e->second.empty())
      return nullptr;
    array* a = e->second.back();
    e->second.pop_back();
    bytes_ -= a->size() * sizeof(T);
    return a;
  }
  bool push(array* a) noexcept {
    const std::size_t b = a->size() * sizeof(T);
    if (GRAD_ARRAY_POOL_BYTES == 0 || bytes_ + b > GRAD_ARRAY_POOL_BYTES / 4)
      return false;
    try {
      typename map::value_type* e = last_;
      if (!e || !same(e->first, a->shape())) {
        e = &*spare_.try_emplace(key(a->shape().begin(), a->shape().end())).first;
        last_ = e;
      }
      e->second.push_back(a);
    } catch (...) { // no memory for the bookkeeping: the array is destroyed instead
      return false;
    }
    bytes_ += b;
    return true;
  }

  map spare_;
  typename map::value_type* last_ = nullptr; // the entry used last (node pointers are stable)
  std::size_t bytes_ = 0;
};

/// Gives an array object back to array_cache (the deleter of array_ptr).
template <class T>
struct array_recycler {
  void operator()(grad::xarray<T>* a) const noexcept { array_cache<T>::give(a); }
};

/// Owning pointer to an array object from array_cache: a tensor's value or gradient.
template <class T>
using array_ptr = std::unique_ptr<grad::xarray<T>, array_recycler<T>>;

/// Allocates an uninitialised row-major array of the given shape.
template <class T, class Shape>
inline grad::xarray<T> empty_array(const Shape& shape) {
  return grad::xarray<T>::from_shape(shape);
}

/// Allocates a zero-filled row-major array of the given shape.
template <class T, class Shape>
inline grad::xarray<T> zeros_array(const Shape& shape) {
  auto a = empty_array<T>(shape);
  std::fill(a.data(), a.data() + a.size(), T(0));
  return a;
}

} // namespace grad::detail

namespace grad {
/// Frees the spare tensor buffers the calling thread keeps for reuse (like torch.cuda.empty_cache):
/// memory a training loop released goes back to the system allocator.
inline void empty_cache() noexcept {
  if (auto* c = detail::array_cache<float>::local())
    c->clear();
  if (auto* c = detail::array_cache<double>::local())
    c->clear();
  if (auto* c = detail::block_cache::local())
    c->clear();
}
} // namespace grad
