#pragma once
/// @file detail/xtensor.hpp
/// The one place that includes xtensor (DESIGN.md section 1): storage and expressions of tensors.

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <memory>
#include <new>
#include <type_traits>
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
  /// Arrays of more dimensions are not cached.
  static constexpr std::size_t max_dims = 6;

  /// An array of this shape with uninitialised contents (a spare one when there is one).
  template <class Shape>
  static array* take(const Shape& shape) {
    static_assert(std::is_same_v<std::remove_cvref_t<decltype(*std::data(shape))>, std::size_t>);
    const std::size_t d = std::size(shape);
    if (d <= max_dims)
      if (array_cache* self = local())
        if (array* a = self->pop(std::data(shape), d))
          return a;
    return create(array::from_shape(shape));
  }
  /// A new array object holding `v`.
  static array* create(array&& v) {
    void* mem = block_cache::allocate(block_bytes);
    try {
      return ::new (mem) array(std::move(v));
    } catch (...) {
      block_cache::deallocate(mem, block_bytes);
      throw;
    }
  }
  /// Takes back an array from take() or create(): kept for reuse when small, else destroyed.
  static void give(array* a) noexcept {
    if (!a)
      return;
    if (array_cache* self = local())
      if (self->push(a))
        return;
    destroy(a);
  }
  /// This thread's cache, or null once thread exit destroyed it. The pointer is a constant-initialised
  /// thread_local, so the common path reads it without the guard of a dynamically initialised one.
  static array_cache* local() noexcept {
    if (array_cache* p = local_ptr())
      return p;
    return make_local();
  }
  /// Destroys every spare array.
  void clear() noexcept {
    for (auto& kv : spare_) {
      for (array* a = kv.second.head; a;) {
        array* next = link(a);
        destroy(a);
        a = next;
      }
    }
    spare_.clear();
    last_ = nullptr;
    bytes_ = 0;
  }

  array_cache(const array_cache&) = delete;
  array_cache& operator=(const array_cache&) = delete;

private:
  // Each array object lives in a block with room for one pointer after it: the free-list link.
  static constexpr std::size_t link_offset = (sizeof(array) + alignof(array*) - 1) & ~(alignof(array*) - 1);
  static constexpr std::size_t block_bytes = link_offset + sizeof(array*);
  static array*& link(array* a) noexcept {
    return *std::launder(reinterpret_cast<array**>(reinterpret_cast<std::byte*>(a) + link_offset));
  }

  // A shape as a fixed-size key; unused extents are 0.
  struct key {
    std::size_t dims = 0;
    std::size_t ext[max_dims] = {};
    bool operator==(const key& o) const noexcept {
      if (dims != o.dims)
        return false;
      for (std::size_t i = 0; i < dims; ++i)
        if (ext[i] != o.ext[i])
          return false;
      return true;
    }
  };
  struct key_hash {
    std::size_t operator()(const key& k) const noexcept {
      std::size_t h = k.dims;
      for (std::size_t i = 0; i < k.dims; ++i)
        h = (h ^ k.ext[i]) * 0x9E3779B97F4A7C15ull;
      return h;
    }
  };
  // The spare arrays of one shape (a list linked through their blocks), and the bytes each holds.
  struct entry {
    array* head = nullptr;
    std::size_t bytes = 0;
  };
  using map = std::unordered_map<key, entry, key_hash>;

  array_cache() = default;
  ~array_cache() {
    clear();
    destroyed() = true;
    local_ptr() = nullptr;
  }
  static array_cache*& local_ptr() noexcept {
    thread_local array_cache* p = nullptr;
    return p;
  }
  static bool& destroyed() noexcept {
    thread_local bool flag = false;
    return flag;
  }
  static array_cache* make_local() noexcept {
    if (destroyed())
      return nullptr;
    thread_local array_cache cache;
    local_ptr() = &cache;
    return &cache;
  }
  static void destroy(array* a) noexcept {
    a->~array();
    block_cache::deallocate(a, block_bytes);
  }
  // True when the entry used last has this shape (the common case: a chain of ops of one shape).
  bool is_last(const std::size_t* s, std::size_t d) const noexcept {
    if (!last_ || last_->first.dims != d)
      return false;
    const std::size_t* e = last_->first.ext;
    for (std::size_t i = 0; i < d; ++i)
      if (e[i] != s[i])
        return false;
    return true;
  }
  static key make_key(const std::size_t* s, std::size_t d) noexcept {
    key k;
    k.dims = d;
    for (std::size_t i = 0; i < d; ++i)
      k.ext[i] = s[i];
    return k;
  }
  // Makes last_ the entry of this shape; false when there is none.
  bool find(const std::size_t* s, std::size_t d) noexcept {
    if (is_last(s, d))
      return true;
    const auto it = spare_.find(make_key(s, d));
    if (it == spare_.end())
      return false;
    last_ = &*it;
    return true;
  }
  // Makes last_ the entry of a's shape, adding it; false when a is not cached (too large, too many
  // dimensions, caching off, or no memory for the entry).
  bool find_or_add(const array& a) noexcept {
    const std::size_t d = a.dimension();
    const std::size_t* s = a.shape().data();
    if (is_last(s, d))
      return true;
    const std::size_t b = a.size() * sizeof(T);
    if (d > max_dims || b > GRAD_ARRAY_CACHE_MAX_BYTES || GRAD_ARRAY_POOL_BYTES == 0)
      return false;
    try {
      const auto [it, fresh] = spare_.try_emplace(make_key(s, d));
      if (fresh)
        it->second.bytes = b;
      last_ = &*it;
    } catch (...) { // no memory for the bookkeeping: not cached
      return false;
    }
    return true;
  }
  array* pop(const std::size_t* s, std::size_t d) noexcept {
    if (!find(s, d))
      return nullptr;
    entry& e = last_->second;
    array* a = e.head;
    if (!a)
      return nullptr;
    e.head = link(a);
    bytes_ -= e.bytes;
    return a;
  }
  bool push(array* a) noexcept {
    if (!find_or_add(*a))
      return false;
    entry& e = last_->second;
    if (bytes_ + e.bytes > GRAD_ARRAY_POOL_BYTES / 4)
      return false;
    link(a) = e.head;
    e.head = a;
    bytes_ += e.bytes;
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
