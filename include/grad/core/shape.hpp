#pragma once
/// @file core/shape.hpp
/// Shapes: the shape type, printing, broadcasting rules and axis normalisation.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "grad/core/error.hpp"
#include "grad/core/small_vector.hpp"

namespace grad {

/// The shape of a tensor: one extent per dimension, row-major (last dimension contiguous). Up to six
/// dimensions are held inline (no heap allocation); it converts from and to std::vector<std::size_t>.
using shape_type = small_vector<std::size_t, 6>;

/// Number of elements of a tensor of this shape (1 for a 0-d scalar).
inline std::size_t numel(const shape_type& s) noexcept {
  std::size_t n = 1;
  for (auto d : s)
    n *= d;
  return n;
}

/// Formats a shape the way PyTorch prints sizes: `(2, 3)`, `(5,)` and `()`.
inline std::string to_string(const shape_type& s) {
  std::string r = "(";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i)
      r += ", ";
    r += std::to_string(s[i]);
  }
  if (s.size() == 1)
    r += ",";
  return r + ")";
}

/// The shape two operands broadcast to (NumPy rules), or a shape_error naming `op` and both shapes.
inline shape_type broadcast_shapes(std::string_view op, const shape_type& a, const shape_type& b) {
  if (a.size() == b.size()) { // the common case: equal shapes
    std::size_t i = 0;
    while (i < a.size() && a[i] == b[i])
      ++i;
    if (i == a.size())
      return a;
  }
  const std::size_t n = std::max(a.size(), b.size());
  shape_type r(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const std::size_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      throw shape_error(std::string(op) + ": shapes " + to_string(a) + " and " + to_string(b) +
                        " cannot be broadcast together (dimension " + std::to_string(i) + ": " +
                        std::to_string(da) + " vs " + std::to_string(db) + ")");
    r[i] = da == 1 ? db : da;
  }
  return r;
}

namespace detail {

/// Maps a possibly negative axis (Python style) onto [0, ndim), or throws naming the op.
inline std::size_t normalize_axis(std::string_view op, std::int64_t axis, std::size_t ndim) {
  const auto n = static_cast<std::int64_t>(ndim);
  if (axis < -n || axis >= n)
    throw value_error(std::string(op) + ": axis " + std::to_string(axis) + " is out of range for a " +
                      std::to_string(ndim) + "-d tensor (valid: " + std::to_string(-n) + " to " +
                      std::to_string(n - 1) + ")");
  return static_cast<std::size_t>(axis < 0 ? axis + n : axis);
}

/// Row-major strides of a shape, in elements.
inline shape_type strides_of(const shape_type& s) {
  shape_type st(s.size());
  std::size_t acc = 1;
  for (std::size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

/// Strides with which an operand of shape `in` is read at the indices of the broadcast shape `out`:
/// the operand's own stride, or 0 along broadcast (size-1 or missing) dimensions.
inline shape_type broadcast_strides(const shape_type& in, const shape_type& out) {
  shape_type st(out.size(), 0);
  const shape_type own = strides_of(in);
  const std::size_t off = out.size() - in.size();
  for (std::size_t i = 0; i < in.size(); ++i)
    st[i + off] = in[i] == 1 ? 0 : own[i];
  return st;
}

} // namespace detail
} // namespace grad
