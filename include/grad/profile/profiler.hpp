#pragma once
/// @file profile/profiler.hpp
/// `grad::profiler`: while one is alive on a thread, every op that thread runs (forward through
/// apply<Op>, backward through backward()) is timed and counted: calls, wall time, FLOPs from the op's
/// own FLOP count, bytes moved, achieved GFLOP/s and GB/s. `print()` gives a table sorted by time,
/// `to_csv()` the same as CSV, and `write_chrome_trace(path)` a Trace Event JSON file that
/// chrome://tracing and https://ui.perfetto.dev open as a timeline.
///
///     grad::profiler prof;            // starts recording on this thread
///     auto loss = model.loss(x, y);
///     loss.backward();
///     prof.stop();
///     prof.print(std::cout);
///     prof.write_chrome_trace("step.json");
///
/// Code that is not an op (an optimizer step, a kernel called directly) can be timed with a
/// `grad::profile_range`, which appears in the table and on the timeline as a user range.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "grad/core/profile_hook.hpp"
#include "grad/io/file.hpp"

namespace grad {

/// Totals of one op in one phase (forward or backward) or of one user range.
struct op_profile {
  std::string name;        ///< op name ("matmul", "linear", ...) or user range name
  std::string phase;       ///< "forward", "backward" or "user"
  std::uint64_t calls = 0; ///< number of calls
  std::int64_t ns = 0;     ///< wall time summed over calls, in nanoseconds
  std::uint64_t flops = 0; ///< floating-point operations summed over calls
  std::uint64_t bytes = 0; ///< bytes read and written summed over calls (backward: an estimate)
  double seconds() const noexcept { return double(ns) * 1e-9; }
  /// Achieved GFLOP/s (0 when no time was measured).
  double gflops_per_second() const noexcept { return ns > 0 ? double(flops) / double(ns) : 0.0; }
  /// Achieved GB/s (0 when no time was measured).
  double gbytes_per_second() const noexcept { return ns > 0 ? double(bytes) / double(ns) : 0.0; }
};

/// Options of a profiler.
struct profiler_options {
  bool start = true;                 ///< start recording in the constructor
  bool trace = true;                 ///< keep every event for write_chrome_trace (else only totals)
  std::size_t max_events = 1u << 20; ///< trace events kept at most (later ones only count in totals)
};

/// Records the ops of the calling thread between start() and stop() (see the file comment).
/// Profilers nest: an inner one records while alive, then the outer one resumes. Not thread-safe:
/// each thread profiles itself.
class profiler final : private detail::op_event_sink {
public:
  /// One timed call, as kept for the trace.
  struct event {
    std::string_view name;
    detail::op_phase phase;
    std::int64_t start_ns, duration_ns;
    std::uint64_t flops, bytes;
  };

  explicit profiler(const profiler_options& opt = {}) : opt_(opt) {
    if (opt_.start)
      start();
  }
  profiler(const profiler&) = delete;
  profiler& operator=(const profiler&) = delete;
  ~profiler() { stop(); }

  /// Starts (or resumes) recording on this thread.
  void start() {
    if (running_)
      return;
    previous_ = detail::active_op_sink();
    detail::active_op_sink() = this;
    running_ = true;
    if (origin_ns_ == 0)
      origin_ns_ = detail::profile_clock_ns();
  }
  /// Stops recording; the results stay readable. Call on the thread that started it.
  void stop() noexcept {
    if (!running_)
      return;
    if (detail::active_op_sink() == this)
      detail::active_op_sink() = previous_;
    running_ = false;
  }
  /// True while recording.
  bool running() const noexcept { return running_; }
  /// Forgets everything recorded so far.
  void reset() {
    totals_.clear();
    events_.clear();
    dropped_ = 0;
    origin_ns_ = running_ ? detail::profile_clock_ns() : 0;
  }

  /// Per op and phase, sorted by time (largest first).
  std::vector<op_profile> table() const {
    std::vector<op_profile> rows;
    rows.reserve(totals_.size());
    for (const auto& [key, row] : totals_)
      rows.push_back(row);
    std::stable_sort(rows.begin(), rows.end(),
                     [](const op_profile& a, const op_profile& b) { return a.ns > b.ns; });
    return rows;
  }
  /// Sum over all ops of one phase ("forward", "backward", "user"), or over the ops of every phase
  /// when `phase` is empty (user ranges are excluded from that total: they may contain ops).
  op_profile total(std::string_view phase = {}) const {
    op_profile t;
    t.name = "total";
    t.phase = phase.empty() ? "ops" : std::string(phase);
    for (const auto& [key, row] : totals_) {
      if (phase.empty() ? row.phase == "user" : row.phase != phase)
        continue;
      t.calls += row.calls;
      t.ns += row.ns;
      t.flops += row.flops;
      t.bytes += row.bytes;
    }
    return t;
  }
  /// The kept trace events in recording order.
  const std::vector<event>& events() const noexcept { return events_; }
  /// Events not kept for the trace because max_events was reached (still counted in the totals).
  std::size_t dropped_events() const noexcept { return dropped_; }

  /// A table sorted by time: op, phase, calls, ms, share of the op time, GFLOP, GFLOP/s, GB/s.
  void print(std::ostream& os) const {
    const op_profile all = total();
    const double all_ns = all.ns > 0 ? double(all.ns) : 1.0;
    char line[256];
    std::snprintf(line, sizeof line, "%-24s %-8s %9s %11s %7s %11s %9s %8s\n", "op", "phase", "calls",
                  "time ms", "share", "GFLOP", "GFLOP/s", "GB/s");
    os << line;
    for (const op_profile& r : table()) {
      std::snprintf(line, sizeof line, "%-24.24s %-8s %9llu %11.3f %6.1f%% %11.4f %9.2f %8.2f\n",
                    r.name.c_str(), r.phase.c_str(), static_cast<unsigned long long>(r.calls),
                    double(r.ns) * 1e-6, r.phase == "user" ? 0.0 : 100.0 * double(r.ns) / all_ns,
                    double(r.flops) * 1e-9, r.gflops_per_second(), r.gbytes_per_second());
      os << line;
    }
    for (const char* ph : {"forward", "backward"}) {
      const op_profile t = total(ph);
      std::snprintf(line, sizeof line, "%-24s %-8s %9llu %11.3f %6.1f%% %11.4f %9.2f %8.2f\n", "total", ph,
                    static_cast<unsigned long long>(t.calls), double(t.ns) * 1e-6,
                    100.0 * double(t.ns) / all_ns, double(t.flops) * 1e-9, t.gflops_per_second(),
                    t.gbytes_per_second());
      os << line;
    }
    std::snprintf(line, sizeof line, "%-24s %-8s %9llu %11.3f %6.1f%% %11.4f %9.2f %8.2f\n", "total", "all",
                  static_cast<unsigned long long>(all.calls), double(all.ns) * 1e-6, 100.0,
                  double(all.flops) * 1e-9, all.gflops_per_second(), all.gbytes_per_second());
    os << line;
  }
  /// The table as a string.
  std::string to_string() const {
    std::ostringstream os;
    print(os);
    return os.str();
  }
  /// The table as CSV: op,phase,calls,seconds,flops,bytes,gflops_per_second,gbytes_per_second.
  std::string to_csv() const {
    std::ostringstream os;
    os << "op,phase,calls,seconds,flops,bytes,gflops_per_second,gbytes_per_second\n";
    char line[256];
    for (const op_profile& r : table()) {
      std::snprintf(line, sizeof line, "%s,%s,%llu,%.9f,%llu,%llu,%.4f,%.4f\n", r.name.c_str(),
                    r.phase.c_str(), static_cast<unsigned long long>(r.calls), r.seconds(),
                    static_cast<unsigned long long>(r.flops), static_cast<unsigned long long>(r.bytes),
                    r.gflops_per_second(), r.gbytes_per_second());
      os << line;
    }
    return os.str();
  }
  /// Writes to_csv() to `path` atomically.
  void write_csv(const std::filesystem::path& path) const {
    const std::string text = to_csv();
    io::detail::atomic_write(path, "profiler", [&](io::detail::file_writer& w) { w.write(text); });
  }
  /// The trace as Trace Event JSON (complete "X" events in microseconds, with FLOPs and bytes as args).
  std::string to_chrome_trace() const {
    std::string out = "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
    char line[512];
    bool first = true;
    for (const event& e : events_) {
      std::string name;
      name.reserve(e.name.size());
      for (const char ch : e.name) // op names are identifiers; escape anyway
        if (ch == '"' || ch == '\\')
          name += '\\', name += ch;
        else if (static_cast<unsigned char>(ch) >= 0x20)
          name += ch;
      const char* ph = phase_name(e.phase);
      std::snprintf(
          line, sizeof line,
          "%s{\"name\":\"%s\",\"cat\":\"%s\",\"ph\":\"X\",\"pid\":1,\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f,"
          "\"args\":{\"flops\":%llu,\"bytes\":%llu}}",
          first ? "" : ",\n", name.c_str(), ph, e.phase == detail::op_phase::user ? 0 : 1,
          double(e.start_ns - origin_ns_) * 1e-3, double(e.duration_ns) * 1e-3,
          static_cast<unsigned long long>(e.flops), static_cast<unsigned long long>(e.bytes));
      out += line;
      first = false;
    }
    out += "\n],\"otherData\":{\"producer\":\"grad::profiler\"}}\n";
    return out;
  }
  /// Writes to_chrome_trace() to `path` atomically (open it in chrome://tracing or Perfetto).
  void write_chrome_trace(const std::filesystem::path& path) const {
    const std::string text = to_chrome_trace();
    io::detail::atomic_write(path, "profiler", [&](io::detail::file_writer& w) { w.write(text); });
  }

private:
  friend class profile_range;

  static const char* phase_name(detail::op_phase p) noexcept {
    switch (p) {
    case detail::op_phase::forward:
      return "forward";
    case detail::op_phase::backward:
      return "backward";
    default:
      return "user";
    }
  }

  void record(std::string_view name, detail::op_phase phase, std::int64_t start_ns, std::int64_t duration_ns,
              std::uint64_t flops, std::uint64_t bytes) override {
    auto key = std::make_pair(std::string(name), static_cast<int>(phase));
    auto it = totals_.find(key);
    if (it == totals_.end()) {
      op_profile row;
      row.name = key.first;
      row.phase = phase_name(phase);
      it = totals_.emplace(std::move(key), std::move(row)).first;
    }
    op_profile& r = it->second;
    ++r.calls;
    r.ns += duration_ns;
    r.flops += flops;
    r.bytes += bytes;
    if (!opt_.trace)
      return;
    if (events_.size() < opt_.max_events)
      events_.push_back({name, phase, start_ns, duration_ns, flops, bytes});
    else
      ++dropped_;
  }

  profiler_options opt_;
  detail::op_event_sink* previous_ = nullptr;
  bool running_ = false;
  std::int64_t origin_ns_ = 0;
  std::map<std::pair<std::string, int>, op_profile> totals_;
  std::vector<event> events_;
  std::size_t dropped_ = 0;
};

/// Times a stretch of code that is not an op (an optimizer step, a data-loading step) into the
/// profiler running on this thread, if any, as a "user" row and a timeline range. `name` must outlive
/// the profiler (a string literal). Optional FLOPs and bytes count toward the row's rates.
class profile_range {
public:
  explicit profile_range(std::string_view name, std::uint64_t flops = 0, std::uint64_t bytes = 0) noexcept
      : sink_(detail::active_op_sink()), name_(name), flops_(flops), bytes_(bytes),
        start_(sink_ ? detail::profile_clock_ns() : 0) {}
  profile_range(const profile_range&) = delete;
  profile_range& operator=(const profile_range&) = delete;
  ~profile_range() {
    if (sink_ && detail::active_op_sink() == sink_)
      sink_->record(name_, detail::op_phase::user, start_, detail::profile_clock_ns() - start_, flops_,
                    bytes_);
  }

private:
  detail::op_event_sink* sink_;
  std::string_view name_;
  std::uint64_t flops_, bytes_;
  std::int64_t start_;
};

} // namespace grad
