#pragma once
/// @file kernels/reference/elementwise.hpp
/// Naive scalar twins of the elementwise, reduction and softmax kernels (kernels/unary.hpp,
/// binary.hpp, reduce.hpp, softmax.hpp): the textbook definitions they are tested against, with the
/// same signatures. Every value is computed in a wider type (double for float, long double for double)
/// and rounded once, so the reference is the more accurate side of a comparison.

#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>

namespace grad::kernels::reference {

/// The type the reference computes in for T.
template <class T>
using wide_t = std::conditional_t<std::is_same_v<T, float>, double, long double>;

namespace detail {
/// y[i] = f(x[i]) evaluated in wide_t.
template <class T, class F>
void map(const T* x, T* y, std::size_t n, F f) {
  for (std::size_t i = 0; i < n; ++i)
    y[i] = T(f(wide_t<T>(x[i])));
}
/// dx[i] += f(a[i], dy[i]) evaluated in wide_t.
template <class T, class F>
void acc_map(const T* a, const T* dy, T* dx, std::size_t n, F f) {
  for (std::size_t i = 0; i < n; ++i)
    dx[i] = T(wide_t<T>(dx[i]) + f(wide_t<T>(a[i]), wide_t<T>(dy[i])));
}
template <class W>
inline constexpr W gelu_k0 = W(0.79788456080286535587989211986876373L); // sqrt(2 / pi)
template <class W>
inline constexpr W gelu_k1 = W(0.044715L);
template <class W>
inline constexpr W inv_sqrt2 = W(0.70710678118654752440084436210484904L);
template <class W>
inline constexpr W inv_sqrt_2pi = W(0.39894228040143267793994605993438187L);
} // namespace detail

/// y = e^x.
template <class T>
void exp(const T* x, T* y, std::size_t n) {
  detail::map(x, y, n, [](auto v) { return std::exp(v); });
}
/// y = ln x.
template <class T>
void log(const T* x, T* y, std::size_t n) {
  detail::map(x, y, n, [](auto v) { return std::log(v); });
}
/// y = sqrt(x).
template <class T>
void sqrt(const T* x, T* y, std::size_t n) {
  detail::map(x, y, n, [](auto v) { return std::sqrt(v); });
}
/// y = tanh x.
template <class T>
void tanh(const T* x, T* y, std::size_t n) {
  detail::map(x, y, n, [](auto v) { return std::tanh(v); });
}
/// y = 1 / (1 + e^-x).
template <class T>
void sigmoid(const T* x, T* y, std::size_t n) {
  detail::map(x, y, n, [](auto v) { return 1 / (1 + std::exp(-v)); });
}
/// y = erf x.
template <class T>
void erf(const T* x, T* y, std::size_t n) {
  detail::map(x, y, n, [](auto v) { return std::erf(v); });
}
/// y = max(x, 0), NaN kept.
template <class T>
void relu(const T* x, T* y, std::size_t n) {
  detail::map(x, y, n, [](auto v) { return v < 0 ? decltype(v)(0) : v; });
}
/// y = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), evaluated as x / (1 + e^-2u) (equal,
/// since 1 + tanh(u) = 2 / (1 + e^-2u)): 1 + tanh(u) cancels for u < -10 even in the wider type.
template <class T>
void gelu_tanh(const T* x, T* y, std::size_t n) {
  detail::map(x, y, n, [](auto v) {
    using W = decltype(v);
    return v / (1 + std::exp(-2 * detail::gelu_k0<W> * (v + detail::gelu_k1<W> * v * v * v)));
  });
}
/// y = 0.5 x erfc(-x / sqrt 2) = 0.5 x (1 + erf(x / sqrt 2)).
template <class T>
void gelu_erf(const T* x, T* y, std::size_t n) {
  detail::map(x, y, n, [](auto v) {
    using W = decltype(v);
    return W(0.5) * v * std::erfc(-v * detail::inv_sqrt2<W>);
  });
}
/// y = -x.
template <class T>
void neg(const T* x, T* y, std::size_t n) {
  detail::map(x, y, n, [](auto v) { return -v; });
}
/// y = |x|.
template <class T>
void abs(const T* x, T* y, std::size_t n) {
  detail::map(x, y, n, [](auto v) { return std::abs(v); });
}
/// y = x^2.
template <class T>
void square(const T* x, T* y, std::size_t n) {
  detail::map(x, y, n, [](auto v) { return v * v; });
}

/// dx += dy y.
template <class T>
void exp_backward(const T* y, const T* dy, T* dx, std::size_t n) {
  detail::acc_map(y, dy, dx, n, [](auto v, auto g) { return g * v; });
}
/// dx += dy / x.
template <class T>
void log_backward(const T* x, const T* dy, T* dx, std::size_t n) {
  detail::acc_map(x, dy, dx, n, [](auto v, auto g) { return g / v; });
}
/// dx += dy / (2 y).
template <class T>
void sqrt_backward(const T* y, const T* dy, T* dx, std::size_t n) {
  detail::acc_map(y, dy, dx, n, [](auto v, auto g) { return g / (2 * v); });
}
/// dx += dy (1 - y^2).
template <class T>
void tanh_backward(const T* y, const T* dy, T* dx, std::size_t n) {
  detail::acc_map(y, dy, dx, n, [](auto v, auto g) { return g * (1 - v * v); });
}
/// dx += dy y (1 - y).
template <class T>
void sigmoid_backward(const T* y, const T* dy, T* dx, std::size_t n) {
  detail::acc_map(y, dy, dx, n, [](auto v, auto g) { return g * v * (1 - v); });
}
/// dx += dy [x > 0].
template <class T>
void relu_backward(const T* x, const T* dy, T* dx, std::size_t n) {
  detail::acc_map(x, dy, dx, n, [](auto v, auto g) { return v > 0 ? g : decltype(g)(0); });
}
/// dx += dy (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 0.044715 x^2)), t = tanh(u), evaluated
/// with 1 + t = 2 s and 1 - t^2 = 4 s (1 - s), s = 1 / (1 + e^-2u), which do not cancel.
template <class T>
void gelu_tanh_backward(const T* x, const T* dy, T* dx, std::size_t n) {
  detail::acc_map(x, dy, dx, n, [](auto v, auto g) {
    using W = decltype(v);
    const W k0 = detail::gelu_k0<W>, k1 = detail::gelu_k1<W>;
    const W e = std::exp(-2 * k0 * (v + k1 * v * v * v));
    const W s = 1 / (1 + e), s1ms = std::isinf(e) ? W(0) : e / ((1 + e) * (1 + e));
    return g * (s + 2 * v * s1ms * k0 * (1 + 3 * k1 * v * v));
  });
}
/// dx += dy (Phi(x) + x phi(x)).
template <class T>
void gelu_erf_backward(const T* x, const T* dy, T* dx, std::size_t n) {
  detail::acc_map(x, dy, dx, n, [](auto v, auto g) {
    using W = decltype(v);
    const W cdf = W(0.5) * std::erfc(-v * detail::inv_sqrt2<W>);
    return g * (cdf + v * detail::inv_sqrt_2pi<W> * std::exp(-v * v / 2));
  });
}
/// dx -= dy.
template <class T>
void neg_backward(const T* dy, T* dx, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    dx[i] -= dy[i];
}
/// dx += dy sign(x), sign(0) = 0.
template <class T>
void abs_backward(const T* x, const T* dy, T* dx, std::size_t n) {
  detail::acc_map(x, dy, dx, n, [](auto v, auto g) { return v > 0 ? g : v < 0 ? -g : decltype(g)(0); });
}
/// dx += 2 x dy.
template <class T>
void square_backward(const T* x, const T* dy, T* dx, std::size_t n) {
  detail::acc_map(x, dy, dx, n, [](auto v, auto g) { return 2 * v * g; });
}

/// y = x.
template <class T>
void copy(const T* x, T* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    y[i] = x[i];
}
/// y = value.
template <class T>
void fill(T value, T* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    y[i] = value;
}
/// z = x + y.
template <class T>
void add(const T* x, const T* y, T* z, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    z[i] = x[i] + y[i];
}
/// z = x - y.
template <class T>
void sub(const T* x, const T* y, T* z, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    z[i] = x[i] - y[i];
}
/// z = x * y.
template <class T>
void mul(const T* x, const T* y, T* z, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    z[i] = x[i] * y[i];
}
/// z = x / y.
template <class T>
void div(const T* x, const T* y, T* z, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    z[i] = x[i] / y[i];
}
/// y = x + a.
template <class T>
void add_scalar(const T* x, T a, T* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    y[i] = x[i] + a;
}
/// y = a x.
template <class T>
void mul_scalar(const T* x, T a, T* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    y[i] = a * x[i];
}
/// z = x y + w, one rounding.
template <class T>
void mul_add(const T* x, const T* y, const T* w, T* z, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    z[i] = T(wide_t<T>(x[i]) * wide_t<T>(y[i]) + wide_t<T>(w[i]));
}
/// y += a x.
template <class T>
void axpy(T a, const T* x, T* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    y[i] = T(wide_t<T>(a) * wide_t<T>(x[i]) + wide_t<T>(y[i]));
}
/// y += x.
template <class T>
void acc(const T* x, T* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    y[i] += x[i];
}
/// y -= x.
template <class T>
void acc_neg(const T* x, T* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    y[i] -= x[i];
}
/// y += a b.
template <class T>
void acc_mul(const T* a, const T* b, T* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    y[i] = T(wide_t<T>(a[i]) * wide_t<T>(b[i]) + wide_t<T>(y[i]));
}
/// y += a / b.
template <class T>
void acc_div(const T* a, const T* b, T* y, std::size_t n) {
  detail::acc_map(a, b, y, n, [](auto u, auto v) { return u / v; });
}
/// dy -= dz z / y.
template <class T>
void div_backward_rhs(const T* y, const T* z, const T* dz, T* dy, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    dy[i] = T(wide_t<T>(dy[i]) - wide_t<T>(dz[i]) * wide_t<T>(z[i]) / wide_t<T>(y[i]));
}
/// y[i, j] = x[i, j] + row[j].
template <class T>
void add_row(const T* x, const T* row, T* y, std::size_t rows, std::size_t cols) {
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j)
      y[i * cols + j] = x[i * cols + j] + row[j];
}
/// y[i, j] = x[i, j] row[j].
template <class T>
void mul_row(const T* x, const T* row, T* y, std::size_t rows, std::size_t cols) {
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j)
      y[i * cols + j] = x[i * cols + j] * row[j];
}

/// Sum of x[0, n), accumulated in wide_t from left to right.
template <class T>
T sum(const T* x, std::size_t n) {
  wide_t<T> s = 0;
  for (std::size_t i = 0; i < n; ++i)
    s += x[i];
  return T(s);
}
/// Sum of x[i] y[i].
template <class T>
T dot(const T* x, const T* y, std::size_t n) {
  wide_t<T> s = 0;
  for (std::size_t i = 0; i < n; ++i)
    s += wide_t<T>(x[i]) * wide_t<T>(y[i]);
  return T(s);
}
/// Mean of x[0, n).
template <class T>
T mean(const T* x, std::size_t n) {
  wide_t<T> s = 0;
  for (std::size_t i = 0; i < n; ++i)
    s += x[i];
  return T(s / wide_t<T>(n));
}
/// Largest element; NaN if any; -inf for n = 0.
template <class T>
T max(const T* x, std::size_t n) {
  T m = -std::numeric_limits<T>::infinity();
  for (std::size_t i = 0; i < n; ++i) {
    if (x[i] != x[i])
      return x[i];
    m = x[i] > m ? x[i] : m;
  }
  return m;
}
/// y[i] = sum of row i.
template <class T>
void sum_last(const T* x, T* y, std::size_t rows, std::size_t cols) {
  for (std::size_t i = 0; i < rows; ++i)
    y[i] = sum(x + i * cols, cols);
}
/// y[i] = mean of row i.
template <class T>
void mean_last(const T* x, T* y, std::size_t rows, std::size_t cols) {
  for (std::size_t i = 0; i < rows; ++i)
    y[i] = mean(x + i * cols, cols);
}
/// y[i] = largest element of row i.
template <class T>
void max_last(const T* x, T* y, std::size_t rows, std::size_t cols) {
  for (std::size_t i = 0; i < rows; ++i)
    y[i] = max(x + i * cols, cols);
}
/// y[j] = sum over i of x[i, j].
template <class T>
void sum_first(const T* x, T* y, std::size_t rows, std::size_t cols) {
  for (std::size_t j = 0; j < cols; ++j) {
    wide_t<T> s = 0;
    for (std::size_t i = 0; i < rows; ++i)
      s += x[i * cols + j];
    y[j] = T(s);
  }
}
/// drow[j] += sum over i of dy[i, j].
template <class T>
void sum_rows(const T* dy, T* drow, std::size_t rows, std::size_t cols) {
  for (std::size_t j = 0; j < cols; ++j) {
    wide_t<T> s = drow[j];
    for (std::size_t i = 0; i < rows; ++i)
      s += dy[i * cols + j];
    drow[j] = T(s);
  }
}

/// y[i, :] = exp(x[i, :] - max) / sum(exp(x[i, :] - max)).
template <class T>
void softmax_last(const T* x, T* y, std::size_t rows, std::size_t cols) {
  for (std::size_t i = 0; i < rows; ++i) {
    const T* xr = x + i * cols;
    const wide_t<T> m = max(xr, cols);
    wide_t<T> s = 0;
    for (std::size_t j = 0; j < cols; ++j)
      s += std::exp(xr[j] - m);
    for (std::size_t j = 0; j < cols; ++j)
      y[i * cols + j] = T(std::exp(xr[j] - m) / s);
  }
}
/// y[i, :] = x[i, :] - max - log(sum(exp(x[i, :] - max))).
template <class T>
void log_softmax_last(const T* x, T* y, std::size_t rows, std::size_t cols) {
  for (std::size_t i = 0; i < rows; ++i) {
    const T* xr = x + i * cols;
    const wide_t<T> m = max(xr, cols);
    wide_t<T> s = 0;
    for (std::size_t j = 0; j < cols; ++j)
      s += std::exp(xr[j] - m);
    for (std::size_t j = 0; j < cols; ++j)
      y[i * cols + j] = T((xr[j] - m) - std::log(s));
  }
}
/// dx += y (dy - sum(dy y)) per row.
template <class T>
void softmax_last_backward(const T* y, const T* dy, T* dx, std::size_t rows, std::size_t cols) {
  for (std::size_t i = 0; i < rows; ++i) {
    const wide_t<T> d = dot(dy + i * cols, y + i * cols, cols);
    for (std::size_t j = 0; j < cols; ++j) {
      const std::size_t k = i * cols + j;
      dx[k] = T(dx[k] + wide_t<T>(y[k]) * (dy[k] - d));
    }
  }
}
/// dx += dy - exp(y) sum(dy) per row.
template <class T>
void log_softmax_last_backward(const T* y, const T* dy, T* dx, std::size_t rows, std::size_t cols) {
  for (std::size_t i = 0; i < rows; ++i) {
    const wide_t<T> s = sum(dy + i * cols, cols);
    for (std::size_t j = 0; j < cols; ++j) {
      const std::size_t k = i * cols + j;
      dx[k] = T(dx[k] + (dy[k] - std::exp(wide_t<T>(y[k])) * s));
    }
  }
}

} // namespace grad::kernels::reference
