// 08_flops: why large language models need so much compute, estimated and then measured.
//
// Training a transformer costs about 6 x parameters x tokens floating-point operations: 2 per
// parameter per token for the forward pass (each weight is one multiply-add), twice that again for the
// backward pass (a gradient for the activations and one for the weights). GPT-3 has 175e9 parameters
// and was trained on 300e9 tokens: 6 x 175e9 x 300e9 = 3.15e23 FLOPs. How long that takes depends on
// how many accelerators run, their peak, and the fraction of it a real training run keeps (its MFU).
//
// Then this machine: grad's profiler counts the FLOPs of every op of a real training step of a small
// GPT (example 06's model) and of a forward pass of a GPT-2 124M-shaped model, and times them. The
// counted FLOPs agree with the estimate; the achieved rate, next to the machine's measured peak, says
// how long GPT-3's training would take here.
//
// Run:   08_flops [--params 175e9] [--tokens 300e9] [--devices 1024] [--peak-tflops 312]
//                 [--mfu 0.4] [--threads 0] [--gpt2-tokens 128] [--skip-gpt2 1] [--out DIR]
// Writes 08_flops_train_step.csv (the op table of the training step) and 08_flops_train_step.json (its
// timeline: open in chrome://tracing or https://ui.perfetto.dev).

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

#include "common.hpp"
#include "flops.hpp"

int main(int argc, char** argv) {
  double params = 175e9, tokens = 300e9, devices = 1024, peak_tflops = 312, mfu = 0.4;
  int threads = 0;
  std::size_t gpt2_tokens = 128;
  int skip_gpt2 = 0;
  std::string out = ".";
  examples::arg_parser args("08_flops",
                            "Estimate a large model's training compute, then measure this machine.");
  args.add("--params", params, "parameters of the model to estimate (GPT-3: 175e9)");
  args.add("--tokens", tokens, "training tokens (GPT-3: 300e9)");
  args.add("--devices", devices, "number of accelerators");
  args.add("--peak-tflops", peak_tflops, "peak of one accelerator in TFLOP/s (A100 bf16: 312)");
  args.add("--mfu", mfu, "fraction of the peak a training run achieves (0..1)");
  args.add("--threads", threads, "threads for this machine's measurements (0: all)");
  args.add("--gpt2-tokens", gpt2_tokens, "tokens of the GPT-2 124M-shaped forward pass");
  args.add("--skip-gpt2", skip_gpt2, "1: skip the GPT-2 124M-shaped forward pass");
  args.add("--out", out, "directory for the op table and the trace");
  if (!args.parse(argc, argv))
    return args.exit_code();
  if (!(params > 0 && tokens > 0 && devices > 0 && peak_tflops > 0 && mfu > 0 && mfu <= 1 &&
        gpt2_tokens > 0 && gpt2_tokens <= 1024)) {
    std::fprintf(stderr,
                 "08_flops: --params, --tokens, --devices, --peak-tflops must be positive, --mfu in (0, 1] "
                 "and --gpt2-tokens in [1, 1024]\n");
    return 2;
  }
  if (threads > 0)
    grad::set_num_threads(threads);

  // 1. The estimate.
  const double train = grad::training_flops(params, tokens);
  const double days = grad::training_days(train, devices, peak_tflops * 1e12, mfu);
  std::printf("== Estimate\n");
  std::printf("training FLOPs = 6 x %.3g parameters x %.3g tokens = %.3g FLOPs\n", params, tokens, train);
  std::printf("on %.0f accelerators of %.0f TFLOP/s at %.0f%% utilisation: %.3g s = %.1f days\n\n", devices,
              peak_tflops, 100 * mfu, days * 86400, days);

  // 2. This machine's peak.
  const double peak = flops_example::measure_peak_gflops();
  std::printf("== This machine\n%d thread(s); SGEMM 1024^3 peak: %.1f GFLOP/s\n\n", grad::get_num_threads(),
              peak);

  // 3. A training step of example 06's model under the profiler.
  grad::generator gen(0);
  grad::models::gpt_config small{
      .vocab_size = 96, .n_positions = 128, .n_embd = 128, .n_layer = 4, .n_head = 4};
  grad::models::gpt model(small, gen);
  grad::profiler prof;
  const auto step = flops_example::profile_train_step(model, 16, 128, prof, gen, 2);
  const auto est = grad::estimate_transformer(small, 128);
  std::printf("== Training step of example 06's GPT (%llu parameters; batch 16 x 128 tokens)\n",
              static_cast<unsigned long long>(est.parameters));
  prof.print(std::cout);
  std::printf(
      "counted %.4g FLOPs; estimate 3 x forward = %.4g FLOPs (6 N D = %.4g): counted / estimate = %.3f\n",
      step.counted_flops, step.estimated_flops, grad::training_flops(double(est.parameters), 16.0 * 128),
      step.counted_flops / step.estimated_flops);
  std::printf("achieved %.1f GFLOP/s = %.0f%% of the measured peak\n\n", step.gflops_per_second(),
              100 * step.gflops_per_second() / peak);
  const std::filesystem::path dir(out);
  std::filesystem::create_directories(dir);
  prof.write_csv(dir / "08_flops_train_step.csv");
  prof.write_chrome_trace(dir / "08_flops_train_step.json");

  // 4. A forward pass of a GPT-2 124M-shaped model (random weights).
  double rate = step.gflops_per_second();
  if (!skip_gpt2) {
    grad::models::gpt_config gpt2; // GPT-2 small
    grad::models::gpt big(gpt2, gen);
    const auto fwd = flops_example::profile_forward(big, 1, gpt2_tokens, prof, gen);
    std::printf("== Forward pass of a GPT-2 124M-shaped model (%zu tokens)\n", gpt2_tokens);
    prof.print(std::cout);
    std::printf(
        "counted %.4g FLOPs; estimate %.4g: counted / estimate = %.3f; %.1f GFLOP/s = %.0f%% of peak\n\n",
        fwd.counted_flops, fwd.estimated_flops, fwd.counted_flops / fwd.estimated_flops,
        fwd.gflops_per_second(), 100 * fwd.gflops_per_second() / peak);
    rate = fwd.gflops_per_second();
  }

  // 5. GPT-3 at this machine's rate.
  const double seconds = train / (rate * 1e9);
  std::printf("== GPT-3's %.3g FLOPs at %.1f GFLOP/s: %.3g s = %.3g years on this machine\n", train, rate,
              seconds, seconds / (365.25 * 86400));
  std::printf("wrote %s and %s\n", (dir / "08_flops_train_step.csv").string().c_str(),
              (dir / "08_flops_train_step.json").string().c_str());
  return 0;
}
