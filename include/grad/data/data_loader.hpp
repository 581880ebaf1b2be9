#pragma once
/// @file data/data_loader.hpp
/// data_loader: iterates over a dataset in batches, optionally shuffled by a seeded grad::generator.
///
///     grad::data::data_loader loader(ds, {.batch_size = 64, .shuffle = true, .seed = 1});
///     for (auto& [x, y] : loader) { ... }   // one epoch; the next range-for reshuffles

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <numeric>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "grad/core/error.hpp"
#include "grad/core/generator.hpp"
#include "grad/data/dataset.hpp"

namespace grad::data {

/// Options of data_loader (PyTorch's names).
struct loader_options {
  std::size_t batch_size = 1; ///< examples per batch (> 0)
  bool shuffle = false;       ///< a new random order every epoch
  bool drop_last = false;     ///< skip the last batch when it is smaller than batch_size
  std::uint64_t seed = 0;     ///< seed of the shuffle: the sequence of epochs is reproducible
};

/// Batches of a dataset, as contiguous tensors {inputs (B, ...), targets (B, ...)}. Each begin()
/// (each range-for) starts a new epoch, visiting every example exactly once (but the dropped tail).
/// D is the dataset type, or a reference to it: an lvalue dataset is referenced (it must outlive the
/// loader), an rvalue is moved into the loader.
template <class D>
requires dataset<std::remove_cvref_t<D>>
class data_loader {
public:
  using dataset_type = std::remove_cvref_t<D>;      ///< the dataset's type
  using value_type = dataset_value_t<dataset_type>; ///< element type of the tensors
  using batch_type = batch<value_type>;             ///< what iterating yields

  /// A loader over `ds`; throws value_error for batch_size 0.
  data_loader(D&& ds, loader_options opt = {}) : ds_(std::forward<D>(ds)), opt_(opt), gen_(opt.seed) {
    if (opt_.batch_size == 0)
      throw value_error("data_loader: batch_size must be at least 1");
  }

  /// Iterates the batches of one epoch (input iterator: each batch is built on increment).
  class iterator {
  public:
    using value_type = batch_type;                    ///< a batch
    using difference_type = std::ptrdiff_t;           ///< required by std::input_iterator
    using iterator_concept = std::input_iterator_tag; ///< single pass

    /// A singular iterator (std::input_iterator wants one); only begin() gives a usable iterator.
    iterator() = default;
    /// The current batch.
    const batch_type& operator*() const noexcept { return cur_; }
    /// Member access to the current batch.
    const batch_type* operator->() const noexcept { return &cur_; }
    /// Moves to the next batch.
    iterator& operator++() {
      ++index_;
      load();
      return *this;
    }
    /// Moves to the next batch.
    void operator++(int) { ++*this; }
    /// True past the last batch.
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return it.index_ >= it.loader_->size();
    }

  private:
    friend class data_loader;
    iterator(data_loader* l) : loader_(l) { load(); }
    void load() {
      if (index_ < loader_->size())
        cur_ = loader_->make_batch(index_);
    }
    data_loader* loader_ = nullptr;
    std::size_t index_ = 0;
    batch_type cur_;
  };

  /// Starts a new epoch (reshuffling when shuffle is on) and returns its first batch.
  iterator begin() {
    new_epoch();
    return iterator(this);
  }
  /// The end of the epoch.
  std::default_sentinel_t end() const noexcept { return {}; }

  /// Number of batches per epoch.
  std::size_t size() const {
    const std::size_t n = ds_.size(), b = opt_.batch_size;
    return opt_.drop_last ? n / b : (n + b - 1) / b;
  }
  /// The dataset.
  const dataset_type& dataset() const noexcept { return ds_; }
  /// The options.
  const loader_options& options() const noexcept { return opt_; }
  /// Example indices of the current epoch in visiting order (identity without shuffle).
  const std::vector<std::size_t>& order() const noexcept { return order_; }
  /// Number of epochs started so far.
  std::size_t epoch() const noexcept { return epoch_; }

  /// Batch `b` of the current epoch (what the iterator yields).
  batch_type make_batch(std::size_t b) const {
    const std::size_t first = b * opt_.batch_size;
    const std::size_t count = std::min(opt_.batch_size, order_.size() - first);
    std::span<const std::size_t> idx(order_.data() + first, count);
    if constexpr (batched_dataset<dataset_type>) {
      return ds_.get_batch(idx);
    } else {
      std::vector<basic_tensor<value_type>> in, tg;
      in.reserve(count);
      tg.reserve(count);
      for (auto i : idx) {
        auto e = ds_.get(i);
        in.push_back(std::move(e.input));
        tg.push_back(std::move(e.target));
      }
      return {detail::stack_rows(in, "inputs"), detail::stack_rows(tg, "targets")};
    }
  }

private:
  void new_epoch() {
    order_.resize(ds_.size());
    std::iota(order_.begin(), order_.end(), std::size_t{0});
    if (opt_.shuffle) // Fisher-Yates with the loader's own generator: epoch k depends only on seed and k
      for (std::size_t i = order_.size(); i > 1; --i)
        std::swap(order_[i - 1], order_[gen_.randint(i)]);
    ++epoch_;
  }

  D ds_;
  loader_options opt_;
  generator gen_;
  std::vector<std::size_t> order_;
  std::size_t epoch_ = 0;
};

/// Deduces a reference for lvalue datasets and a value for rvalues (as std::views do).
template <class D>
data_loader(D&&, loader_options = {}) -> data_loader<D>;

} // namespace grad::data
