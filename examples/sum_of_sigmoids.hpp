#pragma once
// The model and training loop of examples/03_sum_of_sigmoids.cpp, in a header so that
// tests/test_examples.cpp checks exactly the code the example runs.
//
// The model: y = b0 + sum_i c_i * sigmoid(b_i + w_i * x), i = 1..K. Each term is a smooth step of
// height c_i, centred at x = -b_i / w_i, with steepness w_i; added up, enough steps can follow any
// continuous curve (the universal approximation theorem), which a straight line cannot.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <grad/grad.hpp>

namespace examples {

/// The curve the example fits: two and a half waves on a rising trend.
inline double wavy_curve(double x) {
  return std::sin(2 * x) + 0.4 * x;
}

/// Points of a curve: x (N, 1) and y (N, 1), a column each.
struct curve_data {
  grad::tensor x; // (N, 1)
  grad::tensor y; // (N, 1)
};

/// n points with x evenly spaced in [lo, hi] and y = wavy_curve(x) + noise, noise ~ N(0, noise_std^2).
inline curve_data make_curve_data(std::size_t n, double noise_std, double lo, double hi, std::uint64_t seed) {
  grad::generator gen(seed);
  grad::tensor x = grad::reshape(grad::linspace(lo, hi, n), {-1, 1});
  grad::tensor noise = grad::randn({n, 1}, gen, {}, 0.0, noise_std);
  grad::tensor y = grad::zeros({n, 1});
  for (std::size_t i = 0; i < n; ++i)
    y.data()[i] = static_cast<float>(wavy_curve(x.data()[i]) + noise.data()[i]);
  return {x, y};
}

/// y = b0 + sum_i c_i * sigmoid(b_i + w_i x) with K sigmoids.
struct sigmoid_model {
  grad::tensor w;  // (1, K) steepness of each step
  grad::tensor b;  // (1, K) offset: step i is centred at -b_i / w_i
  grad::tensor c;  // (1, K) height of each step
  grad::tensor b0; // (1, 1) overall offset

  /// K sigmoids with their centres spread at random over [lo, hi], random steepness and small heights.
  sigmoid_model(std::size_t k, double lo, double hi, grad::generator& gen) {
    // A random start breaks the symmetry: identical sigmoids would get identical gradients and stay
    // identical forever. Centres inside the data range make every step useful from the start.
    std::vector<float> wv(k), bv(k), cv(k);
    for (std::size_t i = 0; i < k; ++i) {
      const double centre = gen.uniform(lo, hi);
      const double slope = (gen.uniform() < 0.5 ? -1 : 1) * gen.uniform(1.0, 3.0);
      wv[i] = static_cast<float>(slope);
      bv[i] = static_cast<float>(-slope * centre);
      cv[i] = static_cast<float>(gen.normal(0.0, 0.1));
    }
    w = grad::from(wv, {1, k}, {.requires_grad = true});
    b = grad::from(bv, {1, k}, {.requires_grad = true});
    c = grad::from(cv, {1, k}, {.requires_grad = true});
    b0 = grad::zeros({1, 1}, {.requires_grad = true});
  }

  /// Predictions for a column of inputs x (N, 1).
  grad::tensor operator()(const grad::tensor& x) const {
    // x (N, 1) * w (1, K) broadcasts to (N, K): every sigmoid at every point, in one op per step.
    grad::tensor h = grad::sigmoid(x * w + b);         // (N, K)
    return grad::sum(h * c, 1, /*keepdim=*/true) + b0; // (N, 1)
  }

  /// The parameters, for the update loop.
  std::vector<grad::tensor> parameters() const { return {w, b, c, b0}; }
};

/// Mean squared error between predictions and targets.
inline grad::tensor squared_error(const grad::tensor& pred, const grad::tensor& y) {
  return grad::mean(grad::square(pred - y));
}

/// Trains any model with parameters() by full-batch gradient descent with momentum on the MSE;
/// returns the loss of each step. on_step(step, loss) is called after each forward pass.
///
/// Momentum (Polyak's heavy ball): each parameter moves by a velocity v = momentum * v - lr * grad, a
/// running sum of past gradients. Along a long narrow valley of the loss, where plain steps zig-zag, the
/// gradients that agree add up and the ones that flip sign cancel. (grad::optim will provide this as
/// an optimizer; here it is written out.)
template <class Model, class OnStep>
std::vector<float> train_momentum(Model& model, const grad::tensor& x, const grad::tensor& y, float lr,
                                  float momentum, int steps, OnStep&& on_step) {
  std::vector<grad::tensor> params = model.parameters(); // handles: they share the model's storage
  std::vector<xt::xarray<float>> velocity;
  for (const auto& p : params)
    velocity.push_back(xt::zeros<float>(p.value().shape()));
  std::vector<float> losses;
  for (int step = 0; step < steps; ++step) {
    grad::tensor loss = squared_error(model(x), y);
    loss.backward();
    losses.push_back(loss.item());
    on_step(step, loss.item());
    grad::no_grad guard;
    for (std::size_t i = 0; i < params.size(); ++i) {
      velocity[i] = momentum * velocity[i] - lr * params[i].grad();
      params[i].value() += velocity[i];
      params[i].zero_grad();
    }
  }
  return losses;
}

/// The straight line y = b + w x on a column x, as a baseline for the sigmoids.
struct line_model {
  grad::tensor w = grad::zeros({1, 1}, {.requires_grad = true}); // (1, 1)
  grad::tensor b = grad::zeros({1, 1}, {.requires_grad = true}); // (1, 1)
  /// Predictions for a column of inputs x (N, 1).
  grad::tensor operator()(const grad::tensor& x) const { return x * w + b; }
  /// The parameters, for the update loop.
  std::vector<grad::tensor> parameters() const { return {w, b}; }
};

/// Loss of a trained model on (x, y), without recording.
template <class Model>
float evaluate(const Model& model, const grad::tensor& x, const grad::tensor& y) {
  grad::no_grad guard;
  return squared_error(model(x), y).item();
}

} // namespace examples
