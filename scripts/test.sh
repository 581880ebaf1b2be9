#!/usr/bin/env bash
# The test command of the README: build everything with warnings as errors and run all tests.
#
#   bash scripts/test.sh              g++ Release, -march=native, -Werror: tests, examples, benchmarks
#                                     are built; CTest runs the tests (build/test)
#   bash scripts/test.sh --sanitize   clang++ -O1 with AddressSanitizer + UndefinedBehaviorSanitizer,
#                                     -Werror (so clang's warnings are checked too); tests only
#                                     (build/sanitize)
#
# The build keeps going past a test file that does not compile, so CTest still runs every test that
# did build; the script fails if the build or any test failed. GRAD_JOBS overrides the build's -j.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

mode=release
case "${1:-}" in
  "") ;;
  --sanitize) mode=sanitize ;;
  -h | --help)
    sed -n '2,11p' "${BASH_SOURCE[0]}"
    exit 0
    ;;
  *)
    echo "usage: bash scripts/test.sh [--sanitize]" >&2
    exit 2
    ;;
esac

# SECONDS: bash's clock since the script started, to show where the time goes.
stage() { printf '\n==> [test %s +%ss] %s\n' "$mode" "$SECONDS" "$*"; }

jobs=${GRAD_JOBS:-$(nproc)}
common=(-DGRAD_BUILD_TESTS=ON -DGRAD_WERROR=ON -DGRAD_NATIVE=ON)
if [[ $mode == sanitize ]]; then
  build="$root/build/sanitize"
  config=(-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g"
    -DGRAD_SANITIZE=ON -DGRAD_BUILD_EXAMPLES=OFF -DGRAD_BUILD_BENCHMARKS=OFF)
  # Test programs also run at build time (doctest lists their test cases), so export these first.
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:check_initialization_order=1:strict_init_order=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
else
  build="$root/build/test"
  config=(-DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Release -DGRAD_BUILD_EXAMPLES=ON -DGRAD_BUILD_BENCHMARKS=ON)
fi

stage "dependencies"
bash "$root/scripts/install-deps.sh"

stage "configure $build"
cmake -S "$root" -B "$build" "${common[@]}" "${config[@]}"

# Keep going after a failed compile so one broken file does not hide the results of the others.
keep_going=()
case "$(sed -n 's/^CMAKE_GENERATOR:INTERNAL=//p' "$build/CMakeCache.txt")" in
  Ninja*) keep_going=(-- -k 0) ;;
  *Makefiles*) keep_going=(-- -k) ;;
esac

stage "build (-j$jobs)"
build_ok=1
failed_targets=()
cmake --build "$build" --parallel "$jobs" "${keep_going[@]}" 2>&1 | tee "$build/build.log" || build_ok=0
if ((!build_ok)); then
  # The targets named in make's "***" / ninja's "FAILED:" lines.
  mapfile -t failed_targets < <(grep -E '^(FAILED: |g?make(\[[0-9]+\])?: \*\*\*)' "$build/build.log" |
    grep -oE 'CMakeFiles/[A-Za-z0-9_]+\.dir/' | sed -E 's|CMakeFiles/(.*)\.dir/|\1|' | sort -u)
  # A test program that failed to build may still have its binary and test list from an earlier build.
  # Drop the list, so CTest reports "<target>/NOT_BUILT" as failed instead of running the stale binary.
  for target in "${failed_targets[@]}"; do
    rm -f "$build/tests/${target}_tests.cmake"
  done
fi

stage "ctest"
test_ok=1
ctest --test-dir "$build" --output-on-failure -j2 --timeout 600 || test_ok=0

if ((build_ok && test_ok)); then
  stage "PASSED"
  exit 0
fi
((build_ok)) || echo "test.sh [$mode]: the BUILD FAILED for: ${failed_targets[*]:-?} (errors above, log in $build/build.log)" >&2
((test_ok)) || echo "test.sh [$mode]: some TESTS FAILED (see the CTest summary above)" >&2
stage "FAILED"
exit 1
