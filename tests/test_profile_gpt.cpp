// The FLOP estimate of grad/profile/flops.hpp against the FLOPs grad::profiler counts in a real GPT
// training step and forward pass (example 06's model; example 08 prints the same comparison), and
// example 08's measuring code on a tiny model.
#include <doctest/doctest.h>

#include <sstream>

#include "../examples/flops.hpp"

TEST_CASE(
    "estimate_transformer agrees with the profiler's count of a real example-06 training step within 10%") {
  grad::set_num_threads(1);
  grad::generator gen(0);
  const grad::models::gpt_config cfg{
      .vocab_size = 96, .n_positions = 128, .n_embd = 128, .n_layer = 4, .n_head = 4};
  grad::models::gpt model(cfg, gen);
  grad::profiler prof;
  // Batch 2 keeps the test quick; FLOPs per token do not depend on the batch.
  const auto step = flops_example::profile_train_step(model, 2, 128, prof, gen, 0);
  INFO("counted " << step.counted_flops << ", estimated " << step.estimated_flops);
  CHECK(step.counted_flops > 0);
  CHECK(step.counted_flops / step.estimated_flops == doctest::Approx(1.0).epsilon(0.10));
  // The parameters the estimate assumes are the model's.
  CHECK(grad::estimate_transformer(cfg).parameters == grad::nn::parameter_count(model));
  // The step's forward half alone against the forward estimate.
  const double fwd = double(prof.total("forward").flops);
  CHECK(fwd / grad::estimate_transformer(cfg, 128).forward_flops(2 * 128) ==
        doctest::Approx(1.0).epsilon(0.10));
}

TEST_CASE(
    "estimate_transformer agrees with the profiler's count of a forward pass, untied head, other shapes") {
  grad::generator gen(1);
  const grad::models::gpt_config cfg{.vocab_size = 500,
                                     .n_positions = 64,
                                     .n_embd = 64,
                                     .n_layer = 3,
                                     .n_head = 2,
                                     .tie_word_embeddings = false};
  const grad::models::gpt model(cfg, gen);
  CHECK(grad::estimate_transformer(cfg).parameters == grad::nn::parameter_count(model));
  grad::profiler prof;
  const auto run = flops_example::profile_forward(model, 3, 50, prof, gen);
  INFO("counted " << run.counted_flops << ", estimated " << run.estimated_flops);
  CHECK(run.counted_flops / run.estimated_flops == doctest::Approx(1.0).epsilon(0.10));
  CHECK(prof.total("backward").calls == 0);
}

TEST_CASE("example 08: the peak measurement is a positive rate") {
  grad::set_num_threads(1);
  CHECK(flops_example::measure_peak_gflops(64, 0.01) > 0);
}
