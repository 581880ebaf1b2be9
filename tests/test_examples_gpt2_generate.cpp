// Tests of example 07 (examples/gpt2_generate.hpp): the program's own code path on a tiny random
// GPT-2 checkpoint with GPT-2's real vocabulary, written by save_pretrained.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include <grad/models/gpt_pretrained.hpp>

#include "../examples/gpt2_generate.hpp"

namespace {

namespace fs = std::filesystem;

fs::path tokenizer_dir() {
#ifdef GRAD_TESTS_SOURCE_DIR
  return fs::path(GRAD_TESTS_SOURCE_DIR).parent_path() / "data" / "gpt2-tokenizer";
#else
  return fs::path(__FILE__).parent_path().parent_path() / "data" / "gpt2-tokenizer";
#endif
}

// A random 2-layer GPT-2 with the real vocabulary (50257 tokens), saved as a Hugging Face directory.
// Each test case gets its own directory: CTest may run the cases at the same time.
struct tiny_checkpoint {
  fs::path dir;
  explicit tiny_checkpoint(const std::string& name)
      : dir(fs::temp_directory_path() /
            ("grad_test_examples_gpt2_generate_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(dir);
    grad::models::gpt_config c;
    c.n_positions = 32;
    c.n_embd = 16;
    c.n_layer = 2;
    c.n_head = 2;
    grad::generator gen(0);
    grad::models::save_pretrained(grad::models::gpt(c, gen), dir);
  }
  ~tiny_checkpoint() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

examples::gpt2_generate_options options(const fs::path& model) {
  examples::gpt2_generate_options o;
  o.model = model;
  o.tokenizer = tokenizer_dir();
  o.prompt = "The quick brown fox";
  o.max_new_tokens = 8;
  return o;
}

} // namespace

TEST_CASE("07 gpt2-generate: greedy streams exactly the tokens it returns") {
  tiny_checkpoint ck("greedy");
  auto o = options(ck.dir);
  const auto r = examples::run_gpt2_generate(o, nullptr, nullptr);
  CHECK(r.prompt_ids == std::vector<std::int64_t>{464, 2068, 7586, 21831}); // GPT-2's ids of the prompt
  REQUIRE(r.ids.size() == 1);
  CHECK(r.ids[0].size() <= 8);
  std::string bytes;
  for (auto t : r.ids[0])
    bytes += grad::text::gpt2_tokenizer::from_directory(tokenizer_dir()).token_bytes(t);
  CHECK(r.streamed == bytes);
  CHECK(r.texts[0].starts_with("The quick brown fox"));
  // Greedy is deterministic; the output is a function of the weights only.
  CHECK(examples::run_gpt2_generate(o, nullptr, nullptr).ids == r.ids);
}

TEST_CASE("07 gpt2-generate: beams, sampling and the command line") {
  tiny_checkpoint ck("options");
  std::vector<std::string> argv_s = {"07_gpt2_generate",
                                     "--model",
                                     ck.dir.string(),
                                     "--tokenizer",
                                     tokenizer_dir().string(),
                                     "--prompt",
                                     "Hello",
                                     "--max-new-tokens",
                                     "5",
                                     "--do-sample",
                                     "--top-k",
                                     "20",
                                     "--top-p",
                                     "0.9",
                                     "--temperature",
                                     "0.7",
                                     "--seed",
                                     "3",
                                     "--repetition-penalty",
                                     "1.2"};
  std::vector<char*> argv;
  for (auto& s : argv_s)
    argv.push_back(s.data());
  examples::gpt2_generate_options o;
  int code = -1;
  REQUIRE(examples::parse_gpt2_generate_args(static_cast<int>(argv.size()), argv.data(), o, code));
  CHECK(o.do_sample == 1);
  CHECK(o.top_k == 20);
  CHECK(o.top_p == 0.9);
  CHECK(o.temperature == 0.7);
  CHECK(o.seed == 3);
  CHECK(o.repetition_penalty == 1.2);
  CHECK(o.max_new_tokens == 5);
  const auto a = examples::run_gpt2_generate(o, nullptr, nullptr);
  const auto b = examples::run_gpt2_generate(o, nullptr, nullptr);
  CHECK(a.ids == b.ids); // same seed, same text
  CHECK(a.ids[0].size() <= 5);

  auto beams = options(ck.dir);
  beams.num_beams = 3;
  beams.num_return_sequences = 2;
  beams.no_repeat_ngram_size = 2;
  const auto r = examples::run_gpt2_generate(beams, nullptr, nullptr);
  CHECK(r.ids.size() == 2);
  CHECK(r.streamed.empty()); // beams are printed at the end, not streamed

  // The tokenizer is found in the model directory when it is there, and a missing --model is refused.
  std::vector<std::string> bad_s = {"07_gpt2_generate", "--prompt", "x"};
  std::vector<char*> bad;
  for (auto& s : bad_s)
    bad.push_back(s.data());
  examples::gpt2_generate_options none;
  CHECK(!examples::parse_gpt2_generate_args(static_cast<int>(bad.size()), bad.data(), none, code));
  CHECK(code == 2);
  // A model directory that does not exist is an io_error naming it.
  auto missing = options(ck.dir / "nope");
  CHECK_THROWS_AS(examples::run_gpt2_generate(missing, nullptr, nullptr), grad::io_error);
}
