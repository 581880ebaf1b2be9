// Greedy generation with a GPT-2 124M-shaped model (vocab 50257, 12 layers, 12 heads, 768 dims, random
// weights): a 16-token prompt, then 64 new tokens with the KV cache, batch 1, on 1 and 2 threads.
//
//   gpt2_generate/grad/tN     the whole grad::generate() call (prefill + 64 steps): tokens/s = 64 / time
//   gpt2_decode/grad/tN       one decoding step (next_logits of 1 token after a 16-token prompt)
//   read_bandwidth/tN         summing a 512 MiB float buffer: the memory bandwidth that bounds decoding
//
// Decoding one token reads every weight once: bytes per token = 4 * (all parameters except wpe, whose
// one row is negligible); the tied LM head is wte itself, read in full for the logits. At the measured
// read bandwidth that gives an upper bound on tokens/s; the summary reports how close decoding comes.
//
// Peers, in the same run:
//   gpt2_generate/libtorch/tN  the same model in LibTorch's C++ API (PyTorch's engine) with a KV cache
//                              kept as transformers keeps it (keys/values concatenated each step),
//                              under NoGradGuard; registered when CMake found LibTorch (g++ only).
//   PyTorch (Python)           benchmarks/peer_gpt2_generate.py, the same in Python, run after the
//                              grad benchmarks when python3 can import torch (GRAD_BENCH_NO_PEER=1
//                              skips it).
// The summary table gives grad / peer ratios.
//
// Typical run:
//   bench_gpt2_generate --benchmark_min_time=1 --benchmark_repetitions=3

#include <benchmark/benchmark.h>

#include <grad/generate/generate.hpp>
#include <grad/kernels/parallel.hpp>
#include <grad/models/gpt.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

// The LibTorch peer. LibTorch 1.x's headers do not compile with clang in C++20 mode.
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

constexpr std::size_t prompt_len = 16, new_tokens = 64;

const grad::models::gpt& model() {
  static const grad::models::gpt m = [] {
    grad::generator gen(0);
    return grad::models::gpt(grad::models::gpt_config{}, gen); // GPT-2 small's shape
  }();
  return m;
}

std::vector<std::int64_t> prompt() {
  grad::generator gen(1);
  std::vector<std::int64_t> p(prompt_len);
  for (auto& t : p)
    t = static_cast<std::int64_t>(gen.randint(50257));
  return p;
}

double bytes_per_token() {
  double n = 0;
  for (const auto& [name, t] : model().named_parameters())
    if (name != "wpe.weight")
      n += static_cast<double>(t.numel());
  return 4 * n;
}

void bm_generate(benchmark::State& state) {
  grad::set_num_threads(static_cast<int>(state.range(0)));
  const auto& m = model();
  const grad::index_tensor ids(prompt());
  const grad::generation_config cfg{.max_new_tokens = new_tokens};
  for (auto _ : state) {
    const auto out = grad::generate(m, ids, cfg);
    if (out.size(1) != prompt_len + new_tokens)
      state.SkipWithError("generate stopped early");
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(new_tokens), benchmark::Counter::kIsIterationInvariantRate);
}

void bm_decode(benchmark::State& state) {
  grad::set_num_threads(static_cast<int>(state.range(0)));
  const auto& m = model();
  const auto p = prompt();
  std::vector<float> logits(m.config().vocab_size);
  auto cache = m.make_cache(1, prompt_len + 1);
  m.next_logits(cache, p, prompt_len, logits.data());
  const std::int64_t next = 42;
  auto full = cache;
  for (auto _ : state) {
    state.PauseTiming();
    cache = full; // back to the 16 prompt tokens
    state.ResumeTiming();
    m.next_logits(cache, std::span<const std::int64_t>(&next, 1), 1, logits.data());
    benchmark::DoNotOptimize(logits.data());
  }
  state.counters["tokens/s"] = benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GB/s"] =
      benchmark::Counter(bytes_per_token() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Streaming read of 512 MiB (larger than any cache), split over the threads as grad's kernels split work.
void bm_read_bandwidth(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const std::size_t n = (std::size_t{512} << 20) / sizeof(float);
  std::unique_ptr<float[]> buf(new float[n]);
  std::fill_n(buf.get(), n, 1.0f);
  for (auto _ : state) {
    double total = 0;
#pragma omp parallel for num_threads(threads) reduction(+ : total) schedule(static)
    for (std::ptrdiff_t c = 0; c < 64; ++c) {
      const float* p = buf.get() + static_cast<std::size_t>(c) * (n / 64);
      float acc[16] = {};
      for (std::size_t i = 0; i < n / 64; i += 16)
        for (int j = 0; j < 16; ++j)
          acc[j] += p[i + static_cast<std::size_t>(j)];
      for (float a : acc)
        total += a;
    }
    benchmark::DoNotOptimize(total);
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(n * sizeof(float)) * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(bm_generate)
    ->Name("gpt2_generate/grad")
    ->ArgName("t")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(bm_decode)
    ->Name("gpt2_decode/grad")
    ->ArgName("t")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(bm_read_bandwidth)
    ->Name("read_bandwidth")
    ->ArgName("t")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

#if GRAD_BENCH_TORCH_PEER
/// GPT-2 small in LibTorch: the math of transformers' GPT2LMHeadModel (nn.Linear layout, tied head).
struct torch_gpt2 {
  static constexpr std::int64_t V = 50257, P = 1024, C = 768, L = 12, NH = 12, HS = C / NH;
  struct block {
    torch::Tensor ln1w, ln1b, attn_w, attn_b, proj_w, proj_b, ln2w, ln2b, fc_w, fc_b, fcp_w, fcp_b;
  };
  torch::Tensor wte, wpe, lnfw, lnfb;
  std::vector<block> h;
  using kv = std::vector<std::pair<torch::Tensor, torch::Tensor>>;

  torch_gpt2() {
    torch::manual_seed(0);
    auto w = [](std::vector<std::int64_t> s) { return torch::randn(s) * 0.02; };
    wte = w({V, C});
    wpe = w({P, C});
    for (std::int64_t l = 0; l < L; ++l)
      h.push_back({torch::ones({C}), torch::zeros({C}), w({3 * C, C}), torch::zeros({3 * C}), w({C, C}),
                   torch::zeros({C}), torch::ones({C}), torch::zeros({C}), w({4 * C, C}),
                   torch::zeros({4 * C}), w({C, 4 * C}), torch::zeros({C})});
    lnfw = torch::ones({C});
    lnfb = torch::zeros({C});
  }

  /// ids (1, T) -> logits of the last position (1, V); past grows by T.
  torch::Tensor forward(const torch::Tensor& ids, kv& past) const {
    namespace F = torch::nn::functional;
    const std::int64_t t = ids.size(1), start = past.empty() ? 0 : past[0].first.size(2);
    auto x = wte.index_select(0, ids[0]).unsqueeze(0) + wpe.slice(0, start, start + t).unsqueeze(0);
    for (std::int64_t l = 0; l < L; ++l) {
      const block& b = h[static_cast<std::size_t>(l)];
      auto qkv = F::linear(torch::layer_norm(x, {C}, b.ln1w, b.ln1b, 1e-5), b.attn_w, b.attn_b).split(C, 2);
      auto q = qkv[0].view({1, t, NH, HS}).transpose(1, 2); // (B, NH, T, HS)
      auto k = qkv[1].view({1, t, NH, HS}).transpose(1, 2);
      auto v = qkv[2].view({1, t, NH, HS}).transpose(1, 2);
      if (static_cast<std::int64_t>(past.size()) > l) {
        k = torch::cat({past[static_cast<std::size_t>(l)].first, k}, 2);
        v = torch::cat({past[static_cast<std::size_t>(l)].second, v}, 2);
        past[static_cast<std::size_t>(l)] = {k, v};
      } else {
        past.emplace_back(k, v);
      }
      auto att = q.matmul(k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(HS)));
      if (t > 1) {
        const std::int64_t n = k.size(2);
        att = att.masked_fill(torch::ones({t, n}, torch::kBool).tril(n - t).logical_not(),
                              -std::numeric_limits<float>::infinity());
      }
      auto y = att.softmax(-1).matmul(v).transpose(1, 2).reshape({1, t, C});
      x = x + F::linear(y, b.proj_w, b.proj_b);
      auto f =
          torch::gelu(F::linear(torch::layer_norm(x, {C}, b.ln2w, b.ln2b, 1e-5), b.fc_w, b.fc_b), "tanh");
      x = x + F::linear(f, b.fcp_w, b.fcp_b);
    }
    auto last = torch::layer_norm(x.select(1, t - 1), {C}, lnfw, lnfb, 1e-5); // (1, C)
    return last.matmul(wte.t());
  }
};

/// OpenBLAS's own thread count: torch::set_num_threads sets OpenMP's, not OpenBLAS's.
void set_openblas_threads(int threads) {
  using fn = void (*)(int);
  if (auto f = reinterpret_cast<fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    f(threads);
}

void bm_generate_torch(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  torch::set_num_threads(threads);
  set_openblas_threads(threads);
  torch::NoGradGuard no_grad;
  static const torch_gpt2 m;
  const auto p = prompt();
  const torch::Tensor ids = torch::tensor(std::vector<std::int64_t>(p.begin(), p.end())).unsqueeze(0);
  for (auto _ : state) {
    torch_gpt2::kv past;
    torch::Tensor logits = m.forward(ids, past);
    std::vector<torch::Tensor> out = {ids};
    for (std::size_t i = 0; i < new_tokens; ++i) {
      const torch::Tensor next = logits.argmax(-1, true); // greedy, (1, 1)
      out.push_back(next);
      if (i + 1 < new_tokens)
        logits = m.forward(next, past);
    }
    benchmark::DoNotOptimize(torch::cat(out, 1).data_ptr());
  }
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(new_tokens), benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(bm_generate_torch)
    ->Name("gpt2_generate/libtorch")
    ->ArgName("t")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
#endif

/// Console output as usual, plus the best value of each counter (over repetitions) for the summary.
class table_reporter : public benchmark::ConsoleReporter {
public:
  std::map<std::string, double> best; ///< "gpt2_generate/grad/t:1 tokens/s" -> value

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.run_type != Run::RT_Iteration || r.error_occurred)
        continue;
      for (const auto& [k, v] : r.counters) {
        double& b = best[r.run_name.function_name + "/" + r.run_name.args + " " + k];
        b = std::max(b, static_cast<double>(v));
      }
    }
  }
  double get(const std::string& key) const {
    const auto it = best.find(key);
    return it == best.end() ? 0.0 : it->second;
  }
};

/// The peer's tokens/s for `threads` threads, or 0 when it cannot run.
double run_peer(int threads) {
  const auto script = std::filesystem::path(__FILE__).parent_path() / "peer_gpt2_generate.py";
  if (std::getenv("GRAD_BENCH_NO_PEER") || !std::filesystem::exists(script))
    return 0;
  const std::string cmd = "python3 '" + script.string() + "' --threads " + std::to_string(threads) +
                          " --prompt-len " + std::to_string(prompt_len) + " --new-tokens " +
                          std::to_string(new_tokens) + " --machine 2>/dev/null";
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (!p)
    return 0;
  char line[256];
  double tps = 0;
  while (std::fgets(line, sizeof line, p))
    if (std::sscanf(line, "tokens_per_s %lf", &tps) == 1)
      break;
  ::pclose(p);
  return tps;
}

} // namespace

int main(int argc, char** argv) {
  // PyTorch's products go through OpenBLAS here: its fastest kernel on this CPU must be chosen by name,
  // before OpenBLAS is loaded (LibTorch links it), hence the re-exec.
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr && __builtin_cpu_supports("avx512f")) {
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
#if GRAD_BENCH_TORCH_PEER
    execv("/proc/self/exe", argv);
    std::perror("bench_gpt2_generate: re-exec with OPENBLAS_CORETYPE=SkylakeX failed; continuing");
#endif
  }
#if GRAD_BENCH_TORCH_PEER
  std::printf("LibTorch %s (OPENBLAS_CORETYPE=%s)\n", TORCH_VERSION,
              std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE") : "unset");
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
    return 1;
  (void)model(); // build the 124M-parameter model once, before any timing
  table_reporter rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  benchmark::Shutdown();

  const double bpt = bytes_per_token();
  std::printf(
      "\nGPT-2 124M shape (random weights), batch 1, greedy, %zu-token prompt + %zu new tokens; best of "
      "the repetitions. Weights read per token: %.1f MB.\n\n",
      prompt_len, new_tokens, bpt * 1e-6);
  std::printf(
      "| threads | grad tokens/s | LibTorch tokens/s | grad / LibTorch | PyTorch tokens/s | grad / PyTorch "
      "| grad decode step tokens/s | read bandwidth GB/s | bound tokens/s | decode / bound |\n"
      "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (int t : {1, 2}) {
    const std::string s = "/t:" + std::to_string(t);
    const double gen = rep.get("gpt2_generate/grad" + s + " tokens/s");
    const double dec = rep.get("gpt2_decode/grad" + s + " tokens/s");
    const double bw = rep.get("read_bandwidth" + s + " GB/s");
    if (gen == 0)
      continue; // filtered out
    const double peer = run_peer(t);
    const double lt = rep.get("gpt2_generate/libtorch" + s + " tokens/s");
    char lt_s[32] = "-", lt_ratio_s[32] = "-";
    if (lt > 0) {
      std::snprintf(lt_s, sizeof lt_s, "%.1f", lt);
      std::snprintf(lt_ratio_s, sizeof lt_ratio_s, "%.2f", gen / lt);
    }
    const double bound = bw > 0 ? bw * 1e9 / bpt : 0;
    char peer_s[32] = "-", ratio_s[32] = "-", bw_s[32] = "-", bound_s[32] = "-", eff_s[32] = "-";
    if (bw > 0) {
      std::snprintf(bw_s, sizeof bw_s, "%.1f", bw);
      std::snprintf(bound_s, sizeof bound_s, "%.1f", bound);
      std::snprintf(eff_s, sizeof eff_s, "%.0f%%", 100 * dec / bound);
    }
    if (peer > 0) {
      std::snprintf(peer_s, sizeof peer_s, "%.1f", peer);
      std::snprintf(ratio_s, sizeof ratio_s, "%.2f", gen / peer);
    }
    std::printf("| %d | %.1f | %s | %s | %s | %s | %.1f | %s | %s | %s |\n", t, gen, lt_s, lt_ratio_s, peer_s,
                ratio_s, dec, bw_s, bound_s, eff_s);
  }
  std::printf(
      "\nPeers: LibTorch (C++ API, in this process) and benchmarks/peer_gpt2_generate.py (PyTorch), both "
      "with their own KV cache and no autograd, OPENBLAS_CORETYPE=%s; '-' when a peer is not available.\n",
      std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE") : "unset");
  return 0;
}
