#!/usr/bin/env bash
# Builds the benchmarks in Release with -march=native, runs them against their peers in the same
# process (OpenBLAS; LibTorch when CMake finds it), and writes docs/performance.md: machine, date,
# commands, and each benchmark's summary table with the ratios.
#
#   bash benchmarks/run.sh                 every benchmark (about 15-25 minutes)
#   bash benchmarks/run.sh gemm conv       only bench_gemm and bench_conv (others keep their old section)
#   bash benchmarks/run.sh --assemble      only rewrite the report (sections of earlier runs, summary.md)
#   OUT=/tmp/perf.md bash benchmarks/run.sh  write somewhere else
#
# bench_gemm and bench_elementwise time grad and their reference (OpenBLAS, a plain copy) in
# alternating blocks inside each row (benchmarks/paired.hpp) and report the median of the per-round
# ratios; each repetition adds a row's rounds at another moment of the run (random interleaving).
#
# Environment: REPS (repetitions per benchmark, default 3), MIN_TIME (seconds, default 0.2; the paired
# benchmarks use their own blocks instead),
# BUILD (build directory, default build/bench), OUT (default docs/performance.md), BUSY=0 to skip the
# "one core busy" GEMM pass.
#
# Timing on a shared machine: run nothing else meanwhile. The script prints the load average before
# and after each benchmark into the report, so a disturbed run can be recognised.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD:-$root/build/bench}
out=${OUT:-$root/docs/performance.md}
reps=${REPS:-3}
min_time=${MIN_TIME:-0.2}
sections_dir="$build/sections"

all=(gemm gemm_busy elementwise mlp_step conv gpt_step gpt2_generate tape tape_nohook)
if (($# > 0)); then selected=("$@"); else selected=("${all[@]}"); fi
# `bash benchmarks/run.sh --assemble` only rewrites the report from the sections of earlier runs.
if [[ ${1:-} == --assemble ]]; then selected=(); fi

# Debian's OpenBLAS 0.3.21 does not recognise AVX-512 CPUs newer than it and falls back to a slow
# generic kernel; SkylakeX is its fastest kernel here. LibTorch's products go through the same library.
if grep -q avx512f /proc/cpuinfo 2>/dev/null; then
  export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX}
fi

if ((${#selected[@]} > 0)); then
echo "==> configure and build $build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGRAD_NATIVE=ON -DGRAD_BUILD_BENCHMARKS=ON \
  -DGRAD_BUILD_TESTS=OFF -DGRAD_BUILD_EXAMPLES=OFF >"$build.configure.log" 2>&1 ||
  { cat "$build.configure.log"; exit 1; }
targets=()
for b in "${selected[@]}"; do [[ $b == gemm_busy ]] || targets+=("bench_$b"); done
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"

fi
mkdir -p "$sections_dir"
load() { cut -d' ' -f1-3 /proc/loadavg; }

# Keeps the benchmark's own summary: every line after its last console row (rows end in a time unit
# and iterations), i.e. the markdown table and notes the program prints at the end.
summary() {
  # Google Benchmark colours its console output even through a pipe when a program installs its own
  # reporter: strip the escape codes first.
  sed 's/\x1b\[[0-9;]*m//g' "$1" | awk '/^[A-Za-z0-9_]+\/[^ ]* +[0-9.]+ *(ns|us|ms|s|%) / { last = NR }
       { line[NR] = $0 }
       END { for (i = last + 1; i <= NR; ++i) print line[i] }'
}

# run_one <section> <benchmark> [flags...]
run_one() {
  local section=$1 name=$2
  shift 2
  local exe="$build/benchmarks/bench_$name" log="$sections_dir/$section.log" sec="$sections_dir/$section.md"
  local cmd=("$exe" --benchmark_min_time="$min_time" --benchmark_repetitions="$reps"
    --benchmark_enable_random_interleaving=true --benchmark_color=false "$@")
  echo "==> ${cmd[*]}"
  local before after
  before=$(load)
  "${cmd[@]}" | tee "$log"
  after=$(load)
  {
    echo "### bench_$name${TITLE:+ ($TITLE)}"
    echo
    echo "Command: \`OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-} bench_$name --benchmark_min_time=$min_time" \
      "--benchmark_repetitions=$reps --benchmark_enable_random_interleaving=true $*\`" \
      "(load average before: $before, after: $after)"
    summary "$log"
    echo
  } >"$sec"
}

for b in "${selected[@]}"; do
  case $b in
    gemm_busy) ;; # part of gemm
    gemm)
      run_one gemm gemm
      if [[ ${BUSY:-1} != 0 ]]; then
        # Graceful degradation: a few shapes at 1 and 2 threads while another process keeps one core
        # busy (2 threads must not fall far below 1 thread, nor below OpenBLAS).
        yes >/dev/null &
        busy=$!
        trap 'kill $busy 2>/dev/null || true' EXIT
        TITLE="one core kept busy by another process" run_one gemm_busy gemm \
          --wall_time '--benchmark_filter=/(M256_K256_N256|M1024_K1024_N1024|M64_K784_N256|M2048_K512_N128)/NN/'
        kill $busy 2>/dev/null || true
        trap - EXIT
      fi
      ;;
    tape_nohook)
      # The same chains with the profiler hook compiled out (GRAD_PROFILER_HOOKS=0): against the
      # tape section, what the hook costs when no profiler runs.
      TITLE="profiler hook compiled out" run_one tape_nohook tape_nohook '--benchmark_filter=^tape/grad/'
      ;;
    *) run_one "$b" "$b" ;;
  esac
done

echo "==> write $out"
{
  cat <<EOF
# Performance

Measured numbers, each next to a peer measured **in the same run of the same program** (the machine
is shared, so only same-run ratios are meaningful). Produced by \`bash benchmarks/run.sh\`, which
builds the benchmarks in Release with \`-march=native\` and rewrites this file; the per-benchmark
commands are given with each table. bench_gemm and bench_elementwise go further: inside each row
they time grad and the reference (OpenBLAS, a plain copy) in alternating short blocks and report the
median of the per-round ratios (\`benchmarks/paired.hpp\`), because this VM's speed drifts by 30-40%
within seconds. Peers run at their fastest setting here:
\`OPENBLAS_CORETYPE=SkylakeX\` for OpenBLAS and for LibTorch (whose products go through OpenBLAS).

## Machine

- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores visible
- Memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
- OS: $(. /etc/os-release && echo "$PRETTY_NAME"), compiler: $(g++ --version | head -1)
- Date: $(date -u '+%Y-%m-%d %H:%M UTC')

EOF
  # Hand-written reading of the numbers (what meets its target, what does not and why), kept in
  # benchmarks/summary.md so that a re-run keeps it; update it when the numbers change.
  if [[ -f "$root/benchmarks/summary.md" ]]; then
    cat "$root/benchmarks/summary.md"
    echo
  fi
  echo "## Results"
  echo
  for b in "${all[@]}"; do
    if [[ -f "$sections_dir/$b.md" ]]; then cat "$sections_dir/$b.md"; fi
  done
} >"$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out"
