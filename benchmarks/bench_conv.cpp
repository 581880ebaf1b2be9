// The two convolutions of example 05's CNN at batch 64, forward alone and forward + backward, on 1 and
// 2 threads:
//   conv1: x (64, 1, 28, 28)  * w (16, 1, 3, 3),  padding 1 -> (64, 16, 28, 28); x is the input images,
//          so backward computes dw and db only (as in training)
//   conv2: x (64, 16, 14, 14) * w (32, 16, 3, 3), padding 1 -> (64, 32, 14, 14); backward computes dx too
// and example 05's whole training step (the CNN conv-relu-pool-conv-relu-pool-linear, cross-entropy,
// backward, Adam) on random images. When GRAD_BENCH_HAVE_TORCH is defined the same passes in LibTorch
// (torch::conv2d; torch::nn modules and torch::optim::Adam for the step) are registered right after each
// grad row, and at the end a markdown table gives the passes per second of both and their ratio. Backward is
// seeded with a fixed random gradient of the output; gradients accumulate across iterations in both libraries
// (no zeroing inside the timed loop).
//
// GFLOP/s: forward FLOPs as grad's conv2d op reports them (2 N O OH OW C KH KW + bias), times 2 for
// forward + dw (conv1) or 3 for forward + dw + dx (conv2).
//
// Typical run:
//   bench_conv --benchmark_min_time=1 --benchmark_repetitions=3
// main() re-executes the program with OPENBLAS_CORETYPE=SkylakeX on AVX-512 machines when LibTorch is
// compared (Debian's OpenBLAS does not detect every such CPU).

#include <benchmark/benchmark.h>

#include <grad/grad.hpp>
#include <grad/kernels/parallel.hpp>
#include <grad/ops/conv.hpp>

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

/// One convolution layer of the CNN.
struct layer {
  const char* name;
  std::size_t n, c, h, w, o; // input (N, C, H, W), O output channels; 3x3 kernel, padding 1, stride 1
  bool input_grad;           // backward computes dx
};
const layer layers[] = {{"conv1", 64, 1, 28, 28, 16, false}, {"conv2", 64, 16, 14, 14, 32, true}};

/// Lets the previous library's worker threads go to sleep before timing the other: OpenMP and OpenBLAS
/// threads spin for a while after a parallel region and would steal the second core.
void settle(int library) {
  static int last = -1;
  if (last != library)
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  last = library;
}

/// Forward FLOPs as grad's op counts them.
double forward_flops(const layer& l) {
  return 2.0 * static_cast<double>(l.n * l.o * l.h * l.w * l.c * 9) +
         static_cast<double>(l.n * l.o * l.h * l.w);
}

void set_counters(benchmark::State& state, const layer& l, bool backward) {
  state.counters["passes/s"] = benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
  const double factor = backward ? (l.input_grad ? 3 : 2) : 1;
  state.counters["GFLOP/s"] =
      benchmark::Counter(factor * forward_flops(l) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void bench_grad(benchmark::State& state, layer l, bool backward, int threads) {
  settle(0);
  grad::set_num_threads(threads);
  grad::generator gen(1);
  const grad::tensor x = grad::randn({l.n, l.c, l.h, l.w}, gen, {.requires_grad = backward && l.input_grad});
  const grad::tensor w = grad::randn({l.o, l.c, 3, 3}, gen, {.requires_grad = backward});
  const grad::tensor b = grad::randn({l.o}, gen, {.requires_grad = backward});
  const grad::tensor dy = grad::randn({l.n, l.o, l.h, l.w}, gen); // (N, O, OH, OW)
  if (backward) {
    for (auto _ : state) {
      const grad::tensor y = grad::conv2d(x, w, b, {.padding = 1});
      y.backward(dy);
      benchmark::DoNotOptimize(w.grad().data());
      benchmark::ClobberMemory();
    }
  } else {
    grad::no_grad guard;
    for (auto _ : state) {
      const grad::tensor y = grad::conv2d(x, w, b, {.padding = 1});
      benchmark::DoNotOptimize(y.data());
      benchmark::ClobberMemory();
    }
  }
  set_counters(state, l, backward);
}

/// Example 05's CNN (conv 1->16, ReLU, max pool 2, conv 16->32, ReLU, max pool 2, linear 1568->10).
constexpr std::size_t cnn_batch = 64, cnn_classes = 10;

/// Forward FLOPs of the CNN step as grad's ops count them on the tape (conv, relu, pool, linear, loss).
double cnn_forward_flops = 0;

/// One training step of example 05's CNN: forward, cross-entropy, backward, Adam.
void bench_grad_cnn(benchmark::State& state, int threads) {
  settle(0);
  grad::set_num_threads(threads);
  namespace nn = grad::nn;
  grad::generator gen(1);
  nn::conv2d conv1(1, 16, 3, {.padding = 1}, gen);
  nn::conv2d conv2(16, 32, 3, {.padding = 1}, gen);
  nn::linear fc(32 * 7 * 7, cnn_classes, gen);
  auto net = nn::sequential(conv1, nn::relu{}, nn::max_pool2d(2), conv2, nn::relu{}, nn::max_pool2d(2),
                            nn::flatten{}, fc);
  grad::optim::adam opt(net.parameters(), {.lr = 1e-3});
  const grad::tensor x = grad::randn({cnn_batch, 1, 28, 28}, gen); // (B, 1, 28, 28)
  std::vector<std::int64_t> labels(cnn_batch);
  for (auto& l : labels)
    l = static_cast<std::int64_t>(gen.randint(cnn_classes));
  const grad::index_tensor y(labels); // (B,)
  {
    const grad::tensor loss = grad::cross_entropy(net(x), y);
    double flops = 0;
    for (const auto* n : grad::current_tape().nodes())
      flops += static_cast<double>(n->flops);
    cnn_forward_flops = flops;
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
  state.counters["passes/s"] = benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(3 * cnn_forward_flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

#if GRAD_BENCH_TORCH_PEER
/// OpenBLAS's own thread count: torch::set_num_threads sets OpenMP's (and MKL's), not OpenBLAS's.
void set_openblas_threads(int threads) {
  using fn = void (*)(int);
  if (auto f = reinterpret_cast<fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    f(threads);
}

void bench_torch(benchmark::State& state, layer l, bool backward, int threads) {
  settle(1);
  torch::set_num_threads(threads);
  set_openblas_threads(threads);
  torch::manual_seed(1);
  const auto i = [](std::size_t v) { return static_cast<std::int64_t>(v); };
  const torch::Tensor x =
      torch::randn({i(l.n), i(l.c), i(l.h), i(l.w)}).requires_grad_(backward && l.input_grad);
  const torch::Tensor w = torch::randn({i(l.o), i(l.c), 3, 3}).requires_grad_(backward);
  const torch::Tensor b = torch::randn({i(l.o)}).requires_grad_(backward);
  const torch::Tensor dy = torch::randn({i(l.n), i(l.o), i(l.h), i(l.w)});
  if (backward) {
    for (auto _ : state) {
      const torch::Tensor y = torch::conv2d(x, w, b, /*stride=*/1, /*padding=*/1);
      y.backward(dy);
      benchmark::DoNotOptimize(w.grad().data_ptr());
      benchmark::ClobberMemory();
    }
  } else {
    torch::NoGradGuard guard;
    for (auto _ : state) {
      const torch::Tensor y = torch::conv2d(x, w, b, /*stride=*/1, /*padding=*/1);
      benchmark::DoNotOptimize(y.data_ptr());
      benchmark::ClobberMemory();
    }
  }
  set_counters(state, l, backward);
}
#endif

#if GRAD_BENCH_TORCH_PEER
/// The same CNN training step in LibTorch's C++ frontend.
void bench_torch_cnn(benchmark::State& state, int threads) {
  settle(1);
  torch::set_num_threads(threads);
  set_openblas_threads(threads);
  torch::manual_seed(1);
  namespace tnn = torch::nn;
  tnn::Sequential net(tnn::Conv2d(tnn::Conv2dOptions(1, 16, 3).padding(1)), tnn::ReLU(),
                      tnn::MaxPool2d(tnn::MaxPool2dOptions(2)),
                      tnn::Conv2d(tnn::Conv2dOptions(16, 32, 3).padding(1)), tnn::ReLU(),
                      tnn::MaxPool2d(tnn::MaxPool2dOptions(2)), tnn::Flatten(),
                      tnn::Linear(32 * 7 * 7, static_cast<std::int64_t>(cnn_classes)));
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-3));
  const auto b = static_cast<std::int64_t>(cnn_batch);
  const torch::Tensor x = torch::randn({b, 1, 28, 28});
  const torch::Tensor y = torch::randint(static_cast<std::int64_t>(cnn_classes), {b}, torch::kLong);
  for (auto _ : state) {
    const torch::Tensor loss = torch::nn::functional::cross_entropy(net->forward(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  state.counters["passes/s"] = benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
}
#endif

/// Console output as usual, plus the best passes/s of every benchmark (over repetitions) for the table.
class table_reporter : public benchmark::ConsoleReporter {
public:
  std::map<std::string, double> best; ///< name ("conv/grad/conv1/fwd+bwd/t1") -> passes/s

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.run_type != Run::RT_Iteration || r.error_occurred)
        continue;
      if (const auto it = r.counters.find("passes/s"); it != r.counters.end()) {
        double& b = best[r.run_name.function_name];
        b = std::max(b, static_cast<double>(it->second));
      }
    }
  }

  /// `| layer | pass | threads | grad passes/s | LibTorch passes/s | grad / LibTorch |` per grad row.
  void print_table() const {
    std::printf(
        "\nConvolutions of the Fashion-MNIST CNN and its whole training step at batch 64, best of the "
        "repetitions\n\n"
        "| layer | pass | threads | grad passes/s | LibTorch passes/s | grad / LibTorch |\n"
        "|---|---|---:|---:|---:|---:|\n");
    struct row {
      std::string layer, pass;
      int threads;
      double grad, torch;
    };
    std::vector<row> rows;
    for (const auto& [name, rate] : best) {
      const std::string prefix = "conv/grad/";
      if (name.rfind(prefix, 0) != 0)
        continue;
      const std::string rest = name.substr(prefix.size()); // conv1/fwd+bwd/t1
      const std::size_t s1 = rest.find('/'), s2 = rest.find('/', s1 + 1);
      const auto peer = best.find("conv/libtorch/" + rest);
      rows.push_back({rest.substr(0, s1), rest.substr(s1 + 1, s2 - s1 - 1), std::stoi(rest.substr(s2 + 2)),
                      rate, peer == best.end() ? 0.0 : peer->second});
    }
    // Layer, then forward before forward + backward, then threads.
    std::sort(rows.begin(), rows.end(), [](const row& a, const row& b) {
      return std::make_tuple(a.layer, a.pass.size(), a.threads) <
             std::make_tuple(b.layer, b.pass.size(), b.threads);
    });
    for (const row& r : rows) {
      if (r.torch <= 0)
        std::printf("| %s | %s | %d | %.1f | - | - |\n", r.layer.c_str(), r.pass.c_str(), r.threads, r.grad);
      else
        std::printf("| %s | %s | %d | %.1f | %.1f | %.2f |\n", r.layer.c_str(), r.pass.c_str(), r.threads,
                    r.grad, r.torch, r.grad / r.torch);
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
    std::perror("bench_conv: re-exec with OPENBLAS_CORETYPE=SkylakeX failed; continuing");
  }
  std::printf("LibTorch %s (OPENBLAS_CORETYPE=%s)\n", TORCH_VERSION,
              std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE") : "unset");
#elif defined(GRAD_BENCH_HAVE_TORCH)
  std::printf("LibTorch %d.%d's headers do not compile with clang in C++20 mode: grad only\n",
              TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR);
#else
  std::printf("LibTorch not found at configure time: grad only\n");
#endif
  for (int threads : {1, 2})
    for (const layer& l : layers)
      for (bool backward : {false, true}) {
        const std::string suffix =
            std::string(l.name) + (backward ? "/fwd+bwd" : "/fwd") + "/t" + std::to_string(threads);
        benchmark::RegisterBenchmark(("conv/grad/" + suffix).c_str(), bench_grad, l, backward, threads)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
#if GRAD_BENCH_TORCH_PEER
        benchmark::RegisterBenchmark(("conv/libtorch/" + suffix).c_str(), bench_torch, l, backward, threads)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
#endif
      }
  for (int threads : {1, 2}) {
    const std::string suffix = "cnn/train step/t" + std::to_string(threads);
    benchmark::RegisterBenchmark(("conv/grad/" + suffix).c_str(), bench_grad_cnn, threads)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
#if GRAD_BENCH_TORCH_PEER
    benchmark::RegisterBenchmark(("conv/libtorch/" + suffix).c_str(), bench_torch_cnn, threads)
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
