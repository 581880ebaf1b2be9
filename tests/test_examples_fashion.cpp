// Tests of examples 04 (MLP) and 05 (CNN) on Fashion-MNIST: the training code they run (from
// examples/fashion_common.hpp) learns, saves and reloads. The cases that need the data set are skipped
// with a message when it is not installed (Debian: dataset-fashion-mnist) or cannot be read.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <grad/grad.hpp>

#include "../examples/fashion_common.hpp"

namespace {

// The data set, or a message saying why a case is skipped.
bool fashion_available() {
  const auto dir = examples::default_fashion_dir();
  switch (examples::check_fashion_dir(dir)) {
  case examples::fashion_status::ok:
    return true;
  case examples::fashion_status::missing:
    MESSAGE("skipped: Fashion-MNIST is not in " << dir.string()
                                                << " (sudo apt-get install dataset-fashion-mnist)");
    return false;
  case examples::fashion_status::needs_zlib:
    MESSAGE("skipped: the Fashion-MNIST files in " << dir.string()
                                                   << " are gzip-compressed and this test was built without "
                                                      "zlib (GRAD_HAS_ZLIB)");
    return false;
  }
  return false;
}

} // namespace

TEST_CASE("04/05 fashion: command-line helpers") {
  CHECK(examples::parse_sizes("256,256") == std::vector<std::size_t>{256, 256});
  CHECK(examples::parse_sizes("64") == std::vector<std::size_t>{64});
  for (const char* bad : {"", ",", "256,", ",256", "256,,3", "0", "-4", "12a", " 3"}) {
    CAPTURE(bad);
    CHECK(examples::parse_sizes(bad).empty());
  }
  CHECK(examples::format_sizes({784, 256, 10}) == "784,256,10");
  CHECK(examples::format_sizes({784, 256, 10}, '-') == "784-256-10");

  // A directory without the files is reported as missing (the examples then exit with code 2).
  CHECK(examples::check_fashion_dir(std::filesystem::path(GRAD_TESTS_SOURCE_DIR) / "no-such-directory") ==
        examples::fashion_status::missing);

  // A bare --eval (last, or followed by another flag) becomes --eval=-; --eval FILE is kept.
  std::string a0 = "prog", a1 = "--eval", a2 = "--out", a3 = "dir";
  char* argv1[] = {a0.data(), a1.data(), a2.data(), a3.data()};
  examples::eval_flag_argv e1(4, argv1);
  REQUIRE(e1.argc() == 4);
  CHECK(std::string(e1.argv()[1]) == "--eval=-");
  char* argv2[] = {a0.data(), a1.data(), a3.data()};
  examples::eval_flag_argv e2(3, argv2);
  CHECK(std::string(e2.argv()[1]) == "--eval");
  CHECK(std::string(e2.argv()[2]) == "dir");
}

TEST_CASE("05 fashion cnn: the network has the documented shapes and size") {
  examples::fashion_cnn net = examples::make_fashion_cnn(1);
  // conv1 16*1*3*3 + 16, conv2 32*16*3*3 + 32, linear 1568*10 + 10.
  CHECK(grad::nn::parameter_count(net) == 160 + 4640 + 15690);
  grad::generator gen(3);
  const grad::tensor x = grad::rand({2, 1, 28, 28}, gen);
  const grad::tensor logits = net(x);
  CHECK(logits.shape() == grad::shape_type{2, 10});
  // The same seed gives the same weights.
  examples::fashion_cnn again = examples::make_fashion_cnn(1);
  CHECK(again(x).value() == logits.value());
}

TEST_CASE("04 fashion mlp: a short training is far above chance, and the saved model reloads") {
  if (!fashion_available())
    return;
  // 2000 training images, one epoch (32 steps of 64), 1000 test images: chance is 10%; this run gets
  // 71-73% (seeds 1-4), so 60% leaves a wide margin for other seeds and compilers.
  const examples::fashion_data data =
      examples::load_fashion(examples::default_fashion_dir(), /*flatten=*/true, 2000, 1000);
  REQUIRE(data.train_images.shape() == grad::shape_type{2000, 784});
  REQUIRE(data.test_images.shape() == grad::shape_type{1000, 784});
  grad::nn::mlp net = examples::make_fashion_mlp({256, 256}, 1);
  CHECK(grad::nn::parameter_count(net) == 269322);
  const examples::train_config cfg{.epochs = 1, .progress = false};
  const examples::train_history h = examples::train_classifier(net, data, cfg);
  REQUIRE(h.epochs.size() == 1);
  REQUIRE(h.step_loss.size() == 32);
  // An untrained network guesses: its cross-entropy is about ln 10 = 2.30.
  CHECK(h.step_loss.front() == doctest::Approx(std::log(10.0)).epsilon(0.1));
  CHECK(h.epochs[0].train_loss < 1.5);
  CHECK(h.epochs[0].test_accuracy > 0.6);
  CHECK(h.epochs[0].test_accuracy ==
        doctest::Approx(examples::accuracy(net, data.test_images, data.test_labels)));

  // Saved and loaded into a freshly initialised network, it classifies exactly as before.
  const auto dir = std::filesystem::temp_directory_path() / "grad_test_examples_fashion";
  std::filesystem::create_directories(dir);
  const auto file = dir / "mlp.safetensors";
  grad::io::save(net, file);
  grad::nn::mlp other = examples::make_fashion_mlp({256, 256}, 2);
  CHECK(examples::accuracy(other, data.test_images, data.test_labels) != h.epochs[0].test_accuracy);
  grad::io::load(other, file);
  CHECK(examples::accuracy(other, data.test_images, data.test_labels) == h.epochs[0].test_accuracy);

  // The curves are written: one loss row per step, one accuracy row per epoch.
  const auto files = examples::write_curves(dir, "mlp", h, 32);
  CHECK(files.size() == 4);
  CHECK(grad::utils::read_csv_columns(dir / "mlp_loss.csv").rows() == 32);
  CHECK(grad::utils::read_csv_columns(dir / "mlp_accuracy.csv").rows() == 1);
  std::filesystem::remove_all(dir);
}
