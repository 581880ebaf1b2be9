// One training step of example 04's MLP, 784-256-256-10 with ReLU: forward, cross-entropy, backward and
// an Adam update, at batch 64 and 256 on 1 and 2 threads. When GRAD_BENCH_HAVE_TORCH is defined the same
// step in LibTorch's C++ frontend (torch::nn::Linear, torch::optim::Adam) is registered right after each
// grad row, and at the end a markdown table gives the steps per second of both and their ratio.
//
// The GFLOP/s counter counts the step as 3x the forward FLOPs that grad's ops report on the tape (the
// backward of a matrix product is two products of the same size); the Adam update and the elementwise
// ops are a few percent of it.
//
// Typical run:
//   bench_mlp_step --benchmark_min_time=1 --benchmark_repetitions=3
// LibTorch's matrix products go through OpenBLAS; main() re-executes the program with
// OPENBLAS_CORETYPE=SkylakeX on AVX-512 machines (Debian's OpenBLAS does not detect every such CPU).

#include <benchmark/benchmark.h>

#include <grad/grad.hpp>
#include <grad/kernels/parallel.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <unistd.h>

// The LibTorch peer. LibTorch 1.x's headers do not compile with clang in C++20 mode (ATen's
// ivalue_inl.h instantiates std::vector<c10::IValue> while c10::IValue is incomplete), so with clang the
// peer needs LibTorch 2 or later.
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

constexpr std::size_t in_features = 784, hidden = 256, classes = 10;

/// Lets the previous library's worker threads go to sleep before timing the other: OpenMP and OpenBLAS
/// threads spin for a while after a parallel region and would steal the second core.
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

void bench_grad(benchmark::State& state, std::size_t batch, int threads) {
  settle(0);
  grad::set_num_threads(threads);
  grad::generator gen(1);
  grad::nn::mlp net(in_features, {hidden, hidden}, classes, {}, {}, gen);
  grad::optim::adam opt(net.parameters(), {.lr = 1e-3});
  const grad::tensor x = grad::rand({batch, in_features}, gen); // (B, 784) pixels in [0, 1)
  std::vector<std::int64_t> labels(batch);
  for (auto& l : labels)
    l = static_cast<std::int64_t>(gen.randint(classes));
  const grad::index_tensor y(labels); // (B,)

  // Forward FLOPs from the ops' own counts, read off the tape of one step.
  double forward_flops = 0;
  {
    const grad::tensor loss = grad::cross_entropy(net(x), y);
    for (const auto* n : grad::current_tape().nodes())
      forward_flops += static_cast<double>(n->flops);
    loss.backward();
    opt.zero_grad();
  }
  for (auto _ : state) {
    const grad::tensor loss = grad::cross_entropy(net(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item());
  }
  set_counters(state, 3 * forward_flops);
}

#if GRAD_BENCH_TORCH_PEER
/// OpenBLAS's own thread count: torch::set_num_threads sets OpenMP's (and MKL's), not OpenBLAS's.
void set_openblas_threads(int threads) {
  using fn = void (*)(int);
  if (auto f = reinterpret_cast<fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    f(threads);
}

void bench_torch(benchmark::State& state, std::size_t batch, int threads) {
  settle(1);
  torch::set_num_threads(threads);
  set_openblas_threads(threads);
  torch::manual_seed(1);
  torch::nn::Sequential net(torch::nn::Linear(in_features, hidden), torch::nn::ReLU(),
                            torch::nn::Linear(hidden, hidden), torch::nn::ReLU(),
                            torch::nn::Linear(hidden, classes));
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-3));
  const auto b = static_cast<std::int64_t>(batch);
  const torch::Tensor x = torch::rand({b, static_cast<std::int64_t>(in_features)});
  const torch::Tensor y = torch::randint(static_cast<std::int64_t>(classes), {b}, torch::kLong);
  for (auto _ : state) {
    const torch::Tensor loss = torch::nn::functional::cross_entropy(net->forward(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  // The same count as grad's, so the GFLOP/s columns compare: 2 B (in out) per linear, times 3.
  const double fwd = 2.0 * static_cast<double>(batch) *
                     static_cast<double>(in_features * hidden + hidden * hidden + hidden * classes);
  set_counters(state, 3 * fwd);
}
#endif

/// Console output as usual, plus the best steps/s of every benchmark (over repetitions) for the table.
class table_reporter : public benchmark::ConsoleReporter {
public:
  std::map<std::string, double> best; ///< name ("mlp_step/grad/b64/t1") -> steps/s

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

  /// `| batch | threads | grad steps/s | LibTorch steps/s | grad / LibTorch |` for every grad row.
  void print_table() const {
    std::printf("\n784-256-256-10 training step (forward, cross-entropy, backward, Adam), best of the "
                "repetitions\n\n| batch | threads | grad steps/s | LibTorch steps/s | grad / LibTorch |\n"
                "|---:|---:|---:|---:|---:|\n");
    struct row {
      int batch, threads;
      double grad, torch;
    };
    std::vector<row> rows;
    for (const auto& [name, steps] : best) {
      const std::string prefix = "mlp_step/grad/";
      if (name.rfind(prefix, 0) != 0)
        continue;
      const std::string rest = name.substr(prefix.size()); // b64/t1
      const std::size_t slash = rest.find('/');
      const auto peer = best.find("mlp_step/libtorch/" + rest);
      rows.push_back({std::stoi(rest.substr(1, slash - 1)), std::stoi(rest.substr(slash + 2)), steps,
                      peer == best.end() ? 0.0 : peer->second});
    }
    std::sort(rows.begin(), rows.end(), [](const row& a, const row& b) {
      return std::tie(a.batch, a.threads) < std::tie(b.batch, b.threads);
    });
    for (const row& r : rows) {
      if (r.torch <= 0)
        std::printf("| %d | %d | %.1f | - | - |\n", r.batch, r.threads, r.grad);
      else
        std::printf("| %d | %d | %.1f | %.1f | %.2f |\n", r.batch, r.threads, r.grad, r.torch,
                    r.grad / r.torch);
    }
  }
};

} // namespace

int main(int argc, char** argv) {
#if GRAD_BENCH_TORCH_PEER
  // OpenBLAS reads its core type once, when it is loaded: set it and start again.
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr && __builtin_cpu_supports("avx512f")) {
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    execv("/proc/self/exe", argv);
    std::perror("bench_mlp_step: re-exec with OPENBLAS_CORETYPE=SkylakeX failed; continuing");
  }
  std::printf("LibTorch %s (OPENBLAS_CORETYPE=%s)\n", TORCH_VERSION,
              std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE") : "unset");
#elif defined(GRAD_BENCH_HAVE_TORCH)
  std::printf("LibTorch %d.%d's headers do not compile with clang in C++20 mode: grad only\n",
              TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR);
#else
  std::printf("LibTorch not found at configure time: grad only\n");
#endif
  for (std::size_t batch : {64, 256})
    for (int threads : {1, 2}) {
      const std::string suffix = "b" + std::to_string(batch) + "/t" + std::to_string(threads);
      benchmark::RegisterBenchmark(("mlp_step/grad/" + suffix).c_str(), bench_grad, batch, threads)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
#if GRAD_BENCH_TORCH_PEER
      benchmark::RegisterBenchmark(("mlp_step/libtorch/" + suffix).c_str(), bench_torch, batch, threads)
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
