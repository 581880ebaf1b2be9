#!/usr/bin/env bash
# Install the Debian 12 packages grad needs to build, test and benchmark. Safe to re-run: when
# everything is already installed it only asks dpkg and returns in well under a second.
set -euo pipefail

packages=(
  dataset-fashion-mnist # Fashion-MNIST for examples 04/05 and their test
  fortunes              # English text for example 06 (its tests do not need it)
  cmake g++ clang           # build tools (clang++ for the sanitizer stage of scripts/test.sh)
  libxtensor-dev libxsimd-dev xtl-dev
  doctest-dev               # tests
  libbenchmark-dev          # benchmarks
  libomp-dev                # OpenMP for clang++ (g++ ships its own libgomp)
  zlib1g-dev                # optional .gz datasets
  libopenblas-dev           # benchmark peer
)

missing=()
for pkg in "${packages[@]}"; do
  # dpkg-query fails for packages it has never seen; both cases mean "not installed".
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages are installed"
  exit 0
fi

echo "install-deps: missing: ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "install-deps: not root and sudo is not available. As root, run:" >&2
  echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

"${sudo[@]}" apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
