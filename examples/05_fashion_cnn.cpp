// 05_fashion_cnn: a convolutional network, the kind of model built for pictures.
//
// Example 04's MLP sees a picture as 784 unrelated numbers: it would learn just as well if the pixels
// were shuffled (the same way in every picture). A convolutional network (CNN) uses what we know about
// pictures: nearby pixels belong together, and an edge or a texture means the same thing wherever it
// appears. A *convolution* slides a small filter (here 3x3 weights) over the whole picture and computes,
// at every position, the weighted sum of the 3x3 pixels under it: one filter, one *channel* of output,
// a map of where its pattern occurs. The same 9 weights serve every position, so a convolution layer
// has few weights (conv1 below: 16 filters of 3x3 = 160 with biases) yet sees the whole image.
// *Max pooling* keeps the largest value of every 2x2 window: the map gets half as wide and high, and
// small shifts of the picture stop mattering.
//
// The network (shapes for a batch of B images):
//   input                                     (B, 1, 28, 28)   grey pixels, standardised
//   conv 1->16, 3x3, padding 1, ReLU          (B, 16, 28, 28)  16 detectors of small patterns (edges...)
//   max pool 2x2                              (B, 16, 14, 14)
//   conv 16->32, 3x3, padding 1, ReLU         (B, 32, 14, 14)  32 detectors of patterns of patterns
//   max pool 2x2                              (B, 32, 7, 7)
//   flatten                                   (B, 1568)
//   linear 1568 -> 10                         (B, 10)          one score per class
// 20,490 weights, 13 times fewer than the 784-256-256-10 MLP, and it beats it: about 88% test accuracy
// after 2 epochs. Channels play the part that neurons per layer play in an MLP (more = more patterns,
// more time), and stacking conv layers the part of hidden layers (deeper = larger, more abstract
// patterns: the second layer's 3x3 window covers 8x8 pixels of the input).
//
// The other knobs are those of example 04 (see its comment): --batch-size (images per gradient step:
// a better gradient estimate per step, but fewer steps per epoch), --lr (how far each step moves the
// weights: too small crawls, too large diverges), --epochs, --optimizer sgd|adam|adamw.
//
// Run:   05_fashion_cnn [--batch-size 64] [--lr 1e-3] [--epochs 2] [--optimizer sgd|adam|adamw]
//                       [--seed 1] [--threads N] [--limit N] [--out DIR]
//        05_fashion_cnn --eval [FILE]   only the test accuracy of a saved model
//                                          (default FILE: DIR/05_fashion_cnn.safetensors)
// Writes 05_fashion_cnn.safetensors, 05_fashion_cnn_loss.csv/.svg and 05_fashion_cnn_accuracy.csv/.svg
// into the current directory (or DIR). Needs Fashion-MNIST (Debian: sudo apt-get install
// dataset-fashion-mnist); --data DIR to use another copy.

#include <cstdio>
#include <string>

#include <grad/grad.hpp>

#include "common.hpp"
#include "fashion_common.hpp"

int main(int argc, char** argv) {
  const std::string name = "05_fashion_cnn";
  examples::fashion_flags flags;
  flags.epochs = 2;
  examples::arg_parser args(name, "Trains a small convolutional network on Fashion-MNIST.");
  examples::add_fashion_flags(args, flags);
  examples::eval_flag_argv argv2(argc, argv);
  if (!args.parse(argv2.argc(), argv2.argv()))
    return args.exit_code();
  examples::train_config cfg;
  if (!examples::finish_fashion_flags(flags, cfg, name))
    return 2;
  if (flags.eval.empty() && !examples::prepare_output_dir(flags.out))
    return 1;

  // The images as (N, 1, 28, 28): one channel (grey) of 28x28 pixels, the layout convolutions expect,
  // standardised to mean 0 and standard deviation 1 as in example 04.
  examples::fashion_data data;
  if (!examples::load_fashion_or_explain(flags, /*flatten=*/false, name, data))
    return 2;

  try {
    // The network; its layers are listed in make_fashion_cnn (fashion_common.hpp).
    examples::fashion_cnn net = examples::make_fashion_cnn(flags.seed);

    if (!flags.eval.empty()) {
      grad::io::load(net, flags.eval);
      const double acc = examples::accuracy(net, data.test_images, data.test_labels);
      std::printf("%s: CNN from %s\ntest accuracy: %.2f%% on %zu test images\n", name.c_str(),
                  flags.eval.string().c_str(), 100 * acc, data.test_images.size(0));
      return 0;
    }

    std::printf("CNN conv(1->16)-pool-conv(16->32)-pool-linear(1568->10) (%zu parameters)\n"
                "on %zu training images, %zu test images\n"
                "optimizer %s, lr %g, batch size %zu, %d epochs, threads: %d\n\n",
                grad::nn::parameter_count(net), data.train_images.size(0), data.test_images.size(0),
                flags.optimizer.c_str(), cfg.lr, cfg.batch_size, cfg.epochs, grad::get_num_threads());
    std::fflush(stdout);

    const examples::train_history h = examples::train_classifier(
        net, data, cfg, [&](const examples::epoch_result& r) { examples::print_epoch(r, cfg.epochs); });

    const auto model = flags.out / (name + ".safetensors");
    grad::io::save(net, model, {.metadata = {{"example", name}}});
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
