// GEMM throughput of grad::kernels::gemm, next to OpenBLAS's cblas_sgemm in the same process when
// GRAD_BENCH_HAVE_OPENBLAS is defined. Each row (shape / layout / thread count) times the two libraries
// in alternating blocks on the same operands (paired.hpp), because this shared machine's speed drifts
// too much for two separately timed benchmarks to be compared; at the end a markdown table gives each
// library's best GFLOP/s and the median of the per-round ratios. Typical run (`bash benchmarks/run.sh
// gemm` does this):
//   bench_gemm [--rounds=11] [--block_time=0.04] [--wall_time] [--benchmark_filter=...]
// One-thread rows are timed in thread CPU time (robust on a shared machine), two-thread rows in wall
// time. Shapes are (M, K, N): C (M x N) = A (M x K) B (K x N); layouts NN, NT (B stored N x K, as in
// linear = x W^T) and TN (A stored K x M, as in a weight gradient).
#include <benchmark/benchmark.h>

#include <grad/kernels/gemm.hpp>
#include <grad/kernels/parallel.hpp>

#include "paired.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#ifdef GRAD_BENCH_HAVE_OPENBLAS
// openblas_config.h uses C99 _Complex, which -Wpedantic flags in C++ when the header is not a system one.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <cblas.h>
#pragma GCC diagnostic pop
#endif

namespace {

struct shape {
  int m, k, n;
};

const shape shapes[] = {{64, 64, 64},       {128, 128, 128},    {256, 256, 256}, {512, 512, 512},
                        {1024, 1024, 1024}, {2048, 2048, 2048}, {64, 784, 256},  {64, 256, 256},
                        {64, 256, 10},      {2048, 128, 384},   {2048, 512, 128}};

std::string shape_name(const shape& s) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "M%d_K%d_N%d", s.m, s.k, s.n);
  return buf;
}

/// Operands of one benchmark, stored as the layout asks.
struct operands {
  std::vector<float> a, b, c;
  explicit operands(const shape& s)
      : a(std::size_t(s.m) * s.k), b(std::size_t(s.k) * s.n), c(std::size_t(s.m) * s.n) {
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (auto& x : a)
      x = dist(rng);
    for (auto& x : b)
      x = dist(rng);
  }
};

/// Lets the previous library's worker threads go to sleep before timing another library: both OpenMP
/// and OpenBLAS threads spin for a while after a parallel call and would steal the second core.
void settle(int library) {
  static int last = -1;
  if (last != library)
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  last = library;
}

/// CPU seconds the whole machine spent busy (all cores, from /proc/stat; 0 where unreadable).
double machine_busy_seconds() {
  std::FILE* f = std::fopen("/proc/stat", "r");
  if (f == nullptr)
    return 0;
  unsigned long long v[8] = {};
  const int got = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                              &v[4], &v[5], &v[6], &v[7]);
  std::fclose(f);
  if (got != 8)
    return 0;
  const double tick = double(sysconf(_SC_CLK_TCK));
  return double(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / tick; // user nice system irq softirq steal
}

/// CPU seconds used by this process.
double self_seconds() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return double(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         1e-6 * double(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
}

/// Measures how many cores other processes kept busy while a benchmark ran ("others" counter: 0 on
/// an idle machine, about 1 when another job keeps one core busy), so a disturbed row can be told
/// apart from a slow one.
class others_meter {
public:
  others_meter()
      : busy_(machine_busy_seconds()), self_(self_seconds()), t0_(std::chrono::steady_clock::now()) {}
  void report(benchmark::State& state) const {
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    const double others = (machine_busy_seconds() - busy_) - (self_seconds() - self_);
    state.counters["others"] = wall > 0 ? std::max(0.0, others / wall) : 0.0;
  }

private:
  double busy_, self_;
  std::chrono::steady_clock::time_point t0_;
};

/// Rounds per row (--rounds=N) and the length of one block (--block_time=SECONDS).
grad_bench::round_options g_opt{11, 0.04};

/// Per-row results, accumulated over repetitions, in registration order.
struct row_result {
  double flops = 0;
  grad_bench::paired_times times;
  double others = 0; // most cores other processes kept busy during a repetition of the row
};
std::map<std::string, row_result> g_rows;
std::vector<std::string> g_order;

/// One row: grad and OpenBLAS (when linked) on the same operands, in alternating blocks (paired.hpp).
/// One thread: blocks timed in the thread's CPU time (robust on a shared machine); two threads, or
/// --wall_time: wall time.
void bench_row(benchmark::State& state, std::string row, shape s, bool ta, bool tb, int threads, bool wall) {
  operands op(s);
  const int lda = ta ? s.m : s.k, ldb = tb ? s.k : s.n;
  const auto ours = [&] {
    grad::kernels::gemm<float>(ta, tb, s.m, s.n, s.k, 1.0f, op.a.data(), lda, op.b.data(), ldb, 0.0f,
                               op.c.data(), s.n);
    benchmark::DoNotOptimize(op.c.data());
    benchmark::ClobberMemory();
  };
#ifdef GRAD_BENCH_HAVE_OPENBLAS
  const auto peer_fn = [&] {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, s.m, s.n, s.k,
                1.0f, op.a.data(), lda, op.b.data(), ldb, 0.0f, op.c.data(), s.n);
    benchmark::DoNotOptimize(op.c.data());
    benchmark::ClobberMemory();
  };
  const auto* peer = &peer_fn;
  openblas_set_num_threads(threads);
#else
  const decltype(ours)* peer = nullptr;
#endif
  grad::set_num_threads(threads);
  const bool cpu = threads == 1 && !wall;
  // With more than one thread, a library's workers spin for a while after each call: let them go
  // idle before the other library's block (settle), and warm each library up once.
  const auto before_ours = [&] {
    if (threads > 1)
      settle(0);
  };
  const auto before_peer = [&] {
    if (threads > 1)
      settle(1);
  };
  before_ours();
  ours();
  if (peer != nullptr) {
    before_peer();
    (*peer)();
  }
  row_result& res = g_rows[row];
  res.flops = 2.0 * s.m * s.n * s.k;
  const others_meter others;
  for (auto _ : state) {
    grad_bench::paired_times t;
    grad_bench::run_rounds(g_opt.rounds, g_opt.block_seconds, cpu, ours, peer, before_ours, before_peer, t);
    state.SetIterationTime(std::accumulate(t.ours.begin(), t.ours.end(), 0.0));
    res.times.ours.insert(res.times.ours.end(), t.ours.begin(), t.ours.end());
    res.times.peer.insert(res.times.peer.end(), t.peer.begin(), t.peer.end());
    state.counters["grad_GFLOP/s"] = res.flops / t.best_ours() * 1e-9;
    if (!t.peer.empty()) {
      state.counters["peer_GFLOP/s"] = res.flops / t.best_peer() * 1e-9;
      state.counters["ratio"] = t.median_speedup();
    }
  }
  others.report(state);
  res.others = std::max(res.others, double(state.counters["others"]));
}

/// `| shape | layout | threads | grad GFLOP/s | OpenBLAS GFLOP/s | ratio | ratio of bests | others |`
/// for every measured row (see paired.hpp for the two ratios); `others` is the most cores other
/// processes kept busy during a repetition of the row.
void print_table() {
  std::printf("\n%d rounds per row, blocks of at least %.0f ms; GFLOP/s from each library's best block; "
              "ratio = median over rounds of the paired grad/OpenBLAS speed ratio.\n",
              g_opt.rounds, g_opt.block_seconds * 1e3);
  std::printf(
      "\n| shape (M,K,N) | layout | threads | grad GFLOP/s | OpenBLAS GFLOP/s | ratio (paired median) "
      "| ratio of bests | others |\n");
  std::printf("|---|---|---|---:|---:|---:|---:|---:|\n");
  std::vector<double> ratios;
  for (const std::string& name : g_order) {
    const auto found = g_rows.find(name);
    if (found == g_rows.end() || found->second.times.ours.empty())
      continue;
    const row_result& r = found->second;
    const std::string rest = name.substr(5); // shape/layout/tN
    const std::size_t s1 = rest.find('/'), s2 = rest.find('/', s1 + 1);
    const std::string sh = rest.substr(0, s1), lay = rest.substr(s1 + 1, s2 - s1 - 1),
                      th = rest.substr(s2 + 2);
    const double gf = r.flops / r.times.best_ours() * 1e-9;
    if (r.times.peer.empty()) {
      std::printf("| %s | %s | %s | %.1f | - | - | - | %.2f |\n", sh.c_str(), lay.c_str(), th.c_str(), gf,
                  r.others);
      continue;
    }
    const double pf = r.flops / r.times.best_peer() * 1e-9, med = r.times.median_speedup();
    ratios.push_back(med);
    std::printf("| %s | %s | %s | %.1f | %.1f | %.3f | %.3f | %.2f |\n", sh.c_str(), lay.c_str(), th.c_str(),
                gf, pf, med, gf / pf, r.others);
  }
  if (!ratios.empty())
    std::printf("\nratio grad / OpenBLAS (paired median): min %.3f, max %.3f over %zu rows\n",
                *std::min_element(ratios.begin(), ratios.end()),
                *std::max_element(ratios.begin(), ratios.end()), ratios.size());
}

} // namespace

int main(int argc, char** argv) {
#ifdef GRAD_BENCH_HAVE_OPENBLAS
  // Debian's OpenBLAS does not recognise every AVX-512 CPU and would fall back to slower kernels; its
  // core type is read once at load time, so set it and start again.
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr && __builtin_cpu_supports("avx512f")) {
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    execv("/proc/self/exe", argv);
    std::perror("bench_gemm: re-exec with OPENBLAS_CORETYPE=SkylakeX failed; continuing");
  }
  std::printf("OpenBLAS: %s, core %s\n", openblas_get_config(), openblas_get_corename());
#endif
  std::printf("grad: %d threads by default, %zu floats per vector\n", grad::get_num_threads(),
              grad::detail::simd_width<float>);

  const struct {
    const char* name;
    bool ta, tb;
  } layouts[] = {{"NN", false, false}, {"NT", false, true}, {"TN", true, false}};
  // One thread: blocks timed in the thread's CPU time, which other jobs on a shared machine disturb
  // far less than wall time. Two threads: wall time (the only meaningful one). `--wall_time` times
  // every row in wall time (to compare 1 and 2 threads while another process competes for the cores).
  // `--rounds=N` and `--block_time=SECONDS` set the paired rounds (paired.hpp).
  grad_bench::take_round_options(argc, argv, g_opt);
  const bool wall_time = g_opt.wall_time;
  if (wall_time)
    std::printf("every row timed in wall time\n");
  for (int threads : {1, 2})
    for (const shape& s : shapes)
      for (const auto& l : layouts) {
        char name[96];
        std::snprintf(name, sizeof name, "gemm/%s/%s/t%d", shape_name(s).c_str(), l.name, threads);
        g_order.push_back(name);
        benchmark::RegisterBenchmark(name, bench_row, std::string(name), s, l.ta, l.tb, threads, wall_time)
            ->Unit(benchmark::kMillisecond)
            ->Iterations(1)
            ->UseManualTime();
      }

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
    return 1;
  benchmark::RunSpecifiedBenchmarks();
  print_table();
  benchmark::Shutdown();
  return 0;
}
