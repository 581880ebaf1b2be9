#pragma once
// The code of example 07 (gpt2-generate), in a header so that tests/test_examples_gpt2_generate.cpp
// runs exactly what the program runs, on a tiny random checkpoint.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <grad/generate/generate.hpp>
#include <grad/kernels/parallel.hpp>
#include <grad/models/gpt_pretrained.hpp>
#include <grad/text/gpt2_tokenizer.hpp>

#include "common.hpp"

namespace examples {

/// The command line of 07_gpt2_generate.
struct gpt2_generate_options {
  std::filesystem::path model;     ///< Hugging Face GPT-2 directory (config.json + model.safetensors)
  std::filesystem::path tokenizer; ///< vocab.json + merges.txt or encoder.json + vocab.bpe; empty: see below
  std::string prompt = "Hello, I'm a language model,";
  std::size_t max_new_tokens = 50;
  int do_sample = 0; ///< 0 or 1 (a bare --do-sample sets it)
  double temperature = 1.0;
  std::size_t top_k = 50;
  double top_p = 1.0;
  std::size_t num_beams = 1;
  double length_penalty = 1.0;
  std::size_t no_repeat_ngram_size = 0;
  double repetition_penalty = 1.0;
  std::size_t num_return_sequences = 1;
  std::uint64_t seed = 0;
  int threads = 0; ///< 0: OpenMP's default
};

/// argv with bare boolean flags (`--do-sample`) rewritten as `--do-sample=1` for arg_parser.
class bool_flag_argv {
public:
  /// Copies argv, rewriting the bare flags named in `flags`.
  bool_flag_argv(int argc, char** argv, std::vector<std::string_view> flags) {
    for (int i = 0; i < argc; ++i) {
      std::string a = argv[i];
      for (auto f : flags)
        if (a == f)
          a += "=1";
      strings_.push_back(std::move(a));
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

/// Parses the command line into `o`; false when the program should exit with args.exit_code().
inline bool parse_gpt2_generate_args(int argc, char** argv, gpt2_generate_options& o, int& exit_code) {
  arg_parser args("07_gpt2_generate", "Generates text with a GPT-2 checkpoint (Hugging Face format).");
  args.add("--model", o.model, "directory with config.json and model.safetensors (e.g. a download of gpt2)");
  args.add("--tokenizer", o.tokenizer,
           "directory with vocab.json + merges.txt (default: the model's, else grad's)");
  args.add("--prompt", o.prompt, "text to continue");
  args.add("--max-new-tokens", o.max_new_tokens, "tokens to generate");
  args.add("--do-sample", o.do_sample,
           "sample (1) instead of picking the most likely token (0); bare flag = 1");
  args.add("--temperature", o.temperature, "sampling: < 1 sharper, > 1 flatter");
  args.add("--top-k", o.top_k, "sampling: keep the k most likely tokens (0 = all)");
  args.add("--top-p", o.top_p, "sampling: keep the most likely tokens holding this probability");
  args.add("--num-beams", o.num_beams, "beam search width (1 = no beam search)");
  args.add("--length-penalty", o.length_penalty, "beam search: > 0 favours longer, < 0 shorter sequences");
  args.add("--no-repeat-ngram-size", o.no_repeat_ngram_size, "never repeat an n-gram of this size (0 = off)");
  args.add("--repetition-penalty", o.repetition_penalty,
           "penalize tokens already in the text (1 = off, 1.2 typical)");
  args.add("--num-return-sequences", o.num_return_sequences,
           "sequences to print (<= num-beams, or sampling)");
  args.add("--seed", o.seed, "seed of the sampling generator");
  args.add("--threads", o.threads, "threads (0 = all cores)");
  bool_flag_argv a(argc, argv, {"--do-sample"});
  if (!args.parse(a.argc(), a.argv())) {
    exit_code = args.exit_code();
    return false;
  }
  if (o.model.empty()) {
    std::fprintf(stderr,
                 "07_gpt2_generate: --model DIR is required (a Hugging Face GPT-2 directory, e.g. from\n"
                 "  huggingface-cli download gpt2 config.json model.safetensors --local-dir gpt2)\n");
    exit_code = 2;
    return false;
  }
  return true;
}

/// The tokenizer directory: --tokenizer, else the model directory when it has vocab files, else the
/// GPT-2 vocabulary shipped with grad (data/gpt2-tokenizer).
inline std::filesystem::path find_tokenizer_dir(const gpt2_generate_options& o) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!o.tokenizer.empty())
    return o.tokenizer;
  if ((fs::exists(o.model / "vocab.json", ec) && fs::exists(o.model / "merges.txt", ec)) ||
      (fs::exists(o.model / "encoder.json", ec) && fs::exists(o.model / "vocab.bpe", ec)))
    return o.model;
  const fs::path candidates[] = {fs::path(__FILE__).parent_path().parent_path() / "data" / "gpt2-tokenizer",
                                 fs::path("data") / "gpt2-tokenizer",
                                 fs::path("..") / "data" / "gpt2-tokenizer"};
  for (const auto& c : candidates)
    if (fs::exists(c / "encoder.json", ec))
      return c;
  return candidates[0];
}

/// What a run produced.
struct gpt2_generate_result {
  std::vector<std::int64_t> prompt_ids;          ///< the encoded prompt
  std::vector<std::vector<std::int64_t>> ids;    ///< per returned sequence: its new tokens (padding dropped)
  std::vector<std::string> texts;                ///< prompt + continuation, decoded
  std::string streamed;                          ///< the bytes printed while generating
  double load_seconds = 0, generate_seconds = 0; ///< wall time
  std::size_t new_tokens = 0;                    ///< tokens generated in all rows
};

/// Loads the model and tokenizer, generates, streams the continuation of greedy/sampled runs to `out`
/// token by token (beam search: the results at the end), then prints speed to `err`. Throws grad::error.
inline gpt2_generate_result run_gpt2_generate(const gpt2_generate_options& o, std::FILE* out,
                                              std::FILE* err) {
  using clock = std::chrono::steady_clock;
  gpt2_generate_result res;
  if (o.threads > 0)
    grad::set_num_threads(o.threads);
  const auto t0 = clock::now();
  const auto tok = grad::text::gpt2_tokenizer::from_directory(find_tokenizer_dir(o));
  grad::models::gpt_pretrained_info info;
  const auto model = grad::models::from_pretrained_gpt<float>(o.model, &info);
  res.load_seconds = std::chrono::duration<double>(clock::now() - t0).count();
  const auto& mc = model.config();
  if (tok.vocab_size() > mc.vocab_size)
    throw grad::value_error("the tokenizer has " + std::to_string(tok.vocab_size()) +
                            " tokens but the model only " + std::to_string(mc.vocab_size) +
                            "; pass the model's tokenizer with --tokenizer");
  if (err)
    std::fprintf(err, "loaded %s: %zu layers, %zu heads, %zu dims, vocabulary %zu, context %zu (%.2f s)\n",
                 o.model.string().c_str(), mc.n_layer, mc.n_head, mc.n_embd, mc.vocab_size, mc.n_positions,
                 res.load_seconds);

  res.prompt_ids = tok.encode(o.prompt);
  const std::int64_t eos = info.eos_token_id.value_or(tok.eos_token_id());
  if (res.prompt_ids.empty()) // transformers starts an empty prompt with the bos token
    res.prompt_ids.push_back(info.bos_token_id.value_or(eos));
  grad::generation_config cfg{.max_new_tokens = o.max_new_tokens,
                              .do_sample = o.do_sample != 0,
                              .temperature = o.temperature,
                              .top_k = o.top_k,
                              .top_p = o.top_p,
                              .num_beams = o.num_beams,
                              .length_penalty = o.length_penalty,
                              .no_repeat_ngram_size = o.no_repeat_ngram_size,
                              .repetition_penalty = o.repetition_penalty,
                              .eos_token_id = eos,
                              .seed = o.seed,
                              .num_return_sequences = o.num_return_sequences};
  // The model accepts at most n_positions tokens: shorten the request rather than fail.
  if (res.prompt_ids.size() >= mc.n_positions)
    throw grad::value_error("the prompt has " + std::to_string(res.prompt_ids.size()) +
                            " tokens; the model reads at most " + std::to_string(mc.n_positions - 1));
  if (res.prompt_ids.size() + o.max_new_tokens > mc.n_positions)
    cfg.max_new_tokens = mc.n_positions - res.prompt_ids.size();

  const bool stream = o.num_beams == 1 && o.num_return_sequences == 1;
  if (stream && out) {
    std::fputs(o.prompt.c_str(), out);
    std::fflush(out);
  }
  auto on_token = [&](std::size_t, std::int64_t t) {
    if (!stream || t == eos)
      return;
    // Raw token bytes: a character split over two tokens is completed by the next one on a terminal.
    const std::string& bytes = tok.token_bytes(t);
    res.streamed += bytes;
    if (out) {
      std::fwrite(bytes.data(), 1, bytes.size(), out);
      std::fflush(out);
    }
  };
  const auto t1 = clock::now();
  const grad::index_tensor seqs = grad::generate(model, grad::index_tensor(res.prompt_ids), cfg, on_token);
  res.generate_seconds = std::chrono::duration<double>(clock::now() - t1).count();

  const std::size_t rows = seqs.size(0), len = seqs.size(1), p = res.prompt_ids.size();
  for (std::size_t r = 0; r < rows; ++r) {
    std::vector<std::int64_t> gen;
    for (std::size_t i = p; i < len; ++i) {
      const std::int64_t t = seqs[r * len + i];
      if (t == eos)
        break; // the end of this sequence (later positions are padding)
      gen.push_back(t);
    }
    res.new_tokens += gen.size();
    res.texts.push_back(o.prompt + tok.decode_lossy(gen));
    res.ids.push_back(std::move(gen));
  }
  if (out) {
    if (stream) {
      std::fputc('\n', out);
    } else {
      for (std::size_t r = 0; r < rows; ++r)
        std::fprintf(out, "%s[%zu] %s\n", r ? "\n" : "", r, res.texts[r].c_str());
    }
    std::fflush(out); // before the statistics on err
  }
  if (err)
    std::fprintf(err, "%zu new tokens in %.2f s: %.1f tokens/s (%s)\n", res.new_tokens, res.generate_seconds,
                 res.generate_seconds > 0 ? static_cast<double>(res.new_tokens) / res.generate_seconds : 0.0,
                 o.num_beams > 1 ? "beam search"
                 : o.do_sample   ? "sampling"
                                 : "greedy");
  return res;
}

} // namespace examples
