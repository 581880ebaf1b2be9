// Bandwidth of grad's elementwise, reduction and softmax kernels (float) on 1e3, 1e5 and 1e7 elements,
// next to a plain copy (the memory-bandwidth reference), xtensor expressions doing the same work, and a
// loop over xsimd 8.1's own exp. GB/s counts bytes read + written once each. Every row times its kernel
// and a copy of the same size in alternating blocks (paired.hpp: this shared machine's speed drifts
// too much for separately timed rows to be compared), and the table at the end gives every kernel's
// GB/s and the median of its per-round ratios to the copy.
//
//   bench_elementwise [--rounds=11] [--block_time=0.02] [--wall_time] [--benchmark_filter=...]
// Sizes 1e3 and 1e5 run in cache (compute bound for exp, tanh, gelu); 1e7 (40 MB an array) runs from
// this machine's 105 MiB L3 or from memory, depending on the CPU.
#include <benchmark/benchmark.h>

// g++ 12 warns inside its own AVX-512 headers when xsimd's exp/nearbyint are inlined here (the xsimd and
// xtensor peers below; GCC PR105593 family); grad's kernels avoid those intrinsics.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xreducer.hpp>

#include "grad/kernels/binary.hpp"
#include "grad/kernels/reduce.hpp"
#include "grad/kernels/softmax.hpp"
#include "grad/kernels/unary.hpp"

#include "paired.hpp"

namespace {

namespace k = grad::kernels;

/// Four input/output arrays of n floats with values in [lo, hi].
struct arrays {
  std::vector<float> x, y, z, w;
  arrays(std::size_t n, float lo, float hi) : x(n), y(n), z(n), w(n) {
    std::mt19937 gen(42);
    std::uniform_real_distribution<float> d(lo, hi);
    for (std::size_t i = 0; i < n; ++i)
      x[i] = d(gen), y[i] = d(gen), z[i] = d(gen), w[i] = d(gen);
  }
};

/// Rows of the (rows, 1000) matrices the row-wise kernels work on (n / 1000, at least 1).
constexpr std::size_t cols = 1000;

struct kernel {
  const char* name;
  float lo, hi;       // input range
  int bytes_per_elem; // bytes read + written per element
  std::function<void(arrays&, std::size_t)> run;
};

/// xtensor view of a buffer without copying.
auto view(std::vector<float>& v, std::size_t n) {
  return xt::adapt(v.data(), n, xt::no_ownership(), std::array<std::size_t, 1>{n});
}

std::vector<kernel> kernels() {
  return {
      {"copy", -1, 1, 8, [](arrays& a, std::size_t n) { k::copy(a.x.data(), a.y.data(), n); }},
      {"memcpy", -1, 1, 8,
       [](arrays& a, std::size_t n) { std::memcpy(a.y.data(), a.x.data(), n * sizeof(float)); }},
      {"add", -1, 1, 12, [](arrays& a, std::size_t n) { k::add(a.x.data(), a.y.data(), a.z.data(), n); }},
      {"mul", -1, 1, 12, [](arrays& a, std::size_t n) { k::mul(a.x.data(), a.y.data(), a.z.data(), n); }},
      {"mul_add", -1, 1, 16,
       [](arrays& a, std::size_t n) { k::mul_add(a.x.data(), a.y.data(), a.w.data(), a.z.data(), n); }},
      {"axpy", -1, 1, 12, [](arrays& a, std::size_t n) { k::axpy(0.5f, a.x.data(), a.y.data(), n); }},
      {"acc", -1, 1, 12, [](arrays& a, std::size_t n) { k::acc(a.x.data(), a.y.data(), n); }},
      {"relu", -1, 1, 8, [](arrays& a, std::size_t n) { k::relu(a.x.data(), a.y.data(), n); }},
      {"sqrt", 0, 4, 8, [](arrays& a, std::size_t n) { k::sqrt(a.x.data(), a.y.data(), n); }},
      {"exp", -5, 5, 8, [](arrays& a, std::size_t n) { k::exp(a.x.data(), a.y.data(), n); }},
      {"log", 0.01f, 10, 8, [](arrays& a, std::size_t n) { k::log(a.x.data(), a.y.data(), n); }},
      {"tanh", -5, 5, 8, [](arrays& a, std::size_t n) { k::tanh(a.x.data(), a.y.data(), n); }},
      {"sigmoid", -5, 5, 8, [](arrays& a, std::size_t n) { k::sigmoid(a.x.data(), a.y.data(), n); }},
      {"gelu_tanh", -5, 5, 8, [](arrays& a, std::size_t n) { k::gelu_tanh(a.x.data(), a.y.data(), n); }},
      {"gelu_erf", -5, 5, 8, [](arrays& a, std::size_t n) { k::gelu_erf(a.x.data(), a.y.data(), n); }},
      {"relu_backward", -1, 1, 16,
       [](arrays& a, std::size_t n) { k::relu_backward(a.x.data(), a.y.data(), a.z.data(), n); }},
      {"tanh_backward", -1, 1, 16,
       [](arrays& a, std::size_t n) { k::tanh_backward(a.x.data(), a.y.data(), a.z.data(), n); }},
      {"gelu_tanh_backward", -5, 5, 16,
       [](arrays& a, std::size_t n) { k::gelu_tanh_backward(a.x.data(), a.y.data(), a.z.data(), n); }},
      {"sum", -1, 1, 4, [](arrays& a, std::size_t n) { benchmark::DoNotOptimize(k::sum(a.x.data(), n)); }},
      {"max", -1, 1, 4, [](arrays& a, std::size_t n) { benchmark::DoNotOptimize(k::max(a.x.data(), n)); }},
      {"dot", -1, 1, 8,
       [](arrays& a, std::size_t n) { benchmark::DoNotOptimize(k::dot(a.x.data(), a.y.data(), n)); }},
      {"sum_last", -1, 1, 4,
       [](arrays& a, std::size_t n) {
         k::sum_last(a.x.data(), a.y.data(), std::max<std::size_t>(1, n / cols), std::min(n, cols));
       }},
      {"sum_first", -1, 1, 4,
       [](arrays& a, std::size_t n) {
         k::sum_first(a.x.data(), a.y.data(), std::max<std::size_t>(1, n / cols), std::min(n, cols));
       }},
      {"softmax_last", -5, 5, 8,
       [](arrays& a, std::size_t n) {
         k::softmax_last(a.x.data(), a.y.data(), std::max<std::size_t>(1, n / cols), std::min(n, cols));
       }},
      {"log_softmax_last", -5, 5, 8,
       [](arrays& a, std::size_t n) {
         k::log_softmax_last(a.x.data(), a.y.data(), std::max<std::size_t>(1, n / cols), std::min(n, cols));
       }},
      {"softmax_last_backward", 0, 0.01f, 16,
       [](arrays& a, std::size_t n) {
         k::softmax_last_backward(a.x.data(), a.y.data(), a.z.data(), std::max<std::size_t>(1, n / cols),
                                  std::min(n, cols));
       }},
      // Peers doing the same work: xtensor expressions (assigned with noalias, the fast form) and xsimd's
      // exp.
      {"xt:mul", -1, 1, 12,
       [](arrays& a, std::size_t n) {
         auto z = view(a.z, n);
         xt::noalias(z) = view(a.x, n) * view(a.y, n);
       }},
      {"xt:mul_add", -1, 1, 16,
       [](arrays& a, std::size_t n) {
         auto z = view(a.z, n);
         xt::noalias(z) = view(a.x, n) * view(a.y, n) + view(a.w, n);
       }},
      {"xt:exp", -5, 5, 8,
       [](arrays& a, std::size_t n) {
         auto y = view(a.y, n);
         xt::noalias(y) = xt::exp(view(a.x, n));
       }},
      {"xt:tanh", -5, 5, 8,
       [](arrays& a, std::size_t n) {
         auto y = view(a.y, n);
         xt::noalias(y) = xt::tanh(view(a.x, n));
       }},
      {"xt:sum", -1, 1, 4,
       [](arrays& a, std::size_t n) {
         benchmark::DoNotOptimize(xt::sum(view(a.x, n), xt::evaluation_strategy::immediate)());
       }},
      {"xsimd:exp", -5, 5, 8,
       [](arrays& a, std::size_t n) {
         using B = xsimd::batch<float>;
         std::size_t i = 0;
         for (; i + B::size <= n; i += B::size)
           xsimd::exp(B::load_unaligned(a.x.data() + i)).store_unaligned(a.y.data() + i);
         for (; i < n; ++i)
           a.y[i] = std::exp(a.x[i]);
       }},
  };
}

/// "elementwise/<kernel>/<n>/t<threads>".
std::string bench_name(const char* kernel, std::size_t n, int threads) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "elementwise/%s/%zu/t%d", kernel, n, threads);
  return buf;
}

/// Rounds per row (--rounds=N) and the length of one block (--block_time=SECONDS).
grad_bench::round_options g_opt{11, 0.02};

/// Per-row results, accumulated over repetitions.
struct row_result {
  double bytes = 0, copy_bytes = 0; // bytes one call of the kernel / of the copy moves
  grad_bench::paired_times times;   // ours: the kernel, peer: the copy
};
std::map<std::string, row_result> g_rows;

/// One row: the kernel and a plain copy of the same size in alternating blocks (paired.hpp), so the
/// ratio to copy compares the two on the same machine state. One thread: blocks timed in the thread's
/// CPU time; two threads, or --wall_time: wall time. The copy's own row times it alone.
void run_kernel(benchmark::State& state, const kernel& kern, const kernel& copy, std::size_t n, int threads) {
  arrays a(n, kern.lo, kern.hi);
  grad::set_num_threads(threads);
  const auto ours = [&] {
    kern.run(a, n);
    benchmark::ClobberMemory();
  };
  const auto peer_fn = [&] {
    copy.run(a, n);
    benchmark::ClobberMemory();
  };
  const auto* peer = std::string_view(kern.name) == copy.name ? nullptr : &peer_fn;
  const auto nothing = [] {};
  ours();
  peer_fn();
  row_result& res = g_rows[bench_name(kern.name, n, threads)];
  res.bytes = double(n) * kern.bytes_per_elem;
  res.copy_bytes = double(n) * copy.bytes_per_elem;
  for (auto _ : state) {
    grad_bench::paired_times t;
    grad_bench::run_rounds(g_opt.rounds, g_opt.block_seconds, threads == 1 && !g_opt.wall_time, ours, peer,
                           nothing, nothing, t);
    state.SetIterationTime(std::accumulate(t.ours.begin(), t.ours.end(), 0.0));
    res.times.ours.insert(res.times.ours.end(), t.ours.begin(), t.ours.end());
    res.times.peer.insert(res.times.peer.end(), t.peer.begin(), t.peer.end());
    state.counters["GB/s"] = res.bytes / t.best_ours() * 1e-9;
    if (peer != nullptr)
      state.counters["ratio_to_copy"] = t.median_speedup() * res.bytes / res.copy_bytes;
  }
  grad::set_num_threads(0);
}

/// `| kernel | n | threads | GB/s | copy GB/s | ratio |`, grouped by size and threads: GB/s from each
/// side's best block, ratio = median over rounds of the paired kernel/copy bandwidth ratio.
void print_table(const std::vector<kernel>& ks, const std::vector<std::size_t>& sizes,
                 const std::vector<int>& threads) {
  std::printf("\n%d rounds per row, blocks of at least %.0f ms; GB/s from the best block; ratio to copy = "
              "median over rounds of the paired kernel/copy bandwidth ratio.\n",
              g_opt.rounds, g_opt.block_seconds * 1e3);
  std::printf("\n| kernel | n | threads | GB/s | copy GB/s (paired) | ratio to copy |\n"
              "|---|---:|---:|---:|---:|---:|\n");
  for (const int t : threads)
    for (const std::size_t n : sizes)
      for (const kernel& kern : ks) {
        const auto it = g_rows.find(bench_name(kern.name, n, t));
        if (it == g_rows.end() || it->second.times.ours.empty())
          continue;
        const row_result& r = it->second;
        const double gb = r.bytes / r.times.best_ours() * 1e-9;
        if (r.times.peer.empty()) {
          std::printf("| %s | %zu | %d | %.1f | - | 1 |\n", kern.name, n, t, gb);
          continue;
        }
        std::printf("| %s | %zu | %d | %.1f | %.1f | %.2f |\n", kern.name, n, t, gb,
                    r.copy_bytes / r.times.best_peer() * 1e-9,
                    r.times.median_speedup() * r.bytes / r.copy_bytes);
      }
}

} // namespace

int main(int argc, char** argv) {
  std::printf("grad: %d threads by default, %zu floats per vector\n", grad::get_num_threads(),
              xsimd::batch<float>::size);
  // `--rounds=N` and `--block_time=SECONDS` set the paired rounds (paired.hpp).
  grad_bench::take_round_options(argc, argv, g_opt);
  const std::vector<kernel> ks = kernels();
  const kernel& copy = ks.front();
  const std::vector<std::size_t> sizes = {1000, 100000, 10000000};
  const std::vector<int> threads = grad::get_num_threads() > 1 ? std::vector<int>{1, 2} : std::vector<int>{1};
  for (const int t : threads)
    for (const std::size_t n : sizes) {
      if (t > 1 && n < 10000000) // threads only start on large arrays
        continue;
      for (const kernel& kern : ks)
        benchmark::RegisterBenchmark(bench_name(kern.name, n, t).c_str(), run_kernel, kern, copy, n, t)
            ->Iterations(1)
            ->UseManualTime();
    }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
    return 1;
  benchmark::RunSpecifiedBenchmarks();
  print_table(ks, sizes, threads);
  benchmark::Shutdown();
  return 0;
}
