#pragma once
/// @file core/broadcast.hpp
/// Loops over broadcast shapes, and the reduction of a broadcast gradient back to an input's shape
/// (the tape does that once for every op, DESIGN.md section 3).

#include <array>
#include <cstddef>
#include <vector>

#include "grad/core/shape.hpp"

namespace grad::detail {

/// Calls f(offsets, out_offset, len, inner_strides) once per row (last dimension) of `out`, where
/// offsets[k] is operand k's element offset at the row start and inner_strides[k] its stride along
/// the last dimension (0 when broadcast). Operand strides come from broadcast_strides().
template <std::size_t K, class F>
inline void broadcast_rows(const shape_type& out, const std::array<const shape_type*, K>& st, F&& f) {
  const std::size_t nd = out.size();
  const std::size_t total = numel(out);
  std::array<std::size_t, K> off{};
  std::array<std::size_t, K> is{};
  if (total == 0)
    return;
  if (nd == 0) {
    f(off, std::size_t(0), std::size_t(1), is);
    return;
  }
  const std::size_t inner = out[nd - 1];
  for (std::size_t k = 0; k < K; ++k)
    is[k] = (*st[k])[nd - 1];
  const std::size_t rows = total / inner;
  std::vector<std::size_t> idx(nd - 1, 0);
  for (std::size_t r = 0; r < rows; ++r) {
    f(off, r * inner, inner, is);
    for (std::size_t d = nd - 1; d-- > 0;) {
      ++idx[d];
      for (std::size_t k = 0; k < K; ++k)
        off[k] += (*st[k])[d];
      if (idx[d] < out[d])
        break;
      for (std::size_t k = 0; k < K; ++k)
        off[k] -= (*st[k])[d] * out[d];
      idx[d] = 0;
    }
  }
}

/// dst (shape `to`) += g (shape `from`) summed over the dimensions along which `to` was broadcast.
template <class T>
inline void sum_to_accumulate(const T* g, const shape_type& from, T* dst, const shape_type& to) {
  const shape_type st = broadcast_strides(to, from);
  broadcast_rows<1>(from, {&st}, [&](const auto& off, std::size_t goff, std::size_t len, const auto& is) {
    T* d = dst + off[0];
    const T* s = g + goff;
    if (is[0] == 0) {
      T acc = 0;
      for (std::size_t i = 0; i < len; ++i)
        acc += s[i];
      *d += acc;
    } else {
      for (std::size_t i = 0; i < len; ++i)
        d[i] += s[i];
    }
  });
}

} // namespace grad::detail
