// Tests of grad::profiler (profile/profiler.hpp) and the transformer estimates (profile/flops.hpp):
// counted FLOPs against hand counts, the table, CSV and Chrome trace outputs, nesting and user ranges.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <grad/grad.hpp>
#include <grad/io/json.hpp>
#include <grad/profile/flops.hpp>
#include <grad/profile/profiler.hpp>

namespace {

/// The row of `op` in `phase`, or an empty row.
grad::op_profile row(const grad::profiler& p, const std::string& op, const std::string& phase) {
  for (const auto& r : p.table())
    if (r.name == op && r.phase == phase)
      return r;
  return {};
}

std::filesystem::path temp_file(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("grad_test_profile_" + name);
}

} // namespace

TEST_CASE("profiler: matmul forward and backward FLOPs are 2MNK and 2MNK per operand needing a gradient") {
  grad::generator gen(1);
  const std::size_t m = 7, k = 11, n = 5;
  auto a = grad::randn<float>({m, k}, gen).requires_grad_();
  auto b = grad::randn<float>({k, n}, gen).requires_grad_();
  {
    grad::profiler prof;
    auto y = grad::sum(grad::matmul(a, b));
    y.backward();
    prof.stop();
    const auto f = row(prof, "matmul", "forward"), bw = row(prof, "matmul", "backward");
    CHECK(f.calls == 1);
    CHECK(f.flops == 2 * m * n * k);
    CHECK(f.bytes == (m * k + k * n + m * n) * sizeof(float));
    CHECK(bw.calls == 1);
    CHECK(bw.flops == 2 * 2 * m * n * k);
    CHECK(f.ns >= 0);
    CHECK(row(prof, "sum", "forward").calls == 1);
  }
  { // only one operand needs a gradient: one product in backward
    auto c = grad::randn<float>({k, n}, gen);
    grad::profiler prof;
    grad::sum(grad::matmul(a, c)).backward();
    CHECK(row(prof, "matmul", "backward").flops == 2 * m * n * k);
  }
}

TEST_CASE("profiler: a whole MLP training step is counted op by op as a hand count says") {
  grad::generator gen(2);
  const std::size_t batch = 8, in = 20, hidden = 16, out = 4;
  grad::nn::linear l1(in, hidden, {}, gen), l2(hidden, out, {}, gen);
  auto x = grad::randn<float>({batch, in}, gen);
  grad::index_tensor y({0, 1, 2, 3, 0, 1, 2, 3});
  grad::profiler prof;
  auto loss = grad::cross_entropy(l2(grad::relu(l1(x))), y);
  loss.backward();
  prof.stop();
  // linear: 2 * batch * in * out multiply-adds plus batch * out bias adds.
  const std::uint64_t fwd1 = 2 * batch * in * hidden + batch * hidden;
  const std::uint64_t fwd2 = 2 * batch * hidden * out + batch * out;
  const auto lf = row(prof, "linear", "forward"), lb = row(prof, "linear", "backward");
  CHECK(lf.calls == 2);
  CHECK(lf.flops == fwd1 + fwd2);
  // Backward: layer 1's input x needs no gradient (dW and db only); layer 2 computes dx, dW and db.
  CHECK(lb.calls == 2);
  CHECK(lb.flops ==
        (2 * batch * in * hidden + batch * hidden) + (2 * 2 * batch * hidden * out + batch * out));
  CHECK(row(prof, "relu", "forward").calls == 1);
  // Totals add up.
  const auto all = prof.total(), f = prof.total("forward"), b = prof.total("backward");
  CHECK(all.flops == f.flops + b.flops);
  CHECK(all.calls == f.calls + b.calls);
  CHECK(row(prof, "cross_entropy", "forward").calls == 1);
  CHECK(row(prof, "cross_entropy", "backward").calls == 1);
  // The table is sorted by time.
  const auto t = prof.table();
  for (std::size_t i = 1; i < t.size(); ++i)
    CHECK(t[i - 1].ns >= t[i].ns);
}

TEST_CASE("profiler: off by default, nests, stops on destruction, and ignores ops of other threads") {
  CHECK(grad::detail::active_op_sink() == nullptr);
  grad::generator gen(3);
  auto a = grad::randn<float>({3, 3}, gen);
  {
    grad::profiler outer;
    (void)grad::exp(a);
    {
      grad::profiler inner;
      (void)grad::tanh(a);
      CHECK(row(inner, "tanh", "forward").calls == 1);
      CHECK(row(inner, "exp", "forward").calls == 0);
    }
    (void)grad::exp(a);
    CHECK(row(outer, "exp", "forward").calls == 2);
    CHECK(row(outer, "tanh", "forward").calls == 0); // recorded by the inner one only
    outer.stop();
    (void)grad::exp(a);
    CHECK(row(outer, "exp", "forward").calls == 2);
    outer.start();
    (void)grad::exp(a);
    CHECK(row(outer, "exp", "forward").calls == 3);
    outer.reset();
    CHECK(outer.table().empty());
  }
  CHECK(grad::detail::active_op_sink() == nullptr);
}

TEST_CASE("profiler: user ranges, CSV, printed table and a Chrome trace that parses as Trace Event JSON") {
  grad::generator gen(4);
  auto a = grad::randn<float>({16, 16}, gen).requires_grad_();
  grad::profiler prof;
  {
    grad::profile_range r("my_step", 1000, 64);
    grad::sum(grad::matmul(a, a)).backward();
  }
  prof.stop();
  const auto u = row(prof, "my_step", "user");
  CHECK(u.calls == 1);
  CHECK(u.flops == 1000);
  CHECK(prof.total().calls == prof.total("forward").calls + prof.total("backward").calls); // no user rows

  const std::string csv = prof.to_csv();
  CHECK(csv.rfind("op,phase,calls,seconds,flops,bytes,gflops_per_second,gbytes_per_second\n", 0) == 0);
  CHECK(csv.find("matmul,forward,1,") != std::string::npos);
  CHECK(csv.find("matmul,backward,1,") != std::string::npos);

  const std::string table = prof.to_string();
  CHECK(table.find("matmul") != std::string::npos);
  CHECK(table.find("total") != std::string::npos);

  const auto path = temp_file("trace.json");
  prof.write_chrome_trace(path);
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  const grad::json::value doc = grad::json::parse(ss.str(), path.string());
  const auto& events = doc.at("traceEvents").as_array();
  CHECK(events.size() == prof.events().size());
  bool saw_matmul = false;
  for (const auto& e : events) {
    const auto& o = e;
    CHECK(o.at("ph").as_string() == "X");
    CHECK(o.at("dur").as_double() >= 0);
    CHECK(o.at("ts").as_double() >= 0);
    if (o.at("name").as_string() == "matmul" && o.at("cat").as_string() == "forward") {
      saw_matmul = true;
      CHECK(o.at("args").at("flops").as_int() == 2 * 16 * 16 * 16);
    }
  }
  CHECK(saw_matmul);
  std::filesystem::remove(path);

  const auto csv_path = temp_file("table.csv");
  prof.write_csv(csv_path);
  CHECK(std::filesystem::file_size(csv_path) == csv.size());
  std::filesystem::remove(csv_path);
}

TEST_CASE("profiler: trace events beyond max_events are dropped but still counted") {
  grad::generator gen(5);
  auto a = grad::randn<float>({4}, gen);
  grad::profiler prof({.max_events = 3});
  for (int i = 0; i < 5; ++i)
    (void)grad::exp(a);
  CHECK(prof.events().size() == 3);
  CHECK(prof.dropped_events() == 2);
  CHECK(row(prof, "exp", "forward").calls == 5);
}

namespace {
struct test_config {
  std::size_t vocab_size, n_positions, n_embd, n_layer, n_head;
  bool tie_word_embeddings;
};
} // namespace

TEST_CASE("estimate_transformer: GPT-2 124M parameters, FLOPs per token, memory; GPT-3's 6ND") {
  const test_config gpt2{50257, 1024, 768, 12, 12, true};
  const auto e = grad::estimate_transformer(gpt2);
  CHECK(e.parameters == 124439808); // Hugging Face's GPT2LMHeadModel, tied head
  CHECK(e.embedding_parameters == 50257 * 768 + 1024 * 768);
  CHECK(e.non_embedding_parameters == e.parameters - e.embedding_parameters);
  // 24 C^2 L + 2 C V + 4 * (T + 1) / 2 * C * L at T = 1024.
  const double c = 768, l = 12, v = 50257, t = 1024;
  CHECK(e.forward_flops_per_token == doctest::Approx(24 * c * c * l + 2 * c * v + 2 * (t + 1) * c * l));
  CHECK(e.training_flops(1000) == doctest::Approx(3 * e.forward_flops_per_token * 1000));
  CHECK(e.weight_bytes == doctest::Approx(4.0 * 124439808));
  CHECK(e.adam_state_bytes == doctest::Approx(2 * e.weight_bytes));
  const test_config untied{100, 64, 32, 2, 4, false};
  CHECK(grad::estimate_transformer(untied).parameters ==
        grad::estimate_transformer(test_config{100, 64, 32, 2, 4, true}).parameters + 100 * 32);
  // GPT-3: 175e9 parameters, 300e9 tokens: ~3.15e23 FLOPs.
  CHECK(grad::training_flops(175e9, 300e9) == doctest::Approx(3.15e23));
  // 1024 accelerators of 312 TFLOP/s at 40%: about 28.5 days.
  CHECK(grad::training_days(3.15e23, 1024, 312e12, 0.4) ==
        doctest::Approx(3.15e23 / (1024 * 312e12 * 0.4) / 86400));
}
