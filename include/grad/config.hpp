#pragma once
/// @file config.hpp
/// Version and compile-time defaults of grad: the single source of truth (CMake reads the version here).

#define GRAD_VERSION_MAJOR 0
#define GRAD_VERSION_MINOR 1
#define GRAD_VERSION_PATCH 0

#include <cstddef>

namespace grad::config {
/// Alignment in bytes of tensor storage and kernel buffers (one AVX-512 register, one cache line).
inline constexpr std::size_t alignment = 64;
/// Default finite-difference step of grad::gradcheck.
inline constexpr double gradcheck_eps = 1e-6;
/// Default absolute tolerance of grad::gradcheck.
inline constexpr double gradcheck_atol = 1e-5;
/// Default relative tolerance of grad::gradcheck.
inline constexpr double gradcheck_rtol = 1e-3;
} // namespace grad::config
