// What the tape costs per recorded op: a chain of 1000 `y = y * w + b` (2000 recorded ops) on tensors
// of 1 and of 1024 elements, timed for the forward alone, the backward alone and both; nanoseconds per
// recorded op. Also the seed's first model, `y = b + w * x` trained by gradient descent for 1000 steps
// on 64 points, and the scalar chain under a running profiler (its cost when on). With
// GRAD_BENCH_HAVE_TORCH the same chains and training run in LibTorch in the same process, and a
// markdown table gives both and the ratio.
//
// The profiler's cost when OFF: this file is also built as bench_tape_nohook with
// GRAD_PROFILER_HOOKS=0 (the tape without its profiler hook); benchmarks/run.sh runs the two
// programs' grad chains alternately and reports both.
//
//   bench_tape --benchmark_min_time=0.5 --benchmark_repetitions=3

#include <benchmark/benchmark.h>

#include <grad/grad.hpp>
#include <grad/profile/profiler.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

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
#include <torch/torch.h>
#endif

namespace {

constexpr int chain = 1000;         // links of y = y * w + b
constexpr double ops = 2.0 * chain; // recorded ops per chain
constexpr int train_steps = 1000;   // gradient-descent steps of y = b + w x
constexpr std::size_t train_points = 64;

enum class part { forward, backward, both };
const char* part_name(part p) {
  return p == part::forward ? "fwd" : p == part::backward ? "bwd" : "fwd+bwd";
}

void set_ns_per_op(benchmark::State& state) {
  state.counters["ns/op"] = benchmark::Counter(ops * 1e-9, benchmark::Counter::kIsIterationInvariantRate |
                                                               benchmark::Counter::kInvert);
}

void grad_chain(benchmark::State& state, std::size_t n, part p, bool profiled = false) {
  grad::set_num_threads(1);
  std::optional<grad::profiler> prof;
  if (profiled) // totals only: the cost of timing and counting every op, without keeping a trace
    prof.emplace(grad::profiler_options{.trace = false});
  grad::generator gen(1);
  auto w = grad::full<float>({n}, 0.999f).requires_grad_();
  auto b = grad::full<float>({n}, 0.001f).requires_grad_();
  const auto x = grad::rand<float>({n}, gen);
  for (auto _ : state) {
    if (p == part::backward) {
      state.PauseTiming();
      auto y = x;
      for (int i = 0; i < chain; ++i)
        y = y * w + b;
      auto s = grad::sum(y);
      state.ResumeTiming();
      s.backward();
    } else {
      auto y = x;
      for (int i = 0; i < chain; ++i)
        y = y * w + b;
      if (p == part::both)
        y.backward(grad::ones_like(y));
      else
        grad::current_tape().clear();
      benchmark::DoNotOptimize(y.data());
    }
  }
  set_ns_per_op(state);
}

/// y = b + w x on 64 points, 1000 steps of plain gradient descent on the mean squared error.
void grad_train(benchmark::State& state) {
  grad::set_num_threads(1);
  grad::generator gen(2);
  const auto x = grad::rand<float>({train_points}, gen);
  const auto y = 3.0f + 2.0f * x;
  for (auto _ : state) {
    auto w = grad::zeros<float>({1}).requires_grad_();
    auto b = grad::zeros<float>({1}).requires_grad_();
    for (int s = 0; s < train_steps; ++s) {
      auto loss = grad::mean(grad::square(b + w * x - y));
      loss.backward();
      grad::no_grad ng;
      w.value() -= 0.5f * w.grad();
      b.value() -= 0.5f * b.grad();
      w.zero_grad();
      b.zero_grad();
    }
    benchmark::DoNotOptimize(w.item());
  }
  state.counters["steps/s"] = benchmark::Counter(train_steps, benchmark::Counter::kIsIterationInvariantRate);
}

#if GRAD_BENCH_TORCH_PEER
void torch_chain(benchmark::State& state, std::size_t n, part p) {
  torch::set_num_threads(1);
  const auto nn = static_cast<std::int64_t>(n);
  auto w = torch::full({nn}, 0.999f, torch::requires_grad());
  auto b = torch::full({nn}, 0.001f, torch::requires_grad());
  const auto x = torch::rand({nn});
  for (auto _ : state) {
    if (p == part::backward) {
      state.PauseTiming();
      auto y = x;
      for (int i = 0; i < chain; ++i)
        y = y * w + b;
      auto s = y.sum();
      state.ResumeTiming();
      s.backward();
    } else {
      auto y = x;
      for (int i = 0; i < chain; ++i)
        y = y * w + b;
      if (p == part::both)
        y.backward(torch::ones_like(y));
      benchmark::DoNotOptimize(y.data_ptr());
    }
  }
  set_ns_per_op(state);
}

void torch_train(benchmark::State& state) {
  torch::set_num_threads(1);
  torch::manual_seed(2);
  const auto x = torch::rand({static_cast<std::int64_t>(train_points)});
  const auto y = 3.0f + 2.0f * x;
  for (auto _ : state) {
    auto w = torch::zeros({1}, torch::requires_grad());
    auto b = torch::zeros({1}, torch::requires_grad());
    for (int s = 0; s < train_steps; ++s) {
      auto loss = (b + w * x - y).square().mean();
      loss.backward();
      torch::NoGradGuard ng;
      w -= 0.5f * w.grad();
      b -= 0.5f * b.grad();
      w.mutable_grad().zero_();
      b.mutable_grad().zero_();
    }
    benchmark::DoNotOptimize(w.item<float>());
  }
  state.counters["steps/s"] = benchmark::Counter(train_steps, benchmark::Counter::kIsIterationInvariantRate);
}
#endif

/// Best (smallest) ns/op and best steps/s per benchmark over repetitions.
class table_reporter : public benchmark::ConsoleReporter {
public:
  std::map<std::string, double> best;
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.run_type != Run::RT_Iteration || r.error_occurred)
        continue;
      const std::string name = r.run_name.function_name;
      if (const auto it = r.counters.find("ns/op"); it != r.counters.end()) {
        auto [pos, fresh] = best.emplace(name, double(it->second));
        if (!fresh)
          pos->second = std::min(pos->second, double(it->second));
      }
      if (const auto it = r.counters.find("steps/s"); it != r.counters.end())
        best[name] = std::max(best[name], double(it->second));
    }
  }
  void print_table() const {
    std::printf(
        "\nChain of 1000 y = y * w + b (2000 recorded ops), best of the repetitions%s\n\n"
        "| elements | part | grad ns/op | LibTorch ns/op | LibTorch / grad |\n|---:|---|---:|---:|---:|\n",
        GRAD_PROFILER_HOOKS ? ""
                            : " (grad built with GRAD_PROFILER_HOOKS=0: the profiler hook compiled out)");
    for (std::size_t n : {std::size_t(1), std::size_t(1024)})
      for (part p : {part::forward, part::backward, part::both}) {
        const std::string suffix = std::to_string(n) + "/" + part_name(p);
        const auto g = best.find("tape/grad/" + suffix), t = best.find("tape/libtorch/" + suffix);
        if (g == best.end())
          continue;
        if (t == best.end())
          std::printf("| %zu | %s | %.1f | - | - |\n", n, part_name(p), g->second);
        else
          std::printf("| %zu | %s | %.1f | %.1f | %.1fx |\n", n, part_name(p), g->second, t->second,
                      t->second / g->second);
      }
    if (const auto pr = best.find("tape/grad-profiled/1/fwd+bwd"), g = best.find("tape/grad/1/fwd+bwd");
        pr != best.end() && g != best.end())
      std::printf("\nWith a profiler running (totals only, no trace), scalar chain fwd+bwd: %.1f ns per "
                  "recorded op, %.1f ns more than without\n",
                  pr->second, pr->second - g->second);
    const auto g = best.find("train_linear/grad"), t = best.find("train_linear/libtorch");
    if (g != best.end()) {
      std::printf("\ny = b + w x, 64 points, gradient descent: steps per second\n\n"
                  "| grad steps/s | LibTorch steps/s | grad / LibTorch |\n|---:|---:|---:|\n");
      if (t == best.end())
        std::printf("| %.0f | - | - |\n", g->second);
      else
        std::printf("| %.0f | %.0f | %.1fx |\n", g->second, t->second, g->second / t->second);
    }
  }
};

} // namespace

int main(int argc, char** argv) {
  for (std::size_t n : {std::size_t(1), std::size_t(1024)})
    for (part p : {part::forward, part::backward, part::both}) {
      const std::string suffix = std::to_string(n) + "/" + part_name(p);
      benchmark::RegisterBenchmark(("tape/grad/" + suffix).c_str(), grad_chain, n, p, false)
          ->Unit(benchmark::kMicrosecond);
#if GRAD_BENCH_TORCH_PEER
      benchmark::RegisterBenchmark(("tape/libtorch/" + suffix).c_str(), torch_chain, n, p)
          ->Unit(benchmark::kMicrosecond);
#endif
    }
#if GRAD_PROFILER_HOOKS
  benchmark::RegisterBenchmark("tape/grad-profiled/1/fwd+bwd", grad_chain, std::size_t(1), part::both, true)
      ->Unit(benchmark::kMicrosecond);
#endif
  benchmark::RegisterBenchmark("train_linear/grad", grad_train)->Unit(benchmark::kMillisecond);
#if GRAD_BENCH_TORCH_PEER
  benchmark::RegisterBenchmark("train_linear/libtorch", torch_train)->Unit(benchmark::kMillisecond);
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
    return 1;
  table_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print_table();
  benchmark::Shutdown();
  return 0;
}
