#pragma once
// What examples/06_char_gpt.cpp runs, in a header so that tests/test_examples_gpt.cpp runs exactly the
// same training code: reading the text, the 90/10 split, random batches, the training loop with its
// progress bar and validation loss, checkpoints that --resume continues from, sampling, and the curves.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include <grad/grad.hpp>
#include <grad/io/safetensors_format.hpp>
#include <grad/models/gpt.hpp>
#include <grad/utils/csv.hpp>
#include <grad/utils/plot.hpp>
#include <grad/utils/progress.hpp>

namespace examples::char_gpt {

// ------------------------------------------------------------------------------------------------
// The text.

/// Where Debian's `fortunes` package installs its quotations.
inline std::filesystem::path default_fortunes_dir() {
  return "/usr/share/games/fortunes";
}

/// The text of `path`: a file as it is, or a directory's regular files (not symlinks, not the `.dat`
/// index files of fortune(6)) concatenated in name order. Throws grad::io_error when nothing is there.
inline std::string read_text(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    for (const auto& e : fs::directory_iterator(path, ec))
      if (!e.is_symlink() && e.is_regular_file() && e.path().extension() != ".dat")
        files.push_back(e.path());
    std::sort(files.begin(), files.end());
  } else if (fs::is_regular_file(path, ec))
    files.push_back(path);
  std::string text;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    text += ss.str();
  }
  if (text.empty())
    throw grad::io_error("06_char_gpt: no text in " + path.string() +
                         " (install Debian's fortunes package, or pass a text file with --data FILE)");
  return text;
}

/// The token ids of a text, cut 90/10 into training and validation parts (the validation part is the
/// end of the text, never seen in training).
struct corpus {
  std::vector<std::int64_t> train; ///< first 90%
  std::vector<std::int64_t> val;   ///< last 10%
};

/// Encodes `text` with `tok` and splits it.
inline corpus split_text(const std::string& text, const grad::text::char_tokenizer& tok) {
  const std::vector<std::int64_t> ids = tok.encode(text);
  const std::size_t n = ids.size() * 9 / 10;
  return {std::vector<std::int64_t>(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(n)),
          std::vector<std::int64_t>(ids.begin() + static_cast<std::ptrdiff_t>(n), ids.end())};
}

// ------------------------------------------------------------------------------------------------
// The model and its training.

/// Hyper-parameters (what the command line sets).
struct options {
  std::size_t block_size = 128;  ///< characters of context the model sees
  std::size_t n_layer = 4;       ///< transformer blocks
  std::size_t n_head = 4;        ///< attention heads per block
  std::size_t n_embd = 128;      ///< width of the residual stream
  double dropout = 0.0;          ///< dropout probability in training
  std::size_t batch_size = 16;   ///< sequences per step
  double lr = 1e-3;              ///< AdamW learning rate (constant)
  double weight_decay = 0.01;    ///< AdamW decoupled weight decay (torch.optim.AdamW's default)
  std::size_t steps = 1000;      ///< total optimizer steps (a resumed run continues up to this)
  std::size_t eval_every = 100;  ///< validation loss every N steps (and at the end)
  std::size_t eval_batches = 20; ///< batches of the fixed validation sample
  std::uint64_t seed = 1;        ///< weights, batches, dropout
  bool progress = true;          ///< draw the progress bar
};

/// The model's configuration for a vocabulary of v characters.
inline grad::models::gpt_config model_config(const options& o, std::size_t v) {
  return {.vocab_size = v,
          .n_positions = o.block_size,
          .n_embd = o.n_embd,
          .n_layer = o.n_layer,
          .n_head = o.n_head,
          .dropout = o.dropout};
}

/// A batch: inputs x (B, T) and targets y (B T), the next character of each input position.
struct batch {
  grad::index_tensor x, y;
};

/// b random windows of t + 1 characters of ids, drawn from gen.
inline batch random_batch(const std::vector<std::int64_t>& ids, std::size_t b, std::size_t t,
                          grad::generator& gen) {
  if (ids.size() < t + 1)
    throw grad::value_error("06_char_gpt: the text part has " + std::to_string(ids.size()) +
                            " characters, fewer than block_size + 1 = " + std::to_string(t + 1));
  std::vector<std::int64_t> x(b * t), y(b * t);
  for (std::size_t i = 0; i < b; ++i) {
    const std::size_t start = gen.randint(ids.size() - t);
    std::copy_n(ids.begin() + static_cast<std::ptrdiff_t>(start), t,
                x.begin() + static_cast<std::ptrdiff_t>(i * t));
    std::copy_n(ids.begin() + static_cast<std::ptrdiff_t>(start + 1), t,
                y.begin() + static_cast<std::ptrdiff_t>(i * t));
  }
  return {grad::index_tensor(std::move(x), {b, t}), grad::index_tensor(std::move(y), {b * t})};
}

/// Mean cross-entropy (nats per character) of the model on a fixed sample of `ids` (the same windows
/// every time, so successive values are comparable), without the tape, in evaluation mode.
inline double evaluate(grad::models::gpt& model, const std::vector<std::int64_t>& ids, const options& o) {
  grad::no_grad guard;
  const bool was_training = model.is_training();
  model.eval();
  grad::generator gen(o.seed ^ 0x5eed5eedULL);
  double sum = 0;
  for (std::size_t i = 0; i < o.eval_batches; ++i) {
    const batch bt = random_batch(ids, o.batch_size, o.block_size, gen);
    const auto logits = model.forward(bt.x); // (B, T, V)
    sum += grad::cross_entropy(grad::reshape(logits, {-1, static_cast<std::int64_t>(logits.size(2))}), bt.y)
               .item();
  }
  model.train(was_training);
  return o.eval_batches ? sum / static_cast<double>(o.eval_batches) : 0.0;
}

/// What a run measured (a resumed run includes the earlier steps).
struct history {
  std::vector<double> train_loss; ///< loss of step 1, 2, ...
  std::vector<double> val_step;   ///< steps at which the validation loss was measured
  std::vector<double> val_loss;   ///< the validation losses
  double seconds = 0;             ///< wall time of this run's training steps
  std::size_t first_step = 0;     ///< steps already done when this run started (resume)
};

/// Names of the checkpoint files in a directory.
struct checkpoint_files {
  std::filesystem::path model, optimizer, vocab, loss_csv, val_csv;
  explicit checkpoint_files(const std::filesystem::path& dir, const std::string& name = "06_char_gpt")
      : model(dir / (name + ".safetensors")), optimizer(dir / (name + "_optimizer.safetensors")),
        vocab(dir / (name + "_vocab.json")), loss_csv(dir / (name + "_loss.csv")),
        val_csv(dir / (name + "_val.csv")) {}
};

/// The architecture as text, stored in the checkpoint so that a resume with other flags is refused.
inline std::string describe(const options& o, std::size_t v) {
  return "block_size=" + std::to_string(o.block_size) + " n_layer=" + std::to_string(o.n_layer) +
         " n_head=" + std::to_string(o.n_head) + " n_embd=" + std::to_string(o.n_embd) +
         " vocab=" + std::to_string(v);
}

/// Writes the model (with the step count and architecture as metadata), the AdamW state, the
/// vocabulary and the loss curves so far; every file is written atomically.
inline void save_checkpoint(const checkpoint_files& f, const grad::models::gpt& model,
                            const grad::optim::adamw<float>& opt, const grad::text::char_tokenizer& tok,
                            const options& o, const history& h) {
  grad::io::save(model, f.model,
                 {.metadata = {{"example", "06_char_gpt"},
                               {"step", std::to_string(h.train_loss.size())},
                               {"architecture", describe(o, tok.vocab_size())}}});
  grad::io::named_tensors<float> state;
  for (auto& [name, a] : opt.state_dict())
    state.emplace_back(name, grad::from<float>(a));
  grad::io::save(state, f.optimizer);
  tok.save(f.vocab);
  std::vector<double> steps(h.train_loss.size());
  for (std::size_t i = 0; i < steps.size(); ++i)
    steps[i] = static_cast<double>(i + 1);
  grad::utils::write_csv(f.loss_csv, {"step", "train_loss"}, {steps, h.train_loss});
  grad::utils::write_csv(f.val_csv, {"step", "val_loss"}, {h.val_step, h.val_loss});
}

/// Restores what save_checkpoint wrote into model, opt and h; returns the step reached. Throws
/// grad::error when the files are missing, malformed, or of another architecture.
inline std::size_t load_checkpoint(const checkpoint_files& f, grad::models::gpt& model,
                                   grad::optim::adamw<float>& opt, const options& o, std::size_t vocab,
                                   history& h) {
  const auto header = grad::io::inspect_safetensors(f.model);
  const auto arch = header.metadata.find("architecture");
  if (arch == header.metadata.end() || arch->second != describe(o, vocab))
    throw grad::value_error("06_char_gpt: --resume: the checkpoint " + f.model.string() + " is for " +
                            (arch == header.metadata.end() ? std::string("an unknown model") : arch->second) +
                            ", not " + describe(o, vocab));
  grad::io::load(model, f.model);
  grad::optim::named_arrays<float> sd;
  for (auto& [name, t] : grad::io::read_safetensors<float>(f.optimizer).tensors)
    sd.emplace_back(name, t.tensor.value());
  opt.load_state_dict(sd);
  const auto loss = grad::utils::read_csv_columns(f.loss_csv);
  const auto val = grad::utils::read_csv_columns(f.val_csv);
  h.train_loss = loss["train_loss"];
  h.val_step = val["step"];
  h.val_loss = val["val_loss"];
  return h.train_loss.size();
}

/// Trains (or, with resume, continues training) a char-level GPT on c for o.steps steps in total,
/// saving a checkpoint into `out` at every validation and at the end. on_eval(step, train, val) is
/// called after each validation. Returns the history and leaves the trained model in `model`.
inline history train(grad::models::gpt& model, const corpus& c, const grad::text::char_tokenizer& tok,
                     const options& o, const std::filesystem::path& out, bool resume,
                     const std::function<void(std::size_t, double, double)>& on_eval = {}) {
  grad::optim::adamw<float> opt(model.parameters(), {.lr = o.lr, .weight_decay = o.weight_decay});
  const checkpoint_files files(out);
  history h;
  std::size_t step = 0;
  if (resume)
    step = load_checkpoint(files, model, opt, o, tok.vocab_size(), h);
  h.first_step = step;
  model.train();
  std::optional<grad::utils::progress_bar> bar;
  if (o.progress && step < o.steps)
    bar.emplace(o.steps - step, grad::utils::progress_options{.label = "training", .unit = "step"});
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  double recent = 0;
  std::size_t recent_n = 0;
  char suffix[96] = "";
  while (step < o.steps) {
    // The batch of step s comes from its own seed, so a resumed run sees the batches a straight run would.
    grad::generator gen(o.seed * 1000003ULL + step);
    const batch bt = random_batch(c.train, o.batch_size, o.block_size, gen);
    const auto logits = model.forward(bt.x); // (B, T, V)
    const auto loss =
        grad::cross_entropy(grad::reshape(logits, {-1, static_cast<std::int64_t>(logits.size(2))}), bt.y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    ++step;
    const double l = loss.item();
    h.train_loss.push_back(l);
    recent += l;
    ++recent_n;
    const bool eval_now = (o.eval_every && step % o.eval_every == 0) || step == o.steps;
    if (eval_now) {
      const double v = evaluate(model, c.val, o);
      h.val_step.push_back(static_cast<double>(step));
      h.val_loss.push_back(v);
      save_checkpoint(files, model, opt, tok, o, h);
      std::snprintf(suffix, sizeof suffix, "loss %.3f val %.3f", recent / static_cast<double>(recent_n), v);
      recent = 0;
      recent_n = 0;
      if (on_eval)
        on_eval(step, h.train_loss.back(), v);
    } else if (recent_n % 10 == 0 || !suffix[0]) {
      std::snprintf(suffix, sizeof suffix, "loss %.3f", recent / static_cast<double>(recent_n));
    }
    if (bar)
      bar->tick(1, suffix);
  }
  h.seconds = std::chrono::duration<double>(clock::now() - t0).count();
  return h;
}

// ------------------------------------------------------------------------------------------------
// Sampling and output.

/// n characters continuing `prompt`, drawn one at a time from softmax(logits / temperature) with the
/// KV cache (when the context fills the model's n_positions, the cache restarts from the last half).
inline std::string sample(const grad::models::gpt& model, const grad::text::char_tokenizer& tok,
                          const std::string& prompt, std::size_t n, double temperature,
                          grad::generator& gen) {
  const std::size_t v = model.config().vocab_size, cap = model.config().n_positions;
  std::vector<std::int64_t> ids = tok.encode(prompt.empty() ? std::string("\n") : prompt);
  auto cache = model.make_cache(1, cap);
  std::vector<float> logits(v);
  std::vector<std::int64_t> feed(ids.end() - static_cast<std::ptrdiff_t>(std::min(ids.size(), cap)),
                                 ids.end());
  std::vector<std::int64_t> generated;
  for (std::size_t i = 0; i < n; ++i) {
    if (cache.length() + feed.size() > cap) { // context full: keep the last half
      cache.clear();
      const std::size_t keep = cap / 2;
      feed.assign(ids.end() - static_cast<std::ptrdiff_t>(keep), ids.end());
    }
    model.next_logits(cache, feed, feed.size(), logits.data());
    // p_j proportional to exp(logit_j / temperature); temperature < 1 sharpens, > 1 flattens
    const float mx = *std::max_element(logits.begin(), logits.end());
    std::vector<double> p(v);
    double z = 0;
    for (std::size_t j = 0; j < v; ++j)
      z += (p[j] = std::exp((logits[j] - mx) / temperature));
    double u = gen.uniform() * z;
    std::size_t next = v - 1;
    for (std::size_t j = 0; j < v; ++j)
      if ((u -= p[j]) < 0) {
        next = j;
        break;
      }
    ids.push_back(static_cast<std::int64_t>(next));
    generated.push_back(static_cast<std::int64_t>(next));
    feed.assign(1, static_cast<std::int64_t>(next));
  }
  return tok.decode(generated);
}

/// Writes <name>_curve.svg: training loss per step (raw and moving average) and validation loss.
inline std::filesystem::path write_plot(const std::filesystem::path& dir, const history& h,
                                        const std::string& name = "06_char_gpt") {
  std::vector<double> step, smooth;
  double avg = h.train_loss.empty() ? 0 : h.train_loss.front();
  for (std::size_t s = 0; s < h.train_loss.size(); ++s) {
    step.push_back(static_cast<double>(s + 1));
    avg = 0.95 * avg + 0.05 * h.train_loss[s];
    smooth.push_back(avg);
  }
  grad::utils::svg_plot plot({.title = name + ": loss (nats per character)",
                              .xlabel = "step",
                              .ylabel = "cross-entropy (log scale)",
                              .log_y = true});
  plot.line("training loss of each step", step, h.train_loss, "#c6dbef");
  plot.line("training loss, moving average", step, smooth, "#1f77b4");
  plot.line("validation loss", h.val_step, h.val_loss, "#d62728");
  plot.points("", h.val_step, h.val_loss, "#d62728");
  const auto path = dir / (name + "_curve.svg");
  plot.save(path);
  return path;
}

} // namespace examples::char_gpt
