// Smallest program that proves grad::grad carries everything a user needs: the include path, C++20,
// xtensor with xsimd, OpenMP when grad was built with it, and a working tape. Exit code 0 = all arrived.
#include <grad/grad.hpp>

#include <cstdio>

#ifdef GRAD_HAS_OPENMP
#include <omp.h>
#endif

#ifndef XTENSOR_USE_XSIMD
#error "grad::grad should define XTENSOR_USE_XSIMD for its users"
#endif

int main() {
  // loss = sum(x^2), so dloss/dx = 2x.
  auto x = grad::from<float>({1.0f, 2.0f, 3.0f}, {.requires_grad = true});
  auto loss = grad::sum(x * x);
  loss.backward();

  const auto& dx = x.grad();
  const bool ok = loss.item() == 14.0f && dx(0) == 2.0f && dx(1) == 4.0f && dx(2) == 6.0f;

  int threads = 1;
#ifdef GRAD_HAS_OPENMP
  threads = omp_get_max_threads(); // links only if OpenMP came with grad::grad
#endif
  std::printf("grad %d.%d.%d consumer: loss = %g, dloss/dx = [%g, %g, %g], threads = %d: %s\n",
              GRAD_VERSION_MAJOR, GRAD_VERSION_MINOR, GRAD_VERSION_PATCH, static_cast<double>(loss.item()),
              static_cast<double>(dx(0)), static_cast<double>(dx(1)), static_cast<double>(dx(2)), threads,
              ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
