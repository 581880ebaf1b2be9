#pragma once
/// @file models/gpt_layers.hpp
/// The layers of GPT-2 (Radford et al. 2019, "Language models are unsupervised multitask learners"),
/// laid out as Hugging Face transformers' modeling_gpt2.py stores them, so checkpoints map 1:1:
/// - `affine` / `conv1d`: y = x W + b with W stored [in, out] (GPT-2's Conv1D, the transpose of
///   nn.Linear's layout), one GEMM without a transposed copy;
/// - `gpt_attention` (c_attn, c_proj), `gpt_mlp` (c_fc, c_proj) and the pre-LayerNorm `gpt_block`.

#include <cmath>
#include <cstdint>
#include <string>

#include "grad/core/apply.hpp"
#include "grad/core/factories.hpp"
#include "grad/core/generator.hpp"
#include "grad/nn/init.hpp"
#include "grad/nn/module.hpp"
#include "grad/nn/norm.hpp"
#include "grad/ops/activation.hpp"
#include "grad/ops/affine.hpp"
#include "grad/ops/arithmetic.hpp"
#include "grad/ops/attention.hpp"
#include "grad/ops/dropout.hpp"
#include "grad/ops/gemm_dispatch.hpp"

namespace grad {
namespace models {

/// GPT-2's Conv1D: a linear layer y = x W + b whose weight is stored (in, out); weight ~ N(0, std),
/// bias zero.
template <element T = float>
class basic_conv1d : public nn::module_base<basic_conv1d<T>, T> {
public:
  basic_tensor<T> weight; ///< (in, out)
  basic_tensor<T> bias;   ///< (out)

  /// A layer from in to out features with weight ~ N(0, std) drawn from gen and a zero bias.
  basic_conv1d(std::size_t in, std::size_t out, double std, generator& gen)
      : weight(grad::zeros<T>({in, out}, {.requires_grad = true})),
        bias(grad::zeros<T>({out}, {.requires_grad = true})) {
    nn::init::normal(weight, 0.0, std, gen);
  }
  /// x (..., in) -> (..., out).
  basic_tensor<T> forward(const basic_tensor<T>& x) const { return grad::affine(x, weight, bias); }
  /// Lists weight and bias.
  template <class V>
  void visit(V& v) {
    v.param("weight", weight);
    v.param("bias", bias);
  }
};

/// Causal self-attention of GPT-2: c_attn (C -> 3C), fused attention over n_head heads, c_proj (C -> C).
template <element T = float>
class basic_gpt_attention : public nn::module_base<basic_gpt_attention<T>, T> {
public:
  basic_conv1d<T> c_attn; ///< (C, 3C): q, k, v packed
  basic_conv1d<T> c_proj; ///< (C, C)
  std::size_t n_head;     ///< number of heads
  double dropout = 0;     ///< attention-weight and output dropout (training)

  /// Layers for width c and n_head heads; c_proj's weights scaled by proj_std (GPT-2: 0.02 / sqrt(2 L)).
  basic_gpt_attention(std::size_t c, std::size_t nh, double p, double std, double proj_std, generator& gen)
      : c_attn(c, 3 * c, std, gen), c_proj(c, c, proj_std, gen), n_head(nh), dropout(p) {}
  /// x (B, T, C) -> (B, T, C); gen draws the dropout masks when training.
  basic_tensor<T> forward(const basic_tensor<T>& x, generator& gen) const {
    const bool tr = this->is_training();
    auto y = grad::causal_attention(c_attn(x), n_head, dropout, tr, gen); // (B, T, C)
    return grad::dropout(c_proj(y), dropout, tr, gen);
  }
  /// Lists c_attn and c_proj.
  template <class V>
  void visit(V& v) {
    v.child("c_attn", c_attn);
    v.child("c_proj", c_proj);
  }
};

/// GPT-2's MLP: c_fc (C -> 4C), GELU, c_proj (4C -> C).
template <element T = float>
class basic_gpt_mlp : public nn::module_base<basic_gpt_mlp<T>, T> {
public:
  basic_conv1d<T> c_fc;                                  ///< (C, 4C)
  basic_conv1d<T> c_proj;                                ///< (4C, C)
  gelu_approximate approximate = gelu_approximate::tanh; ///< tanh: "gelu_new"; none: exact "gelu"
  double dropout = 0;                                    ///< output dropout (training)

  /// Layers for width c; c_proj's weights scaled by proj_std.
  basic_gpt_mlp(std::size_t c, gelu_approximate a, double p, double std, double proj_std, generator& gen)
      : c_fc(c, 4 * c, std, gen), c_proj(4 * c, c, proj_std, gen), approximate(a), dropout(p) {}
  /// x (B, T, C) -> (B, T, C).
  basic_tensor<T> forward(const basic_tensor<T>& x, generator& gen) const {
    return grad::dropout(c_proj(grad::gelu(c_fc(x), approximate)), dropout, this->is_training(), gen);
  }
  /// Lists c_fc and c_proj.
  template <class V>
  void visit(V& v) {
    v.child("c_fc", c_fc);
    v.child("c_proj", c_proj);
  }
};

/// One pre-LayerNorm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x)).
template <element T = float>
class basic_gpt_block : public nn::module_base<basic_gpt_block<T>, T> {
public:
  nn::basic_layer_norm<T> ln_1; ///< (C)
  basic_gpt_attention<T> attn;  ///< self-attention
  nn::basic_layer_norm<T> ln_2; ///< (C)
  basic_gpt_mlp<T> mlp;         ///< feed-forward

  /// A block of width c with nh heads.
  basic_gpt_block(std::size_t c, std::size_t nh, double eps, gelu_approximate a, double p, double std,
                  double proj_std, generator& gen)
      : ln_1(c, eps), attn(c, nh, p, std, proj_std, gen), ln_2(c, eps), mlp(c, a, p, std, proj_std, gen) {}
  /// x (B, T, C) -> (B, T, C).
  basic_tensor<T> forward(const basic_tensor<T>& x, generator& gen) const {
    auto h = x + attn.forward(ln_1(x), gen);
    return h + mlp.forward(ln_2(h), gen);
  }
  /// Lists ln_1, attn, ln_2, mlp.
  template <class V>
  void visit(V& v) {
    v.child("ln_1", ln_1);
    v.child("attn", attn);
    v.child("ln_2", ln_2);
    v.child("mlp", mlp);
  }
};

} // namespace models
} // namespace grad
