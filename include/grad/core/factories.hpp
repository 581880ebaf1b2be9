#pragma once
/// @file core/factories.hpp
/// Tensor factories with PyTorch's names: zeros, ones, full, arange, linspace, randn, rand, from.

#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#include "grad/core/generator.hpp"
#include "grad/core/tensor.hpp"

namespace grad {

/// A tensor of the given shape filled with `v`.
template <element T = float>
basic_tensor<T> full(const shape_type& shape, T v, tensor_options opt = {}) {
  auto a = detail::empty_array<T>(shape);
  std::fill(a.data(), a.data() + a.size(), v);
  return basic_tensor<T>(std::move(a), opt);
}

/// A tensor of zeros (`zeros({2, 3})`, `zeros<double>({4})`).
template <element T = float>
basic_tensor<T> zeros(const shape_type& shape, tensor_options opt = {}) {
  return full<T>(shape, T(0), opt);
}

/// A tensor of ones.
template <element T = float>
basic_tensor<T> ones(const shape_type& shape, tensor_options opt = {}) {
  return full<T>(shape, T(1), opt);
}

/// Zeros with the shape of `t`.
template <element T>
basic_tensor<T> zeros_like(const basic_tensor<T>& t, tensor_options opt = {}) {
  return zeros<T>(t.shape(), opt);
}

/// Ones with the shape of `t`.
template <element T>
basic_tensor<T> ones_like(const basic_tensor<T>& t, tensor_options opt = {}) {
  return ones<T>(t.shape(), opt);
}

/// 1-d tensor start, start + step, ... up to but excluding `stop` (as torch.arange).
template <element T = float>
basic_tensor<T> arange(double start, double stop, double step = 1.0, tensor_options opt = {}) {
  if (step == 0 || !std::isfinite(start) || !std::isfinite(stop) || !std::isfinite(step))
    throw value_error("arange: step must be non-zero and all bounds finite (start " + std::to_string(start) +
                      ", stop " + std::to_string(stop) + ", step " + std::to_string(step) + ")");
  const double n = std::ceil((stop - start) / step);
  const std::size_t count = n > 0 ? static_cast<std::size_t>(n) : 0;
  auto a = detail::empty_array<T>(shape_type{count});
  for (std::size_t i = 0; i < count; ++i)
    a.data()[i] = static_cast<T>(start + step * static_cast<double>(i));
  return basic_tensor<T>(std::move(a), opt);
}

/// 1-d tensor 0, 1, ..., stop - 1.
template <element T = float>
basic_tensor<T> arange(double stop, tensor_options opt = {}) {
  return arange<T>(0.0, stop, 1.0, opt);
}

/// 1-d tensor of `steps` evenly spaced values from start to end inclusive (as torch.linspace).
template <element T = float>
basic_tensor<T> linspace(double start, double end, std::size_t steps, tensor_options opt = {}) {
  auto a = detail::empty_array<T>(shape_type{steps});
  for (std::size_t i = 0; i < steps; ++i)
    a.data()[i] =
        steps == 1
            ? static_cast<T>(start)
            : static_cast<T>(start + (end - start) * static_cast<double>(i) / static_cast<double>(steps - 1));
  return basic_tensor<T>(std::move(a), opt);
}

/// Samples from N(mean, std^2) drawn from `gen`.
template <element T = float>
basic_tensor<T> randn(const shape_type& shape, generator& gen, tensor_options opt = {}, double mean = 0.0,
                      double stddev = 1.0) {
  auto a = detail::empty_array<T>(shape);
  for (std::size_t i = 0; i < a.size(); ++i)
    a.data()[i] = static_cast<T>(gen.normal(mean, stddev));
  return basic_tensor<T>(std::move(a), opt);
}

/// Standard normal samples from the thread's default generator.
template <element T = float>
basic_tensor<T> randn(const shape_type& shape, tensor_options opt = {}) {
  return randn<T>(shape, default_generator(), opt);
}

/// Uniform samples in [lo, hi) drawn from `gen`.
template <element T = float>
basic_tensor<T> rand(const shape_type& shape, generator& gen, tensor_options opt = {}, double lo = 0.0,
                     double hi = 1.0) {
  auto a = detail::empty_array<T>(shape);
  for (std::size_t i = 0; i < a.size(); ++i)
    a.data()[i] = static_cast<T>(gen.uniform(lo, hi));
  return basic_tensor<T>(std::move(a), opt);
}

/// Uniform samples in [0, 1) from the thread's default generator.
template <element T = float>
basic_tensor<T> rand(const shape_type& shape, tensor_options opt = {}) {
  return rand<T>(shape, default_generator(), opt);
}

/// A tensor with a copy of an xtensor array.
template <element T>
basic_tensor<T> from(const xt::xarray<T>& a, tensor_options opt = {}) {
  return basic_tensor<T>(xarray<T>(a), opt);
}

/// A tensor from a flat vector in row-major order and a shape; throws when the sizes differ.
template <element T>
basic_tensor<T> from(const std::vector<T>& values, const shape_type& shape, tensor_options opt = {}) {
  if (values.size() != numel(shape))
    throw shape_error("from: " + std::to_string(values.size()) + " values do not fill shape " +
                      to_string(shape) + " (" + std::to_string(numel(shape)) + " elements)");
  auto a = detail::empty_array<T>(shape);
  std::copy(values.begin(), values.end(), a.data());
  return basic_tensor<T>(std::move(a), opt);
}

/// A 1-d tensor from a list: `from<float>({1, 2, 3})`.
template <element T>
basic_tensor<T> from(std::initializer_list<T> v, tensor_options opt = {}) {
  return from<T>(std::vector<T>(v), shape_type{v.size()}, opt);
}

/// A 2-d tensor from nested lists: `from<float>({{1, 2}, {3, 4}})`; rows must have equal length.
template <element T>
basic_tensor<T> from(std::initializer_list<std::initializer_list<T>> rows, tensor_options opt = {}) {
  const std::size_t r = rows.size();
  const std::size_t c = r ? rows.begin()->size() : 0;
  std::vector<T> flat;
  flat.reserve(r * c);
  for (const auto& row : rows) {
    if (row.size() != c)
      throw shape_error("from: ragged nested list: a row has " + std::to_string(row.size()) +
                        " values, the first " + std::to_string(c));
    flat.insert(flat.end(), row.begin(), row.end());
  }
  return from<T>(flat, shape_type{r, c}, opt);
}

/// A 0-d tensor holding one value.
template <element T>
basic_tensor<T> scalar_tensor(T v, tensor_options opt = {}) {
  return full<T>(shape_type{}, v, opt);
}

} // namespace grad
