#pragma once
/// @file ops/movement.hpp
/// Ops that move or relabel elements: reshape, unsqueeze, squeeze, transpose, permute.

#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "grad/core/apply.hpp"

namespace grad {
namespace ops {

/// Base of the ops that keep the row-major element order and only relabel the shape: a copy
/// forward, and a flat accumulate backward (d out_i / d in_i = 1). They move bytes, no FLOPs.
struct relabel_base {
  template <class C>
  void forward(C& c) const {
    std::copy(c.in(0).data(), c.in(0).data() + c.in(0).size(), c.out().data());
  }
  template <class C>
  void backward(C& c) const {
    if (!c.needs_grad(0))
      return;
    auto* dx = c.din(0).data();
    const auto* g = c.dout().data();
    for (std::size_t i = 0, n = c.dout().size(); i < n; ++i)
      dx[i] += g[i];
  }
  std::uint64_t flops(const shape_type&, const shape_type&) const { return 0; }
};

/// Same elements, new shape; one extent may be -1 (inferred).
struct reshape_op : relabel_base {
  static constexpr std::string_view name = "reshape";
  std::vector<std::int64_t> target;
  shape_type shape(const shape_type& in) const {
    shape_type out(target.size());
    std::size_t known = 1;
    std::size_t infer = target.size();
    for (std::size_t i = 0; i < target.size(); ++i) {
      if (target[i] == -1) {
        if (infer != target.size())
          throw shape_error("reshape: only one dimension can be -1, got " + list());
        infer = i;
      } else if (target[i] < 0) {
        throw shape_error("reshape: invalid extent " + std::to_string(target[i]) + " in " + list());
      } else {
        out[i] = static_cast<std::size_t>(target[i]);
        known *= out[i];
      }
    }
    if (infer != target.size()) {
      if (known == 0 || numel(in) % known != 0)
        throw shape_error("reshape: cannot infer -1 in " + list() + " for input of shape " + to_string(in) +
                          " (" + std::to_string(numel(in)) + " elements)");
      out[infer] = numel(in) / known;
    }
    if (numel(out) != numel(in))
      throw shape_error("reshape: shape " + list() + " has " + std::to_string(numel(out)) +
                        " elements but the input " + to_string(in) + " has " + std::to_string(numel(in)));
    return out;
  }
  std::string list() const {
    std::string r = "(";
    for (std::size_t i = 0; i < target.size(); ++i)
      r += (i ? ", " : "") + std::to_string(target[i]);
    return r + ")";
  }
};

/// Inserts a dimension of extent 1 at `axis` (in [-ndim-1, ndim]).
struct unsqueeze_op : relabel_base {
  static constexpr std::string_view name = "unsqueeze";
  std::int64_t axis = 0;
  shape_type shape(const shape_type& in) const {
    const std::size_t a = detail::normalize_axis(name, axis, in.size() + 1);
    shape_type out = in;
    out.insert(out.begin() + static_cast<std::ptrdiff_t>(a), 1);
    return out;
  }
};

/// Removes dimension `axis` of extent 1, or every extent-1 dimension when `all`.
struct squeeze_op : relabel_base {
  static constexpr std::string_view name = "squeeze";
  std::int64_t axis = 0;
  bool all = false;
  shape_type shape(const shape_type& in) const {
    shape_type out;
    if (all) {
      for (auto d : in)
        if (d != 1)
          out.push_back(d);
      return out;
    }
    const std::size_t a = detail::normalize_axis(name, axis, in.size());
    if (in[a] != 1)
      throw shape_error("squeeze: dimension " + std::to_string(axis) + " of shape " + to_string(in) +
                        " has extent " + std::to_string(in[a]) + ", not 1");
    out = in;
    out.erase(out.begin() + static_cast<std::ptrdiff_t>(a));
    return out;
  }
};

/// Reorders dimensions: out dimension d is input dimension perm[d]. Copies the elements.
struct permute_op {
  static constexpr std::string_view name = "permute";
  std::vector<std::int64_t> perm;

  std::vector<std::size_t> checked(std::size_t ndim) const {
    if (perm.size() != ndim)
      throw shape_error("permute: " + std::to_string(perm.size()) + " dimensions given for a " +
                        std::to_string(ndim) + "-d tensor");
    std::vector<std::size_t> p(ndim);
    std::vector<bool> seen(ndim, false);
    for (std::size_t i = 0; i < ndim; ++i) {
      p[i] = detail::normalize_axis(name, perm[i], ndim);
      if (seen[p[i]])
        throw shape_error("permute: dimension " + std::to_string(perm[i]) + " appears twice");
      seen[p[i]] = true;
    }
    return p;
  }
  shape_type shape(const shape_type& in) const {
    const auto p = checked(in.size());
    shape_type out(in.size());
    for (std::size_t i = 0; i < in.size(); ++i)
      out[i] = in[p[i]];
    return out;
  }
  std::uint64_t flops(const shape_type&, const shape_type&) const { return 0; }
  /// Strides with which the output's indices read the input.
  shape_type input_strides(const shape_type& in) const {
    const auto p = checked(in.size());
    const shape_type st = detail::strides_of(in);
    shape_type r(in.size());
    for (std::size_t i = 0; i < in.size(); ++i)
      r[i] = st[p[i]];
    return r;
  }
  template <class C>
  void forward(C& c) const {
    const shape_type in(c.in(0).shape().begin(), c.in(0).shape().end());
    const shape_type out(c.out().shape().begin(), c.out().shape().end());
    const shape_type st = input_strides(in);
    const auto* x = c.in(0).data();
    auto* y = c.out().data();
    detail::broadcast_rows<1>(out, {&st},
                              [&](const auto& off, std::size_t o, std::size_t len, const auto& is) {
                                for (std::size_t j = 0; j < len; ++j)
                                  y[o + j] = x[off[0] + j * is[0]];
                              });
  }
  template <class C>
  void backward(C& c) const { // the inverse permutation of the gradient
    if (!c.needs_grad(0))
      return;
    const shape_type in(c.in(0).shape().begin(), c.in(0).shape().end());
    const shape_type out(c.out().shape().begin(), c.out().shape().end());
    const shape_type st = input_strides(in);
    const auto* g = c.dout().data();
    auto* dx = c.din(0).data();
    detail::broadcast_rows<1>(out, {&st},
                              [&](const auto& off, std::size_t o, std::size_t len, const auto& is) {
                                for (std::size_t j = 0; j < len; ++j)
                                  dx[off[0] + j * is[0]] += g[o + j];
                              });
  }
};

} // namespace ops

/// Same elements in a new shape (one extent may be -1); copies, as every tensor is contiguous.
template <element T>
basic_tensor<T> reshape(const basic_tensor<T>& x, std::vector<std::int64_t> shape) {
  return apply(ops::reshape_op{{}, std::move(shape)}, x);
}
/// Flattens dimensions start..end (inclusive) into one.
template <element T>
basic_tensor<T> flatten(const basic_tensor<T>& x, std::int64_t start = 0, std::int64_t end = -1) {
  const shape_type s = x.shape();
  if (s.empty())
    return reshape(x, {1});
  const std::size_t a = detail::normalize_axis("flatten", start, s.size());
  const std::size_t b = detail::normalize_axis("flatten", end, s.size());
  if (a > b)
    throw value_error("flatten: start dimension " + std::to_string(start) + " comes after end " +
                      std::to_string(end));
  std::vector<std::int64_t> t;
  for (std::size_t i = 0; i < a; ++i)
    t.push_back(static_cast<std::int64_t>(s[i]));
  t.push_back(-1);
  for (std::size_t i = b + 1; i < s.size(); ++i)
    t.push_back(static_cast<std::int64_t>(s[i]));
  if (numel(s) == 0) // -1 cannot be inferred next to a zero extent
    t[a] = 0;
  return reshape(x, std::move(t));
}
/// Inserts a dimension of extent 1 at `axis`.
template <element T>
basic_tensor<T> unsqueeze(const basic_tensor<T>& x, std::int64_t axis) {
  return apply(ops::unsqueeze_op{{}, axis}, x);
}
/// Removes dimension `axis`, which must have extent 1.
template <element T>
basic_tensor<T> squeeze(const basic_tensor<T>& x, std::int64_t axis) {
  return apply(ops::squeeze_op{{}, axis, false}, x);
}
/// Removes every dimension of extent 1.
template <element T>
basic_tensor<T> squeeze(const basic_tensor<T>& x) {
  return apply(ops::squeeze_op{{}, 0, true}, x);
}
/// Reorders dimensions: result dimension d is x's dimension perm[d].
template <element T>
basic_tensor<T> permute(const basic_tensor<T>& x, std::vector<std::int64_t> perm) {
  return apply(ops::permute_op{std::move(perm)}, x);
}
/// Swaps two dimensions (default: the last two, the matrix transpose).
template <element T>
basic_tensor<T> transpose(const basic_tensor<T>& x, std::int64_t dim0 = -2, std::int64_t dim1 = -1) {
  const std::size_t n = x.dim();
  if (n < 2 && dim0 == -2 && dim1 == -1)
    throw shape_error("transpose: needs at least 2 dimensions, got shape " + to_string(x.shape()));
  const std::size_t a = detail::normalize_axis("transpose", dim0, n);
  const std::size_t b = detail::normalize_axis("transpose", dim1, n);
  std::vector<std::int64_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[a], perm[b]);
  return permute(x, std::move(perm));
}

} // namespace grad
