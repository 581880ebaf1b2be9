#pragma once
/// @file ops/join.hpp
/// Ops that cut and join along an axis: slice, concat, stack.

#include <algorithm>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "grad/core/apply.hpp"

namespace grad {
namespace ops {

/// Elements start, start + step, ... (before stop) along `axis`, with Python's rules for negative
/// and out-of-range bounds (clamped, as x[a:b:s] is).
struct slice_op {
  static constexpr std::string_view name = "slice";
  std::int64_t axis = 0, start = 0, stop = 0, step = 1;

  struct range {
    std::size_t axis, first, count, stride;
  };
  range resolve(const shape_type& in) const {
    if (in.empty())
      throw shape_error("slice: cannot slice a 0-d tensor");
    if (step <= 0)
      throw value_error("slice: step must be positive, got " + std::to_string(step));
    const std::size_t a = detail::normalize_axis(name, axis, in.size());
    const auto n = static_cast<std::int64_t>(in[a]);
    auto clampi = [n](std::int64_t v) { return std::clamp<std::int64_t>(v < 0 ? v + n : v, 0, n); };
    const std::int64_t b = clampi(start), e = clampi(stop);
    const std::size_t count = e > b ? static_cast<std::size_t>((e - b + step - 1) / step) : 0;
    return {a, static_cast<std::size_t>(b), count, static_cast<std::size_t>(step)};
  }
  shape_type shape(const shape_type& in) const {
    const range r = resolve(in);
    shape_type out = in;
    out[r.axis] = r.count;
    return out;
  }
  std::uint64_t flops(const shape_type&, const shape_type&) const { return 0; }
  template <class F>
  void walk(const shape_type& in, const shape_type& out, F f) const {
    const range r = resolve(in);
    shape_type st = detail::strides_of(in);
    const std::size_t base = r.first * st[r.axis];
    st[r.axis] *= r.stride;
    detail::broadcast_rows<1>(out, {&st},
                              [&](const auto& off, std::size_t o, std::size_t len, const auto& is) {
                                for (std::size_t j = 0; j < len; ++j)
                                  f(o + j, base + off[0] + j * is[0]);
                              });
  }
  template <class C>
  void forward(C& c) const {
    const auto* x = c.in(0).data();
    auto* y = c.out().data();
    walk(shape_type(c.in(0).shape().begin(), c.in(0).shape().end()),
         shape_type(c.out().shape().begin(), c.out().shape().end()),
         [&](std::size_t o, std::size_t i) { y[o] = x[i]; });
  }
  template <class C>
  void backward(C& c) const { // d out / d x = 1 on the selected elements, 0 elsewhere
    if (!c.needs_grad(0))
      return;
    const auto* g = c.dout().data();
    auto* dx = c.din(0).data();
    walk(shape_type(c.in(0).shape().begin(), c.in(0).shape().end()),
         shape_type(c.out().shape().begin(), c.out().shape().end()),
         [&](std::size_t o, std::size_t i) { dx[i] += g[o]; });
  }
};

/// Joins tensors along an existing axis (concat) or a new one (stack).
struct join_base {
  std::int64_t axis = 0;
  /// outer = product of extents before the axis; each input contributes a block of `width` elements
  /// per outer index.
  template <class C, class F>
  static void blocks(C& c, std::size_t axis, F f) {
    const auto& s0 = c.in(0).shape();
    std::size_t outer = 1;
    for (std::size_t d = 0; d < axis; ++d)
      outer *= s0[d];
    std::size_t row = 0;
    std::vector<std::size_t> width(c.size());
    for (std::size_t i = 0; i < c.size(); ++i) {
      width[i] = outer ? c.in(i).size() / outer : 0;
      row += width[i];
    }
    for (std::size_t o = 0; o < outer; ++o) {
      std::size_t col = 0;
      for (std::size_t i = 0; i < c.size(); ++i) {
        f(i, o * width[i], o * row + col, width[i]);
        col += width[i];
      }
    }
  }
  template <class C>
  static void copy_in(C& c, std::size_t axis) {
    auto* y = c.out().data();
    blocks(c, axis, [&](std::size_t i, std::size_t src, std::size_t dst, std::size_t w) {
      std::copy(c.in(i).data() + src, c.in(i).data() + src + w, y + dst);
    });
  }
  template <class C>
  static void copy_back(C& c, std::size_t axis) { // each input's gradient is its block of the output's
    const auto* g = c.dout().data();
    blocks(c, axis, [&](std::size_t i, std::size_t src, std::size_t dst, std::size_t w) {
      if (!c.needs_grad(i))
        return;
      auto* dx = c.din(i).data() + src;
      for (std::size_t j = 0; j < w; ++j)
        dx[j] += g[dst + j];
    });
  }
  std::uint64_t flops(const shape_type&, std::span<const shape_type>) const { return 0; }
};

/// Concatenation along an existing axis; all other extents must agree.
struct concat_op : join_base {
  static constexpr std::string_view name = "concat";
  shape_type shape(std::span<const shape_type> in) const {
    if (in.empty())
      throw value_error("concat: needs at least one tensor");
    const std::size_t a = detail::normalize_axis(name, axis, in[0].size());
    shape_type out = in[0];
    out[a] = 0;
    for (std::size_t i = 0; i < in.size(); ++i) {
      bool ok = in[i].size() == in[0].size();
      for (std::size_t d = 0; ok && d < in[0].size(); ++d)
        ok = d == a || in[i][d] == in[0][d];
      if (!ok)
        throw shape_error("concat: tensor " + std::to_string(i) + " has shape " + to_string(in[i]) +
                          ", which does not match " + to_string(in[0]) + " outside axis " +
                          std::to_string(axis));
      out[a] += in[i][a];
    }
    return out;
  }
  template <class C>
  void forward(C& c) const {
    copy_in(c, detail::normalize_axis(name, axis, c.in(0).dimension()));
  }
  template <class C>
  void backward(C& c) const {
    copy_back(c, detail::normalize_axis(name, axis, c.in(0).dimension()));
  }
};

/// Stacks equal-shaped tensors along a new axis.
struct stack_op : join_base {
  static constexpr std::string_view name = "stack";
  shape_type shape(std::span<const shape_type> in) const {
    if (in.empty())
      throw value_error("stack: needs at least one tensor");
    for (std::size_t i = 1; i < in.size(); ++i)
      if (in[i] != in[0])
        throw shape_error("stack: tensor " + std::to_string(i) + " has shape " + to_string(in[i]) +
                          ", tensor 0 has " + to_string(in[0]) + "; all must be equal");
    const std::size_t a = detail::normalize_axis(name, axis, in[0].size() + 1);
    shape_type out = in[0];
    out.insert(out.begin() + static_cast<std::ptrdiff_t>(a), in.size());
    return out;
  }
  // Stacking at axis a is concatenation at axis a of inputs viewed with an extra extent-1 axis: the
  // blocks are the same, with the product of the extents before a as the outer count.
  template <class C>
  void forward(C& c) const {
    copy_in(c, detail::normalize_axis(name, axis, c.in(0).dimension() + 1));
  }
  template <class C>
  void backward(C& c) const {
    copy_back(c, detail::normalize_axis(name, axis, c.in(0).dimension() + 1));
  }
};

} // namespace ops

/// Elements start, start + step, ... before stop along `axis` (Python slicing rules for the bounds).
template <element T>
basic_tensor<T> slice(const basic_tensor<T>& x, std::int64_t axis, std::int64_t start, std::int64_t stop,
                      std::int64_t step = 1) {
  return apply(ops::slice_op{axis, start, stop, step}, x);
}
/// Joins tensors along an existing axis.
template <element T>
basic_tensor<T> concat(const std::vector<basic_tensor<T>>& xs, std::int64_t axis = 0) {
  return apply_list(ops::concat_op{{axis}}, xs);
}
/// Stacks equal-shaped tensors along a new axis.
template <element T>
basic_tensor<T> stack(const std::vector<basic_tensor<T>>& xs, std::int64_t axis = 0) {
  return apply_list(ops::stack_op{{axis}}, xs);
}
/// Joins a braced list of tensors along an existing axis: `concat({a, b, c}, 1)`.
template <element T>
basic_tensor<T> concat(std::initializer_list<basic_tensor<T>> xs, std::int64_t axis = 0) {
  return concat(std::vector<basic_tensor<T>>(xs), axis);
}
/// Stacks a braced list of tensors along a new axis: `stack({a, b}, 0)`.
template <element T>
basic_tensor<T> stack(std::initializer_list<basic_tensor<T>> xs, std::int64_t axis = 0) {
  return stack(std::vector<basic_tensor<T>>(xs), axis);
}

} // namespace grad
