#pragma once
/// @file ops/pool.hpp
/// max_pool2d (saves the position of each window's maximum for backward) and avg_pool2d, NCHW.

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "grad/kernels/parallel.hpp"
#include "grad/ops/conv.hpp"

namespace grad {

/// Options of max_pool2d; a zero stride means "equal to the kernel" (PyTorch's default).
struct max_pool2d_options {
  size2 stride = 0;   ///< step between windows (0: the kernel size)
  size2 padding = 0;  ///< implicit -inf added on each side, at most half the kernel
  size2 dilation = 1; ///< spacing between window taps
};

/// Options of avg_pool2d; a zero stride means "equal to the kernel".
struct avg_pool2d_options {
  size2 stride = 0;              ///< step between windows (0: the kernel size)
  size2 padding = 0;             ///< zeros added on each side, at most half the kernel
  bool count_include_pad = true; ///< divide by the full window size, padding included (PyTorch's default)
};

namespace ops {

/// Geometry shared by both pools: checks the input and options, gives the output size.
struct pool_base {
  size2 kernel, stride, padding, dilation{1};

  detail::conv_geom geom(std::string_view op, const shape_type& x) const {
    if (x.size() != 4)
      throw shape_error(std::string(op) + ": input must be 4-d (N, C, H, W), got " + to_string(x));
    if (kernel.h == 0 || kernel.w == 0 || dilation.h == 0 || dilation.w == 0)
      throw value_error(std::string(op) + ": kernel and dilation must be positive, got kernel " +
                        detail::str(kernel) + ", dilation " + detail::str(dilation));
    const size2 st{stride.h ? stride.h : kernel.h, stride.w ? stride.w : kernel.w};
    if (2 * padding.h > kernel.h || 2 * padding.w > kernel.w)
      throw value_error(std::string(op) + ": padding " + detail::str(padding) +
                        " must be at most half the kernel " + detail::str(kernel));
    detail::conv_geom g = detail::make_geom(x, x[1], kernel, st, padding, dilation);
    g.oh = detail::window_out(op, g.h, g.kh, st.h, padding.h, dilation.h, x);
    g.ow = detail::window_out(op, g.w, g.kw, st.w, padding.w, dilation.w, x);
    return g;
  }
  /// Taps t in [0, k) of the window at output o whose input o s + t d - p lies in [0, n).
  static detail::conv_range window_taps(std::size_t o, std::size_t s, std::size_t p, std::size_t d,
                                        std::size_t k, std::size_t n) noexcept {
    const std::size_t start = o * s; // input position of tap 0, plus the padding
    if (start >= n + p)
      return {0, 0};
    const std::size_t lo = start >= p ? 0 : (p - start + d - 1) / d;
    const std::size_t hi = std::min(k, (n - 1 + p - start) / d + 1);
    return {std::min(lo, hi), hi};
  }
  /// Calls f(plane, out_index, iy, ix, inside) for every tap of every window; iy, ix are signed.
  template <class F>
  static void taps(const detail::conv_geom& g, std::size_t oy, std::size_t ox, F f) {
    for (std::size_t a = 0; a < g.kh; ++a)
      for (std::size_t b = 0; b < g.kw; ++b) {
        const auto iy =
            static_cast<std::ptrdiff_t>(oy * g.stride.h + a * g.dil.h) - static_cast<std::ptrdiff_t>(g.pad.h);
        const auto ix =
            static_cast<std::ptrdiff_t>(ox * g.stride.w + b * g.dil.w) - static_cast<std::ptrdiff_t>(g.pad.w);
        const bool inside = iy >= 0 && ix >= 0 && iy < static_cast<std::ptrdiff_t>(g.h) &&
                            ix < static_cast<std::ptrdiff_t>(g.w);
        f(inside, inside ? static_cast<std::size_t>(iy) * g.w + static_cast<std::size_t>(ix) : 0);
      }
  }
};

/// Maximum of each window; backward routes the gradient to the saved argmax (the first maximum on ties).
struct max_pool2d_op : pool_base {
  static constexpr std::string_view name = "max_pool2d";
  /// No tap of the window lies inside the image (possible with dilation): output -inf, no gradient.
  static constexpr std::uint32_t no_tap = ~std::uint32_t(0);
  std::vector<std::uint32_t> argmax; // (N, C, OH, OW): offset in its plane of each window's maximum

  /// The op for a kernel and options; out of line for the reason given at conv2d_op::make.
  [[gnu::noinline]] static max_pool2d_op make(size2 kernel, const max_pool2d_options& opt) {
    max_pool2d_op op;
    op.kernel = kernel;
    op.stride = opt.stride;
    op.padding = opt.padding;
    op.dilation = opt.dilation;
    return op;
  }

  shape_type shape(const shape_type& x) const {
    const auto g = geom(name, x);
    return {g.n, g.c, g.oh, g.ow};
  }
  std::uint64_t flops(const shape_type& out, const shape_type&) const {
    return numel(out) * kernel.h * kernel.w;
  }
  /// Threads for `taps` window taps: 1 when too few to pay for a parallel region.
  static int threads_for(std::size_t taps) { return taps >= (std::size_t(1) << 16) ? get_num_threads() : 1; }

  // Planes (n, c) are independent: split over threads, each writes only its own outputs and argmaxes.
  template <class C>
  void forward(C& c) {
    using T = typename C::value_type;
    const auto g = geom(name, detail::to_shape<T>(c.in(0).shape()));
    if (g.h * g.w >= no_tap)
      throw value_error("max_pool2d: planes of 2^32 - 1 pixels or more are not supported, got " +
                        std::to_string(g.h) + " x " + std::to_string(g.w));
    const T* x = c.in(0).data();
    T* y = c.out().data();
    argmax.resize(c.out().size());
    const std::size_t planes = g.n * g.c, plane_out = g.oh * g.ow;
    detail::parallel_tasks(planes, threads_for(c.out().size() * g.kh * g.kw), [&](std::size_t p) {
      const T* xp = x + p * g.h * g.w;
      T* yp = y + p * plane_out;
      std::uint32_t* ap = argmax.data() + p * plane_out;
      for (std::size_t oy = 0; oy < g.oh; ++oy) {
        const detail::conv_range ar = window_taps(oy, g.stride.h, g.pad.h, g.dil.h, g.kh, g.h);
        for (std::size_t ox = 0; ox < g.ow; ++ox) {
          const detail::conv_range br = window_taps(ox, g.stride.w, g.pad.w, g.dil.w, g.kw, g.w);
          const std::size_t o = oy * g.ow + ox;
          if (ar.lo == ar.hi || br.lo == br.hi) {
            yp[o] = -std::numeric_limits<T>::infinity();
            ap[o] = no_tap;
            continue;
          }
          const std::size_t y0 = oy * g.stride.h - g.pad.h, x0 = ox * g.stride.w - g.pad.w; // wrap, then add
          std::size_t best = (y0 + ar.lo * g.dil.h) * g.w + x0 + br.lo * g.dil.w;
          T m = xp[best];
          for (std::size_t a = ar.lo; a < ar.hi; ++a) {
            const std::size_t row = (y0 + a * g.dil.h) * g.w + x0;
            for (std::size_t b = br.lo; b < br.hi; ++b) {
              const std::size_t i = row + b * g.dil.w;
              const T v = xp[i];
              // strictly greater: the first maximum wins ties; NaN wins, as in PyTorch, and stays
              if (v > m || (v != v && m == m)) {
                m = v;
                best = i;
              }
            }
          }
          yp[o] = m;
          ap[o] = static_cast<std::uint32_t>(best);
        }
      }
    });
  }
  template <class C>
  void backward(C& c) const {
    using T = typename C::value_type;
    if (!c.needs_grad(0))
      return;
    const auto g = geom(name, detail::to_shape<T>(c.in(0).shape()));
    const T* dy = c.dout().data();
    T* dx = c.din(0).data();
    const std::size_t plane_out = g.oh * g.ow;
    detail::parallel_tasks(g.n * g.c, threads_for(argmax.size()), [&](std::size_t p) {
      T* dxp = dx + p * g.h * g.w;
      const T* dyp = dy + p * plane_out;
      const std::uint32_t* ap = argmax.data() + p * plane_out;
      for (std::size_t o = 0; o < plane_out; ++o) // d max / d x_i = 1 at the argmax, 0 elsewhere
        if (ap[o] != no_tap)
          dxp[ap[o]] += dyp[o];
    });
  }
};

/// Mean of each window.
struct avg_pool2d_op : pool_base {
  static constexpr std::string_view name = "avg_pool2d";
  bool count_include_pad = true;

  /// The op for a kernel and options; out of line for the reason given at conv2d_op::make.
  [[gnu::noinline]] static avg_pool2d_op make(size2 kernel, const avg_pool2d_options& opt) {
    avg_pool2d_op op;
    op.kernel = kernel;
    op.stride = opt.stride;
    op.padding = opt.padding;
    op.count_include_pad = opt.count_include_pad;
    return op;
  }

  shape_type shape(const shape_type& x) const {
    const auto g = geom(name, x);
    return {g.n, g.c, g.oh, g.ow};
  }
  std::uint64_t flops(const shape_type& out, const shape_type&) const {
    return numel(out) * kernel.h * kernel.w;
  }
  /// Divisor of one window: the full window, or only its taps inside the image.
  std::size_t divisor(const detail::conv_geom& g, std::size_t oy, std::size_t ox) const {
    if (count_include_pad) {
      // PyTorch counts the padded window clipped to the padded input
      const std::size_t y0 = oy * g.stride.h, x0 = ox * g.stride.w;
      const std::size_t y1 = std::min(y0 + g.kh, g.h + 2 * g.pad.h),
                        x1 = std::min(x0 + g.kw, g.w + 2 * g.pad.w);
      return (y1 - y0) * (x1 - x0);
    }
    std::size_t n = 0;
    taps(g, oy, ox, [&](bool inside, std::size_t) { n += inside; });
    return n;
  }
  template <class C>
  void forward(C& c) const {
    using T = typename C::value_type;
    const auto g = geom(name, detail::to_shape<T>(c.in(0).shape()));
    const T* x = c.in(0).data();
    T* y = c.out().data();
    std::size_t o = 0;
    for (std::size_t p = 0; p < g.n * g.c; ++p) {
      const T* xp = x + p * g.h * g.w;
      for (std::size_t oy = 0; oy < g.oh; ++oy)
        for (std::size_t ox = 0; ox < g.ow; ++ox, ++o) {
          T acc = 0;
          taps(g, oy, ox, [&](bool inside, std::size_t i) { acc += inside ? xp[i] : T(0); });
          y[o] = acc / static_cast<T>(divisor(g, oy, ox));
        }
    }
  }
  template <class C>
  void backward(C& c) const {
    using T = typename C::value_type;
    if (!c.needs_grad(0))
      return;
    const auto g = geom(name, detail::to_shape<T>(c.in(0).shape()));
    const T* dy = c.dout().data();
    T* dx = c.din(0).data();
    std::size_t o = 0;
    for (std::size_t p = 0; p < g.n * g.c; ++p) {
      T* dxp = dx + p * g.h * g.w;
      for (std::size_t oy = 0; oy < g.oh; ++oy)
        for (std::size_t ox = 0; ox < g.ow; ++ox, ++o) {
          const T share = dy[o] / static_cast<T>(divisor(g, oy, ox)); // d mean / d x_i = 1 / divisor
          taps(g, oy, ox, [&](bool inside, std::size_t i) {
            if (inside)
              dxp[i] += share;
          });
        }
    }
  }
};

} // namespace ops

/// 2-d max pooling over (N, C, H, W) with the given kernel (`max_pool2d(x, 2)`, `max_pool2d(x, 3, {.stride =
/// 2, .padding = 1})`).
template <element T>
basic_tensor<T> max_pool2d(const basic_tensor<T>& x, size2 kernel, const max_pool2d_options& opt = {}) {
  return apply(ops::max_pool2d_op::make(kernel, opt), x);
}

/// 2-d average pooling over (N, C, H, W) with the given kernel.
template <element T>
basic_tensor<T> avg_pool2d(const basic_tensor<T>& x, size2 kernel, const avg_pool2d_options& opt = {}) {
  return apply(ops::avg_pool2d_op::make(kernel, opt), x);
}

} // namespace grad
