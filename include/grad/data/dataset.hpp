#pragma once
/// @file data/dataset.hpp
/// Datasets: the `dataset` concept (size() and get(i)), examples and batches, and tensor_dataset,
/// which serves rows of an inputs tensor (N, ...) and a targets tensor (N, ...).
///
/// Class labels are stored as a targets tensor of shape (N,) holding the class indices 0..C-1 as exact
/// values of T (float represents every integer up to 2^24 exactly); class_indices() turns them into
/// std::int64_t, checking that they are whole numbers.

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "grad/core/error.hpp"
#include "grad/core/index_tensor.hpp"
#include "grad/core/shape.hpp"
#include "grad/core/tensor.hpp"

namespace grad::data {

/// One example: an input and its target, without the batch dimension.
template <element T>
struct example {
  basic_tensor<T> input;  ///< e.g. (1, 28, 28) for an image
  basic_tensor<T> target; ///< e.g. () holding a class index
};

/// A batch of examples stacked along a new first dimension: `auto& [x, y] = batch`.
template <element T>
struct batch {
  basic_tensor<T> inputs;  ///< (B, ...)
  basic_tensor<T> targets; ///< (B, ...)
};

namespace detail {
template <class E>
struct example_traits : std::false_type {};
template <element T>
struct example_traits<example<T>> : std::true_type {
  using value_type = T;
};
} // namespace detail

/// A random-access dataset: `size()` examples, `get(i)` returning example<T> for i < size().
/// A dataset may also offer `get_batch(std::span<const std::size_t>)` returning batch<T>, which
/// data_loader then uses instead of stacking examples one by one.
template <class D>
concept dataset = requires(const D& d, std::size_t i) {
  { d.size() } -> std::convertible_to<std::size_t>;
  d.get(i);
}
&&detail::example_traits<std::remove_cvref_t<decltype(std::declval<const D&>().get(std::size_t{}))>>::value;

/// A dataset with a fast batch gather.
template <class D>
concept batched_dataset = dataset<D> && requires(const D& d, std::span<const std::size_t> idx) {
  {d.get_batch(idx)};
};

/// The element type of a dataset's tensors.
template <dataset D>
using dataset_value_t = typename detail::example_traits<
    std::remove_cvref_t<decltype(std::declval<const D&>().get(std::size_t{}))>>::value_type;

namespace detail {

/// Copies rows `idx` of `src` (N, ...) into a new (idx.size(), ...) array: one memcpy per row.
template <element T>
grad::xarray<T> gather_rows(const grad::xarray<T>& src, std::span<const std::size_t> idx, const char* who) {
  const std::size_t n = src.shape()[0];
  shape_type shape(src.shape().begin(), src.shape().end());
  const std::size_t row = n ? src.size() / n : 0;
  shape[0] = idx.size();
  auto out = grad::detail::empty_array<T>(shape);
  for (std::size_t k = 0; k < idx.size(); ++k) {
    if (idx[k] >= n)
      throw value_error(std::string(who) + ": index " + std::to_string(idx[k]) + " is out of range for " +
                        std::to_string(n) + " examples");
    if (row)
      std::memcpy(out.data() + k * row, src.data() + idx[k] * row, row * sizeof(T));
  }
  return out;
}

/// Stacks same-shaped tensors along a new first dimension.
template <element T>
basic_tensor<T> stack_rows(const std::vector<basic_tensor<T>>& rows, const char* what) {
  shape_type inner = rows.empty() ? shape_type{} : rows.front().shape();
  shape_type shape{rows.size()};
  shape.insert(shape.end(), inner.begin(), inner.end());
  auto out = grad::detail::empty_array<T>(shape);
  const std::size_t row = numel(inner);
  for (std::size_t k = 0; k < rows.size(); ++k) {
    if (rows[k].shape() != inner)
      throw shape_error(std::string("data_loader: ") + what + " of the batch have different shapes: " +
                        to_string(inner) + " (first) and " + to_string(rows[k].shape()) + " (at position " +
                        std::to_string(k) + "); every example must have the same shape to be batched");
    if (row)
      std::memcpy(out.data() + k * row, rows[k].data(), row * sizeof(T));
  }
  return basic_tensor<T>(std::move(out));
}

} // namespace detail

/// A dataset over two tensors whose first dimension indexes the examples (like torch's TensorDataset).
template <element T>
class tensor_dataset {
public:
  /// Inputs (N, ...) and targets (N, ...); throws shape_error when N differs or a tensor is 0-d.
  tensor_dataset(basic_tensor<T> inputs, basic_tensor<T> targets)
      : inputs_(std::move(inputs)), targets_(std::move(targets)) {
    if (!inputs_.defined() || !targets_.defined())
      throw value_error("tensor_dataset: inputs and targets must be defined tensors");
    if (inputs_.dim() == 0 || targets_.dim() == 0 || inputs_.size(0) != targets_.size(0))
      throw shape_error("tensor_dataset: inputs " + to_string(inputs_.shape()) + " and targets " +
                        to_string(targets_.shape()) +
                        " must both have a first dimension of the same size (the number of examples)");
  }

  /// Number of examples N.
  std::size_t size() const { return inputs_.size(0); }
  /// Example i: row i of inputs and of targets (copies).
  example<T> get(std::size_t i) const {
    const std::size_t idx[1] = {i};
    auto b = get_batch(idx);
    return {row(b.inputs), row(b.targets)};
  }
  /// The rows `idx` of inputs and targets, gathered into contiguous (B, ...) tensors.
  batch<T> get_batch(std::span<const std::size_t> idx) const {
    return {basic_tensor<T>(detail::gather_rows(inputs_.value(), idx, "tensor_dataset")),
            basic_tensor<T>(detail::gather_rows(targets_.value(), idx, "tensor_dataset"))};
  }
  /// All inputs (N, ...).
  const basic_tensor<T>& inputs() const noexcept { return inputs_; }
  /// All targets (N, ...).
  const basic_tensor<T>& targets() const noexcept { return targets_; }

private:
  static basic_tensor<T> row(const basic_tensor<T>& one) { // (1, ...) -> (...)
    shape_type s = one.shape();
    s.erase(s.begin());
    auto a = grad::detail::empty_array<T>(s);
    if (a.size())
      std::memcpy(a.data(), one.data(), a.size() * sizeof(T));
    return basic_tensor<T>(std::move(a));
  }

  basic_tensor<T> inputs_;
  basic_tensor<T> targets_;
};

/// The class indices held by a targets tensor, as a grad::index_tensor of the same shape (what
/// cross_entropy and nll_loss take). Throws value_error for a value that is not a whole number in
/// [0, num_classes) (num_classes = 0: no upper bound).
template <element T>
index_tensor class_indices(const basic_tensor<T>& targets, std::size_t num_classes = 0) {
  std::vector<std::int64_t> out(targets.numel());
  const T* p = targets.data();
  for (std::size_t i = 0; i < out.size(); ++i) {
    const T v = p[i];
    if (!(v >= 0) || std::floor(v) != v || v >= T(9.2e18) ||
        (num_classes && v >= static_cast<T>(num_classes)))
      throw value_error("class_indices: target " + std::to_string(i) + " is " + std::to_string(v) +
                        ", not a class index" +
                        (num_classes ? " in [0, " + std::to_string(num_classes) + ")" : std::string()));
    out[i] = static_cast<std::int64_t>(v);
  }
  return index_tensor(std::move(out), targets.shape());
}

} // namespace grad::data
