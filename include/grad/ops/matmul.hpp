#pragma once
/// @file ops/matmul.hpp
/// matmul with NumPy/PyTorch semantics: 1-d and 2-d operands, batched 3-d and more, broadcast batch.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "grad/core/apply.hpp"
#include "grad/ops/gemm_dispatch.hpp"

namespace grad {
namespace ops {

/// a @ b. A 1-d first operand is a row vector (k) -> (1, k), a 1-d second operand a column vector
/// (k) -> (k, 1); the added dimension is dropped from the result, as in torch.matmul. Leading
/// (batch) dimensions broadcast; the tape reduces gradients of broadcast batches.
struct matmul_op {
  static constexpr std::string_view name = "matmul";

  struct dims {
    shape_type batch; // broadcast batch shape  (B...)
    std::size_t m, k, n;
  };
  static shape_type batch_of(const shape_type& s) {
    return s.size() <= 2 ? shape_type{} : shape_type(s.begin(), s.end() - 2);
  }
  static dims dims_of(const shape_type& a, const shape_type& b) {
    if (a.empty() || b.empty())
      throw shape_error("matmul: both operands need at least one dimension, got " + to_string(a) + " @ " +
                        to_string(b));
    const std::size_t ka = a.back();
    const std::size_t kb = b.size() == 1 ? b[0] : b[b.size() - 2];
    if (ka != kb) {
      // Suggest a transpose only when it would make the product fit.
      std::string hint;
      if (b.size() >= 2 && b.back() == ka)
        hint = "; did you mean to transpose the second?";
      else if (a.size() >= 2 && a[a.size() - 2] == kb)
        hint = "; did you mean to transpose the first?";
      throw shape_error("matmul: inner dimensions differ: " + to_string(a) + " @ " + to_string(b) + " (" +
                        std::to_string(ka) + " vs " + std::to_string(kb) + ")" + hint);
    }
    dims d;
    d.m = a.size() == 1 ? 1 : a[a.size() - 2];
    d.k = ka;
    d.n = b.size() == 1 ? 1 : b.back();
    try {
      d.batch = broadcast_shapes("matmul", batch_of(a), batch_of(b));
    } catch (const shape_error&) { // name the operands, not only their batch parts
      throw shape_error("matmul: batch dimensions " + to_string(batch_of(a)) + " and " +
                        to_string(batch_of(b)) + " of " + to_string(a) + " @ " + to_string(b) +
                        " cannot be broadcast together");
    }
    return d;
  }

  shape_type shape(const shape_type& a, const shape_type& b) const {
    const dims d = dims_of(a, b);
    shape_type out = d.batch;
    if (a.size() > 1)
      out.push_back(d.m);
    if (b.size() > 1)
      out.push_back(d.n);
    return out;
  }
  std::uint64_t flops(const shape_type&, const shape_type& a, const shape_type& b) const {
    const dims d = dims_of(a, b);
    return 2ull * numel(d.batch) * d.m * d.n * d.k;
  }
  /// Backward: one product of the forward's size per operand that needs a gradient.
  std::uint64_t backward_flops(std::uint64_t forward, std::span<const bool> needs) const {
    return forward * (std::uint64_t(needs[0]) + std::uint64_t(needs[1]));
  }
  /// Gradients arrive with the broadcast batch in front of each operand's own matrix dimensions.
  shape_type grad_shape(std::size_t i, const shape_type&, const shape_type& in) const {
    shape_type g = batch_;
    const std::size_t own = std::min<std::size_t>(in.size(), 2);
    g.insert(g.end(), in.end() - static_cast<std::ptrdiff_t>(own), in.end());
    (void)i;
    return g;
  }

  /// Element offsets of each batch entry of an operand with batch shape `own` inside `batch`.
  static std::vector<std::size_t> batch_offsets(const shape_type& batch, const shape_type& own,
                                                std::size_t matrix) {
    std::vector<std::size_t> off;
    off.reserve(numel(batch));
    if (batch.empty()) {
      off.push_back(0);
      return off;
    }
    const shape_type st = detail::broadcast_strides(own, batch);
    detail::broadcast_rows<1>(batch, {&st}, [&](const auto& o, std::size_t, std::size_t len, const auto& is) {
      for (std::size_t j = 0; j < len; ++j)
        off.push_back((o[0] + j * is[0]) * matrix);
    });
    return off;
  }

  template <class C>
  void forward(C& c) {
    using T = typename C::value_type;
    const shape_type as(c.in(0).shape().begin(), c.in(0).shape().end());
    const shape_type bs(c.in(1).shape().begin(), c.in(1).shape().end());
    const dims d = dims_of(as, bs);
    batch_ = d.batch;
    const auto oa = batch_offsets(d.batch, batch_of(as), d.m * d.k);
    const auto ob = batch_offsets(d.batch, batch_of(bs), d.k * d.n);
    const T* a = c.in(0).data();
    const T* b = c.in(1).data();
    T* y = c.out().data();
    for (std::size_t t = 0; t < oa.size(); ++t) // y_t = a_t b_t   (m, k) @ (k, n) -> (m, n)
      detail::gemm_dispatch<T>(false, false, d.m, d.n, d.k, T(1), a + oa[t], d.k, b + ob[t], d.n, T(0),
                               y + t * d.m * d.n, d.n);
  }

  template <class C>
  void backward(C& c) const {
    using T = typename C::value_type;
    const shape_type as(c.in(0).shape().begin(), c.in(0).shape().end());
    const shape_type bs(c.in(1).shape().begin(), c.in(1).shape().end());
    const dims d = dims_of(as, bs);
    const std::size_t nb = numel(d.batch);
    const T* a = c.in(0).data();
    const T* b = c.in(1).data();
    const T* g = c.dout().data();
    const auto oa = batch_offsets(d.batch, batch_of(as), d.m * d.k);
    const auto ob = batch_offsets(d.batch, batch_of(bs), d.k * d.n);
    if (c.needs_grad(0)) { // da_t += g_t b_t^T   (m, n) @ (n, k)
      T* da = c.din(0).data();
      for (std::size_t t = 0; t < nb; ++t)
        detail::gemm_dispatch<T>(false, true, d.m, d.k, d.n, T(1), g + t * d.m * d.n, d.n, b + ob[t], d.n,
                                 T(1), da + t * d.m * d.k, d.k);
    }
    if (c.needs_grad(1)) { // db_t += a_t^T g_t   (k, m) @ (m, n)
      T* db = c.din(1).data();
      for (std::size_t t = 0; t < nb; ++t)
        detail::gemm_dispatch<T>(true, false, d.k, d.n, d.m, T(1), a + oa[t], d.k, g + t * d.m * d.n, d.n,
                                 T(1), db + t * d.k * d.n, d.n);
    }
  }

  shape_type batch_; // broadcast batch shape, saved by forward for grad_shape
};

} // namespace ops

/// Matrix product with torch.matmul semantics (1-d, 2-d, batched, broadcast batch).
template <element T>
basic_tensor<T> matmul(const basic_tensor<T>& a, const basic_tensor<T>& b) {
  return apply(ops::matmul_op{}, a, b);
}

} // namespace grad
