#pragma once
// What examples/04_fashion_mlp.cpp and examples/05_fashion_cnn.cpp share, in a header so that
// tests/test_examples_fashion.cpp runs exactly the training code the examples run: finding and loading
// Fashion-MNIST, the command-line flags, the training loop with its progress bar, the test accuracy, and
// the CSV/SVG curves.
//
// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, https://github.com/zalandoresearch/fashion-mnist):
// 70000 grey-scale 28x28 pictures of clothes in 10 classes (T-shirt, trouser, pullover, dress, coat,
// sandal, shirt, sneaker, bag, ankle boot), 60000 to train on and 10000 to test on. It has MNIST's
// format and size but is harder: on the data set's benchmark page a linear model gets about 84%,
// small convolutional networks 89-92%.

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <grad/grad.hpp>
#include <grad/kernels/parallel.hpp>
#include <grad/utils/csv.hpp>
#include <grad/utils/plot.hpp>
#include <grad/utils/progress.hpp>

#include "common.hpp"

namespace examples {

// ------------------------------------------------------------------------------------------------
// The data set.

/// Where Debian's dataset-fashion-mnist package installs Fashion-MNIST.
inline std::filesystem::path default_fashion_dir() {
  return "/usr/share/datasets/fashion-mnist";
}

/// Whether a directory holds Fashion-MNIST in a form this build can read.
enum class fashion_status {
  ok,        ///< all four files are there, readable
  missing,   ///< a file is missing
  needs_zlib ///< the files are gzip-compressed and this build has no zlib (GRAD_HAS_ZLIB)
};

/// Checks that `dir` has the four IDX files (plain or .gz) without reading them.
inline fashion_status check_fashion_dir(const std::filesystem::path& dir) {
  bool compressed_only = false;
  for (const char* name : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                           "t10k-labels-idx1-ubyte"}) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(dir / name, ec))
      continue;
    if (!std::filesystem::is_regular_file(dir / (std::string(name) + ".gz"), ec))
      return fashion_status::missing;
    compressed_only = true;
  }
  return compressed_only && !grad::data::has_zlib ? fashion_status::needs_zlib : fashion_status::ok;
}

/// Prints why the data cannot be used and how to get it (to stderr).
inline void explain_fashion_status(fashion_status s, const std::filesystem::path& dir,
                                   std::string_view program) {
  const std::string p(program), d = dir.string();
  if (s == fashion_status::missing)
    std::fprintf(stderr,
                 "%s: Fashion-MNIST is not in %s.\n"
                 "Install it with\n"
                 "    sudo apt-get install dataset-fashion-mnist\n"
                 "(it goes to %s), or download the four files\n"
                 "    train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz\n"
                 "    t10k-images-idx3-ubyte.gz  t10k-labels-idx1-ubyte.gz\n"
                 "from https://github.com/zalandoresearch/fashion-mnist into a directory and pass it with "
                 "--data DIR.\n",
                 p.c_str(), d.c_str(), default_fashion_dir().string().c_str());
  else if (s == fashion_status::needs_zlib)
    std::fprintf(stderr,
                 "%s: the Fashion-MNIST files in %s are gzip-compressed, but this program was built without "
                 "zlib.\nInstall zlib1g-dev and rebuild (CMake then defines GRAD_HAS_ZLIB), or gunzip the "
                 "files into a directory and pass it with --data DIR.\n",
                 p.c_str(), d.c_str());
}

/// Fashion-MNIST in memory: standardised pixels (standardize_pixels), labels 0-9 stored as floats (see
/// grad/data/dataset.hpp).
struct fashion_data {
  grad::tensor train_images; // (N, 784) flattened, or (N, 1, 28, 28) as images
  grad::tensor train_labels; // (N,)
  grad::tensor test_images;  // (M, 784) or (M, 1, 28, 28)
  grad::tensor test_labels;  // (M,)
};

/// The first n rows of images and labels (all of them when n is 0 or too large).
inline grad::data::batch<float> first_rows(const grad::tensor& images, const grad::tensor& labels,
                                           std::size_t n) {
  if (n == 0 || n >= images.size(0))
    return {images, labels};
  std::vector<std::size_t> idx(n);
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  return grad::data::tensor_dataset<float>(images, labels).get_batch(idx);
}

/// Mean and standard deviation of the 60000 Fashion-MNIST training images' pixels (scaled to [0, 1]).
inline constexpr float fashion_pixel_mean = 0.2860f, fashion_pixel_std = 0.3530f;

/// Standardises pixels in place, x -> (x - mean) / std, so that the inputs have mean 0 and standard
/// deviation 1 over the training set. Why: example 01 showed that centred inputs make gradient descent
/// converge faster; for a network the same holds for the first layer, and torchvision's
/// transforms.Normalize((0.2860,), (0.3530,)) does exactly this.
inline void standardize_pixels(grad::tensor& images) {
  float* p = images.data();
  for (std::size_t i = 0, n = images.numel(); i < n; ++i)
    p[i] = (p[i] - fashion_pixel_mean) / fashion_pixel_std;
}

/// Loads both splits from `dir`: flattened to (N, 784) for an MLP, or (N, 1, 28, 28) for a CNN, keeping
/// only the first train_limit training and test_limit test images (0: all), with standardised pixels.
/// Throws grad::io_error for missing or corrupted files.
inline fashion_data load_fashion(const std::filesystem::path& dir, bool flatten, std::size_t train_limit = 0,
                                 std::size_t test_limit = 0) {
  using grad::data::split;
  const auto train = grad::data::load_fashion_mnist(dir, split::train, {.flatten = flatten});
  const auto test = grad::data::load_fashion_mnist(dir, split::test, {.flatten = flatten});
  auto [tx, ty] = first_rows(train.images, train.labels, train_limit);
  auto [vx, vy] = first_rows(test.images, test.labels, test_limit);
  standardize_pixels(tx);
  standardize_pixels(vx);
  return {tx, ty, vx, vy};
}

// ------------------------------------------------------------------------------------------------
// The models.

/// The MLP of example 04: 784 pixels -> hidden[0] -> ... -> hidden[k-1] -> 10 class scores, with a ReLU
/// after every hidden layer. The weights are drawn from `seed`.
inline grad::nn::mlp make_fashion_mlp(const std::vector<std::size_t>& hidden, std::uint64_t seed) {
  grad::generator gen(seed);
  return grad::nn::mlp(28 * 28, hidden, 10, {}, {}, gen);
}

/// The CNN of example 05 on (B, 1, 28, 28) images:
///   conv 1->16 3x3 pad 1, relu, max-pool 2   -> (B, 16, 14, 14)
///   conv 16->32 3x3 pad 1, relu, max-pool 2  -> (B, 32, 7, 7)
///   flatten, linear 1568 -> 10               -> (B, 10)
/// The weights are drawn from `seed`.
inline auto make_fashion_cnn(std::uint64_t seed) {
  namespace nn = grad::nn;
  grad::generator gen(seed);
  // Arguments are evaluated in an unspecified order: build the layers that draw random numbers one by
  // one, so the weights do not depend on the compiler.
  nn::conv2d conv1(1, 16, 3, {.padding = 1}, gen);
  nn::conv2d conv2(16, 32, 3, {.padding = 1}, gen);
  nn::linear fc(32 * 7 * 7, 10, gen);
  return nn::sequential(conv1, nn::relu{}, nn::max_pool2d(2), conv2, nn::relu{}, nn::max_pool2d(2),
                        nn::flatten{}, fc);
}

/// The type of make_fashion_cnn's network.
using fashion_cnn = decltype(make_fashion_cnn(0));

/// "256,128" -> {256, 128}; an empty list for "" or anything malformed (a zero, a sign, a blank).
inline std::vector<std::size_t> parse_sizes(std::string_view s) {
  std::vector<std::size_t> r;
  while (!s.empty()) {
    const std::size_t comma = std::min(s.find(','), s.size());
    const std::string_view item = s.substr(0, comma);
    std::size_t v = 0;
    const auto res = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || res.ec != std::errc() || res.ptr != item.data() + item.size() || v == 0)
      return {};
    r.push_back(v);
    if (comma == s.size())
      break;
    s.remove_prefix(comma + 1);
    if (s.empty()) // a trailing comma
      return {};
  }
  return r;
}

/// {256, 128} -> "256,128" (or "256-128" with sep '-').
inline std::string format_sizes(const std::vector<std::size_t>& v, char sep = ',') {
  std::string r;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i)
      r += sep;
    r += std::to_string(v[i]);
  }
  return r;
}

// ------------------------------------------------------------------------------------------------
// Training.

/// Which optimizer updates the weights.
enum class optimizer_kind { sgd, adam, adamw };

/// The hyper-parameters of a training run (what the command line sets).
struct train_config {
  std::size_t batch_size = 64;                     ///< images per gradient step
  double lr = 1e-3;                                ///< learning rate
  int epochs = 3;                                  ///< passes over the training set
  optimizer_kind optimizer = optimizer_kind::adam; ///< sgd (with momentum), adam or adamw
  double momentum = 0.9;                           ///< momentum of sgd (ignored by adam and adamw)
  std::uint64_t seed = 1; ///< seed of the shuffling (make_fashion_* seed the weights)
  bool progress = true;   ///< draw a progress bar and print a line per epoch
};

/// What one epoch achieved.
struct epoch_result {
  int epoch = 0;               ///< 1, 2, ...
  double train_loss = 0;       ///< mean cross-entropy over the epoch's steps
  double test_accuracy = 0;    ///< fraction of test images classified correctly after the epoch
  double train_seconds = 0;    ///< wall time of the epoch's training steps
  double evaluate_seconds = 0; ///< wall time of the test-set evaluation
};

/// Everything a training run measured.
struct train_history {
  std::vector<double> step_loss;    ///< the loss of every step, in order
  std::vector<epoch_result> epochs; ///< one entry per epoch
};

/// Fraction of `images` that `net` puts in the class of `labels` (the class with the largest logit),
/// evaluated in batches without recording a graph. Leaves the net in evaluation mode.
template <class Net>
double accuracy(Net& net, const grad::tensor& images, const grad::tensor& labels,
                std::size_t batch_size = 500) {
  grad::no_grad guard; // evaluation needs no gradients: nothing is recorded, no memory is kept
  net.eval();
  grad::data::data_loader loader(grad::data::tensor_dataset<float>(images, labels),
                                 {.batch_size = batch_size});
  std::size_t correct = 0;
  for (const auto& [x, y] : loader) {
    const grad::tensor logits = net(x); // (B, 10)
    const std::size_t b = logits.size(0), c = logits.size(1);
    const float* l = logits.data();
    for (std::size_t i = 0; i < b; ++i) {
      const float* row = l + i * c;
      const auto best = static_cast<std::size_t>(std::max_element(row, row + c) - row);
      correct += static_cast<float>(best) == y.data()[i];
    }
  }
  return images.size(0) ? static_cast<double>(correct) / static_cast<double>(images.size(0)) : 0.0;
}

namespace detail {

// One epoch of minibatch gradient descent: for each batch, forward, loss, backward, optimizer step.
template <class Net, class Optimizer, class Loader>
double train_epoch(Net& net, Optimizer& opt, Loader& loader, int epoch, const train_config& cfg,
                   std::vector<double>& step_loss) {
  net.train();
  std::optional<grad::utils::progress_bar> bar;
  if (cfg.progress)
    bar.emplace(loader.dataset().size(),
                grad::utils::progress_options{.label = "epoch " + std::to_string(epoch) + "/" +
                                                       std::to_string(cfg.epochs),
                                              .unit = "img"});
  double sum = 0;
  std::size_t steps = 0;
  for (const auto& [x, y] : loader) {
    // Forward: the logits, one score per class for every image, and the loss: the cross-entropy
    // -log softmax(logits)[label], averaged over the batch. It is small when the true class gets
    // most of the probability.
    const grad::tensor logits = net(x); // (B, 10)
    const grad::tensor loss = grad::cross_entropy(logits, grad::data::class_indices(y, 10));
    // Backward: the gradient of the loss with respect to every weight. Gradients add up across
    // backward() calls, so clear the previous step's first.
    opt.zero_grad();
    loss.backward();
    // The optimizer moves every weight a little against its gradient.
    opt.step();

    const double l = loss.item();
    step_loss.push_back(l);
    sum += l;
    ++steps;
    if (bar) {
      char suffix[32];
      std::snprintf(suffix, sizeof suffix, "loss %.4f", sum / static_cast<double>(steps));
      bar->tick(x.size(0), suffix);
    }
  }
  return steps ? sum / static_cast<double>(steps) : 0.0;
}

} // namespace detail

/// Trains `net` on data.train_* for cfg.epochs epochs (cross-entropy loss, shuffled minibatches),
/// measuring the accuracy on data.test_* after each epoch; on_epoch(result) is called after each.
template <class Net, class OnEpoch>
train_history train_classifier(Net& net, const fashion_data& data, const train_config& cfg,
                               OnEpoch&& on_epoch) {
  using clock = std::chrono::steady_clock;
  const auto seconds_since = [](clock::time_point t) {
    return std::chrono::duration<double>(clock::now() - t).count();
  };
  // A new random order every epoch, reproducible from the seed: the model should not see the images in
  // the same sequence each time (nor all of one class in a row).
  grad::data::data_loader loader(grad::data::tensor_dataset<float>(data.train_images, data.train_labels),
                                 {.batch_size = cfg.batch_size, .shuffle = true, .seed = cfg.seed});
  const auto run = [&](auto& opt) {
    train_history h;
    for (int e = 1; e <= cfg.epochs; ++e) {
      epoch_result r{.epoch = e};
      const auto t0 = clock::now();
      r.train_loss = detail::train_epoch(net, opt, loader, e, cfg, h.step_loss);
      r.train_seconds = seconds_since(t0);
      const auto t1 = clock::now();
      r.test_accuracy = accuracy(net, data.test_images, data.test_labels);
      r.evaluate_seconds = seconds_since(t1);
      h.epochs.push_back(r);
      on_epoch(r);
    }
    net.train();
    return h;
  };
  // The three optimizers are different types (no virtual calls): build the one asked for and run.
  switch (cfg.optimizer) {
  case optimizer_kind::sgd: {
    grad::optim::sgd opt(net.parameters(), {.lr = cfg.lr, .momentum = cfg.momentum});
    return run(opt);
  }
  case optimizer_kind::adamw: {
    grad::optim::adamw opt(net.parameters(), {.lr = cfg.lr});
    return run(opt);
  }
  case optimizer_kind::adam:
    break;
  }
  grad::optim::adam opt(net.parameters(), {.lr = cfg.lr});
  return run(opt);
}

/// train_classifier without a per-epoch callback.
template <class Net>
train_history train_classifier(Net& net, const fashion_data& data, const train_config& cfg) {
  return train_classifier(net, data, cfg, [](const epoch_result&) {});
}

// ------------------------------------------------------------------------------------------------
// The command line and the output files.

/// The flags both examples take. Register them with add_fashion_flags, then call finish_fashion_flags.
struct fashion_flags {
  std::filesystem::path data = default_fashion_dir(); ///< --data
  std::size_t batch_size = 64;                        ///< --batch-size
  double lr = 1e-3;                                   ///< --lr
  int epochs = 3;                                     ///< --epochs
  std::string optimizer = "adam";                     ///< --optimizer sgd|adam|adamw
  double momentum = 0.9;                              ///< --momentum (sgd)
  std::uint64_t seed = 1;                             ///< --seed
  int threads = 0;                                    ///< --threads (0: all cores)
  std::filesystem::path out = ".";                    ///< --out
  std::size_t limit = 0;                              ///< --limit (0: all 60000 training images)
  std::size_t test_limit = 0;                         ///< --test-limit (0: all 10000 test images)
  std::filesystem::path eval;                         ///< --eval [FILE]: evaluate a saved model
};

/// Registers the flags of fashion_flags with `args` (their current values are the defaults).
inline void add_fashion_flags(arg_parser& args, fashion_flags& f) {
  args.add("--data", f.data, "directory with the Fashion-MNIST files")
      .add("--batch-size", f.batch_size, "images per gradient step")
      .add("--lr", f.lr, "learning rate: how far each step moves the weights")
      .add("--epochs", f.epochs, "passes over the training images")
      .add("--optimizer", f.optimizer, "sgd (with --momentum), adam or adamw")
      .add("--momentum", f.momentum, "momentum of sgd")
      .add("--seed", f.seed, "random seed of the initial weights and of the shuffling")
      .add("--threads", f.threads, "threads for the matrix products (0: all cores)")
      .add("--out", f.out, "directory for the model, CSV and SVG files")
      .add("--limit", f.limit, "train on the first N training images only (0: all)")
      .add("--test-limit", f.test_limit, "test on the first N test images only (0: all)")
      .add("--eval", f.eval, "only evaluate the saved model FILE (bare --eval: the one in --out)");
}

/// argv with a bare `--eval` (no file after it) spelled `--eval=-`, since every flag of arg_parser
/// takes a value. Keeps the strings alive; argc() and argv() are what parse() takes.
class eval_flag_argv {
public:
  /// Copies argv, rewriting a bare --eval.
  eval_flag_argv(int argc, char** argv) {
    for (int i = 0; i < argc; ++i) {
      const std::string_view a = argv[i];
      const bool bare = a == "--eval" && (i + 1 >= argc || std::string_view(argv[i + 1]).starts_with("--"));
      strings_.emplace_back(bare ? "--eval=-" : a);
    }
    for (auto& s : strings_)
      pointers_.push_back(s.data());
  }
  /// Number of arguments.
  int argc() const { return static_cast<int>(pointers_.size()); }
  /// The arguments.
  char** argv() { return pointers_.data(); }

private:
  std::vector<std::string> strings_;
  std::vector<char*> pointers_;
};

/// Checks the parsed flags and fills `cfg`; prints the problem and returns false on a bad value. A bare
/// --eval becomes `<out>/<program>.safetensors`.
inline bool finish_fashion_flags(fashion_flags& f, train_config& cfg, std::string_view program) {
  const auto fail = [&](const char* what) {
    std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(program.size()), program.data(), what);
    return false;
  };
  if (f.batch_size < 1)
    return fail("--batch-size must be at least 1");
  if (f.epochs < 1)
    return fail("--epochs must be at least 1");
  if (!(f.lr > 0))
    return fail("--lr must be positive");
  if (f.optimizer == "sgd")
    cfg.optimizer = optimizer_kind::sgd;
  else if (f.optimizer == "adam")
    cfg.optimizer = optimizer_kind::adam;
  else if (f.optimizer == "adamw")
    cfg.optimizer = optimizer_kind::adamw;
  else
    return fail("--optimizer must be sgd, adam or adamw");
  if (f.eval == "-")
    f.eval = f.out / (std::string(program) + ".safetensors");
  cfg.batch_size = f.batch_size;
  cfg.lr = f.lr;
  cfg.epochs = f.epochs;
  cfg.momentum = f.momentum;
  cfg.seed = f.seed;
  // Matrix products use this many threads (grad::set_num_threads(0) means all cores).
  grad::set_num_threads(f.threads);
  return true;
}

/// Checks and loads the data set as the flags say; prints what is wrong (how to install it when it is
/// missing) and returns false when it cannot be used: the caller exits with code 2.
inline bool load_fashion_or_explain(const fashion_flags& f, bool flatten, std::string_view program,
                                    fashion_data& out) {
  const fashion_status s = check_fashion_dir(f.data);
  if (s != fashion_status::ok) {
    explain_fashion_status(s, f.data, program);
    return false;
  }
  try {
    out = load_fashion(f.data, flatten, f.limit, f.test_limit);
  } catch (const grad::error& e) { // corrupted or unreadable files: say which, do not crash
    std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(program.size()), program.data(), e.what());
    return false;
  }
  return true;
}

/// "1.2 s", "3 min 05 s".
inline std::string format_seconds(double s) {
  char buf[48];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%.1f s", s);
  else
    std::snprintf(buf, sizeof buf, "%d min %02d s", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  return buf;
}

/// The line printed after each epoch.
inline void print_epoch(const epoch_result& r, int epochs) {
  std::printf("epoch %d/%d: train loss %.4f, test accuracy %.2f%%  (training %s, test %s)\n", r.epoch, epochs,
              r.train_loss, 100 * r.test_accuracy, format_seconds(r.train_seconds).c_str(),
              format_seconds(r.evaluate_seconds).c_str());
  std::fflush(stdout);
}

/// Writes <name>_loss.csv (step, epoch, loss), <name>_accuracy.csv (epoch, train_loss, test_accuracy,
/// train_seconds), <name>_loss.svg and <name>_accuracy.svg into `dir`; returns the file names.
inline std::vector<std::filesystem::path> write_curves(const std::filesystem::path& dir,
                                                       const std::string& name, const train_history& h,
                                                       std::size_t steps_per_epoch) {
  std::vector<double> step, epoch_pos, smooth;
  double avg = h.step_loss.empty() ? 0 : h.step_loss.front();
  for (std::size_t s = 0; s < h.step_loss.size(); ++s) {
    step.push_back(static_cast<double>(s));
    epoch_pos.push_back(static_cast<double>(s + 1) /
                        static_cast<double>(std::max<std::size_t>(1, steps_per_epoch)));
    // The loss of single steps is noisy (each batch is a different sample of 64 images); an exponential
    // moving average over about 50 steps shows the trend.
    avg = 0.98 * avg + 0.02 * h.step_loss[s];
    smooth.push_back(avg);
  }
  std::vector<double> ep, train_loss, acc, secs;
  for (const auto& r : h.epochs) {
    ep.push_back(r.epoch);
    train_loss.push_back(r.train_loss);
    acc.push_back(r.test_accuracy);
    secs.push_back(r.train_seconds);
  }
  const std::filesystem::path loss_csv = dir / (name + "_loss.csv"), acc_csv = dir / (name + "_accuracy.csv"),
                              loss_svg = dir / (name + "_loss.svg"), acc_svg = dir / (name + "_accuracy.svg");
  grad::utils::write_csv(loss_csv, {"step", "epoch", "loss"}, {step, epoch_pos, h.step_loss});
  grad::utils::write_csv(acc_csv, {"epoch", "train_loss", "test_accuracy", "train_seconds"},
                         {ep, train_loss, acc, secs});

  grad::utils::svg_plot loss_plot({.title = name + ": training loss",
                                   .xlabel = "epoch",
                                   .ylabel = "cross-entropy (log scale)",
                                   .log_y = true});
  loss_plot.line("loss of each step", epoch_pos, h.step_loss, "#c6dbef");
  loss_plot.line("moving average", epoch_pos, smooth, "#1f77b4");
  loss_plot.save(loss_svg);

  std::vector<double> acc_pct;
  for (double a : acc)
    acc_pct.push_back(100 * a);
  grad::utils::svg_plot acc_plot(
      {.title = name + ": test accuracy", .xlabel = "epoch", .ylabel = "accuracy (%)"});
  acc_plot.line("test accuracy", ep, acc_pct, "#1f77b4");
  acc_plot.points("measured after each epoch", ep, acc_pct, "#1f77b4");
  acc_plot.save(acc_svg);
  return {loss_csv, acc_csv, loss_svg, acc_svg};
}

} // namespace examples
