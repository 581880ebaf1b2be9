#pragma once
/// @file core/gradcheck.hpp
/// grad::gradcheck: compares the tape's gradients with central finite differences, in double.

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "grad/config.hpp"
#include "grad/core/factories.hpp"
#include "grad/ops/arithmetic.hpp"
#include "grad/ops/reduce.hpp"

namespace grad {

/// Tolerances of gradcheck: an element passes when |analytic - numeric| <= atol + rtol * |numeric|.
struct gradcheck_options {
  double eps = config::gradcheck_eps;   ///< finite-difference step
  double atol = config::gradcheck_atol; ///< absolute tolerance
  double rtol = config::gradcheck_rtol; ///< relative tolerance
  std::uint64_t seed = 1234;            ///< seed of the random projection of non-scalar outputs
};

/// Outcome of gradcheck: converts to true when every element passed; `message` says what failed.
struct gradcheck_result {
  bool ok = true;           ///< every checked element within tolerance
  double max_abs_error = 0; ///< largest |analytic - numeric| seen
  std::string message;      ///< the first failures, with input index, element, both values
  explicit operator bool() const noexcept { return ok; }
};

/// Checks the gradients of `f` at `inputs`: f maps the inputs to a tensor; a non-scalar output is
/// reduced to sum(out * r) with a fixed random r so every output element is checked. Only inputs
/// that require grad are checked (the others are constants). Works on dtensor (double), where
/// finite differences are accurate.
template <class F>
gradcheck_result gradcheck(F&& f, std::vector<dtensor> inputs, gradcheck_options opt = {}) {
  gradcheck_result res;
  dtensor weights;
  auto project = [&](const dtensor& out) -> dtensor {
    if (out.numel() == 1)
      return sum(out);
    if (!weights.defined()) {
      generator gen(opt.seed);
      weights = randn<double>(out.shape(), gen);
    }
    return sum(out * weights);
  };
  for (auto& x : inputs)
    if (x.requires_grad())
      x.zero_grad();
  {
    const dtensor out = std::invoke(f, inputs);
    if (!out.requires_grad()) {
      res.ok = false;
      res.message =
          "gradcheck: the output does not require grad (no input requires grad, or f ran under no_grad)";
      return res;
    }
    project(out).backward();
  }
  int reported = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    auto& x = inputs[i];
    if (!x.requires_grad())
      continue;
    const xt::xarray<double> analytic = x.grad();
    for (std::size_t e = 0; e < x.numel(); ++e) {
      double* p = x.data() + e;
      const double orig = *p;
      double lp, lm;
      {
        no_grad guard;
        *p = orig + opt.eps;
        lp = project(std::invoke(f, inputs)).item();
        *p = orig - opt.eps;
        lm = project(std::invoke(f, inputs)).item();
        *p = orig;
      }
      const double numeric = (lp - lm) / (2 * opt.eps);
      const double a = analytic.data()[e];
      const double err = std::abs(a - numeric);
      res.max_abs_error = std::max(res.max_abs_error, std::isnan(err) ? INFINITY : err);
      if (!(err <= opt.atol + opt.rtol * std::abs(numeric))) {
        res.ok = false;
        if (reported++ < 5) {
          char buf[200];
          std::snprintf(buf, sizeof buf,
                        "input %zu element %zu: analytic %.10g, numeric %.10g (error %.3g)\n", i, e, a,
                        numeric, err);
          res.message += buf;
        }
      }
    }
  }
  return res;
}

} // namespace grad
