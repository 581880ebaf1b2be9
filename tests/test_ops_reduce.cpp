// Tests of ops/reduce.hpp: sum, mean, max, min over all elements, one axis, several axes and negative
// axes, with and without keepdim; tie splitting of max/min gradients, NaN propagation, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <grad/grad.hpp>

#include "op_check.hpp"

using grad::shape_type;
using op_check::array;
using op_check::values;

namespace {

enum class kind { sum, mean, max, min };

/// Naive reduction of `a` over `axes` (empty = all), written from the definition: every input
/// element folds into the output element whose index has the reduced coordinates removed.
array reduce_ref(const array& a, kind k, std::vector<std::int64_t> axes, bool all, bool keepdim) {
  const auto nd = static_cast<std::int64_t>(a.shape.size());
  std::vector<bool> reduced(a.shape.size(), all);
  for (auto ax : axes)
    reduced[static_cast<std::size_t>(ax < 0 ? ax + nd : ax)] = true;
  shape_type kept = a.shape, out_shape;
  for (std::size_t d = 0; d < a.shape.size(); ++d) {
    if (reduced[d])
      kept[d] = 1;
    if (!reduced[d] || keepdim)
      out_shape.push_back(kept[d]);
  }
  const std::size_t n_out = op_check::count(kept);
  std::vector<double> acc(n_out, k == kind::max ? -INFINITY : (k == kind::min ? INFINITY : 0.0));
  std::vector<std::size_t> cnt(n_out, 0);
  for (std::size_t i = 0; i < a.v.size(); ++i) {
    auto idx = op_check::unravel(i, a.shape);
    for (std::size_t d = 0; d < idx.size(); ++d)
      if (reduced[d])
        idx[d] = 0;
    const std::size_t o = op_check::ravel(idx, kept);
    const double v = a.v[i];
    if (k == kind::max)
      acc[o] = (std::isnan(acc[o]) || std::isnan(v)) ? NAN : std::max(acc[o], v);
    else if (k == kind::min)
      acc[o] = (std::isnan(acc[o]) || std::isnan(v)) ? NAN : std::min(acc[o], v);
    else
      acc[o] += v;
    ++cnt[o];
  }
  if (k == kind::mean)
    for (std::size_t o = 0; o < n_out; ++o)
      acc[o] /= static_cast<double>(cnt[o]);
  return {out_shape, acc};
}

/// Calls the library's reduction of kind k.
template <class T>
grad::basic_tensor<T> reduce_lib(const grad::basic_tensor<T>& x, kind k,
                                 const std::vector<std::int64_t>& axes, bool all, bool keepdim) {
  if (all) {
    switch (k) {
    case kind::sum:
      return grad::sum(x);
    case kind::mean:
      return grad::mean(x);
    case kind::max:
      return grad::max(x);
    default:
      return grad::min(x);
    }
  }
  if (axes.size() == 1) { // the one-axis overloads
    switch (k) {
    case kind::sum:
      return grad::sum(x, axes[0], keepdim);
    case kind::mean:
      return grad::mean(x, axes[0], keepdim);
    case kind::max:
      return grad::max(x, axes[0], keepdim);
    default:
      return grad::min(x, axes[0], keepdim);
    }
  }
  switch (k) {
  case kind::sum:
    return grad::sum(x, axes, keepdim);
  case kind::mean:
    return grad::mean(x, axes, keepdim);
  case kind::max:
    return grad::max(x, axes, keepdim);
  default:
    return grad::min(x, axes, keepdim);
  }
}

struct reduction {
  shape_type shape;
  std::vector<std::int64_t> axes;
  bool all = false;
};

/// Every (shape, axes) combination the reductions are checked on.
const std::vector<reduction>& reductions() {
  static const std::vector<reduction> r = {
      {{}, {}, true},         {{1}, {}, true},     {{5}, {}, true},      {{3, 4}, {}, true},
      {{2, 3, 4}, {}, true},  {{5}, {0}},          {{5}, {-1}},          {{1}, {0}},
      {{3, 4}, {0}},          {{3, 4}, {1}},       {{3, 4}, {-1}},       {{3, 4}, {-2}},
      {{2, 3, 4}, {1}},       {{2, 3, 4}, {0, 2}}, {{2, 3, 4}, {-1, 0}}, {{2, 3, 4}, {0, 1, 2}},
      {{2, 3, 4}, {2, 1}},    {{2, 1, 3}, {1}},    {{2, 1, 3}, {0, -1}}, {{1, 1}, {0, 1}},
      {{2, 3, 1, 2}, {1, 3}}, {{3, 4}, {1, 0}},
  };
  return r;
}

void check_kind(kind k, const std::string& name) {
  for (const auto& r : reductions())
    for (bool keepdim : {false, true}) {
      if (r.all && keepdim)
        continue; // sum(x) has no keepdim
      std::string what = name + (r.all ? "(all)" : "(axes");
      for (auto a : r.axes)
        what += " " + std::to_string(a);
      what += r.all ? "" : (keepdim ? ", keepdim)" : ")");
      const bool extremum = k == kind::max || k == kind::min;
      op_check::check(
          what, [&](const auto& x) { return reduce_lib(x[0], k, r.axes, r.all, keepdim); },
          [&](const std::vector<array>& in) { return reduce_ref(in[0], k, r.axes, r.all, keepdim); },
          {{r.shape}}, {extremum ? op_check::distinct() : op_check::normal()});
    }
}

} // namespace

TEST_CASE("sum over all, one, several and negative axes, keepdim on and off") {
  check_kind(kind::sum, "sum");
}

TEST_CASE("mean over all, one, several and negative axes, keepdim on and off") {
  check_kind(kind::mean, "mean");
}

TEST_CASE("max over all, one, several and negative axes, keepdim on and off (no ties)") {
  check_kind(kind::max, "max");
}

TEST_CASE("min over all, one, several and negative axes, keepdim on and off (no ties)") {
  check_kind(kind::min, "min");
}

TEST_CASE("output shapes with and without keepdim") {
  const auto x = grad::zeros<float>({2, 3, 4});
  CHECK(grad::sum(x).shape() == shape_type{});
  CHECK(grad::sum(x, 1).shape() == shape_type{2, 4});
  CHECK(grad::sum(x, 1, true).shape() == shape_type{2, 1, 4});
  CHECK(grad::mean(x, {0, 2}).shape() == shape_type{3});
  CHECK(grad::mean(x, {0, 2}, true).shape() == shape_type{1, 3, 1});
  CHECK(grad::max(x, -1).shape() == shape_type{2, 3});
  CHECK(grad::min(x, {-3, -2, -1}, true).shape() == shape_type{1, 1, 1});
}

TEST_CASE("max and min share the gradient between ties (hand-checked)") {
  auto x = grad::from<double>({1.0, 3.0, 3.0, 2.0}, {.requires_grad = true});
  grad::max(x).backward();
  CHECK(values(x.grad()) == std::vector<double>{0, 0.5, 0.5, 0});
  x.zero_grad();
  grad::min(x * -1.0).backward(); // min of -x is at the same ties; d(-x)/dx = -1
  CHECK(values(x.grad()) == std::vector<double>{0, -0.5, -0.5, 0});

  // per row: row 0 has a three-way tie, row 1 a single maximum, row 2 all equal
  auto m = grad::from<double>({{2.0, 2.0, 1.0, 2.0}, {0.0, 5.0, 4.0, 1.0}, {7.0, 7.0, 7.0, 7.0}},
                              {.requires_grad = true});
  const auto mx = grad::max(m, 1);
  CHECK(values(mx) == std::vector<double>{2, 5, 7});
  grad::sum(mx * grad::from<double>({3.0, 1.0, 4.0})).backward();
  CHECK(values(m.grad()) == std::vector<double>{1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 1, 1});
  m.zero_grad();
  grad::sum(grad::min(m, 0)).backward(); // column minima: 0 (row 1), 2 (row 0), 1 (row 0), 1 (row 1)
  CHECK(values(m.grad()) == std::vector<double>{0, 1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0});
}

TEST_CASE("max and min propagate NaN, as PyTorch") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto x = grad::from<double>({1.0, nan, 3.0});
  CHECK(std::isnan(grad::max(x).item()));
  CHECK(std::isnan(grad::min(x).item()));
  const auto first = grad::from<double>({nan, 1.0, 3.0}); // NaN first must stay, not be overwritten
  CHECK(std::isnan(grad::max(first).item()));
  CHECK(std::isnan(grad::min(first).item()));
  const auto m = grad::from<float>({{1.0f, 2.0f}, {static_cast<float>(nan), 0.0f}});
  const auto r = grad::max(m, 1);
  CHECK(r.data()[0] == 2.0f);
  CHECK(std::isnan(r.data()[1]));
  const auto c = grad::min(m, 0);
  CHECK(std::isnan(c.data()[0]));
  CHECK(c.data()[1] == 0.0f);
  CHECK(std::isnan(grad::sum(x).item()));
}

TEST_CASE("reductions of empty tensors: sum is 0, mean NaN, max/min throw") {
  const auto e = grad::zeros<double>({0, 3});
  CHECK(grad::sum(e).item() == 0.0);
  CHECK(std::isnan(grad::mean(e).item()));
  CHECK(values(grad::sum(e, 0)) == std::vector<double>{0, 0, 0});
  CHECK(grad::sum(e, 1).shape() == shape_type{0});
  CHECK(op_check::mentions(op_check::error_message<grad::value_error>([&] { (void)grad::max(e); }),
                           {"max", "(0, 3)"}));
  CHECK(op_check::mentions(op_check::error_message<grad::value_error>([&] { (void)grad::min(e, 0); }),
                           {"min", "(0, 3)"}));
  CHECK(grad::max(e, 1).shape() == shape_type{0}); // reducing a non-empty axis of an empty tensor
}

TEST_CASE("bad axes throw value_error naming the op and the axis") {
  const auto x = grad::zeros<float>({2, 3});
  using op_check::error_message;
  using op_check::mentions;
  CHECK(mentions(error_message<grad::value_error>([&] { (void)grad::sum(x, 2); }), {"sum", "axis 2", "2-d"}));
  CHECK(mentions(error_message<grad::value_error>([&] { (void)grad::mean(x, -3); }), {"mean", "axis -3"}));
  CHECK(mentions(error_message<grad::value_error>([&] { (void)grad::max(x, {0, 5}); }), {"max", "axis 5"}));
  CHECK(mentions(error_message<grad::value_error>([&] {
                   (void)grad::min(x, {1, -1});
                 }),
                 {"min", "repeated"}));
}

TEST_CASE("reduce ops record FLOPs equal to the input's element count") {
  auto x = grad::ones<float>({3, 5}, {.requires_grad = true});
  auto y = grad::sum(x, 1);
  CHECK(grad::current_tape().nodes().back()->name == "sum");
  CHECK(grad::current_tape().nodes().back()->flops == 15);
  auto z = grad::max(x);
  CHECK(grad::current_tape().nodes().back()->name == "max");
}
