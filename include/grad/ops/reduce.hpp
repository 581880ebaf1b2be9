#pragma once
/// @file ops/reduce.hpp
/// sum, mean, max, min over all elements or over one or several axes, with keepdim.

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "grad/core/apply.hpp"

namespace grad {
namespace ops {

/// Which reduction a reduce_op computes.
enum class reduce_kind { sum, mean, max, min };

constexpr std::string_view reduce_name(reduce_kind k) {
  switch (k) {
  case reduce_kind::sum:
    return "sum";
  case reduce_kind::mean:
    return "mean";
  case reduce_kind::max:
    return "max";
  default:
    return "min";
  }
}

/// Reduction over `axes` (normalised, sorted, unique; all axes when reduce_all).
template <reduce_kind Kind>
struct reduce_op {
  static constexpr reduce_kind kind = Kind;
  static constexpr std::string_view name = reduce_name(Kind);
  std::vector<std::int64_t> axes; // as given by the user
  bool keepdim = false;
  bool reduce_all = false;

  /// Input shape with reduced dimensions set to 1: the output's layout in both keepdim modes.
  shape_type kept_shape(const shape_type& in) const {
    shape_type k = in;
    for (std::size_t d : normalized(in.size()))
      k[d] = 1;
    return k;
  }
  std::vector<std::size_t> normalized(std::size_t ndim) const {
    std::vector<std::size_t> r;
    if (reduce_all) {
      for (std::size_t d = 0; d < ndim; ++d)
        r.push_back(d);
      return r;
    }
    for (auto a : axes)
      r.push_back(detail::normalize_axis(kind_name(), a, ndim));
    std::sort(r.begin(), r.end());
    if (std::adjacent_find(r.begin(), r.end()) != r.end())
      throw value_error(std::string(kind_name()) + ": an axis is repeated in the list of axes");
    return r;
  }
  std::string_view kind_name() const { return name; }

  shape_type shape(const shape_type& in) const {
    const auto ax = normalized(in.size());
    if ((kind == reduce_kind::max || kind == reduce_kind::min)) {
      for (auto d : ax)
        if (in[d] == 0)
          throw value_error(std::string(kind_name()) + ": cannot reduce the empty dimension " +
                            std::to_string(d) + " of shape " + to_string(in) + " (no identity for max/min)");
    }
    if (keepdim)
      return kept_shape(in);
    shape_type out;
    for (std::size_t d = 0; d < in.size(); ++d)
      if (!std::binary_search(ax.begin(), ax.end(), d))
        out.push_back(in[d]);
    return out;
  }
  std::uint64_t flops(const shape_type&, const shape_type& in) const { return numel(in); }

  template <class C>
  void forward(C& c) const {
    using T = typename C::value_type;
    const shape_type in(c.in(0).shape().begin(), c.in(0).shape().end());
    const shape_type st = detail::broadcast_strides(kept_shape(in), in);
    const T* x = c.in(0).data();
    T* y = c.out().data();
    const std::size_t n_out = c.out().size();
    const bool is_max = kind == reduce_kind::max;
    const bool is_min = kind == reduce_kind::min;
    std::fill(y, y + n_out,
              is_max ? -std::numeric_limits<T>::infinity()
                     : (is_min ? std::numeric_limits<T>::infinity() : T(0)));
    detail::broadcast_rows<1>(
        in, {&st}, [&](const auto& off, std::size_t o, std::size_t len, const auto& is) {
          T* yo = y + off[0];
          const T* xo = x + o;
          if (is_max || is_min) {
            for (std::size_t j = 0; j < len; ++j) {
              T& m = yo[j * is[0]];
              const T v = xo[j];
              if (std::isnan(v) || (is_max ? v > m : v < m)) // NaN wins and stays, as in PyTorch
                m = std::isnan(m) ? m : v;
            }
          } else if (is[0] == 0) {
            T acc = 0;
            for (std::size_t j = 0; j < len; ++j)
              acc += xo[j];
            *yo += acc;
          } else {
            for (std::size_t j = 0; j < len; ++j)
              yo[j] += xo[j];
          }
        });
    if (kind == reduce_kind::mean) {
      const std::size_t count = n_out ? numel(in) / n_out : 0;
      const T scale = count ? T(1) / static_cast<T>(count) : std::numeric_limits<T>::quiet_NaN();
      for (std::size_t i = 0; i < n_out; ++i)
        y[i] *= scale;
    }
  }

  template <class C>
  void backward(C& c) const {
    using T = typename C::value_type;
    if (!c.needs_grad(0))
      return;
    const shape_type in(c.in(0).shape().begin(), c.in(0).shape().end());
    const shape_type st = detail::broadcast_strides(kept_shape(in), in);
    const T* x = c.in(0).data();
    const T* y = c.out().data();
    const T* g = c.dout().data();
    T* dx = c.din(0).data();
    const std::size_t n_out = c.out().size();
    if (kind == reduce_kind::sum || kind == reduce_kind::mean) {
      // d(sum)/dx_i = 1, d(mean)/dx_i = 1/count: the output gradient broadcast back over the reduced axes
      const T scale = kind == reduce_kind::mean ? static_cast<T>(n_out) / static_cast<T>(numel(in)) : T(1);
      detail::broadcast_rows<1>(in, {&st},
                                [&](const auto& off, std::size_t o, std::size_t len, const auto& is) {
                                  for (std::size_t j = 0; j < len; ++j)
                                    dx[o + j] += scale * g[off[0] + j * is[0]];
                                });
      return;
    }
    // d(max)/dx_i = 1/ties where x_i equals the maximum (the gradient is shared between ties, as
    // torch.amax does), 0 elsewhere.
    std::vector<T> ties(n_out, T(0));
    detail::broadcast_rows<1>(in, {&st},
                              [&](const auto& off, std::size_t o, std::size_t len, const auto& is) {
                                for (std::size_t j = 0; j < len; ++j)
                                  if (x[o + j] == y[off[0] + j * is[0]])
                                    ties[off[0] + j * is[0]] += 1;
                              });
    detail::broadcast_rows<1>(in, {&st},
                              [&](const auto& off, std::size_t o, std::size_t len, const auto& is) {
                                for (std::size_t j = 0; j < len; ++j) {
                                  const std::size_t k = off[0] + j * is[0];
                                  if (x[o + j] == y[k])
                                    dx[o + j] += g[k] / ties[k];
                                }
                              });
  }
};

template <reduce_kind Kind, element T>
basic_tensor<T> reduce(const basic_tensor<T>& x, std::vector<std::int64_t> axes, bool keepdim, bool all) {
  reduce_op<Kind> op;
  op.axes = std::move(axes);
  op.keepdim = keepdim;
  op.reduce_all = all;
  return apply(std::move(op), x);
}

} // namespace ops

/// Sum of all elements (a 0-d tensor).
template <element T>
basic_tensor<T> sum(const basic_tensor<T>& x) {
  return ops::reduce<ops::reduce_kind::sum>(x, {}, false, true);
}
/// Sum over one axis (negative counts from the end); keepdim keeps it with extent 1.
template <element T>
basic_tensor<T> sum(const basic_tensor<T>& x, std::int64_t axis, bool keepdim = false) {
  return ops::reduce<ops::reduce_kind::sum>(x, {axis}, keepdim, false);
}
/// Sum over several axes.
template <element T>
basic_tensor<T> sum(const basic_tensor<T>& x, const std::vector<std::int64_t>& axes, bool keepdim = false) {
  return ops::reduce<ops::reduce_kind::sum>(x, axes, keepdim, false);
}
/// Mean of all elements.
template <element T>
basic_tensor<T> mean(const basic_tensor<T>& x) {
  return ops::reduce<ops::reduce_kind::mean>(x, {}, false, true);
}
/// Mean over one axis.
template <element T>
basic_tensor<T> mean(const basic_tensor<T>& x, std::int64_t axis, bool keepdim = false) {
  return ops::reduce<ops::reduce_kind::mean>(x, {axis}, keepdim, false);
}
/// Mean over several axes.
template <element T>
basic_tensor<T> mean(const basic_tensor<T>& x, const std::vector<std::int64_t>& axes, bool keepdim = false) {
  return ops::reduce<ops::reduce_kind::mean>(x, axes, keepdim, false);
}
/// Maximum of all elements (ties share the gradient).
template <element T>
basic_tensor<T> max(const basic_tensor<T>& x) {
  return ops::reduce<ops::reduce_kind::max>(x, {}, false, true);
}
/// Maximum over one axis.
template <element T>
basic_tensor<T> max(const basic_tensor<T>& x, std::int64_t axis, bool keepdim = false) {
  return ops::reduce<ops::reduce_kind::max>(x, {axis}, keepdim, false);
}
/// Maximum over several axes.
template <element T>
basic_tensor<T> max(const basic_tensor<T>& x, const std::vector<std::int64_t>& axes, bool keepdim = false) {
  return ops::reduce<ops::reduce_kind::max>(x, axes, keepdim, false);
}
/// Minimum of all elements (ties share the gradient).
template <element T>
basic_tensor<T> min(const basic_tensor<T>& x) {
  return ops::reduce<ops::reduce_kind::min>(x, {}, false, true);
}
/// Minimum over one axis.
template <element T>
basic_tensor<T> min(const basic_tensor<T>& x, std::int64_t axis, bool keepdim = false) {
  return ops::reduce<ops::reduce_kind::min>(x, {axis}, keepdim, false);
}
/// Minimum over several axes.
template <element T>
basic_tensor<T> min(const basic_tensor<T>& x, const std::vector<std::int64_t>& axes, bool keepdim = false) {
  return ops::reduce<ops::reduce_kind::min>(x, axes, keepdim, false);
}

} // namespace grad
