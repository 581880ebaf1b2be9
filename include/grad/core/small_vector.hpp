#pragma once
/// @file core/small_vector.hpp
/// small_vector<T, N>: a std::vector-like sequence of trivially copyable values that keeps up to N
/// of them inline, without touching the heap. grad::shape_type is one, so asking for a tensor's
/// shape, checking it and broadcasting it allocate nothing (DESIGN.md section 5).

#include <algorithm>
#include <compare>
#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <ranges>
#include <stdexcept>
#include <type_traits>
#include <vector>

namespace grad {

/// A sequence with std::vector's interface that stores up to N elements inline. It converts from and
/// to std::vector<T>, so code written for vectors keeps working.
template <class T, std::size_t N>
class small_vector {
  static_assert(std::is_trivially_copyable_v<T>, "small_vector holds trivially copyable values");
  static_assert(N > 0);

public:
  using value_type = T;                                                 ///< element type
  using size_type = std::size_t;                                        ///< size type
  using difference_type = std::ptrdiff_t;                               ///< iterator difference
  using reference = T&;                                                 ///< element reference
  using const_reference = const T&;                                     ///< element reference
  using pointer = T*;                                                   ///< element pointer
  using const_pointer = const T*;                                       ///< element pointer
  using iterator = T*;                                                  ///< contiguous iterator
  using const_iterator = const T*;                                      ///< contiguous iterator
  using reverse_iterator = std::reverse_iterator<iterator>;             ///< reverse iterator
  using const_reverse_iterator = std::reverse_iterator<const_iterator>; ///< reverse iterator

  /// Empty.
  small_vector() noexcept = default;
  /// n value-initialised elements.
  explicit small_vector(size_type n) { resize(n); }
  /// n copies of v.
  small_vector(size_type n, const T& v) { assign(n, v); }
  /// The listed elements.
  small_vector(std::initializer_list<T> il) { assign(il.begin(), il.end()); }
  /// The elements of [first, last).
  template <std::input_iterator It>
  small_vector(It first, It last) {
    assign(first, last);
  }
  /// The elements of a std::vector.
  small_vector(const std::vector<T>& v) { assign(v.begin(), v.end()); } // NOLINT: implicit on purpose
  small_vector(const small_vector& o) { copy_from(o); }
  small_vector(small_vector&& o) noexcept { take(o); }
  small_vector& operator=(const small_vector& o) {
    if (this != &o)
      copy_from(o);
    return *this;
  }
  small_vector& operator=(small_vector&& o) noexcept {
    if (this != &o) {
      release();
      take(o);
    }
    return *this;
  }
  small_vector& operator=(std::initializer_list<T> il) {
    assign(il.begin(), il.end());
    return *this;
  }
  ~small_vector() { release(); }

  /// A std::vector with the same elements.
  operator std::vector<T>() const { return std::vector<T>(begin(), end()); } // NOLINT: implicit on purpose

  size_type size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  size_type capacity() const noexcept { return heap_ ? cap_ : N; }
  T* data() noexcept { return heap_ ? heap_ : inline_; }
  const T* data() const noexcept { return heap_ ? heap_ : inline_; }

  T& operator[](size_type i) noexcept { return data()[i]; }
  const T& operator[](size_type i) const noexcept { return data()[i]; }
  T& at(size_type i) {
    if (i >= size_)
      throw std::out_of_range("small_vector::at: index out of range");
    return data()[i];
  }
  const T& at(size_type i) const {
    if (i >= size_)
      throw std::out_of_range("small_vector::at: index out of range");
    return data()[i];
  }
  T& front() noexcept { return data()[0]; }
  const T& front() const noexcept { return data()[0]; }
  T& back() noexcept { return data()[size_ - 1]; }
  const T& back() const noexcept { return data()[size_ - 1]; }

  iterator begin() noexcept { return data(); }
  iterator end() noexcept { return data() + size_; }
  const_iterator begin() const noexcept { return data(); }
  const_iterator end() const noexcept { return data() + size_; }
  const_iterator cbegin() const noexcept { return begin(); }
  const_iterator cend() const noexcept { return end(); }
  reverse_iterator rbegin() noexcept { return reverse_iterator(end()); }
  reverse_iterator rend() noexcept { return reverse_iterator(begin()); }
  const_reverse_iterator rbegin() const noexcept { return const_reverse_iterator(end()); }
  const_reverse_iterator rend() const noexcept { return const_reverse_iterator(begin()); }
  const_reverse_iterator crbegin() const noexcept { return rbegin(); }
  const_reverse_iterator crend() const noexcept { return rend(); }

  /// Makes room for n elements.
  void reserve(size_type n) {
    if (n <= capacity())
      return;
    const size_type c = std::max(n, 2 * capacity());
    T* p = std::allocator<T>().allocate(c);
    if (size_)
      std::memcpy(p, data(), size_ * sizeof(T));
    if (heap_)
      std::allocator<T>().deallocate(heap_, cap_);
    heap_ = p;
    cap_ = c;
  }
  void clear() noexcept { size_ = 0; }
  void resize(size_type n) { resize(n, T()); }
  void resize(size_type n, const T& v) {
    reserve(n);
    if (n > size_)
      std::fill(data() + size_, data() + n, v);
    size_ = n;
  }
  void assign(size_type n, const T& v) {
    clear();
    resize(n, v);
  }
  template <std::input_iterator It>
  void assign(It first, It last) {
    if constexpr (std::forward_iterator<It>) {
      const auto n = static_cast<size_type>(std::distance(first, last));
      reserve(n);
      T* d = data();
      for (size_type i = 0; i < n; ++i, ++first) // shapes are short: a loop, not a call to memmove
        d[i] = *first;
      size_ = n;
    } else {
      clear();
      for (; first != last; ++first)
        push_back(*first);
    }
  }
  void push_back(const T& v) {
    const T copy = v; // v may live in this vector
    reserve(size_ + 1);
    data()[size_++] = copy;
  }
  template <class... A>
  T& emplace_back(A&&... a) {
    push_back(T(std::forward<A>(a)...));
    return back();
  }
  void pop_back() noexcept { --size_; }

  iterator insert(const_iterator pos, const T& v) { return insert(pos, size_type(1), v); }
  iterator insert(const_iterator pos, size_type n, const T& v) {
    const T copy = v;
    const size_type i = index(pos);
    open_gap(i, n);
    std::fill(data() + i, data() + i + n, copy);
    return data() + i;
  }
  template <std::input_iterator It>
  iterator insert(const_iterator pos, It first, It last) {
    const size_type i = index(pos);
    small_vector tmp(first, last); // the source may alias this vector
    open_gap(i, tmp.size());
    std::copy(tmp.begin(), tmp.end(), data() + i);
    return data() + i;
  }
  iterator insert(const_iterator pos, std::initializer_list<T> il) {
    return insert(pos, il.begin(), il.end());
  }
  iterator erase(const_iterator pos) { return erase(pos, pos + 1); }
  iterator erase(const_iterator first, const_iterator last) {
    const size_type i = index(first);
    const size_type n = static_cast<size_type>(last - first);
    std::copy(data() + i + n, data() + size_, data() + i);
    size_ -= n;
    return data() + i;
  }
  void swap(small_vector& o) noexcept {
    small_vector tmp(std::move(o));
    o = std::move(*this);
    *this = std::move(tmp);
  }

  friend bool operator==(const small_vector& a, const small_vector& b) noexcept {
    return a.size_ == b.size_ && std::equal(a.begin(), a.end(), b.begin());
  }
  /// Equal to another sequence of the same values (a std::vector, an xtensor shape).
  template <class R>
  requires(!std::is_same_v<R, small_vector> && std::ranges::sized_range<const R> &&
           std::equality_comparable_with<std::ranges::range_value_t<const R>, T>) friend bool
  operator==(const small_vector& a, const R& b) {
    if (a.size() != static_cast<size_type>(std::ranges::size(b)))
      return false;
    auto it = std::ranges::begin(b);
    for (size_type i = 0; i < a.size(); ++i, ++it)
      if (!(a[i] == *it))
        return false;
    return true;
  }
  friend auto operator<=>(const small_vector& a, const small_vector& b) noexcept {
    return std::lexicographical_compare_three_way(a.begin(), a.end(), b.begin(), b.end());
  }

private:
  size_type index(const_iterator pos) const noexcept { return static_cast<size_type>(pos - begin()); }
  void open_gap(size_type i, size_type n) {
    reserve(size_ + n);
    T* d = data();
    std::copy_backward(d + i, d + size_, d + size_ + n);
    size_ += n;
  }
  void copy_from(const small_vector& o) {
    if (!o.heap_ && !heap_) { // inline to inline: one fixed-size copy of the whole inline array
      std::memcpy(static_cast<void*>(inline_), static_cast<const void*>(o.inline_), sizeof inline_);
      size_ = o.size_;
    } else {
      assign(o.begin(), o.end());
    }
  }
  void take(small_vector& o) noexcept {
    size_ = o.size_;
    if (o.heap_) {
      heap_ = o.heap_;
      cap_ = o.cap_;
      o.heap_ = nullptr;
      o.cap_ = 0;
    } else {
      std::memcpy(static_cast<void*>(inline_), static_cast<const void*>(o.inline_), sizeof inline_);
    }
    o.size_ = 0;
  }
  void release() noexcept {
    if (heap_)
      std::allocator<T>().deallocate(heap_, cap_);
    heap_ = nullptr;
    cap_ = 0;
    size_ = 0;
  }

  T* heap_ = nullptr;
  size_type size_ = 0;
  size_type cap_ = 0;
  T inline_[N] = {};
};

} // namespace grad
