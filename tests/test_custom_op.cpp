// A user-defined op, as docs/ "adding an op" describes it: one struct with name, shape, flops, forward
// and backward, run by grad::apply. Also the grad::op_for concept rejecting incomplete op structs.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <grad/grad.hpp>

#include "op_check.hpp"

using grad::shape_type;
using op_check::array;
using op_check::values;

namespace {

/// x^3.
struct cube_op {
  static constexpr std::string_view name = "cube";
  shape_type shape(const shape_type& x) const { return x; }
  std::uint64_t flops(const shape_type& out, const shape_type&) const { return 2 * grad::numel(out); }
  template <class C>
  void forward(C& c) const {
    const auto* x = c.in(0).data();
    auto* y = c.out().data();
    for (std::size_t i = 0; i < c.out().size(); ++i)
      y[i] = x[i] * x[i] * x[i];
  }
  template <class C>
  void backward(C& c) const {
    if (!c.needs_grad(0))
      return;
    const auto* x = c.in(0).data();
    const auto* g = c.dout().data();
    auto* dx = c.din(0).data();
    for (std::size_t i = 0; i < c.out().size(); ++i)
      dx[i] += g[i] * 3 * x[i] * x[i]; // d(x^3)/dx = 3x^2
  }
};

/// a * b^2 with broadcasting: declares `broadcasting`, writes gradients in the output's shape and
/// relies on the tape to sum them down to each input's shape. Ignores needs_grad on purpose: din()
/// of a constant input must be a harmless scratch buffer.
struct mul_square_op {
  static constexpr std::string_view name = "mul_square";
  static constexpr bool broadcasting = true;
  shape_type shape(const shape_type& a, const shape_type& b) const {
    return grad::broadcast_shapes(name, a, b);
  }
  std::uint64_t flops(const shape_type& out, const shape_type&, const shape_type&) const {
    return 2 * grad::numel(out);
  }
  template <class C>
  void forward(C& c) const {
    grad::detail::binary_forward(c, [](auto a, auto b) { return a * b * b; });
  }
  template <class C>
  void backward(C& c) const {
    const auto out = c.out().shape();
    const shape_type os(out.begin(), out.end());
    auto& da = c.din(0); // (out shape), even when input 0 is smaller
    auto& db = c.din(1);
    CHECK(shape_type(da.shape().begin(), da.shape().end()) == os);
    CHECK(shape_type(db.shape().begin(), db.shape().end()) == os);
    const auto* a = c.in(0).data();
    const auto* b = c.in(1).data();
    const auto* g = c.dout().data();
    grad::detail::broadcast_each<2>(c, [&](std::size_t o, std::size_t i, std::size_t j) {
      da.data()[o] += g[o] * b[j] * b[j];     // d(a b^2)/da = b^2
      db.data()[o] += g[o] * 2 * a[i] * b[j]; // d(a b^2)/db = 2ab
    });
  }
};

/// Sum of a list of equal-shaped tensors: an op on a list of inputs (N = 0), run by apply_list.
struct sum_list_op {
  static constexpr std::string_view name = "sum_list";
  shape_type shape(std::span<const shape_type> in) const {
    if (in.empty())
      throw grad::value_error("sum_list: needs at least one tensor");
    for (const auto& s : in)
      if (s != in[0])
        throw grad::shape_error("sum_list: shapes " + grad::to_string(in[0]) + " and " + grad::to_string(s) +
                                " differ");
    return in[0];
  }
  std::uint64_t flops(const shape_type& out, std::span<const shape_type> in) const {
    return grad::numel(out) * (in.size() - 1);
  }
  template <class C>
  void forward(C& c) const {
    auto* y = c.out().data();
    std::fill(y, y + c.out().size(), 0);
    for (std::size_t k = 0; k < c.size(); ++k)
      for (std::size_t i = 0; i < c.out().size(); ++i)
        y[i] += c.in(k).data()[i];
  }
  template <class C>
  void backward(C& c) const {
    for (std::size_t k = 0; k < c.size(); ++k)
      if (c.needs_grad(k))
        for (std::size_t i = 0; i < c.out().size(); ++i)
          c.din(k).data()[i] += c.dout().data()[i]; // d(sum)/dx_k = 1
  }
};

// Incomplete op structs: each lacks one thing the concept asks for.
struct no_backward_op {
  static constexpr std::string_view name = "no_backward";
  shape_type shape(const shape_type& x) const { return x; }
  std::uint64_t flops(const shape_type&, const shape_type&) const { return 0; }
  template <class C>
  void forward(C&) const {}
};
struct no_name_op {
  shape_type shape(const shape_type& x) const { return x; }
  std::uint64_t flops(const shape_type&, const shape_type&) const { return 0; }
  template <class C>
  void forward(C&) const {}
  template <class C>
  void backward(C&) const {}
};
struct no_flops_op {
  static constexpr std::string_view name = "no_flops";
  shape_type shape(const shape_type& x) const { return x; }
  template <class C>
  void forward(C&) const {}
  template <class C>
  void backward(C&) const {}
};
struct no_shape_op {
  static constexpr std::string_view name = "no_shape";
  std::uint64_t flops(const shape_type&, const shape_type&) const { return 0; }
  template <class C>
  void forward(C&) const {}
  template <class C>
  void backward(C&) const {}
};

static_assert(grad::op_for<cube_op, double, 1>);
static_assert(grad::op_for<cube_op, float, 1>);
static_assert(!grad::op_for<cube_op, double, 2>); // its shape rule takes one input
static_assert(!grad::op_for<cube_op, int, 1>);    // not an element type
static_assert(grad::op_for<mul_square_op, float, 2>);
static_assert(grad::op_for<sum_list_op, double, 0>);
static_assert(!grad::op_for<sum_list_op, double, 1>);
static_assert(!grad::op_for<no_backward_op, double, 1>);
static_assert(!grad::op_for<no_name_op, double, 1>);
static_assert(!grad::op_for<no_flops_op, double, 1>);
static_assert(!grad::op_for<no_shape_op, double, 1>);
static_assert(grad::op_for<grad::ops::mul_op, float, 2>); // the library's own ops satisfy it
static_assert(grad::op_for<grad::ops::matmul_op, double, 2>);
static_assert(grad::op_for<grad::ops::concat_op, float, 0>);

} // namespace

TEST_CASE("a user-defined cube op: values, gradcheck, float and double") {
  op_check::check(
      "cube", [](const auto& x) { return grad::apply(cube_op{}, x[0]); },
      [](const std::vector<array>& in) { return op_check::map(in[0], [](double v) { return v * v * v; }); },
      op_check::unary_shapes());
}

TEST_CASE("a custom op composes with library ops and is recorded with its name and FLOPs") {
  auto x = grad::from<double>({1.0, -2.0}, {.requires_grad = true});
  auto y = grad::apply(cube_op{}, x * 2.0);
  CHECK(grad::current_tape().nodes().back()->name == "cube");
  CHECK(grad::current_tape().nodes().back()->flops == 4);
  CHECK(values(y) == std::vector<double>{8, -64});
  grad::sum(y).backward(); // d/dx (2x)^3 = 24 x^2
  CHECK(values(x.grad()) == std::vector<double>{24, 96});
}

TEST_CASE("a custom broadcasting op: the tape sums its gradients down to the inputs' shapes") {
  op_check::check(
      "mul_square", [](const auto& x) { return grad::apply(mul_square_op{}, x[0], x[1]); },
      [](const std::vector<array>& in) {
        return op_check::zip(in[0], in[1], [](double a, double b) { return a * b * b; });
      },
      {{{3, 4}, {3, 4}}, {{3, 1}, {1, 4}}, {{2, 3, 4}, {4}}, {{}, {2, 3}}});
  // a constant second input: the op writes din(1) anyway, into scratch; nothing leaks into b
  auto a = grad::from<double>({1.0, 2.0}, {.requires_grad = true});
  const auto b = grad::from<double>({3.0});
  grad::sum(grad::apply(mul_square_op{}, a, b)).backward();
  CHECK(values(a.grad()) == std::vector<double>{9, 9});
  CHECK_FALSE(b.has_grad());
}

TEST_CASE("a custom op on a list of inputs, run by apply_list") {
  op_check::check(
      "sum_list", [](const auto& x) { return grad::apply_list(sum_list_op{}, x); },
      [](const std::vector<array>& in) {
        array r = in[0];
        for (std::size_t k = 1; k < in.size(); ++k)
          for (std::size_t i = 0; i < r.v.size(); ++i)
            r.v[i] += in[k].v[i];
        return r;
      },
      {{{3}, {3}, {3}}, {{2, 2}}, {{}, {}}});
  CHECK(op_check::mentions(
      op_check::error_message<grad::shape_error>([] {
        (void)grad::apply_list(sum_list_op{}, std::vector{grad::ones<float>({2}), grad::ones<float>({3})});
      }),
      {"sum_list", "(2,)", "(3,)"}));
}

TEST_CASE("apply runs the op's shape rule before anything else") {
  auto x = grad::ones<float>({2}, {.requires_grad = true});
  const std::size_t before = grad::current_tape().size();
  CHECK_THROWS_AS((void)grad::apply(mul_square_op{}, x, grad::ones<float>({3})), grad::shape_error);
  CHECK(grad::current_tape().size() == before); // nothing recorded for a failed call
}
