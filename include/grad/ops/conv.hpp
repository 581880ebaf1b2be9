#pragma once
/// @file ops/conv.hpp
/// conv2d (NCHW, groups = 1) with stride, padding and dilation, by im2col + GEMM: each image's
/// receptive fields are unrolled into a (C KH KW, OH OW) matrix so the convolution is one matrix
/// product with the (O, C KH KW) weight (Chellapilla et al. 2006, "High performance convolutional
/// neural networks for document processing"; the layout of Caffe's im2col).
///
/// Threads split the batch: each image is unrolled into its thread's column buffer and multiplied by
/// single-threaded GEMMs while the columns are still in cache; the weight gradient is summed per fixed
/// run of images and the runs are added in order, so results do not depend on the thread count. A 1x1
/// convolution at stride 1 without padding multiplies the image itself.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>

#include "grad/core/apply.hpp"
#include "grad/kernels/binary.hpp"
#include "grad/kernels/parallel.hpp"
#include "grad/kernels/reduce.hpp"
#include "grad/ops/gemm_dispatch.hpp"

namespace grad {

/// A pair of extents (height, width); one number means the same for both (`.stride = 2`).
///
/// Options structs holding size2 are taken by const reference throughout: g++ 12.2 at -O2 with
/// -march=native miscompiles some by-value struct arguments built from constants (a 32-byte store of
/// {2, 2, 0, 0} became a broadcast of 2, so `{.stride = 2}` also set padding.h = 2; not with
/// -march=x86-64-v3, -fno-tree-slp-vectorize or clang).
struct size2 {
  std::size_t h = 0; ///< along the height
  std::size_t w = 0; ///< along the width
  constexpr size2() = default;
  /// The same value for height and width.
  constexpr size2(std::size_t v)
      : h(v), w(v) {} // NOLINT: implicit on purpose, so `.stride = 2` reads as in PyTorch
  /// Height and width.
  constexpr size2(std::size_t h_, std::size_t w_) : h(h_), w(w_) {}
  /// Equal extents.
  friend bool operator==(const size2&, const size2&) = default;
};

/// Options of conv2d: stride, zero padding and dilation.
struct conv2d_options {
  size2 stride = 1;   ///< step between receptive fields
  size2 padding = 0;  ///< zeros added on each side
  size2 dilation = 1; ///< spacing between kernel taps
};

namespace detail {

inline std::string str(const size2& s) {
  return "(" + std::to_string(s.h) + ", " + std::to_string(s.w) + ")";
}

/// Output extent of a sliding window: floor((n + 2 pad - dil (k - 1) - 1) / stride) + 1 (PyTorch's
/// Conv2d formula), or throws naming op when the padded input is smaller than the dilated kernel.
inline std::size_t window_out(std::string_view op, std::size_t n, std::size_t k, std::size_t stride,
                              std::size_t pad, std::size_t dil, const shape_type& in) {
  const std::size_t span = dil * (k - 1) + 1;
  if (n + 2 * pad < span)
    throw shape_error(std::string(op) + ": input " + to_string(in) +
                      " is smaller than the kernel: padded extent " + std::to_string(n + 2 * pad) +
                      " < dilated kernel extent " + std::to_string(span));
  return (n + 2 * pad - span) / stride + 1;
}

/// Geometry of one conv2d call.
struct conv_geom {
  std::size_t n, c, h, w, o, kh, kw, oh, ow;
  size2 stride, pad, dil;
  std::size_t ckk() const { return c * kh * kw; }
  std::size_t l() const { return oh * ow; }
  /// A 1x1 kernel at stride 1 without padding: the columns of an image are the image itself.
  bool pointwise() const {
    return kh == 1 && kw == 1 && stride.h == 1 && stride.w == 1 && pad.h == 0 && pad.w == 0;
  }
  /// Multiply-adds of the forward pass.
  std::uint64_t macs() const { return std::uint64_t(n) * o * l() * ckk(); }
};

/// Geometry for input x (N, C, H, W), o output channels and a kernel (output extents still 0). Fields are
/// set one by one: g++ 12 at -O2 -march=native (AVX-512) miscompiled the brace-initialised aggregate
/// here (the SLP vectoriser stored wrong extents), see the conv2d error test.
inline conv_geom make_geom(const shape_type& x, std::size_t o, size2 k, size2 stride, size2 pad, size2 dil) {
  conv_geom g;
  g.n = x[0];
  g.c = x[1];
  g.h = x[2];
  g.w = x[3];
  g.o = o;
  g.kh = k.h;
  g.kw = k.w;
  g.oh = 0;
  g.ow = 0;
  g.stride = stride;
  g.pad = pad;
  g.dil = dil;
  return g;
}

/// ceil(a / b).
constexpr std::size_t ceil_div(std::size_t a, std::size_t b) noexcept {
  return (a + b - 1) / b;
}

/// The outputs o in [0, out) whose tap o * stride + off - pad falls inside [0, n): one range [lo, hi).
struct conv_range {
  std::size_t lo, hi;
};
inline conv_range tap_range(std::size_t out, std::size_t stride, std::size_t off, std::size_t pad,
                            std::size_t n) noexcept {
  if (n + pad <= off) // every tap lies right of the image
    return {0, 0};
  const std::size_t hi = std::min(out, (n - 1 + pad - off) / stride + 1);
  const std::size_t lo = off >= pad ? 0 : (pad - off + stride - 1) / stride;
  return {std::min(lo, hi), hi};
}

/// Growable scratch memory of the calling thread, one per slot and element type (0: columns, 1: column
/// gradients, 2: backward's partial sums): buffers are allocated once per thread and reused by every
/// later call, where a fresh multi-MB buffer per call pays page faults and zeroing each time. Grows,
/// never shrinks (it lives as long as the thread); the contents are not kept across calls and never
/// initialised.
template <class T>
T* conv_scratch(int slot, std::size_t count) {
  struct buffer {
    std::unique_ptr<T[]> p;
    std::size_t n = 0;
  };
  thread_local buffer s[3];
  buffer& b = s[slot];
  if (count > b.n) {
    b.p = std::make_unique_for_overwrite<T[]>(count);
    b.n = count;
  }
  return b.p.get();
}

/// Where one kernel tap (ci, a, b) reads: row (oy, ox) of its columns reads pixel (oy sh + dy, ox sw +
/// dx) of channel ci, for the output rows yr and columns xr that land inside the image.
struct conv_tap {
  std::ptrdiff_t dy, dx;
  conv_range yr, xr;
};
/// A tap that reads only padding gets two empty ranges.
inline conv_tap tap_at(const conv_geom& g, std::size_t a, std::size_t b) noexcept {
  conv_tap t{static_cast<std::ptrdiff_t>(a * g.dil.h) - static_cast<std::ptrdiff_t>(g.pad.h),
             static_cast<std::ptrdiff_t>(b * g.dil.w) - static_cast<std::ptrdiff_t>(g.pad.w),
             tap_range(g.oh, g.stride.h, a * g.dil.h, g.pad.h, g.h),
             tap_range(g.ow, g.stride.w, b * g.dil.w, g.pad.w, g.w)};
  if (t.yr.lo == t.yr.hi || t.xr.lo == t.xr.hi)
    t.yr = t.xr = conv_range{0, 0};
  return t;
}

/// Stride 1 and an output as wide as the input (a "same" convolution, e.g. 3x3 with padding 1): a
/// tap's columns are then the channel's plane shifted by dy rows and dx pixels, so the rows inside the
/// image are one contiguous run [p0, p1) of the plane, copied or added in one loop, except the columns
/// that wrap around a row edge (at most the padding on each side), which are fixed up one by one.
inline bool conv_shifted_plane(const conv_geom& g) noexcept {
  return g.stride.h == 1 && g.stride.w == 1 && g.ow == g.w;
}
/// The run of positions p in [yr.lo OW, yr.hi OW) whose shifted source p + off lies inside the plane.
inline conv_range plane_run(const conv_geom& g, const conv_tap& t) noexcept {
  const std::ptrdiff_t off = t.dy * static_cast<std::ptrdiff_t>(g.w) + t.dx;
  const auto lo = std::max<std::ptrdiff_t>(static_cast<std::ptrdiff_t>(t.yr.lo * g.ow), -off);
  const auto hi = std::min<std::ptrdiff_t>(static_cast<std::ptrdiff_t>(t.yr.hi * g.ow),
                                           static_cast<std::ptrdiff_t>(g.h * g.w) - off);
  return hi <= lo ? conv_range{0, 0} : conv_range{static_cast<std::size_t>(lo), static_cast<std::size_t>(hi)};
}

/// Zeros the columns of rows [yr.lo, yr.hi) of one tap's columns that fall in the left or right
/// padding, column by column (a few elements per row; a memset per row would cost a call each).
template <class T>
void zero_edge_columns(T* row, const conv_geom& g, const conv_tap& t) {
  const auto column = [&](std::size_t ox) {
    for (std::size_t oy = t.yr.lo; oy < t.yr.hi; ++oy)
      row[oy * g.ow + ox] = T(0);
  };
  for (std::size_t ox = 0; ox < t.xr.lo; ++ox)
    column(ox);
  for (std::size_t ox = t.xr.hi; ox < g.ow; ++ox)
    column(ox);
}

/// Offset in its channel's plane of the pixel that output (oy, ox) of tap t reads; (oy, ox) must lie in
/// the tap's ranges (the offset is then not negative).
inline std::size_t tap_pixel(const conv_geom& g, const conv_tap& t, std::size_t oy, std::size_t ox) noexcept {
  const std::ptrdiff_t iy = static_cast<std::ptrdiff_t>(oy * g.stride.h) + t.dy;
  const std::ptrdiff_t ix = static_cast<std::ptrdiff_t>(ox * g.stride.w) + t.dx;
  return static_cast<std::size_t>(iy) * g.w + static_cast<std::size_t>(ix);
}

/// cols (C KH KW, OH OW) = the receptive fields of one image x (C, H, W), zeros in the padding; rows of
/// cols are ld apart (ld >= OH OW, so several images' columns can sit side by side); every element of
/// cols within the OH OW columns is written. For each kernel tap (ci, a, b) the output rows and columns whose
/// input pixel lies inside the image form ranges computed once, so the inner loops are plain copies.
template <class T>
void im2col(const T* x, const conv_geom& g, T* cols, std::size_t ld) {
  const std::size_t l = g.l();
  for (std::size_t ci = 0; ci < g.c; ++ci)
    for (std::size_t a = 0; a < g.kh; ++a)
      for (std::size_t b = 0; b < g.kw; ++b) {
        T* row = cols + ((ci * g.kh + a) * g.kw + b) * ld;
        const T* plane = x + ci * g.h * g.w;
        const conv_tap t = tap_at(g, a, b);
        std::fill(row, row + t.yr.lo * g.ow, T(0));
        std::fill(row + t.yr.hi * g.ow, row + l, T(0));
        if (conv_shifted_plane(g)) {
          const conv_range run = plane_run(g, t);
          const std::ptrdiff_t off = t.dy * static_cast<std::ptrdiff_t>(g.w) + t.dx;
          if (run.hi > run.lo) // run.lo + off >= 0
            std::copy(plane + (static_cast<std::ptrdiff_t>(run.lo) + off),
                      plane + (static_cast<std::ptrdiff_t>(run.hi) + off), row + run.lo);
          zero_edge_columns(row, g, t); // also every position of [yr.lo OW, yr.hi OW) outside the run
          continue;
        }
        for (std::size_t oy = t.yr.lo; oy < t.yr.hi; ++oy) {
          T* r = row + oy * g.ow;
          const T* src = plane + tap_pixel(g, t, oy, t.xr.lo);
          for (std::size_t ox = 0; ox < t.xr.lo; ++ox)
            r[ox] = T(0);
          for (std::size_t j = 0; j < t.xr.hi - t.xr.lo; ++j)
            r[t.xr.lo + j] = src[j * g.stride.w];
          for (std::size_t ox = t.xr.hi; ox < g.ow; ++ox)
            r[ox] = T(0);
        }
      }
}

/// dx (C, H, W) += the columns scattered back to the pixels they were read from (the adjoint of
/// im2col). May overwrite the columns that im2col sets to zero (the padding) with zeros.
template <class T>
void col2im_add(T* cols, const conv_geom& g, T* dx) {
  for (std::size_t ci = 0; ci < g.c; ++ci)
    for (std::size_t a = 0; a < g.kh; ++a)
      for (std::size_t b = 0; b < g.kw; ++b) {
        T* row = cols + ((ci * g.kh + a) * g.kw + b) * g.l();
        T* plane = dx + ci * g.h * g.w;
        const conv_tap t = tap_at(g, a, b);
        if (conv_shifted_plane(g)) {
          zero_edge_columns(row, g, t); // padding reads nothing: add nothing back
          const conv_range run = plane_run(g, t);
          const std::ptrdiff_t off = t.dy * static_cast<std::ptrdiff_t>(g.w) + t.dx;
          if (run.hi == run.lo)
            continue;
          T* dst = plane + (static_cast<std::ptrdiff_t>(run.lo) + off); // run.lo + off >= 0
          const T* src = row + run.lo;
          kernels::acc(src, dst, run.hi - run.lo);
          continue;
        }
        for (std::size_t oy = t.yr.lo; oy < t.yr.hi; ++oy) {
          const T* r = row + oy * g.ow + t.xr.lo;
          T* dst = plane + tap_pixel(g, t, oy, t.xr.lo);
          for (std::size_t j = 0; j < t.xr.hi - t.xr.lo; ++j)
            dst[j * g.stride.w] += r[j];
        }
      }
}

} // namespace detail

namespace ops {

/// 2-d convolution (cross-correlation, as in every DL framework). Inputs: x (N, C, H, W),
/// weight (O, C, KH, KW) and optionally bias (O); output (N, O, OH, OW).
struct conv2d_op {
  static constexpr std::string_view name = "conv2d";
  conv2d_options opt;

  /// The op with the given options. Out of line on purpose: g++ 12.2 at -O2 -march=native (AVX-512)
  /// miscompiled the inlined copy of the default options `{}` into apply's by-value op (the SLP
  /// vectoriser broadcast 1 into the padding), so a conv with default options ran with padding 1.
  [[gnu::noinline]] static conv2d_op make(const conv2d_options& o) {
    conv2d_op op;
    op.opt = o;
    return op;
  }

  detail::conv_geom geom(const shape_type& x, const shape_type& w) const {
    if (x.size() != 4)
      throw shape_error("conv2d: input must be 4-d (N, C, H, W), got " + to_string(x));
    if (w.size() != 4)
      throw shape_error("conv2d: weight must be 4-d (out_channels, in_channels, KH, KW), got " +
                        to_string(w));
    if (x[1] != w[1])
      throw shape_error("conv2d: input " + to_string(x) + " has " + std::to_string(x[1]) +
                        " channels but weight " + to_string(w) + " expects " + std::to_string(w[1]) +
                        " (groups other than 1 are not supported)");
    if (opt.stride.h == 0 || opt.stride.w == 0 || opt.dilation.h == 0 || opt.dilation.w == 0)
      throw value_error("conv2d: stride and dilation must be positive, got stride " +
                        detail::str(opt.stride) + ", dilation " + detail::str(opt.dilation));
    if (w[2] == 0 || w[3] == 0)
      throw shape_error("conv2d: empty kernel " + to_string(w));
    detail::conv_geom g =
        detail::make_geom(x, w[0], size2(w[2], w[3]), opt.stride, opt.padding, opt.dilation);
    g.oh = detail::window_out(name, g.h, g.kh, g.stride.h, g.pad.h, g.dil.h, x);
    g.ow = detail::window_out(name, g.w, g.kw, g.stride.w, g.pad.w, g.dil.w, x);
    return g;
  }
  shape_type shape(const shape_type& x, const shape_type& w) const {
    const auto g = geom(x, w);
    return {g.n, g.o, g.oh, g.ow};
  }
  shape_type shape(const shape_type& x, const shape_type& w, const shape_type& b) const {
    if (b.size() != 1 || w.empty() || b[0] != w[0])
      throw shape_error("conv2d: bias " + to_string(b) + " must have shape (out_channels,) = (" +
                        (w.empty() ? std::string("?") : std::to_string(w[0])) + ",)");
    return shape(x, w);
  }
  std::uint64_t flops(const shape_type& out, const shape_type&, const shape_type& w) const {
    return 2ull * numel(out) * w[1] * w[2] * w[3];
  }
  std::uint64_t flops(const shape_type& out, const shape_type& x, const shape_type& w,
                      const shape_type&) const {
    return flops(out, x, w) + numel(out);
  }

  template <class C>
  detail::conv_geom geom_of(const C& c) const {
    using T = typename C::value_type;
    return geom(detail::to_shape<T>(c.in(0).shape()), detail::to_shape<T>(c.in(1).shape()));
  }

  /// Threads for a call: grad's thread count, or 1 when the call is too small to pay for a parallel region.
  static int threads_for(const detail::conv_geom& g) {
    return g.macs() >= (std::uint64_t(1) << 20) ? get_num_threads() : 1;
  }

  // Work is split over images: a task unrolls its images into this thread's column buffer (reused
  // across calls) and runs single-threaded GEMMs on it (a GEMM inside a parallel region runs serially),
  // so the whole call is one parallel region whose columns stay in the cache between im2col and the
  // product. Per-image GEMMs are small (example 05's conv2: 32 x 196 x 144), too small to split well.
  // When the call runs serially (one thread, or parallel_tasks backing off on a busy machine), the
  // GEMMs may use the threads themselves: a layer with one image still gets them.
  template <class C>
  void forward(C& c) const {
    using T = typename C::value_type;
    const auto g = geom_of(c);
    const T* x = c.in(0).data();
    const T* w = c.in(1).data();
    const T* bias = c.size() == 3 ? c.in(2).data() : nullptr;
    T* y = c.out().data();
    const std::size_t chw = g.c * g.h * g.w, ol = g.o * g.l();
    if (g.pointwise()) { // the columns of image i are x_i (C, H W) itself
      detail::parallel_tasks(g.n, threads_for(g), [&](std::size_t i) {
        // y_i (O, H W) = W (O, C) @ x_i (C, H W)
        detail::gemm_dispatch<T>(false, false, g.o, g.l(), g.ckk(), T(1), w, g.ckk(), x + i * chw, g.l(),
                                 T(0), y + i * ol, g.l());
        add_bias(bias, g, y + i * ol, g.l(), y + i * ol);
      });
      return;
    }
    // nb images per product, their columns side by side: (C KH KW, nb OH OW). A wider product runs the
    // GEMM closer to its peak (example 05's conv2: 32 x 784 x 144 measured 10-15% faster per image
    // than 32 x 196 x 144) for one extra pass over the output, which also adds the bias.
    const std::size_t nb = images_per_product(g);
    detail::parallel_tasks(detail::ceil_div(g.n, nb), threads_for(g), [&](std::size_t t) {
      const std::size_t i0 = t * nb, k = std::min(nb, g.n - i0), ld = k * g.l();
      T* cols = detail::conv_scratch<T>(0, g.ckk() * ld); // (C KH KW, k OH OW)
      for (std::size_t j = 0; j < k; ++j)
        detail::im2col(x + (i0 + j) * chw, g, cols + j * g.l(), ld);
      if (k == 1) { // y_i (O, OH OW) = W (O, C KH KW) @ cols (C KH KW, OH OW)
        detail::gemm_dispatch<T>(false, false, g.o, g.l(), g.ckk(), T(1), w, g.ckk(), cols, g.l(), T(0),
                                 y + i0 * ol, g.l());
        add_bias(bias, g, y + i0 * ol, g.l(), y + i0 * ol);
        return;
      }
      T* prod = detail::conv_scratch<T>(1, g.o * ld); // (O, k OH OW)
      detail::gemm_dispatch<T>(false, false, g.o, ld, g.ckk(), T(1), w, g.ckk(), cols, ld, T(0), prod, ld);
      for (std::size_t j = 0; j < k; ++j)
        add_bias(bias, g, prod + j * g.l(), ld, y + (i0 + j) * ol);
    });
  }

  /// Images per product in forward: enough for about 768 columns, at most 8.
  static std::size_t images_per_product(const detail::conv_geom& g) {
    return std::clamp<std::size_t>(detail::ceil_div(768, std::max<std::size_t>(1, g.l())), 1, 8);
  }

  /// y (O, OH OW) = src (O rows ld apart, OH OW each) + bias; src may be y (then ld = OH OW).
  template <class T>
  static void add_bias(const T* bias, const detail::conv_geom& g, const T* src, std::size_t ld, T* y) {
    if (!bias && src == y)
      return;
    for (std::size_t o = 0; o < g.o; ++o) { // explicit SIMD: a scalar loop here took 15% of conv2's forward
      if (bias)
        kernels::add_scalar(src + o * ld, bias[o], y + o * g.l(), g.l());
      else
        kernels::copy(src + o * ld, y + o * g.l(), g.l());
    }
  }

  /// Tasks of backward: fixed runs of consecutive images, independent of the thread count, each
  /// summing its images' weight and bias gradients into its own partial sums; the partials are added
  /// in task order, so the result does not depend on the thread count or on which thread ran what.
  /// At most 8 tasks, and at most 16 MiB of partial sums (a larger layer gets one task, whose GEMMs
  /// then run on all threads themselves).
  static std::size_t backward_tasks(const detail::conv_geom& g, std::size_t elem_size) {
    const std::size_t part = (g.o * g.ckk() + g.o) * elem_size;
    return std::max<std::size_t>(1, std::min({g.n, std::size_t(8), (std::size_t(16) << 20) / part}));
  }

  template <class C>
  void backward(C& c) const {
    using T = typename C::value_type;
    const auto g = geom_of(c);
    const T* x = c.in(0).data();
    const T* w = c.in(1).data();
    const T* dy = c.dout().data();
    const bool need_x = c.needs_grad(0), need_w = c.needs_grad(1);
    const bool need_b = c.size() == 3 && c.needs_grad(2);
    // Gradient buffers are fetched before the parallel region: din() may allocate.
    T* dx = need_x ? c.din(0).data() : nullptr; // (N, C, H, W)
    T* dw = need_w ? c.din(1).data() : nullptr; // (O, C KH KW)
    T* db = need_b ? c.din(2).data() : nullptr; // (O)
    const std::size_t chw = g.c * g.h * g.w, ol = g.o * g.l(), wsize = g.o * g.ckk();
    if (g.n == 0)
      return;
    const std::size_t per = detail::ceil_div(g.n, backward_tasks(g, sizeof(T)));
    const std::size_t tasks = detail::ceil_div(g.n, per);
    const bool partials = need_w || need_b;
    // One buffer of the calling thread: W^T, then per task the partial dW^T and db.
    T* buf = detail::conv_scratch<T>(2, wsize + (partials ? tasks * (wsize + g.o) : 0));
    T* wt = buf; // (C KH KW, O)
    T* part = buf + wsize;
    if (need_x) // the products below then read both operands row-major: measured 10% faster than W^T
      for (std::size_t o = 0; o < g.o; ++o)
        for (std::size_t j = 0; j < g.ckk(); ++j)
          wt[j * g.o + o] = w[o * g.ckk() + j];
    detail::parallel_tasks(tasks, threads_for(g), [&](std::size_t t) {
      T* pw = partials ? part + t * (wsize + g.o) : nullptr; // (C KH KW, O): dW^T
      T* pb = partials ? pw + wsize : nullptr;               // (O)
      const std::size_t i0 = t * per, i1 = std::min(g.n, i0 + per);
      for (std::size_t i = i0; i < i1; ++i) {
        const T* gi = dy + i * ol; // (O, OH OW)
        if (need_w) {
          // dW^T (C KH KW, O) += cols (C KH KW, OH OW) @ g_i^T (OH OW, O)    d(W cols)/dW = cols^T
          // (the transposed product has the long side C KH KW as its rows: measured 25-35% faster)
          const T* cols = x + i * chw;
          if (!g.pointwise()) {
            T* c_buf = detail::conv_scratch<T>(0, g.ckk() * g.l());
            detail::im2col(x + i * chw, g, c_buf, g.l());
            cols = c_buf;
          }
          detail::gemm_dispatch<T>(false, true, g.ckk(), g.o, g.l(), T(1), cols, g.l(), gi, g.l(),
                                   i == i0 ? T(0) : T(1), pw, g.o);
        }
        if (need_b) // db_o += sum over oh, ow of g_i    d(y)/db = 1
          for (std::size_t o = 0; o < g.o; ++o) {
            const T acc = kernels::sum<T>(gi + o * g.l(), g.l());
            pb[o] = i == i0 ? acc : pb[o] + acc; // the buffer starts uninitialised
          }
        if (need_x) {          // dcols (C KH KW, OH OW) = W^T @ g_i, scattered to dx_i    d(W cols)/dcols = W
          if (g.pointwise()) { // the columns are x_i itself
            detail::gemm_dispatch<T>(false, false, g.ckk(), g.l(), g.o, T(1), wt, g.o, gi, g.l(), T(1),
                                     dx + i * chw, g.l());
          } else {
            T* dcols = detail::conv_scratch<T>(1, g.ckk() * g.l());
            detail::gemm_dispatch<T>(false, false, g.ckk(), g.l(), g.o, T(1), wt, g.o, gi, g.l(), T(0), dcols,
                                     g.l());
            detail::col2im_add(dcols, g, dx + i * chw);
          }
        }
      }
    });
    for (std::size_t t = 0; t < tasks && partials; ++t) {
      const T* pw = part + t * (wsize + g.o); // (C KH KW, O)
      if (need_w)
        for (std::size_t o = 0; o < g.o; ++o)
          for (std::size_t j = 0; j < g.ckk(); ++j)
            dw[o * g.ckk() + j] += pw[j * g.o + o];
      if (need_b)
        for (std::size_t o = 0; o < g.o; ++o)
          db[o] += pw[wsize + o];
    }
  }
};

} // namespace ops

/// 2-d convolution: x (N, C, H, W), weight (O, C, KH, KW) -> (N, O, OH, OW); options stride, padding,
/// dilation (`conv2d(x, w, {.stride = 2, .padding = 1})`).
template <element T>
basic_tensor<T> conv2d(const basic_tensor<T>& x, const basic_tensor<T>& weight,
                       const conv2d_options& opt = {}) {
  return apply(ops::conv2d_op::make(opt), x, weight);
}

/// 2-d convolution with a bias (O); an undefined bias is skipped.
template <element T>
basic_tensor<T> conv2d(const basic_tensor<T>& x, const basic_tensor<T>& weight, const basic_tensor<T>& bias,
                       const conv2d_options& opt = {}) {
  if (!bias.defined())
    return apply(ops::conv2d_op::make(opt), x, weight);
  return apply(ops::conv2d_op::make(opt), x, weight, bias);
}

} // namespace grad
