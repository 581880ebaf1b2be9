#pragma once
/// @file models/gpt.hpp
/// A GPT-2 compatible language model (Radford et al. 2019): token and learned position embeddings,
/// n_layer pre-LayerNorm blocks (causal self-attention, 4x MLP with GELU), a final LayerNorm and an LM
/// head tied to the token embedding. Parameter names and layouts are Hugging Face's GPT-2 ones
/// (`wte.weight`, `h.0.attn.c_attn.weight` stored [in, out], ...), so checkpoints map one to one.
///
/// Two paths:
/// - `forward(ids)` records on the tape (training, with dropout when training and dropout > 0);
/// - `make_cache` + `next_logits` decode incrementally with a KV cache, without the tape: plain kernel
///   calls, one pass over the weights per step, and only the last position's logits.
///
///     grad::generator gen(0);
///     grad::models::gpt model({.vocab_size = 65, .n_positions = 128, .n_embd = 128, .n_layer = 4, .n_head =
///     4}, gen); auto logits = model.forward(ids);                       // (B, T, V) auto cache =
///     model.make_cache(1, 128); model.next_logits(cache, prompt, prompt.size(), out);  // out: V logits of
///     the next token

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "grad/core/error.hpp"
#include "grad/core/factories.hpp"
#include "grad/core/generator.hpp"
#include "grad/core/index_tensor.hpp"
#include "grad/models/gpt_cache.hpp"
#include "grad/models/gpt_infer.hpp"
#include "grad/models/gpt_layers.hpp"
#include "grad/nn/init.hpp"
#include "grad/nn/module.hpp"
#include "grad/nn/norm.hpp"
#include "grad/ops/embedding.hpp"
#include "grad/ops/linear.hpp"

namespace grad::models {

/// Hyper-parameters of a GPT-2 model; the defaults are GPT-2 small (124M parameters).
struct gpt_config {
  std::size_t vocab_size = 50257;      ///< V: number of tokens
  std::size_t n_positions = 1024;      ///< longest sequence (rows of the position embedding)
  std::size_t n_embd = 768;            ///< C: width of the residual stream
  std::size_t n_layer = 12;            ///< number of blocks
  std::size_t n_head = 12;             ///< NH: attention heads (C % NH == 0)
  double layer_norm_epsilon = 1e-5;    ///< eps of every LayerNorm
  std::string activation = "gelu_new"; ///< "gelu_new" (tanh approximation) or "gelu" (exact erf)
  bool tie_word_embeddings = true;     ///< LM head shares wte.weight (no lm_head.weight)
  double dropout = 0.0;                ///< embedding, attention and residual dropout (training only)

  /// Throws value_error naming the first invalid field.
  void validate() const {
    auto fail = [](const std::string& m) { throw value_error("gpt_config: " + m); };
    if (vocab_size == 0)
      fail("vocab_size must be positive");
    if (n_positions == 0)
      fail("n_positions must be positive");
    if (n_embd == 0)
      fail("n_embd must be positive");
    if (n_layer == 0)
      fail("n_layer must be positive");
    if (n_head == 0)
      fail("n_head must be positive");
    if (n_embd % n_head != 0)
      fail("n_embd = " + std::to_string(n_embd) + " is not divisible by n_head = " + std::to_string(n_head));
    if (!(layer_norm_epsilon > 0))
      fail("layer_norm_epsilon must be positive, got " + std::to_string(layer_norm_epsilon));
    if (activation != "gelu_new" && activation != "gelu")
      fail("unknown activation \"" + activation + "\" (use \"gelu_new\" or \"gelu\")");
    if (!(dropout >= 0 && dropout < 1))
      fail("dropout must be in [0, 1), got " + std::to_string(dropout));
  }
  /// GELU form of `activation`.
  gelu_approximate gelu() const {
    return activation == "gelu" ? gelu_approximate::none : gelu_approximate::tanh;
  }
};

/// GPT-2 language model: ids (B, T) -> logits (B, T, V). A grad::nn module (parameters named as in
/// Hugging Face's GPT2LMHeadModel without the "transformer." prefix).
template <class T = float>
class basic_gpt : public nn::module_base<basic_gpt<T>, T> {
public:
  using cache_type = gpt_kv_cache<T>; ///< the KV cache of next_logits

  basic_tensor<T> wte;               ///< (V, C) token embedding, also the LM head when tied
  basic_tensor<T> wpe;               ///< (n_positions, C) position embedding
  std::vector<basic_gpt_block<T>> h; ///< the blocks h.0 ... h.{L-1}
  nn::basic_layer_norm<T> ln_f;      ///< (C) final layer norm
  basic_tensor<T> lm_head;           ///< (V, C), undefined when tie_word_embeddings

  /// A model with GPT-2's initialisation: every weight N(0, 0.02) except the residual projections
  /// (attn.c_proj, mlp.c_proj) N(0, 0.02 / sqrt(2 n_layer)), biases 0, LayerNorm weight 1 bias 0.
  /// Throws value_error for an invalid config. gen also seeds the dropout masks of training.
  basic_gpt(const gpt_config& cfg, generator& gen)
      : ln_f(check(cfg).n_embd, cfg.layer_norm_epsilon), cfg_(cfg) {
    const std::size_t c = cfg.n_embd;
    const double std = 0.02, proj_std = 0.02 / std::sqrt(2.0 * static_cast<double>(cfg.n_layer));
    wte = nn::init::normal(grad::zeros<T>({cfg.vocab_size, c}, {.requires_grad = true}), 0.0, std, gen);
    wpe = nn::init::normal(grad::zeros<T>({cfg.n_positions, c}, {.requires_grad = true}), 0.0, std, gen);
    h.reserve(cfg.n_layer);
    for (std::size_t l = 0; l < cfg.n_layer; ++l)
      h.emplace_back(c, cfg.n_head, cfg.layer_norm_epsilon, cfg.gelu(), cfg.dropout, std, proj_std, gen);
    if (!cfg.tie_word_embeddings)
      lm_head = nn::init::normal(grad::zeros<T>({cfg.vocab_size, c}, {.requires_grad = true}), 0.0, std, gen);
    dropout_gen_.manual_seed(gen.next_u64());
  }

  /// The configuration the model was built with.
  const gpt_config& config() const noexcept { return cfg_; }

  /// Loads a Hugging Face GPT-2 directory (config.json + model.safetensors), in eval mode: the same as
  /// from_pretrained_gpt<T>(dir) of models/gpt_pretrained.hpp, where the format is described.
  static basic_gpt from_pretrained(const std::filesystem::path& dir);
  /// Writes this model as a Hugging Face GPT-2 directory: the same as save_pretrained(*this, dir).
  void save_pretrained(const std::filesystem::path& dir) const;

  /// ids (B, T) with T <= n_positions -> logits (B, T, V), recorded on the tape when grad mode is on.
  /// Throws shape_error for ids that are not 2-d or too long, value_error for an id outside [0, V).
  basic_tensor<T> forward(const index_tensor& ids) const {
    if (ids.shape().size() != 2)
      throw shape_error("gpt: ids must be 2-d (B, T), got " + to_string(ids.shape()));
    const std::size_t t = ids.shape()[1];
    if (t == 0 || t > cfg_.n_positions)
      throw shape_error("gpt: sequence length " + std::to_string(t) + " of ids " + to_string(ids.shape()) +
                        " must be in [1, n_positions = " + std::to_string(cfg_.n_positions) + "]");
    std::vector<std::int64_t> pos(t);
    for (std::size_t i = 0; i < t; ++i)
      pos[i] = static_cast<std::int64_t>(i);
    const bool tr = this->is_training();
    auto x = grad::embedding(ids, wte) + grad::embedding(index_tensor(std::move(pos)), wpe); // (B, T, C)
    x = grad::dropout(x, cfg_.dropout, tr, dropout_gen_);
    for (const auto& block : h)
      x = block.forward(x, dropout_gen_);
    x = ln_f(x);
    return grad::linear(x, head()); // (B, T, V) = x (B, T, C) @ wte^T, no transposed copy
  }

  /// A KV cache for `batch` rows of up to max_len tokens; throws value_error if max_len is 0 or more
  /// than n_positions, or batch is 0.
  cache_type make_cache(std::size_t batch, std::size_t max_len) const {
    if (max_len == 0 || max_len > cfg_.n_positions)
      throw value_error("gpt::make_cache: max_len " + std::to_string(max_len) +
                        " must be in [1, n_positions = " + std::to_string(cfg_.n_positions) + "]");
    if (batch == 0)
      throw value_error("gpt::make_cache: batch must be positive");
    return cache_type(cfg_.n_layer, batch, cfg_.n_head, cfg_.n_embd / cfg_.n_head, max_len);
  }

  /// Feeds n new tokens per row (ids row-major, cache.batch() * n), appends their keys and values to
  /// the cache and writes the logits of each row's last new position to out (batch x V, row-major).
  /// Runs without the tape. Throws value_error on a size mismatch, a full cache or an id out of range.
  void next_logits(cache_type& cache, std::span<const std::int64_t> ids, std::size_t n, T* out) const {
    const std::size_t bsz = cache.batch(), c = cfg_.n_embd, nh = cfg_.n_head, v = cfg_.vocab_size;
    check_step(cache, ids, n);
    const std::size_t len = cache.length(), m = bsz * n, hs = c / nh;
    std::vector<T> x(m * c), a(m * c), qkv(m * 3 * c), y(m * c), f(m * 4 * c);
    for (std::size_t r = 0; r < m; ++r) { // x = wte[id] + wpe[position]
      const T* te = wte.data() + static_cast<std::size_t>(ids[r]) * c;
      const T* pe = wpe.data() + (len + r % n) * c;
      for (std::size_t j = 0; j < c; ++j)
        x[r * c + j] = te[j] + pe[j];
    }
    const double eps = cfg_.layer_norm_epsilon;
    for (std::size_t l = 0; l < cfg_.n_layer; ++l) {
      const auto& blk = h[l];
      detail::gpt_layer_norm_rows(x.data(), a.data(), m, c, blk.ln_1.weight.data(), blk.ln_1.bias.data(),
                                  eps);
      detail::gpt_affine_rows(a.data(), blk.attn.c_attn.weight.data(), blk.attn.c_attn.bias.data(),
                              qkv.data(), m, c, 3 * c, false);
      for (std::size_t b = 0; b < bsz; ++b) // append k and v of the new positions
        for (std::size_t hd = 0; hd < nh; ++hd) {
          T* kc = cache.keys(l, b, hd) + len * hs;
          T* vc = cache.values(l, b, hd) + len * hs;
          for (std::size_t i = 0; i < n; ++i) {
            const T* row = qkv.data() + (b * n + i) * 3 * c + hd * hs;
            std::copy_n(row + c, hs, kc + i * hs);
            std::copy_n(row + 2 * c, hs, vc + i * hs);
          }
        }
      detail::gpt_cached_attention(
          qkv.data(), y.data(), bsz, n, len, c, nh,
          [&](std::size_t b, std::size_t hd) { return cache.keys(l, b, hd); },
          [&](std::size_t b, std::size_t hd) { return cache.values(l, b, hd); });
      // x += y W_proj + b_proj   (residual)
      detail::gpt_affine_rows(y.data(), blk.attn.c_proj.weight.data(), blk.attn.c_proj.bias.data(), x.data(),
                              m, c, c, true);
      detail::gpt_layer_norm_rows(x.data(), a.data(), m, c, blk.ln_2.weight.data(), blk.ln_2.bias.data(),
                                  eps);
      detail::gpt_affine_rows(a.data(), blk.mlp.c_fc.weight.data(), blk.mlp.c_fc.bias.data(), f.data(), m, c,
                              4 * c, false);
      if (blk.mlp.approximate == gelu_approximate::tanh)
        kernels::gelu_tanh<T>(f.data(), f.data(), f.size());
      else
        kernels::gelu_erf<T>(f.data(), f.data(), f.size());
      detail::gpt_affine_rows(f.data(), blk.mlp.c_proj.weight.data(), blk.mlp.c_proj.bias.data(), x.data(), m,
                              4 * c, c, true);
    }
    // Only the last new position of each row: ln_f, then logits (B, V) = x_last (B, C) wte^T.
    for (std::size_t b = 0; b < bsz; ++b)
      detail::gpt_layer_norm_rows(x.data() + (b * n + n - 1) * c, a.data() + b * c, 1, c, ln_f.weight.data(),
                                  ln_f.bias.data(), eps);
    kernels::gemm<T>(false, true, bsz, v, c, T(1), a.data(), c, head().data(), c, T(0), out, v);
    cache.advance(n);
  }

  /// Lists wte.weight, wpe.weight, h.{i}.*, ln_f.*, and lm_head.weight when untied.
  template <class V>
  void visit(V& v) {
    v.param("wte.weight", wte);
    v.param("wpe.weight", wpe);
    v.child("h", h);
    v.child("ln_f", ln_f);
    v.param("lm_head.weight", lm_head);
  }

private:
  static const gpt_config& check(const gpt_config& cfg) {
    cfg.validate();
    return cfg;
  }
  const basic_tensor<T>& head() const { return cfg_.tie_word_embeddings ? wte : lm_head; }
  void check_step(const cache_type& cache, std::span<const std::int64_t> ids, std::size_t n) const {
    const std::string op = "gpt::next_logits: ";
    if (cache.n_layer() != cfg_.n_layer || cache.n_head() != cfg_.n_head ||
        cache.head_size() * cfg_.n_head != cfg_.n_embd)
      throw value_error(op + "the cache was not made by this model's make_cache");
    if (n == 0)
      throw value_error(op + "n must be positive (tokens per row)");
    if (ids.size() != cache.batch() * n)
      throw value_error(op + std::to_string(ids.size()) + " ids for batch " + std::to_string(cache.batch()) +
                        " x n " + std::to_string(n) + " (expected " + std::to_string(cache.batch() * n) +
                        ")");
    if (cache.length() + n > cache.capacity())
      throw value_error(op + "the cache holds " + std::to_string(cache.length()) + " of " +
                        std::to_string(cache.capacity()) + " tokens; " + std::to_string(n) +
                        " more do not fit");
    for (std::size_t i = 0; i < ids.size(); ++i)
      if (ids[i] < 0 || static_cast<std::size_t>(ids[i]) >= cfg_.vocab_size)
        throw value_error(op + "token id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                          " is out of range [0, " + std::to_string(cfg_.vocab_size) + ")");
  }

  gpt_config cfg_;
  mutable generator dropout_gen_{0}; // draws dropout masks in training
};

/// GPT model in float.
using gpt = basic_gpt<float>;

} // namespace grad::models

// The definitions of from_pretrained and save_pretrained (the checkpoint code needs the whole model).
#include "grad/models/gpt_pretrained.hpp"
