// Tests of core/tape.hpp and the backward walk: accumulation, fan-out, retain_graph, freed graphs,
// no_grad, tape_scope, retain_grad, the collection of dead nodes, and skipping of branches that got no
// gradient.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include <grad/grad.hpp>

#include "op_check.hpp"

using op_check::values;

namespace {

/// Nodes recorded on this thread's current tape.
std::size_t tape_size() {
  return grad::current_tape().size();
}

} // namespace

TEST_CASE("leaves accumulate gradients across two backward calls until zero_grad") {
  auto x = grad::from<double>({1.0, -2.0}, {.requires_grad = true});
  grad::sum(x * 3.0).backward();
  CHECK(values(x.grad()) == std::vector<double>{3, 3});
  grad::sum(x * x).backward(); // a new graph; the gradient adds to the first one
  CHECK(values(x.grad()) == std::vector<double>{3 + 2, 3 - 4});
  x.zero_grad();
  grad::sum(x * x).backward();
  CHECK(values(x.grad()) == std::vector<double>{2, -4});
}

TEST_CASE("fan-out: y = x*x + x uses x three times") {
  auto x = grad::from<double>({0.5, 2.0, -3.0}, {.requires_grad = true});
  auto y = x * x + x;
  grad::sum(y).backward(); // dy/dx = 2x + 1
  CHECK(values(x.grad()) == std::vector<double>{2, 5, -5});
}

TEST_CASE("a diamond: two paths from x meet again") {
  auto x = grad::scalar_tensor<double>(2.0, {.requires_grad = true});
  auto a = x * 3.0;
  auto b = grad::exp(x);
  auto c = a * b; // 3x e^x
  c.backward();   // 3 e^x + 3x e^x
  CHECK(x.grad().data()[0] == doctest::Approx(3 * std::exp(2.0) * (1 + 2.0)));
}

TEST_CASE("the same tensor as both inputs of one op") {
  auto x = grad::from<double>({3.0}, {.requires_grad = true});
  (x * x).backward();
  CHECK(x.grad().data()[0] == 6.0);
  x.zero_grad();
  (x - x).backward();
  CHECK(x.grad().data()[0] == 0.0);
  x.zero_grad();
  grad::sum(grad::matmul(x, x)).backward(); // dot(x, x)
  CHECK(x.grad().data()[0] == 6.0);
}

TEST_CASE("retain_graph allows a second backward, which accumulates the same gradients again") {
  auto x = grad::from<double>({1.0, 2.0}, {.requires_grad = true});
  auto w = grad::from<double>({3.0, -1.0}, {.requires_grad = true});
  auto h = grad::tanh(x * w);
  auto loss = grad::sum(h * h);
  loss.backward({.retain_graph = true});
  const auto gx = values(x.grad());
  const auto gw = values(w.grad());
  CHECK(tape_size() > 0); // the graph is kept
  loss.backward();
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(x.grad().data()[i] == doctest::Approx(2 * gx[i]));
    CHECK(w.grad().data()[i] == doctest::Approx(2 * gw[i]));
  }
  CHECK(tape_size() == 0); // the second backward (without retain_graph) freed it
}

TEST_CASE("backward through a freed graph throws autograd_error with a clear message") {
  auto x = grad::from<double>({1.0}, {.requires_grad = true});
  auto y = x * 2.0;
  auto loss = grad::sum(y * y);
  loss.backward();
  CHECK(op_check::mentions(op_check::error_message<grad::autograd_error>([&] { loss.backward(); }),
                           {"backward", "freed", "retain_graph"}));
  CHECK_THROWS_AS(y.backward(grad::ones<double>({1})), grad::autograd_error); // y's graph went with it
  CHECK(x.grad().data()[0] == 8.0);                                           // unchanged by the failed calls
}

TEST_CASE("backward on a tensor that does not require grad throws") {
  const auto x = grad::ones<float>({1});
  CHECK_THROWS_AS(x.backward(), grad::autograd_error);
  CHECK_THROWS_AS(grad::sum(x * 2.0f).backward(), grad::autograd_error);
}

TEST_CASE("non-scalar backward needs a gradient; with one it works") {
  auto x = grad::from<double>({1.0, 2.0, 3.0}, {.requires_grad = true});
  auto y = x * x;
  CHECK_THROWS_AS(y.backward(), grad::autograd_error);
  y.backward(grad::from<double>({1.0, 10.0, 100.0})); // vector-Jacobian product: 2x * v
  CHECK(values(x.grad()) == std::vector<double>{2, 40, 600});
}

TEST_CASE("no_grad records nothing; results do not require grad; it nests and restores") {
  auto x = grad::ones<float>({3}, {.requires_grad = true});
  const std::size_t before = tape_size();
  CHECK(grad::is_grad_enabled());
  {
    grad::no_grad guard;
    CHECK_FALSE(grad::is_grad_enabled());
    auto y = grad::exp(x * 2.0f) + x;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
    CHECK(tape_size() == before);
    {
      grad::no_grad inner;
      auto z = y * x;
      CHECK_FALSE(z.requires_grad());
    }
    CHECK_FALSE(grad::is_grad_enabled()); // the inner guard restores the outer state, still off
    CHECK(tape_size() == before);
    CHECK_THROWS_AS(grad::sum(y).backward(), grad::autograd_error);
  }
  CHECK(grad::is_grad_enabled());
  auto r = x * 2.0f;
  CHECK(r.requires_grad());
  CHECK(tape_size() == before + 1);
  grad::set_grad_enabled(false);
  CHECK_FALSE((x * 2.0f).requires_grad());
  grad::set_grad_enabled(true);
}

TEST_CASE("tape_scope records into an independent tape, freed when the scope ends") {
  auto w = grad::from<double>({2.0, 3.0}, {.requires_grad = true});
  auto outer = grad::sum(w * w); // recorded on the thread's tape
  const std::size_t outer_size = tape_size();
  grad::dtensor escaped;
  {
    grad::tape_scope scope;
    CHECK(&grad::current_tape() == &scope.get());
    CHECK(tape_size() == 0);
    auto metric = grad::sum(w * 10.0);
    CHECK(scope.get().size() == 2);
    escaped = grad::sum(w * 5.0);
    metric.backward(); // backward inside the scope works and leaves the outer graph alone
    CHECK(values(w.grad()) == std::vector<double>{10, 10});
  }
  CHECK(tape_size() == outer_size); // the outer tape did not see the scope's ops
  CHECK(op_check::mentions(op_check::error_message<grad::autograd_error>([&] { escaped.backward(); }),
                           {"backward", "freed"}));
  w.zero_grad();
  outer.backward(); // the outer graph survived the scope
  CHECK(values(w.grad()) == std::vector<double>{4, 6});
}

TEST_CASE("nested tape_scopes") {
  auto x = grad::scalar_tensor<double>(1.5, {.requires_grad = true});
  grad::tape_scope a;
  auto ya = x * 2.0;
  {
    grad::tape_scope b;
    auto yb = x * x;
    CHECK(b.get().size() == 1);
    CHECK(a.get().size() == 1);
    yb.backward();
    CHECK(x.grad().data()[0] == 3.0);
  }
  CHECK(&grad::current_tape() == &a.get());
  ya.backward();
  CHECK(x.grad().data()[0] == 5.0);
}

TEST_CASE("retain_grad keeps an intermediate's gradient") {
  auto x = grad::from<double>({1.0, 2.0}, {.requires_grad = true});
  auto h = x * 3.0;
  auto plain = h + 1.0;
  h.retain_grad();
  grad::sum(plain * plain).backward(); // d/dh = 2 (h + 1)
  REQUIRE(h.has_grad());
  CHECK(values(h.grad()) == std::vector<double>{8, 14});
  CHECK_FALSE(plain.has_grad());
  CHECK(values(x.grad()) == std::vector<double>{24, 42});
}

TEST_CASE("a branch that does not lead to the loss leaves its leaf untouched") {
  auto x = grad::from<double>({1.0, 2.0}, {.requires_grad = true});
  auto unused = grad::from<double>({5.0, 6.0}, {.requires_grad = true});
  auto side = grad::exp(unused) * x; // recorded, but not part of the loss
  auto loss = grad::sum(x * 2.0);
  loss.backward();
  CHECK(values(x.grad()) == std::vector<double>{2, 2});
  CHECK_FALSE(unused.has_grad());
  CHECK_FALSE(side.has_grad());
}

TEST_CASE("nodes recorded after the root are not run") {
  auto x = grad::from<double>({1.0}, {.requires_grad = true});
  auto loss = grad::sum(x * 4.0);
  auto later = grad::sum(x * 100.0); // recorded after loss
  loss.backward({.retain_graph = true});
  CHECK(x.grad().data()[0] == 4.0);
  later.backward();
  CHECK(x.grad().data()[0] == 104.0);
}

TEST_CASE("dead nodes are collected: 200000 discarded ops do not grow the tape without bound") {
  auto x = grad::from<float>({1.0f, 2.0f}, {.requires_grad = true});
  grad::current_tape().clear();
  std::size_t peak = 0;
  for (int i = 0; i < 200000; ++i) {
    auto y = x * 2.0f; // forgotten no_grad: recorded, then the result is dropped
    peak = std::max(peak, tape_size());
  }
  CHECK(peak < (std::size_t(1) << 17));
  CHECK(tape_size() < (std::size_t(1) << 17));
}

TEST_CASE("a live graph survives collection and backward is still correct") {
  auto x = grad::from<double>({1.0, 2.0}, {.requires_grad = true});
  grad::current_tape().clear();
  auto h = grad::exp(x);
  auto loss = grad::sum(h * x); // d/dx (x e^x) = (1 + x) e^x
  for (int i = 0; i < 200000; ++i)
    (void)(x * 3.0); // dead as soon as it is made
  CHECK(tape_size() < (std::size_t(1) << 17));
  loss.backward();
  CHECK(x.grad().data()[0] == doctest::Approx(2 * std::exp(1.0)));
  CHECK(x.grad().data()[1] == doctest::Approx(3 * std::exp(2.0)));
}

TEST_CASE("a long live chain is kept whole by the collector") {
  auto x = grad::scalar_tensor<double>(1.0, {.requires_grad = true});
  grad::current_tape().clear();
  auto y = x;
  for (int i = 0; i < 70000; ++i) // more nodes than the first collection threshold
    y = y * 1.0 + 0.0;            // every node stays reachable from y: none may be collected
  y.backward();
  CHECK(x.grad().data()[0] == doctest::Approx(1.0));
}

TEST_CASE("each recorded op appends one node; backward without retain_graph clears the tape") {
  grad::current_tape().clear();
  auto x = grad::ones<float>({2}, {.requires_grad = true});
  auto a = x * 2.0f;
  auto b = grad::exp(a);
  auto c = grad::sum(b);
  CHECK(tape_size() == 3);
  const auto& nodes = grad::current_tape().nodes();
  CHECK(nodes[0]->name == "mul_scalar");
  CHECK(nodes[1]->name == "exp");
  CHECK(nodes[2]->name == "sum");
  for (std::size_t i = 0; i < nodes.size(); ++i)
    CHECK(nodes[i]->index == i);
  c.backward();
  CHECK(tape_size() == 0);
}
