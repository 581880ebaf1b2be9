#pragma once
// Paired timing for a shared machine whose speed drifts (this project's 2-core VM drifts by 30-40%
// within seconds). Timing grad and its peer in separate benchmarks, seconds or minutes apart, lets the
// drift decide a ratio; here the two contenders run in alternating short blocks ("rounds"), so that
// both see the same machine, and a row reports:
//   - each contender's best block (its rate on the machine's best moment), and
//   - the median over rounds of the per-round ratio (each round's two blocks are adjacent in time).
// The order inside a round alternates (grad first in even rounds, the peer first in odd ones), so
// neither side always inherits the other's cache or frequency state.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <ctime>
#include <string_view>
#include <vector>

namespace grad_bench {

/// Seconds on the calling thread's CPU clock (cpu = true) or the wall clock.
inline double now_seconds(bool cpu) {
  if (cpu) {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// Seconds per call of f over one block: at least `min_calls` calls and at least `block_seconds`. The
/// clock is read after batches of calls that double while they are short, so that reading it costs
/// nothing measurable even when a call takes 100 ns.
template <class F>
double time_block(F&& f, double block_seconds, bool cpu, int min_calls = 1) {
  long calls = 0, batch = 1;
  const double t0 = now_seconds(cpu);
  double t = t0;
  do {
    for (long i = 0; i < batch; ++i)
      f();
    calls += batch;
    t = now_seconds(cpu);
    if (t - t0 < block_seconds / 16)
      batch *= 2;
  } while (calls < min_calls || t - t0 < block_seconds);
  return (t - t0) / double(calls);
}

/// Per-block seconds per call of two contenders, block i of each taken in the same round.
struct paired_times {
  std::vector<double> ours, peer;

  /// Fastest block of ours / of the peer (seconds per call).
  double best_ours() const { return ours.empty() ? 0 : *std::min_element(ours.begin(), ours.end()); }
  double best_peer() const { return peer.empty() ? 0 : *std::min_element(peer.begin(), peer.end()); }

  /// Median over rounds of peer time / our time (> 1: ours is faster); 0 without peer blocks.
  double median_speedup() const {
    std::vector<double> r;
    for (std::size_t i = 0; i < std::min(ours.size(), peer.size()); ++i)
      if (ours[i] > 0)
        r.push_back(peer[i] / ours[i]);
    if (r.empty())
      return 0;
    std::sort(r.begin(), r.end());
    const std::size_t h = r.size() / 2;
    return r.size() % 2 ? r[h] : 0.5 * (r[h - 1] + r[h]);
  }
};

/// Runs `rounds` rounds of one block of `ours` and one of `peer` (order alternating), calling
/// `before_ours` / `before_peer` before each block (e.g. to let the other library's threads go idle),
/// and appends the blocks' seconds per call to `out`. A null peer (no peer library) times ours alone.
template <class FO, class FP, class BO, class BP>
void run_rounds(int rounds, double block_seconds, bool cpu, FO&& ours, FP* peer, BO&& before_ours,
                BP&& before_peer, paired_times& out, int min_calls = 1) {
  for (int r = 0; r < rounds; ++r) {
    const auto time_ours = [&] {
      before_ours();
      out.ours.push_back(time_block(ours, block_seconds, cpu, min_calls));
    };
    const auto time_peer = [&] {
      before_peer();
      out.peer.push_back(time_block(*peer, block_seconds, cpu, min_calls));
    };
    if (peer == nullptr) {
      time_ours();
    } else if (r % 2 == 0) {
      time_ours();
      time_peer();
    } else {
      time_peer();
      time_ours();
    }
  }
}

/// Options of the paired benchmarks, taken out of argv before Google Benchmark reads it:
/// `--rounds=N`, `--block_time=SECONDS` and (where the program offers it) `--wall_time`.
struct round_options {
  int rounds;
  double block_seconds;
  bool wall_time = false;
};

/// Removes the options above from argv (so Google Benchmark does not reject them) into `opt`.
inline void take_round_options(int& argc, char** argv, round_options& opt) {
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg(argv[i]);
    if (arg == "--wall_time")
      opt.wall_time = true;
    else if (arg.substr(0, 9) == "--rounds=")
      opt.rounds = std::max(1, std::atoi(argv[i] + 9));
    else if (arg.substr(0, 13) == "--block_time=")
      opt.block_seconds = std::max(0.0, std::atof(argv[i] + 13));
    else
      argv[kept++] = argv[i];
  }
  argc = kept;
}

} // namespace grad_bench
