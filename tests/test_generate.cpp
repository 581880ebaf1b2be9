// Tests of grad::generate and its pieces (generate/*.hpp) on tiny hand-written models whose
// next-token distributions are known exactly, so every option's semantics can be checked by hand or
// by brute force.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <stdexcept>
#include <vector>

#include <grad/generate/generate.hpp>

namespace {

using ids_t = std::vector<std::int64_t>;

struct lm_config {
  std::size_t vocab_size = 0;
  std::size_t n_positions = 64;
};

// A cache that stores each row's whole history, so a model can compute anything from it, and
// reorder() must really move rows for the results to be right.
struct history_cache {
  std::vector<ids_t> rows;
  std::size_t capacity = 0;
  std::size_t reorders = 0;
  std::size_t batch() const { return rows.size(); }
  std::size_t length() const { return rows.empty() ? 0 : rows[0].size(); }
  void reorder(std::span<const std::size_t> src) {
    std::vector<ids_t> next;
    for (std::size_t r : src) {
      if (r >= rows.size())
        throw std::logic_error("reorder: row out of range");
      next.push_back(rows[r]);
    }
    rows = std::move(next);
    ++reorders;
  }
};

// A causal LM whose logits are any function of a row's history (prompt + generated so far).
template <class T>
struct function_lm {
  using value_type = T;
  using cache_type = history_cache;
  lm_config cfg;
  std::function<std::vector<double>(std::span<const std::int64_t>)> logits_of;
  mutable std::vector<std::size_t> calls; // n of every next_logits call

  const lm_config& config() const { return cfg; }
  history_cache make_cache(std::size_t batch, std::size_t max_len) const {
    if (max_len > cfg.n_positions)
      throw grad::value_error("make_cache: too long");
    history_cache c;
    c.rows.resize(batch);
    c.capacity = max_len;
    return c;
  }
  void next_logits(history_cache& c, std::span<const std::int64_t> ids, std::size_t n, T* out) const {
    if (ids.size() != c.batch() * n || n == 0)
      throw std::logic_error("next_logits: ids do not match batch * n");
    calls.push_back(n);
    for (std::size_t r = 0; r < c.batch(); ++r) {
      c.rows[r].insert(c.rows[r].end(), ids.begin() + static_cast<std::ptrdiff_t>(r * n),
                       ids.begin() + static_cast<std::ptrdiff_t>((r + 1) * n));
      if (c.rows[r].size() > c.capacity)
        throw std::logic_error("next_logits: cache capacity exceeded");
      const auto l = logits_of(c.rows[r]);
      for (std::size_t v = 0; v < cfg.vocab_size; ++v)
        out[r * cfg.vocab_size + v] = static_cast<T>(l[v]);
    }
  }
};

static_assert(grad::causal_lm<function_lm<float>>);
static_assert(grad::causal_lm<function_lm<double>>);
static_assert(!grad::causal_lm<int>);

// A bigram model: row `prev` of `probs` is the distribution of the next token; logits are log-probs.
template <class T = double>
function_lm<T> bigram(std::vector<std::vector<double>> probs, std::size_t n_positions = 64) {
  function_lm<T> m;
  m.cfg = {probs.size(), n_positions};
  m.logits_of = [probs](std::span<const std::int64_t> h) {
    std::vector<double> l;
    for (double p : probs[static_cast<std::size_t>(h.back())])
      l.push_back(p > 0 ? std::log(p) : -1e30);
    return l;
  };
  return m;
}

// Logits that depend on the whole history: a hash of (history, token) mapped to [-3, 3).
double hashed_logit(std::span<const std::int64_t> h, std::size_t v) {
  std::uint64_t x = 0x9e3779b97f4a7c15ULL * (v + 1);
  for (auto t : h) {
    x ^= static_cast<std::uint64_t>(t) + 0x632be59bd9b4e019ULL + (x << 6) + (x >> 2);
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 31;
  }
  return -3.0 + 6.0 * static_cast<double>(x >> 11) * 0x1.0p-53;
}

function_lm<double> hashed_lm(std::size_t vocab, std::size_t n_positions = 64) {
  function_lm<double> m;
  m.cfg = {vocab, n_positions};
  m.logits_of = [vocab](std::span<const std::int64_t> h) {
    std::vector<double> l(vocab);
    for (std::size_t v = 0; v < vocab; ++v)
      l[v] = hashed_logit(h, v);
    return l;
  };
  return m;
}

std::vector<double> log_probs(const function_lm<double>& m, std::span<const std::int64_t> h) {
  auto l = m.logits_of(h);
  double top = *std::max_element(l.begin(), l.end()), z = 0;
  for (double x : l)
    z += std::exp(x - top);
  for (double& x : l)
    x -= top + std::log(z);
  return l;
}

ids_t row(const grad::index_tensor& t, std::size_t r) {
  const std::size_t L = t.size(1);
  return ids_t(t.values().begin() + static_cast<std::ptrdiff_t>(r * L),
               t.values().begin() + static_cast<std::ptrdiff_t>((r + 1) * L));
}

std::vector<double> scores_of(std::initializer_list<double> p) {
  std::vector<double> s;
  for (double x : p)
    s.push_back(std::log(x));
  return s;
}

std::set<std::size_t> kept(const std::vector<double>& s) {
  std::set<std::size_t> k;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (s[i] != grad::generation::removed)
      k.insert(i);
  return k;
}

} // namespace

TEST_CASE("logits processors: temperature, top-k (ties kept), top-p (smallest set reaching p)") {
  using namespace grad::generation;
  std::vector<double> t = {1.0, -2.0, 0.5};
  apply_temperature(t, 2.0);
  CHECK(t == std::vector<double>{0.5, -1.0, 0.25});
  CHECK_THROWS_AS(apply_temperature(t, 0.0), grad::value_error);

  std::vector<double> s = {1, 5, 3, 5, 2};
  auto k = s;
  apply_top_k(k, 2);
  CHECK(kept(k) == std::set<std::size_t>{1, 3});
  k = s;
  apply_top_k(k, 1); // the k-th value is tied: both copies stay, as in transformers
  CHECK(kept(k) == std::set<std::size_t>{1, 3});
  k = s;
  apply_top_k(k, 3);
  CHECK(kept(k) == std::set<std::size_t>{1, 2, 3});
  k = s;
  apply_top_k(k, 0);
  CHECK(k == s);
  k = s;
  apply_top_k(k, 1, 4); // min_tokens_to_keep wins over top_k
  CHECK(kept(k) == std::set<std::size_t>{1, 2, 3, 4});
  k = s;
  apply_top_k(k, 10);
  CHECK(k == s);

  // probabilities 0.15, 0.5, 0.05, 0.3 (token 1 first, then 3, 0, 2)
  const auto p = scores_of({0.15, 0.5, 0.05, 0.3});
  const std::map<double, std::set<std::size_t>> expect = {
      {0.0, {1}},        {0.4, {1}},           {0.6, {1, 3}},      {0.79, {1, 3}},
      {0.81, {0, 1, 3}}, {0.96, {0, 1, 2, 3}}, {1.0, {0, 1, 2, 3}}};
  for (const auto& [p_value, set] : expect) {
    const double top_p = p_value; // structured bindings cannot be captured (clang 14)
    CAPTURE(top_p);
    auto q = p;
    apply_top_p(q, top_p);
    CHECK(kept(q) == set);
    for (std::size_t i : set) // kept scores are unchanged
      CHECK(q[i] == p[i]);
  }
  auto q = p;
  apply_top_p(q, 0.0, 3);
  CHECK(kept(q) == std::set<std::size_t>{0, 1, 3});
  CHECK_THROWS_AS(apply_top_p(q, 1.5), grad::value_error);
  // Tokens already removed count as probability 0.
  auto r = p;
  r[1] = removed; // left: 0.15, 0.05, 0.3 -> renormalized 0.3, 0.1, 0.6
  apply_top_p(r, 0.85);
  CHECK(kept(r) == std::set<std::size_t>{0, 3});
}

TEST_CASE("logits processors: repetition penalty and no-repeat n-grams") {
  using namespace grad::generation;
  std::vector<double> s = {2.0, -2.0, 1.0, -1.0, 0.5};
  const ids_t seq = {0, 1, 1, 4}; // token 1 twice: penalized once
  apply_repetition_penalty(s, seq, 2.0);
  CHECK(s == std::vector<double>{1.0, -4.0, 1.0, -1.0, 0.25});
  auto same = s;
  apply_repetition_penalty(same, seq, 1.0);
  CHECK(same == s);

  CHECK(banned_ngram_tokens(ids_t{1, 2, 3, 1, 2}, 3) == ids_t{3});
  CHECK(banned_ngram_tokens(ids_t{1, 2, 3, 1, 2, 4, 1, 2}, 3) == ids_t{3, 4});
  CHECK(banned_ngram_tokens(ids_t{1, 2, 3, 1, 2}, 2) == ids_t{3});
  CHECK(banned_ngram_tokens(ids_t{1, 2, 1, 2, 1}, 2) == ids_t{2});
  CHECK(banned_ngram_tokens(ids_t{5, 3, 5, 7}, 1) == ids_t{3, 5, 7}); // n = 1: no token twice
  CHECK(banned_ngram_tokens(ids_t{1, 2, 3}, 2).empty());              // 3 was never followed
  CHECK(banned_ngram_tokens(ids_t{5}, 3).empty());                    // too short for a trigram
  CHECK(banned_ngram_tokens(ids_t{5, 5}, 3).empty());                 // (5, 5, x) never seen
  CHECK(banned_ngram_tokens(ids_t{5, 5, 5}, 3) == ids_t{5});
  CHECK(banned_ngram_tokens(ids_t{1, 2, 3}, 0).empty());
  std::vector<double> b(6, 0.0);
  apply_no_repeat_ngram(b, ids_t{1, 2, 3, 1, 2, 4, 1, 2}, 3);
  CHECK(kept(b) == std::set<std::size_t>{0, 1, 2, 5});
}

TEST_CASE("sample_index draws with the given probabilities") {
  grad::generator gen(7);
  const std::vector<double> probs = {0.1, 0.0, 0.2, 0.3, 0.4};
  const int n = 100000;
  std::vector<int> count(probs.size(), 0);
  for (int i = 0; i < n; ++i)
    ++count[grad::generation::sample_index(probs, gen)];
  CHECK(count[1] == 0);
  for (std::size_t i = 0; i < probs.size(); ++i) {
    const double sd = std::sqrt(n * probs[i] * (1 - probs[i]));
    CHECK(std::abs(count[i] - n * probs[i]) <= 5 * sd + 1e-9);
  }
}

TEST_CASE("greedy decoding follows the argmax and uses the cache incrementally") {
  // next-token table (rows: previous token)
  const std::vector<std::vector<double>> P = {
      {0.1, 0.6, 0.2, 0.1}, {0.1, 0.1, 0.7, 0.1}, {0.5, 0.1, 0.1, 0.3}, {0.2, 0.2, 0.2, 0.4}};
  auto m = bigram<float>(P);
  std::vector<std::pair<std::size_t, std::int64_t>> streamed;
  const auto out = grad::generate(m, grad::index_tensor{3, 2}, {.max_new_tokens = 6},
                                  [&](std::size_t r, std::int64_t t) { streamed.emplace_back(r, t); });
  ids_t expect = {3, 2};
  for (int i = 0; i < 6; ++i) {
    const auto& p = P[static_cast<std::size_t>(expect.back())];
    expect.push_back(std::max_element(p.begin(), p.end()) - p.begin());
  }
  CHECK(out.shape() == grad::shape_type{1, 8});
  CHECK(out.values() == expect);
  REQUIRE(streamed.size() == 6);
  for (std::size_t i = 0; i < 6; ++i)
    CHECK(streamed[i] == std::pair<std::size_t, std::int64_t>{0, expect[2 + i]});
  // The prompt goes in once, then one token per step; the last token is never fed.
  CHECK(m.calls == std::vector<std::size_t>{2, 1, 1, 1, 1, 1});

  // A batch of prompts decodes each as if alone.
  const auto batch = grad::generate(m, grad::index_tensor{{3, 2}, {0, 0}}, {.max_new_tokens = 6});
  const auto alone = grad::generate(m, grad::index_tensor{0, 0}, {.max_new_tokens = 6});
  CHECK(row(batch, 0) == expect);
  CHECK(row(batch, 1) == alone.values());
}

TEST_CASE("max_length, max_new_tokens and n_positions") {
  auto m = bigram({{0.5, 0.5}, {0.5, 0.5}}, 16);
  const grad::index_tensor prompt{0, 1, 0};
  CHECK(grad::generate(m, prompt, {.max_length = 7}).shape() == grad::shape_type{1, 7});
  // max_new_tokens wins over max_length
  CHECK(grad::generate(m, prompt, {.max_new_tokens = 5, .max_length = 7}).shape() == grad::shape_type{1, 8});
  CHECK(grad::generate(m, prompt, {.max_new_tokens = 13}).shape() == grad::shape_type{1, 16});
  // beyond n_positions (16): the default max_length of 20, or 3 + 14 tokens
  CHECK_THROWS_AS(grad::generate(m, prompt), grad::value_error);
  CHECK_THROWS_AS(grad::generate(m, prompt, {.max_new_tokens = 14}), grad::value_error);
  CHECK_THROWS_AS(grad::generate(m, prompt, {.max_new_tokens = 14, .num_beams = 2}), grad::value_error);
  // nothing to generate
  CHECK_THROWS_AS(grad::generate(m, prompt, {.max_length = 3}), grad::value_error);
  auto big = bigram({{0.5, 0.5}, {0.5, 0.5}}, 64);
  CHECK(grad::generate(big, prompt).shape() == grad::shape_type{1, 20});
}

TEST_CASE("invalid configs and inputs throw value_error") {
  auto m = bigram({{0.5, 0.5}, {0.5, 0.5}});
  const grad::index_tensor p{0};
  auto bad = [&](grad::generation_config c) { CHECK_THROWS_AS(grad::generate(m, p, c), grad::value_error); };
  bad({.max_new_tokens = 0});
  bad({.max_length = 0});
  bad({.do_sample = true, .temperature = 0.0});
  bad({.temperature = -1.0});
  bad({.temperature = std::nan("")});
  bad({.top_p = 1.5});
  bad({.top_p = -0.1});
  bad({.num_beams = 0});
  bad({.length_penalty = INFINITY});
  bad({.repetition_penalty = 0.0});
  bad({.eos_token_id = -1});
  bad({.eos_token_id = 2}); // outside the vocabulary of 2
  bad({.pad_token_id = 5});
  bad({.num_return_sequences = 0});
  bad({.num_return_sequences = 2});                 // greedy gives one sequence
  bad({.num_beams = 2, .num_return_sequences = 3}); // more than the beams
  bad({.do_sample = true, .num_beams = 2});         // beam sampling is not supported
  CHECK_THROWS_AS(grad::generate(m, grad::index_tensor{0, 2}),
                  grad::value_error); // id outside the vocabulary
  CHECK_THROWS_AS(grad::generate(m, grad::index_tensor{0, -1}), grad::value_error); // negative id
  CHECK_THROWS_AS(grad::generate(m, grad::index_tensor(ids_t{}, {1, 0})), grad::value_error);
  CHECK_THROWS_AS(grad::generate(m, grad::index_tensor(ids_t{0}, {1, 1, 1})), grad::shape_error);
  try {
    grad::generate(m, p, {.top_p = 2.0});
    FAIL("no throw");
  } catch (const grad::value_error& e) {
    CHECK(std::string(e.what()).find("top_p") != std::string::npos);
  }
  CHECK_NOTHROW(grad::generation_config{}.validate());
}

TEST_CASE("eos ends a row; finished rows are padded; generation stops when all rows are done") {
  // From 0: 1; from 1: 2; from 2: 3 (eos); from 3: 0. From 4: 4 (never ends).
  const std::vector<std::vector<double>> P = {{0.1, 0.7, 0.1, 0.05, 0.05},
                                              {0.1, 0.1, 0.6, 0.1, 0.1},
                                              {0.1, 0.1, 0.1, 0.6, 0.1},
                                              {0.6, 0.1, 0.1, 0.1, 0.1},
                                              {0.1, 0.1, 0.1, 0.1, 0.6}};
  auto m = bigram(P);
  auto out = grad::generate(m, grad::index_tensor{0}, {.max_new_tokens = 10, .eos_token_id = 3});
  CHECK(out.values() == ids_t{0, 1, 2, 3});
  // Row 1 finishes after 2 tokens, row 0 after 3; pad 4 fills the finished row.
  std::vector<std::pair<std::size_t, std::int64_t>> streamed;
  out = grad::generate(m, grad::index_tensor(ids_t{0, 1}, {2, 1}),
                       {.max_new_tokens = 10, .eos_token_id = 3, .pad_token_id = 4},
                       [&](std::size_t r, std::int64_t t) { streamed.emplace_back(r, t); });
  CHECK(out.shape() == grad::shape_type{2, 4});
  CHECK(row(out, 0) == ids_t{0, 1, 2, 3});
  CHECK(row(out, 1) == ids_t{1, 2, 3, 4});
  using st = std::pair<std::size_t, std::int64_t>;
  CHECK(streamed == std::vector<st>{{0, 1}, {1, 2}, {0, 2}, {1, 3}, {0, 3}}); // no pad reported
  // Without eos the same rows run to max_new_tokens; pad defaults to eos.
  out = grad::generate(m, grad::index_tensor(ids_t{0, 1}, {2, 1}), {.max_new_tokens = 5});
  CHECK(out.shape() == grad::shape_type{2, 6});
  out = grad::generate(m, grad::index_tensor(ids_t{0, 1}, {2, 1}), {.max_new_tokens = 10, .eos_token_id = 3});
  CHECK(row(out, 1) == ids_t{1, 2, 3, 3});
  // A row that never meets eos runs to the limit.
  out = grad::generate(m, grad::index_tensor{4}, {.max_new_tokens = 4, .eos_token_id = 3});
  CHECK(out.values() == ids_t{4, 4, 4, 4, 4});
}

TEST_CASE("repetition penalty and no_repeat_ngram_size change greedy choices as computed by hand") {
  // From 0: logits log(0.4) for 0 and log(0.35) for 1 (next-most likely), 2 rare.
  const std::vector<std::vector<double>> P = {{0.4, 0.35, 0.25}, {0.45, 0.1, 0.45}, {0.3, 0.3, 0.4}};
  auto m = bigram(P);
  // Without penalty: 0 0 0 ...
  CHECK(grad::generate(m, grad::index_tensor{0}, {.max_new_tokens = 3}).values() == ids_t{0, 0, 0, 0});
  // Penalty 1.2: all logits are negative, so seen tokens are multiplied by 1.2:
  // step 1 from [0]: 0 -> 1.2 log 0.4 = -1.0995 < log 0.35 = -1.0498 -> 1.
  // step 2 from [0, 1]: row 1: 0 -> 1.2 log 0.45 = -0.958, 1 -> 1.2 log 0.1, 2 -> log 0.45 = -0.799 -> 2.
  // step 3 from [0, 1, 2]: row 2: all seen: 1.2 log(.3), 1.2 log(.3), 1.2 log(.4) -> 2.
  CHECK(grad::generate(m, grad::index_tensor{0}, {.max_new_tokens = 3, .repetition_penalty = 1.2}).values() ==
        ids_t{0, 1, 2, 2});
  // A penalty below 1 rewards repetition: from [0, 1], row 1 ties 0 and 2 at 0.45; 0 was seen -> 0.
  CHECK(grad::generate(m, grad::index_tensor{0, 1}, {.max_new_tokens = 1, .repetition_penalty = 0.9})
            .values() == ids_t{0, 1, 0});
  // no_repeat_ngram_size 2: greedy would repeat 0 0 0; the bigram (0, 0) may appear once.
  // [0] -> 0 (bigram 00 new) -> [0 0]: 0 banned -> 1 -> [0 0 1]: from 1, 0 and 2 tie, 0 first (01 new) ->
  // [0 0 1 0]: 0 and 1 banned (00, 01 seen) -> 2 -> [0 0 1 0 2]: row 2 -> 2 -> (2 2) -> ...
  const auto out = grad::generate(m, grad::index_tensor{0}, {.max_new_tokens = 6, .no_repeat_ngram_size = 2});
  CHECK(out.values() == ids_t{0, 0, 1, 0, 2, 2, 0});
  std::set<std::pair<std::int64_t, std::int64_t>> bigrams;
  for (std::size_t i = 0; i + 1 < out.numel(); ++i)
    CHECK(bigrams.insert({out[i], out[i + 1]}).second);
}

TEST_CASE("sampling: temperature, top-k and top-p keep exactly the right tokens with the right odds") {
  // First-token distribution from token 0: 0.15, 0.5, 0.05, 0.3.
  const std::vector<std::vector<double>> P = {
      {0.15, 0.5, 0.05, 0.3}, {0.25, 0.25, 0.25, 0.25}, {0.25, 0.25, 0.25, 0.25}, {0.25, 0.25, 0.25, 0.25}};
  auto m = bigram(P);
  const std::size_t n = 20000;
  auto freq = [&](grad::generation_config c) {
    c.do_sample = true;
    c.max_new_tokens = 1;
    c.num_return_sequences = n;
    c.seed = 1234;
    const auto out = grad::generate(m, grad::index_tensor{0}, c);
    REQUIRE(out.shape() == grad::shape_type{n, 2});
    std::vector<double> f(4, 0.0);
    for (std::size_t r = 0; r < n; ++r)
      f[static_cast<std::size_t>(out[r * 2 + 1])] += 1.0;
    return f;
  };
  auto check = [&](const std::vector<double>& f, std::vector<double> want) {
    double z = 0;
    for (double w : want)
      z += w;
    for (std::size_t i = 0; i < 4; ++i) {
      CAPTURE(i);
      const double p = want[i] / z;
      if (p == 0)
        CHECK(f[i] == 0);
      else
        CHECK(std::abs(f[i] - n * p) <= 5 * std::sqrt(n * p * (1 - p)));
    }
  };
  check(freq({.top_k = 0}), {0.15, 0.5, 0.05, 0.3});
  check(freq({.temperature = 0.5, .top_k = 0}), {0.15 * 0.15, 0.25, 0.0025, 0.09}); // p^(1/T)
  check(freq({.temperature = 2.0, .top_k = 0}),
        {std::sqrt(0.15), std::sqrt(0.5), std::sqrt(0.05), std::sqrt(0.3)});
  check(freq({.top_k = 2}), {0, 0.5, 0, 0.3});
  check(freq({.top_k = 0, .top_p = 0.6}), {0, 0.5, 0, 0.3});
  check(freq({.top_k = 0, .top_p = 0.9}), {0.15, 0.5, 0, 0.3});
  check(freq({.top_k = 0, .top_p = 0.3}), {0, 1, 0, 0});
  // The order is temperature, then top-k, then top-p: at T = 0.5 token 1 alone holds 0.685 >= 0.6.
  check(freq({.temperature = 0.5, .top_k = 0, .top_p = 0.6}), {0, 1, 0, 0});
  // top-k first: of {1, 3} (renormalized 0.625, 0.375), top_p 0.6 keeps only 1.
  check(freq({.top_k = 2, .top_p = 0.6}), {0, 1, 0, 0});
  check(freq({.top_k = 3, .top_p = 0.9}), {0.15, 0.5, 0, 0.3});
}

TEST_CASE("sampling is reproducible from the seed") {
  auto m = hashed_lm(7);
  auto run = [&](std::uint64_t seed) {
    return grad::generate(
               m, grad::index_tensor{{1, 2}, {3, 4}},
               {.max_new_tokens = 12, .do_sample = true, .top_k = 0, .seed = seed, .num_return_sequences = 2})
        .values();
  };
  CHECK(run(5) == run(5));
  std::set<ids_t> distinct;
  for (std::uint64_t seed = 0; seed < 8; ++seed)
    distinct.insert(run(seed));
  CHECK(distinct.size() > 1);
  const auto out = grad::generate(m, grad::index_tensor{{1, 2}, {3, 4}},
                                  {.max_new_tokens = 3, .do_sample = true, .num_return_sequences = 3});
  CHECK(out.shape() == grad::shape_type{6, 5}); // the rows of a prompt are adjacent
  for (std::size_t r = 0; r < 6; ++r) {
    const auto x = row(out, r);
    CHECK(ids_t(x.begin(), x.begin() + 2) == (r < 3 ? ids_t{1, 2} : ids_t{3, 4}));
  }
}

TEST_CASE("beam_hypotheses keeps the best and applies transformers' stopping rules") {
  using grad::generation::beam_hypotheses;
  using mode = grad::early_stopping_mode;
  beam_hypotheses h(2, 1.0, mode::heuristic, 10, 3);
  CHECK(!h.is_done(-100.0, 5)); // fewer than num_beams hypotheses
  h.add({1}, -2.0, 2);          // -1
  h.add({2}, -3.0, 2);          // -1.5
  CHECK(h.worst_score() == -1.5);
  h.add({3}, -1.0, 4); // -0.25 pushes out -1.5
  CHECK(h.size() == 2);
  CHECK(h.worst_score() == -1.0);
  h.add({4}, -4.0, 1); // -4: not better than the worst
  CHECK(h.size() == 2);
  std::set<ids_t> kept_tokens;
  for (const auto& x : h.hypotheses())
    kept_tokens.insert(x.tokens);
  CHECK(kept_tokens == std::set<ids_t>{{1}, {3}});
  // heuristic: the best running sum at the current length (5 - 3 = 2 tokens)
  CHECK(!h.is_done(-1.8, 5)); // -0.9 could still beat -1
  CHECK(h.is_done(-2.2, 5));  // -1.1 cannot
  // never, length_penalty > 0: at max_length (10 - 3 = 7 tokens)
  beam_hypotheses n(2, 1.0, mode::never, 10, 3);
  n.add({1}, -2.0, 2);
  n.add({3}, -1.0, 4);
  CHECK(!n.is_done(-2.2, 5)); // -2.2 / 7 = -0.31 > -1
  CHECK(n.is_done(-7.7, 5));  // -1.1
  // never, length_penalty <= 0: the current length
  beam_hypotheses z(1, 0.0, mode::never, 10, 3);
  z.add({1}, -2.0, 2);
  CHECK(!z.is_done(-1.9, 5));
  CHECK(z.is_done(-2.1, 5));
  beam_hypotheses e(1, 1.0, mode::enabled, 10, 3);
  CHECK(!e.is_done(0.0, 4));
  e.add({1}, -50.0, 2);
  CHECK(e.is_done(0.0, 4));
  // length_penalty 2: score = sum / len^2
  beam_hypotheses q(1, 2.0, mode::heuristic, 10, 0);
  q.add({1}, -8.0, 2);
  CHECK(q.worst_score() == -2.0);
}

TEST_CASE("beam search finds the sequence greedy misses") {
  // From 0: 1 (0.5) then anything (0.25 each); or 2 (0.4) then 3 (0.9): 0.36 > 0.125.
  const std::vector<std::vector<double>> P = {
      {0.05, 0.5, 0.4, 0.05}, {0.25, 0.25, 0.25, 0.25}, {0.04, 0.03, 0.03, 0.9}, {0.25, 0.25, 0.25, 0.25}};
  auto m = bigram(P);
  CHECK(grad::generate(m, grad::index_tensor{0}, {.max_new_tokens = 2}).values() == ids_t{0, 1, 0});
  std::vector<std::int64_t> streamed;
  const auto out = grad::generate(m, grad::index_tensor{0}, {.max_new_tokens = 2, .num_beams = 2},
                                  [&](std::size_t r, std::int64_t t) {
                                    CHECK(r == 0);
                                    streamed.push_back(t);
                                  });
  CHECK(out.values() == ids_t{0, 2, 3});
  CHECK(streamed == ids_t{2, 3}); // beams: the final tokens, once the search is over
  // Two best sequences, best first: 0 2 3 (0.36), then 0 1 x (0.125, x = 0 by token order on ties).
  const auto two = grad::generate(m, grad::index_tensor{0},
                                  {.max_new_tokens = 2, .num_beams = 3, .num_return_sequences = 2});
  CHECK(two.shape() == grad::shape_type{2, 3});
  CHECK(row(two, 0) == ids_t{0, 2, 3});
  CHECK(row(two, 1)[1] == 1);
}

namespace {

struct scored {
  double score;
  ids_t tokens; // generated tokens, eos included
};

// Every possible continuation of `prompt` of up to `max_new` tokens (eos only last), scored as beam search
// scores a finished hypothesis: sum of log-probs / length^length_penalty.
std::vector<scored> enumerate(const function_lm<double>& m, const ids_t& prompt, std::size_t max_new,
                              std::optional<std::int64_t> eos, double lp) {
  std::vector<scored> all;
  std::function<void(ids_t&, double)> walk = [&](ids_t& seq, double sum) {
    const auto lpv = log_probs(m, seq);
    for (std::size_t v = 0; v < lpv.size(); ++v) {
      seq.push_back(static_cast<std::int64_t>(v));
      const double s = sum + lpv[v];
      const std::size_t len = seq.size() - prompt.size();
      if ((eos && static_cast<std::int64_t>(v) == *eos) || len == max_new)
        all.push_back({s / std::pow(static_cast<double>(len), lp),
                       ids_t(seq.begin() + static_cast<std::ptrdiff_t>(prompt.size()), seq.end())});
      else
        walk(seq, s);
      seq.pop_back();
    }
  };
  ids_t seq = prompt;
  walk(seq, 0.0);
  std::sort(all.begin(), all.end(), [](const scored& a, const scored& b) { return a.score > b.score; });
  return all;
}

} // namespace

TEST_CASE("beam search wide enough to keep every prefix matches brute-force enumeration") {
  // V = 3, 3 new tokens: at most 12 live candidates per step, so 12 beams keep everything and
  // early_stopping "never" makes the search exact.
  auto m = hashed_lm(3);
  const ids_t prompt = {1, 0};
  for (const double lp : {0.0, 1.0, 2.0, -1.0}) {
    for (const bool with_eos : {false, true}) {
      CAPTURE(lp);
      CAPTURE(with_eos);
      const std::optional<std::int64_t> eos = with_eos ? std::optional<std::int64_t>(2) : std::nullopt;
      const auto truth = enumerate(m, prompt, 3, eos, lp);
      const auto out = grad::generate(m, grad::index_tensor(prompt),
                                      {.max_new_tokens = 3,
                                       .num_beams = 12,
                                       .length_penalty = lp,
                                       .early_stopping = grad::early_stopping_mode::never,
                                       .eos_token_id = eos,
                                       .num_return_sequences = 3});
      REQUIRE(out.size(0) == 3);
      for (std::size_t i = 0; i < 3; ++i) {
        CAPTURE(i);
        auto r = row(out, i);
        CHECK(ids_t(r.begin(), r.begin() + 2) == prompt);
        ids_t gen(r.begin() + 2, r.end());
        // finished hypotheses are padded with pad (= eos) after their eos
        while (gen.size() > truth[i].tokens.size() && eos && gen.back() == *eos)
          gen.pop_back();
        CHECK(gen == truth[i].tokens);
      }
    }
  }
}

TEST_CASE("beam search: batches, eos, early stopping and no-repeat n-grams") {
  auto m = hashed_lm(5);
  const grad::generation_config c{.max_new_tokens = 6, .num_beams = 3, .eos_token_id = 4};
  const auto a = grad::generate(m, grad::index_tensor{1, 2}, c);
  const auto b = grad::generate(m, grad::index_tensor{3, 3}, c);
  const auto both = grad::generate(m, grad::index_tensor{{1, 2}, {3, 3}}, c);
  const std::size_t L = both.size(1);
  auto pad_to = [&](ids_t v) {
    v.resize(L, 4);
    return v;
  };
  CHECK(row(both, 0) == pad_to(a.values()));
  CHECK(row(both, 1) == pad_to(b.values()));

  // A model that ends almost surely: every beam emits eos at once.
  auto ender = bigram({{0.05, 0.05, 0.9}, {0.05, 0.05, 0.9}, {0.05, 0.05, 0.9}});
  const auto e =
      grad::generate(ender, grad::index_tensor{0}, {.max_new_tokens = 8, .num_beams = 2, .eos_token_id = 2});
  CHECK(e.values() == ids_t{0, 2});

  // early_stopping enabled stops once num_beams hypotheses are finished, never later.
  const auto early = grad::generate(m, grad::index_tensor{1, 2},
                                    {.max_new_tokens = 20,
                                     .num_beams = 2,
                                     .early_stopping = grad::early_stopping_mode::enabled,
                                     .eos_token_id = 4});
  const auto never = grad::generate(m, grad::index_tensor{1, 2},
                                    {.max_new_tokens = 20,
                                     .num_beams = 2,
                                     .early_stopping = grad::early_stopping_mode::never,
                                     .eos_token_id = 4});
  CHECK(early.size(1) <= never.size(1));

  const auto nr = grad::generate(
      m, grad::index_tensor{1, 2},
      {.max_new_tokens = 20, .num_beams = 3, .no_repeat_ngram_size = 2, .num_return_sequences = 3});
  for (std::size_t r = 0; r < 3; ++r) {
    const auto s = row(nr, r);
    std::set<std::pair<std::int64_t, std::int64_t>> seen;
    for (std::size_t i = 0; i + 1 < s.size(); ++i)
      CHECK(seen.insert({s[i], s[i + 1]}).second);
  }
}

namespace docs_sample {
// --- doc: docs/generation.md, "Using your own model" (verbatim)
struct bigram_lm {
  using value_type = float;
  struct config_type {
    std::size_t vocab_size, n_positions;
  } cfg;
  struct cache_type {
    std::vector<std::int64_t> last; // the only state a bigram needs: each row's last token
    std::size_t len = 0;
    std::size_t length() const { return len; }
    void reorder(std::span<const std::size_t> rows) {
      std::vector<std::int64_t> l;
      for (auto r : rows)
        l.push_back(last[r]);
      last = l;
    }
  };
  std::vector<std::vector<float>> logits; // (V, V): row = previous token
  const config_type& config() const { return cfg; }
  cache_type make_cache(std::size_t batch, std::size_t) const {
    return {std::vector<std::int64_t>(batch), 0};
  }
  void next_logits(cache_type& c, std::span<const std::int64_t> ids, std::size_t n, float* out) const {
    for (std::size_t r = 0; r < c.last.size(); ++r) {
      c.last[r] = ids[r * n + n - 1];
      std::copy(logits[c.last[r]].begin(), logits[c.last[r]].end(), out + r * cfg.vocab_size);
    }
    c.len += n;
  }
};
static_assert(grad::causal_lm<bigram_lm>);
// --- end
} // namespace docs_sample

TEST_CASE("the docs' bigram model generates: greedy and beams on a hand-made table") {
  docs_sample::bigram_lm m{{3, 16}, {{0, 2, 1}, {1, 0, 2}, {2, 1, 0}}};
  CHECK(grad::generate(m, grad::index_tensor{0}, {.max_new_tokens = 4}).values() == ids_t{0, 1, 2, 0, 1});
  CHECK(grad::generate(m, grad::index_tensor{0}, {.max_new_tokens = 4, .num_beams = 2}).values() ==
        ids_t{0, 1, 2, 0, 1});
}
