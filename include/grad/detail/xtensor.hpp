#pragma once
/// @file detail/xtensor.hpp
/// The one place that includes xtensor (DESIGN.md section 1): storage and expressions of tensors.

#include <algorithm>
#include <cstddef>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xio.hpp>
#include <xtensor/xnoalias.hpp>

namespace grad::detail {

/// Most bytes of spare large buffers a thread keeps for reuse (see array_pool).
#ifndef GRAD_ARRAY_POOL_BYTES
#define GRAD_ARRAY_POOL_BYTES (std::size_t(256) << 20)
#endif
/// Arrays of at least this many bytes go through the pool; smaller ones are left to malloc, whose
/// per-thread caches serve them faster than moving an xt::xarray in and out of a pool would.
#ifndef GRAD_ARRAY_POOL_MIN_BYTES
#define GRAD_ARRAY_POOL_MIN_BYTES (std::size_t(64) << 10)
#endif

/// Spare large arrays of this thread, by element count, for the next array of the same size. A
/// training step allocates the same activation and gradient sizes every time; buffers above glibc's
/// mmap threshold would otherwise be mapped, page-faulted in and unmapped on every step (measured:
/// 20-35% of a convolution's forward + backward, and cross-core TLB flushes with threads). Arrays come
/// back when a tensor or a gradient dies; bounded by GRAD_ARRAY_POOL_BYTES per thread, past which they
/// are freed as usual. grad::empty_cache() frees the calling thread's spare arrays.
template <class T>
class array_pool {
public:
  array_pool() = default;
  array_pool(const array_pool&) = delete;
  array_pool& operator=(const array_pool&) = delete;
  ~array_pool() { destroyed() = true; }

  /// True when arrays of n elements are pooled.
  static constexpr bool pooled(std::size_t n) noexcept { return n * sizeof(T) >= GRAD_ARRAY_POOL_MIN_BYTES; }

  /// This thread's pool, or null once it was destroyed at thread exit (tensors that die later, such
  /// as static ones, then free their buffers directly).
  static array_pool* local() noexcept {
    if (destroyed())
      return nullptr;
    thread_local array_pool pool;
    return &pool;
  }

  /// A spare array of `n` elements, if there is one. (An optional, because a default-constructed
  /// xt::xarray is 0-d and allocates its one element.)
  std::optional<xt::xarray<T>> take(std::size_t n) noexcept {
    const auto it = spare_.find(n);
    if (it == spare_.end() || it->second.empty())
      return std::nullopt;
    std::optional<xt::xarray<T>> out(std::move(it->second.back()));
    it->second.pop_back();
    bytes_ -= n * sizeof(T);
    return out;
  }
  /// Keeps `a`'s buffer for reuse, or lets it be freed when the pool is full.
  void give(xt::xarray<T>&& a) noexcept {
    const std::size_t n = a.size();
    if (!pooled(n) || bytes_ + n * sizeof(T) > GRAD_ARRAY_POOL_BYTES)
      return;
    try {
      spare_[n].push_back(std::move(a));
      bytes_ += n * sizeof(T);
    } catch (...) { // no memory for the bookkeeping: the array is simply freed
    }
  }
  /// Frees every spare array.
  void clear() noexcept {
    spare_.clear();
    bytes_ = 0;
  }
  /// Bytes of the spare buffers.
  std::size_t bytes() const noexcept { return bytes_; }

private:
  // A trivially destructible flag outlives the pool, so it can still be read after thread exit has
  // destroyed the pool.
  static bool& destroyed() noexcept {
    thread_local bool flag = false;
    return flag;
  }
  std::unordered_map<std::size_t, std::vector<xt::xarray<T>>> spare_;
  std::size_t bytes_ = 0;
};

/// Gives an array that is no longer needed to this thread's pool (large arrays only).
template <class T>
inline void recycle_array(xt::xarray<T>&& a) noexcept {
  if (array_pool<T>::pooled(a.size()))
    if (auto* pool = array_pool<T>::local())
      pool->give(std::move(a));
}

/// Allocates an uninitialised row-major array of the given shape (a large one reuses a spare buffer of
/// the same size when this thread has one).
template <class T, class Shape>
inline xt::xarray<T> empty_array(const Shape& shape) {
  std::size_t n = 1;
  for (const auto d : shape)
    n *= static_cast<std::size_t>(d);
  if (array_pool<T>::pooled(n))
    if (auto* pool = array_pool<T>::local())
      if (auto a = pool->take(n)) {
        a->resize(shape); // same size: keeps the buffer, only the shape and strides change
        return std::move(*a);
      }
  return xt::xarray<T>::from_shape(shape);
}

/// Allocates a zero-filled row-major array of the given shape.
template <class T, class Shape>
inline xt::xarray<T> zeros_array(const Shape& shape) {
  auto a = empty_array<T>(shape);
  std::fill(a.data(), a.data() + a.size(), T(0));
  return a;
}

} // namespace grad::detail

namespace grad {
/// Frees the spare tensor buffers the calling thread keeps for reuse (like torch.cuda.empty_cache):
/// memory a training loop released goes back to the system allocator.
inline void empty_cache() noexcept {
  if (auto* p = detail::array_pool<float>::local())
    p->clear();
  if (auto* p = detail::array_pool<double>::local())
    p->clear();
}
} // namespace grad
