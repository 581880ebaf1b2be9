#pragma once
/// @file ops/attention.hpp
/// Fused causal multi-head self-attention on packed q, k, v (GPT-2's c_attn output), with a
/// hand-written backward (after llm.c's attention_forward / attention_backward, Karpathy 2024):
///
///     qkv (B, T, 3C) -> q, k, v (B, NH, T, HS) -> softmax(q k^T / sqrt(HS) + causal mask) v -> (B, T, C)
///
/// Heads are read in place from the packed rows (a leading dimension of 3C), so no split or permute
/// copy is made; every (batch, head) pair is one task on the thread pool, and its products run on
/// grad's GEMM. The masked upper triangle is skipped: rows are processed in blocks of `attn_block` and
/// a block only multiplies the columns up to its last row. The softmax probabilities (B, NH, T, T) are
/// saved for backward (with attention dropout, also the dropped-out copy that multiplied v).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "grad/core/apply.hpp"
#include "grad/core/generator.hpp"
#include "grad/kernels/gemm.hpp"
#include "grad/kernels/parallel.hpp"
#include "grad/kernels/softmax.hpp"

namespace grad {
namespace detail {

/// Rows per block of the causal products: a block of rows [i0, i1) only needs keys [0, i1).
inline constexpr std::size_t attn_block = 64;

/// Geometry of one attention call.
struct attn_dims {
  std::size_t b = 0, t = 0, c = 0, nh = 0, hs = 0;
};

/// A buffer of n elements left uninitialised (the kernels overwrite it).
template <class T>
std::shared_ptr<T[]> attn_buffer(std::size_t n) {
  return std::shared_ptr<T[]>(std::make_unique_for_overwrite<T[]>(std::max<std::size_t>(n, 1)));
}

} // namespace detail

namespace ops {

/// Causal self-attention: qkv (B, T, 3C) with q, k, v packed along the last axis (as GPT-2's c_attn
/// gives them, head h at columns h HS .. (h + 1) HS of each third) -> y (B, T, C).
/// y[b, t, h] = sum_{s <= t} P[b, h, t, s] v[b, s, h] with P = softmax_s(q[b, t, h] . k[b, s, h] / sqrt(HS)).
/// With dropout_p > 0 (training), P is multiplied by a mask of kept entries scaled by 1 / (1 - p)
/// before it multiplies v (as Hugging Face's GPT-2 attn_dropout does).
template <class T>
struct causal_attention_op {
  static constexpr std::string_view name = "causal_attention";
  std::size_t n_head = 1;
  double dropout_p = 0;                 // probability of zeroing an attention weight (training only)
  std::uint64_t seed = 0;               // seed of the dropout mask
  std::shared_ptr<T[]> att;             // (B, NH, T, T) softmax probabilities, zero above the diagonal
  std::shared_ptr<T[]> attd;            // (B, NH, T, T) probabilities after dropout (only with dropout_p > 0)
  std::shared_ptr<std::uint8_t[]> keep; // (B, NH, T, T) 1 where a weight is kept (only with dropout_p > 0)

  shape_type shape(const shape_type& qkv) const {
    if (n_head == 0)
      throw value_error("causal_attention: n_head must be positive");
    if (qkv.size() != 3 || qkv[2] % 3 != 0)
      throw shape_error(
          "causal_attention: input must be (B, T, 3C) with q, k, v packed along the last axis, got " +
          to_string(qkv));
    const std::size_t c = qkv[2] / 3;
    if (c % n_head != 0)
      throw shape_error("causal_attention: C = " + std::to_string(c) + " of input " + to_string(qkv) +
                        " is not divisible by n_head = " + std::to_string(n_head));
    if (!(dropout_p >= 0 && dropout_p < 1))
      throw value_error("causal_attention: dropout probability must be in [0, 1), got " +
                        std::to_string(dropout_p));
    return {qkv[0], qkv[1], c};
  }
  // Causal work only: q k^T and P v are 2 HS multiply-adds per (query, key <= query) pair each, and
  // the scaled softmax about 5 per pair.
  std::uint64_t flops(const shape_type& out, const shape_type&) const {
    const std::uint64_t bt = out[0], t = out[1], c = out[2];
    const std::uint64_t pairs = bt * n_head * t * (t + 1) / 2;
    return pairs * (4 * (n_head ? c / n_head : 0) + 5);
  }
  /// Backward per causal pair: dP = dO v^T, dv = P^T dO, dq = dS k and dk = dS^T q (2 HS multiply-adds
  /// each) and the softmax backward: about twice the forward.
  std::uint64_t backward_flops(std::uint64_t forward, std::span<const bool> needs) const {
    return needs[0] ? 2 * forward : 0;
  }

  detail::attn_dims dims(const shape_type& qkv) const {
    return {qkv[0], qkv[1], qkv[2] / 3, n_head, qkv[2] / 3 / n_head};
  }

  template <class C>
  void forward(C& c) {
    const auto d = dims(detail::to_shape<T>(c.in(0).shape()));
    const std::size_t tt = d.t * d.t;
    att = detail::attn_buffer<T>(d.b * d.nh * tt);
    const bool drop = dropout_p > 0;
    if (drop) {
      attd = detail::attn_buffer<T>(d.b * d.nh * tt);
      keep = detail::attn_buffer<std::uint8_t>(d.b * d.nh * tt);
      // The mask is drawn serially in a fixed order, so it does not depend on the thread count.
      generator gen(seed);
      for (std::size_t bh = 0; bh < d.b * d.nh; ++bh)
        for (std::size_t i = 0; i < d.t; ++i)
          for (std::size_t j = 0; j < d.t; ++j)
            keep[bh * tt + i * d.t + j] = j <= i && gen.uniform() >= dropout_p;
    }
    const T dscale = static_cast<T>(1.0 / (1.0 - dropout_p));
    const T* qkv = c.in(0).data();
    T* y = c.out().data();
    const T scale = T(1) / std::sqrt(static_cast<T>(d.hs));
    const std::size_t ld = 3 * d.c;
    detail::parallel_tasks(d.b * d.nh, get_num_threads(), [&](std::size_t bh) {
      const std::size_t b = bh / d.nh, h = bh % d.nh;
      const T* q = qkv + b * d.t * ld + h * d.hs; // (T, HS), leading dimension 3C
      const T* k = q + d.c;
      const T* v = q + 2 * d.c;
      T* p = att.get() + bh * tt; // (T, T)
      T* out = y + b * d.t * d.c + h * d.hs;
      for (std::size_t i0 = 0; i0 < d.t; i0 += detail::attn_block) {
        const std::size_t i1 = std::min(d.t, i0 + detail::attn_block);
        // S[i0:i1, 0:i1] = q[i0:i1] k[0:i1]^T / sqrt(HS)
        kernels::gemm<T>(false, true, i1 - i0, i1, d.hs, scale, q + i0 * ld, ld, k, ld, T(0), p + i0 * d.t,
                         d.t);
      }
      for (std::size_t i = 0; i < d.t; ++i) { // causal softmax: row i sees keys 0..i
        T* row = p + i * d.t;
        kernels::softmax_last<T>(row, row, 1, i + 1);
        std::fill(row + i + 1, row + d.t, T(0));
      }
      const T* pv = p;
      if (drop) {
        T* m = attd.get() + bh * tt;
        const std::uint8_t* kp = keep.get() + bh * tt;
        for (std::size_t e = 0; e < tt; ++e)
          m[e] = kp[e] ? p[e] * dscale : T(0);
        pv = m;
      }
      for (std::size_t i0 = 0; i0 < d.t; i0 += detail::attn_block) {
        const std::size_t i1 = std::min(d.t, i0 + detail::attn_block);
        // y[i0:i1] = P[i0:i1, 0:i1] v[0:i1]   (P is zero for keys after the query)
        kernels::gemm<T>(false, false, i1 - i0, d.hs, i1, T(1), pv + i0 * d.t, d.t, v, ld, T(0),
                         out + i0 * d.c, d.c);
      }
    });
  }

  template <class C>
  void backward(C& c) const {
    if (!c.needs_grad(0))
      return;
    const auto d = dims(detail::to_shape<T>(c.in(0).shape()));
    const std::size_t tt = d.t * d.t;
    const T* qkv = c.in(0).data();
    const T* g = c.dout().data(); // (B, T, C)
    T* dqkv = c.din(0).data();    // (B, T, 3C)
    const T scale = T(1) / std::sqrt(static_cast<T>(d.hs));
    const std::size_t ld = 3 * d.c;
    const bool drop = dropout_p > 0;
    const T dscale = static_cast<T>(1.0 / (1.0 - dropout_p));
    const std::size_t tasks = d.b * d.nh;
    // dP and dS of each task; one (T, T) pair per task keeps the result independent of scheduling.
    auto scratch = detail::attn_buffer<T>(2 * tasks * tt);
    detail::parallel_tasks(tasks, get_num_threads(), [&](std::size_t bh) {
      const std::size_t b = bh / d.nh, h = bh % d.nh;
      const std::size_t off = b * d.t * ld + h * d.hs;
      const T *q = qkv + off, *k = q + d.c, *v = q + 2 * d.c;
      T *dq = dqkv + off, *dk = dq + d.c, *dv = dq + 2 * d.c;
      const T* go = g + b * d.t * d.c + h * d.hs; // (T, HS), leading dimension C
      const T* p = att.get() + bh * tt;
      const T* pv = drop ? attd.get() + bh * tt : p;
      T* dp = scratch.get() + 2 * bh * tt;
      T* ds = dp + tt;
      // dv += Pv^T dy   (y = Pv v  =>  dy/dv = Pv^T). Key block [s0, s1) only gets gradient from
      // queries s0 .. T - 1 (Pv is zero above the diagonal), so its product starts at row s0.
      for (std::size_t s0 = 0; s0 < d.t; s0 += detail::attn_block) {
        const std::size_t s1 = std::min(d.t, s0 + detail::attn_block);
        kernels::gemm<T>(true, false, s1 - s0, d.hs, d.t - s0, T(1), pv + s0 * d.t + s0, d.t, go + s0 * d.c,
                         d.c, T(1), dv + s0 * ld, ld);
      }
      for (std::size_t i0 = 0; i0 < d.t; i0 += detail::attn_block) {
        const std::size_t i1 = std::min(d.t, i0 + detail::attn_block);
        // dPv[i0:i1, 0:i1] = dy[i0:i1] v[0:i1]^T
        kernels::gemm<T>(false, true, i1 - i0, i1, d.hs, T(1), go + i0 * d.c, d.c, v, ld, T(0), dp + i0 * d.t,
                         d.t);
      }
      for (std::size_t i = 0; i < d.t; ++i) {
        T* dpr = dp + i * d.t;
        if (drop) { // Pv = P * keep / (1 - p)  =>  dP = dPv * keep / (1 - p)
          const std::uint8_t* kr = keep.get() + bh * tt + i * d.t;
          for (std::size_t j = 0; j <= i; ++j)
            dpr[j] = kr[j] ? dpr[j] * dscale : T(0);
        }
        T* dsr = ds + i * d.t;
        std::fill(dsr, dsr + d.t, T(0));
        // softmax backward on the causal row: dS_j = P_j (dP_j - sum_k P_k dP_k), j <= i
        kernels::softmax_last_backward<T>(p + i * d.t, dpr, dsr, 1, i + 1);
      }
      // S = q k^T scale  =>  dq += dS k scale, dk += dS^T q scale (dS is zero above the diagonal)
      for (std::size_t i0 = 0; i0 < d.t; i0 += detail::attn_block) {
        const std::size_t i1 = std::min(d.t, i0 + detail::attn_block);
        kernels::gemm<T>(false, false, i1 - i0, d.hs, i1, scale, ds + i0 * d.t, d.t, k, ld, T(1),
                         dq + i0 * ld, ld);
      }
      for (std::size_t s0 = 0; s0 < d.t; s0 += detail::attn_block) { // dk: key block [s0, s1), queries >= s0
        const std::size_t s1 = std::min(d.t, s0 + detail::attn_block);
        kernels::gemm<T>(true, false, s1 - s0, d.hs, d.t - s0, scale, ds + s0 * d.t + s0, d.t, q + s0 * ld,
                         ld, T(1), dk + s0 * ld, ld);
      }
    });
  }
};

} // namespace ops

/// Causal multi-head self-attention of packed qkv (B, T, 3C) with n_head heads -> (B, T, C):
/// softmax(q k^T / sqrt(HS) with keys after each query masked out) v, heads concatenated.
/// Throws shape_error unless qkv is 3-d with a last extent 3C and C divisible by n_head.
template <element T>
basic_tensor<T> causal_attention(const basic_tensor<T>& qkv, std::size_t n_head) {
  return apply(ops::causal_attention_op<T>{n_head, 0.0, 0, {}, {}, {}}, qkv);
}

/// Causal self-attention with dropout of the attention weights (probability p, drawn from gen) when
/// training; without training or with p = 0 it is causal_attention(qkv, n_head).
template <element T>
basic_tensor<T> causal_attention(const basic_tensor<T>& qkv, std::size_t n_head, double p, bool training,
                                 generator& gen) {
  if (!training || p == 0)
    return causal_attention(qkv, n_head);
  return apply(ops::causal_attention_op<T>{n_head, p, gen.next_u64(), {}, {}, {}}, qkv);
}

} // namespace grad
