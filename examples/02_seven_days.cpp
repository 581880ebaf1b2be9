// 02_seven_days: predict tomorrow from the last seven days, on real data.
//
// The idea of the seed path's "seven days" example: to predict the next value of a series, give a
// linear model the previous 7 values instead of only the last one,
//   1 value:   y_t = b + w * y_{t-1}
//   7 values:  y_t = b + w_1 * y_{t-1} + w_2 * y_{t-2} + ... + w_7 * y_{t-7}
// Both are trained by gradient descent on the mean squared error, as in 01_linear_regression, with the
// inputs as a matrix X (one row of 7 previous values per target) and the model b + X @ w.
//
// The series is real: the yearly sunspot numbers 1700-2008 (public domain, see examples/data/README.md),
// so a "day" here is a year. Sunspots rise and fall in a cycle of about 11 years, which one previous
// value cannot see but several can.
//
// A model is judged on data it was not trained on. The last 20% of the years are held out (a
// time-ordered split: the model never sees the future it is asked about); more inputs always lower the
// training loss, but only a lower held-out loss shows a real gain. The table at the end shows both as
// the window grows: past some size the held-out loss stops falling while the training loss keeps going
// down, the mark of over-fitting (learning the noise of the training years).
//
// Run:   02_seven_days [--data FILE] [--lags 7] [--steps 2000] [--lr 0.1] [--out DIR]
// Writes 02_seven_days_loss.csv/.svg (training loss per step) and 02_seven_days_predictions.csv/.svg.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <string>
#include <vector>

#include <grad/grad.hpp>
#include <grad/utils/csv.hpp>
#include <grad/utils/plot.hpp>
#include <grad/utils/progress.hpp>

#include "common.hpp"
#include "seven_days.hpp"

namespace {

// The shipped CSV: beside this source file (the usual case, also when run from another directory),
// else relative to the current directory.
std::filesystem::path default_data_file() {
  const std::filesystem::path candidates[] = {std::filesystem::path(__FILE__).parent_path() / "data" /
                                                  "sunspots.csv",
                                              std::filesystem::path("examples") / "data" / "sunspots.csv",
                                              std::filesystem::path("data") / "sunspots.csv"};
  for (const auto& p : candidates)
    if (std::filesystem::exists(p))
      return p;
  return candidates[0];
}

std::vector<double> predictions_in_units(const examples::linear_model& m, const grad::tensor& x,
                                         const examples::lagged_data& d) {
  grad::no_grad guard;
  const grad::tensor p = m(x);
  std::vector<double> r;
  for (std::size_t i = 0; i < p.numel(); ++i)
    r.push_back(d.mean + d.std * p.data()[i]);
  return r;
}

} // namespace

int main(int argc, char** argv) {
  std::filesystem::path data_file = default_data_file();
  std::size_t lags = 7;
  int steps = 2000;
  float lr = 0.1f;
  std::uint64_t seed = 0; // unused by this deterministic example; accepted for a uniform command line
  std::filesystem::path out = ".";
  examples::arg_parser args("02_seven_days",
                            "Predicts the next value of a series from the previous 7 with a linear model.");
  args.add("--data", data_file, "CSV file with a header and two columns: time, value");
  args.add("--lags", lags, "number of previous values the larger model sees");
  args.add("--steps", steps, "gradient-descent steps").add("--lr", lr, "learning rate");
  args.add("--seed", seed, "random seed (the models start from zero, so it changes nothing)");
  args.add("--out", out, "directory for the CSV and SVG files");
  if (!args.parse(argc, argv))
    return args.exit_code();
  if (steps < 1 || lags < 1) {
    std::fprintf(stderr, "02_seven_days: --steps must be at least 1 and --lags at least 1\n");
    return 2;
  }
  if (!examples::prepare_output_dir(out))
    return 1;

  std::vector<double> years;
  std::vector<double> series;
  try {
    series = examples::read_series(data_file.string(), &years);
  } catch (const grad::error& e) {
    std::fprintf(stderr, "%s\n(pass another file with --data FILE)\n", e.what());
    return 1;
  }
  // The same targets for every model: from the largest window the sweep below uses.
  const std::size_t max_lags = std::max<std::size_t>(lags, 12);
  if (series.size() < max_lags + 10) {
    std::fprintf(stderr, "%s: %zu values are too few for a window of %zu\n", data_file.string().c_str(),
                 series.size(), max_lags);
    return 1;
  }
  const examples::lagged_data d1 = examples::make_lagged(series, 1, max_lags, 0.8);
  const examples::lagged_data dk = examples::make_lagged(series, lags, max_lags, 0.8);
  const double u = dk.std * dk.std; // the models see standardised values: loss in units = loss * std^2

  std::printf("Series: %s, %zu values (%g to %g)\n", data_file.filename().string().c_str(), series.size(),
              years.front(), years.back());
  std::printf("Training targets %g-%g (%zu), held-out targets %g-%g (%zu); lr %g, %d steps\n\n",
              years[dk.t_train.front()], years[dk.t_train.back()], dk.t_train.size(),
              years[dk.t_test.front()], years[dk.t_test.back()], dk.t_test.size(), static_cast<double>(lr),
              steps);

  examples::linear_model m1(1), mk(lags);
  const std::vector<float> loss1 = examples::train_linear(m1, d1.x_train, d1.y_train, lr, steps);
  const std::vector<float> lossk = examples::train_linear(mk, dk.x_train, dk.y_train, lr, steps);

  // The simplest forecast of all, as a yardstick: next year = this year (no parameters).
  double persist_train = 0, persist_test = 0;
  for (std::size_t t : dk.t_train)
    persist_train +=
        (series[t] - series[t - 1]) * (series[t] - series[t - 1]) / static_cast<double>(dk.t_train.size());
  for (std::size_t t : dk.t_test)
    persist_test +=
        (series[t] - series[t - 1]) * (series[t] - series[t - 1]) / static_cast<double>(dk.t_test.size());

  const double tr1 = examples::mse_in_units(m1, d1.x_train, d1.y_train, d1.std);
  const double te1 = examples::mse_in_units(m1, d1.x_test, d1.y_test, d1.std);
  const double trk = examples::mse_in_units(mk, dk.x_train, dk.y_train, dk.std);
  const double tek = examples::mse_in_units(mk, dk.x_test, dk.y_test, dk.std);
  std::printf("%-34s %10s %13s   %s\n", "model", "train MSE", "held-out MSE",
              "(RMSE: typical error in sunspots)");
  std::printf("%-34s %10.1f %13.1f   (%.1f / %.1f)\n", "persistence: y_t = y_{t-1}", persist_train,
              persist_test, std::sqrt(persist_train), std::sqrt(persist_test));
  std::printf("%-34s %10.1f %13.1f   (%.1f / %.1f)\n", "1 value:  b + w y_{t-1}", tr1, te1, std::sqrt(tr1),
              std::sqrt(te1));
  const std::string name_k = std::to_string(lags) + " values: b + sum_j w_j y_{t-j}";
  std::printf("%-34s %10.1f %13.1f   (%.1f / %.1f)\n", name_k.c_str(), trk, tek, std::sqrt(trk),
              std::sqrt(tek));
  std::printf("\nWith %zu values the held-out error is %.0f%% of the 1-value model's.\n", lags,
              100 * tek / te1);
  std::printf("Weights of the %zu-value model (standardised units), w_1 .. w_%zu:", lags, lags);
  for (std::size_t j = 0; j < lags; ++j)
    std::printf(" %+.2f", static_cast<double>(mk.w.value()(j, 0)));
  std::printf("\n");

  // Over-fitting: a larger window always fits the training years better, not always the future.
  std::printf("\nHow the window size trades training fit for held-out error:\n%6s %10s %13s\n", "lags",
              "train MSE", "held-out MSE");
  const std::size_t sweep[] = {1, 2, 3, 5, 7, 9, 12};
  {
    grad::utils::progress_bar bar(std::size(sweep) * static_cast<std::size_t>(steps),
                                  {.label = "window sweep"});
    for (std::size_t l : sweep) {
      const examples::lagged_data d = examples::make_lagged(series, l, max_lags, 0.8);
      examples::linear_model m(l);
      examples::train_linear(m, d.x_train, d.y_train, lr, steps, [&](int, float) { bar.tick(); });
      char line[96];
      std::snprintf(line, sizeof line, "%6zu %10.1f %13.1f", l,
                    examples::mse_in_units(m, d.x_train, d.y_train, d.std),
                    examples::mse_in_units(m, d.x_test, d.y_test, d.std));
      bar.write(line);
    }
  }

  // Loss curves (in the series' units) and the held-out predictions.
  std::vector<double> step_col, l1_col, lk_col;
  for (int s = 0; s < steps; ++s) {
    step_col.push_back(s);
    l1_col.push_back(loss1[static_cast<std::size_t>(s)] * u);
    lk_col.push_back(lossk[static_cast<std::size_t>(s)] * u);
  }
  const std::string col_k = "loss_" + std::to_string(lags) + "_values";
  grad::utils::write_csv(out / "02_seven_days_loss.csv", {"step", "loss_1_value", col_k},
                         {step_col, l1_col, lk_col});
  grad::utils::svg_plot loss_plot({.title = "Training loss (MSE, sunspots^2)",
                                   .xlabel = "step",
                                   .ylabel = "MSE (log scale)",
                                   .log_y = true});
  loss_plot.line("1 value", step_col, l1_col).line(std::to_string(lags) + " values", step_col, lk_col);
  loss_plot.save(out / "02_seven_days_loss.svg");

  std::vector<double> t_col, actual, p1 = predictions_in_units(m1, d1.x_test, d1),
                                     pk = predictions_in_units(mk, dk.x_test, dk);
  for (std::size_t t : dk.t_test) {
    t_col.push_back(years[t]);
    actual.push_back(series[t]);
  }
  grad::utils::write_csv(out / "02_seven_days_predictions.csv",
                         {"time", "actual", "pred_1_value", "pred_" + std::to_string(lags) + "_values"},
                         {t_col, actual, p1, pk});
  grad::utils::svg_plot pred_plot(
      {.title = "Held-out years: actual and predicted", .xlabel = "year", .ylabel = "sunspot number"});
  pred_plot.line("actual", t_col, actual, "#333333");
  pred_plot.line("1 value", t_col, p1).line(std::to_string(lags) + " values", t_col, pk);
  pred_plot.save(out / "02_seven_days_predictions.svg");
  std::printf("\nwrote 02_seven_days_loss.csv/.svg and 02_seven_days_predictions.csv/.svg in %s\n",
              out.string().c_str());
}
