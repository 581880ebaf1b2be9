#pragma once
/// @file models/gpt_cache.hpp
/// gpt_kv_cache: the keys and values of every layer for the tokens decoded so far, so that each new
/// token costs one pass over the weights instead of a forward over the whole sequence.

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "grad/core/error.hpp"

namespace grad::models {

/// Per layer K and V, each (B, NH, Tmax, HS) row-major; the first length() positions of every row hold
/// the keys and values of the tokens fed so far (all rows have the same length).
template <class T = float>
class gpt_kv_cache {
public:
  /// An empty cache (batch 0).
  gpt_kv_cache() = default;
  /// A cache for n_layer layers of batch rows, n_head heads of head_size, up to capacity tokens.
  gpt_kv_cache(std::size_t n_layer, std::size_t batch, std::size_t n_head, std::size_t head_size,
               std::size_t capacity)
      : n_layer_(n_layer), batch_(batch), n_head_(n_head), hs_(head_size), cap_(capacity),
        k_(n_layer * batch * n_head * capacity * head_size), v_(k_.size()) {}

  /// Number of rows (sequences).
  std::size_t batch() const noexcept { return batch_; }
  /// Tokens cached per row so far.
  std::size_t length() const noexcept { return len_; }
  /// Most tokens a row can hold.
  std::size_t capacity() const noexcept { return cap_; }
  /// Number of layers.
  std::size_t n_layer() const noexcept { return n_layer_; }
  /// Number of heads.
  std::size_t n_head() const noexcept { return n_head_; }
  /// Size of one head.
  std::size_t head_size() const noexcept { return hs_; }

  /// Forgets every cached token (the storage is kept).
  void clear() noexcept { len_ = 0; }

  /// Row r becomes a copy of old row src_rows[r] (beam search); the batch becomes src_rows.size().
  /// Throws value_error for a row index outside [0, batch()).
  void reorder(std::span<const std::size_t> src_rows) {
    for (std::size_t r = 0; r < src_rows.size(); ++r)
      if (src_rows[r] >= batch_)
        throw value_error("gpt_kv_cache::reorder: source row " + std::to_string(src_rows[r]) +
                          " at position " + std::to_string(r) + " is out of range [0, " +
                          std::to_string(batch_) + ")");
    const std::size_t nb = src_rows.size();
    bool identity = nb == batch_; // beam search often keeps every beam where it is
    for (std::size_t r = 0; identity && r < nb; ++r)
      identity = src_rows[r] == r;
    if (identity)
      return;
    const std::size_t row = n_head_ * cap_ * hs_; // one row of one layer
    // Into the spare buffers (kept between calls: no allocation or zero-fill per decoding step),
    // which then trade places with the live ones.
    std::vector<T>& k = spare_k_;
    std::vector<T>& v = spare_v_;
    k.resize(n_layer_ * nb * row);
    v.resize(k.size());
    for (std::size_t l = 0; l < n_layer_; ++l)
      for (std::size_t r = 0; r < nb; ++r)
        for (std::size_t h = 0; h < n_head_; ++h) {
          const std::size_t from = ((l * batch_ + src_rows[r]) * n_head_ + h) * cap_ * hs_;
          const std::size_t to = ((l * nb + r) * n_head_ + h) * cap_ * hs_;
          std::copy_n(k_.data() + from, len_ * hs_, k.data() + to);
          std::copy_n(v_.data() + from, len_ * hs_, v.data() + to);
        }
    k_.swap(k);
    v_.swap(v);
    batch_ = nb;
  }

  /// Keys of layer l, row b, head h: (Tmax, HS).
  T* keys(std::size_t l, std::size_t b, std::size_t h) noexcept { return k_.data() + offset(l, b, h); }
  /// Values of layer l, row b, head h: (Tmax, HS).
  T* values(std::size_t l, std::size_t b, std::size_t h) noexcept { return v_.data() + offset(l, b, h); }
  /// Records that n more tokens were written (internal: called by the model after a step).
  void advance(std::size_t n) noexcept { len_ += n; }

private:
  std::size_t offset(std::size_t l, std::size_t b, std::size_t h) const noexcept {
    return ((l * batch_ + b) * n_head_ + h) * cap_ * hs_;
  }
  std::size_t n_layer_ = 0, batch_ = 0, n_head_ = 0, hs_ = 0, cap_ = 0, len_ = 0;
  std::vector<T> k_, v_;             // (L, B, NH, Tmax, HS) each
  std::vector<T> spare_k_, spare_v_; // reorder's destination, reused
};

} // namespace grad::models
