#pragma once
/// @file detail/allocator.hpp
/// The caching allocator behind every tensor buffer and tensor state (DESIGN.md section 5).
///
/// A training step allocates the same sizes every time: values and gradients of every activation,
/// the shared state of every tensor handle. Through malloc that costs, per recorded op on a small
/// tensor, more than the op itself (glibc's aligned allocation path, its bins overflowing when a
/// backward pass frees thousands of blocks at once, the top of the heap trimmed and grown again each
/// step); large buffers over glibc's mmap threshold are mapped, page-faulted in and unmapped on every
/// step. So freed blocks stay on per-thread free lists, by size class, for the next allocation of
/// the same class: a pop and a push instead of malloc and free.
///
/// - Size classes: multiples of 64 bytes up to 64 KiB, then multiples of 4 KiB. Every block is
///   64-byte aligned (a cache line, an AVX-512 vector).
/// - A block freed on another thread joins that thread's lists (blocks are interchangeable).
/// - Each thread keeps at most GRAD_ARRAY_POOL_BYTES of free blocks; beyond that blocks are freed.
/// - grad::empty_cache() frees the calling thread's free blocks; a thread's blocks are freed when it
///   exits.

#include <array>
#include <cstddef>
#include <new>
#include <type_traits>
#include <unordered_map>

namespace grad::detail {

/// Most bytes of free blocks a thread keeps for reuse. Under AddressSanitizer the default is 0 (no
/// caching), so that a use after free of a tensor buffer is still reported.
#ifndef GRAD_ARRAY_POOL_BYTES
#if defined(__SANITIZE_ADDRESS__)
#define GRAD_ARRAY_POOL_BYTES std::size_t(0)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GRAD_ARRAY_POOL_BYTES std::size_t(0)
#endif
#endif
#endif
#ifndef GRAD_ARRAY_POOL_BYTES
#define GRAD_ARRAY_POOL_BYTES (std::size_t(256) << 20)
#endif

/// Alignment of every block, in bytes.
inline constexpr std::size_t block_alignment = 64;

/// Per-thread free lists of blocks by size class.
class block_cache {
public:
  static constexpr std::size_t small_step = 64;
  static constexpr std::size_t small_max = std::size_t(64) << 10;
  static constexpr std::size_t large_step = std::size_t(4) << 10;

  /// The size a request of `bytes` is served with (its class).
  static constexpr std::size_t class_bytes(std::size_t bytes) noexcept {
    if (bytes <= small_max)
      return bytes == 0 ? small_step : (bytes + small_step - 1) & ~(small_step - 1);
    return (bytes + large_step - 1) & ~(large_step - 1);
  }

  /// A block of class_bytes(bytes) bytes, from the free list when there is one.
  static void* allocate(std::size_t bytes) {
    const std::size_t c = class_bytes(bytes);
    if (block_cache* self = local())
      if (void* p = self->pop(c))
        return p;
    return ::operator new(c, std::align_val_t(block_alignment));
  }

  /// Returns a block from allocate(bytes) (the same `bytes`).
  static void deallocate(void* p, std::size_t bytes) noexcept {
    if (!p)
      return;
    const std::size_t c = class_bytes(bytes);
    block_cache* self = local();
    if (!self || !self->push(p, c))
      ::operator delete(p, std::align_val_t(block_alignment));
  }

  /// This thread's cache, or null once thread exit destroyed it (blocks freed later, by static
  /// tensors say, then go straight back to the system allocator).
  static block_cache* local() noexcept {
    if (destroyed())
      return nullptr;
    thread_local block_cache cache;
    return &cache;
  }

  /// Frees every free block of this thread.
  void clear() noexcept {
    for (auto& head : small_)
      free_list(head);
    for (auto& [size, head] : large_)
      free_list(head);
    large_.clear();
    bytes_ = 0;
  }

  /// Bytes held in free blocks.
  std::size_t bytes() const noexcept { return bytes_; }

  block_cache(const block_cache&) = delete;
  block_cache& operator=(const block_cache&) = delete;

private:
  struct free_block {
    free_block* next;
  };

  block_cache() = default;
  ~block_cache() {
    clear();
    destroyed() = true;
  }

  // A trivially destructible flag outlives the cache, so it can still be read after thread exit.
  static bool& destroyed() noexcept {
    thread_local bool flag = false;
    return flag;
  }

  static void free_list(free_block*& head) noexcept {
    while (head) {
      free_block* next = head->next;
      ::operator delete(static_cast<void*>(head), std::align_val_t(block_alignment));
      head = next;
    }
  }

  void* pop(std::size_t c) noexcept {
    free_block** head;
    if (c <= small_max) {
      head = &small_[c / small_step];
    } else {
      const auto it = large_.find(c);
      if (it == large_.end())
        return nullptr;
      head = &it->second;
    }
    free_block* b = *head;
    if (!b)
      return nullptr;
    *head = b->next;
    bytes_ -= c;
    return b;
  }

  bool push(void* p, std::size_t c) noexcept {
    if (bytes_ + c > GRAD_ARRAY_POOL_BYTES)
      return false;
    free_block** head;
    if (c <= small_max) {
      head = &small_[c / small_step];
    } else {
      try {
        head = &large_[c];
      } catch (...) { // no memory for the bookkeeping: the block is simply freed
        return false;
      }
    }
    auto* b = ::new (p) free_block{*head};
    *head = b;
    bytes_ += c;
    return true;
  }

  std::array<free_block*, small_max / small_step + 1> small_{};
  std::unordered_map<std::size_t, free_block*> large_;
  std::size_t bytes_ = 0;
};

/// Standard allocator over block_cache: the allocator of tensor buffers (grad::xarray) and of the
/// shared tensor state.
template <class T>
struct cache_allocator {
  using value_type = T;
  using is_always_equal = std::true_type;

  cache_allocator() noexcept = default;
  template <class U>
  cache_allocator(const cache_allocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    if (n > std::size_t(-1) / sizeof(T))
      throw std::bad_array_new_length();
    static_assert(alignof(T) <= block_alignment);
    return static_cast<T*>(block_cache::allocate(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept { block_cache::deallocate(p, n * sizeof(T)); }

  template <class U>
  bool operator==(const cache_allocator<U>&) const noexcept {
    return true;
  }
};

} // namespace grad::detail
