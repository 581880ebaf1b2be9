#pragma once
/// @file core/index_tensor.hpp
/// grad::index_tensor: integer class targets and token ids (a shape plus std::int64_t values).
///
/// Tensors hold only float or double, so integers that select rows or classes (embedding ids,
/// cross-entropy targets) travel in this small value type instead. It is never differentiated and
/// never on the tape: ops that take one copy it into their own state. Values are checked against
/// their valid range by the op that reads them (embedding, cross_entropy, nll_loss).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "grad/core/error.hpp"
#include "grad/core/shape.hpp"
#include "grad/core/tensor.hpp"

namespace grad {

/// A row-major array of std::int64_t with a shape: token ids (B, T) or class targets (N).
class index_tensor {
public:
  /// An empty 1-d index tensor (shape (0,)).
  index_tensor() : shape_{0} {}
  /// Values in row-major order with a shape; throws shape_error when the sizes differ.
  index_tensor(std::vector<std::int64_t> values, shape_type shape)
      : values_(std::move(values)), shape_(std::move(shape)) {
    if (values_.size() != grad::numel(shape_))
      throw shape_error("index_tensor: " + std::to_string(values_.size()) + " values do not fill shape " +
                        to_string(shape_) + " (" + std::to_string(grad::numel(shape_)) + " elements)");
  }
  /// A 1-d index tensor from a vector.
  explicit index_tensor(std::vector<std::int64_t> values)
      : values_(std::move(values)), shape_{values_.size()} {}
  /// A 1-d index tensor from a list: `index_tensor{3, 1, 4}`.
  index_tensor(std::initializer_list<std::int64_t> values) : values_(values), shape_{values.size()} {}
  /// A 2-d index tensor from nested lists: `index_tensor{{1, 2}, {3, 4}}`; rows must have equal length.
  index_tensor(std::initializer_list<std::initializer_list<std::int64_t>> rows) {
    const std::size_t cols = rows.size() ? rows.begin()->size() : 0;
    for (const auto& r : rows) {
      if (r.size() != cols)
        throw shape_error("index_tensor: ragged nested list: a row has " + std::to_string(r.size()) +
                          " values, the first " + std::to_string(cols));
      values_.insert(values_.end(), r.begin(), r.end());
    }
    shape_ = {rows.size(), cols};
  }

  /// Integer-valued tensor converted to indices; throws value_error naming the first non-integer.
  template <element T>
  static index_tensor from(const basic_tensor<T>& t) {
    std::vector<std::int64_t> v(t.numel());
    for (std::size_t i = 0; i < v.size(); ++i) {
      const T x = t.data()[i];
      if (!(std::floor(x) == x))
        throw value_error("index_tensor::from: element " + std::to_string(i) + " is " + std::to_string(x) +
                          ", not an integer");
      v[i] = static_cast<std::int64_t>(x);
    }
    return index_tensor(std::move(v), t.shape());
  }

  /// The shape.
  const shape_type& shape() const noexcept { return shape_; }
  /// Number of dimensions.
  std::size_t dim() const noexcept { return shape_.size(); }
  /// Extent of dimension d (negative counts from the end).
  std::size_t size(std::int64_t d) const { return shape_[detail::normalize_axis("index_tensor", d, dim())]; }
  /// Number of values.
  std::size_t numel() const noexcept { return values_.size(); }
  /// The values in row-major order.
  const std::vector<std::int64_t>& values() const noexcept { return values_; }
  /// Pointer to the first value.
  const std::int64_t* data() const noexcept { return values_.data(); }
  /// Writable pointer to the first value.
  std::int64_t* data() noexcept { return values_.data(); }
  /// Value at flat (row-major) position i.
  std::int64_t operator[](std::size_t i) const { return values_[i]; }
  /// Writable value at flat position i.
  std::int64_t& operator[](std::size_t i) { return values_[i]; }

  /// The same values in a new shape; one extent may be -1 (inferred).
  index_tensor reshape(const std::vector<std::int64_t>& target) const {
    shape_type s(target.size());
    std::size_t known = 1, infer = target.size();
    for (std::size_t i = 0; i < target.size(); ++i) {
      if (target[i] == -1 && infer == target.size()) {
        infer = i;
        continue;
      }
      if (target[i] < 0)
        throw shape_error("index_tensor::reshape: invalid extent " + std::to_string(target[i]));
      s[i] = static_cast<std::size_t>(target[i]);
      known *= s[i];
    }
    if (infer != target.size())
      s[infer] = known ? numel() / known : 0;
    if (grad::numel(s) != numel())
      throw shape_error("index_tensor::reshape: cannot view " + std::to_string(numel()) +
                        " values of shape " + to_string(shape_) + " as " + to_string(s));
    return index_tensor(values_, std::move(s));
  }
  /// The same values as a 1-d index tensor.
  index_tensor flatten() const { return index_tensor(values_, shape_type{numel()}); }

  /// The values as a tensor of T (e.g. to print them or compare with predictions).
  template <element T = float>
  basic_tensor<T> to_tensor() const {
    auto a = detail::empty_array<T>(shape_);
    for (std::size_t i = 0; i < values_.size(); ++i)
      a.data()[i] = static_cast<T>(values_[i]);
    return basic_tensor<T>(std::move(a));
  }

  /// Equal shapes and values.
  friend bool operator==(const index_tensor&, const index_tensor&) = default;

private:
  std::vector<std::int64_t> values_;
  shape_type shape_;
};

} // namespace grad
