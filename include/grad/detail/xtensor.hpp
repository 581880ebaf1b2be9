#pragma once
/// @file detail/xtensor.hpp
/// The one place that includes xtensor (DESIGN.md section 1): storage and expressions of tensors.

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xio.hpp>
#include <xtensor/xnoalias.hpp>

namespace grad::detail {

/// Allocates an uninitialised row-major array of the given shape.
template <class T, class Shape>
inline xt::xarray<T> empty_array(const Shape& shape) {
  return xt::xarray<T>::from_shape(shape);
}

/// Allocates a zero-filled row-major array of the given shape.
template <class T, class Shape>
inline xt::xarray<T> zeros_array(const Shape& shape) {
  auto a = xt::xarray<T>::from_shape(shape);
  std::fill(a.data(), a.data() + a.size(), T(0));
  return a;
}

} // namespace grad::detail
