#pragma once
// The models and training loop of examples/02_seven_days.cpp, in a header so that
// tests/test_examples.cpp checks exactly the code the example runs.
//
// The task: predict the next value of a series from the `lags` values before it with a linear model,
//   y_t = b + w_1 y_{t-1} + w_2 y_{t-2} + ... + w_lags y_{t-lags}.

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include <grad/grad.hpp>
#include <grad/utils/csv.hpp>

namespace examples {

/// A series cut into (previous values, next value) pairs, split in time into training and held-out.
struct lagged_data {
  grad::tensor x_train, y_train;            // (N_train, lags), (N_train, 1): standardised values
  grad::tensor x_test, y_test;              // (N_test, lags), (N_test, 1)
  std::vector<std::size_t> t_train, t_test; // index in the series of each target
  double mean = 0, std = 1;                 // of the training part of the series; value = mean + std * z
};

/// Builds the pairs for targets t = max_lags, ..., n-1 (the same targets whatever `lags` is, so models
/// with different lags are compared on the same points). The first `train_fraction` of the targets, in
/// time order, are for training; the rest are held out: the model is judged on a future it never saw.
/// Values are standardised (z = (v - mean) / std with the training part's mean and std) so that all
/// weights live on the same scale and one learning rate suits them all.
inline lagged_data make_lagged(const std::vector<double>& series, std::size_t lags, std::size_t max_lags,
                               double train_fraction) {
  if (lags == 0 || lags > max_lags || series.size() < max_lags + 2)
    throw grad::value_error("make_lagged: need 1 <= lags <= max_lags and more than max_lags + 1 values");
  const std::size_t n_targets = series.size() - max_lags;
  const auto n_train = static_cast<std::size_t>(std::floor(train_fraction * static_cast<double>(n_targets)));
  lagged_data d;
  // Statistics of the values the training pairs can see (everything before the first held-out target).
  const std::size_t seen = max_lags + n_train;
  for (std::size_t i = 0; i < seen; ++i)
    d.mean += series[i];
  d.mean /= static_cast<double>(seen);
  double var = 0;
  for (std::size_t i = 0; i < seen; ++i)
    var += (series[i] - d.mean) * (series[i] - d.mean);
  d.std = std::sqrt(var / static_cast<double>(seen));

  std::vector<float> xtr, ytr, xte, yte;
  for (std::size_t t = max_lags; t < series.size(); ++t) {
    const bool train = t - max_lags < n_train;
    auto& xs = train ? xtr : xte;
    for (std::size_t j = 1; j <= lags; ++j) // column j-1 holds y_{t-j}
      xs.push_back(static_cast<float>((series[t - j] - d.mean) / d.std));
    (train ? ytr : yte).push_back(static_cast<float>((series[t] - d.mean) / d.std));
    (train ? d.t_train : d.t_test).push_back(t);
  }
  d.x_train = grad::from(xtr, {ytr.size(), lags});
  d.y_train = grad::from(ytr, {ytr.size(), 1});
  d.x_test = grad::from(xte, {yte.size(), lags});
  d.y_test = grad::from(yte, {yte.size(), 1});
  return d;
}

/// A linear model y = b + x @ w on `lags` inputs.
struct linear_model {
  grad::tensor w; // (lags, 1)
  grad::tensor b; // (1,)

  /// Zero weights and bias, as parameters (requires_grad).
  explicit linear_model(std::size_t lags)
      : w(grad::zeros({lags, 1}, {.requires_grad = true})), b(grad::zeros({1}, {.requires_grad = true})) {}
  /// Predictions for the rows of x.
  grad::tensor operator()(const grad::tensor& x) const { return grad::matmul(x, w) + b; } // (N, 1)
};

/// Mean squared error between predictions and targets.
inline grad::tensor mse(const grad::tensor& pred, const grad::tensor& y) {
  return grad::mean(grad::square(pred - y));
}

/// Trains the model by full-batch gradient descent on the MSE; returns the training loss of each step.
/// on_step(step, loss) is called after each forward pass.
template <class OnStep>
std::vector<float> train_linear(linear_model& m, const grad::tensor& x, const grad::tensor& y, float lr,
                                int steps, OnStep&& on_step) {
  std::vector<float> losses;
  for (int step = 0; step < steps; ++step) {
    grad::tensor loss = mse(m(x), y);
    loss.backward();
    losses.push_back(loss.item());
    on_step(step, loss.item());
    grad::no_grad guard; // the update is not part of the model: do not record it
    m.w.value() -= lr * m.w.grad();
    m.b.value() -= lr * m.b.grad();
    m.w.zero_grad();
    m.b.zero_grad();
  }
  return losses;
}

/// Trains without a per-step callback.
inline std::vector<float> train_linear(linear_model& m, const grad::tensor& x, const grad::tensor& y,
                                       float lr, int steps) {
  return train_linear(m, x, y, lr, steps, [](int, float) {});
}

/// The MSE of the model on (x, y) in the series' own units (the standardised loss times std^2).
inline double mse_in_units(const linear_model& m, const grad::tensor& x, const grad::tensor& y, double std) {
  grad::no_grad guard; // evaluation only
  return static_cast<double>(mse(m(x), y).item()) * std * std;
}

/// The series shipped with the examples: yearly sunspot numbers 1700-2008 (see examples/data/README.md).
inline std::string sunspots_csv_path(const std::string& examples_dir) {
  return examples_dir + "/data/sunspots.csv";
}

/// Reads the value column of a two-column CSV (the second column, e.g. YEAR,SUNACTIVITY).
inline std::vector<double> read_series(const std::string& file, std::vector<double>* first_column = nullptr) {
  const grad::utils::csv_columns t = grad::utils::read_csv_columns(file);
  if (t.columns.size() < 2)
    throw grad::io_error("read_series: " + file + ": expected two columns (time, value), found " +
                         std::to_string(t.columns.size()));
  if (first_column)
    *first_column = t.columns[0];
  return t.columns[1];
}

} // namespace examples
