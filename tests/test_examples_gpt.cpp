// Tests of example 06 (char-level GPT): the training code it runs (examples/char_gpt.hpp) on a tiny
// text written here, so nothing depends on Debian's fortunes package: reading a directory, the split,
// learning, checkpoints, and that a run stopped and resumed ends exactly where a straight run does.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <grad/grad.hpp>

#include "../examples/char_gpt.hpp"

namespace cg = examples::char_gpt;
namespace fs = std::filesystem;

namespace {

/// A fresh empty directory under the system's temporary directory.
fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("grad_test_examples_gpt_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string tiny_text() {
  std::string t;
  for (int i = 0; i < 40; ++i)
    t += "the cat sat on the mat. the dog ate the log.\n";
  return t;
}

cg::options tiny_options() {
  cg::options o;
  o.block_size = 16;
  o.n_layer = 1;
  o.n_head = 2;
  o.n_embd = 16;
  o.batch_size = 4;
  o.lr = 3e-3;
  o.steps = 12;
  o.eval_every = 6;
  o.eval_batches = 2;
  o.seed = 3;
  o.progress = false;
  return o;
}

grad::models::gpt make_model(const cg::options& o, std::size_t v) {
  grad::generator gen(o.seed);
  return grad::models::gpt(cg::model_config(o, v), gen);
}

} // namespace

TEST_CASE(
    "06 char_gpt: read_text concatenates a directory's regular files, skipping .dat files and symlinks") {
  const fs::path d = temp_dir("read");
  std::ofstream(d / "b") << "second\n";
  std::ofstream(d / "a") << "first\n";
  std::ofstream(d / "a.dat") << "index";
  fs::create_symlink(d / "a", d / "a.u8");
  CHECK(cg::read_text(d) == "first\nsecond\n");
  CHECK(cg::read_text(d / "b") == "second\n");
  CHECK_THROWS_AS(cg::read_text(d / "missing"), grad::io_error);
  fs::remove_all(d);
}

TEST_CASE("06 char_gpt: 90/10 split and random batches of next-character targets") {
  const std::string text = tiny_text();
  const grad::text::char_tokenizer tok(text);
  const cg::corpus c = cg::split_text(text, tok);
  CHECK(c.train.size() + c.val.size() == text.size());
  CHECK(c.train.size() == text.size() * 9 / 10);
  CHECK(tok.decode(c.val) == text.substr(c.train.size()));
  grad::generator gen(1);
  const cg::batch b = cg::random_batch(c.train, 3, 8, gen);
  CHECK(b.x.shape() == grad::shape_type{3, 8});
  CHECK(b.y.shape() == grad::shape_type{24});
  for (std::size_t r = 0; r < 3; ++r)
    for (std::size_t i = 0; i + 1 < 8; ++i)
      CHECK(b.y[r * 8 + i] == b.x[r * 8 + i + 1]); // the target is the next character
  CHECK_THROWS_AS(cg::random_batch(std::vector<std::int64_t>(5, 0), 1, 8, gen), grad::value_error);
}

TEST_CASE("06 char_gpt: training lowers the validation loss; a resumed run ends exactly where a straight one "
          "does") {
  const std::string text = tiny_text();
  const grad::text::char_tokenizer tok(text);
  const cg::corpus c = cg::split_text(text, tok);
  const cg::options o = tiny_options();
  const std::size_t v = tok.vocab_size();

  const fs::path straight_dir = temp_dir("straight"), resumed_dir = temp_dir("resumed");
  auto straight = make_model(o, v);
  const double before = cg::evaluate(straight, c.val, o);
  const cg::history hs = cg::train(straight, c, tok, o, straight_dir, false);
  REQUIRE(hs.train_loss.size() == 12);
  REQUIRE(hs.val_loss.size() == 2); // steps 6 and 12
  CHECK(hs.val_step == std::vector<double>{6, 12});
  CHECK(before > std::log(static_cast<double>(v)) - 0.5);
  CHECK(hs.val_loss.back() < before - 0.25);

  // 6 steps, stop; then resume up to 12 from the checkpoint files
  cg::options first = o;
  first.steps = 6;
  auto part = make_model(o, v);
  (void)cg::train(part, c, tok, first, resumed_dir, false);
  const cg::checkpoint_files files(resumed_dir);
  CHECK(fs::exists(files.model));
  CHECK(fs::exists(files.optimizer));
  CHECK(fs::exists(files.vocab));
  auto resumed = make_model(cg::options{tiny_options()}, v);
  { // the fresh model differs from the trained one before loading
    const auto a = resumed.named_parameters(), b = part.named_parameters();
    CHECK(a[0].second.data()[0] != b[0].second.data()[0]);
  }
  const cg::history hr = cg::train(resumed, c, tok, o, resumed_dir, true);
  CHECK(hr.first_step == 6);
  REQUIRE(hr.train_loss.size() == 12);
  // The curve up to the checkpoint comes back exactly, and so does step 7 (the loaded weights'
  // forward). Later steps agree to float rounding, not bit for bit: the optimizer's state_dict stores
  // its hyper-parameters as float (lr 3e-3 comes back as 3.0000000261e-3).
  for (std::size_t i = 0; i < 7; ++i)
    CHECK(hr.train_loss[i] == hs.train_loss[i]);
  for (std::size_t i = 7; i < 12; ++i)
    CHECK(hr.train_loss[i] == doctest::Approx(hs.train_loss[i]).epsilon(1e-5));
  REQUIRE(hr.val_loss.size() == 2);
  CHECK(hr.val_loss[0] == hs.val_loss[0]);
  CHECK(hr.val_loss[1] == doctest::Approx(hs.val_loss[1]).epsilon(1e-5));
  // The weights agree far closer than one AdamW step (about lr = 3e-3 per weight) would leave them
  // had the moments or the step count not been restored.
  const auto ps = straight.named_parameters(), pr = resumed.named_parameters();
  REQUIRE(ps.size() == pr.size());
  double worst = 0;
  for (std::size_t k = 0; k < ps.size(); ++k)
    for (std::size_t i = 0; i < ps[k].second.numel(); ++i)
      worst = std::max(worst, std::abs(double(ps[k].second.data()[i]) - pr[k].second.data()[i]));
  CHECK(worst < 2e-5);

  // a checkpoint of another architecture is refused with a clear message
  cg::options other = o;
  other.n_embd = 32;
  auto wrong = make_model(other, v);
  other.steps = 14;
  try {
    (void)cg::train(wrong, c, tok, other, resumed_dir, true);
    FAIL("resume with another architecture did not throw");
  } catch (const grad::value_error& e) {
    CHECK(std::string(e.what()).find("n_embd=16") != std::string::npos);
  }
  // the sample has the asked length and only characters of the vocabulary
  grad::generator gen(5);
  const std::string s = cg::sample(resumed, tok, "the ", 40, 0.8, gen);
  CHECK(tok.encode(s).size() == 40);
  // and it continues past the context length (16) by restarting the cache
  CHECK(tok.encode(cg::sample(resumed, tok, "the cat sat on the mat", 30, 1.0, gen)).size() == 30);
  const auto svg = cg::write_plot(resumed_dir, hr);
  CHECK(fs::file_size(svg) > 1000);
  fs::remove_all(straight_dir);
  fs::remove_all(resumed_dir);
}
