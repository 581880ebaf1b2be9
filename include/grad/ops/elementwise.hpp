#pragma once
/// @file ops/elementwise.hpp
/// Loops shared by the elementwise ops: unary maps, and binary/ternary maps with broadcasting.
/// FLOP convention of all elementwise ops: one FLOP per output element and arithmetic step
/// (a transcendental function counts as one).

#include <array>
#include <cstddef>

#include "grad/core/apply.hpp"
#include "grad/kernels/binary.hpp"
#include "grad/kernels/unary.hpp"

namespace grad::detail {

/// out[i] = f(in(0)[i]).
template <class Ctx, class F>
inline void unary_forward(Ctx& c, F f) {
  const auto* x = c.in(0).data();
  auto* y = c.out().data();
  const std::size_t n = c.out().size();
  for (std::size_t i = 0; i < n; ++i)
    y[i] = f(x[i]);
}

/// din(0)[i] += f(x[i], y[i], dout[i]): the chain rule, with both the input and the saved output at hand.
template <class Ctx, class F>
inline void unary_backward(Ctx& c, F f) {
  if (!c.needs_grad(0))
    return;
  const auto* x = c.in(0).data();
  const auto* y = c.out().data();
  const auto* g = c.dout().data();
  auto* dx = c.din(0).data();
  const std::size_t n = c.out().size();
  for (std::size_t i = 0; i < n; ++i)
    dx[i] += f(x[i], y[i], g[i]);
}

/// out = kernel(in(0)) with a vectorized kernel of signature kernel(const T* x, T* y, n).
template <class Ctx, class K>
inline void unary_forward_kernel(Ctx& c, K kernel) {
  kernel(c.in(0).data(), c.out().data(), c.out().size());
}

/// din(0) += kernel-computed term; `from_output` picks whether the kernel reads the saved output y
/// (exp, tanh, sigmoid, sqrt) or the input x (log, relu, abs): kernel(const T* xy, const T* dy, T* dx, n).
template <class Ctx, class K>
inline void unary_backward_kernel(Ctx& c, bool from_output, K kernel) {
  if (!c.needs_grad(0))
    return;
  kernel(from_output ? c.out().data() : c.in(0).data(), c.dout().data(), c.din(0).data(), c.out().size());
}

/// True when no input of an elementwise op is broadcast (a flat, vectorizable loop serves).
template <class Ctx>
inline bool is_flat(const Ctx& c) {
  for (std::size_t k = 0; k < c.size(); ++k)
    if (c.in(k).size() != c.out().size())
      return false;
  return true;
}

/// Flat forward of a binary op on a vectorized kernel(a, b, out, n); false when an input is broadcast.
template <class Ctx, class K>
inline bool flat_binary_forward(Ctx& c, K kernel) {
  if (!is_flat(c))
    return false;
  kernel(c.in(0).data(), c.in(1).data(), c.out().data(), c.out().size());
  return true;
}

/// Flat backward of a binary op: ka(dout, din0, n) and kb(dout, din1, n) run for the inputs that need
/// a gradient; false when an input is broadcast (then the generic loop serves).
template <class Ctx, class KA, class KB>
inline bool flat_binary_backward(Ctx& c, KA ka, KB kb) {
  if (!is_flat(c))
    return false;
  const std::size_t n = c.out().size();
  if (c.needs_grad(0))
    ka(c.dout().data(), c.din(0).data(), n);
  if (c.needs_grad(1))
    kb(c.dout().data(), c.din(1).data(), n);
  return true;
}

/// Calls f(out_index, offset_0, ..., offset_{K-1}) for every element of the broadcast output, where
/// offset_k indexes input k. A flat loop when no input is broadcast.
template <std::size_t K, class Ctx, class F>
inline void broadcast_each(const Ctx& c, F f) {
  const auto& out = c.out();
  const std::size_t n = out.size();
  bool flat = true;
  for (std::size_t k = 0; k < K; ++k)
    flat = flat && c.in(k).size() == n; // equal element count: same shape up to leading ones
  if (flat) {
    for (std::size_t i = 0; i < n; ++i)
      [&]<std::size_t... I>(std::index_sequence<I...>) {
        f(i, ((void)I, i)...);
      }
    (std::make_index_sequence<K>{});
    return;
  }
  const shape_type os(out.shape().begin(), out.shape().end());
  std::array<shape_type, K> st;
  std::array<const shape_type*, K> sp;
  for (std::size_t k = 0; k < K; ++k) {
    st[k] = broadcast_strides(shape_type(c.in(k).shape().begin(), c.in(k).shape().end()), os);
    sp[k] = &st[k];
  }
  broadcast_rows<K>(os, sp, [&](const auto& off, std::size_t o, std::size_t len, const auto& is) {
    for (std::size_t j = 0; j < len; ++j)
      [&]<std::size_t... I>(std::index_sequence<I...>) {
        f(o + j, (off[I] + j * is[I])...);
      }
    (std::make_index_sequence<K>{});
  });
}

/// out = f(a, b) elementwise with broadcasting.
template <class Ctx, class F>
inline void binary_forward(Ctx& c, F f) {
  const auto* a = c.in(0).data();
  const auto* b = c.in(1).data();
  auto* y = c.out().data();
  broadcast_each<2>(c, [&](std::size_t o, std::size_t i, std::size_t j) { y[o] = f(a[i], b[j]); });
}

/// din(0) += fa(a, b, y, g), din(1) += fb(a, b, y, g) at every output element (gradients arrive in
/// the output's shape; the tape reduces them to the inputs' shapes).
template <class Ctx, class FA, class FB>
inline void binary_backward(Ctx& c, FA fa, FB fb) {
  const auto* a = c.in(0).data();
  const auto* b = c.in(1).data();
  const auto* y = c.out().data();
  const auto* g = c.dout().data();
  auto* da = c.needs_grad(0) ? c.din(0).data() : nullptr;
  auto* db = c.needs_grad(1) ? c.din(1).data() : nullptr;
  broadcast_each<2>(c, [&](std::size_t o, std::size_t i, std::size_t j) {
    if (da)
      da[o] += fa(a[i], b[j], y[o], g[o]);
    if (db)
      db[o] += fb(a[i], b[j], y[o], g[o]);
  });
}

/// Broadcast output shape of an elementwise op, for use in shape rules.
inline shape_type elementwise_shape(std::string_view op, const shape_type& a, const shape_type& b) {
  return broadcast_shapes(op, a, b);
}

} // namespace grad::detail
