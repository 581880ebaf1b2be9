// Tests of ops/join.hpp: slice (negative and out-of-range bounds, steps, empty results), concat of
// tensors with different extents along the axis, stack along new axes; values, gradients, errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <grad/grad.hpp>

#include "op_check.hpp"

using grad::shape_type;
using op_check::array;
using op_check::values;

namespace {

/// The indices Python's a[start:stop:step] (step > 0) selects from n elements.
std::vector<std::size_t> python_slice(std::int64_t n, std::int64_t start, std::int64_t stop,
                                      std::int64_t step) {
  if (start < 0)
    start = std::max<std::int64_t>(start + n, 0);
  if (stop < 0)
    stop = std::max<std::int64_t>(stop + n, 0);
  start = std::min(start, n);
  stop = std::min(stop, n);
  std::vector<std::size_t> r;
  for (std::int64_t i = start; i < stop; i += step)
    r.push_back(static_cast<std::size_t>(i));
  return r;
}

array slice_ref(const array& a, std::size_t axis, std::int64_t start, std::int64_t stop, std::int64_t step) {
  const auto sel = python_slice(static_cast<std::int64_t>(a.shape[axis]), start, stop, step);
  array r{a.shape, {}};
  r.shape[axis] = sel.size();
  r.v.resize(op_check::count(r.shape));
  for (std::size_t o = 0; o < r.v.size(); ++o) {
    auto idx = op_check::unravel(o, r.shape);
    idx[axis] = sel[idx[axis]];
    r.v[o] = a.v[op_check::ravel(idx, a.shape)];
  }
  return r;
}

array concat_ref(const std::vector<array>& in, std::size_t axis) {
  array r{in[0].shape, {}};
  r.shape[axis] = 0;
  for (const auto& a : in)
    r.shape[axis] += a.shape[axis];
  r.v.resize(op_check::count(r.shape));
  for (std::size_t o = 0; o < r.v.size(); ++o) {
    auto idx = op_check::unravel(o, r.shape);
    std::size_t t = 0;
    while (idx[axis] >= in[t].shape[axis]) // find the input that holds this coordinate
      idx[axis] -= in[t++].shape[axis];
    r.v[o] = in[t].v[op_check::ravel(idx, in[t].shape)];
  }
  return r;
}

array stack_ref(const std::vector<array>& in, std::size_t axis) {
  array r{in[0].shape, {}};
  r.shape.insert(r.shape.begin() + static_cast<std::ptrdiff_t>(axis), in.size());
  r.v.resize(op_check::count(r.shape));
  for (std::size_t o = 0; o < r.v.size(); ++o) {
    auto idx = op_check::unravel(o, r.shape);
    const std::size_t t = idx[axis];
    idx.erase(idx.begin() + static_cast<std::ptrdiff_t>(axis));
    r.v[o] = in[t].v[op_check::ravel(idx, in[t].shape)];
  }
  return r;
}

} // namespace

TEST_CASE("slice: plain, negative and out-of-range bounds, steps > 1, empty results") {
  struct c {
    shape_type shape;
    std::int64_t axis, start, stop, step;
    std::size_t axis_n; // the normalised axis, for the reference
  };
  for (const auto& t : std::vector<c>{{{10}, 0, 2, 7, 1, 0},
                                      {{10}, 0, -3, 10, 1, 0},
                                      {{10}, 0, -100, 100, 1, 0},
                                      {{10}, 0, 1, -1, 3, 0},
                                      {{10}, 0, 0, 10, 4, 0},
                                      {{10}, -1, 8, 200, 2, 0},
                                      {{4, 6}, 1, 1, 5, 2, 1},
                                      {{4, 6}, -1, -4, -1, 1, 1},
                                      {{4, 6}, 0, 3, 4, 1, 0},
                                      {{2, 5, 3}, 1, 0, 5, 2, 1},
                                      {{2, 5, 3}, -1, 1, 3, 1, 2},
                                      {{1, 3}, 0, 0, 1, 1, 0}}) {
    const std::string what = "slice(axis " + std::to_string(t.axis) + ", " + std::to_string(t.start) + ":" +
                             std::to_string(t.stop) + ":" + std::to_string(t.step) + ")";
    op_check::check(
        what, [&](const auto& x) { return grad::slice(x[0], t.axis, t.start, t.stop, t.step); },
        [&](const std::vector<array>& in) { return slice_ref(in[0], t.axis_n, t.start, t.stop, t.step); },
        {{t.shape}});
  }
}

TEST_CASE("slice: hand-checked values, and empty results with zero gradient") {
  const auto x = grad::arange<double>(10);
  CHECK(values(grad::slice(x, 0, 2, 9, 3)) == std::vector<double>{2, 5, 8});
  CHECK(values(grad::slice(x, 0, -2, 10)) == std::vector<double>{8, 9});
  CHECK(values(grad::slice(x, 0, -20, 2)) == std::vector<double>{0, 1});

  auto y = grad::from<double>({{1.0, 2.0}, {3.0, 4.0}}, {.requires_grad = true});
  for (auto [start, stop] : {std::pair<std::int64_t, std::int64_t>{1, 1}, {2, 1}, {5, 9}, {-1, -2}}) {
    const auto e = grad::slice(y, 0, start, stop);
    CHECK(e.shape() == shape_type{0, 2});
    grad::sum(e * 3.0 + 1.0).backward();
    CHECK(values(y.grad()) == std::vector<double>{0, 0, 0, 0});
  }
}

TEST_CASE("slice errors: step <= 0, bad axis, 0-d input") {
  const auto x = grad::zeros<float>({4, 5});
  using op_check::error_message;
  using op_check::mentions;
  CHECK(mentions(error_message<grad::value_error>([&] { (void)grad::slice(x, 0, 0, 4, 0); }),
                 {"slice", "step"}));
  CHECK(mentions(error_message<grad::value_error>([&] { (void)grad::slice(x, 0, 4, 0, -1); }),
                 {"slice", "-1"}));
  CHECK(mentions(error_message<grad::value_error>([&] { (void)grad::slice(x, 2, 0, 1); }),
                 {"slice", "axis 2"}));
  CHECK(
      mentions(error_message<grad::shape_error>([&] { (void)grad::slice(grad::zeros<float>({}), 0, 0, 1); }),
               {"slice", "0-d"}));
}

TEST_CASE("concat of three tensors along axes 0, 1 and -1 with different extents") {
  const auto op0 = [](const auto& x) { return grad::concat(x, 0); };
  const auto op1 = [](const auto& x) { return grad::concat(x, 1); };
  const auto opm1 = [](const auto& x) { return grad::concat(x, -1); };
  op_check::check("concat axis 0", op0, [](const std::vector<array>& in) { return concat_ref(in, 0); },
                  {{{2, 3}, {1, 3}, {4, 3}},
                   {{2}, {5}, {1}},
                   {{1, 2, 2}, {2, 2, 2}, {1, 2, 2}},
                   {{2, 3}, {0, 3}, {1, 3}}});
  op_check::check("concat axis 1", op1, [](const std::vector<array>& in) { return concat_ref(in, 1); },
                  {{{2, 3}, {2, 1}, {2, 4}}, {{2, 1, 3}, {2, 3, 3}, {2, 2, 3}}, {{1, 2}, {1, 1}, {1, 3}}});
  op_check::check("concat axis -1", opm1,
                  [](const std::vector<array>& in) { return concat_ref(in, in[0].shape.size() - 1); },
                  {{{2, 3, 1}, {2, 3, 2}, {2, 3, 4}}, {{3}, {2}, {1}}, {{2, 2}, {2, 1}, {2, 2}}});
  op_check::check("concat of one tensor", op0, [](const std::vector<array>& in) { return concat_ref(in, 0); },
                  {{{2, 3}}});
  const auto c = grad::concat(std::vector{grad::from<double>({1.0, 2.0}), grad::from<double>({3.0})});
  CHECK(values(c) == std::vector<double>{1, 2, 3});
}

TEST_CASE("stack along axis 0, 1 and the last (new) axis") {
  const auto ref = [](std::size_t axis) {
    return [axis](const std::vector<array>& in) { return stack_ref(in, axis); };
  };
  const std::vector<std::vector<shape_type>> cases = {{{2, 3}, {2, 3}, {2, 3}}, {{4, 1}, {4, 1}}};
  op_check::check(
      "stack axis 0", [](const auto& x) { return grad::stack(x, 0); }, ref(0), cases);
  op_check::check(
      "stack axis 1", [](const auto& x) { return grad::stack(x, 1); }, ref(1), cases);
  op_check::check(
      "stack axis 2 (new last)", [](const auto& x) { return grad::stack(x, 2); }, ref(2), cases);
  op_check::check(
      "stack axis -1", [](const auto& x) { return grad::stack(x, -1); }, ref(2), cases);
  op_check::check("stack of 0-d tensors", [](const auto& x) { return grad::stack(x); }, ref(0),
                  {{{}, {}, {}, {}}});
  op_check::check("stack 1-d along -1", [](const auto& x) { return grad::stack(x, -1); }, ref(1),
                  {{{3}, {3}}});
  const auto s = grad::stack(std::vector{grad::from<double>({1.0, 2.0}), grad::from<double>({3.0, 4.0})}, 1);
  CHECK(s.shape() == shape_type{2, 2});
  CHECK(values(s) == std::vector<double>{1, 3, 2, 4});
}

TEST_CASE("concat and stack errors name the op and the shapes") {
  using op_check::error_message;
  using op_check::mentions;
  const auto a = grad::zeros<float>({2, 3});
  const auto b = grad::zeros<float>({2, 4});
  const auto c = grad::zeros<float>({2, 3, 1});
  CHECK(mentions(error_message<grad::shape_error>([&] {
                   (void)grad::concat(std::vector{a, b}, 0);
                 }),
                 {"concat", "(2, 3)", "(2, 4)"}));
  CHECK(mentions(error_message<grad::shape_error>([&] {
                   (void)grad::concat(std::vector{a, c}, 1);
                 }),
                 {"concat", "(2, 3)", "(2, 3, 1)"}));
  CHECK(grad::concat(std::vector{a, b}, 1).shape() == shape_type{2, 7});
  CHECK(mentions(error_message<grad::value_error>([&] {
                   (void)grad::concat(std::vector{a, a}, 2);
                 }),
                 {"concat", "axis 2"}));
  CHECK(mentions(error_message<grad::value_error>([&] { (void)grad::concat(std::vector<grad::tensor>{}); }),
                 {"concat"}));
  CHECK_THROWS_AS((void)grad::concat(std::vector{grad::zeros<float>({}), grad::zeros<float>({})}),
                  grad::value_error);
  CHECK(mentions(error_message<grad::shape_error>([&] {
                   (void)grad::stack(std::vector{a, b});
                 }),
                 {"stack", "(2, 3)", "(2, 4)"}));
  CHECK(mentions(error_message<grad::value_error>([&] {
                   (void)grad::stack(std::vector{a, a}, 3);
                 }),
                 {"stack", "axis 3"}));
  CHECK(mentions(error_message<grad::value_error>([&] { (void)grad::stack(std::vector<grad::tensor>{}); }),
                 {"stack"}));
}

TEST_CASE("concat gives each input its own block of the gradient, constants get none") {
  auto a = grad::from<double>({{1.0}, {2.0}}, {.requires_grad = true});
  const auto b = grad::from<double>({{3.0, 4.0}, {5.0, 6.0}}); // constant
  auto c = grad::from<double>({{7.0}, {8.0}}, {.requires_grad = true});
  const auto y = grad::concat(std::vector{a, b, c}, 1);
  CHECK(values(y) == std::vector<double>{1, 3, 4, 7, 2, 5, 6, 8});
  grad::sum(y * grad::from<double>({{1.0, 2.0, 3.0, 4.0}, {5.0, 6.0, 7.0, 8.0}})).backward();
  CHECK(values(a.grad()) == std::vector<double>{1, 5});
  CHECK(values(c.grad()) == std::vector<double>{4, 8});
  CHECK_FALSE(b.has_grad());
}
