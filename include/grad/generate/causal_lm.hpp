#pragma once
/// @file generate/causal_lm.hpp
/// grad::causal_lm: what generate() needs from a language model, and nothing more, so that a tiny
/// hand-written model (a bigram table) can stand in for a GPT in tests.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

namespace grad {

namespace detail {
template <class M>
struct causal_lm_scalar {
  using type = float;
};
template <class M>
requires requires {
  typename M::value_type;
}
struct causal_lm_scalar<M> {
  using type = typename M::value_type;
};
} // namespace detail

/// The element type of a model's logits: `M::value_type` when it has one, else float.
template <class M>
using causal_lm_scalar_t = typename detail::causal_lm_scalar<M>::type;

/// A causal language model that decodes incrementally with a cache (grad::models::gpt is one):
/// - `config().vocab_size` (V) and `config().n_positions` (longest sequence it accepts);
/// - `make_cache(batch, max_len)` returns a `cache_type` for `batch` rows of up to `max_len` tokens;
/// - `next_logits(cache, ids, n, out)` feeds n new tokens per row (ids row-major, batch * n), appends
///   them to the cache and writes the logits of each row's last new position to out (batch x V);
/// - `cache.reorder(src_rows)` makes row r a copy of old row src_rows[r] (the batch may change size);
/// - `cache.length()` is the number of tokens cached per row.
template <class M>
concept causal_lm = requires(const M& m, typename M::cache_type& cache, std::span<const std::int64_t> ids,
                             std::size_t n, causal_lm_scalar_t<M>* out, std::span<const std::size_t> rows) {
  { m.config().vocab_size } -> std::convertible_to<std::size_t>;
  { m.config().n_positions } -> std::convertible_to<std::size_t>;
  { m.make_cache(n, n) } -> std::same_as<typename M::cache_type>;
  m.next_logits(cache, ids, n, out);
  cache.reorder(rows);
  { cache.length() } -> std::convertible_to<std::size_t>;
};

} // namespace grad
