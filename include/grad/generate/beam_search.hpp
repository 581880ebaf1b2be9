#pragma once
/// @file generate/beam_search.hpp
/// Beam search as Hugging Face transformers does it (BeamSearchScorer and BeamHypotheses in
/// generation/beam_search.py, v4.36 and later): num_beams running beams per prompt ranked by the sum of
/// their tokens' log-probabilities; a beam that emits eos becomes a finished hypothesis scored
/// sum / generated_length^length_penalty; the num_beams best finished hypotheses are kept.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "grad/core/error.hpp"
#include "grad/core/index_tensor.hpp"
#include "grad/generate/causal_lm.hpp"
#include "grad/generate/config.hpp"
#include "grad/generate/logits_processors.hpp"

namespace grad {

/// The streaming callback of generate(): `on_token(row, token)` for each new token of output row `row`.
using token_callback = std::function<void(std::size_t row, std::int64_t token)>;

namespace generation {

/// The finished hypotheses of one prompt in beam search: the num_beams best by length-penalized score.
class beam_hypotheses {
public:
  /// One finished sequence (prompt included, eos excluded) and its score.
  struct hypothesis {
    double score = 0;                 ///< sum of log-probabilities / generated_length^length_penalty
    std::vector<std::int64_t> tokens; ///< prompt + generated tokens, without the final eos
  };

  /// Keeps `num_beams` hypotheses of a prompt of `prompt_length` tokens; `max_length` (total length)
  /// is used by early_stopping_mode::never.
  beam_hypotheses(std::size_t num_beams, double length_penalty, early_stopping_mode early_stopping,
                  std::size_t max_length, std::size_t prompt_length)
      : num_beams_(num_beams), length_penalty_(length_penalty), early_stopping_(early_stopping),
        max_length_(max_length), prompt_length_(prompt_length) {}

  /// Offers a hypothesis whose log-probabilities sum to `sum_logprobs` after `generated_length` new
  /// tokens (eos counted): kept if there is room or it beats the worst kept one, which is then dropped.
  void add(std::vector<std::int64_t> tokens, double sum_logprobs, std::size_t generated_length) {
    const double score = sum_logprobs / std::pow(static_cast<double>(generated_length), length_penalty_);
    if (beams_.size() >= num_beams_ && !(score > worst_score_))
      return;
    beams_.push_back({score, std::move(tokens)});
    if (beams_.size() > num_beams_) {
      // Drop the lowest score (the earliest added among equals); the next lowest becomes the worst.
      std::size_t worst = 0;
      for (std::size_t i = 1; i < beams_.size(); ++i)
        if (beams_[i].score < beams_[worst].score)
          worst = i;
      beams_.erase(beams_.begin() + static_cast<std::ptrdiff_t>(worst));
      worst_score_ = beams_[0].score;
      for (const auto& h : beams_)
        worst_score_ = std::min(worst_score_, h.score);
    } else {
      worst_score_ = std::min(score, worst_score_);
    }
  }

  /// Whether no running beam can improve the kept hypotheses: `best_sum_logprobs` is the best running
  /// beam's sum after `cur_length` tokens (prompt included). Needs num_beams hypotheses first.
  bool is_done(double best_sum_logprobs, std::size_t cur_length) const {
    if (beams_.size() < num_beams_)
      return false;
    switch (early_stopping_) {
    case early_stopping_mode::enabled:
      return true;
    case early_stopping_mode::heuristic: // the best beam scored at today's length (HF's "False")
      return worst_score_ >=
             best_sum_logprobs / std::pow(static_cast<double>(cur_length - prompt_length_), length_penalty_);
    case early_stopping_mode::never: {
      // Log-probabilities only fall, so the best attainable score is the running sum divided by the
      // largest denominator: at max_length when length_penalty > 0, at the current length otherwise.
      const std::size_t len = length_penalty_ > 0 ? max_length_ : cur_length;
      return worst_score_ >=
             best_sum_logprobs / std::pow(static_cast<double>(len - prompt_length_), length_penalty_);
    }
    }
    return false;
  }

  /// Number of hypotheses kept (at most num_beams).
  std::size_t size() const noexcept { return beams_.size(); }
  /// The lowest kept score (1e9 while empty, as in transformers).
  double worst_score() const noexcept { return worst_score_; }
  /// The kept hypotheses, in the order they were added.
  const std::vector<hypothesis>& hypotheses() const noexcept { return beams_; }

private:
  std::size_t num_beams_;
  double length_penalty_;
  early_stopping_mode early_stopping_;
  std::size_t max_length_, prompt_length_;
  std::vector<hypothesis> beams_;
  double worst_score_ = 1e9;
};

} // namespace generation

namespace detail {

/// What generate() has checked and resolved before it dispatches to a decoding strategy.
struct generate_setup {
  std::size_t batch = 0;                ///< B prompts
  std::size_t prompt_length = 0;        ///< T tokens each
  std::size_t vocab = 0;                ///< V
  std::size_t max_length = 0;           ///< total length to stop at
  std::optional<std::int64_t> eos, pad; ///< pad defaults to eos
  std::vector<std::int64_t> prompt;     ///< (B, T) row-major
};

/// Runs the processors shared by every strategy, in transformers' order: repetition penalty, then
/// no-repeat n-grams.
inline void apply_common_processors(std::span<double> scores, std::span<const std::int64_t> sequence,
                                    const generation_config& c) {
  generation::apply_repetition_penalty(scores, sequence, c.repetition_penalty);
  generation::apply_no_repeat_ngram(scores, sequence, c.no_repeat_ngram_size);
}

/// Beam search for every prompt of `s`; returns (B * num_return_sequences, L) sequences.
template <class M>
index_tensor beam_search(const M& model, const generate_setup& s, const generation_config& c,
                         const token_callback& on_token) {
  using T = causal_lm_scalar_t<M>;
  const std::size_t B = s.batch, K = c.num_beams, V = s.vocab, P = s.prompt_length, N = B * K;
  auto cache = model.make_cache(B, s.max_length);
  std::vector<T> logits(B * V);
  model.next_logits(cache, std::span<const std::int64_t>(s.prompt), P, logits.data()); // (B, V)
  // Every beam starts as a copy of its prompt: grow the cache to B * K rows instead of feeding the
  // prompt K times.
  std::vector<std::size_t> src(N);
  for (std::size_t r = 0; r < N; ++r)
    src[r] = r / K;
  cache.reorder(std::span<const std::size_t>(src));
  {
    std::vector<T> grown(N * V); // (B * K, V)
    for (std::size_t r = 0; r < N; ++r)
      std::copy_n(logits.begin() + static_cast<std::ptrdiff_t>(src[r] * V), V,
                  grown.begin() + static_cast<std::ptrdiff_t>(r * V));
    logits = std::move(grown);
  }
  std::vector<std::vector<std::int64_t>> seqs(N);
  for (std::size_t r = 0; r < N; ++r)
    seqs[r].assign(s.prompt.begin() + static_cast<std::ptrdiff_t>(src[r] * P),
                   s.prompt.begin() + static_cast<std::ptrdiff_t>((src[r] + 1) * P));
  // All beams of a prompt are equal at first: only beam 0 may expand on the first step.
  std::vector<double> beam_scores(N, 0.0);
  for (std::size_t r = 0; r < N; ++r)
    if (r % K != 0)
      beam_scores[r] = -1e9;
  std::vector<generation::beam_hypotheses> hyps(
      B, generation::beam_hypotheses(K, c.length_penalty, c.early_stopping, s.max_length, P));
  std::vector<char> done(B, 0);

  struct candidate {
    double score;
    std::size_t flat; // beam * V + token, within one prompt
  };
  const auto better = [](const candidate& a, const candidate& b) {
    return a.score != b.score ? a.score > b.score : a.flat < b.flat;
  };
  const std::size_t n_cand = std::min(2 * K, K * V); // 2K: enough that K survive even if eos is among them
  std::vector<double> scores(N * V);                 // (B * K, V)
  std::vector<std::size_t> order(V);
  std::vector<candidate> cands;
  std::vector<std::int64_t> next_tokens(N);
  std::vector<std::size_t> next_src(N);
  std::vector<double> next_scores(N);
  std::size_t cur_len = P;
  for (;;) {
    for (std::size_t r = 0; r < N; ++r) {
      std::span<double> row(scores.data() + r * V, V);
      for (std::size_t v = 0; v < V; ++v)
        row[v] = static_cast<double>(logits[r * V + v]);
      generation::log_softmax(row); // processors see log-probabilities in beam search
      apply_common_processors(row, seqs[r], c);
      for (double& x : row)
        x += beam_scores[r];
    }
    for (std::size_t b = 0; b < B; ++b) {
      if (done[b]) { // a finished prompt idles on pad tokens until the others finish
        for (std::size_t j = 0; j < K; ++j) {
          next_tokens[b * K + j] = s.pad.value_or(0);
          next_scores[b * K + j] = 0;
          next_src[b * K + j] = b * K;
        }
        continue;
      }
      cands.clear();
      for (std::size_t j = 0; j < K; ++j) {
        const double* row = scores.data() + (b * K + j) * V;
        std::iota(order.begin(), order.end(), std::size_t{0});
        const std::size_t take = std::min(n_cand, V);
        std::partial_sort(
            order.begin(), order.begin() + static_cast<std::ptrdiff_t>(take), order.end(),
            [&](std::size_t x, std::size_t y) { return row[x] != row[y] ? row[x] > row[y] : x < y; });
        for (std::size_t i = 0; i < take; ++i)
          cands.push_back({row[order[i]], j * V + order[i]});
      }
      std::sort(cands.begin(), cands.end(), better);
      cands.resize(std::min(cands.size(), n_cand));
      std::size_t filled = 0;
      for (std::size_t rank = 0; rank < cands.size() && filled < K; ++rank) {
        const auto token = static_cast<std::int64_t>(cands[rank].flat % V);
        const std::size_t r = b * K + cands[rank].flat / V;
        if (s.eos && token == *s.eos) {
          if (rank >= K) // an eos below the top K candidates is not a contender
            continue;
          hyps[b].add(seqs[r], cands[rank].score, cur_len + 1 - P);
        } else {
          next_tokens[b * K + filled] = token;
          next_scores[b * K + filled] = cands[rank].score;
          next_src[b * K + filled] = r;
          ++filled;
        }
      }
      if (filled < K)
        throw value_error("generate: beam search found only " + std::to_string(filled) +
                          " candidates that are not eos for " + std::to_string(K) + " beams (vocabulary of " +
                          std::to_string(V) + " tokens too small)");
      done[b] = done[b] || hyps[b].is_done(cands[0].score, cur_len + 1);
    }
    std::vector<std::vector<std::int64_t>> grown(N);
    for (std::size_t r = 0; r < N; ++r) {
      grown[r].reserve(s.max_length);
      grown[r] = seqs[next_src[r]];
      grown[r].push_back(next_tokens[r]);
    }
    seqs = std::move(grown);
    beam_scores = next_scores;
    ++cur_len;
    if (cur_len >= s.max_length || std::all_of(done.begin(), done.end(), [](char d) { return d != 0; }))
      break;
    cache.reorder(std::span<const std::size_t>(next_src));
    model.next_logits(cache, std::span<const std::int64_t>(next_tokens), 1, logits.data());
  }

  // Running beams of unfinished prompts compete with the finished hypotheses.
  for (std::size_t b = 0; b < B; ++b)
    if (!done[b])
      for (std::size_t j = 0; j < K; ++j)
        hyps[b].add(seqs[b * K + j], beam_scores[b * K + j], seqs[b * K + j].size() - P);

  const std::size_t R = c.num_return_sequences;
  std::vector<const std::vector<std::int64_t>*> best;
  best.reserve(B * R);
  std::size_t longest = 0;
  for (std::size_t b = 0; b < B; ++b) {
    std::vector<const generation::beam_hypotheses::hypothesis*> sorted;
    for (const auto& h : hyps[b].hypotheses())
      sorted.push_back(&h);
    // transformers sorts ascending and pops from the back: among equal scores the last added wins.
    std::stable_sort(sorted.begin(), sorted.end(), [](auto* x, auto* y) { return x->score < y->score; });
    for (std::size_t i = 0; i < R; ++i) {
      const auto* h = sorted[sorted.size() - 1 - i];
      best.push_back(&h->tokens);
      longest = std::max(longest, h->tokens.size());
    }
  }
  const std::size_t L = std::min(longest + 1, s.max_length); // room for one eos after the longest
  std::vector<std::int64_t> out(B * R * L, s.pad.value_or(0));
  for (std::size_t i = 0; i < best.size(); ++i) {
    std::int64_t* row = out.data() + i * L;
    std::copy(best[i]->begin(), best[i]->end(), row);
    std::size_t end = best[i]->size();
    if (end < L && s.eos) // a hypothesis shorter than L finished with eos, which was not stored
      row[end++] = *s.eos;
    if (on_token)
      for (std::size_t t = P; t < end; ++t)
        on_token(i, row[t]);
  }
  return index_tensor(std::move(out), shape_type{B * R, L});
}

} // namespace detail
} // namespace grad
