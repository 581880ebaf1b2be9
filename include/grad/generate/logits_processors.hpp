#pragma once
/// @file generate/logits_processors.hpp
/// The steps that turn a model's next-token logits into a choice, one row (V scores) at a time, each
/// with the semantics of the Hugging Face transformers class named beside it. Removed tokens get
/// -infinity, so a following softmax gives them probability 0.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "grad/core/error.hpp"
#include "grad/core/generator.hpp"

namespace grad::generation {

/// -infinity: the score of a removed token.
inline constexpr double removed = -std::numeric_limits<double>::infinity();

/// Repetition penalty (RepetitionPenaltyLogitsProcessor; CTRL, Keskar et al. 2019): the score of every
/// token that occurs in `sequence` is divided by `penalty` when positive and multiplied by it when
/// negative, once per token however often it occurs. penalty 1 changes nothing.
inline void apply_repetition_penalty(std::span<double> scores, std::span<const std::int64_t> sequence,
                                     double penalty) {
  if (penalty == 1.0)
    return;
  std::vector<std::int64_t> seen(sequence.begin(), sequence.end());
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  for (const std::int64_t t : seen) {
    if (t < 0 || static_cast<std::size_t>(t) >= scores.size())
      continue; // ids are checked by generate(); a stray one must not write out of bounds
    double& s = scores[static_cast<std::size_t>(t)];
    s = s < 0 ? s * penalty : s / penalty;
  }
}

/// The tokens that would complete an n-gram (n = `ngram_size`) already present in `sequence`
/// (NoRepeatNGramLogitsProcessor): every t such that (last n-1 tokens of sequence, t) occurs in it.
/// Sorted, without duplicates; empty when n is 0 or the sequence has fewer than n-1 tokens.
inline std::vector<std::int64_t> banned_ngram_tokens(std::span<const std::int64_t> sequence,
                                                     std::size_t ngram_size) {
  std::vector<std::int64_t> banned;
  const std::size_t len = sequence.size();
  if (ngram_size == 0 || len + 1 < ngram_size)
    return banned;
  const std::size_t prefix = ngram_size - 1; // the n-1 tokens the next one would follow
  const auto tail = sequence.subspan(len - prefix);
  // Every n-gram that starts at i: its first n-1 tokens must equal the tail.
  for (std::size_t i = 0; i + ngram_size <= len; ++i)
    if (std::equal(tail.begin(), tail.end(), sequence.begin() + static_cast<std::ptrdiff_t>(i)))
      banned.push_back(sequence[i + prefix]);
  std::sort(banned.begin(), banned.end());
  banned.erase(std::unique(banned.begin(), banned.end()), banned.end());
  return banned;
}

/// Sets the score of every token banned_ngram_tokens() names to -infinity.
inline void apply_no_repeat_ngram(std::span<double> scores, std::span<const std::int64_t> sequence,
                                  std::size_t ngram_size) {
  for (const std::int64_t t : banned_ngram_tokens(sequence, ngram_size))
    if (t >= 0 && static_cast<std::size_t>(t) < scores.size())
      scores[static_cast<std::size_t>(t)] = removed;
}

/// Divides every score by `temperature` > 0 (TemperatureLogitsWarper).
inline void apply_temperature(std::span<double> scores, double temperature) {
  if (!(temperature > 0))
    throw value_error("apply_temperature: temperature must be > 0, got " + std::to_string(temperature));
  if (temperature == 1.0)
    return;
  for (double& s : scores)
    s /= temperature;
}

/// Keeps the `top_k` highest scores, and every score tied with the k-th; removes the rest
/// (TopKLogitsWarper). At least `min_tokens_to_keep` are kept; top_k 0 keeps everything.
inline void apply_top_k(std::span<double> scores, std::size_t top_k, std::size_t min_tokens_to_keep = 1) {
  if (top_k == 0 || scores.empty())
    return;
  const std::size_t k = std::min(std::max(top_k, min_tokens_to_keep), scores.size());
  if (k == scores.size())
    return;
  std::vector<double> copy(scores.begin(), scores.end());
  std::nth_element(copy.begin(), copy.begin() + static_cast<std::ptrdiff_t>(k - 1), copy.end(),
                   std::greater<>());
  const double kth = copy[k - 1];
  for (double& s : scores)
    if (s < kth)
      s = removed;
}

/// Nucleus filtering (TopPLogitsWarper; Holtzman et al. 2020): keeps the smallest set of highest
/// scoring tokens whose softmax probabilities sum to at least `top_p`, i.e. a token is kept when the
/// tokens ranked above it hold less than top_p; at least `min_tokens_to_keep` are kept. top_p 1 keeps
/// everything. Equal scores are ranked by token id.
inline void apply_top_p(std::span<double> scores, double top_p, std::size_t min_tokens_to_keep = 1) {
  if (!(top_p >= 0 && top_p <= 1))
    throw value_error("apply_top_p: top_p must be in [0, 1], got " + std::to_string(top_p));
  if (top_p >= 1.0 || scores.empty())
    return;
  std::vector<std::size_t> order;
  order.reserve(scores.size());
  for (std::size_t i = 0; i < scores.size(); ++i)
    if (scores[i] != removed) // removed tokens have probability 0: they never count or get kept
      order.push_back(i);
  if (order.empty())
    return;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return scores[a] != scores[b] ? scores[a] > scores[b] : a < b;
  });
  const double top = scores[order[0]];
  double total = 0;
  for (const std::size_t i : order)
    total += std::exp(scores[i] - top);
  double before = 0; // probability of the tokens ranked above the current one
  std::size_t rank = 0;
  for (; rank < order.size(); ++rank) {
    if (before >= top_p && rank >= min_tokens_to_keep)
      break;
    before += std::exp(scores[order[rank]] - top) / total;
  }
  for (; rank < order.size(); ++rank)
    scores[order[rank]] = removed;
}

/// log(softmax(scores)) in place; -infinity stays -infinity. All -infinity gives all NaN-free -infinity.
inline void log_softmax(std::span<double> scores) {
  if (scores.empty())
    return;
  const double top = *std::max_element(scores.begin(), scores.end());
  if (top == removed)
    return;
  double total = 0;
  for (const double s : scores)
    total += std::exp(s - top);
  const double log_total = top + std::log(total);
  for (double& s : scores)
    s -= log_total;
}

/// softmax(scores) into `probs` (same size).
inline void softmax(std::span<const double> scores, std::span<double> probs) {
  if (scores.empty())
    return;
  const double top = *std::max_element(scores.begin(), scores.end());
  if (top == removed)
    throw value_error("generate: every token was removed (all scores are -inf); relax top_k, top_p or "
                      "no_repeat_ngram_size");
  double total = 0;
  for (std::size_t i = 0; i < scores.size(); ++i)
    total += probs[i] = std::exp(scores[i] - top);
  for (double& p : probs)
    p /= total;
}

/// The index of the highest score, the first one on ties (as torch.argmax).
inline std::size_t argmax(std::span<const double> scores) {
  return static_cast<std::size_t>(std::max_element(scores.begin(), scores.end()) - scores.begin());
}

/// Draws an index with the given probabilities (summing to 1) from one uniform number of `gen`:
/// the first index whose cumulative probability exceeds it. Never returns a zero-probability index.
inline std::size_t sample_index(std::span<const double> probs, generator& gen) {
  const double u = gen.uniform();
  double cumulative = 0;
  std::size_t last = probs.size();
  for (std::size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] <= 0)
      continue;
    cumulative += probs[i];
    last = i;
    if (u < cumulative)
      return i;
  }
  return last; // rounding left the cumulative sum just under u: the last possible token
}

} // namespace grad::generation
