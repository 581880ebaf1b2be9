#pragma once
/// @file ops/gemm_dispatch.hpp
/// The one call site through which ops reach the GEMM kernel.

#include <cstddef>

namespace grad::detail {

/// C = alpha op(A) op(B) + beta C (row-major), forwarded to the GEMM kernel.
template <class T>
inline void gemm_dispatch(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
                          std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  // TEMPORARY naive loop until kernels/gemm.hpp lands.
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      T acc = 0;
      for (std::size_t p = 0; p < k; ++p)
        acc += (ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
      c[i * ldc + j] = alpha * acc + (beta == T(0) ? T(0) : beta * c[i * ldc + j]);
    }
}

} // namespace grad::detail
