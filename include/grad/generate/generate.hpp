#pragma once
/// @file generate/generate.hpp
/// grad::generate(model, input_ids, config): text generation from a causal language model with the
/// semantics of Hugging Face transformers' `model.generate(...)` for the same options: greedy decoding,
/// sampling (temperature, top-k, top-p), beam search (length penalty, early stopping), repetition
/// penalty, no-repeat n-grams, eos/pad, with the model's KV cache and a streaming callback.
///
/// ```cpp
/// auto model = grad::models::from_pretrained_gpt("gpt2");
/// grad::generation_config cfg{.max_new_tokens = 40, .num_beams = 5, .no_repeat_ngram_size = 2};
/// grad::index_tensor out = grad::generate(model, grad::index_tensor{{464, 2068, 7586}}, cfg);
/// ```

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "grad/core/error.hpp"
#include "grad/core/generator.hpp"
#include "grad/core/index_tensor.hpp"
#include "grad/generate/beam_search.hpp"
#include "grad/generate/causal_lm.hpp"
#include "grad/generate/config.hpp"
#include "grad/generate/logits_processors.hpp"

namespace grad {

namespace detail {

/// Greedy decoding (do_sample = false) or multinomial sampling (do_sample = true), one beam.
template <class M>
index_tensor greedy_or_sample(const M& model, const generate_setup& s, const generation_config& c,
                              const token_callback& on_token) {
  using T = causal_lm_scalar_t<M>;
  const std::size_t B = s.batch, V = s.vocab, P = s.prompt_length, L = s.max_length;
  const std::size_t R = c.do_sample ? c.num_return_sequences : 1, N = B * R;
  auto cache = model.make_cache(B, L);
  std::vector<T> logits(B * V);
  model.next_logits(cache, std::span<const std::int64_t>(s.prompt), P, logits.data()); // (B, V)
  if (R > 1) { // each prompt's R samples share its cache rows: feed the prompt once, then copy
    std::vector<std::size_t> src(N);
    std::vector<T> grown(N * V); // (B * R, V)
    for (std::size_t r = 0; r < N; ++r) {
      src[r] = r / R;
      std::copy_n(logits.begin() + static_cast<std::ptrdiff_t>(src[r] * V), V,
                  grown.begin() + static_cast<std::ptrdiff_t>(r * V));
    }
    cache.reorder(std::span<const std::size_t>(src));
    logits = std::move(grown);
  }
  std::vector<std::int64_t> seqs(N * L); // (N, L), row r holds prompt r / R then its new tokens
  for (std::size_t r = 0; r < N; ++r)
    std::copy_n(s.prompt.begin() + static_cast<std::ptrdiff_t>((r / R) * P), P,
                seqs.begin() + static_cast<std::ptrdiff_t>(r * L));

  generator gen(c.seed);
  std::vector<double> scores(V), probs(V);
  std::vector<std::int64_t> next(N);
  std::vector<char> unfinished(N, 1);
  std::size_t cur_len = P;
  for (;;) {
    for (std::size_t r = 0; r < N; ++r) {
      if (!unfinished[r]) { // a finished row idles on pad tokens until every row is finished
        next[r] = *s.pad;
        continue;
      }
      for (std::size_t v = 0; v < V; ++v)
        scores[v] = static_cast<double>(logits[r * V + v]);
      apply_common_processors(scores, std::span<const std::int64_t>(seqs.data() + r * L, cur_len), c);
      std::size_t token;
      if (c.do_sample) { // transformers' warper order: temperature, top-k, top-p
        generation::apply_temperature(scores, c.temperature);
        generation::apply_top_k(scores, c.top_k);
        generation::apply_top_p(scores, c.top_p);
        generation::softmax(scores, probs);
        token = generation::sample_index(probs, gen);
      } else {
        token = generation::argmax(scores);
      }
      next[r] = static_cast<std::int64_t>(token);
    }
    for (std::size_t r = 0; r < N; ++r) {
      seqs[r * L + cur_len] = next[r];
      if (!unfinished[r])
        continue;
      if (on_token)
        on_token(r, next[r]);
      if (s.eos && next[r] == *s.eos)
        unfinished[r] = 0;
    }
    ++cur_len;
    if (cur_len >= L || std::none_of(unfinished.begin(), unfinished.end(), [](char u) { return u != 0; }))
      break;
    model.next_logits(cache, std::span<const std::int64_t>(next), 1, logits.data());
  }
  std::vector<std::int64_t> out(N * cur_len);
  for (std::size_t r = 0; r < N; ++r)
    std::copy_n(seqs.begin() + static_cast<std::ptrdiff_t>(r * L), cur_len,
                out.begin() + static_cast<std::ptrdiff_t>(r * cur_len));
  return index_tensor(std::move(out), shape_type{N, cur_len});
}

} // namespace detail

/// Generates continuations of `input_ids` (T,) or (B, T) (B prompts of equal length) and returns
/// (B * num_return_sequences, L): each prompt followed by its new tokens, the output rows of a prompt
/// next to each other, rows that finished early padded with pad_token_id (which defaults to
/// eos_token_id), as transformers' `generate` returns them.
///
/// The strategy follows the options as in transformers: greedy when do_sample is false and
/// num_beams is 1; multinomial sampling (seeded by config.seed) when do_sample is true; beam search
/// when num_beams > 1. `on_token(row, token)` streams each new token of each output row as it is
/// chosen (greedy and sampling; finished rows' padding is not reported). With beam search the best
/// sequences are only known at the end: on_token then receives each returned row's new tokens, in
/// order, once the search is over.
///
/// Throws value_error for an invalid config, token ids outside the vocabulary, or a length beyond the
/// model's n_positions; whatever the model throws propagates.
template <causal_lm M>
index_tensor generate(const M& model, const index_tensor& input_ids, const generation_config& config = {},
                      const token_callback& on_token = {}) {
  config.validate();
  detail::generate_setup s;
  s.vocab = static_cast<std::size_t>(model.config().vocab_size);
  if (input_ids.dim() == 1) {
    s.batch = 1;
    s.prompt_length = input_ids.size(0);
  } else if (input_ids.dim() == 2) {
    s.batch = input_ids.size(0);
    s.prompt_length = input_ids.size(1);
  } else {
    throw shape_error("generate: input_ids must be (T,) or (B, T), got " + to_string(input_ids.shape()));
  }
  if (s.batch == 0 || s.prompt_length == 0)
    throw value_error("generate: input_ids " + to_string(input_ids.shape()) +
                      " is empty; give at least one prompt token (e.g. the eos/bos token)");
  for (std::size_t i = 0; i < input_ids.numel(); ++i)
    if (input_ids[i] < 0 || static_cast<std::size_t>(input_ids[i]) >= s.vocab)
      throw value_error("generate: input_ids[" + std::to_string(i) + "] = " + std::to_string(input_ids[i]) +
                        " is outside the vocabulary [0, " + std::to_string(s.vocab) + ")");
  auto check_id = [&](const std::optional<std::int64_t>& id, const char* name) {
    if (id && static_cast<std::size_t>(*id) >= s.vocab)
      throw value_error("generate: " + std::string(name) + " = " + std::to_string(*id) +
                        " is outside the vocabulary [0, " + std::to_string(s.vocab) + ")");
  };
  check_id(config.eos_token_id, "eos_token_id");
  check_id(config.pad_token_id, "pad_token_id");
  s.eos = config.eos_token_id;
  s.pad = config.pad_token_id ? config.pad_token_id : config.eos_token_id;
  s.max_length = config.resolve_max_length(s.prompt_length);
  const auto n_positions = static_cast<std::size_t>(model.config().n_positions);
  if (s.max_length > n_positions)
    throw value_error("generate: the total length " + std::to_string(s.max_length) + " (prompt " +
                      std::to_string(s.prompt_length) + " + new tokens) exceeds the model's n_positions (" +
                      std::to_string(n_positions) + "); lower max_new_tokens / max_length");
  s.prompt = input_ids.values();
  if (config.num_beams > 1)
    return detail::beam_search(model, s, config, on_token);
  return detail::greedy_or_sample(model, s, config, on_token);
}

} // namespace grad
