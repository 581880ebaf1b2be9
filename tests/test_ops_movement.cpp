// Tests of ops/movement.hpp: reshape (with -1), flatten, unsqueeze and squeeze (negative axes),
// transpose (default and explicit), permute of 3-d and 4-d tensors; values, gradients and errors.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include <grad/grad.hpp>

#include "op_check.hpp"

using grad::shape_type;
using op_check::array;
using op_check::values;

namespace {

/// The reference of a relabelling op: same elements in row-major order, the expected shape.
auto same_elements(shape_type expected) {
  return [expected](const std::vector<array>& in) { return array{expected, in[0].v}; };
}

/// Naive permute: out[i_0, ..., i_{n-1}] = in[j] with j[perm[d]] = i_d.
array permute_ref(const array& a, const std::vector<std::size_t>& perm) {
  shape_type out(perm.size());
  for (std::size_t d = 0; d < perm.size(); ++d)
    out[d] = a.shape[perm[d]];
  array r{out, std::vector<double>(a.v.size())};
  for (std::size_t o = 0; o < r.v.size(); ++o) {
    const auto idx = op_check::unravel(o, out);
    std::vector<std::size_t> src(idx.size());
    for (std::size_t d = 0; d < perm.size(); ++d)
      src[perm[d]] = idx[d];
    r.v[o] = a.v[op_check::ravel(src, a.shape)];
  }
  return r;
}

} // namespace

TEST_CASE("reshape, with and without -1") {
  struct c {
    shape_type in;
    std::vector<std::int64_t> target;
    shape_type out;
  };
  for (const auto& t : std::vector<c>{{{2, 3, 4}, {6, 4}, {6, 4}},
                                      {{2, 3, 4}, {-1}, {24}},
                                      {{2, 3, 4}, {4, -1}, {4, 6}},
                                      {{2, 3, 4}, {2, -1, 2}, {2, 6, 2}},
                                      {{6}, {1, 6, 1}, {1, 6, 1}},
                                      {{1}, {}, {}},
                                      {{}, {1, 1}, {1, 1}},
                                      {{}, {-1}, {1}},
                                      {{3, 4}, {4, 3}, {4, 3}}})
    op_check::check("reshape to " + grad::to_string(t.out),
                    [&](const auto& x) { return grad::reshape(x[0], t.target); }, same_elements(t.out),
                    {{t.in}});
  CHECK(grad::reshape(grad::zeros<float>({0, 3}), {3, 0}).shape() == shape_type{3, 0});
  // -1 next to a 0 extent is ambiguous (any value fits), as in PyTorch
  CHECK_THROWS_AS((void)grad::reshape(grad::zeros<float>({0, 3}), {3, 0, -1}), grad::shape_error);
}

TEST_CASE("reshape errors") {
  using op_check::error_message;
  using op_check::mentions;
  const auto x = grad::zeros<float>({2, 3});
  CHECK(mentions(error_message<grad::shape_error>([&] {
                   (void)grad::reshape(x, {4, 2});
                 }),
                 {"reshape", "(4, 2)", "(2, 3)"}));
  CHECK(mentions(error_message<grad::shape_error>([&] {
                   (void)grad::reshape(x, {4, -1});
                 }),
                 {"reshape", "(4, -1)", "(2, 3)"}));
  CHECK(mentions(error_message<grad::shape_error>([&] {
                   (void)grad::reshape(x, {-1, -1});
                 }),
                 {"reshape", "-1"}));
  CHECK(mentions(error_message<grad::shape_error>([&] {
                   (void)grad::reshape(x, {-2, -3});
                 }),
                 {"reshape", "-2"}));
}

TEST_CASE("flatten: all dimensions, a range, 0-d") {
  op_check::check("flatten()", [](const auto& x) { return grad::flatten(x[0]); }, same_elements({24}),
                  {{{2, 3, 4}}});
  op_check::check("flatten(1)", [](const auto& x) { return grad::flatten(x[0], 1); }, same_elements({2, 12}),
                  {{{2, 3, 4}}});
  op_check::check("flatten(0, 1)", [](const auto& x) { return grad::flatten(x[0], 0, 1); },
                  same_elements({6, 4}), {{{2, 3, 4}}});
  op_check::check("flatten(-3, -2)", [](const auto& x) { return grad::flatten(x[0], -3, -2); },
                  same_elements({2, 12, 5}), {{{2, 3, 4, 5}}});
  op_check::check("flatten(0-d)", [](const auto& x) { return grad::flatten(x[0]); }, same_elements({1}),
                  {{{}}});
  CHECK(grad::flatten(grad::zeros<float>({2, 0, 3}), 1).shape() == shape_type{2, 0});
  CHECK_THROWS_AS((void)grad::flatten(grad::zeros<float>({2, 3}), 1, 0), grad::value_error);
  CHECK_THROWS_AS((void)grad::flatten(grad::zeros<float>({2, 3}), 2), grad::value_error);
}

TEST_CASE("unsqueeze at the front, middle, end and negative axes") {
  struct c {
    shape_type in;
    std::int64_t axis;
    shape_type out;
  };
  for (const auto& t : std::vector<c>{{{3, 4}, 0, {1, 3, 4}},
                                      {{3, 4}, 1, {3, 1, 4}},
                                      {{3, 4}, 2, {3, 4, 1}},
                                      {{3, 4}, -1, {3, 4, 1}},
                                      {{3, 4}, -3, {1, 3, 4}},
                                      {{}, 0, {1}},
                                      {{}, -1, {1}}})
    op_check::check("unsqueeze(" + std::to_string(t.axis) + ")",
                    [&](const auto& x) { return grad::unsqueeze(x[0], t.axis); }, same_elements(t.out),
                    {{t.in}});
  CHECK(op_check::mentions(op_check::error_message<grad::value_error>([&] {
                             (void)grad::unsqueeze(grad::zeros<float>({3, 4}), 3);
                           }),
                           {"unsqueeze", "axis 3"}));
  CHECK_THROWS_AS((void)grad::unsqueeze(grad::zeros<float>({3, 4}), -4), grad::value_error);
}

TEST_CASE("squeeze one axis (incl. negative) and all size-1 axes") {
  op_check::check("squeeze()", [](const auto& x) { return grad::squeeze(x[0]); }, same_elements({3, 4}),
                  {{{1, 3, 1, 4, 1}}});
  op_check::check("squeeze(0)", [](const auto& x) { return grad::squeeze(x[0], 0); }, same_elements({3, 1}),
                  {{{1, 3, 1}}});
  op_check::check("squeeze(-1)", [](const auto& x) { return grad::squeeze(x[0], -1); }, same_elements({1, 3}),
                  {{{1, 3, 1}}});
  op_check::check("squeeze() of all ones", [](const auto& x) { return grad::squeeze(x[0]); },
                  same_elements({}), {{{1, 1}}});
  op_check::check("squeeze() of 0-d", [](const auto& x) { return grad::squeeze(x[0]); }, same_elements({}),
                  {{{}}});
  CHECK(op_check::mentions(op_check::error_message<grad::shape_error>([&] {
                             (void)grad::squeeze(grad::zeros<float>({1, 3}), 1);
                           }),
                           {"squeeze", "(1, 3)", "3"}));
  CHECK_THROWS_AS((void)grad::squeeze(grad::zeros<float>({1, 3}), 2), grad::value_error);
}

TEST_CASE("transpose: default (last two) and explicit dimensions") {
  op_check::check(
      "transpose()", [](const auto& x) { return grad::transpose(x[0]); },
      [](const std::vector<array>& in) {
        return permute_ref(in[0], {1, 0});
      },
      {{{3, 4}}, {{1, 5}}, {{4, 1}}});
  op_check::check(
      "transpose() 3-d", [](const auto& x) { return grad::transpose(x[0]); },
      [](const std::vector<array>& in) {
        return permute_ref(in[0], {0, 2, 1});
      },
      {{{2, 3, 4}}});
  op_check::check(
      "transpose(0, 2)", [](const auto& x) { return grad::transpose(x[0], 0, 2); },
      [](const std::vector<array>& in) {
        return permute_ref(in[0], {2, 1, 0});
      },
      {{{2, 3, 4}}});
  op_check::check(
      "transpose(-3, 1)", [](const auto& x) { return grad::transpose(x[0], -3, 1); },
      [](const std::vector<array>& in) {
        return permute_ref(in[0], {1, 0, 2});
      },
      {{{2, 3, 4}}});
  const auto t = grad::transpose(grad::from<double>({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}));
  CHECK(t.shape() == shape_type{3, 2});
  CHECK(values(t) == std::vector<double>{1, 4, 2, 5, 3, 6});
  CHECK(op_check::mentions(
      op_check::error_message<grad::shape_error>([&] { (void)grad::transpose(grad::zeros<float>({5})); }),
      {"transpose", "(5,)"}));
  CHECK_THROWS_AS((void)grad::transpose(grad::zeros<float>({2, 3}), 0, 2), grad::value_error);
}

TEST_CASE("permute of 3-d and 4-d tensors, negative entries") {
  const std::vector<std::vector<std::size_t>> perms3 = {{0, 1, 2}, {2, 0, 1}, {1, 2, 0}, {2, 1, 0}};
  for (const auto& p : perms3)
    op_check::check(
        "permute 3-d",
        [&](const auto& x) {
          return grad::permute(x[0], {static_cast<std::int64_t>(p[0]), static_cast<std::int64_t>(p[1]),
                                      static_cast<std::int64_t>(p[2])});
        },
        [&](const std::vector<array>& in) { return permute_ref(in[0], p); }, {{{2, 3, 4}}, {{1, 3, 1}}});
  op_check::check(
      "permute 4-d (0, 2, 3, 1)",
      [](const auto& x) {
        return grad::permute(x[0], {0, 2, 3, 1});
      },
      [](const std::vector<array>& in) {
        return permute_ref(in[0], {0, 2, 3, 1});
      },
      {{{2, 3, 4, 5}}});
  op_check::check(
      "permute 4-d (-1, -3, 0, 2)",
      [](const auto& x) {
        return grad::permute(x[0], {-1, -3, 0, 2});
      },
      [](const std::vector<array>& in) {
        return permute_ref(in[0], {3, 1, 0, 2});
      },
      {{{2, 3, 1, 2}}});
  const auto x = grad::zeros<float>({2, 3, 4});
  CHECK(op_check::mentions(op_check::error_message<grad::shape_error>([&] {
                             (void)grad::permute(x, {0, 1});
                           }),
                           {"permute", "2", "3-d"}));
  CHECK(op_check::mentions(op_check::error_message([&] {
                             (void)grad::permute(x, {0, 1, -2});
                           }),
                           {"permute", "twice"}));
  CHECK_THROWS_AS((void)grad::permute(x, {0, 1, 3}), grad::value_error);
}

TEST_CASE("movement ops move bytes, not FLOPs") {
  auto x = grad::ones<float>({2, 3}, {.requires_grad = true});
  auto y = grad::transpose(x);
  CHECK(grad::current_tape().nodes().back()->name == "permute");
  CHECK(grad::current_tape().nodes().back()->flops == 0);
  auto z = grad::reshape(x, {-1});
  CHECK(grad::current_tape().nodes().back()->name == "reshape");
  CHECK(grad::current_tape().nodes().back()->flops == 0);
}
