#pragma once
/// @file kernels/gemm.hpp
/// General matrix multiply C = alpha * op(A) op(B) + beta * C on row-major float/double matrices:
/// packed, cache-blocked and register-blocked after Goto & van de Geijn, "Anatomy of high-performance
/// matrix multiplication", ACM TOMS 34(3), 2008, and Van Zee & van de Geijn, "BLIS: a framework for
/// rapidly instantiating BLAS functionality", ACM TOMS 41(3), 2015.
///
/// Loop nest (one task = one rectangle of C, see gemm_tile):
///   jc (NC columns) -> pc (KC depth) -> pack B block (KC x NC, lives in L2)
///     -> ic (MC rows) -> pack A block (MC x KC) -> ir (MR rows: A sliver stays in L1)
///       -> jr (NR columns: B panels stream from L2) -> micro-kernel (MR x NR tile in registers).
/// With a wide NR (64 floats on AVX-512) a B panel of KC rows does not fit L1, so the roles of BLIS's
/// two inner loops are swapped: the small A sliver is the L1-resident operand.

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <type_traits>

#include "gemm_micro.hpp"
#include "gemm_pack.hpp"
#include "gemm_small.hpp"
#include "parallel.hpp"

namespace grad::detail::gemm_impl {
inline namespace GRAD_GEMM_ARCH_NS {

/// Cache blocking for T. Sized for this project's reference machine (48 KiB L1d, 2 MiB L2 per core):
/// an A sliver (MR x KC, 12 KiB) in L1, the B block (KC x NC, 1 MiB) plus the A block (MC x KC,
/// 384 KiB) in L2. The prototype's values (DESIGN.md section 5); a sweep of KC 256..768, MC 96..288
/// and NC 256..1024 found nothing better than 2% (within noise).
template <class T>
struct gemm_blocking {
  /// Depth of a block: 2 KiB of one row of A.
  static constexpr std::size_t kc = 2048 / sizeof(T);
  /// Rows of C per A block (a multiple of MR).
  static constexpr std::size_t mc = 192;
  /// Columns of C per B block (a multiple of NR).
  static constexpr std::size_t nc = 512;
};

/// Growable 64-byte aligned scratch memory, one per thread and use: packing buffers are allocated once
/// and reused by every later call on that thread.
class gemm_scratch {
public:
  /// At least `bytes` bytes, aligned to 64; previous contents are not kept.
  void* get(std::size_t bytes) {
    if (bytes > size_) {
      const std::size_t size = (bytes + 4095) / 4096 * 4096;
      ptr_.reset(static_cast<std::byte*>(std::aligned_alloc(64, size)));
      size_ = ptr_ ? size : 0;
      if (!ptr_)
        throw std::bad_alloc();
    }
    return ptr_.get();
  }

private:
  struct release {
    void operator()(std::byte* p) const noexcept { std::free(p); }
  };
  std::unique_ptr<std::byte, release> ptr_;
  std::size_t size_ = 0;
};

/// This thread's scratch number `which` (0: packed A, 1: packed B, 2: gathered vector of the GEMV path
/// or B^T of the narrow path).
inline gemm_scratch& thread_scratch(int which) {
  thread_local gemm_scratch s[3];
  return s[which];
}

/// One GEMM call's operands (see grad::kernels::gemm).
template <class T>
struct gemm_problem {
  bool ta, tb;
  bool ct; // C stored transposed: element (i, j) at c[j * ldc + i] (see transposed_problem)
  std::size_t m, n, k;
  T alpha;
  const T* a;
  std::size_t lda;
  const T* b;
  std::size_t ldb;
  T beta;
  T* c;
  std::size_t ldc;
};

/// ceil(x / y) * y.
constexpr std::size_t round_up(std::size_t x, std::size_t y) noexcept {
  return (x + y - 1) / y * y;
}
/// ceil(x / y).
constexpr std::size_t ceil_div(std::size_t x, std::size_t y) noexcept {
  return (x + y - 1) / y;
}

/// Splits [0, n) into ceil(n / max) near-equal blocks, each a multiple of `unit` except the last:
/// returns the block size. Equal blocks keep a K = 784 from becoming 512 + 272.
constexpr std::size_t balanced_block(std::size_t n, std::size_t max, std::size_t unit) noexcept {
  const std::size_t blocks = ceil_div(n, max);
  return std::min(max, round_up(ceil_div(n, blocks), unit));
}

/// Whether packing pays off (decided from the whole problem's shape).
struct gemm_packing {
  bool a, b;
};

/// Products below this many multiply-adds read A and B in place: packing costs more than it saves.
inline constexpr std::size_t gemm_nopack_volume = 32 * 32 * 32;

/// Packing decisions, measured on the reference machine (a copy costs about 0.2 ns per element there,
/// a large part of the 2 m flops each element of B takes when m is 64):
/// - row-major A is read in place: a sliver is MR rows read sequentially, already what the kernel
///   streams (packing it measured 2-6% slower);
/// - transposed A is packed when it is wide: in place, the kernel touches a new cache line per k step
///   per sliver. With m <= 128 floats the few lines of a storage row serve all slivers from L1, and
///   reading in place measured 5-30% faster than packing;
/// - B is packed when transposed (the kernel reads rows of op(B)); when larger than 32 KiB and either
///   reused by more than 4 slivers or spread over more than 256 KiB (in place, a B block has a row
///   per page: a TLB miss per k step, up to 2.7x slower at n = 1024); and without masked loads when a
///   ragged edge would make the kernel read past a row.
template <class T>
inline gemm_packing choose_packing(const gemm_problem<T>& pr) noexcept {
  const bool tiny = pr.m * pr.n * pr.k <= gemm_nopack_volume;
  const bool ragged = !has_masked_memops && pr.n % simd_width<T> != 0;
  const bool wide_a = pr.m * sizeof(T) > 512; // a storage row of transposed A spans > 8 cache lines
  // In place, a kernel call walks kc rows of B: fine while they span few pages (and a B that fits L1
  // gains nothing from a copy: 4-6% faster at 64^3).
  const std::size_t b_bytes = pr.k * pr.ldb * sizeof(T);
  const bool in_place_b = b_bytes <= (std::size_t(32) << 10) ||
                          (pr.m <= 4 * gemm_shape<T>::mr && b_bytes <= (std::size_t(256) << 10));
  return {pr.ta && wide_a && !tiny, pr.tb || ragged || !(tiny || in_place_b)};
}

/// Micro-tile of a problem whose C is stored transposed: computed into a local tile, then written
/// element by element (only used when C is narrow, so this is a small part of the work).
template <class T>
void store_transposed(const gemm_problem<T>& pr, micro_args<T> g, std::size_t rows, std::size_t cols,
                      std::size_t i0, std::size_t j0) noexcept {
  using sh = gemm_shape<T>;
  alignas(64) T tile[sh::mr * sh::nr];
  const T alpha = g.alpha, beta = g.beta;
  g.c = tile;
  g.ldc = sh::nr;
  g.alpha = T(1);
  g.beta = T(0);
  g.rows = rows;
  run_micro<T>(ceil_div(cols, sh::w), g);
  for (std::size_t j = 0; j < cols; ++j) {
    T* out = pr.c + (j0 + j) * pr.ldc + i0;
    for (std::size_t i = 0; i < rows; ++i)
      out[i] = beta == T(0) ? alpha * tile[i * sh::nr + j] : alpha * tile[i * sh::nr + j] + beta * out[i];
  }
}

/// C[i0:i1, j0:j1] of problem pr on the calling thread. The k blocking is the same for every
/// rectangle, so each element of C gets the same arithmetic whatever the split into tasks.
/// With a packed A and several column blocks, the depth loop goes outside the column loop and each
/// depth block of A is packed once for all column blocks (kept in L3) instead of once per column block:
/// packing transposed A costs about 0.6 ns per element on the reference machine, and at 2048^3 TN the
/// four repacks took 5% of the time. Each C element still gets its depth blocks in the same order.
template <class T>
void gemm_tile(const gemm_problem<T>& pr, gemm_packing pk, std::size_t i0, std::size_t i1, std::size_t j0,
               std::size_t j1) {
  using sh = gemm_shape<T>;
  using bl = gemm_blocking<T>;
  constexpr std::size_t w = sh::w, mr = sh::mr, nr = sh::nr;
  const std::size_t kcb = balanced_block(pr.k, bl::kc, 1);
  const std::size_t mcb = balanced_block(i1 - i0, bl::mc, mr);
  const std::size_t ncb = balanced_block(j1 - j0, bl::nc, nr);
  const bool hoist_a = pk.a && j1 - j0 > ncb; // pack each depth block of A once for all column blocks
  const std::size_t abytes = (hoist_a ? round_up(i1 - i0, mr) : round_up(mcb, mr)) * kcb * sizeof(T);
  T* abuf = pk.a ? static_cast<T*>(thread_scratch(0).get(abytes)) : nullptr;
  T* bbuf = pk.b ? static_cast<T*>(thread_scratch(1).get(kcb * round_up(ncb, nr) * sizeof(T))) : nullptr;
  micro_args<T> g{};
  g.ldc = pr.ldc;
  g.alpha = pr.alpha;

  // Depth block pc of the column block at jc (A already packed at abuf when hoist_a).
  const auto block = [&](std::size_t jc, std::size_t pc) {
    const std::size_t nc = std::min(ncb, j1 - jc);
    const std::size_t kc = std::min(kcb, pr.k - pc);
    g.kc = kc;
    g.beta = pc == 0 ? pr.beta : T(1); // later depth blocks add to the partial sums in C
    if (pk.b)
      pack_b(pr.tb, pr.tb ? pr.b + jc * pr.ldb + pc : pr.b + pc * pr.ldb + jc, pr.ldb, kc, nc, bbuf);
    for (std::size_t ic = i0; ic < i1; ic += mcb) {
      const std::size_t mc = std::min(mcb, i1 - ic);
      T* ablock = hoist_a ? abuf + (ic - i0) * kc : abuf;
      if (pk.a && !hoist_a) // only transposed A is ever packed
        pack_a(pr.a + pc * pr.lda + ic, pr.lda, mc, kc, ablock);
      for (std::size_t ir = 0; ir < mc; ir += mr) {
        const std::size_t rows = std::min(mr, mc - ir);
        if (pk.a) {
          g.a = ablock + ir * kc;
          g.ars = 1;
          g.acs = mr;
        } else {
          g.a = pr.ta ? pr.a + pc * pr.lda + ic + ir : pr.a + (ic + ir) * pr.lda + pc;
          g.ars = pr.ta ? 1 : pr.lda;
          g.acs = pr.ta ? pr.lda : 1;
        }
        T* crow = pr.ct ? nullptr : pr.c + (ic + ir) * pr.ldc + jc;
        for (std::size_t jr = 0; jr < nc; jr += nr) {
          const std::size_t cols = std::min(nr, nc - jr);
          const std::size_t vecs = ceil_div(cols, w);
          if (pk.b) {
            g.b = bbuf + jr * kc;
            g.bs = packed_b_width<T>(nc, jr);
          } else {
            g.b = pr.b + pc * pr.ldb + jc + jr;
            g.bs = pr.ldb;
          }
          g.nlast = cols - (vecs - 1) * w;
          if (!pr.ct) {
            g.c = crow + jr;
            g.rows = rows;
            run_micro<T>(vecs, g);
          } else {
            store_transposed(pr, g, rows, cols, ic + ir, jc + jr);
          }
        }
      }
    }
  };

  if (hoist_a) {
    for (std::size_t pc = 0; pc < pr.k; pc += kcb) {
      const std::size_t kc = std::min(kcb, pr.k - pc);
      for (std::size_t ic = i0; ic < i1; ic += mcb) // block by block: the same slivers as unhoisted
        pack_a(pr.a + pc * pr.lda + ic, pr.lda, std::min(mcb, i1 - ic), kc, abuf + (ic - i0) * kc);
      for (std::size_t jc = j0; jc < j1; jc += ncb)
        block(jc, pc);
    }
  } else {
    for (std::size_t jc = j0; jc < j1; jc += ncb)
      for (std::size_t pc = 0; pc < pr.k; pc += kcb)
        block(jc, pc);
  }
}

/// Products below this many multiply-adds run on one thread: a parallel region costs a few
/// microseconds, tens when the workers have gone to sleep (2^20 multiply-adds take about 10 us).
inline constexpr std::size_t gemm_parallel_volume = std::size_t(1) << 20;

/// How C is cut into tasks: mp row ranges by np column ranges.
struct gemm_split {
  std::size_t mp = 1, np = 1, rows = 0, cols = 0;
};

/// Chooses the task grid for `threads` threads. Each extra row range repacks B and each extra column
/// range repacks A, so the split minimises repacked elements; a transposed B costs more to pack.
/// Tasks are about 2 per thread so that a thread slowed down by another process hands work over.
template <class T>
inline gemm_split choose_split(const gemm_problem<T>& pr, int threads) noexcept {
  using sh = gemm_shape<T>;
  gemm_split s;
  s.rows = pr.m;
  s.cols = pr.n;
  if (threads <= 1 || pr.m * pr.n * pr.k < gemm_parallel_volume)
    return s;
  const std::size_t target = static_cast<std::size_t>(threads) * 2;
  const std::size_t max_mp = ceil_div(pr.m, sh::mr), max_np = ceil_div(pr.n, sh::w);
  double best = -1;
  for (std::size_t mp = 1; mp <= target; ++mp) {
    if (target % mp != 0)
      continue;
    const std::size_t np = target / mp;
    if (mp > max_mp || np > max_np)
      continue;
    const double cost = double(mp - 1) * double(pr.n) * (pr.tb ? 2.0 : 1.0) + double(np - 1) * double(pr.m);
    if (best < 0 || cost < best) {
      best = cost;
      s.mp = mp;
      s.np = np;
    }
  }
  s.rows = round_up(ceil_div(pr.m, s.mp), sh::mr);
  s.cols = ceil_div(pr.n, s.np);
  s.cols = round_up(s.cols, s.cols >= sh::nr ? sh::nr : sh::w);
  s.mp = ceil_div(pr.m, s.rows);
  s.np = ceil_div(pr.n, s.cols);
  return s;
}

/// C = beta * C for the degenerate products (k == 0 or alpha == 0); beta == 0 writes zeros.
template <class T>
inline void gemm_scale_c(std::size_t m, std::size_t n, T beta, T* c, std::size_t ldc) noexcept {
  for (std::size_t i = 0; i < m; ++i) {
    T* row = c + i * ldc;
    if (beta == T(0))
      std::fill(row, row + n, T(0));
    else if (beta != T(1))
      for (std::size_t j = 0; j < n; ++j)
        row[j] *= beta;
  }
}

/// The matrix-vector cases (m == 1 or n == 1), split over output chunks when large.
template <class T>
void gemm_vector(const gemm_problem<T>& pr, int threads) {
  const std::size_t k = pr.k;
  // Orient as y = alpha * (matrix op x) + beta * y, where the matrix rows are contiguous.
  if (pr.m == 1 ? pr.tb : !pr.ta) {
    // Dot products: rows of op(B)^T (m == 1) or of A (n == 1) against a vector along k.
    const std::size_t outs = pr.m == 1 ? pr.n : pr.m;
    const T* mat = pr.m == 1 ? pr.b : pr.a;
    const std::size_t ld = pr.m == 1 ? pr.ldb : pr.lda;
    const T* vec = pr.m == 1 ? pr.a : pr.b;
    const std::size_t inc = pr.m == 1 ? (pr.ta ? pr.lda : 1) : (pr.tb ? 1 : pr.ldb);
    const std::size_t incy = pr.m == 1 ? 1 : pr.ldc;
    if (inc != 1 && k > 1) { // gather the vector once so the kernel reads it contiguously
      T* tmp = static_cast<T*>(thread_scratch(2).get(k * sizeof(T)));
      for (std::size_t p = 0; p < k; ++p)
        tmp[p] = vec[p * inc];
      vec = tmp;
    }
    const std::size_t chunk = std::max<std::size_t>(64, round_up(gemm_parallel_volume / (k + 1), 4));
    const std::size_t tasks = outs * k >= gemm_parallel_volume ? ceil_div(outs, chunk) : 1;
    const std::size_t per = tasks == 1 ? outs : chunk;
    parallel_tasks(tasks, threads, [&](std::size_t t) {
      const std::size_t r0 = t * per, r1 = std::min(outs, r0 + per);
      gemv_dot(r1 - r0, k, pr.alpha, mat + r0 * ld, ld, vec, pr.beta, pr.c + r0 * incy, incy);
    });
    return;
  }
  // Scaled rows added up: rows of B (m == 1) or of the stored A^T (n == 1), each contiguous.
  const std::size_t outs = pr.m == 1 ? pr.n : pr.m;
  const T* mat = pr.m == 1 ? pr.b : pr.a;
  const std::size_t ld = pr.m == 1 ? pr.ldb : pr.lda;
  const T* vec = pr.m == 1 ? pr.a : pr.b;
  const std::size_t inc = pr.m == 1 ? (pr.ta ? pr.lda : 1) : (pr.tb ? 1 : pr.ldb);
  const std::size_t incy = pr.m == 1 ? 1 : pr.ldc;
  const std::size_t chunk = std::max<std::size_t>(256, round_up(gemm_parallel_volume / (k + 1), 64));
  const std::size_t tasks = outs * k >= gemm_parallel_volume ? ceil_div(outs, chunk) : 1;
  const std::size_t per = tasks == 1 ? outs : chunk;
  parallel_tasks(tasks, threads, [&](std::size_t t) {
    const std::size_t c0 = t * per, c1 = std::min(outs, c0 + per);
    gemv_axpy(c1 - c0, k, pr.alpha, vec, inc, mat + c0, ld, pr.beta, pr.c + c0 * incy, incy);
  });
}

/// The same product computed as C^T = op(B)^T op(A)^T: A and B trade places and C is written
/// transposed. Used for a thin C (e.g. 64 x 10) with A transposed: the micro-kernel's vectors then run
/// along the long side instead of being mostly padding.
template <class T>
gemm_problem<T> transposed_problem(const gemm_problem<T>& pr) noexcept {
  return {!pr.tb, !pr.ta, !pr.ct, pr.n,   pr.m,    pr.k, pr.alpha,
          pr.b,   pr.ldb, pr.a,   pr.lda, pr.beta, pr.c, pr.ldc};
}

/// Thin C with A not transposed: dot products of rows of A and of B^T (a transposed copy of the thin B
/// when B is not stored transposed), split over row blocks when large.
template <class T>
void gemm_narrow(const gemm_problem<T>& pr, int threads) {
  const T* bt = pr.b;
  std::size_t ldbt = pr.ldb;
  if (!pr.tb) {
    T* tmp = static_cast<T*>(thread_scratch(2).get(pr.n * pr.k * sizeof(T)));
    for (std::size_t j = 0; j < pr.n; ++j) // sequential writes; the thin B (n < W) stays in L1
      for (std::size_t p = 0; p < pr.k; ++p)
        tmp[j * pr.k + p] = pr.b[p * pr.ldb + j];
    bt = tmp;
    ldbt = pr.k;
  }
  const std::size_t rows = round_up(std::max<std::size_t>(16, gemm_parallel_volume / (pr.n * pr.k + 1)), 4);
  const std::size_t tasks = pr.m * pr.n * pr.k >= gemm_parallel_volume ? ceil_div(pr.m, rows) : 1;
  const std::size_t per = tasks == 1 ? pr.m : rows;
  parallel_tasks(tasks, threads, [&](std::size_t t) {
    const std::size_t r0 = t * per, r1 = std::min(pr.m, r0 + per);
    gemm_dot(r1 - r0, pr.n, pr.k, pr.alpha, pr.a + r0 * pr.lda, pr.lda, bt, ldbt, pr.beta, pr.c + r0 * pr.ldc,
             pr.ldc);
  });
}

/// Runs one product on up to `threads` threads.
template <class T>
void gemm_run(const gemm_problem<T>& pr, int threads) {
  if (pr.m == 0 || pr.n == 0)
    return;
  if (pr.k == 0 || pr.alpha == T(0)) {
    gemm_scale_c(pr.m, pr.n, pr.beta, pr.c, pr.ldc);
    return;
  }
  if (pr.m == 1 || pr.n == 1) {
    gemm_vector(pr, threads);
    return;
  }
  // A thin C (fewer columns than a micro-tile) wastes the broadcast kernel: a row of C that is one
  // vector gives only MR FMA chains (latency-bound), and a ragged last vector can be mostly padding
  // (n = 20 floats: 37% of the work). Measured 8-44% faster done another way when that is over 25%:
  // - A not transposed: dot products along k (rows of A against rows of B^T), nothing wasted;
  // - A transposed: C^T = op(B)^T op(A)^T, whose vectors run along m, where A is contiguous.
  constexpr std::size_t w = simd_width<T>;
  const bool thin = pr.n < gemm_shape<T>::nr && (pr.n <= w || 4 * pr.n < 3 * round_up(pr.n, w));
  if (thin && !pr.ta && pr.m >= 2 * w) {
    gemm_narrow(pr, threads);
    return;
  }
  const gemm_problem<T> run = thin && pr.ta && pr.m >= gemm_shape<T>::nr ? transposed_problem(pr) : pr;
  const gemm_packing pk = choose_packing(run);
  const gemm_split s = choose_split(run, threads);
  parallel_tasks(s.mp * s.np, threads, [&](std::size_t t) {
    const std::size_t i0 = (t / s.np) * s.rows, j0 = (t % s.np) * s.cols;
    gemm_tile(run, pk, i0, std::min(run.m, i0 + s.rows), j0, std::min(run.n, j0 + s.cols));
  });
}

} // namespace GRAD_GEMM_ARCH_NS
} // namespace grad::detail::gemm_impl

namespace grad::kernels {
inline namespace GRAD_GEMM_ARCH_NS {

/// C = alpha * op(A) * op(B) + beta * C, row-major; op(A) is (m x k), op(B) is (k x n), C is (m x n).
/// trans_a: A is stored (k x m) with leading dimension lda, else (m x k); likewise trans_b: B stored
/// (n x k). beta == 0 overwrites C without reading it (it may hold NaN); alpha == 0 or k == 0 gives
/// beta * C without reading A or B. Uses up to grad::get_num_threads() threads.
template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
          std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "gemm: T must be float or double");
  namespace gi = detail::gemm_impl;
  gi::gemm_run(gi::gemm_problem<T>{trans_a, trans_b, false, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc},
               get_num_threads());
}

/// Batched GEMM: for i in [0, batch), C_i = alpha * op(A_i) op(B_i) + beta * C_i with A_i = a + i *
/// stride_a (stride 0: the same A for every i, a broadcast), likewise B_i and C_i. With stride_c == 0
/// the products are applied to the one C in order (beta == 1 sums them, e.g. a broadcast weight's
/// gradient).
template <class T>
void gemm_batched(std::size_t batch, bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k,
                  T alpha, const T* a, std::size_t lda, std::size_t stride_a, const T* b, std::size_t ldb,
                  std::size_t stride_b, T beta, T* c, std::size_t ldc, std::size_t stride_c) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "gemm_batched: T must be float or double");
  namespace gi = detail::gemm_impl;
  const int threads = get_num_threads();
  auto item = [&](std::size_t i) {
    return gi::gemm_problem<T>{
        trans_a, trans_b,          false, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb,
        beta,    c + i * stride_c, ldc};
  };
  // Small products: whole matrices per task, so no parallel region is opened per product (and each
  // result is computed exactly as a single gemm would). Large ones parallelise inside each product.
  if (batch > 1 && stride_c != 0 && m * n * k < gi::gemm_parallel_volume) {
    const bool split = batch * m * n * k >= gi::gemm_parallel_volume;
    detail::parallel_tasks(split ? batch : 1, threads, [&](std::size_t t) {
      for (std::size_t i = split ? t : 0; i < (split ? t + 1 : batch); ++i)
        gi::gemm_run(item(i), 1);
    });
    return;
  }
  for (std::size_t i = 0; i < batch; ++i)
    gi::gemm_run(item(i), threads);
}

} // namespace GRAD_GEMM_ARCH_NS
} // namespace grad::kernels
