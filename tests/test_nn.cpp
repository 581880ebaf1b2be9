// Tests of grad::nn: the module concept, module_base (named parameters and buffers, train/eval,
// zero_grad), linear/mlp/sequential/any_module, the layer modules, and nn/init.hpp's distributions.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include <grad/grad.hpp>
#include <grad/nn/nn.hpp>

#include "op_check.hpp"

using grad::shape_type;
namespace nn = grad::nn;

namespace {

std::vector<std::string> names(const nn::named_tensors<float>& ps) {
  std::vector<std::string> r;
  for (const auto& [n, t] : ps)
    r.push_back(n);
  return r;
}

struct stats {
  double min = INFINITY, max = -INFINITY, mean = 0, stddev = 0;
};
template <class T>
stats stats_of(const grad::basic_tensor<T>& t) {
  stats s;
  for (std::size_t i = 0; i < t.numel(); ++i) {
    s.min = std::min<double>(s.min, t.data()[i]);
    s.max = std::max<double>(s.max, t.data()[i]);
    s.mean += t.data()[i] / double(t.numel());
  }
  for (std::size_t i = 0; i < t.numel(); ++i)
    s.stddev += std::pow(t.data()[i] - s.mean, 2) / double(t.numel());
  s.stddev = std::sqrt(s.stddev);
  return s;
}

/// A user-defined module built on module_base, with children, a list of children and a buffer.
struct tiny_net : nn::module_base<tiny_net> {
  nn::linear fc1{4, 8};
  std::vector<nn::linear> blocks;
  nn::linear fc2{8, 2};
  grad::tensor steps = grad::zeros<float>({});
  tiny_net() {
    blocks.emplace_back(8, 8);
    blocks.emplace_back(8, 8);
  }
  grad::tensor forward(const grad::tensor& x) {
    auto h = grad::relu(fc1(x));
    for (auto& b : blocks)
      h = grad::relu(b(h));
    return fc2(h);
  }
  template <class V>
  void visit(V& v) {
    v.child("fc1", fc1);
    v.child("h", blocks);
    v.child("fc2", fc2);
    v.buffer("steps", steps);
  }
};

} // namespace

static_assert(nn::module<nn::linear>);
static_assert(nn::module<nn::mlp>);
static_assert(nn::module<nn::relu>);
static_assert(nn::module<nn::dropout>);
static_assert(nn::module<nn::batch_norm2d>);
static_assert(nn::module<nn::any_module>);
static_assert(nn::module<tiny_net>);
static_assert(nn::module_for<nn::linear, grad::tensor>);
static_assert(nn::module_for<nn::embedding, grad::index_tensor>);
static_assert(!nn::module<int>);
static_assert(nn::module<nn::basic_linear<double>>);

TEST_CASE("linear: shapes, names, PyTorch default init bounds, no bias") {
  grad::generator gen(1);
  nn::linear fc(100, 30, {}, gen);
  CHECK(fc.weight.shape() == shape_type{30, 100});
  CHECK(fc.bias.shape() == shape_type{30});
  CHECK(names(fc.named_parameters()) == std::vector<std::string>{"weight", "bias"});
  CHECK(nn::parameter_count(fc) == 3030);
  const auto ws = stats_of(fc.weight), bs = stats_of(fc.bias);
  const double bound = 1 / std::sqrt(100.0);
  CHECK(ws.min >= -bound);
  CHECK(ws.max <= bound);
  CHECK(ws.max > 0.9 * bound);                                               // fills the range
  CHECK(ws.stddev == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.05)); // U(-b, b) has std b / sqrt 3
  CHECK(bs.min >= -bound);
  CHECK(bs.max <= bound);
  CHECK(fc.weight.requires_grad());
  const auto y = fc(grad::randn({2, 5, 100}));
  CHECK(y.shape() == shape_type{2, 5, 30});

  nn::linear nb(3, 2, {.bias = false});
  CHECK(!nb.bias.defined());
  CHECK(names(nb.named_parameters()) == std::vector<std::string>{"weight"});
  // seeded: the same generator seed gives the same parameters
  grad::generator g1(7), g2(7);
  CHECK(op_check::values(nn::linear(5, 5, g1).weight) == op_check::values(nn::linear(5, 5, g2).weight));
}

TEST_CASE("mlp 784-256-256-10: 269322 parameters named layers.i.weight / bias") {
  nn::mlp m(784, {256, 256}, 10);
  CHECK(nn::parameter_count(m) == 269322);
  CHECK(names(m.named_parameters()) == std::vector<std::string>{"layers.0.weight", "layers.0.bias",
                                                                "layers.1.weight", "layers.1.bias",
                                                                "layers.2.weight", "layers.2.bias"});
  CHECK(m(grad::randn({3, 784})).shape() == shape_type{3, 10});
  // a custom activation: a module or any callable
  nn::basic_mlp<double> g(3, {4}, 2, nn::basic_gelu<double>(grad::gelu_approximate::tanh));
  const auto x = grad::randn<double>({2, 3});
  const auto manual = g.layers[1](grad::gelu(g.layers[0](x), grad::gelu_approximate::tanh));
  CHECK(op_check::values(g(x)) == op_check::values(manual));
}

TEST_CASE("sequential: one type per network, positional names, forward chains") {
  auto net = nn::sequential(nn::linear(4, 8), nn::relu(), nn::dropout(0.5), nn::linear(8, 3));
  static_assert(std::is_same_v<decltype(net), nn::sequential<nn::linear, nn::relu, nn::dropout, nn::linear>>);
  static_assert(std::is_same_v<decltype(net)::value_type, float>);
  static_assert(decltype(net)::size() == 4);
  CHECK(names(net.named_parameters()) ==
        std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias"});
  net.eval();
  const auto x = grad::randn({5, 4});
  const auto manual = net.get<3>()(grad::relu(net.get<0>()(x)));
  CHECK(op_check::values(net(x)) == op_check::values(manual));
  // nested sequentials get nested names
  auto outer = nn::sequential(nn::sequential(nn::linear(2, 2), nn::tanh()), nn::linear(2, 1));
  CHECK(names(outer.named_parameters()) ==
        std::vector<std::string>{"0.0.weight", "0.0.bias", "1.weight", "1.bias"});
  // modules that take ids first
  auto lm = nn::sequential(nn::embedding(10, 4), nn::layer_norm(4), nn::linear(4, 10));
  CHECK(lm(grad::index_tensor{{1, 2, 3}, {4, 5, 6}}).shape() == shape_type{2, 3, 10});
}

TEST_CASE("train / eval reach every child; dropout and batch_norm follow them") {
  auto net = nn::sequential(nn::linear(3, 3), nn::dropout(0.9), nn::batch_norm1d(3));
  CHECK(net.is_training());
  CHECK(net.get<1>().is_training());
  net.eval();
  CHECK(!net.is_training());
  CHECK(!net.get<1>().is_training());
  CHECK(!net.get<2>().is_training());
  const auto x = grad::randn({4, 3});
  CHECK(op_check::values(net.get<1>()(x)) == op_check::values(x)); // dropout is the identity in eval
  net.train();
  CHECK(net.get<2>().is_training());
  tiny_net t;
  t.eval();
  CHECK(!t.blocks[1].is_training());
}

TEST_CASE("user modules on module_base: dotted names, buffers, zero_grad, parameters share storage") {
  tiny_net t;
  CHECK(names(t.named_parameters()) == std::vector<std::string>{"fc1.weight", "fc1.bias", "h.0.weight",
                                                                "h.0.bias", "h.1.weight", "h.1.bias",
                                                                "fc2.weight", "fc2.bias"});
  CHECK(names(t.named_buffers()) == std::vector<std::string>{"steps"});
  CHECK(nn::parameter_count(t) == 4 * 8 + 8 + 2 * (8 * 8 + 8) + 8 * 2 + 2);
  grad::sum(t(grad::randn({3, 4}))).backward();
  auto params = t.parameters();
  CHECK(params[0].impl() == t.fc1.weight.impl());
  CHECK(params[0].has_grad());
  t.zero_grad();
  for (const auto& p : params)
    CHECK(op_check::values(p.grad()) == std::vector<double>(p.numel(), 0.0));
}

TEST_CASE("batch_norm modules: buffers, running statistics, eval") {
  nn::batch_norm2d bn(3);
  CHECK(names(bn.named_parameters()) == std::vector<std::string>{"weight", "bias"});
  CHECK(names(bn.named_buffers()) == std::vector<std::string>{"running_mean", "running_var"});
  grad::generator gen(4);
  const auto x = grad::randn({8, 3, 4, 4}, gen, {}, 2.0, 3.0);
  const auto y = bn(x);
  const auto s = stats_of(y);
  CHECK(s.mean == doctest::Approx(0.0).epsilon(1e-4).scale(1));
  CHECK(s.stddev == doctest::Approx(1.0).epsilon(1e-3));
  CHECK(bn.running_mean.data()[0] == doctest::Approx(0.2).epsilon(0.15)); // 0.9 * 0 + 0.1 * ~2
  bn.eval();
  const auto z = bn(x); // running statistics now: not normalised to unit variance
  CHECK(stats_of(z).stddev > 1.5);
  CHECK_THROWS_AS((void)bn(grad::randn({2, 3})), grad::shape_error);
  nn::batch_norm1d b1(2, {.affine = false, .track_running_stats = false});
  CHECK(nn::parameter_count(b1) == 0);
  CHECK(b1.named_buffers().empty());
  CHECK(b1(grad::randn({4, 2, 5})).shape() == shape_type{4, 2, 5});
  CHECK_THROWS_AS((void)b1(grad::randn({4, 2, 5, 5})), grad::shape_error);
}

TEST_CASE("conv2d, pooling, flatten modules: a small CNN") {
  grad::generator gen(3);
  auto cnn = nn::sequential(nn::conv2d(1, 4, 3, {.padding = 1}, gen), nn::batch_norm2d(4), nn::relu(),
                            nn::max_pool2d(2), nn::conv2d(4, 8, {3, 2}, {.stride = 2, .bias = false}, gen),
                            nn::avg_pool2d(1), nn::flatten(), nn::linear(8 * 1 * 2, 10, gen));
  CHECK(names(cnn.named_parameters()) == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias",
                                                                  "4.weight", "7.weight", "7.bias"});
  CHECK(cnn.get<4>().weight.shape() == shape_type{8, 4, 3, 2});
  // options arrive intact (g++ 12.2 -march=native once broadcast stride 2 into the padding here)
  CHECK(cnn.get<4>().options().stride == grad::size2(2));
  CHECK(cnn.get<4>().options().padding == grad::size2(0));
  CHECK(cnn.get<0>().options().padding == grad::size2(1));
  const auto out = cnn(grad::randn({2, 1, 8, 8}, gen));
  CHECK(out.shape() == shape_type{2, 10});
  const auto w = stats_of(cnn.get<0>().weight);
  CHECK(w.max <= 1 / 3.0); // fan_in = 1 * 3 * 3
  CHECK(w.min >= -1 / 3.0);
  grad::cross_entropy(out, grad::index_tensor{3, 7}).backward();
  CHECK(cnn.get<0>().weight.has_grad());
}

TEST_CASE("layer_norm, embedding, activation modules") {
  nn::layer_norm ln(6);
  CHECK(names(ln.named_parameters()) == std::vector<std::string>{"weight", "bias"});
  CHECK(op_check::values(ln.weight) == std::vector<double>(6, 1.0));
  nn::layer_norm ln2(6, 1e-6);
  nn::layer_norm ln3(shape_type{2, 3}, {.elementwise_affine = false});
  CHECK(nn::parameter_count(ln3) == 0);
  CHECK(ln3(grad::randn({4, 2, 3})).shape() == shape_type{4, 2, 3});
  nn::layer_norm ln4(6, {.bias = false});
  CHECK(names(ln4.named_parameters()) == std::vector<std::string>{"weight"});
  CHECK(ln2(grad::randn({2, 6})).shape() == shape_type{2, 6});

  grad::generator gen(8);
  nn::embedding emb(1000, 16, gen);
  const auto es = stats_of(emb.weight);
  CHECK(es.mean == doctest::Approx(0.0).scale(1).epsilon(0.02));
  CHECK(es.stddev == doctest::Approx(1.0).epsilon(0.03));
  CHECK(emb(grad::index_tensor{{1, 2}, {3, 4}}).shape() == shape_type{2, 2, 16});
  CHECK_THROWS_AS((void)emb(grad::index_tensor{1000}), grad::value_error);

  const auto x = grad::from<float>({-1.f, 0.5f});
  CHECK(op_check::values(nn::relu()(x)) == std::vector<double>{0.0, 0.5});
  CHECK(nn::sigmoid()(x).data()[1] == doctest::Approx(1 / (1 + std::exp(-0.5))));
  CHECK(nn::tanh()(x).data()[0] == doctest::Approx(std::tanh(-1.0)));
  CHECK(nn::softmax()(x).data()[0] + nn::softmax()(x).data()[1] == doctest::Approx(1.0));
  CHECK(nn::log_softmax(0)(x).data()[0] == doctest::Approx(std::log(nn::softmax(0)(x).data()[0])));
  CHECK(nn::leaky_relu(0.2)(x).data()[0] == doctest::Approx(-0.2));
  CHECK(nn::gelu()(x).data()[1] == doctest::Approx(grad::gelu(x).data()[1]));
  CHECK(nn::silu()(x).data()[1] == doctest::Approx(0.5 / (1 + std::exp(-0.5))));
  CHECK(nn::identity()(x).impl() == x.impl());
  CHECK(nn::flatten(0)(grad::zeros<float>({2, 3})).shape() == shape_type{6});
  CHECK_THROWS_AS(nn::dropout(1.5), grad::value_error);
}

TEST_CASE("any_module: run-time containers of heterogeneous modules") {
  std::vector<nn::any_module> layers{nn::linear(3, 4), nn::gelu(), nn::dropout(0.5), nn::linear(4, 2)};
  CHECK(nn::parameter_count(layers[0]) == 16);
  for (auto& l : layers)
    l.eval();
  CHECK(!layers[2].is_training());
  auto x = grad::randn({5, 3});
  for (auto& l : layers)
    x = l(x);
  CHECK(x.shape() == shape_type{5, 2});
  REQUIRE(layers[0].target<nn::linear>() != nullptr);
  CHECK(layers[0].target<nn::linear>()->in_features() == 3);
  CHECK(layers[1].target<nn::linear>() == nullptr);
  nn::any_module copy = layers[3]; // copies share the module
  CHECK(copy.parameters()[0].impl() == layers[3].parameters()[0].impl());
  nn::any_module bn = nn::batch_norm1d(2);
  CHECK(bn.named_buffers().size() == 2);
}

TEST_CASE("gradcheck through a double-precision network of modules") {
  grad::generator gen(5);
  auto net = nn::sequential(nn::basic_linear<double>(3, 4, gen), nn::basic_layer_norm<double>(4),
                            nn::basic_gelu<double>(), nn::basic_linear<double>(4, 2, gen));
  const auto x = grad::randn<double>({2, 3}, gen);
  auto params = net.parameters();
  const auto r = grad::gradcheck(
      [&](const auto&) {
        return grad::cross_entropy(net(x), grad::index_tensor{1, 0});
      },
      params);
  CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("init: bounds, means and standard deviations") {
  grad::generator gen(11);
  auto w = grad::zeros<float>({256, 128});
  namespace init = nn::init;
  CHECK(init::fans(w) == std::pair<std::size_t, std::size_t>{128, 256});
  CHECK(init::fans(grad::zeros<float>({8, 4, 3, 3})) == std::pair<std::size_t, std::size_t>{36, 72});
  CHECK_THROWS_AS(init::fans(grad::zeros<float>({3})), grad::shape_error);

  init::kaiming_uniform(w, {.nonlinearity = "relu"}, gen); // bound sqrt(2) sqrt(3 / 128)
  auto s = stats_of(w);
  const double kb = std::sqrt(2.0) * std::sqrt(3.0 / 128);
  CHECK(s.max <= kb);
  CHECK(s.min >= -kb);
  CHECK(s.stddev == doctest::Approx(kb / std::sqrt(3.0)).epsilon(0.03));

  init::kaiming_normal(w, {.mode = init::fan_mode::fan_out, .nonlinearity = "relu"},
                       gen); // std sqrt(2 / 256)
  s = stats_of(w);
  CHECK(s.stddev == doctest::Approx(std::sqrt(2.0 / 256)).epsilon(0.03));
  CHECK(std::abs(s.mean) < 0.005);

  init::xavier_uniform(w, 1.0, gen); // bound sqrt(6 / 384)
  s = stats_of(w);
  CHECK(s.max <= std::sqrt(6.0 / 384));
  CHECK(s.stddev == doctest::Approx(std::sqrt(6.0 / 384) / std::sqrt(3.0)).epsilon(0.03));

  init::xavier_normal(w, 2.0, gen); // std 2 sqrt(2 / 384)
  CHECK(stats_of(w).stddev == doctest::Approx(2 * std::sqrt(2.0 / 384)).epsilon(0.03));

  init::normal(w, 1.0, 0.02, gen);
  s = stats_of(w);
  CHECK(s.mean == doctest::Approx(1.0).epsilon(0.001));
  CHECK(s.stddev == doctest::Approx(0.02).epsilon(0.03));

  init::uniform(w, -2.0, 3.0, gen);
  s = stats_of(w);
  CHECK(s.min >= -2.0);
  CHECK(s.max < 3.0);
  CHECK(s.mean == doctest::Approx(0.5).epsilon(0.03));

  CHECK(stats_of(init::zeros(w)).max == 0.0);
  CHECK(stats_of(init::ones(w)).min == 1.0);
  CHECK(stats_of(init::constant(w, 0.5)).mean == doctest::Approx(0.5));
  CHECK(init::calculate_gain("tanh") == doctest::Approx(5.0 / 3));
  CHECK(init::calculate_gain("leaky_relu", std::sqrt(5.0)) == doctest::Approx(std::sqrt(1.0 / 3)));
  CHECK_THROWS_AS(init::calculate_gain("swish"), grad::value_error);
  CHECK_THROWS_AS(init::uniform(w, 1.0, 0.0), grad::value_error);

  // writing parameters does not record on the tape
  auto p = grad::zeros<float>({4, 4}, {.requires_grad = true});
  const auto before = grad::current_tape().size();
  init::normal(p);
  CHECK(grad::current_tape().size() == before);
  CHECK(p.is_leaf());
}

TEST_CASE("init::no_init_weights: random initialisers draw nothing while it lives") {
  namespace init = nn::init;
  grad::generator gen(7), twin(7);
  auto w = grad::zeros<float>({4, 8});
  {
    init::no_init_weights skip;
    { init::no_init_weights nested; }
    init::normal(w, 0.0, 1.0, gen); // still skipped: the outer guard lives
    init::uniform(w, -1.0, 1.0, gen);
    init::kaiming_uniform(w, {}, gen);
    CHECK_THROWS_AS(init::normal(w, 0.0, -1.0, gen), grad::value_error); // arguments are still checked
    nn::linear fc(8, 4, gen);
    CHECK(grad::sum(grad::abs(fc.weight)).item() == 0.0f);
    init::constant(w, 2.0); // constants are not random: they still apply
  }
  CHECK(w.value()(3, 7) == 2.0f);
  CHECK(gen.next_u64() == twin.next_u64()); // nothing was drawn
  init::normal(w, 0.0, 1.0, gen);           // after the guard: drawn again
  CHECK(grad::sum(grad::abs(w)).item() > 0.0f);
}
