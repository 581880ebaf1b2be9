// One training step of example 06's character-level GPT (vocabulary 113, block 128, 4 layers, 4 heads,
// 128 dims, batch 16): forward, cross-entropy, backward and an AdamW update, on 1 and 2 threads. When
// GRAD_BENCH_HAVE_TORCH is defined the same model in LibTorch's C++ frontend (nanoGPT's model: Linear
// layers, LayerNorm, masked softmax attention, tanh GELU, tied LM head; torch::optim::AdamW) is
// registered right after each grad row, and at the end a markdown table gives the steps per second of
// both and their ratio.
//
// The GFLOP/s counter counts the step as 3x the forward FLOPs that grad's ops report on the tape.
//
// Typical run:
//   bench_gpt_step --benchmark_min_time=2 --benchmark_repetitions=3
// LibTorch's matrix products go through OpenBLAS; main() re-executes the program with
// OPENBLAS_CORETYPE=SkylakeX on AVX-512 machines (Debian's OpenBLAS does not detect every such CPU).

#include <benchmark/benchmark.h>

#include <grad/grad.hpp>
#include <grad/kernels/parallel.hpp>
#include <grad/models/gpt.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#ifdef GRAD_BENCH_HAVE_TORCH
#include <torch/version.h>
#if defined(__clang__) && TORCH_VERSION_MAJOR < 2
#define GRAD_BENCH_TORCH_PEER 0
#else
#define GRAD_BENCH_TORCH_PEER 1
#endif
#else
#define GRAD_BENCH_TORCH_PEER 0
#endif

#if GRAD_BENCH_TORCH_PEER
#include <dlfcn.h>
#include <torch/torch.h>
#endif

namespace {

constexpr std::size_t vocab = 113, block = 128, n_layer = 4, n_head = 4, n_embd = 128, batch = 16;

/// Lets the previous library's worker threads go to sleep before timing the other.
void settle(int library) {
  static int last = -1;
  if (last != library)
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  last = library;
}

void set_counters(benchmark::State& state, double flops_per_step) {
  state.counters["steps/s"] = benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops_per_step * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

/// Random ids x (B, T) and targets (B T) in [0, V).
std::vector<std::int64_t> random_tokens(std::size_t n, grad::generator& gen) {
  std::vector<std::int64_t> v(n);
  for (auto& t : v)
    t = static_cast<std::int64_t>(gen.randint(vocab));
  return v;
}

double forward_flops_per_step = 0; // from grad's tape, shared with the LibTorch rows

void bench_grad(benchmark::State& state, int threads) {
  settle(0);
  grad::set_num_threads(threads);
  grad::generator gen(1);
  grad::models::gpt model(
      {.vocab_size = vocab, .n_positions = block, .n_embd = n_embd, .n_layer = n_layer, .n_head = n_head},
      gen);
  grad::optim::adamw opt(model.parameters(), {.lr = 1e-3});
  const grad::index_tensor x(random_tokens(batch * block, gen), {batch, block});
  const grad::index_tensor y(random_tokens(batch * block, gen), {batch * block});
  auto step = [&] {
    const grad::tensor logits = model.forward(x); // (B, T, V)
    const grad::tensor loss =
        grad::cross_entropy(grad::reshape(logits, {-1, static_cast<std::int64_t>(vocab)}), y);
    return loss;
  };
  {
    const grad::tensor loss = step();
    double f = 0;
    for (const auto* n : grad::current_tape().nodes())
      f += static_cast<double>(n->flops);
    forward_flops_per_step = f;
    loss.backward();
    opt.zero_grad();
  }
  for (auto _ : state) {
    const grad::tensor loss = step();
    opt.zero_grad();
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item());
  }
  set_counters(state, 3 * forward_flops_per_step);
}

#if GRAD_BENCH_TORCH_PEER
void set_openblas_threads(int threads) {
  using fn = void (*)(int);
  if (auto f = reinterpret_cast<fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    f(threads);
}

/// nanoGPT's Block in LibTorch: x + attn(ln_1(x)), x + mlp(ln_2(x)).
struct torch_blockImpl : torch::nn::Module {
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  torch::nn::Linear c_attn{nullptr}, attn_proj{nullptr}, c_fc{nullptr}, mlp_proj{nullptr};
  torch_blockImpl() {
    const auto c = static_cast<std::int64_t>(n_embd);
    ln_1 = register_module("ln_1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c})));
    c_attn = register_module("c_attn", torch::nn::Linear(c, 3 * c));
    attn_proj = register_module("attn_proj", torch::nn::Linear(c, c));
    ln_2 = register_module("ln_2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c})));
    c_fc = register_module("c_fc", torch::nn::Linear(c, 4 * c));
    mlp_proj = register_module("mlp_proj", torch::nn::Linear(4 * c, c));
  }
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& mask) {
    const auto b = x.size(0), t = x.size(1), c = x.size(2), nh = static_cast<std::int64_t>(n_head);
    auto qkv = c_attn->forward(ln_1->forward(x)).split(c, 2);
    auto q = qkv[0].view({b, t, nh, c / nh}).transpose(1, 2); // (B, NH, T, HS)
    auto k = qkv[1].view({b, t, nh, c / nh}).transpose(1, 2);
    auto v = qkv[2].view({b, t, nh, c / nh}).transpose(1, 2);
    auto att = q.matmul(k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(c / nh)));
    att = torch::softmax(att.masked_fill(mask, -INFINITY), -1);
    auto y = att.matmul(v).transpose(1, 2).contiguous().view({b, t, c});
    x = x + attn_proj->forward(y);
    return x + mlp_proj->forward(torch::gelu(c_fc->forward(ln_2->forward(x)), "tanh"));
  }
};
TORCH_MODULE(torch_block);

struct torch_gptImpl : torch::nn::Module {
  torch::nn::Embedding wte{nullptr}, wpe{nullptr};
  std::vector<torch_block> h;
  torch::nn::LayerNorm ln_f{nullptr};
  torch::Tensor mask; // (T, T), true above the diagonal
  torch_gptImpl() {
    const auto c = static_cast<std::int64_t>(n_embd);
    wte = register_module("wte", torch::nn::Embedding(static_cast<std::int64_t>(vocab), c));
    wpe = register_module("wpe", torch::nn::Embedding(static_cast<std::int64_t>(block), c));
    for (std::size_t i = 0; i < n_layer; ++i)
      h.push_back(register_module("h" + std::to_string(i), torch_block()));
    ln_f = register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c})));
    const auto t = static_cast<std::int64_t>(block);
    mask = torch::triu(torch::ones({t, t}, torch::kBool), 1);
  }
  torch::Tensor forward(const torch::Tensor& idx) {
    const auto t = idx.size(1);
    auto x = wte->forward(idx) + wpe->forward(torch::arange(t, torch::kLong));
    for (auto& b : h)
      x = b->forward(x, mask);
    return torch::matmul(ln_f->forward(x), wte->weight.t()); // tied head
  }
};
TORCH_MODULE(torch_gpt);

void bench_torch(benchmark::State& state, int threads) {
  settle(1);
  torch::set_num_threads(threads);
  set_openblas_threads(threads);
  torch::manual_seed(1);
  torch_gpt model;
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-3));
  const auto b = static_cast<std::int64_t>(batch), t = static_cast<std::int64_t>(block);
  const auto v = static_cast<std::int64_t>(vocab);
  const torch::Tensor x = torch::randint(v, {b, t}, torch::kLong);
  const torch::Tensor y = torch::randint(v, {b * t}, torch::kLong);
  for (auto _ : state) {
    const torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(x).view({b * t, v}), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  set_counters(state, 3 * forward_flops_per_step);
}
#endif

/// Console output as usual, plus the best steps/s of every benchmark (over repetitions) for the table.
class table_reporter : public benchmark::ConsoleReporter {
public:
  std::map<std::string, double> best; ///< name ("gpt_step/grad/t1") -> steps/s

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.run_type != Run::RT_Iteration || r.error_occurred)
        continue;
      if (const auto it = r.counters.find("steps/s"); it != r.counters.end()) {
        double& b = best[r.run_name.function_name];
        b = std::max(b, static_cast<double>(it->second));
      }
    }
  }

  /// `| threads | grad steps/s | LibTorch steps/s | grad / LibTorch |`.
  void print_table() const {
    std::printf(
        "\nchar-GPT training step (V 113, T 128, 4 layers, 4 heads, C 128, batch 16; forward, cross-entropy, "
        "backward, AdamW), best of the repetitions\n\n| threads | grad steps/s | LibTorch steps/s | grad / "
        "LibTorch |\n|---:|---:|---:|---:|\n");
    for (int t : {1, 2}) {
      const auto g = best.find("gpt_step/grad/t" + std::to_string(t));
      if (g == best.end())
        continue;
      const auto p = best.find("gpt_step/libtorch/t" + std::to_string(t));
      if (p == best.end() || p->second <= 0)
        std::printf("| %d | %.2f | - | - |\n", t, g->second);
      else
        std::printf("| %d | %.2f | %.2f | %.2f |\n", t, g->second, p->second, g->second / p->second);
    }
  }
};

} // namespace

int main(int argc, char** argv) {
#if GRAD_BENCH_TORCH_PEER
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr && __builtin_cpu_supports("avx512f")) {
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    execv("/proc/self/exe", argv);
    std::perror("bench_gpt_step: re-exec with OPENBLAS_CORETYPE=SkylakeX failed; continuing");
  }
  std::printf("LibTorch %s (OPENBLAS_CORETYPE=%s)\n", TORCH_VERSION,
              std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE") : "unset");
#elif defined(GRAD_BENCH_HAVE_TORCH)
  std::printf("LibTorch %d.%d's headers do not compile with clang in C++20 mode: grad only\n",
              TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR);
#else
  std::printf("LibTorch not found at configure time: grad only\n");
#endif
  for (int threads : {1, 2}) {
    const std::string suffix = "t" + std::to_string(threads);
    benchmark::RegisterBenchmark(("gpt_step/grad/" + suffix).c_str(), bench_grad, threads)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
#if GRAD_BENCH_TORCH_PEER
    benchmark::RegisterBenchmark(("gpt_step/libtorch/" + suffix).c_str(), bench_torch, threads)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
#endif
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
    return 1;
  table_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print_table();
  benchmark::Shutdown();
  return 0;
}
