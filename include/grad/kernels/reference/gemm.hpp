#pragma once
/// @file kernels/reference/gemm.hpp
/// Naive twin of grad::kernels::gemm: the definition the optimized kernel is tested against.

#include <cstddef>
#include <type_traits>

namespace grad::kernels::reference {

/// C = alpha * op(A) * op(B) + beta * C, row-major, by the textbook triple loop (same contract as
/// grad::kernels::gemm). Sums in double (long double for double) so it is the more accurate side of a
/// comparison.
template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
          std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  using acc_t = std::conditional_t<std::is_same_v<T, float>, double, long double>;
  // op(A)(i, p) = a[i * ars + p * acs], op(B)(p, j) = b[p * brs + j * bcs].
  const std::size_t ars = trans_a ? 1 : lda, acs = trans_a ? lda : 1;
  const std::size_t brs = trans_b ? 1 : ldb, bcs = trans_b ? ldb : 1;
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      acc_t sum = 0;
      if (alpha != T(0))
        for (std::size_t p = 0; p < k; ++p)
          sum += acc_t(a[i * ars + p * acs]) * acc_t(b[p * brs + j * bcs]);
      T& out = c[i * ldc + j];
      // beta == 0 must not read C: it may hold NaN.
      out = beta == T(0) ? T(acc_t(alpha) * sum) : T(acc_t(alpha) * sum + acc_t(beta) * acc_t(out));
    }
  }
}

/// Batched twin of grad::kernels::gemm_batched: the products applied one after another.
template <class T>
void gemm_batched(std::size_t batch, bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k,
                  T alpha, const T* a, std::size_t lda, std::size_t stride_a, const T* b, std::size_t ldb,
                  std::size_t stride_b, T beta, T* c, std::size_t ldc, std::size_t stride_c) {
  for (std::size_t i = 0; i < batch; ++i)
    gemm(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta,
         c + i * stride_c, ldc);
}

} // namespace grad::kernels::reference
