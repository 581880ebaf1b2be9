#pragma once
/// @file ops/gemm_dispatch.hpp
/// The one call site through which ops reach the GEMM kernel.

#include <cstddef>

#include "grad/kernels/gemm.hpp"

namespace grad::detail {

/// C = alpha op(A) op(B) + beta C (row-major), on grad's packed SIMD GEMM (kernels/gemm.hpp).
template <class T>
inline void gemm_dispatch(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
                          std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  kernels::gemm<T>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

} // namespace grad::detail
