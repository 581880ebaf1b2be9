#!/usr/bin/env bash
# The demo command of the README: build the examples (Release, -march=native) and run them in order.
# Their output files (CSV, SVG, ...) land in build/demo/out.
#
#   bash scripts/demo.sh                    the examples listed below
#   bash scripts/demo.sh 02_seven_days      only the examples named on the command line
set -euo pipefail

# The examples to run, in this order. A name without an examples/<name>.cpp is skipped with a note.
examples=(01_linear_regression 02_seven_days 03_sum_of_sigmoids 08_flops)
if (($# > 0)); then
  examples=("$@")
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build/demo"
out="$build/out"
jobs=${GRAD_JOBS:-$(nproc)}

stage() { printf '\n==> [demo +%ss] %s\n' "$SECONDS" "$*"; }

stage "dependencies"
bash "$root/scripts/install-deps.sh"

present=()
for name in "${examples[@]}"; do
  if [[ -f "$root/examples/$name.cpp" ]]; then
    present+=("$name")
  else
    echo "demo: examples/$name.cpp does not exist (yet); skipping it"
  fi
done
if ((${#present[@]} == 0)); then
  echo "demo: none of the examples exist; nothing to do" >&2
  exit 1
fi

stage "configure $build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGRAD_NATIVE=ON \
  -DGRAD_BUILD_EXAMPLES=ON -DGRAD_BUILD_TESTS=OFF -DGRAD_BUILD_BENCHMARKS=OFF

# Only the listed programs: a broken or slow-to-build example outside the list cannot stop the demo.
stage "build ${present[*]} (-j$jobs)"
cmake --build "$build" --parallel "$jobs" --target "${present[@]}"

mkdir -p "$out"
cd "$out"
for name in "${present[@]}"; do
  stage "run $name"
  "$build/examples/$name"
done

stage "done: output files are in $out"
ls -l "$out"
