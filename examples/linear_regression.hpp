#pragma once
// The model and training loop of examples/01_linear_regression.cpp, in a header so that
// tests/test_examples.cpp checks exactly the code the example runs.

#include <cstddef>
#include <cstdint>
#include <vector>

#include <grad/grad.hpp>

namespace examples {

/// Points (x, y) on the line y = b + w x with Gaussian noise.
struct line_data {
  grad::tensor x; // (N,)
  grad::tensor y; // (N,)
};

/// n points with x uniform in [lo, hi) and y = b + w x + noise, noise ~ N(0, noise_std^2).
inline line_data make_line_data(std::size_t n, double b, double w, double noise_std, double lo, double hi,
                                std::uint64_t seed) {
  grad::generator gen(seed); // a fixed seed: every run draws the same points
  grad::tensor x = grad::rand({n}, gen, {}, lo, hi);
  grad::tensor noise = grad::randn({n}, gen, {}, 0.0, noise_std);
  // No tensor here requires grad, so nothing is recorded: these are just numbers.
  return {x, b + w * x + noise};
}

/// Result of fit_line: the learned parameters and the loss before each step.
struct line_fit {
  float b = 0;
  float w = 0;
  std::vector<float> losses; // losses[s] = loss at the start of step s
};

/// Fits y = b + w x by full-batch gradient descent on the mean squared error, from b = w = 0.
/// on_step(step, loss, b, w) is called after each step's forward pass (for printing).
template <class OnStep>
line_fit fit_line(const grad::tensor& x, const grad::tensor& y, float lr, int steps, OnStep&& on_step) {
  // The parameters: tensors that require grad, so every op on them is recorded on the tape.
  grad::tensor b = grad::zeros({1}, {.requires_grad = true});
  grad::tensor w = grad::zeros({1}, {.requires_grad = true});
  line_fit fit;
  for (int step = 0; step < steps; ++step) {
    // Forward: the model's prediction for every x at once ((1,) broadcasts against (N,)), and the loss,
    // the mean of the squared errors: one number that is small when the line is close to the points.
    grad::tensor pred = b + w * x;                          // (N,)
    grad::tensor loss = grad::mean(grad::square(pred - y)); // ()
    // Backward: d(loss)/d(b) and d(loss)/d(w) land in b.grad() and w.grad().
    loss.backward();
    fit.losses.push_back(loss.item());
    on_step(step, loss.item(), b.value()(0), w.value()(0));
    {
      // Gradient descent: a small step against the gradient, the direction in which the loss falls
      // fastest. The update itself must not be recorded, hence no_grad.
      grad::no_grad guard;
      b.value() -= lr * b.grad();
      w.value() -= lr * w.grad();
    }
    // Gradients accumulate (add up) across backward calls: clear them for the next step.
    b.zero_grad();
    w.zero_grad();
  }
  fit.b = b.value()(0);
  fit.w = w.value()(0);
  return fit;
}

/// Fits without a per-step callback.
inline line_fit fit_line(const grad::tensor& x, const grad::tensor& y, float lr, int steps) {
  return fit_line(x, y, lr, steps, [](int, float, float, float) {});
}

/// The exact least-squares line (b, w), from the normal equations in double: what gradient descent
/// should converge to.
inline std::pair<double, double> least_squares_line(const grad::tensor& x, const grad::tensor& y) {
  const std::size_t n = x.numel();
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < n; ++i) {
    mx += x.data()[i];
    my += y.data()[i];
  }
  mx /= static_cast<double>(n);
  my /= static_cast<double>(n);
  double sxy = 0, sxx = 0;
  for (std::size_t i = 0; i < n; ++i) {
    sxy += (x.data()[i] - mx) * (y.data()[i] - my);
    sxx += (x.data()[i] - mx) * (x.data()[i] - mx);
  }
  const double w = sxy / sxx;
  return {my - w * mx, w};
}

} // namespace examples
