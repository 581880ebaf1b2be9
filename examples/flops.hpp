// The measuring half of example 08 (08_flops.cpp), in a header so tests run the same code on small
// models: the machine's peak from a large matrix product, and a GPT training step or forward pass
// under grad::profiler, next to the estimate of grad/profile/flops.hpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include <grad/grad.hpp>
#include <grad/kernels/gemm.hpp>
#include <grad/models/gpt.hpp>
#include <grad/profile/flops.hpp>
#include <grad/profile/profiler.hpp>

namespace flops_example {

/// GFLOP/s of grad's SGEMM on an n x n x n product, best of a few repetitions of ~0.2 s each: the
/// practical peak of this machine for the matrix products that dominate a transformer.
inline double measure_peak_gflops(std::size_t n = 1024, double seconds = 0.2) {
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  const double flops = 2.0 * double(n) * double(n) * double(n);
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    int calls = 0;
    double elapsed = 0;
    do {
      grad::kernels::gemm<float>(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
      ++calls;
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } while (elapsed < seconds);
    best = std::max(best, flops * calls / elapsed * 1e-9);
  }
  return best;
}

/// What one profiled run measured, next to the estimate.
struct profiled_run {
  double counted_flops = 0;   ///< FLOPs the profiler counted (all ops, forward + backward)
  double estimated_flops = 0; ///< estimate_transformer's FLOPs for the same tokens
  double seconds = 0;         ///< wall time of the ops
  double gflops_per_second() const { return seconds > 0 ? counted_flops / seconds * 1e-9 : 0; }
};

/// Random token ids (B, T) below `vocab`.
inline grad::index_tensor random_ids(std::size_t batch, std::size_t t, std::size_t vocab,
                                     grad::generator& gen) {
  std::vector<std::int64_t> ids(batch * t);
  for (auto& id : ids)
    id = static_cast<std::int64_t>(gen.randint(vocab));
  return grad::index_tensor(std::move(ids), {batch, t});
}

/// One training step (forward, cross-entropy, backward, AdamW) of `model` on random tokens, the
/// first `warmup` steps unprofiled; `prof` records the last one.
inline profiled_run profile_train_step(grad::models::gpt& model, std::size_t batch, std::size_t t,
                                       grad::profiler& prof, grad::generator& gen, int warmup = 1) {
  const auto& cfg = model.config();
  grad::optim::adamw<float> opt(model.parameters(), {.lr = 1e-4});
  const auto ids = random_ids(batch, t, cfg.vocab_size, gen);
  std::vector<std::int64_t> next(batch * t); // (B*T) targets
  for (auto& id : next)
    id = static_cast<std::int64_t>(gen.randint(cfg.vocab_size));
  const grad::index_tensor y(std::move(next));
  auto step = [&] {
    auto logits = model.forward(ids); // (B, T, V)
    auto loss =
        grad::cross_entropy(grad::reshape(logits, {-1, static_cast<std::int64_t>(cfg.vocab_size)}), y);
    opt.zero_grad();
    loss.backward();
    grad::profile_range r("adamw.step");
    opt.step();
  };
  for (int i = 0; i < warmup; ++i)
    step();
  prof.reset();
  prof.start();
  step();
  prof.stop();
  profiled_run run;
  const auto total = prof.total();
  run.counted_flops = double(total.flops);
  run.seconds = double(total.ns) * 1e-9;
  run.estimated_flops = grad::estimate_transformer(cfg, t).training_flops(double(batch * t));
  return run;
}

/// A forward pass (no tape) of `model` on random tokens, profiled.
inline profiled_run profile_forward(const grad::models::gpt& model, std::size_t batch, std::size_t t,
                                    grad::profiler& prof, grad::generator& gen) {
  const auto& cfg = model.config();
  const auto ids = random_ids(batch, t, cfg.vocab_size, gen);
  grad::no_grad ng;
  prof.reset();
  prof.start();
  auto logits = model.forward(ids);
  prof.stop();
  profiled_run run;
  const auto total = prof.total();
  run.counted_flops = double(total.flops);
  run.seconds = double(total.ns) * 1e-9;
  run.estimated_flops = grad::estimate_transformer(cfg, t).forward_flops(double(batch * t));
  return run;
}

} // namespace flops_example
