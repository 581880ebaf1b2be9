#pragma once
/// @file profile/flops.hpp
/// Back-of-the-envelope compute and memory for transformer language models, written out term by
/// term so the numbers can be checked by hand:
///
/// - parameters N of a GPT-2 style model (token and position embeddings, per layer 12 C^2 + 13 C,
///   final layer norm, an untied LM head when there is one);
/// - forward FLOPs per token: 2 per multiply-add of every weight matrix (24 C^2 per layer plus the
///   LM head's 2 C V) plus attention, 2 T C for q k^T and 2 T C for the weighted sum of v per layer at
///   context T (half of that on average when only the causal triangle is computed). This is Kaplan
///   et al., "Scaling Laws for Neural Language Models" (2020), table 1, with the LM head added;
/// - training FLOPs: forward + backward ~= 3 x forward, i.e. ~6 N D for D tokens (same source, and
///   Hoffmann et al. 2022, appendix F);
/// - memory: 4 bytes per float parameter for the weights, as much again for the gradients, twice
///   that for Adam's two moments.

#include <cstdint>

namespace grad {

/// Compute and memory of one transformer configuration (see the file comment for the formulas).
struct transformer_estimate {
  std::uint64_t parameters = 0;               ///< all parameters (the tied LM head counted once)
  std::uint64_t embedding_parameters = 0;     ///< token + position embeddings
  std::uint64_t non_embedding_parameters = 0; ///< parameters - embedding_parameters
  double forward_flops_per_token = 0;         ///< at the given context length
  double matmul_flops_per_token = 0;          ///< of which the weight matrices (incl. LM head)
  double attention_flops_per_token = 0;       ///< of which q k^T and the weighted sum of v
  double weight_bytes = 0;                    ///< float32 weights
  double gradient_bytes = 0;                  ///< float32 gradients
  double adam_state_bytes = 0;                ///< Adam's two float32 moments

  /// Forward FLOPs for `tokens` tokens.
  double forward_flops(double tokens) const noexcept { return forward_flops_per_token * tokens; }
  /// Training FLOPs (forward + backward, backward ~= 2 x forward) for `tokens` tokens: ~6 N D.
  double training_flops(double tokens) const noexcept { return 3.0 * forward_flops_per_token * tokens; }
};

/// Options of estimate_transformer.
struct estimate_options {
  bool causal = true;          ///< attention computes only the causal triangle (average context (T+1)/2)
  bool include_lm_head = true; ///< count the LM head's product (2 C V per token)
};

/// Estimate for a GPT-2 style model (pre-LN blocks, 4x MLP, learned positions) given its
/// configuration: any type with vocab_size, n_positions, n_embd, n_layer and tie_word_embeddings
/// (grad::models::gpt_config has them), at `context` tokens of context (0: n_positions).
template <class Config>
transformer_estimate estimate_transformer(const Config& cfg, std::uint64_t context = 0,
                                          const estimate_options& opt = {}) {
  const double c = double(cfg.n_embd), l = double(cfg.n_layer), v = double(cfg.vocab_size);
  const double t = double(context != 0 ? context : cfg.n_positions);
  transformer_estimate e;
  e.embedding_parameters =
      std::uint64_t(cfg.vocab_size) * cfg.n_embd + std::uint64_t(cfg.n_positions) * cfg.n_embd;
  // Per layer: ln_1, ln_2 (2 C each); c_attn C x 3C + 3C; attn c_proj C x C + C; c_fc C x 4C + 4C;
  // mlp c_proj 4C x C + C: 12 C^2 + 13 C. Final layer norm 2 C. Untied head V C.
  const std::uint64_t cc = cfg.n_embd;
  std::uint64_t body = std::uint64_t(cfg.n_layer) * (12 * cc * cc + 13 * cc) + 2 * cc;
  if (!cfg.tie_word_embeddings)
    body += std::uint64_t(cfg.vocab_size) * cfg.n_embd;
  e.non_embedding_parameters = body;
  e.parameters = e.embedding_parameters + body;
  e.matmul_flops_per_token = 24.0 * c * c * l + (opt.include_lm_head ? 2.0 * c * v : 0.0);
  const double attended = opt.causal ? (t + 1.0) / 2.0 : t;
  e.attention_flops_per_token = 4.0 * attended * c * l;
  e.forward_flops_per_token = e.matmul_flops_per_token + e.attention_flops_per_token;
  const double n = double(e.parameters);
  e.weight_bytes = 4.0 * n;
  e.gradient_bytes = 4.0 * n;
  e.adam_state_bytes = 8.0 * n;
  return e;
}

/// Training FLOPs by the rule of thumb 6 N D (N parameters, D tokens).
constexpr double training_flops(double parameters, double tokens) noexcept {
  return 6.0 * parameters * tokens;
}

/// Days a run of `flops` takes on `devices` accelerators of `peak_flops_per_second` each at
/// utilisation `mfu` (model FLOPs utilisation, 0..1).
constexpr double training_days(double flops, double devices, double peak_flops_per_second,
                               double mfu) noexcept {
  return flops / (devices * peak_flops_per_second * mfu) / 86400.0;
}

} // namespace grad
