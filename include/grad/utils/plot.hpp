#pragma once
/// @file utils/plot.hpp
/// grad::utils::svg_plot: a small, self-contained SVG line plot (axes, ticks, labels, legend, several
/// series, optional log-scale y) for loss curves and fits, viewable in any browser.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <limits>
#include <ranges>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "grad/core/error.hpp"
#include "grad/utils/file.hpp"

namespace grad::utils {

/// Where the legend goes.
enum class legend_position {
  automatic,    ///< a corner of the plot area that hides no point, else outside
  top_right,    ///< top right corner, inside the plot area
  top_left,     ///< top left corner
  bottom_right, ///< bottom right corner
  bottom_left,  ///< bottom left corner
  outside,      ///< right of the plot area (which gets narrower)
  none          ///< no legend
};

/// Options of an svg_plot (designated initializers: `{.title = "loss", .log_y = true}`).
struct plot_options {
  std::string title{};  ///< text above the plot
  std::string xlabel{}; ///< label under the x axis
  std::string ylabel{}; ///< label beside the y axis
  int width = 760;      ///< picture width in pixels
  int height = 460;     ///< picture height in pixels
  bool log_y = false;   ///< logarithmic y axis (loss curves); points with y <= 0 are left out
  legend_position legend = legend_position::automatic; ///< where the legend goes
};

/// How a series is drawn.
enum class series_style {
  line,   ///< points joined by a line (polyline)
  dashed, ///< points joined by a dashed line (a reference curve)
  points  ///< one dot per point (scatter)
};

/// One series of an svg_plot.
struct plot_series {
  std::string label{};                     ///< legend text
  std::vector<double> x{};                 ///< x coordinates
  std::vector<double> y{};                 ///< y coordinates, same length as x
  series_style style = series_style::line; ///< line, dashed line or dots
  std::string color{};                     ///< CSS colour; empty picks the next colour of the palette
};

namespace detail {

/// Escapes text for SVG/XML content and attribute values.
inline std::string xml_escape(std::string_view s) {
  std::string r;
  r.reserve(s.size());
  for (char c : s) {
    switch (c) {
    case '&':
      r += "&amp;";
      break;
    case '<':
      r += "&lt;";
      break;
    case '>':
      r += "&gt;";
      break;
    case '"':
      r += "&quot;";
      break;
    case '\'':
      r += "&apos;";
      break;
    default:
      r += c;
    }
  }
  return r;
}

/// 1, 2 or 5 times a power of ten, the closest such step to `raw` from above (Heckbert's nice numbers).
inline double nice_step(double raw) {
  if (!(raw > 0) || !std::isfinite(raw))
    return 1;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

/// An axis: its range in data units and its tick positions.
struct axis {
  double lo = 0, hi = 1;     // the range shown
  bool log = false;          // logarithmic scale
  std::vector<double> ticks; // where grid lines and labels go
};

/// A linear axis with about `target` ticks at nice numbers, widened to whole ticks.
inline axis linear_axis(double lo, double hi, int target = 6) {
  if (!(hi > lo)) { // one value (or none): a unit range around it
    const double c = std::isfinite(lo) ? lo : 0;
    const double half = c == 0 ? 1 : std::abs(c) * 0.1;
    lo = c - half;
    hi = c + half;
  }
  const double step = nice_step((hi - lo) / target);
  axis a;
  a.lo = std::floor(lo / step + 1e-9) * step;
  a.hi = std::ceil(hi / step - 1e-9) * step;
  // k * step, not repeated += step: no accumulated rounding, and no endless loop where step is below
  // the spacing of doubles near lo (a tiny range around a huge value).
  const double n = std::min(1000.0, std::round((a.hi - a.lo) / step));
  for (double k = 0; k <= n; ++k) {
    const double t = a.lo + k * step;
    a.ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t); // no "-0" or "1e-17" labels
  }
  return a;
}

/// A log axis over whole decades; ticks at 1, 2, 5 per decade when it spans few decades.
inline axis log_axis(double lo, double hi) {
  if (!(lo > 0) || !std::isfinite(lo))
    lo = 1;
  if (!(hi >= lo) || !std::isfinite(hi))
    hi = lo;
  axis a;
  a.log = true;
  double dlo = std::floor(std::log10(lo) + 1e-9);
  double dhi = std::ceil(std::log10(hi) - 1e-9);
  if (dhi <= dlo)
    dhi = dlo + 1;
  a.lo = std::pow(10.0, dlo);
  a.hi = std::pow(10.0, dhi);
  const int decades = static_cast<int>(dhi - dlo);
  const int every = std::max(1, decades / 8); // at most about 8 labelled decades
  for (int d = 0; d <= decades; ++d) {
    const double p = std::pow(10.0, dlo + d);
    if (d % every == 0)
      a.ticks.push_back(p);
    if (decades <= 2 && d < decades) {
      a.ticks.push_back(2 * p);
      a.ticks.push_back(5 * p);
    }
  }
  std::sort(a.ticks.begin(), a.ticks.end());
  return a;
}

/// Position of v in [0, 1] along the axis.
inline double axis_fraction(const axis& a, double v) {
  if (a.log)
    return (std::log10(v) - std::log10(a.lo)) / (std::log10(a.hi) - std::log10(a.lo));
  return (v - a.lo) / (a.hi - a.lo);
}

/// A tick label: %g with 6 significant digits ("0.5", "1e-05", "2000").
inline std::string tick_label(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

/// A pixel coordinate with one decimal: enough for any screen, and short.
inline std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

/// The palette of matplotlib ("tab10"): distinct colours that most colour-blind readers can tell apart.
inline const char* palette(std::size_t i) {
  static constexpr const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return colors[i % std::size(colors)];
}

/// The numbers of any range (floats, ints, an xt::xarray) as doubles.
template <class R>
std::vector<double> to_doubles(const R& r) {
  std::vector<double> v;
  for (const auto& e : r)
    v.push_back(static_cast<double>(e));
  return v;
}

} // namespace detail

/// A line plot written as a standalone SVG file: add series, then save().
class svg_plot {
public:
  /// An empty plot with the given title, axis labels and size.
  explicit svg_plot(plot_options opt = {}) : opt_(std::move(opt)) {}

  /// Adds a series drawn as a line through (x[i], y[i]); x and y are ranges of numbers of equal length.
  template <std::ranges::input_range RX, std::ranges::input_range RY>
  svg_plot& line(std::string label, const RX& x, const RY& y, std::string color = {}) {
    return add(std::move(label), detail::to_doubles(x), detail::to_doubles(y), series_style::line,
               std::move(color));
  }
  /// Adds a series drawn as a line through (i, y[i]), i = 0, 1, ... (a loss per step).
  template <std::ranges::input_range RY>
  svg_plot& line(std::string label, const RY& y, std::string color = {}) {
    std::vector<double> yy = detail::to_doubles(y);
    std::vector<double> xx(yy.size());
    for (std::size_t i = 0; i < xx.size(); ++i)
      xx[i] = static_cast<double>(i);
    return add(std::move(label), std::move(xx), std::move(yy), series_style::line, std::move(color));
  }
  /// Adds a series drawn as a dashed line through (x[i], y[i]) (a reference, such as the true curve).
  template <std::ranges::input_range RX, std::ranges::input_range RY>
  svg_plot& dashed(std::string label, const RX& x, const RY& y, std::string color = {}) {
    return add(std::move(label), detail::to_doubles(x), detail::to_doubles(y), series_style::dashed,
               std::move(color));
  }
  /// Adds a series drawn as dots at (x[i], y[i]) (data points).
  template <std::ranges::input_range RX, std::ranges::input_range RY>
  svg_plot& points(std::string label, const RX& x, const RY& y, std::string color = {}) {
    return add(std::move(label), detail::to_doubles(x), detail::to_doubles(y), series_style::points,
               std::move(color));
  }

  /// The series added so far.
  const std::vector<plot_series>& series() const noexcept { return series_; }

  /// The SVG document. Non-finite points (and y <= 0 on a log axis) are left out.
  std::string str() const;

  /// Writes the SVG to `file` atomically; throws io_error naming the file.
  void save(const std::filesystem::path& file) const { write_file_atomic(file, str()); }

private:
  svg_plot& add(std::string label, std::vector<double> x, std::vector<double> y, series_style style,
                std::string color) {
    if (x.size() != y.size())
      throw value_error("svg_plot: series \"" + label + "\" has " + std::to_string(x.size()) +
                        " x values but " + std::to_string(y.size()) + " y values");
    if (color.empty()) // series with a colour of their own do not use up a palette colour
      color = detail::palette(auto_colors_++);
    series_.push_back({std::move(label), std::move(x), std::move(y), style, std::move(color)});
    return *this;
  }

  bool usable(double x, double y) const {
    return std::isfinite(x) && std::isfinite(y) && (!opt_.log_y || y > 0);
  }

  plot_options opt_;
  std::vector<plot_series> series_;
  std::size_t auto_colors_ = 0;
};

namespace detail {

/// Where the plot area lies in the picture, in pixels.
struct plot_frame {
  double left, top, width, height;
};

/// ` name="v"`: a numeric attribute with its leading space.
inline std::string svg_attr(std::string_view name, double v) {
  std::string a = " ";
  a.append(name).append("=\"").append(fmt(v)).append("\"");
  return a;
}

} // namespace detail

inline std::string svg_plot::str() const {
  using detail::fmt;
  using detail::svg_attr;
  using pixel = std::pair<double, double>;
  const double W = std::max(opt_.width, 200), H = std::max(opt_.height, 150);

  // Data ranges and axes.
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  for (const auto& s : series_)
    for (std::size_t i = 0; i < s.x.size(); ++i)
      if (usable(s.x[i], s.y[i])) {
        xlo = std::min(xlo, s.x[i]);
        xhi = std::max(xhi, s.x[i]);
        ylo = std::min(ylo, s.y[i]);
        yhi = std::max(yhi, s.y[i]);
      }
  const detail::axis ax = detail::linear_axis(xlo, xhi);
  const detail::axis ay = opt_.log_y ? detail::log_axis(ylo, yhi) : detail::linear_axis(ylo, yhi);

  std::size_t longest = 0;
  for (const auto& s : series_)
    longest = std::max(longest, s.label.size());
  const double lw = 40 + 6.8 * static_cast<double>(longest); // legend box, ~6.8 px per character
  const double lh = 8 + 18 * static_cast<double>(series_.size());

  auto make_frame = [&](double right) {
    const double left = 72, top = opt_.title.empty() ? 20 : 44, bottom = opt_.xlabel.empty() ? 40 : 60;
    return detail::plot_frame{left, top, std::max(40.0, W - left - right), std::max(40.0, H - top - bottom)};
  };
  auto px = [&](const detail::plot_frame& f, double x) {
    return f.left + f.width * detail::axis_fraction(ax, x);
  };
  auto py = [&](const detail::plot_frame& f, double y) {
    return f.top + f.height * (1 - detail::axis_fraction(ay, y));
  };
  // Each series in pixels. A long line (a loss per step) is thinned to the lowest and highest point of
  // each pixel column, which keeps its visible shape and the file small.
  auto project = [&](const detail::plot_frame& f) {
    std::vector<std::vector<pixel>> drawn(series_.size());
    for (std::size_t k = 0; k < series_.size(); ++k) {
      const auto& s = series_[k];
      auto& pts = drawn[k];
      if (s.style == series_style::points) {
        for (std::size_t i = 0; i < s.x.size(); ++i)
          if (usable(s.x[i], s.y[i]))
            pts.emplace_back(px(f, s.x[i]), py(f, s.y[i]));
        continue;
      }
      double col = 0;
      std::size_t lo_i = 0, hi_i = 0;
      bool open = false;
      auto flush = [&] {
        if (!open)
          return;
        const std::size_t a = std::min(lo_i, hi_i), b = std::max(lo_i, hi_i);
        pts.emplace_back(px(f, s.x[a]), py(f, s.y[a]));
        if (b != a)
          pts.emplace_back(px(f, s.x[b]), py(f, s.y[b]));
        open = false;
      };
      for (std::size_t i = 0; i < s.x.size(); ++i) {
        if (!usable(s.x[i], s.y[i]))
          continue;
        const double c = std::round(px(f, s.x[i]));
        if (!open || c != col) {
          flush();
          col = c;
          lo_i = hi_i = i;
          open = true;
        } else if (s.y[i] < s.y[lo_i]) {
          lo_i = i;
        } else if (s.y[i] > s.y[hi_i]) {
          hi_i = i;
        }
      }
      flush();
    }
    return drawn;
  };
  auto corner = [&](const detail::plot_frame& f, legend_position p) {
    if (p == legend_position::outside)
      return pixel{f.left + f.width + 12, f.top};
    const bool right = p == legend_position::top_right || p == legend_position::bottom_right;
    const bool upper = p == legend_position::top_right || p == legend_position::top_left;
    return pixel{right ? f.left + f.width - lw - 8 : f.left + 8,
                 upper ? f.top + 8 : f.top + f.height - lh - 8};
  };
  // Drawn points under a legend box at `at`; lines are sampled every 3 pixels along each segment so that
  // a line crossing the box counts even without a vertex inside.
  auto hidden = [&](const std::vector<std::vector<pixel>>& drawn, pixel at) {
    auto inside = [&](double x, double y) {
      return x >= at.first - 2 && x <= at.first + lw + 2 && y >= at.second - 2 && y <= at.second + lh + 2;
    };
    std::size_t count = 0;
    for (std::size_t k = 0; k < drawn.size(); ++k) {
      const auto& pts = drawn[k];
      for (std::size_t i = 0; i < pts.size(); ++i) {
        count += inside(pts[i].first, pts[i].second);
        if (series_[k].style == series_style::points || i + 1 == pts.size())
          continue;
        const double dx = pts[i + 1].first - pts[i].first, dy = pts[i + 1].second - pts[i].second;
        const int n = static_cast<int>(std::min(1000.0, std::hypot(dx, dy) / 3));
        for (int j = 1; j < n; ++j)
          count += inside(pts[i].first + dx * j / n, pts[i].second + dy * j / n);
      }
    }
    return count;
  };

  const bool has_legend = !series_.empty() && opt_.legend != legend_position::none;
  legend_position where = opt_.legend;
  detail::plot_frame f = make_frame(where == legend_position::outside && has_legend ? lw + 24 : 24);
  std::vector<std::vector<pixel>> drawn = project(f);
  if (has_legend && where == legend_position::automatic) {
    where = legend_position::outside;
    for (auto p : {legend_position::top_right, legend_position::top_left, legend_position::bottom_right,
                   legend_position::bottom_left})
      if (hidden(drawn, corner(f, p)) == 0) {
        where = p;
        break;
      }
    if (where == legend_position::outside) { // no free corner: make room on the right
      f = make_frame(lw + 24);
      drawn = project(f);
    }
  }

  std::string o;
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\"" + svg_attr("width", W) + svg_attr("height", H) +
       " viewBox=\"0 0 " + fmt(W) + " " + fmt(H) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  if (!opt_.title.empty())
    o += "<text" + svg_attr("x", f.left + f.width / 2) +
         " y=\"26\" text-anchor=\"middle\" font-size=\"15\">" + detail::xml_escape(opt_.title) + "</text>\n";

  // Grid, tick labels, frame and axis labels.
  o += "<g stroke=\"#e6e6e6\" stroke-width=\"1\">\n";
  for (double t : ax.ticks)
    o += "<line" + svg_attr("x1", px(f, t)) + svg_attr("y1", f.top) + svg_attr("x2", px(f, t)) +
         svg_attr("y2", f.top + f.height) + "/>\n";
  for (double t : ay.ticks)
    o += "<line" + svg_attr("x1", f.left) + svg_attr("y1", py(f, t)) + svg_attr("x2", f.left + f.width) +
         svg_attr("y2", py(f, t)) + "/>\n";
  o += "</g>\n<g fill=\"#333\">\n";
  for (double t : ax.ticks)
    o += "<text" + svg_attr("x", px(f, t)) + svg_attr("y", f.top + f.height + 18) +
         " text-anchor=\"middle\">" + detail::tick_label(t) + "</text>\n";
  for (double t : ay.ticks)
    o += "<text" + svg_attr("x", f.left - 8) + svg_attr("y", py(f, t) + 4) + " text-anchor=\"end\">" +
         detail::tick_label(t) + "</text>\n";
  o += "</g>\n";
  o += "<rect" + svg_attr("x", f.left) + svg_attr("y", f.top) + svg_attr("width", f.width) +
       svg_attr("height", f.height) + " fill=\"none\" stroke=\"#333\"/>\n";
  if (!opt_.xlabel.empty())
    o += "<text" + svg_attr("x", f.left + f.width / 2) + svg_attr("y", H - 14) + " text-anchor=\"middle\">" +
         detail::xml_escape(opt_.xlabel) + "</text>\n";
  if (!opt_.ylabel.empty())
    o += "<text transform=\"translate(16," + fmt(f.top + f.height / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">" + detail::xml_escape(opt_.ylabel) + "</text>\n";

  // The series, clipped to the plot area.
  o += "<defs><clipPath id=\"plot-area\"><rect" + svg_attr("x", f.left) + svg_attr("y", f.top) +
       svg_attr("width", f.width) + svg_attr("height", f.height) + "/></clipPath></defs>\n";
  o += "<g clip-path=\"url(#plot-area)\">\n";
  for (std::size_t k = 0; k < series_.size(); ++k) {
    const auto& s = series_[k];
    const std::string color = detail::xml_escape(s.color);
    if (s.style == series_style::points) {
      o += "<g fill=\"" + color + "\">\n";
      for (const auto& [x, y] : drawn[k])
        o += "<circle" + svg_attr("cx", x) + svg_attr("cy", y) + " r=\"2.2\"/>\n";
      o += "</g>\n";
      continue;
    }
    std::string pts;
    for (const auto& [x, y] : drawn[k]) {
      // Appended piece by piece: `(cond ? "" : " ") + temporary` trips g++ 12's false -Wrestrict at -O3.
      if (!pts.empty())
        pts += ' ';
      pts += fmt(x);
      pts += ',';
      pts += fmt(y);
    }
    o += "<polyline fill=\"none\" stroke=\"" + color + "\" stroke-width=\"1.8\" stroke-linejoin=\"round\"" +
         (s.style == series_style::dashed ? " stroke-dasharray=\"6 4\"" : "") + " points=\"" + pts + "\"/>\n";
  }
  o += "</g>\n";

  // The legend: a sample of each series' line or dot, and its label.
  if (has_legend) {
    const auto [lx, ly] = corner(f, where);
    o += "<g>\n<rect" + svg_attr("x", lx) + svg_attr("y", ly) + svg_attr("width", lw) +
         svg_attr("height", lh) + " fill=\"white\" fill-opacity=\"0.85\" stroke=\"#bbb\"/>\n";
    for (std::size_t i = 0; i < series_.size(); ++i) {
      const auto& s = series_[i];
      const double y = ly + 16 + 18 * static_cast<double>(i);
      const std::string color = detail::xml_escape(s.color);
      if (s.style == series_style::points)
        o += "<circle" + svg_attr("cx", lx + 17) + svg_attr("cy", y - 4) + " r=\"3\" fill=\"" + color +
             "\"/>\n";
      else
        o += "<line" + svg_attr("x1", lx + 6) + svg_attr("y1", y - 4) + svg_attr("x2", lx + 28) +
             svg_attr("y2", y - 4) + " stroke=\"" + color + "\" stroke-width=\"2\"" +
             (s.style == series_style::dashed ? " stroke-dasharray=\"6 4\"" : "") + "/>\n";
      o += "<text" + svg_attr("x", lx + 34) + svg_attr("y", y) + ">" + detail::xml_escape(s.label) +
           "</text>\n";
    }
    o += "</g>\n";
  }
  o += "</svg>\n";
  return o;
}

} // namespace grad::utils
