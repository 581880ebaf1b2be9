// Tests of grad/optim optimizers: each update against an independent scalar implementation of
// PyTorch's algorithm box (written out below, in double) and against hand-computed values; option and
// parameter validation; state_dict round trips and load errors; end-to-end training with autograd.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <grad/grad.hpp>
#include <grad/optim/optim.hpp>

namespace {

namespace optim = grad::optim;

// Runs `f` and checks it throws grad::value_error whose message contains every one of `parts`.
template <class F>
void check_value_error(F&& f, std::initializer_list<std::string> parts) {
  bool thrown = false;
  try {
    f();
  } catch (const grad::value_error& e) {
    thrown = true;
    const std::string what = e.what();
    for (const auto& p : parts) {
      INFO("message: " << what);
      CHECK(what.find(p) != std::string::npos);
    }
  }
  CHECK(thrown);
}

// ------------------------------------------------------------------------------------------------
// Reference implementations: one parameter as a vector of doubles, written from the pseudo-code on
// each torch.optim page (docs.pytorch.org/docs/stable/optim.html), not from the code under test.

struct ref_sgd {
  explicit ref_sgd(const optim::sgd_options& opt) : o(opt) {}
  optim::sgd_options o;
  std::vector<double> b;
  int t = 0;
  void step(std::vector<double>& x, const std::vector<double>& grad) {
    ++t;
    b.resize(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      double g = o.maximize ? -grad[i] : grad[i];
      if (o.weight_decay != 0)
        g += o.weight_decay * x[i];
      if (o.momentum != 0) {
        b[i] = t > 1 ? o.momentum * b[i] + (1 - o.dampening) * g : g;
        g = o.nesterov ? g + o.momentum * b[i] : b[i];
      }
      x[i] -= o.lr * g;
    }
  }
};

// Adam and AdamW: textbook form with m^ = m / (1 - b1^t), v^ = v / (1 - b2^t).
struct ref_adam {
  ref_adam(const optim::adam_options& opt, bool decoupled_decay) : o(opt), decoupled(decoupled_decay) {}
  optim::adam_options o;
  bool decoupled = false;
  std::vector<double> m, v, vmax;
  int t = 0;
  void step(std::vector<double>& x, const std::vector<double>& grad) {
    ++t;
    m.resize(x.size());
    v.resize(x.size());
    vmax.resize(x.size());
    const double b1 = o.betas[0], b2 = o.betas[1];
    for (std::size_t i = 0; i < x.size(); ++i) {
      double g = o.maximize ? -grad[i] : grad[i];
      if (decoupled)
        x[i] *= 1 - o.lr * o.weight_decay;
      else if (o.weight_decay != 0)
        g += o.weight_decay * x[i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      const double mhat = m[i] / (1 - std::pow(b1, t));
      double vhat = v[i] / (1 - std::pow(b2, t));
      if (o.amsgrad) {
        vmax[i] = std::max(vmax[i], v[i]);
        vhat = vmax[i] / (1 - std::pow(b2, t));
      }
      x[i] -= o.lr * mhat / (std::sqrt(vhat) + o.eps);
    }
  }
};

struct ref_rmsprop {
  explicit ref_rmsprop(const optim::rmsprop_options& opt) : o(opt) {}
  optim::rmsprop_options o;
  std::vector<double> v, b, ga;
  void step(std::vector<double>& x, const std::vector<double>& grad) {
    v.resize(x.size());
    b.resize(x.size());
    ga.resize(x.size());
    const double a = o.alpha;
    for (std::size_t i = 0; i < x.size(); ++i) {
      double g = o.maximize ? -grad[i] : grad[i];
      if (o.weight_decay != 0)
        g += o.weight_decay * x[i];
      v[i] = a * v[i] + (1 - a) * g * g;
      double vt = v[i];
      if (o.centered) {
        ga[i] = a * ga[i] + (1 - a) * g;
        vt -= ga[i] * ga[i];
      }
      if (o.momentum > 0) {
        b[i] = o.momentum * b[i] + g / (std::sqrt(vt) + o.eps);
        x[i] -= o.lr * b[i];
      } else {
        x[i] -= o.lr * g / (std::sqrt(vt) + o.eps);
      }
    }
  }
};

struct ref_adagrad {
  explicit ref_adagrad(const optim::adagrad_options& opt) : o(opt) {}
  optim::adagrad_options o;
  std::vector<double> sum;
  int t = 0;
  void step(std::vector<double>& x, const std::vector<double>& grad) {
    ++t;
    sum.resize(x.size(), o.initial_accumulator_value);
    const double clr = o.lr / (1 + (t - 1) * o.lr_decay);
    for (std::size_t i = 0; i < x.size(); ++i) {
      double g = o.maximize ? -grad[i] : grad[i];
      if (o.weight_decay != 0)
        g += o.weight_decay * x[i];
      sum[i] += g * g;
      x[i] -= clr * g / (std::sqrt(sum[i]) + o.eps);
    }
  }
};

// ------------------------------------------------------------------------------------------------
// The harness: three parameters. `a` (37 elements: full SIMD batches plus a tail) gets a gradient on
// every step; `b` (3, 4) only from step 3 on, so its step count and bias corrections lag behind; `c`
// never gets one and must stay untouched, with no state (PyTorch skips params whose grad is None).

std::vector<double> initial_values(std::size_t n, double phase) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = std::sin(0.9 * static_cast<double>(i) + phase) + 0.1;
  return v;
}

// The "gradient" at step t: depends on the current value and changes sign, so momentum, maxima and
// centering all matter.
double grad_of(double x, std::size_t i, int t) {
  return 0.5 * x + 0.3 * std::sin(1.7 * static_cast<double>(i) + t);
}

template <class T>
grad::basic_tensor<T> make_param(const std::vector<double>& v, const grad::shape_type& shape) {
  std::vector<T> tv(v.begin(), v.end());
  return grad::from<T>(tv, shape, {.requires_grad = true});
}

template <class T>
void set_grad(grad::basic_tensor<T>& p, int t) {
  T* g = p.grad().data();
  const T* x = p.data();
  for (std::size_t i = 0; i < p.numel(); ++i)
    g[i] = static_cast<T>(grad_of(static_cast<double>(x[i]), i, t));
}

std::vector<double> ref_grad(const std::vector<double>& x, int t) {
  std::vector<double> g(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    g[i] = grad_of(x[i], i, t);
  return g;
}

template <class T>
double tolerance() {
  return std::is_same_v<T, float> ? 3e-5 : 1e-12;
}

template <class T>
void check_close(const grad::basic_tensor<T>& p, const std::vector<double>& expected, int t) {
  REQUIRE(p.numel() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double got = static_cast<double>(p.data()[i]);
    INFO("step " << t << ", element " << i << ": got " << got << ", expected " << expected[i]);
    CHECK(std::abs(got - expected[i]) <= tolerance<T>() * (1 + std::abs(expected[i])));
  }
}

template <class T, class Opt, class Ref>
void check_against_reference(const typename Opt::options_type& options, Ref ref, int steps = 6) {
  auto xa = initial_values(37, 0.0), xb = initial_values(12, 1.0), xc = initial_values(2, 2.0);
  auto a = make_param<T>(xa, {37}), b = make_param<T>(xb, {3, 4}), c = make_param<T>(xc, {2});
  Opt opt({a, b, c}, options);
  Ref ra = ref, rb = ref;
  for (int t = 1; t <= steps; ++t) {
    set_grad(a, t);
    ra.step(xa, ref_grad(xa, t));
    if (t >= 3) {
      set_grad(b, t);
      rb.step(xb, ref_grad(xb, t));
    }
    opt.step();
    check_close(a, xa, t);
    check_close(b, xb, t);
    check_close(c, xc, t);
  }
  CHECK(opt.step_count(0) == steps);
  CHECK(opt.step_count(1) == steps - 2);
  CHECK(opt.step_count(2) == 0);
  CHECK_FALSE(c.has_grad());
}

} // namespace

TEST_CASE_TEMPLATE("sgd matches PyTorch's algorithm", T, float, double) {
  const std::vector<optim::sgd_options> cases = {
      {.lr = 0.1},
      {.lr = 0.1, .momentum = 0.9},
      {.lr = 0.05, .momentum = 0.9, .dampening = 0.5},
      {.lr = 0.05, .momentum = 0.9, .nesterov = true},
      {.lr = 0.05, .momentum = 0.8, .weight_decay = 0.1, .nesterov = true},
      {.lr = 0.02, .momentum = 0.5, .dampening = 0.1, .weight_decay = 0.05, .maximize = true},
  };
  for (const auto& o : cases) {
    CAPTURE(o.momentum);
    CAPTURE(o.nesterov);
    check_against_reference<T, optim::sgd<T>>(o, ref_sgd{o});
  }
}

TEST_CASE_TEMPLATE("adam matches PyTorch's algorithm", T, float, double) {
  const std::vector<optim::adam_options> cases = {
      {.lr = 0.01},
      {.lr = 0.01, .weight_decay = 0.1},
      {.lr = 0.01, .amsgrad = true},
      {.lr = 0.02, .betas = {0.8, 0.9}, .eps = 1e-6, .weight_decay = 0.01, .amsgrad = true, .maximize = true},
  };
  for (const auto& o : cases) {
    CAPTURE(o.amsgrad);
    check_against_reference<T, optim::adam<T>>(o, ref_adam{o, false});
  }
}

TEST_CASE_TEMPLATE("adamw matches PyTorch's algorithm", T, float, double) {
  const std::vector<optim::adamw_options> cases = {
      {.lr = 0.01},
      {.lr = 0.01, .weight_decay = 0.1, .amsgrad = true},
      {.lr = 0.03, .betas = {0.5, 0.75}, .eps = 1e-4, .weight_decay = 0.5, .maximize = true},
  };
  for (const auto& o : cases) {
    const optim::adam_options as_adam{.lr = o.lr,
                                      .betas = o.betas,
                                      .eps = o.eps,
                                      .weight_decay = o.weight_decay,
                                      .amsgrad = o.amsgrad,
                                      .maximize = o.maximize};
    check_against_reference<T, optim::adamw<T>>(o, ref_adam{as_adam, true});
  }
}

TEST_CASE_TEMPLATE("rmsprop matches PyTorch's algorithm", T, float, double) {
  const std::vector<optim::rmsprop_options> cases = {
      {.lr = 0.01},
      {.lr = 0.01, .centered = true},
      {.lr = 0.01, .momentum = 0.9},
      {.lr = 0.005, .alpha = 0.9, .eps = 1e-6, .weight_decay = 0.1, .momentum = 0.5, .centered = true},
      {.lr = 0.01, .alpha = 0.8, .maximize = true},
  };
  for (const auto& o : cases) {
    CAPTURE(o.centered);
    CAPTURE(o.momentum);
    check_against_reference<T, optim::rmsprop<T>>(o, ref_rmsprop{o});
  }
}

TEST_CASE_TEMPLATE("adagrad matches PyTorch's algorithm", T, float, double) {
  const std::vector<optim::adagrad_options> cases = {
      {.lr = 0.1},
      {.lr = 0.1, .lr_decay = 0.1, .weight_decay = 0.05},
      {.lr = 0.05, .initial_accumulator_value = 0.5, .eps = 1e-6, .maximize = true},
  };
  for (const auto& o : cases)
    check_against_reference<T, optim::adagrad<T>>(o, ref_adagrad{o});
}

// Literal values worked out by hand for f(x) = x^2 (gradient 2x) from x = 1, three steps.
TEST_CASE("hand-computed steps on f(x) = x^2") {
  auto run = [](auto&& opt, grad::dtensor& x) {
    std::vector<double> out;
    for (int t = 0; t < 3; ++t) {
      opt.zero_grad();
      x.grad().data()[0] = 2 * x.data()[0];
      opt.step();
      out.push_back(x.item());
    }
    return out;
  };
  auto check3 = [](const std::vector<double>& got, std::initializer_list<double> want) {
    std::size_t i = 0;
    for (double w : want) {
      CHECK(got[i] == doctest::Approx(w).epsilon(1e-12));
      ++i;
    }
  };
  auto fresh = [] { return grad::from<double>({1.0}, {.requires_grad = true}); };
  {
    // b1 = 2, x1 = 1 - 0.1*2; b2 = 0.9*2 + 1.6 = 3.4, x2 = 0.8 - 0.34; b3 = 0.9*3.4 + 0.92 = 3.98.
    auto x = fresh();
    check3(run(optim::sgd({x}, {.lr = 0.1, .momentum = 0.9}), x), {0.8, 0.46, 0.062});
  }
  {
    // Nesterov: d1 = 2 + 0.9*2 = 3.8, x1 = 0.62; b2 = 3.04, d2 = 1.24 + 2.736, x2 = 0.2224; x3 = -0.108352.
    auto x = fresh();
    check3(run(optim::sgd({x}, {.lr = 0.1, .momentum = 0.9, .nesterov = true}), x),
           {0.62, 0.2224, -0.108352});
  }
  {
    // Step 1: m^ = 2, v^ = 4, x1 = 1 - 0.1*2/(2 + 1e-8).
    auto x = fresh();
    check3(run(optim::adam({x}, {.lr = 0.1}), x), {0.9000000005, 0.8004122286917928, 0.7015862729460303});
  }
  {
    // Step 1: x = 1*(1 - 0.1*0.1) = 0.99, then the Adam step 0.1*2/(2 + 1e-8) with g from x = 1.
    auto x = fresh();
    check3(run(optim::adamw({x}, {.lr = 0.1, .weight_decay = 0.1}), x),
           {0.8900000004999999, 0.7815718559365048, 0.6751012216400698});
  }
  {
    // Step 1: v = 0.01*4 = 0.04, x1 = 1 - 0.01*2/(0.2 + 1e-8).
    auto x = fresh();
    check3(run(optim::rmsprop({x}, {.lr = 0.01}), x),
           {0.9000000049999998, 0.8329179679700331, 0.7799822732436351});
  }
  {
    // Step 1: s = 4, x1 = 1 - 0.1*2/(2 + 1e-10).
    auto x = fresh();
    check3(run(optim::adagrad({x}, {.lr = 0.1}), x),
           {0.900000000005, 0.8331035268450359, 0.7804561813568098});
  }
}

TEST_CASE("options are validated with errors naming the option and value") {
  auto w = grad::zeros<float>({3}, {.requires_grad = true});
  std::vector<grad::tensor> ps{w};
  check_value_error([&] { optim::sgd(ps, {.lr = -0.1}); }, {"sgd", "lr", "-0.1", ">= 0"});
  check_value_error([&] { optim::sgd(ps, {.momentum = -1}); }, {"momentum", "-1"});
  check_value_error([&] { optim::sgd(ps, {.dampening = 1.5}); }, {"dampening", "1.5"});
  check_value_error([&] { optim::sgd(ps, {.weight_decay = -1e-4}); }, {"weight_decay", "-1e-04"});
  check_value_error([&] { optim::sgd(ps, {.lr = 0.1, .nesterov = true}); }, {"nesterov", "momentum > 0"});
  check_value_error([&] { optim::sgd(ps, {.momentum = 0.9, .dampening = 0.1, .nesterov = true}); },
                    {"nesterov", "dampening = 0"});
  check_value_error([&] { optim::sgd(ps, {.lr = std::nan("")}); }, {"lr", "nan"});
  check_value_error([&] { optim::adam(ps, {.betas = {1.0, 0.999}}); }, {"adam", "betas[0]", "1", "[0, 1)"});
  check_value_error([&] { optim::adam(ps, {.betas = {0.9, -0.1}}); }, {"betas[1]", "-0.1"});
  check_value_error([&] { optim::adam(ps, {.eps = 0}); }, {"eps", "0", "> 0"});
  check_value_error([&] { optim::adamw(ps, {.weight_decay = -0.1}); }, {"adamw", "weight_decay", "-0.1"});
  check_value_error([&] { optim::rmsprop(ps, {.alpha = 1.2}); }, {"rmsprop", "alpha", "1.2"});
  check_value_error([&] { optim::rmsprop(ps, {.eps = -1e-8}); }, {"eps", "-1e-08"});
  check_value_error([&] { optim::rmsprop(ps, {.momentum = -0.5}); }, {"momentum", "-0.5"});
  check_value_error([&] { optim::adagrad(ps, {.lr_decay = -1}); }, {"adagrad", "lr_decay", "-1"});
  check_value_error([&] { optim::adagrad(ps, {.initial_accumulator_value = -0.1}); },
                    {"initial_accumulator_value", "-0.1"});
  optim::adam opt(ps);
  check_value_error([&] { opt.set_lr(-1); }, {"adam", "lr", "-1"});
  opt.set_lr(0.5);
  CHECK(opt.lr() == 0.5);
}

TEST_CASE("parameter lists are checked") {
  auto w = grad::zeros<float>({3}, {.requires_grad = true});
  auto frozen = grad::zeros<float>({2, 2});
  check_value_error([&] { optim::adam(std::vector<grad::tensor>{}); }, {"adam", "empty parameter list"});
  check_value_error([&] { optim::sgd({w, frozen}); }, {"parameter 1", "(2, 2)", "does not require grad"});
  check_value_error([&] { optim::sgd({w, grad::tensor()}); }, {"parameter 1", "undefined"});
  check_value_error([&] { optim::sgd({w, w}); }, {"parameter 1", "same tensor as parameter 0"});
  auto computed = w * 2.0f;
  check_value_error([&] { optim::rmsprop({w, computed}); }, {"parameter 1", "not a leaf"});
}

TEST_CASE("zero_grad zeroes the gradients and step skips parameters without one") {
  auto w = grad::ones<float>({4}, {.requires_grad = true});
  auto v = grad::ones<float>({4}, {.requires_grad = true});
  optim::sgd opt({w, v}, {.lr = 0.5});
  std::fill(w.grad().data(), w.grad().data() + 4, 1.0f);
  opt.step();
  CHECK(w.value()(0) == 0.5f);
  CHECK(v.value()(0) == 1.0f);
  CHECK_FALSE(v.has_grad()); // step() must not allocate a gradient
  opt.zero_grad();
  CHECK(w.grad()(3) == 0.0f);
  opt.step(); // a zero gradient: no change
  CHECK(w.value()(0) == 0.5f);
}

namespace {

// Runs `steps` steps of the harness gradients on (a, b) from initial values.
template <class T, class Opt>
void run_steps(Opt& opt, grad::basic_tensor<T>& a, grad::basic_tensor<T>& b, int from, int to) {
  for (int t = from; t <= to; ++t) {
    set_grad(a, t);
    if (t >= 2)
      set_grad(b, t);
    opt.step();
  }
}

// Save after 3 steps, load into a fresh optimizer over fresh tensors holding the same values, run 3
// more steps on both: the resumed run must equal the uninterrupted one.
template <class T, class Opt>
void check_round_trip(const typename Opt::options_type& options) {
  auto a = make_param<T>(initial_values(37, 0.0), {37}), b = make_param<T>(initial_values(12, 1.0), {3, 4});
  auto c = make_param<T>(initial_values(2, 2.0), {2});
  Opt opt({a, b, c}, options);
  run_steps(opt, a, b, 1, 3);
  const auto saved = opt.state_dict();

  auto a2 = grad::from<T>(a.value(), {.requires_grad = true}),
       b2 = grad::from<T>(b.value(), {.requires_grad = true});
  auto c2 = grad::from<T>(c.value(), {.requires_grad = true});
  Opt resumed({a2, b2, c2}, typename Opt::options_type{.lr = 123});
  resumed.load_state_dict(saved);
  CHECK(resumed.lr() == doctest::Approx(options.lr).epsilon(1e-7));
  CHECK(resumed.step_count(0) == 3);
  CHECK(resumed.step_count(1) == 2);
  CHECK(resumed.step_count(2) == 0);
  const auto again = resumed.state_dict();
  REQUIRE(again.size() == saved.size());
  for (std::size_t i = 0; i < saved.size(); ++i) {
    CHECK(again[i].first == saved[i].first);
    CHECK(again[i].second == saved[i].second);
  }

  run_steps(opt, a, b, 4, 6);
  run_steps(resumed, a2, b2, 4, 6);
  for (auto [x, y] : {std::pair{a, a2}, std::pair{b, b2}, std::pair{c, c2}})
    for (std::size_t i = 0; i < x.numel(); ++i) {
      if constexpr (std::is_same_v<T, double>)
        CHECK(x.data()[i] == y.data()[i]); // same state, same code path: bit for bit
      else // float: hyper-parameters were stored as float, so lr can differ in the last bit
        CHECK(x.data()[i] == doctest::Approx(y.data()[i]).epsilon(1e-6));
    }
}

std::vector<std::string> names_of(const auto& sd) {
  std::vector<std::string> n;
  for (const auto& [k, a] : sd)
    n.push_back(k);
  return n;
}

} // namespace

TEST_CASE_TEMPLATE("state_dict round trip resumes the same run", T, float, double) {
  check_round_trip<T, optim::sgd<T>>({.lr = 0.05, .momentum = 0.9, .nesterov = true});
  check_round_trip<T, optim::sgd<T>>({.lr = 0.05});
  check_round_trip<T, optim::adam<T>>({.lr = 0.01, .weight_decay = 0.1});
  check_round_trip<T, optim::adam<T>>({.lr = 0.01, .amsgrad = true});
  check_round_trip<T, optim::adamw<T>>({.lr = 0.01, .weight_decay = 0.1});
  check_round_trip<T, optim::rmsprop<T>>({.lr = 0.01, .momentum = 0.9, .centered = true});
  check_round_trip<T, optim::adagrad<T>>({.lr = 0.1, .lr_decay = 0.01, .initial_accumulator_value = 0.1});
}

TEST_CASE("state_dict layout") {
  auto a = grad::zeros<float>({2, 3}, {.requires_grad = true});
  auto b = grad::zeros<float>({3}, {.requires_grad = true});
  optim::adam opt({a, b}, {.lr = 0.5, .betas = {0.5, 0.25}, .amsgrad = true});
  std::fill(a.grad().data(), a.grad().data() + 6, 1.0f);
  opt.step();
  const auto sd = opt.state_dict();
  const std::vector<std::string> want = {
      "optimizer.adam",         "param_groups.0.params",   "param_groups.0.lr",
      "param_groups.0.betas",   "param_groups.0.eps",      "param_groups.0.weight_decay",
      "param_groups.0.amsgrad", "param_groups.0.maximize", "state.0.step",
      "state.0.exp_avg",        "state.0.exp_avg_sq",      "state.0.max_exp_avg_sq"};
  CHECK(names_of(sd) == want);
  CHECK(sd[1].second == xt::xarray<float>{0, 1});
  CHECK(sd[2].second() == 0.5f);
  CHECK(sd[3].second == xt::xarray<float>{0.5f, 0.25f});
  CHECK(sd[6].second() == 1.0f);
  CHECK(sd[8].second() == 1.0f);
  CHECK(sd[9].second.shape() == a.value().shape());
  CHECK(sd[9].second(1, 2) == 0.5f); // m = (1 - b1) g

  auto p = grad::zeros<double>({2}, {.requires_grad = true});
  optim::sgd plain({p}, {.lr = 0.1});
  CHECK(names_of(plain.state_dict()) ==
        std::vector<std::string>{"optimizer.sgd", "param_groups.0.params", "param_groups.0.lr",
                                 "param_groups.0.momentum", "param_groups.0.dampening",
                                 "param_groups.0.weight_decay", "param_groups.0.nesterov",
                                 "param_groups.0.maximize"});
}

TEST_CASE("load_state_dict rejects a state that does not fit, and changes nothing") {
  auto a = grad::zeros<double>({2, 3}, {.requires_grad = true});
  auto b = grad::zeros<double>({4}, {.requires_grad = true});
  optim::adam opt({a, b}, {.lr = 0.1});
  std::fill(a.grad().data(), a.grad().data() + 6, 1.0);
  opt.step();
  const auto good = opt.state_dict();
  const auto before = opt.state_dict();

  optim::sgd other({a, b}, {.lr = 0.1, .momentum = 0.9});
  check_value_error([&] { opt.load_state_dict(other.state_dict()); },
                    {"adam: load_state_dict", "saved by sgd"});
  optim::adamw w({a, b});
  check_value_error([&] { opt.load_state_dict(w.state_dict()); }, {"saved by adamw"});
  check_value_error([&] { w.load_state_dict(good); }, {"adamw", "saved by adam, not adamw"});

  auto c = grad::zeros<double>({1}, {.requires_grad = true});
  optim::adam three({a, b, c});
  check_value_error([&] { three.load_state_dict(good); }, {"for 2 parameters", "has 3"});

  auto a5 = grad::zeros<double>({5}, {.requires_grad = true});
  optim::adam reshaped({a5, b});
  check_value_error([&] { reshaped.load_state_dict(good); }, {"state.0.exp_avg", "(2, 3)", "(5,)"});

  auto missing = good;
  missing.pop_back();
  check_value_error([&] { opt.load_state_dict(missing); }, {"no entry 'state.0.exp_avg_sq'"});
  auto extra = good;
  extra.emplace_back("state.1.exp_avg", xt::xarray<double>::from_shape({4}));
  check_value_error([&] { opt.load_state_dict(extra); }, {"unexpected entry 'state.1.exp_avg'"});
  auto twice = good;
  twice.push_back(good.back());
  check_value_error([&] { opt.load_state_dict(twice); }, {"appears twice"});
  auto bad_step = good;
  for (auto& [k, v] : bad_step)
    if (k == "state.0.step")
      v() = 1.5;
  check_value_error([&] { opt.load_state_dict(bad_step); }, {"state.0.step", "whole number", "1.5"});
  auto bad_lr = good;
  bad_lr[2].second() = -3;
  check_value_error([&] { opt.load_state_dict(bad_lr); }, {"adam", "lr", "-3"});
  auto bad_flag = good;
  bad_flag[6].second() = 0.5;
  check_value_error([&] { opt.load_state_dict(bad_flag); }, {"param_groups.0.amsgrad", "0 or 1"});
  check_value_error([&] { opt.load_state_dict({}); }, {"not an optimizer state"});

  CHECK(names_of(opt.state_dict()) == names_of(before));
  CHECK(opt.state_dict()[9].second == before[9].second);
  CHECK(opt.lr() == 0.1);

  // Structural options come with the state: loading an amsgrad state turns amsgrad on.
  optim::adam ams({a, b}, {.amsgrad = true});
  std::fill(b.grad().data(), b.grad().data() + 4, 1.0);
  ams.step();
  opt.load_state_dict(ams.state_dict());
  CHECK(opt.options().amsgrad);
  CHECK(opt.step_count(1) == 1);
  opt.step();
}

TEST_CASE("optimizers satisfy the concepts") {
  static_assert(optim::optimizer<optim::sgd<float>>);
  static_assert(optim::optimizer<optim::adam<double>>);
  static_assert(optim::optimizer<optim::adamw<float>>);
  static_assert(optim::optimizer<optim::rmsprop<float>>);
  static_assert(optim::optimizer<optim::adagrad<double>>);
  static_assert(!optim::lr_optimizer<int>);
  CHECK(true);
}

namespace {

// Fits y = b + w x (true b = 1, w = 2) by mean squared error with grad's autograd.
template <class T, class MakeOpt>
void check_linear_regression(MakeOpt make, int steps, double tol) {
  auto x = grad::linspace<T>(-1, 1, 32);
  auto y = x * T(2) + T(1);
  auto w = grad::zeros<T>({1}, {.requires_grad = true});
  auto b = grad::zeros<T>({1}, {.requires_grad = true});
  auto opt = make(std::vector<grad::basic_tensor<T>>{w, b});
  double first_loss = 0, last_loss = 0;
  for (int i = 0; i < steps; ++i) {
    auto loss = grad::mean(grad::square(w * x + b - y));
    opt.zero_grad();
    loss.backward();
    opt.step();
    (i == 0 ? first_loss : last_loss) = static_cast<double>(loss.item());
  }
  CHECK(last_loss < first_loss * 1e-3);
  CHECK(static_cast<double>(w.item()) == doctest::Approx(2.0).epsilon(tol));
  CHECK(static_cast<double>(b.item()) == doctest::Approx(1.0).epsilon(tol));
}

} // namespace

TEST_CASE_TEMPLATE("end to end: linear regression with every optimizer", T, float, double) {
  using P = std::vector<grad::basic_tensor<T>>;
  check_linear_regression<T>([](P p) { return optim::sgd<T>(p, {.lr = 0.1, .momentum = 0.9}); }, 300, 1e-3);
  check_linear_regression<T>([](P p) { return optim::sgd<T>(p, {.lr = 0.3}); }, 300, 1e-3);
  check_linear_regression<T>([](P p) { return optim::adam<T>(p, {.lr = 0.05}); }, 600, 1e-2);
  check_linear_regression<T>([](P p) { return optim::adamw<T>(p, {.lr = 0.05, .weight_decay = 1e-4}); }, 600,
                             1e-2);
  check_linear_regression<T>([](P p) { return optim::rmsprop<T>(p, {.lr = 0.01, .centered = true}); }, 600,
                             2e-2);
  check_linear_regression<T>([](P p) { return optim::adagrad<T>(p, {.lr = 0.5}); }, 600, 1e-2);
}
