// The code snippets of docs/modules.md and docs/losses.md, compiled and run, so the docs stay true.
#include <doctest/doctest.h>

#include <grad/functional/loss.hpp>
#include <grad/grad.hpp>
#include <grad/nn/nn.hpp>

namespace nn = grad::nn;

namespace {

// docs/modules.md, "Writing your own module"
struct net : nn::module_base<net> {
  nn::linear fc1{784, 256};
  nn::linear fc2{256, 10};
  nn::dropout drop{0.1};

  grad::tensor forward(const grad::tensor& x) { return fc2(drop(grad::relu(fc1(x)))); }

  template <class V>
  void visit(V& v) {
    v.child("fc1", fc1);   // parameters fc1.weight, fc1.bias
    v.child("drop", drop); // no parameters, but it follows train()/eval()
    v.child("fc2", fc2);
  }
};

} // namespace

TEST_CASE("docs/modules.md") {
  net m;
  std::vector<std::string> names;
  for (const auto& [n, t] : m.named_parameters())
    names.push_back(n);
  CHECK(names == std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"});
  CHECK(m(grad::randn({2, 784})).shape() == grad::shape_type{2, 10});

  // sequential
  auto model = nn::sequential(nn::linear(784, 256), nn::relu(), nn::linear(256, 10));
  grad::tensor logits = model(grad::randn({32, 784})); // (32, 10)
  nn::linear& first = model.get<0>();                  // module i by index
  CHECK(logits.shape() == grad::shape_type{32, 10});
  CHECK(first.out_features() == 256);

  auto lm = nn::sequential(nn::embedding(100, 32), nn::layer_norm(32), nn::linear(32, 100));
  grad::tensor out = lm(grad::index_tensor{{1, 2, 3}, {4, 5, 6}}); // (2, 3, 100)
  CHECK(out.shape() == grad::shape_type{2, 3, 100});

  // mlp
  nn::mlp classifier(784, {256, 256}, 10);         // relu by default
  std::size_t n = nn::parameter_count(classifier); // 269322
  nn::mlp smooth(2, {16}, 1, nn::gelu());          // any callable on tensors
  CHECK(n == 269322);
  CHECK(smooth(grad::randn({3, 2})).shape() == grad::shape_type{3, 1});

  // any_module
  const bool use_gelu = true;
  std::vector<nn::any_module> layers;
  layers.push_back(nn::linear(8, 8));
  layers.push_back(use_gelu ? nn::any_module(nn::gelu()) : nn::any_module(nn::relu()));
  layers.push_back(nn::linear(8, 1));
  grad::tensor h = grad::randn({4, 8});
  for (auto& l : layers)
    h = l(h);
  nn::linear* first_layer = layers[0].target<nn::linear>(); // back to the concrete type
  CHECK(first_layer != nullptr);
  CHECK(h.shape() == grad::shape_type{4, 1});

  // training and evaluation
  model.eval();
  {
    grad::no_grad guard;
    grad::tensor pred = model(grad::randn({1, 784}));
    CHECK(!pred.requires_grad());
  }
  model.train();

  // initialisation
  namespace init = nn::init;
  grad::generator gen(42);
  nn::linear fc(128, 64);
  init::kaiming_normal(fc.weight, {.mode = init::fan_mode::fan_in, .nonlinearity = "relu"},
                       gen); // std = sqrt(2 / 128)
  init::zeros(fc.bias);
  init::xavier_uniform(fc.weight, init::calculate_gain("tanh"), gen); // U(+-gain sqrt(6 / (128 + 64)))
  init::normal(fc.weight, 0.0, 0.02, gen);                            // GPT-2's N(0, 0.02^2)
  init::uniform(fc.bias, -0.1, 0.1, gen);
  CHECK(init::fans(fc.weight) == std::pair<std::size_t, std::size_t>{128, 64});
}

TEST_CASE("docs/losses.md") {
  grad::tensor logits = grad::randn({4, 10}, {.requires_grad = true}); // (N, C)
  grad::index_tensor targets{3, 1, -100, 7};                           // (N), -100 is ignored
  grad::tensor loss = grad::cross_entropy(logits, targets, {.label_smoothing = 0.1});
  loss.backward();
  CHECK(logits.has_grad());

  const std::size_t B = 2, T = 3, V = 5;
  grad::tensor lm_logits = grad::randn({B, T, V}, {.requires_grad = true});
  grad::index_tensor tokens({1, 2, 3, 4, 0, 1}, {B, T});
  grad::tensor lm_loss =
      grad::cross_entropy(grad::reshape(lm_logits, {-1, static_cast<std::int64_t>(V)}), tokens.reshape({-1}));
  CHECK(lm_loss.shape() == grad::shape_type{});

  grad::tensor pred = grad::randn({8, 1}, {.requires_grad = true});
  grad::tensor y = grad::randn({8, 1});
  grad::tensor l2 = grad::mse_loss(pred, y);
  grad::tensor per_elem =
      grad::huber_loss(pred, y, {.reduction = grad::reduction::none, .delta = 0.5}); // (8, 1)
  grad::tensor total = grad::l1_loss(pred, y, {.reduction = grad::reduction::sum});
  CHECK(per_elem.shape() == grad::shape_type{8, 1});
  CHECK(total.shape() == grad::shape_type{});
  CHECK(l2.item() >= 0);
}
