#!/usr/bin/env bash
# Builds bench_gemm by hand (no CMake needed) and runs it against OpenBLAS in the same process.
# Usage: benchmarks/run_gemm.sh [extra Google Benchmark flags, e.g. --benchmark_filter=/t1$]
# Environment: CXX (default g++), MIN_TIME (default 0.2 s), REPS (default 3), OUT (binary path).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
cxx="${CXX:-g++}"
out="${OUT:-${TMPDIR:-/tmp}/bench_gemm}"
blas_inc=""
for d in /usr/include/x86_64-linux-gnu/openblas-pthread /usr/include/openblas /usr/include/x86_64-linux-gnu; do
  if [[ -f "$d/cblas.h" ]]; then blas_inc="$d"; break; fi
done
blas_flags=()
if [[ -n "$blas_inc" ]]; then
  blas_flags=(-isystem "$blas_inc" -DGRAD_BENCH_HAVE_OPENBLAS=1 -lopenblas)
else
  echo "run_gemm.sh: no cblas.h found, benchmarking grad alone" >&2
fi
"$cxx" -std=c++20 -O3 -march=native -DNDEBUG -DXTENSOR_USE_XSIMD -fopenmp -I"$root/include" \
  "$root/benchmarks/bench_gemm.cpp" -o "$out" -lbenchmark -lpthread "${blas_flags[@]}"
# OpenBLAS reads its core type at load time; bench_gemm also re-execs itself with it when unset.
if grep -q avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-SkylakeX}"; fi
echo "load before: $(uptime)"
"$out" --benchmark_min_time="${MIN_TIME:-0.2}" --benchmark_repetitions="${REPS:-3}" \
  --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=false "$@"
echo "load after: $(uptime)"
