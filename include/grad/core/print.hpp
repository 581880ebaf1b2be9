#pragma once
/// @file core/print.hpp
/// operator<< for tensors, printed the way PyTorch prints them (plus the shape).

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "grad/core/tensor.hpp"

namespace grad {
namespace detail {

struct print_format {
  bool sci = false;
  bool integral = false;
  int width = 0;
};

inline std::string format_number(double v, const print_format& f) {
  char buf[64];
  if (std::isnan(v))
    return "nan";
  if (std::isinf(v))
    return v > 0 ? "inf" : "-inf";
  if (f.integral)
    std::snprintf(buf, sizeof buf, "%.0f.", v);
  else if (f.sci)
    std::snprintf(buf, sizeof buf, "%.4e", v);
  else
    std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

template <class T>
void print_rec(std::ostream& os, const T* data, const shape_type& shape, const shape_type& strides,
               std::size_t dim, std::size_t offset, const print_format& f, bool summarize, int indent) {
  constexpr std::size_t edge = 3;
  const std::size_t n = shape[dim];
  auto visible = [&](std::size_t i) { return !summarize || n <= 2 * edge || i < edge || i >= n - edge; };
  os << '[';
  bool skipped = false;
  bool first = true;
  for (std::size_t i = 0; i < n; ++i) {
    if (!visible(i)) {
      if (!skipped) {
        os << (dim + 1 == shape.size() ? ", ..." : ",\n" + std::string(indent + 1, ' ') + "...");
        skipped = true;
      }
      continue;
    }
    if (!first) {
      os << ',';
      if (dim + 1 == shape.size())
        os << ' ';
      else
        os << std::string(shape.size() - dim - 1, '\n') << std::string(indent + 1, ' ');
    }
    first = false;
    if (dim + 1 == shape.size()) {
      const std::string s = format_number(static_cast<double>(data[offset + i * strides[dim]]), f);
      os << std::string(std::max<int>(0, f.width - static_cast<int>(s.size())), ' ') << s;
    } else {
      print_rec(os, data, shape, strides, dim + 1, offset + i * strides[dim], f, summarize, indent + 1);
    }
  }
  os << ']';
}

} // namespace detail

/// Prints like PyTorch: `tensor([[1.0000, 2.0000], ...], shape=(2, 2), requires_grad=True)`.
/// Tensors of more than 1000 elements are summarised with `...`, as PyTorch does.
template <element T>
std::ostream& operator<<(std::ostream& os, const basic_tensor<T>& t) {
  if (!t.defined())
    return os << "tensor(undefined)";
  const shape_type shape = t.shape();
  const T* d = t.data();
  const std::size_t n = t.numel();
  detail::print_format f;
  double maxabs = 0, minabs = INFINITY;
  bool integral = n > 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(d[i]);
    if (!std::isfinite(v))
      continue;
    maxabs = std::max(maxabs, std::abs(v));
    if (v != 0)
      minabs = std::min(minabs, std::abs(v));
    integral = integral && v == std::nearbyint(v);
  }
  f.integral = integral && maxabs < 1e8;
  f.sci = !f.integral && (maxabs >= 1e8 || (minabs < 1e-4 && minabs != INFINITY));
  for (std::size_t i = 0; i < n; ++i)
    f.width =
        std::max<int>(f.width, static_cast<int>(detail::format_number(static_cast<double>(d[i]), f).size()));
  os << "tensor(";
  if (shape.empty())
    os << detail::format_number(static_cast<double>(d[0]), f);
  else if (n == 0)
    os << "[]";
  else
    detail::print_rec(os, d, shape, detail::strides_of(shape), 0, 0, f, n > 1000, 7);
  if (!shape.empty())
    os << ", shape=" << to_string(shape);
  if constexpr (std::is_same_v<T, double>)
    os << ", dtype=float64";
  if (t.requires_grad())
    os << ", requires_grad=True";
  return os << ')';
}

} // namespace grad
