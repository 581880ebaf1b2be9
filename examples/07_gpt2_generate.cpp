// 07_gpt2_generate: text from a pretrained GPT-2, with the decoding options of Hugging Face's generate().
//
// A language model gives, for a text so far, a probability for every possible next token (GPT-2 has
// 50257 of them: words, pieces of words, bytes). Generating text is choosing tokens one at a time,
// and *how* to choose is the whole craft:
//   greedy (default)       always the most likely token: safe, but soon repeats itself.
//   --num-beams 5          beam search: follow the 5 most likely *sequences* instead of one, and keep
//                          the best whole sequence; good for short, precise answers.
//   --no-repeat-ngram-size 2   never produce the same pair of tokens twice: the cure for loops.
//   --do-sample            draw the next token at random with the model's probabilities, reshaped by
//     --temperature 0.7    (< 1: more conservative, > 1: wilder),
//     --top-k 50           (only the 50 most likely tokens may be drawn),
//     --top-p 0.95         (only the most likely tokens that together hold 95% of the probability).
//   --repetition-penalty 1.2   make tokens already in the text less likely.
// The same options with the same meanings as transformers' model.generate(...); see docs/generation.md.
//
// The model's memory of the text so far is a KV cache: each new token costs one pass over the weights
// instead of re-reading the whole text, which is why generation speed is measured in tokens/s.
//
// Run:   07_gpt2_generate --model DIR [--prompt "..."] [--max-new-tokens 50] [--num-beams 5]
//                         [--no-repeat-ngram-size 2] [--do-sample] [--top-k 50] [--top-p 0.95]
//                         [--temperature 0.7] [--repetition-penalty 1.2] [--seed 0] [--tokenizer DIR]
// DIR is any Hugging Face GPT-2 directory (config.json + model.safetensors), e.g.
//   huggingface-cli download gpt2 config.json model.safetensors vocab.json merges.txt --local-dir gpt2
// The tokenizer comes from DIR when it has vocab.json + merges.txt, else from grad's data/gpt2-tokenizer.

#include <cstdio>
#include <exception>

#include "gpt2_generate.hpp"

int main(int argc, char** argv) {
  examples::gpt2_generate_options opt;
  int code = 0;
  if (!examples::parse_gpt2_generate_args(argc, argv, opt, code))
    return code;
  try {
    examples::run_gpt2_generate(opt, stdout, stderr);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "07_gpt2_generate: %s\n", e.what());
    return 1;
  }
  return 0;
}
