#pragma once
/// @file core/profile_hook.hpp
/// The one hook the tape offers a profiler (grad/profile/profiler.hpp): a thread-local pointer that is
/// null unless a profiler runs on this thread. apply<Op> and backward test it once per op, so a
/// program without a profiler pays one predictable branch per op and nothing else.

#include <chrono>
#include <cstdint>
#include <string_view>

namespace grad::detail {

/// Which half of an op a timed event belongs to.
enum class op_phase : std::uint8_t { forward, backward, user };

/// Receives one event per op call from the tape (and from user ranges).
class op_event_sink {
public:
  /// name: the op's name (a string literal that lives forever); start and duration in nanoseconds on
  /// the steady clock; flops and bytes of this call as the op counts them.
  virtual void record(std::string_view name, op_phase phase, std::int64_t start_ns, std::int64_t duration_ns,
                      std::uint64_t flops, std::uint64_t bytes) = 0;

protected:
  ~op_event_sink() = default;
};

/// 0 compiles the hook out of the tape: profilers then record nothing (benchmarks/bench_tape is also
/// built this way, as bench_tape_nohook, to show that the hook costs nothing measurable when off).
#ifndef GRAD_PROFILER_HOOKS
#define GRAD_PROFILER_HOOKS 1
#endif

/// The sink slot of this thread (a profiler installs itself here).
inline op_event_sink*& active_op_sink() noexcept {
  thread_local op_event_sink* sink = nullptr;
  return sink;
}

/// The sink the tape reports to: this thread's profiler, or null when none runs.
inline op_event_sink* op_sink() noexcept {
#if GRAD_PROFILER_HOOKS
  return active_op_sink();
#else
  return nullptr;
#endif
}

/// Steady-clock time in nanoseconds (the profiler's time base).
inline std::int64_t profile_clock_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

} // namespace grad::detail
