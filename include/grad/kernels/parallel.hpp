#pragma once
/// @file kernels/parallel.hpp
/// Thread count of grad's kernels and the one parallel loop they share (OpenMP when enabled).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <exception>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace grad {
namespace detail {

/// Process-wide thread setting; 0 = not set (use the OpenMP default). One atomic rather than OpenMP's
/// per-thread ICV so that a value set once applies to kernels called from any thread, as in PyTorch.
inline std::atomic<int>& num_threads_setting() noexcept {
  static std::atomic<int> n{0};
  return n;
}

/// Number of processors available to this process (1 without OpenMP).
inline int available_cores() noexcept {
#ifdef _OPENMP
  return std::max(1, omp_get_num_procs());
#else
  return 1;
#endif
}

} // namespace detail

/// Sets how many threads grad's kernels may use; n <= 0 means all cores.
inline void set_num_threads(int n) noexcept {
  detail::num_threads_setting().store(n <= 0 ? detail::available_cores() : n, std::memory_order_relaxed);
}

/// Threads grad's kernels may use: the value given to set_num_threads, else OpenMP's default (all
/// cores, or OMP_NUM_THREADS). Always 1 when compiled without OpenMP.
inline int get_num_threads() noexcept {
#ifdef _OPENMP
  const int n = detail::num_threads_setting().load(std::memory_order_relaxed);
  return n > 0 ? n : std::max(1, omp_get_max_threads());
#else
  return 1;
#endif
}

namespace detail {

/// Monotonic clock in nanoseconds.
inline std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// CPU time of the calling thread in nanoseconds (0 where POSIX thread clocks are missing).
inline std::int64_t thread_cpu_ns() noexcept {
#if defined(CLOCK_THREAD_CPUTIME_ID)
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
#else
  return 0;
#endif
}

/// When parallel regions are known to go badly (see parallel_tasks): until this time they are skipped;
/// the back-off doubles while they keep going badly.
struct parallel_backoff {
  std::atomic<std::int64_t> serial_until{0};
  std::atomic<std::int64_t> period{0};
  std::atomic<bool> last_bad{false};
};

inline parallel_backoff& parallel_state() noexcept {
  static parallel_backoff s;
  return s;
}

/// Calls f(t) for every t in [0, tasks) on up to `threads` threads, handing tasks out one at a time
/// from a shared counter. f must make a task's result independent of the thread running it; results
/// are then deterministic whatever the thread count and scheduling.
///
/// Why this shape (grad's reference machine is a 2-core VM shared with other jobs):
/// - one parallel region per call and no barrier inside it: a thread that the OS deschedules for a
///   time slice stalls every barrier it is part of;
/// - dynamic hand-out: a thread on a busy core takes fewer tasks instead of holding the others up;
/// - the region's closing barrier still waits for every thread, and libgomp's default spin-waiting
///   (GOMP_SPINCOUNT: several ms after each region; OMP_WAIT_POLICY can only be set before the
///   program starts) makes an idle worker burn its share of a busy core, so that it is descheduled
///   exactly when the next region starts, and takes CPU from the calling thread on a crowded
///   machine. So each region is checked: when the calling thread lost over a third of the region
///   (and 100 us) to being descheduled or to waiting for a late worker at the closing barrier, twice
///   in a row, the following calls run serially for a back-off period (10 ms, doubling up to 1 s
///   while regions keep going badly, halving when they go well), then try threads again. Serial
///   stretches also let the workers stop spinning and sleep.
/// Measured on the 2-core VM (float, 2 threads vs 1): idle, 1.2-1.4x at 128^3-256^3 and 1.9x at
/// 1024^3; with `yes` busy on one core, 0.9-1.0x (without the back-off 2 threads ran 2-3x slower
/// than 1 there, and 25x slower at 256^3 with load average 7).
/// Runs serially inside an enclosing parallel region (no nested oversubscription). An exception
/// thrown by a task stops the handing out of tasks and is rethrown to the caller.
template <class F>
void parallel_tasks(std::size_t tasks, int threads, F&& f) {
#ifdef _OPENMP
  if (threads > 1 && tasks > 1 && !omp_in_parallel()) {
    parallel_backoff& state = parallel_state();
    const std::int64_t t0 = now_ns();
    if (t0 >= state.serial_until.load(std::memory_order_relaxed)) {
      const int nt = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(threads), tasks));
      std::atomic<std::size_t> next{0};
      std::atomic<bool> failed{false};
      std::exception_ptr error; // the first exception of a task (one may not leave the region)
      const std::int64_t c0 = thread_cpu_ns();
      std::int64_t c1 = c0;
#pragma omp parallel num_threads(nt)
      {
        for (std::size_t t = next.fetch_add(1, std::memory_order_relaxed); t < tasks;
             t = next.fetch_add(1, std::memory_order_relaxed)) {
          try {
            f(t);
          } catch (...) {
            if (!failed.exchange(true))
              error = std::current_exception();
            next.store(tasks, std::memory_order_relaxed); // hand out no more tasks
          }
        }
        if (omp_get_thread_num() == 0)
          c1 = thread_cpu_ns(); // before the closing barrier, where libgomp may spin
      }
      if (error)
        std::rethrow_exception(error);
      const std::int64_t t1 = now_ns(), lost = (t1 - t0) - (c1 - c0);
      const std::int64_t period = state.period.load(std::memory_order_relaxed);
      if (lost > 100000 && 3 * lost > t1 - t0) {
        if (state.last_bad.exchange(true, std::memory_order_relaxed)) { // twice in a row: not a hiccup
          const std::int64_t p = std::clamp<std::int64_t>(2 * period, 10000000, 1000000000);
          state.period.store(p, std::memory_order_relaxed);
          state.serial_until.store(t1 + p, std::memory_order_relaxed);
          state.last_bad.store(false, std::memory_order_relaxed);
        }
      } else {
        state.last_bad.store(false, std::memory_order_relaxed);
        if (period > 0)
          state.period.store(period / 2, std::memory_order_relaxed);
      }
      return;
    }
  }
#endif
  (void)threads;
  for (std::size_t t = 0; t < tasks; ++t)
    f(t);
}

} // namespace detail
} // namespace grad
