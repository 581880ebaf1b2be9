#pragma once
/// @file utils/progress.hpp
/// grad::utils::progress_bar: a terminal progress bar with rate and ETA. When the output is not a
/// terminal (a log file, CI) it prints an occasional plain line instead of redrawing.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#if defined(_WIN32)
#include <io.h>
#else
#include <unistd.h>
#endif

namespace grad::utils {

/// Options of a progress_bar (designated initializers: `{.label = "training"}`).
struct progress_options {
  std::string label{};            ///< text before the bar
  std::string unit = "it";        ///< what is counted: the rate reads "1.2k it/s"
  std::FILE* stream = stdout;     ///< where to print
  int bar_width = 30;             ///< characters of the bar itself
  double redraw_seconds = 0.1;    ///< a terminal is redrawn at most this often
  double line_seconds = 30;       ///< without a terminal: a line at least this often...
  double line_percent = 10;       ///< ...or each time this much more is done (but at most once a second)
  std::optional<bool> terminal{}; ///< force terminal (true) or plain-line (false) mode; default: detect
};

/// "0:07", "12:34", "1:02:03": minutes:seconds, with hours when needed; "?" for unknown or negative.
inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0)
    return "?";
  const auto s = static_cast<long long>(std::llround(seconds));
  char buf[48];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  return buf;
}

/// "312 it/s", "1.25k it/s", "3.40M it/s", or "7.50 s/it" when slower than one per second.
inline std::string format_rate(double per_second, std::string_view unit = "it") {
  char buf[64];
  const std::string u(unit);
  if (!std::isfinite(per_second) || per_second <= 0)
    return "? " + u + "/s";
  if (per_second < 1) {
    std::snprintf(buf, sizeof buf, "%.2f s/%s", 1 / per_second, u.c_str());
    return buf;
  }
  if (per_second >= 1e6)
    std::snprintf(buf, sizeof buf, "%.2fM %s/s", per_second / 1e6, u.c_str());
  else if (per_second >= 1e4)
    std::snprintf(buf, sizeof buf, "%.1fk %s/s", per_second / 1e3, u.c_str());
  else if (per_second >= 1e3)
    std::snprintf(buf, sizeof buf, "%.2fk %s/s", per_second / 1e3, u.c_str());
  else if (per_second >= 100)
    std::snprintf(buf, sizeof buf, "%.0f %s/s", per_second, u.c_str());
  else
    std::snprintf(buf, sizeof buf, "%.1f %s/s", per_second, u.c_str());
  return buf;
}

/// The text of one progress line, e.g.
/// `training  42% [============>                 ] 420/1000 [0:01<0:02, 312 it/s] loss 0.0123`.
/// The rate is done / elapsed, the ETA (time left) is (total - done) / rate. bar_width 0 leaves the
/// bar out (plain-line mode). This is what progress_bar prints; it is a function so it can be tested.
inline std::string format_progress(std::size_t done, std::size_t total, double elapsed_seconds,
                                   std::string_view label = {}, std::string_view suffix = {},
                                   int bar_width = 30, std::string_view unit = "it") {
  std::string s;
  if (!label.empty()) {
    s += label;
    s += "  ";
  }
  const double frac = total ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total)) : 1.0;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%3d%%", static_cast<int>(std::floor(frac * 100)));
  s += buf;
  if (bar_width > 0) {
    // '=' for whole cells, '>' at the head: readable in any terminal and any encoding.
    const int filled = static_cast<int>(std::floor(frac * bar_width));
    s += " [";
    s.append(static_cast<std::size_t>(filled), '=');
    if (filled < bar_width) {
      s += done ? '>' : ' ';
      s.append(static_cast<std::size_t>(bar_width - filled - 1), ' ');
    }
    s += ']';
  }
  s += " " + std::to_string(done) + "/" + std::to_string(total);
  const double rate = elapsed_seconds > 0 ? static_cast<double>(done) / elapsed_seconds : 0;
  const double left = done >= total ? 0.0 : rate > 0 ? static_cast<double>(total - done) / rate : -1.0;
  s += " [" + format_duration(elapsed_seconds) + "<" + format_duration(left) + ", " +
       format_rate(rate, unit) + "]";
  if (!suffix.empty()) {
    s += ' ';
    s += suffix;
  }
  return s;
}

/// True when `f` is a terminal (so a bar can be redrawn in place with '\r').
inline bool is_terminal(std::FILE* f) {
#if defined(_WIN32)
  return f && _isatty(_fileno(f));
#else
  return f && ::isatty(::fileno(f));
#endif
}

/// A progress bar over `total` steps: call update(done) (or tick()) as work proceeds, write() to print
/// a message without breaking the bar, finish() at the end (the destructor calls it).
class progress_bar {
public:
  using clock = std::chrono::steady_clock; ///< the clock rates and ETAs are measured with

  /// A bar over `total` steps, started now.
  explicit progress_bar(std::size_t total, progress_options opt = {})
      : opt_(std::move(opt)), total_(total), start_(clock::now()) {
    terminal_ = opt_.terminal.value_or(is_terminal(opt_.stream));
  }
  progress_bar(const progress_bar&) = delete;
  progress_bar& operator=(const progress_bar&) = delete;
  ~progress_bar() { finish(); }

  /// Sets the number of steps done; `suffix` (e.g. "loss 0.0123") is shown after the rate.
  void update(std::size_t done, std::string_view suffix = {}) {
    done_ = std::min(done, total_);
    if (!suffix.empty())
      suffix_ = suffix;
    const double t = elapsed();
    if (terminal_) {
      if (t - last_draw_ >= opt_.redraw_seconds || done_ == total_ || !drawn_)
        draw(t);
      return;
    }
    const double pct = total_ ? 100.0 * static_cast<double>(done_) / static_cast<double>(total_) : 100.0;
    const bool due = t - last_draw_ >= opt_.line_seconds || pct - last_pct_ >= opt_.line_percent;
    if (due && t - last_draw_ >= 1.0 && done_ < total_)
      draw(t);
  }
  /// Advances by `n` steps.
  void tick(std::size_t n = 1, std::string_view suffix = {}) { update(done_ + n, suffix); }

  /// Prints a line of text above the bar (which is redrawn below it on a terminal).
  void write(std::string_view text) {
    if (finished_ || !terminal_) {
      std::fprintf(opt_.stream, "%.*s\n", static_cast<int>(text.size()), text.data());
      std::fflush(opt_.stream);
      return;
    }
    clear_line();
    std::fprintf(opt_.stream, "%.*s\n", static_cast<int>(text.size()), text.data());
    draw(elapsed());
  }

  /// Draws the final state and ends the line; later calls do nothing.
  void finish() {
    if (finished_)
      return;
    finished_ = true;
    draw(elapsed());
    if (terminal_)
      std::fputc('\n', opt_.stream);
    std::fflush(opt_.stream);
  }

  /// Seconds since the bar was created.
  double elapsed() const { return std::chrono::duration<double>(clock::now() - start_).count(); }
  /// Steps done so far.
  std::size_t done() const noexcept { return done_; }

private:
  void clear_line() {
    if (drawn_)
      std::fprintf(opt_.stream, "\r%*s\r", static_cast<int>(width_), "");
  }
  void draw(double t) {
    const std::string s =
        format_progress(done_, total_, t, opt_.label, suffix_, terminal_ ? opt_.bar_width : 0, opt_.unit);
    if (terminal_) {
      // Pad over a longer previous line instead of sending a terminal-specific erase code.
      std::fprintf(opt_.stream, "\r%s%*s", s.c_str(),
                   static_cast<int>(width_ > s.size() ? width_ - s.size() : 0), "");
      width_ = std::max(width_, s.size());
    } else {
      std::fprintf(opt_.stream, "%s\n", s.c_str());
    }
    std::fflush(opt_.stream);
    drawn_ = true;
    last_draw_ = t;
    last_pct_ = total_ ? 100.0 * static_cast<double>(done_) / static_cast<double>(total_) : 100.0;
  }

  progress_options opt_;
  std::size_t total_;
  std::size_t done_ = 0;
  clock::time_point start_;
  std::string suffix_;
  bool terminal_ = false;
  bool drawn_ = false;
  bool finished_ = false;
  double last_draw_ = 0;
  double last_pct_ = 0;
  std::size_t width_ = 0;
};

} // namespace grad::utils
