// The code samples of the docs, compiled and run so that they stay correct. Each block between
// "// --- doc:" and "// --- end" is a verbatim copy of a sample in the named page; the checks after it
// are the test. When you change a sample in the docs, change it here too.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <unistd.h>

#include <grad/grad.hpp>
#include <grad/utils/csv.hpp>
#include <grad/utils/plot.hpp>
#include <grad/utils/progress.hpp>

namespace {

// Sends std::cout and std::cerr to strings until stop(), so samples that print stay quiet. Stop it
// before any CHECK: doctest reports failures on std::cout.
struct capture_output {
  std::ostringstream out, err;
  std::streambuf* old_out = std::cout.rdbuf(out.rdbuf());
  std::streambuf* old_err = std::cerr.rdbuf(err.rdbuf());
  void stop() {
    if (old_out)
      std::cout.rdbuf(old_out);
    if (old_err)
      std::cerr.rdbuf(old_err);
    old_out = old_err = nullptr;
  }
  ~capture_output() { stop(); }
};

} // namespace

// --- doc: docs/tensors-and-autograd.md, "Writing your own op"
// y = x^3, elementwise.
struct cube_op {
  static constexpr std::string_view name = "cube";
  grad::shape_type shape(const grad::shape_type& x) const { return x; }
  std::uint64_t flops(const grad::shape_type& out, const grad::shape_type&) const {
    return 2 * grad::numel(out); // two multiplications per element
  }
  template <class Ctx>
  void forward(Ctx& c) const {
    const auto* x = c.in(0).data();
    auto* y = c.out().data();
    for (std::size_t k = 0; k < c.out().size(); ++k)
      y[k] = x[k] * x[k] * x[k];
  }
  template <class Ctx>
  void backward(Ctx& c) const {
    if (!c.needs_grad(0))
      return;
    const auto* x = c.in(0).data();
    const auto* dy = c.dout().data();
    auto* dx = c.din(0).data();
    for (std::size_t k = 0; k < c.out().size(); ++k)
      dx[k] += 3 * x[k] * x[k] * dy[k]; // d(x^3)/dx = 3x^2
  }
};
static_assert(grad::op_for<cube_op, float, 1>);

template <grad::element T>
grad::basic_tensor<T> cube(const grad::basic_tensor<T>& x) {
  return grad::apply(cube_op{}, x);
}
// --- end

// cube with a wrong derivative, which gradcheck must catch.
struct wrong_cube_op : cube_op {
  template <class Ctx>
  void backward(Ctx& c) const {
    for (std::size_t k = 0; k < c.out().size(); ++k)
      c.din(0).data()[k] += c.dout().data()[k]; // should be 3x^2 * dy
  }
};

// An op that lacks backward does not satisfy the concept (the readable compile error of the docs).
struct half_written_op {
  static constexpr std::string_view name = "half";
  grad::shape_type shape(const grad::shape_type& x) const { return x; }
  std::uint64_t flops(const grad::shape_type&, const grad::shape_type&) const { return 0; }
  template <class Ctx>
  void forward(Ctx&) const {}
};
static_assert(!grad::op_for<half_written_op, float, 1>);

// --- doc: docs/getting-started.md, "A first program" (there the function is main)
static std::pair<float, float> first_program() {
  grad::generator gen(42);                                // seeded: the same numbers every run
  grad::tensor x = grad::rand({100}, gen, {}, -2.0, 2.0); // 100 points in [-2, 2)
  grad::tensor y = 3.0f + 2.0f * x;                       // on the line b = 3, w = 2

  // The parameters start at 0 and require grad: grad records what is computed from them.
  grad::tensor b = grad::zeros({1}, {.requires_grad = true});
  grad::tensor w = grad::zeros({1}, {.requires_grad = true});
  for (int step = 0; step < 1000; ++step) {
    grad::tensor loss = grad::mean(grad::square(b + w * x - y)); // mean squared error
    loss.backward();                                             // d(loss)/db, d(loss)/dw
    grad::no_grad guard;                                         // the update is not recorded
    b.value() -= 0.01f * b.grad();                               // a step downhill
    w.value() -= 0.01f * w.grad();
    b.zero_grad(); // gradients add up across backward calls: clear them
    w.zero_grad();
  }
  std::cout << "b = " << b.item() << ", w = " << w.item() << "\n"; // b = 2.99999, w = 2.00001
  // --- end
  return {b.item(), w.item()};
}

TEST_CASE("getting-started: the first program finds b = 3, w = 2") {
  capture_output cap;
  const auto [b, w] = first_program();
  cap.stop();
  CHECK(b == doctest::Approx(3).epsilon(1e-3));
  CHECK(w == doctest::Approx(2).epsilon(1e-3));
  INFO(cap.out.str());
  CHECK(cap.out.str().rfind("b = ", 0) == 0); // "b = 2.99999, w = 2.00001" here; the last digit may vary
}

TEST_CASE("tensors-and-autograd: factories") {
  // Aligned as in the docs:
  // clang-format off
  // --- doc: docs/tensors-and-autograd.md, "Tensors"
  grad::generator gen(42);                                 // a seeded random source: reproducible runs
  grad::tensor a = grad::zeros({2, 3});                    // shape (2, 3), all 0
  grad::tensor b = grad::ones({3});
  grad::tensor c = grad::full({2, 2}, 0.5f);
  grad::tensor d = grad::arange(6);                        // 0, 1, ..., 5
  grad::tensor e = grad::linspace(0, 1, 5);                // 0, 0.25, ..., 1
  grad::tensor f = grad::randn({2, 3}, gen);               // N(0, 1)
  grad::tensor g = grad::rand({100}, gen, {}, -2.0, 2.0);  // uniform in [-2, 2)
  grad::tensor h = grad::from<float>({{1, 2}, {3, 4}});    // from nested lists
  grad::tensor i = grad::from(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3}); // values + shape
  grad::dtensor j = grad::zeros<double>({4});              // double precision
  grad::tensor w = grad::randn({3, 1}, gen, {.requires_grad = true}); // a parameter
  // --- end
  // clang-format on
  CHECK(a.shape() == grad::shape_type{2, 3});
  CHECK(b.numel() == 3);
  CHECK(c.value()(1, 1) == 0.5f);
  CHECK(d.value()(5) == 5.0f);
  CHECK(e.value()(1) == 0.25f);
  CHECK(f.shape() == grad::shape_type{2, 3});
  for (std::size_t k = 0; k < g.numel(); ++k) {
    REQUIRE(g.data()[k] >= -2.0f);
    REQUIRE(g.data()[k] < 2.0f);
  }
  CHECK(h.value()(1, 0) == 3.0f);
  CHECK(i.value()(1, 2) == 6.0f);
  CHECK(j.numel() == 4);
  CHECK(w.requires_grad());
  CHECK_FALSE(a.requires_grad());
}

TEST_CASE("tensors-and-autograd: shapes, values and printing") {
  capture_output cap;
  // --- doc: docs/tensors-and-autograd.md, "Tensors" (shapes and values)
  grad::tensor t = grad::reshape(grad::arange(6), {2, 3});
  std::cout << t << "\n";
  // tensor([[0., 1., 2.],
  //         [3., 4., 5.]], shape=(2, 3))
  grad::shape_type s = t.shape();    // {2, 3}: like a std::vector<std::size_t> (and converts to one)
  std::size_t dims = t.dim();        // 2
  std::size_t last = t.size(-1);     // 3: the extent of the last dimension
  std::size_t n = t.numel();         // 6
  float v = t.value()(1, 2);         // 5: value() is a grad::xarray<float>, row-major and contiguous
  float first = t.data()[0];         // 0: data() points to the first element
  float total = grad::sum(t).item(); // 15: the value of a one-element tensor
  // --- end
  cap.stop();
  CHECK(cap.out.str() == "tensor([[0., 1., 2.],\n        [3., 4., 5.]], shape=(2, 3))\n");
  CHECK(s == grad::shape_type{2, 3});
  CHECK(dims == 2);
  CHECK(last == 3);
  CHECK(n == 6);
  CHECK(v == 5.0f);
  CHECK(first == 0.0f);
  CHECK(total == 15.0f);
}

TEST_CASE("tensors-and-autograd: backward") {
  // --- doc: docs/tensors-and-autograd.md, "Autograd: the tape"
  grad::tensor x = grad::from<float>({1, 2, 3}, {.requires_grad = true});
  grad::tensor loss = grad::sum(x * x); // two nodes on the tape: mul, then sum
  loss.backward();                      // d(loss)/dx = 2x
  // x.grad() is a grad::xarray<float>: {2, 4, 6}
  // --- end
  CHECK(x.grad()(0) == 2.0f);
  CHECK(x.grad()(1) == 4.0f);
  CHECK(x.grad()(2) == 6.0f);
  CHECK(grad::current_tape().size() == 0); // cleared by backward
  CHECK_THROWS_AS(loss.backward(), grad::autograd_error);
}

TEST_CASE("tensors-and-autograd: retain_graph and accumulation") {
  // --- doc: docs/tensors-and-autograd.md, retain_graph
  grad::tensor p = grad::full({1}, 1.0f, {.requires_grad = true});
  grad::tensor l = grad::sum(p * p);
  l.backward({.retain_graph = true}); // p.grad() = 2
  l.backward();                       // p.grad() = 4: accumulated, and now the tape is cleared
  p.zero_grad();                      // back to 0
  // --- end
  CHECK(p.grad()(0) == 0.0f);
  CHECK_THROWS_AS(l.backward(), grad::autograd_error);
}

TEST_CASE("tensors-and-autograd: backward clears the whole tape, so add the losses") {
  grad::tensor p = grad::full({1}, 1.0f, {.requires_grad = true});
  grad::tensor l1 = grad::sum(p * 2.0f);
  grad::tensor l2 = grad::sum(p * 3.0f);
  (l1 + l2).backward();
  CHECK(p.grad()(0) == 5.0f);
  p.zero_grad();
  grad::tensor m1 = grad::sum(p * 2.0f);
  grad::tensor m2 = grad::sum(p * 3.0f);
  m1.backward();
  CHECK_THROWS_AS(m2.backward(), grad::autograd_error); // freed with the tape, as the docs warn
}

TEST_CASE("tensors-and-autograd: no_grad update") {
  grad::generator gen(42);
  grad::tensor w = grad::randn({3, 1}, gen, {.requires_grad = true});
  grad::sum(w * w).backward();
  const float before = w.value()(0, 0);
  // --- doc: docs/tensors-and-autograd.md, no_grad
  {
    grad::no_grad guard;
    w.value() -= 0.1f * w.grad(); // plain gradient descent on the parameter w
  }
  w.zero_grad();
  // --- end
  CHECK(w.value()(0, 0) == doctest::Approx(before * 0.8f)); // w - 0.1 * 2w
  CHECK(w.grad()(0, 0) == 0.0f);
  CHECK(grad::current_tape().size() == 0);
  {
    grad::no_grad guard;
    grad::tensor y = w * 2.0f;
    CHECK_FALSE(y.requires_grad());
    CHECK(grad::current_tape().size() == 0);
  }
}

TEST_CASE("tensors-and-autograd: tape_scope") {
  // --- doc: docs/tensors-and-autograd.md, tape_scope
  grad::tensor q = grad::full({1}, 1.0f, {.requires_grad = true});
  grad::tensor outer = grad::sum(q * 4.0f); // on the thread's tape
  {
    grad::tape_scope scope;         // a new tape for this block
    grad::sum(q * 5.0f).backward(); // q.grad() = 5; clears only the scope's tape
  }
  outer.backward(); // still works: q.grad() = 5 + 4 = 9
  // --- end
  CHECK(q.grad()(0) == 9.0f);
}

TEST_CASE("tensors-and-autograd: retain_grad, detach and dead-node collection") {
  grad::tensor p = grad::full({1}, 1.0f, {.requires_grad = true});
  grad::tensor h = p * 2.0f;
  h.retain_grad();
  grad::sum(h * h).backward();
  CHECK(h.grad()(0) == 4.0f); // d(h^2)/dh = 2h
  CHECK(p.grad()(0) == 8.0f);
  grad::tensor d = h.detach();
  CHECK(d.is_leaf());
  CHECK_FALSE(d.requires_grad());
  CHECK(d.value()(0) == 2.0f);
  for (int k = 0; k < 200000; ++k) {
    grad::tensor unused = p * 2.0f; // recorded, then dropped: a dead node
  }
  CHECK(grad::current_tape().size() < 100000);
  grad::current_tape().clear();
}

TEST_CASE("tensors-and-autograd: broadcasting reduces gradients") {
  grad::generator gen(1);
  // --- doc: docs/tensors-and-autograd.md, "Broadcasting"
  grad::tensor xs = grad::randn({4, 3}, gen);                    // (4, 3)
  grad::tensor bias = grad::zeros({3}, {.requires_grad = true}); // (3,) -> broadcast to (4, 3)
  grad::sum(xs + bias).backward();
  // bias.grad() is {4, 4, 4}: the gradient, summed over the broadcast rows
  // --- end
  CHECK(bias.grad().shape()[0] == 3);
  for (int k = 0; k < 3; ++k)
    CHECK(bias.grad()(k) == 4.0f);
}

TEST_CASE("tensors-and-autograd: errors") {
  capture_output cap;
  // --- doc: docs/tensors-and-autograd.md, "Errors"
  try {
    grad::tensor bad = grad::zeros({2, 3}) + grad::zeros({4});
  } catch (const grad::shape_error& e) {
    std::cerr << e.what() << "\n";
  }
  // --- end
  cap.stop();
  CHECK(cap.err.str() == "add: shapes (2, 3) and (4,) cannot be broadcast together (dimension 1: 3 vs 4)\n");
  // The messages quoted in the table.
  try {
    (void)grad::zeros({2, 3}).item();
    FAIL("item should throw");
  } catch (const grad::value_error& e) {
    CHECK(std::string(e.what()) ==
          "item: tensor has 6 elements, shape (2, 3); only one-element tensors can be converted to a scalar");
  }
  grad::tensor p = grad::full({1}, 1.0f, {.requires_grad = true});
  grad::tensor l = grad::sum(p);
  l.backward();
  try {
    l.backward();
    FAIL("backward should throw");
  } catch (const grad::autograd_error& e) {
    CHECK(std::string(e.what()).rfind("backward: the graph of this tensor was freed: a backward() on this "
                                      "thread cleared the tape",
                                      0) == 0);
  }
  const std::string csv_msg = [] {
    try {
      grad::utils::parse_csv_columns("x,y\n1,2\n3,abc\n", "data.csv");
    } catch (const grad::io_error& e) {
      return std::string(e.what());
    }
    return std::string();
  }();
  CHECK(csv_msg == "read_csv_columns: data.csv:3: \"abc\" is not a number in column \"y\" (field 2)");
  // Every exception is a grad::error.
  CHECK_THROWS_AS(grad::zeros({2}) + grad::zeros({3}), grad::error);
}

TEST_CASE("tensors-and-autograd: the custom op and gradcheck") {
  grad::tensor x = grad::from<float>({1, 2, 3}, {.requires_grad = true});
  grad::tensor y = cube(x);
  CHECK(y.value()(2) == 27.0f);
  grad::sum(y).backward();
  CHECK(x.grad()(1) == 12.0f); // 3 * 2^2
  capture_output cap;
  // --- doc: docs/tensors-and-autograd.md, "Checking gradients"
  grad::generator g2(7);
  grad::dtensor x3 = grad::randn<double>({3, 4}, g2, {.requires_grad = true});
  grad::gradcheck_result r =
      grad::gradcheck([](const std::vector<grad::dtensor>& in) { return cube(in[0]); }, {x3});
  if (!r)
    std::cerr << r.message; // input, element, analytic and numeric values of the first failures
  // --- end
  cap.stop();
  CHECK(r.ok);
  CHECK(r.max_abs_error < 1e-6);
  CHECK(cap.err.str().empty());
  // Options with designated initializers, as the docs show.
  CHECK(grad::gradcheck([](const std::vector<grad::dtensor>& in) { return cube(in[0]); }, {x3},
                        {.eps = 1e-5, .atol = 1e-4}));
  // The documented defaults.
  const grad::gradcheck_options defaults;
  CHECK(defaults.eps == 1e-6);
  CHECK(defaults.atol == 1e-5);
  CHECK(defaults.rtol == 1e-3);
  // A wrong derivative is caught.
  const grad::gradcheck_result bad = grad::gradcheck(
      [](const std::vector<grad::dtensor>& in) { return grad::apply(wrong_cube_op{}, in[0]); }, {x3});
  CHECK_FALSE(bad.ok);
  CHECK(bad.message.find("input 0 element") != std::string::npos);
}

TEST_CASE("utils: the CSV, plot and progress samples") {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("grad_test_docs_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    // --- doc: docs/utils.md, "CSV"
    std::vector<double> steps = {0, 1, 2}, losses = {0.9, 0.5, 0.3};
    grad::utils::write_csv(dir / "loss.csv", {"step", "loss"}, {steps, losses});
    // step,loss
    // 0,0.9
    // ...

    grad::utils::csv_columns t = grad::utils::read_csv_columns(dir / "loss.csv");
    // t.names is {"step", "loss"}, t.rows() is 3, t.columns[1] is the loss column, and so is:
    const std::vector<double>& l = t["loss"]; // a column by name (grad::value_error if there is none)
    // --- end
    CHECK(grad::utils::read_file(dir / "loss.csv").rfind("step,loss\n0,0.9\n", 0) == 0);
    CHECK(t.names == std::vector<std::string>{"step", "loss"});
    CHECK(t.rows() == 3);
    CHECK(l == losses);
    CHECK(&t.columns[1] == &l);
  }
  {
    // --- doc: docs/utils.md, "Plots"
    std::vector<double> x = {0, 1, 2, 3, 4}, train = {1, 0.5, 0.3, 0.2, 0.15},
                        test = {1, 0.6, 0.45, 0.4, 0.42};
    grad::utils::svg_plot p({.title = "Loss", .xlabel = "epoch", .ylabel = "MSE", .log_y = true});
    p.line("training", x, train).line("held-out", x, test);
    p.dashed("target", std::vector<double>{0, 4}, std::vector<double>{0.1, 0.1}, "#333333");
    p.save(dir / "loss.svg");
    std::string svg = p.str(); // the same document as a string
    // --- end
    CHECK(grad::utils::read_file(dir / "loss.svg") == svg);
    CHECK(svg.find(">held-out</text>") != std::string::npos);
  }
  {
    std::FILE* quiet = std::tmpfile(); // the sample prints to stdout; here it goes to a file
    REQUIRE(quiet != nullptr);
    const std::size_t steps = 300;
    {
      grad::utils::progress_bar bar_(steps, {.label = "training", .stream = quiet});
      auto& bar = bar_;
      // --- doc: docs/utils.md, "Progress" (there the bar prints to stdout)
      for (std::size_t step = 0; step < steps; ++step) {
        // ... one training step ...
        bar.tick(1, "loss 0.0123"); // advance; the text is shown after the rate
        if (step % 100 == 0)
          bar.write("a message"); // printed above the bar, which is redrawn below it
      }
      bar.finish(); // the destructor does it too
      // --- end
      CHECK(bar.done() == steps);
    }
    std::fclose(quiet);
  }
  // --- doc: docs/utils.md, "Progress" (the formatting functions)
  grad::utils::format_progress(250, 1000, 2.0, "train", "loss 0.5", 10);
  // "train   25% [==>       ] 250/1000 [0:02<0:06, 125 it/s] loss 0.5"
  grad::utils::format_duration(3723); // "1:02:03"
  grad::utils::format_rate(1250);     // "1.25k it/s"
  grad::utils::format_rate(0.5);      // "2.00 s/it"
  // --- end
  CHECK(grad::utils::format_progress(250, 1000, 2.0, "train", "loss 0.5", 10) ==
        "train   25% [==>       ] 250/1000 [0:02<0:06, 125 it/s] loss 0.5");
  CHECK(grad::utils::format_duration(3723) == "1:02:03");
  CHECK(grad::utils::format_rate(1250) == "1.25k it/s");
  CHECK(grad::utils::format_rate(0.5) == "2.00 s/it");
  std::filesystem::remove_all(dir);
}
