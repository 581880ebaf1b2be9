#pragma once
/// @file ops/conv.hpp
/// conv2d (NCHW, groups = 1) with stride, padding and dilation, by im2col + GEMM: each image's
/// receptive fields are unrolled into a (C KH KW, OH OW) matrix so the convolution is one matrix
/// product with the (O, C KH KW) weight (Chellapilla et al. 2006, "High performance convolutional
/// neural networks for document processing"; the layout of Caffe's im2col).

#include <string>
#include <vector>

#include "grad/core/apply.hpp"
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

/// cols (C KH KW, OH OW) = the receptive fields of one image x (C, H, W), zeros in the padding.
template <class T>
void im2col(const T* x, const conv_geom& g, T* cols) {
  for (std::size_t ci = 0; ci < g.c; ++ci)
    for (std::size_t a = 0; a < g.kh; ++a)
      for (std::size_t b = 0; b < g.kw; ++b) {
        T* row = cols + ((ci * g.kh + a) * g.kw + b) * g.l();
        for (std::size_t oy = 0; oy < g.oh; ++oy) {
          // signed: the padding makes the first rows read above the image
          const auto iy = static_cast<std::ptrdiff_t>(oy * g.stride.h + a * g.dil.h) -
                          static_cast<std::ptrdiff_t>(g.pad.h);
          for (std::size_t ox = 0; ox < g.ow; ++ox) {
            const auto ix = static_cast<std::ptrdiff_t>(ox * g.stride.w + b * g.dil.w) -
                            static_cast<std::ptrdiff_t>(g.pad.w);
            const bool inside = iy >= 0 && ix >= 0 && iy < static_cast<std::ptrdiff_t>(g.h) &&
                                ix < static_cast<std::ptrdiff_t>(g.w);
            row[oy * g.ow + ox] =
                inside ? x[(ci * g.h + static_cast<std::size_t>(iy)) * g.w + static_cast<std::size_t>(ix)]
                       : T(0);
          }
        }
      }
}

/// dx (C, H, W) += the columns scattered back to the pixels they were read from (adjoint of im2col).
template <class T>
void col2im_add(const T* cols, const conv_geom& g, T* dx) {
  for (std::size_t ci = 0; ci < g.c; ++ci)
    for (std::size_t a = 0; a < g.kh; ++a)
      for (std::size_t b = 0; b < g.kw; ++b) {
        const T* row = cols + ((ci * g.kh + a) * g.kw + b) * g.l();
        for (std::size_t oy = 0; oy < g.oh; ++oy) {
          const auto iy = static_cast<std::ptrdiff_t>(oy * g.stride.h + a * g.dil.h) -
                          static_cast<std::ptrdiff_t>(g.pad.h);
          if (iy < 0 || iy >= static_cast<std::ptrdiff_t>(g.h))
            continue;
          for (std::size_t ox = 0; ox < g.ow; ++ox) {
            const auto ix = static_cast<std::ptrdiff_t>(ox * g.stride.w + b * g.dil.w) -
                            static_cast<std::ptrdiff_t>(g.pad.w);
            if (ix >= 0 && ix < static_cast<std::ptrdiff_t>(g.w))
              dx[(ci * g.h + static_cast<std::size_t>(iy)) * g.w + static_cast<std::size_t>(ix)] +=
                  row[oy * g.ow + ox];
          }
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

  template <class C>
  void forward(C& c) const {
    using T = typename C::value_type;
    const auto g = geom_of(c);
    std::vector<T> cols(g.ckk() * g.l()); // (C KH KW, OH OW), reused for every image
    const T* x = c.in(0).data();
    const T* w = c.in(1).data();
    T* y = c.out().data();
    for (std::size_t i = 0; i < g.n; ++i) {
      detail::im2col(x + i * g.c * g.h * g.w, g, cols.data());
      T* yi = y + i * g.o * g.l();
      // y_i (O, OH OW) = W (O, C KH KW) @ cols (C KH KW, OH OW)
      detail::gemm_dispatch<T>(false, false, g.o, g.l(), g.ckk(), T(1), w, g.ckk(), cols.data(), g.l(), T(0),
                               yi, g.l());
      if (c.size() == 3) {
        const T* b = c.in(2).data();
        for (std::size_t o = 0; o < g.o; ++o)
          for (std::size_t p = 0; p < g.l(); ++p)
            yi[o * g.l() + p] += b[o];
      }
    }
  }

  template <class C>
  void backward(C& c) const {
    using T = typename C::value_type;
    const auto g = geom_of(c);
    const T* x = c.in(0).data();
    const T* w = c.in(1).data();
    const T* dy = c.dout().data();
    const bool need_x = c.needs_grad(0), need_w = c.needs_grad(1);
    std::vector<T> cols(g.ckk() * g.l());
    for (std::size_t i = 0; i < g.n; ++i) {
      const T* gi = dy + i * g.o * g.l(); // (O, OH OW)
      if (need_w) { // dW (O, C KH KW) += g_i (O, OH OW) @ cols^T (OH OW, C KH KW)    d(W cols)/dW = cols
        detail::im2col(x + i * g.c * g.h * g.w, g, cols.data());
        detail::gemm_dispatch<T>(false, true, g.o, g.ckk(), g.l(), T(1), gi, g.l(), cols.data(), g.l(), T(1),
                                 c.din(1).data(), g.ckk());
      }
      if (need_x) { // dcols (C KH KW, OH OW) = W^T @ g_i, then scattered to dx    d(W cols)/dcols = W
        detail::gemm_dispatch<T>(true, false, g.ckk(), g.l(), g.o, T(1), w, g.ckk(), gi, g.l(), T(0),
                                 cols.data(), g.l());
        detail::col2im_add(cols.data(), g, c.din(0).data() + i * g.c * g.h * g.w);
      }
    }
    if (c.size() == 3 && c.needs_grad(2)) { // db_o += sum over n, oh, ow of g    d(y)/db = 1
      T* db = c.din(2).data();
      for (std::size_t i = 0; i < g.n; ++i)
        for (std::size_t o = 0; o < g.o; ++o) {
          T acc = 0;
          for (std::size_t p = 0; p < g.l(); ++p)
            acc += dy[(i * g.o + o) * g.l() + p];
          db[o] += acc;
        }
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
