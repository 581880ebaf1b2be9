// GEMM throughput of grad::kernels::gemm, next to OpenBLAS's cblas_sgemm in the same process when
// GRAD_BENCH_HAVE_OPENBLAS is defined. Every shape / layout / thread count is registered twice in a
// row (grad, then OpenBLAS), and at the end a markdown table gives the best GFLOP/s of each and their
// ratio. Typical run (`bash benchmarks/run.sh gemm` does this):
//   bench_gemm --benchmark_min_time=0.2 --benchmark_repetitions=3 --benchmark_enable_random_interleaving=true
// One-thread rows are timed in thread CPU time (robust on a shared machine), two-thread rows in wall
// time. Shapes are (M, K, N): C (M x N) = A (M x K) B (K x N); layouts NN, NT (B stored N x K, as in
// linear = x W^T) and TN (A stored K x M, as in a weight gradient).
#include <benchmark/benchmark.h>

#include <grad/kernels/gemm.hpp>
#include <grad/kernels/parallel.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
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

void set_flops(benchmark::State& state, const shape& s) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * s.m * s.n * s.k * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void bench_grad(benchmark::State& state, shape s, bool ta, bool tb, int threads) {
  settle(0);
  grad::set_num_threads(threads);
  operands op(s);
  const int lda = ta ? s.m : s.k, ldb = tb ? s.k : s.n;
  const others_meter others;
  for (auto _ : state) {
    grad::kernels::gemm<float>(ta, tb, s.m, s.n, s.k, 1.0f, op.a.data(), lda, op.b.data(), ldb, 0.0f,
                               op.c.data(), s.n);
    benchmark::DoNotOptimize(op.c.data());
    benchmark::ClobberMemory();
  }
  others.report(state);
  set_flops(state, s);
}

#ifdef GRAD_BENCH_HAVE_OPENBLAS
void bench_openblas(benchmark::State& state, shape s, bool ta, bool tb, int threads) {
  settle(1);
  openblas_set_num_threads(threads);
  operands op(s);
  const int lda = ta ? s.m : s.k, ldb = tb ? s.k : s.n;
  const others_meter others;
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, s.m, s.n, s.k,
                1.0f, op.a.data(), lda, op.b.data(), ldb, 0.0f, op.c.data(), s.n);
    benchmark::DoNotOptimize(op.c.data());
    benchmark::ClobberMemory();
  }
  others.report(state);
  set_flops(state, s);
}
#endif

/// Console output as usual, plus the best GFLOP/s of every benchmark (over repetitions) for the table.
class table_reporter : public benchmark::ConsoleReporter {
public:
  std::map<std::string, double> best;   // benchmark name -> best GFLOP/s over repetitions
  std::map<std::string, double> others; // benchmark name -> most cores other processes used in a repetition
  std::vector<std::string> order;       // grad benchmark names in registration order

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.run_type != Run::RT_Iteration || r.error_occurred)
        continue;
      const auto it = r.counters.find("GFLOP/s");
      if (it == r.counters.end())
        continue;
      double& b = best[r.run_name.function_name];
      b = std::max(b, double(it->second));
      const auto o = r.counters.find("others");
      if (o != r.counters.end()) {
        double& x = others[r.run_name.function_name];
        x = std::max(x, double(o->second));
      }
    }
  }

  /// `| shape | layout | threads | grad GFLOP/s | OpenBLAS GFLOP/s | ratio | others |` for every measured
  /// row; `others` is the most cores other processes kept busy during a repetition of either library.
  void print_table() const {
    std::printf(
        "\n| shape (M,K,N) | layout | threads | grad GFLOP/s | OpenBLAS GFLOP/s | ratio | others |\n");
    std::printf("|---|---|---|---:|---:|---:|---:|\n");
    std::vector<double> ratios;
    for (const std::string& name : order) {
      const auto found = best.find(name);
      if (found == best.end())
        continue;
      const double gf = found->second;
      const std::string rest = name.substr(10); // shape/layout/tN
      const auto peer = best.find("gemm/openblas/" + rest);
      const std::size_t s1 = rest.find('/'), s2 = rest.find('/', s1 + 1);
      const std::string sh = rest.substr(0, s1), lay = rest.substr(s1 + 1, s2 - s1 - 1),
                        th = rest.substr(s2 + 2);
      double busy = 0;
      for (const std::string& n : {name, "gemm/openblas/" + rest})
        if (const auto o = others.find(n); o != others.end())
          busy = std::max(busy, o->second);
      if (peer == best.end() || peer->second <= 0) {
        std::printf("| %s | %s | %s | %.1f | - | - | %.2f |\n", sh.c_str(), lay.c_str(), th.c_str(), gf,
                    busy);
        continue;
      }
      ratios.push_back(gf / peer->second);
      std::printf("| %s | %s | %s | %.1f | %.1f | %.3f | %.2f |\n", sh.c_str(), lay.c_str(), th.c_str(), gf,
                  peer->second, gf / peer->second, busy);
    }
    if (!ratios.empty())
      std::printf("\nratio grad / OpenBLAS: min %.3f, max %.3f over %zu rows\n",
                  *std::min_element(ratios.begin(), ratios.end()),
                  *std::max_element(ratios.begin(), ratios.end()), ratios.size());
  }
};

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
  // One thread: rates from the thread's CPU time, which other jobs on a shared machine disturb far
  // less than wall time. Two threads: wall time (the only meaningful one). `--wall_time` times every
  // row in wall time (to compare 1 and 2 threads while another process competes for the cores).
  bool wall_time = false;
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) == "--wall_time") {
      wall_time = true;
      for (int j = i; j + 1 < argc; ++j)
        argv[j] = argv[j + 1];
      --argc;
      break;
    }
  if (wall_time)
    std::printf("every row timed in wall time\n");
  table_reporter reporter;
  for (int threads : {1, 2})
    for (const shape& s : shapes)
      for (const auto& l : layouts) {
        char suffix[96];
        std::snprintf(suffix, sizeof suffix, "%s/%s/t%d", shape_name(s).c_str(), l.name, threads);
        const std::string ours = std::string("gemm/grad/") + suffix;
        reporter.order.push_back(ours);
        auto* b = benchmark::RegisterBenchmark(ours.c_str(), bench_grad, s, l.ta, l.tb, threads);
        b->Unit(benchmark::kMicrosecond);
        if (threads > 1 || wall_time)
          b->UseRealTime();
#ifdef GRAD_BENCH_HAVE_OPENBLAS
        auto* p = benchmark::RegisterBenchmark((std::string("gemm/openblas/") + suffix).c_str(),
                                               bench_openblas, s, l.ta, l.tb, threads);
        p->Unit(benchmark::kMicrosecond);
        if (threads > 1 || wall_time)
          p->UseRealTime();
#endif
      }

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
    return 1;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print_table();
  benchmark::Shutdown();
  return 0;
}
