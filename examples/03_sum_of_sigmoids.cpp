// 03_sum_of_sigmoids: a first non-linear model, and why more parameters fit more.
//
// A straight line cannot follow a wavy curve, however well it is trained. This example fits
//   y = b0 + sum_i c_i * sigmoid(b_i + w_i * x),   i = 1..K,   sigmoid(z) = 1 / (1 + e^-z),
// a sum of K smooth steps, to 200 noisy points of y = sin(2x) + 0.4x on [-3, 3], for K = 1, 3, 10, 30,
// next to the line y = b + w*x. It is a neural network with one hidden layer of K units, written out.
//
// The computation is vectorised: x is a column (N, 1) and the parameters are rows (1, K), so
// x * w + b broadcasts to an (N, K) matrix, every sigmoid at every point, in a handful of tensor ops;
// multiplying by c and summing over axis 1 gives the (N, 1) predictions. backward() differentiates
// through all of it. Training is gradient descent with momentum (written out in sum_of_sigmoids.hpp).
//
// The loss falls as K grows, down to about 0.01, the variance of the noise we added: a model that
// goes below it has started to learn the noise itself.
//
// Run:   03_sum_of_sigmoids [--sigmoids 1,3,10,30] [--steps 3000] [--lr 0.1] [--momentum 0.9]
//                           [--seed 1] [--out DIR]
// Writes 03_sum_of_sigmoids_loss.csv/.svg (loss per step of every model) and
// 03_sum_of_sigmoids_fit.csv/.svg (the data and each model's curve).

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <grad/grad.hpp>
#include <grad/utils/csv.hpp>
#include <grad/utils/plot.hpp>
#include <grad/utils/progress.hpp>

#include "common.hpp"
#include "sum_of_sigmoids.hpp"

namespace {

// "1,3,10,30" -> {1, 3, 10, 30}; empty on a malformed list.
std::vector<std::size_t> parse_list(const std::string& s) {
  std::vector<std::size_t> r;
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t comma = std::min(s.find(',', start), s.size());
    const std::string item = s.substr(start, comma - start);
    std::size_t k = 0;
    const auto res = std::from_chars(item.data(), item.data() + item.size(), k);
    if (item.empty() || res.ec != std::errc() || res.ptr != item.data() + item.size() || k == 0)
      return {};
    r.push_back(k);
    start = comma + 1;
  }
  return r;
}

std::vector<double> column(const grad::tensor& t) {
  return std::vector<double>(t.data(), t.data() + t.numel());
}

} // namespace

int main(int argc, char** argv) {
  std::string sigmoids = "1,3,10,30";
  int steps = 3000;
  float lr = 0.1f, momentum = 0.9f;
  std::uint64_t seed = 1;
  std::filesystem::path out = ".";
  examples::arg_parser args("03_sum_of_sigmoids", "Fits a wavy curve with sums of K sigmoids for several K.");
  args.add("--sigmoids", sigmoids, "comma-separated numbers of sigmoids K");
  args.add("--steps", steps, "gradient-descent steps per model").add("--lr", lr, "learning rate");
  args.add("--momentum", momentum, "momentum (0 for plain gradient descent)");
  args.add("--seed", seed, "random seed of the data and the starting parameters");
  args.add("--out", out, "directory for the CSV and SVG files");
  if (!args.parse(argc, argv))
    return args.exit_code();
  if (steps < 1) {
    std::fprintf(stderr, "03_sum_of_sigmoids: --steps must be at least 1\n");
    return 2;
  }
  const std::vector<std::size_t> ks = parse_list(sigmoids);
  if (ks.empty()) {
    std::fprintf(stderr, "03_sum_of_sigmoids: --sigmoids wants positive numbers like 1,3,10,30, not \"%s\"\n",
                 sigmoids.c_str());
    return 2;
  }
  if (!examples::prepare_output_dir(out))
    return 1;

  const double noise = 0.1, lo = -3, hi = 3;
  const examples::curve_data data = examples::make_curve_data(200, noise, lo, hi, seed);
  std::printf("Fitting y = sin(2x) + 0.4x + noise (std %g) at %zu points on [%g, %g]: lr %g, momentum %g, %d "
              "steps per model\n\n",
              noise, data.x.numel(), lo, hi, static_cast<double>(lr), static_cast<double>(momentum), steps);

  std::vector<std::string> names;               // model names, for the table, the CSV and the legends
  std::vector<std::vector<double>> loss_curves; // loss per step of each model
  std::vector<std::vector<double>> predictions; // each model's curve at the data's x
  std::vector<std::size_t> n_params;
  {
    grad::utils::progress_bar bar((ks.size() + 1) * static_cast<std::size_t>(steps), {.label = "training"});
    // Saves a trained model's loss curve and its curve at the data's x, and prints its final loss and
    // its distance to the true curve: a loss below the noise variance can only come from fitting the
    // noise, and only the distance to the truth says whether the model got better or just memorised.
    auto record = [&](const std::string& name, const std::vector<float>& losses, const auto& model,
                      std::size_t params) {
      names.push_back(name);
      loss_curves.emplace_back(losses.begin(), losses.end());
      grad::no_grad guard; // evaluation only: nothing to record
      predictions.push_back(column(model(data.x)));
      n_params.push_back(params);
      double off = 0; // mean squared distance to the true curve
      for (std::size_t i = 0; i < predictions.back().size(); ++i) {
        const double d = predictions.back()[i] - examples::wavy_curve(data.x.data()[i]);
        off += d * d / static_cast<double>(predictions.back().size());
      }
      char line[128];
      std::snprintf(line, sizeof line, "%-8s %4zu parameters   final loss %.5f   off the true curve %.5f",
                    name.c_str(), params, static_cast<double>(losses.back()), off);
      bar.write(line);
    };
    auto progress = [&](const std::string& name) {
      return [&bar, name](int step, float loss) {
        // Formatting the loss costs more than a step of the small models: only now and then.
        if (step % 50 == 0)
          bar.tick(1, name + " loss " + std::to_string(loss));
        else
          bar.tick();
      };
    };

    examples::line_model line;
    record("line", examples::train_momentum(line, data.x, data.y, lr, momentum, steps, progress("line")),
           line, 2);
    for (std::size_t k : ks) {
      grad::generator gen(seed + k); // each model its own random start, reproducible
      examples::sigmoid_model model(k, lo, hi, gen);
      const std::string name = "K = " + std::to_string(k);
      record(name, examples::train_momentum(model, data.x, data.y, lr, momentum, steps, progress(name)),
             model, 3 * k + 1);
    }
  }
  std::printf(
      "\nThe noise variance is %.4f: the loss a model that found the true curve exactly would have.\n"
      "On new points from the same curve, a model's expected loss is that plus its distance off the true\n"
      "curve (the last column).\n",
      noise * noise);

  // Loss curves.
  std::vector<double> step_col;
  for (int s = 0; s < steps; ++s)
    step_col.push_back(s);
  std::vector<std::string> header = {"step"};
  std::vector<std::vector<double>> cols = {step_col};
  grad::utils::svg_plot loss_plot({.title = "Sum of sigmoids: training loss",
                                   .xlabel = "step",
                                   .ylabel = "MSE (log scale)",
                                   .log_y = true});
  for (std::size_t m = 0; m < names.size(); ++m) {
    header.push_back(names[m] == "line" ? "loss_line" : "loss_K" + names[m].substr(4));
    cols.push_back(loss_curves[m]);
    loss_plot.line(names[m], step_col, loss_curves[m]);
  }
  loss_plot.dashed("noise variance", std::vector<double>{0, static_cast<double>(steps - 1)},
                   std::vector<double>{noise * noise, noise * noise}, "#333333");
  grad::utils::write_csv(out / "03_sum_of_sigmoids_loss.csv", header, cols);
  loss_plot.save(out / "03_sum_of_sigmoids_loss.svg");

  // The data and every fit.
  const std::vector<double> xs = column(data.x), ys = column(data.y);
  std::vector<double> truth;
  for (double x : xs)
    truth.push_back(examples::wavy_curve(x));
  header = {"x", "y", "true"};
  cols = {xs, ys, truth};
  grad::utils::svg_plot fit_plot({.title = "Sum of sigmoids: fits", .xlabel = "x", .ylabel = "y"});
  fit_plot.points("data", xs, ys, "#999999");
  for (std::size_t m = 0; m < names.size(); ++m) {
    header.push_back(names[m] == "line" ? "line" : "K" + names[m].substr(4));
    cols.push_back(predictions[m]);
    fit_plot.line(names[m], xs, predictions[m]);
  }
  fit_plot.dashed("true curve", xs, truth, "#333333");
  grad::utils::write_csv(out / "03_sum_of_sigmoids_fit.csv", header, cols);
  fit_plot.save(out / "03_sum_of_sigmoids_fit.svg");
  std::printf("wrote 03_sum_of_sigmoids_loss.csv/.svg and 03_sum_of_sigmoids_fit.csv/.svg in %s\n",
              out.string().c_str());
}
