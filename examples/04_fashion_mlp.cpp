// 04_fashion_mlp: a deep network that recognises clothes, and the knobs that train it.
//
// The data are Fashion-MNIST: 28x28 grey pictures of clothes in 10 classes, 60000 to learn from and
// 10000 kept apart to test on. The model is a multi-layer perceptron (MLP): the 784 pixels go through
// *hidden layers* of *neurons*, each neuron a weighted sum of all the previous layer's outputs passed
// through ReLU (max(0, z)), and a last layer gives 10 scores, one per class. With --hidden 256,256 that
// is 784 -> 256 -> 256 -> 10: two hidden layers of 256 neurons, 269322 weights in all.
//
// The knobs (hyper-parameters), all on the command line:
//   --hidden 256,256  neurons per hidden layer, one number per layer. More neurons or more layers can
//                     learn finer distinctions (shirt vs T-shirt), but cost time and memory and can
//                     memorise the training images instead of learning what generalises. Try 64, or
//                     512,512,512.
//   --batch-size 64   images per gradient step. The gradient of a batch is an estimate of the gradient
//                     over all images; larger batches give a better estimate and make better use of
//                     the hardware, but fewer steps per epoch. 32-256 is the usual range.
//   --lr 1e-3         learning rate: how far each step moves the weights. Too small and training
//                     crawls; too large and the loss jumps around or blows up. 1e-3 is Adam's classic
//                     default; plain SGD wants more (--optimizer sgd --lr 0.05).
//   --epochs 3        passes over the 60000 training images (938 steps each at batch 64).
//   --optimizer adam  how the gradient becomes a step: sgd (with momentum), adam (per-weight step sizes
//                     from running averages of the gradient and its square), or adamw (adam with
//                     weight decay, which pulls weights towards 0).
// After each epoch the network is evaluated on the 10000 test images it never trained on: the test
// accuracy is the honest measure of what it has learned. 784-256-256-10 reaches about 87% in 3 epochs.
//
// Run:   04_fashion_mlp [--hidden 256,256] [--batch-size 64] [--lr 1e-3] [--epochs 3]
//                       [--optimizer sgd|adam|adamw] [--seed 1] [--threads N] [--limit N] [--out DIR]
//        04_fashion_mlp --eval [FILE]   only the test accuracy of a saved model
//                                          (default FILE: DIR/04_fashion_mlp.safetensors)
// Writes 04_fashion_mlp.safetensors (the trained weights), 04_fashion_mlp_loss.csv/.svg (loss per
// step) and 04_fashion_mlp_accuracy.csv/.svg (test accuracy per epoch) into the current directory (or
// DIR). Needs Fashion-MNIST (Debian: sudo apt-get install dataset-fashion-mnist); --data DIR to use
// another copy.

#include <cstdio>
#include <string>
#include <vector>

#include <grad/grad.hpp>

#include "common.hpp"
#include "fashion_common.hpp"

int main(int argc, char** argv) {
  const std::string name = "04_fashion_mlp";
  std::string hidden_text = "256,256";
  examples::fashion_flags flags;
  flags.epochs = 3;
  examples::arg_parser args(name, "Trains a multi-layer perceptron on Fashion-MNIST.");
  args.add("--hidden", hidden_text, "neurons per hidden layer, comma-separated: 256,256 is two layers");
  examples::add_fashion_flags(args, flags);
  examples::eval_flag_argv argv2(argc, argv);
  if (!args.parse(argv2.argc(), argv2.argv()))
    return args.exit_code();
  examples::train_config cfg;
  if (!examples::finish_fashion_flags(flags, cfg, name))
    return 2;
  std::vector<std::size_t> hidden = examples::parse_sizes(hidden_text);
  if (hidden.empty()) {
    std::fprintf(stderr, "%s: --hidden must be positive whole numbers separated by commas, e.g. 256,256\n",
                 name.c_str());
    return 2;
  }
  if (flags.eval.empty() && !examples::prepare_output_dir(flags.out))
    return 1;

  // The images, flattened to rows of 784 pixels: an MLP sees no 2-d structure, only a vector. The
  // pixels are standardised to mean 0 and standard deviation 1 (examples::standardize_pixels), which,
  // as example 01 showed for its x, makes gradient descent converge faster.
  examples::fashion_data data;
  if (!examples::load_fashion_or_explain(flags, /*flatten=*/true, name, data))
    return 2;

  try {
    if (!flags.eval.empty()) {
      // Evaluation only: rebuild the network with the layer sizes stored in the file, load its weights.
      const auto header = grad::io::inspect_safetensors(flags.eval);
      if (const auto it = header.metadata.find("hidden"); it != header.metadata.end())
        hidden = examples::parse_sizes(it->second);
      grad::nn::mlp net = examples::make_fashion_mlp(hidden, flags.seed);
      grad::io::load(net, flags.eval);
      const double acc = examples::accuracy(net, data.test_images, data.test_labels);
      std::printf("%s: 784-%s-10 from %s\ntest accuracy: %.2f%% on %zu test images\n", name.c_str(),
                  examples::format_sizes(hidden, '-').c_str(), flags.eval.string().c_str(), 100 * acc,
                  data.test_images.size(0));
      return 0;
    }

    grad::nn::mlp net = examples::make_fashion_mlp(hidden, flags.seed);
    std::printf("MLP 784-%s-10 (%zu parameters) on %zu training images, %zu test images\n"
                "optimizer %s, lr %g, batch size %zu, %d epochs, threads: %d\n\n",
                examples::format_sizes(hidden, '-').c_str(), grad::nn::parameter_count(net),
                data.train_images.size(0), data.test_images.size(0), flags.optimizer.c_str(), cfg.lr,
                cfg.batch_size, cfg.epochs, grad::get_num_threads());
    std::fflush(stdout);

    const examples::train_history h = examples::train_classifier(
        net, data, cfg, [&](const examples::epoch_result& r) { examples::print_epoch(r, cfg.epochs); });

    // The trained weights, with the layer sizes, so that --eval can rebuild the same network.
    const auto model = flags.out / (name + ".safetensors");
    grad::io::save(net, model, {.metadata = {{"example", name}, {"hidden", examples::format_sizes(hidden)}}});
    const std::size_t steps_per_epoch = h.step_loss.size() / h.epochs.size();
    const auto files = examples::write_curves(flags.out, name, h, steps_per_epoch);

    double train_seconds = 0;
    for (const auto& r : h.epochs)
      train_seconds += r.train_seconds;
    std::printf("\nfinal test accuracy %.2f%%, %.1f s per epoch of training\nwrote %s",
                100 * h.epochs.back().test_accuracy, train_seconds / static_cast<double>(h.epochs.size()),
                model.string().c_str());
    for (const auto& f : files)
      std::printf(", %s", f.string().c_str());
    std::printf("\n");
  } catch (const grad::error& e) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), e.what());
    return 1;
  }
}
