// 06_char_gpt: a small GPT that learns to write English one character at a time.
//
// The text is Debian's `fortunes` package (about 2.6 million characters of quotations, jokes and
// definitions in /usr/share/games/fortunes), or any UTF-8 file given with --data. Every distinct
// character gets an id (about 110 of them); the model reads `block` characters and, at every position,
// predicts a probability for each possible next character. Training lowers the cross-entropy: the
// average of -log p(the character that really came next), in nats. Guessing uniformly among 110
// characters scores log 110 = 4.7; knowing English letter frequencies ~3.3; this model reaches about 2.1
// after 1000 steps, where it has learned words, spacing and punctuation.
//
// The model is GPT-2's architecture scaled down (grad::models::gpt): token + position embeddings, then
// `layers` blocks of causal self-attention (each position looks at the earlier ones, split into `heads`
// heads) and a 4x-wide MLP, each with a LayerNorm before it and a residual connection around it, a
// final LayerNorm, and the token embedding reused as the output layer.
//
// What it teaches: how a transformer language model is trained (random windows of text, next-character
// targets, AdamW), why a held-out validation loss matters (the last 10% of the text is never trained
// on), saving and resuming a run (weights, optimizer moments, curves), and sampling with a KV cache.
//
// Run:   06_char_gpt [--data FILE|DIR] [--steps 1000] [--block 128] [--layers 4] [--heads 4]
//                    [--embd 128] [--batch 16] [--lr 1e-3] [--weight-decay 0.01] [--dropout 0]
//                    [--eval-every 100] [--eval-batches 20] [--seed 1] [--threads N] [--out DIR]
//                    [--resume 1] [--sample 400] [--temperature 0.8] [--prompt TEXT]
// Writes into DIR (default: the current directory): 06_char_gpt.safetensors (the weights, Hugging Face
// GPT-2 names), 06_char_gpt_optimizer.safetensors (AdamW's state), 06_char_gpt_vocab.json (the
// characters), 06_char_gpt_loss.csv and _val.csv (the curves) and 06_char_gpt_curve.svg. With --resume 1
// it continues from those files up to --steps in total (e.g. --steps 2000 after a 1000-step run).
// Weight decay 0.01 (torch.optim.AdamW's default) applies to every parameter, as
// `torch.optim.AdamW(model.parameters(), lr=1e-3)` does; it matters little at 1000 steps.

#include <cstdio>
#include <string>

#include <grad/grad.hpp>
#include <grad/kernels/parallel.hpp>
#include <grad/models/gpt.hpp>

#include "char_gpt.hpp"
#include "common.hpp"

int main(int argc, char** argv) {
  namespace cg = examples::char_gpt;
  const std::string name = "06_char_gpt";
  cg::options o;
  std::filesystem::path data = cg::default_fortunes_dir(), out = ".";
  int threads = 0, resume = 0;
  std::size_t sample_chars = 400;
  double temperature = 0.8;
  std::string prompt = "\n";
  examples::arg_parser args(name, "Trains a character-level GPT on English text and samples from it.");
  args.add("--data", data, "text file, or directory of text files (default: Debian's fortunes)")
      .add("--steps", o.steps, "total optimizer steps")
      .add("--block", o.block_size, "context length in characters")
      .add("--layers", o.n_layer, "transformer blocks")
      .add("--heads", o.n_head, "attention heads per block")
      .add("--embd", o.n_embd, "width of the model")
      .add("--batch", o.batch_size, "sequences per step")
      .add("--lr", o.lr, "AdamW learning rate")
      .add("--weight-decay", o.weight_decay, "AdamW decoupled weight decay")
      .add("--dropout", o.dropout, "dropout probability while training")
      .add("--eval-every", o.eval_every, "validation loss (and a checkpoint) every N steps")
      .add("--eval-batches", o.eval_batches, "batches in the validation sample")
      .add("--seed", o.seed, "random seed of the weights, the batches and the sample")
      .add("--threads", threads, "threads (0: all cores)")
      .add("--out", out, "directory for the checkpoint, CSV and SVG files")
      .add("--resume", resume, "1: continue from the checkpoint in --out")
      .add("--sample", sample_chars, "characters to generate at the end")
      .add("--temperature", temperature, "sampling temperature (lower: safer, higher: wilder)")
      .add("--prompt", prompt, "text the sample starts from");
  if (!args.parse(argc, argv))
    return args.exit_code();
  if (o.block_size < 1 || o.batch_size < 1 || !(o.lr > 0) || !(temperature > 0)) {
    std::fprintf(stderr, "%s: --block, --batch, --lr and --temperature must be positive\n", name.c_str());
    return 2;
  }
  grad::set_num_threads(threads);
  if (!examples::prepare_output_dir(out))
    return 1;

  try {
    const std::string text = cg::read_text(data);
    const cg::checkpoint_files files(out);
    // A resumed run keeps the vocabulary it was trained with.
    const grad::text::char_tokenizer tok =
        resume ? grad::text::char_tokenizer::load(files.vocab) : grad::text::char_tokenizer(text);
    const cg::corpus c = cg::split_text(text, tok);
    grad::generator gen(o.seed);
    grad::models::gpt model(cg::model_config(o, tok.vocab_size()), gen);
    std::printf(
        "%s: %zu characters from %s (vocabulary %zu): %zu to train on, %zu to validate\n"
        "GPT with %zu layers, %zu heads, %zu dims, block %zu: %zu parameters; batch %zu, AdamW lr %g, "
        "weight decay %g, %zu steps, threads %d\n\n",
        name.c_str(), c.train.size() + c.val.size(), data.string().c_str(), tok.vocab_size(), c.train.size(),
        c.val.size(), o.n_layer, o.n_head, o.n_embd, o.block_size, grad::nn::parameter_count(model),
        o.batch_size, o.lr, o.weight_decay, o.steps, grad::get_num_threads());
    std::fflush(stdout);

    const cg::history h =
        cg::train(model, c, tok, o, out, resume != 0, [&](std::size_t step, double, double val) {
          if (!o.progress)
            std::printf("step %zu: validation loss %.4f\n", step, val);
        });
    const std::size_t done = h.train_loss.size() - h.first_step;
    std::printf("\nvalidation loss %.4f nats/char after %zu steps",
                h.val_loss.empty() ? 0.0 : h.val_loss.back(), h.train_loss.size());
    if (done)
      std::printf(" (this run: %zu steps in %.1f s, %.2f steps/s)", done, h.seconds,
                  static_cast<double>(done) / h.seconds);
    std::printf("\n");
    const auto svg = cg::write_plot(out, h);
    std::printf("wrote %s, %s, %s, %s, %s and %s\n", files.model.string().c_str(),
                files.optimizer.string().c_str(), files.vocab.string().c_str(),
                files.loss_csv.string().c_str(), files.val_csv.string().c_str(), svg.string().c_str());

    model.eval();
    grad::generator sgen(o.seed + 7);
    std::printf("\nsample (temperature %g):\n%s%s\n", temperature, prompt.c_str(),
                cg::sample(model, tok, prompt, sample_chars, temperature, sgen).c_str());
  } catch (const grad::error& e) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), e.what());
    return 1;
  }
}
