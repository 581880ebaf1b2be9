// 01_linear_regression: the smallest model there is, trained the way every bigger one is.
//
// A *model* is a function with adjustable numbers, its *parameters*. Here it is a straight line,
// y = b + w*x, with two parameters: the intercept b and the slope w. We make 100 noisy points on the
// line b = 3, w = 2 and ask: starting from b = w = 0, can the program find the line from the points?
//
// The *loss* says how wrong the model is: the mean squared error (MSE), the average over the points of
// (prediction - y)^2. *Gradient descent* lowers it step by step: grad computes the gradient (the
// derivative of the loss with respect to each parameter) with loss.backward(), and each parameter moves
// a little against its gradient: b -= lr * db, w -= lr * dw, where lr is the learning rate.
//
// Run:   01_linear_regression [--steps 1000] [--lr 0.01] [--seed 42] [--out DIR]
// Writes 01_linear_regression_loss.csv (step, loss, b, w), 01_linear_regression_loss.svg and
// 01_linear_regression_fit.svg into the current directory (or DIR).

#include <cstdio>
#include <filesystem>
#include <vector>

#include <grad/grad.hpp>
#include <grad/utils/csv.hpp>
#include <grad/utils/plot.hpp>

#include "common.hpp"
#include "linear_regression.hpp"

int main(int argc, char** argv) {
  int steps = 1000;
  float lr = 0.01f;
  std::uint64_t seed = 42;
  std::filesystem::path out = ".";
  examples::arg_parser args("01_linear_regression", "Fits y = b + w*x to noisy points by gradient descent.");
  args.add("--steps", steps, "gradient-descent steps").add("--lr", lr, "learning rate");
  args.add("--seed", seed, "random seed of the data")
      .add("--out", out, "directory for the CSV and SVG files");
  if (!args.parse(argc, argv))
    return args.exit_code();
  if (steps < 1) {
    std::fprintf(stderr, "01_linear_regression: --steps must be at least 1\n");
    return 2;
  }
  if (!examples::prepare_output_dir(out))
    return 1;

  // The data: 100 points from the true line with noise of standard deviation 0.1.
  //
  // Why x in [-2, 2]: gradient descent on the MSE converges at a speed set by the loss's curvature, the
  // Hessian 2 * [[1, mean(x)], [mean(x), mean(x^2)]]. Each direction shrinks its error by a factor
  // (1 - lr * curvature) per step. For x centred on 0 the matrix is diagonal with curvatures 2 (for b)
  // and 2 * mean(x^2) = 8/3 (for w), so after 1000 steps at lr 0.01 the error is (1 - 0.02)^1000 =
  // e^-20 of where it started: fully converged. Had we taken x in [0, 5], b and w would be entangled
  // (a steeper line can be traded for a lower intercept); the slow direction would have curvature 0.46
  // and keep (1 - 0.0046)^1000 = 1% of its error: about 0.015 left in b after 1000 steps, as much as
  // the uncertainty the noise itself leaves (0.02). Centring the inputs is the first trick of training.
  const double true_b = 3, true_w = 2, noise = 0.1;
  const examples::line_data data = examples::make_line_data(100, true_b, true_w, noise, -2.0, 2.0, seed);

  std::printf("Fitting y = b + w*x to %zu points from b = %g, w = %g (noise std %g), lr %g, %d steps\n\n",
              data.x.numel(), true_b, true_w, noise, static_cast<double>(lr), steps);
  std::printf("%6s  %10s  %8s  %8s\n", "step", "loss", "b", "w");
  const examples::line_fit fit =
      examples::fit_line(data.x, data.y, lr, steps, [&](int step, float loss, float b, float w) {
        if (step % 100 == 0)
          std::printf("%6d  %10.6f  %8.4f  %8.4f\n", step, static_cast<double>(loss), static_cast<double>(b),
                      static_cast<double>(w));
      });

  // The best possible line for these points, computed exactly: gradient descent should land on it. It
  // differs from the true line only because of the noise.
  const auto [ls_b, ls_w] = examples::least_squares_line(data.x, data.y);
  std::printf("\nlearned:        b = %.4f   w = %.4f   (final loss %.6f)\n", static_cast<double>(fit.b),
              static_cast<double>(fit.w), static_cast<double>(fit.losses.back()));
  std::printf("least squares:  b = %.4f   w = %.4f   (exact solution for these points)\n", ls_b, ls_w);
  std::printf("true line:      b = %.4f   w = %.4f   (the noise variance %.4f is the loss a perfect model "
              "would have)\n",
              true_b, true_w, noise * noise);

  // The loss curve, as CSV (for a spreadsheet) and as a plot.
  std::vector<double> step_col, loss_col;
  for (std::size_t s = 0; s < fit.losses.size(); ++s) {
    step_col.push_back(static_cast<double>(s));
    loss_col.push_back(fit.losses[s]);
  }
  grad::utils::write_csv(out / "01_linear_regression_loss.csv", {"step", "loss"}, {step_col, loss_col});
  grad::utils::svg_plot loss_plot(
      {.title = "Linear regression: loss", .xlabel = "step", .ylabel = "MSE (log scale)", .log_y = true});
  loss_plot.line("training loss", step_col, loss_col).save(out / "01_linear_regression_loss.svg");

  grad::utils::svg_plot fit_plot({.title = "Linear regression: y = b + w*x", .xlabel = "x", .ylabel = "y"});
  const std::vector<double> ends = {-2.0, 2.0};
  fit_plot.points("data", data.x.value(), data.y.value());
  fit_plot.line("learned line", ends, std::vector<double>{fit.b - 2.0 * fit.w, fit.b + 2.0 * fit.w});
  fit_plot.dashed("true line y = 3 + 2x", ends, std::vector<double>{true_b - 2 * true_w, true_b + 2 * true_w},
                  "#333333");
  fit_plot.save(out / "01_linear_regression_fit.svg");
  std::printf("\nwrote %s, %s and %s\n", (out / "01_linear_regression_loss.csv").string().c_str(),
              (out / "01_linear_regression_loss.svg").string().c_str(),
              (out / "01_linear_regression_fit.svg").string().c_str());
}
