#pragma once
/// @file generate/config.hpp
/// grad::generation_config: the options of grad::generate(), named and defaulted as in Hugging Face
/// transformers' `GenerationConfig`, with validation that names the bad option.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "grad/core/error.hpp"

namespace grad {

/// When beam search stops (transformers' `early_stopping`: False, True or "never").
enum class early_stopping_mode {
  /// `False` (the default): stop a prompt's search when the best running beam, scored at the current
  /// length, can no longer beat the worst of the `num_beams` finished hypotheses.
  heuristic,
  /// `True`: stop as soon as `num_beams` hypotheses are finished.
  enabled,
  /// `"never"`: stop only when no running beam can beat them at any length up to `max_length` (the
  /// canonical beam search; with length_penalty <= 0 it is the same test as `heuristic`).
  never,
};

/// Options of grad::generate(). Defaults are those of transformers' GenerationConfig: greedy decoding,
/// 20 tokens in total (`max_length`), top_k 50 (only used when sampling).
struct generation_config {
  /// Number of tokens to generate after the prompt; when set it wins over max_length.
  std::optional<std::size_t> max_new_tokens{};
  /// Total length (prompt + generated) to stop at, used when max_new_tokens is not set (default 20).
  std::optional<std::size_t> max_length{};
  /// Sample from the (processed) distribution instead of taking the most likely token.
  bool do_sample = false;
  /// Divides the logits before sampling (< 1 sharper, > 1 flatter); > 0. Sampling only.
  double temperature = 1.0;
  /// Keep only the k most likely tokens (ties with the k-th are kept); 0 keeps all. Sampling only.
  std::size_t top_k = 50;
  /// Keep the smallest set of most likely tokens whose probability reaches top_p (at least one);
  /// in [0, 1], 1 keeps all. Sampling only.
  double top_p = 1.0;
  /// Beam width; 1 means no beam search.
  std::size_t num_beams = 1;
  /// Beam search ranks finished hypotheses by sum of log-probabilities / generated_length^length_penalty:
  /// > 0 favours longer sequences, < 0 shorter ones.
  double length_penalty = 1.0;
  /// When beam search stops; see early_stopping_mode.
  early_stopping_mode early_stopping = early_stopping_mode::heuristic;
  /// If > 0, a token that would complete an n-gram of this size already in the sequence (prompt
  /// included) is banned.
  std::size_t no_repeat_ngram_size = 0;
  /// Logits of tokens already in the sequence are divided by this (if positive) or multiplied (if
  /// negative); > 0, 1 is off. CTRL's penalty (Keskar et al. 2019); 1.2 is their suggestion.
  double repetition_penalty = 1.0;
  /// A sequence that produces this token is finished.
  std::optional<std::int64_t> eos_token_id{};
  /// Fills finished rows and pads shorter outputs; defaults to eos_token_id.
  std::optional<std::int64_t> pad_token_id{};
  /// Seed of the generator used for sampling: the same seed gives the same output.
  std::uint64_t seed = 0;
  /// Sequences returned per prompt: <= num_beams with beam search; any number when sampling; 1 for greedy.
  std::size_t num_return_sequences = 1;

  /// Throws value_error naming the first invalid option (model-independent checks only; generate()
  /// also checks token ids against the vocabulary and lengths against the prompt and the model).
  void validate() const {
    auto bad = [](const std::string& what) { return value_error("generation_config: " + what); };
    auto num = [](double v) { return std::to_string(v); };
    if (max_new_tokens && *max_new_tokens == 0)
      throw bad("max_new_tokens must be > 0, got 0");
    if (max_length && *max_length == 0)
      throw bad("max_length must be > 0, got 0");
    if (!std::isfinite(temperature) || temperature <= 0)
      throw bad("temperature must be a finite number > 0, got " + num(temperature) +
                "; for greedy decoding set do_sample = false instead");
    if (!(top_p >= 0 && top_p <= 1))
      throw bad("top_p must be in [0, 1], got " + num(top_p));
    if (num_beams == 0)
      throw bad("num_beams must be >= 1, got 0");
    if (!std::isfinite(length_penalty))
      throw bad("length_penalty must be finite, got " + num(length_penalty));
    if (!std::isfinite(repetition_penalty) || repetition_penalty <= 0)
      throw bad("repetition_penalty must be a finite number > 0 (1 is off), got " + num(repetition_penalty));
    if (eos_token_id && *eos_token_id < 0)
      throw bad("eos_token_id must be >= 0, got " + std::to_string(*eos_token_id));
    if (pad_token_id && *pad_token_id < 0)
      throw bad("pad_token_id must be >= 0, got " + std::to_string(*pad_token_id));
    if (num_return_sequences == 0)
      throw bad("num_return_sequences must be >= 1, got 0");
    if (num_beams > 1 && num_return_sequences > num_beams)
      throw bad("num_return_sequences (" + std::to_string(num_return_sequences) + ") must be <= num_beams (" +
                std::to_string(num_beams) + ")");
    if (num_beams == 1 && !do_sample && num_return_sequences > 1)
      throw bad("greedy decoding returns one sequence per prompt, got num_return_sequences = " +
                std::to_string(num_return_sequences) + "; set do_sample = true or num_beams > 1");
    if (num_beams > 1 && do_sample)
      throw bad("beam sampling (do_sample with num_beams > 1) is not supported; use one of them");
  }

  /// The total length to stop at for a prompt of `prompt_length` tokens: prompt_length + max_new_tokens
  /// if set, else max_length (default 20). Throws value_error when nothing would be generated.
  std::size_t resolve_max_length(std::size_t prompt_length) const {
    if (max_new_tokens)
      return prompt_length + *max_new_tokens;
    const std::size_t total = max_length.value_or(20);
    if (total <= prompt_length)
      throw value_error("generate: max_length (" + std::to_string(total) +
                        ") must be larger than the prompt length (" + std::to_string(prompt_length) +
                        "): nothing would be generated; set max_new_tokens instead");
    return total;
  }
};

} // namespace grad
