// Tests of the GPT-2 model (models/gpt.hpp): Hugging Face parameter names, shapes and counts, forward
// shapes and causality, a double gradient check of every parameter of tiny models (tied and untied, both
// GELUs), incremental decoding with the KV cache against forward() (prompts, single steps, chunks,
// batch 2), cache reorder, AdamW training on a repeated sequence, dropout, and errors.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <grad/grad.hpp>
#include <grad/models/gpt.hpp>

#include "op_check.hpp"

using grad::index_tensor;
using grad::models::basic_gpt;
using grad::models::gpt_config;
using op_check::error_message;
using op_check::mentions;

namespace {

gpt_config tiny(std::size_t v = 11, bool tied = true, const char* act = "gelu_new") {
  return {.vocab_size = v,
          .n_positions = 12,
          .n_embd = 8,
          .n_layer = 2,
          .n_head = 2,
          .layer_norm_epsilon = 1e-5,
          .activation = act,
          .tie_word_embeddings = tied,
          .dropout = 0.0};
}

/// Random ids in [0, v) of shape (b, t).
index_tensor random_ids(std::size_t b, std::size_t t, std::size_t v, grad::generator& gen) {
  std::vector<std::int64_t> ids(b * t);
  for (auto& i : ids)
    i = static_cast<std::int64_t>(gen.randint(v));
  return index_tensor(ids, {b, t});
}

/// Sets every bias and LayerNorm parameter to random values too, so that the checks see them act.
template <class T>
void perturb_all(basic_gpt<T>& m, grad::generator& gen) {
  grad::no_grad ng;
  for (auto& [name, p] : m.named_parameters())
    if (name.find("bias") != std::string::npos || name.find("ln_") != std::string::npos)
      for (std::size_t i = 0; i < p.numel(); ++i)
        p.data()[i] += static_cast<T>(0.1 * gen.normal());
}

} // namespace

TEST_CASE("gpt: Hugging Face GPT-2 parameter names, shapes and order") {
  grad::generator gen(0);
  const basic_gpt<float> m(tiny(), gen);
  const auto np = m.named_parameters();
  std::vector<std::pair<std::string, grad::shape_type>> want = {{"wte.weight", {11, 8}},
                                                                {"wpe.weight", {12, 8}}};
  for (int i = 0; i < 2; ++i) {
    const std::string p = "h." + std::to_string(i) + ".";
    for (auto [n, s] : std::vector<std::pair<std::string, grad::shape_type>>{{"ln_1.weight", {8}},
                                                                             {"ln_1.bias", {8}},
                                                                             {"attn.c_attn.weight", {8, 24}},
                                                                             {"attn.c_attn.bias", {24}},
                                                                             {"attn.c_proj.weight", {8, 8}},
                                                                             {"attn.c_proj.bias", {8}},
                                                                             {"ln_2.weight", {8}},
                                                                             {"ln_2.bias", {8}},
                                                                             {"mlp.c_fc.weight", {8, 32}},
                                                                             {"mlp.c_fc.bias", {32}},
                                                                             {"mlp.c_proj.weight", {32, 8}},
                                                                             {"mlp.c_proj.bias", {8}}})
      want.emplace_back(p + n, s);
  }
  want.emplace_back("ln_f.weight", grad::shape_type{8});
  want.emplace_back("ln_f.bias", grad::shape_type{8});
  REQUIRE(np.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    CHECK(np[i].first == want[i].first);
    CHECK(np[i].second.shape() == want[i].second);
    CHECK(np[i].second.requires_grad());
  }
  // untied: one more parameter, lm_head.weight (V, C), last
  const basic_gpt<float> u(tiny(11, false), gen);
  const auto nu = u.named_parameters();
  REQUIRE(nu.size() == want.size() + 1);
  CHECK(nu.back().first == "lm_head.weight");
  CHECK(nu.back().second.shape() == grad::shape_type{11, 8});
}

TEST_CASE("gpt: GPT-2 124M has 124,439,808 parameters with the tied head; GPT-2 initialisation") {
  grad::generator gen(1);
  const grad::models::gpt m(gpt_config{}, gen);
  CHECK(grad::nn::parameter_count(m) == 124439808);
  // init: N(0, 0.02) weights, residual projections N(0, 0.02 / sqrt(24)), zero biases, LN (1, 0)
  auto stdev = [](const grad::tensor& t) {
    double s = 0, s2 = 0;
    for (std::size_t i = 0; i < t.numel(); ++i) {
      s += t.data()[i];
      s2 += double(t.data()[i]) * t.data()[i];
    }
    const double mu = s / double(t.numel());
    return std::sqrt(s2 / double(t.numel()) - mu * mu);
  };
  CHECK(stdev(m.wte) == doctest::Approx(0.02).epsilon(0.01));
  CHECK(stdev(m.h[0].attn.c_attn.weight) == doctest::Approx(0.02).epsilon(0.01));
  CHECK(stdev(m.h[3].mlp.c_proj.weight) == doctest::Approx(0.02 / std::sqrt(24.0)).epsilon(0.01));
  CHECK(stdev(m.h[3].attn.c_proj.weight) == doctest::Approx(0.02 / std::sqrt(24.0)).epsilon(0.02));
  CHECK(m.h[5].mlp.c_fc.bias.data()[7] == 0.0f);
  CHECK(m.ln_f.weight.data()[3] == 1.0f);
  CHECK(m.ln_f.bias.data()[3] == 0.0f);
}

TEST_CASE("gpt: forward shape, causality, and LM head tied to wte") {
  grad::generator gen(2);
  basic_gpt<double> m(tiny(), gen);
  perturb_all(m, gen);
  const auto ids = random_ids(2, 7, 11, gen);
  grad::no_grad ng;
  const auto y = m.forward(ids);
  CHECK(y.shape() == grad::shape_type{2, 7, 11});
  // changing the last token leaves the logits of earlier positions unchanged
  auto v = ids.values();
  v[6] = (v[6] + 1) % 11;
  const auto y2 = m.forward(index_tensor(v, {2, 7}));
  for (std::size_t t = 0; t < 7; ++t)
    for (std::size_t j = 0; j < 11; ++j) {
      const double a = y.data()[t * 11 + j], b = y2.data()[t * 11 + j];
      if (t < 6)
        CHECK(a == b);
    }
  // tied head: scaling wte row 3 changes logit 3 of every position
  const double before = y.data()[3 + 11 * 2];
  for (std::size_t j = 0; j < 8; ++j)
    m.wte.data()[3 * 8 + j] *= 2;
  CHECK(m.forward(ids).data()[3 + 11 * 2] != before);
}

TEST_CASE("gpt: gradient check in double of every parameter of tiny models (tied/untied, gelu_new/gelu)") {
  for (const auto& cfg : {tiny(7, true, "gelu_new"), tiny(7, false, "gelu")}) {
    INFO("tied=", cfg.tie_word_embeddings, " activation=", cfg.activation);
    grad::generator gen(3);
    basic_gpt<double> m(cfg, gen);
    perturb_all(m, gen);
    const auto ids = random_ids(2, 5, 7, gen);
    const auto targets = random_ids(10, 1, 7, gen);
    const index_tensor tg(targets.values(), {10});
    auto params = m.parameters();
    // gradcheck perturbs the inputs in place: they are the model's own parameters, so f ignores them
    auto f = [&](const std::vector<grad::dtensor>&) {
      return grad::cross_entropy(grad::reshape(m.forward(ids), {-1, 7}), tg);
    };
    const auto r = grad::gradcheck(f, params, {.eps = 1e-6, .atol = 1e-7, .rtol = 1e-5});
    CHECK_MESSAGE(r.ok, r.message);
    for (auto& p : params)
      p.zero_grad();
  }
}

TEST_CASE("gpt: incremental decoding with the KV cache equals forward() (prompts, steps, chunks, batch 2)") {
  for (bool tied : {true, false}) {
    grad::generator gen(4);
    basic_gpt<double> m(tiny(13, tied), gen);
    perturb_all(m, gen);
    const std::size_t b = 2, total = 11;
    const auto ids = random_ids(b, total, 13, gen);
    grad::no_grad ng;
    const auto full = m.forward(ids); // (2, 11, 13)
    // schedules of chunk sizes: a 3-token prompt then single tokens; a 1-token prompt; chunks of 2 and 4
    for (const std::vector<std::size_t>& sched :
         {std::vector<std::size_t>{3, 1, 1, 1, 1, 1, 1, 1, 1},
          std::vector<std::size_t>{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, std::vector<std::size_t>{2, 4, 1, 4}}) {
      auto cache = m.make_cache(b, 12);
      std::size_t pos = 0;
      for (std::size_t n : sched) {
        std::vector<std::int64_t> chunk;
        for (std::size_t r = 0; r < b; ++r)
          for (std::size_t i = 0; i < n; ++i)
            chunk.push_back(ids[r * total + pos + i]);
        std::vector<double> out(b * 13);
        m.next_logits(cache, chunk, n, out.data());
        pos += n;
        CHECK(cache.length() == pos);
        for (std::size_t r = 0; r < b; ++r)
          for (std::size_t j = 0; j < 13; ++j)
            CHECK(out[r * 13 + j] ==
                  doctest::Approx(full.data()[(r * total + pos - 1) * 13 + j]).epsilon(1e-11));
      }
    }
  }
}

TEST_CASE("gpt: float KV-cache decoding agrees with float forward()") {
  grad::generator gen(5);
  grad::models::gpt m({.vocab_size = 30, .n_positions = 40, .n_embd = 32, .n_layer = 2, .n_head = 4}, gen);
  const auto ids = random_ids(1, 20, 30, gen);
  grad::no_grad ng;
  const auto full = m.forward(ids);
  auto cache = m.make_cache(1, 40);
  std::vector<float> out(30);
  m.next_logits(cache, std::span<const std::int64_t>(ids.values().data(), 8), 8, out.data());
  for (std::size_t t = 8; t <= 20; ++t) {
    for (std::size_t j = 0; j < 30; ++j)
      CHECK(out[j] == doctest::Approx(full.data()[(t - 1) * 30 + j]).epsilon(1e-4).scale(1e-3));
    if (t < 20)
      m.next_logits(cache, std::span<const std::int64_t>(ids.values().data() + t, 1), 1, out.data());
  }
}

TEST_CASE("gpt_kv_cache: reorder (beam search) keeps decoding equal to forward() of the reordered rows") {
  grad::generator gen(6);
  basic_gpt<double> m(tiny(9), gen);
  perturb_all(m, gen);
  const auto ids = random_ids(3, 4, 9, gen);
  grad::no_grad ng;
  auto cache = m.make_cache(3, 10);
  std::vector<double> out(3 * 9);
  m.next_logits(cache, ids.values(), 4, out.data());
  const std::vector<std::size_t> src = {2, 0, 2, 1}; // batch 3 -> 4
  cache.reorder(src);
  CHECK(cache.batch() == 4);
  CHECK(cache.length() == 4);
  const std::vector<std::int64_t> next = {1, 2, 3, 4};
  std::vector<double> out2(4 * 9);
  m.next_logits(cache, next, 1, out2.data());
  for (std::size_t r = 0; r < 4; ++r) {
    std::vector<std::int64_t> seq(ids.values().begin() + src[r] * 4, ids.values().begin() + src[r] * 4 + 4);
    seq.push_back(next[r]);
    const auto full = m.forward(index_tensor(seq, {1, 5}));
    for (std::size_t j = 0; j < 9; ++j)
      CHECK(out2[r * 9 + j] == doctest::Approx(full.data()[4 * 9 + j]).epsilon(1e-11));
  }
  cache.clear();
  CHECK(cache.length() == 0);
  const std::vector<std::size_t> bad = {0, 4};
  CHECK(mentions(error_message<grad::value_error>([&] { cache.reorder(bad); }), {"reorder", "4", "[0, 4)"}));
}

TEST_CASE("gpt: a few AdamW steps reduce the loss on a tiny repeated sequence") {
  grad::generator gen(7);
  grad::models::gpt m({.vocab_size = 5, .n_positions = 16, .n_embd = 16, .n_layer = 2, .n_head = 2}, gen);
  std::vector<std::int64_t> seq;
  for (int i = 0; i < 17; ++i)
    seq.push_back(i % 5);
  const index_tensor x(std::vector<std::int64_t>(seq.begin(), seq.end() - 1), {1, 16});
  const index_tensor y(std::vector<std::int64_t>(seq.begin() + 1, seq.end()), {16});
  grad::optim::adamw opt(m.parameters(), {.lr = 1e-2});
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    opt.zero_grad();
    auto loss = grad::cross_entropy(grad::reshape(m.forward(x), {-1, 5}), y);
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item();
  }
  CHECK(first > 1.2); // about log 5 = 1.61 at initialisation
  CHECK(last < 0.25 * first);
}

TEST_CASE("gpt: dropout is active in training and off in eval") {
  grad::generator gen(8);
  auto cfg = tiny();
  cfg.dropout = 0.3;
  basic_gpt<float> m(cfg, gen);
  const auto ids = random_ids(2, 6, 11, gen);
  grad::no_grad ng;
  const auto a = m.forward(ids), b = m.forward(ids); // training: fresh masks
  bool differs = false;
  for (std::size_t i = 0; i < a.numel(); ++i)
    differs = differs || a.data()[i] != b.data()[i];
  CHECK(differs);
  m.eval();
  CHECK_FALSE(m.h[1].attn.is_training());
  const auto c = m.forward(ids), d = m.forward(ids);
  for (std::size_t i = 0; i < c.numel(); ++i)
    CHECK(c.data()[i] == d.data()[i]);
}

TEST_CASE("gpt: config validation and usage errors") {
  grad::generator gen(9);
  auto bad = [&](gpt_config c, std::vector<std::string> parts) {
    CHECK(mentions(error_message<grad::value_error>([&] { c.validate(); }), parts));
    CHECK(mentions(error_message<grad::value_error>([&] { grad::models::gpt g(c, gen); }), parts));
  };
  auto c = tiny();
  c.n_head = 3;
  bad(c, {"gpt_config", "n_embd = 8", "n_head = 3"});
  c = tiny();
  c.activation = "relu";
  bad(c, {"gpt_config", "relu"});
  c = tiny();
  c.vocab_size = 0;
  bad(c, {"gpt_config", "vocab_size"});
  c = tiny();
  c.n_layer = 0;
  bad(c, {"gpt_config", "n_layer"});
  c = tiny();
  c.dropout = 1.0;
  bad(c, {"gpt_config", "dropout"});

  grad::models::gpt m(tiny(), gen);
  CHECK(mentions(error_message<grad::value_error>([&] { (void)m.make_cache(1, 13); }),
                 {"make_cache", "13", "12"}));
  CHECK(mentions(error_message<grad::shape_error>([&] {
                   (void)m.forward(index_tensor{1, 2});
                 }),
                 {"gpt", "(2,)"}));
  CHECK(mentions(error_message<grad::shape_error>([&] {
                   (void)m.forward(index_tensor(std::vector<std::int64_t>(13, 0), {1, 13}));
                 }),
                 {"gpt", "13", "n_positions = 12"}));
  CHECK(mentions(error_message<grad::value_error>([&] { (void)m.forward(index_tensor{{1, 11}}); }), {"11"}));
  auto cache = m.make_cache(2, 4);
  std::vector<float> out(2 * 11);
  const std::vector<std::int64_t> three = {1, 2, 3};
  CHECK(mentions(error_message<grad::value_error>([&] { m.next_logits(cache, three, 1, out.data()); }),
                 {"next_logits", "3 ids", "batch 2"}));
  const std::vector<std::int64_t> oob = {1, 11};
  CHECK(mentions(error_message<grad::value_error>([&] { m.next_logits(cache, oob, 1, out.data()); }),
                 {"next_logits", "11", "[0, 11)"}));
  const std::vector<std::int64_t> ten(10, 1);
  CHECK(mentions(error_message<grad::value_error>([&] { m.next_logits(cache, ten, 5, out.data()); }),
                 {"next_logits", "do not fit"}));
  grad::models::gpt other({.vocab_size = 11, .n_positions = 12, .n_embd = 8, .n_layer = 1, .n_head = 2}, gen);
  auto foreign = other.make_cache(2, 4);
  const std::vector<std::int64_t> two = {1, 2};
  CHECK(mentions(error_message<grad::value_error>([&] { m.next_logits(foreign, two, 1, out.data()); }),
                 {"next_logits", "cache"}));
}

TEST_CASE("gpt: next_logits runs without the tape, with grad mode on and parameters requiring grad") {
  grad::generator gen(10);
  grad::models::gpt m(tiny(), gen);
  REQUIRE(m.wte.requires_grad());
  REQUIRE(grad::is_grad_enabled());
  const std::size_t before = grad::current_tape().size();
  auto cache = m.make_cache(1, 12);
  std::vector<float> out(11);
  const std::vector<std::int64_t> ids = {1, 2, 3};
  m.next_logits(cache, ids, 3, out.data());
  CHECK(grad::current_tape().size() == before);
  CHECK(cache.length() == 3);
  CHECK_FALSE(m.wte.has_grad());
}

TEST_CASE(
    "gpt: batch-1 decoding (the streaming matrix-vector path, split over column ranges) equals forward()") {
  // C = 512: c_fc has 2048 columns, so its one-row product is split into two column ranges.
  grad::generator gen(11);
  basic_gpt<double> m({.vocab_size = 20, .n_positions = 8, .n_embd = 512, .n_layer = 1, .n_head = 4}, gen);
  perturb_all(m, gen);
  const auto ids = random_ids(1, 6, 20, gen);
  grad::no_grad ng;
  const auto full = m.forward(ids);
  for (int threads : {1, 2}) {
    grad::set_num_threads(threads);
    auto cache = m.make_cache(1, 8);
    std::vector<double> out(20);
    for (std::size_t t = 0; t < 6; ++t) {
      m.next_logits(cache, std::span<const std::int64_t>(ids.values().data() + t, 1), 1, out.data());
      for (std::size_t j = 0; j < 20; ++j)
        CHECK(out[j] == doctest::Approx(full.data()[t * 20 + j]).epsilon(1e-11));
    }
  }
  grad::set_num_threads(0);
}
