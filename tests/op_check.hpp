#pragma once
/// @file tests/op_check.hpp
/// The one helper every op test goes through (DESIGN.md section 8). For each list of input shapes it
///  1. draws random inputs from each input's domain (kept away from non-differentiable points),
///  2. compares the op's values, in float and in double, with a naive reference written in the test
///     (plain loops on std::vector<double>, independent of grad's kernels),
///  3. runs grad::gradcheck in double (central differences) on the inputs that require grad,
///  4. compares the float backward with the double backward (same projection of the output).

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <grad/grad.hpp>

namespace op_check {

using grad::shape_type;

// ---------------------------------------------------------------------------------------------------
// The reference side: a plain row-major array of doubles and naive index arithmetic.

/// A row-major array of doubles, the currency of the references.
struct array {
  shape_type shape;
  std::vector<double> v;
};

/// Number of elements of a shape (1 for 0-d).
inline std::size_t count(const shape_type& s) {
  std::size_t n = 1;
  for (auto d : s)
    n *= d;
  return n;
}

/// Multi-index of flat position `flat` in a row-major array of shape `s`.
inline std::vector<std::size_t> unravel(std::size_t flat, const shape_type& s) {
  std::vector<std::size_t> idx(s.size());
  for (std::size_t d = s.size(); d-- > 0;) {
    idx[d] = flat % s[d];
    flat /= s[d];
  }
  return idx;
}

/// Flat position of a multi-index in a row-major array of shape `s`.
inline std::size_t ravel(const std::vector<std::size_t>& idx, const shape_type& s) {
  std::size_t flat = 0;
  for (std::size_t d = 0; d < s.size(); ++d)
    flat = flat * s[d] + idx[d];
  return flat;
}

/// NumPy broadcasting of two shapes, written out from the rule (align right, 1 stretches).
inline shape_type broadcast(const shape_type& a, const shape_type& b) {
  const std::size_t n = std::max(a.size(), b.size());
  shape_type r(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t da = i + a.size() >= n ? a[i + a.size() - n] : 1;
    const std::size_t db = i + b.size() >= n ? b[i + b.size() - n] : 1;
    REQUIRE_MESSAGE((da == db || da == 1 || db == 1), "test bug: reference shapes do not broadcast");
    r[i] = da == 1 ? db : da;
  }
  return r;
}

/// Flat position in an operand of shape `in` read at multi-index `out_idx` of the broadcast output.
inline std::size_t broadcast_index(const std::vector<std::size_t>& out_idx, const shape_type& in) {
  std::vector<std::size_t> idx(in.size());
  const std::size_t off = out_idx.size() - in.size();
  for (std::size_t d = 0; d < in.size(); ++d)
    idx[d] = in[d] == 1 ? 0 : out_idx[d + off];
  return ravel(idx, in);
}

/// f applied to every element.
template <class F>
array map(const array& a, F f) {
  array r{a.shape, a.v};
  for (auto& x : r.v)
    x = f(x);
  return r;
}

/// f(a, b) with broadcasting.
template <class F>
array zip(const array& a, const array& b, F f) {
  array r{broadcast(a.shape, b.shape), {}};
  r.v.resize(count(r.shape));
  for (std::size_t i = 0; i < r.v.size(); ++i) {
    const auto idx = unravel(i, r.shape);
    r.v[i] = f(a.v[broadcast_index(idx, a.shape)], b.v[broadcast_index(idx, b.shape)]);
  }
  return r;
}

/// f(a, b, c) with broadcasting.
template <class F>
array zip3(const array& a, const array& b, const array& c, F f) {
  array r{broadcast(broadcast(a.shape, b.shape), c.shape), {}};
  r.v.resize(count(r.shape));
  for (std::size_t i = 0; i < r.v.size(); ++i) {
    const auto idx = unravel(i, r.shape);
    r.v[i] = f(a.v[broadcast_index(idx, a.shape)], b.v[broadcast_index(idx, b.shape)],
               c.v[broadcast_index(idx, c.shape)]);
  }
  return r;
}

/// The elements of a tensor, or of its value() / grad() array, as doubles in row-major order.
template <class A>
std::vector<double> values(const A& a) {
  std::size_t n = 0;
  if constexpr (requires { a.numel(); })
    n = a.numel();
  else
    n = a.size();
  return std::vector<double>(a.data(), a.data() + n);
}

/// Formats a list of shapes for failure messages: "(3, 1) x (1, 4)".
inline std::string shapes_string(const std::vector<shape_type>& shapes) {
  std::string s;
  for (std::size_t i = 0; i < shapes.size(); ++i)
    s += (i ? " x " : "") + grad::to_string(shapes[i]);
  return s.empty() ? "(no inputs)" : s;
}

// ---------------------------------------------------------------------------------------------------
// Input domains: where the random inputs are drawn from.

/// How the values of one input are drawn.
struct domain {
  std::function<double(grad::generator&)> sample; ///< one value
  bool distinct = false; ///< values of all distinct inputs differ pairwise by >= 0.01 (no max/min ties)
  bool constant = false; ///< the input does not require grad (masks, conditions)
};

/// N(0, 1) clipped to [-3, 3].
inline domain normal() {
  return {[](grad::generator& g) { return std::clamp(g.normal(), -3.0, 3.0); }};
}
/// Uniform in [0.2, 3]: for log, sqrt, negative powers.
inline domain positive() {
  return {[](grad::generator& g) { return g.uniform(0.2, 3.0); }};
}
/// +-[0.2, 2]: away from 0, for abs, relu, division and 1/x.
inline domain nonzero() {
  return {[](grad::generator& g) { return (g.uniform() < 0.5 ? -1.0 : 1.0) * g.uniform(0.2, 2.0); }};
}
/// Pairwise distinct values (across all distinct inputs), at least 0.01 apart: for max/min.
inline domain distinct() {
  return {nullptr, true, false};
}
/// 0 or 1, not differentiated: for the condition of where.
inline domain mask() {
  return {[](grad::generator& g) { return g.uniform() < 0.5 ? 0.0 : 1.0; }, false, true};
}
/// Uniform in [lo, hi], at least `margin` away from every point in `avoid` (e.g. clamp bounds).
inline domain away_from(std::vector<double> avoid, double lo = -3, double hi = 3, double margin = 0.05) {
  return {[avoid = std::move(avoid), lo, hi, margin](grad::generator& g) {
    for (;;) {
      const double v = g.uniform(lo, hi);
      if (std::all_of(avoid.begin(), avoid.end(), [&](double p) { return std::abs(v - p) >= margin; }))
        return v;
    }
  }};
}

/// Tolerances and switches of check().
struct options {
  double double_rtol = 1e-12;    ///< double values vs reference
  double double_atol = 1e-12;    ///< double values vs reference
  double float_rtol = 1e-5;      ///< float values vs reference (on the float-rounded inputs)
  double float_atol = 1e-5;      ///< float values vs reference
  double float_grad_tol = 1e-4;  ///< float backward vs double backward (relative and absolute)
  bool gradcheck = true;         ///< run grad::gradcheck in double
  grad::gradcheck_options gc{};  ///< tolerances of gradcheck (the defaults: eps 1e-6, atol 1e-5, rtol 1e-3)
  std::uint64_t seed = 20240601; ///< seed of the inputs
};

namespace detail {

/// Draws the inputs of one case; `distinct` inputs take a shuffled lattice of well separated values.
inline std::vector<array> draw(const std::vector<shape_type>& shapes, const std::vector<domain>& doms,
                               grad::generator& g) {
  std::vector<array> in(shapes.size());
  std::size_t n_distinct = 0;
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    const domain d = i < doms.size() ? doms[i] : normal();
    in[i].shape = shapes[i];
    in[i].v.resize(count(shapes[i]));
    if (d.distinct)
      n_distinct += in[i].v.size();
    else
      for (auto& x : in[i].v)
        x = d.sample(g);
  }
  std::vector<double> lattice(n_distinct);
  for (std::size_t k = 0; k < n_distinct; ++k) // spacing 0.05, centred on 0, offset so 0 is not hit
    lattice[k] = (static_cast<double>(k) - static_cast<double>(n_distinct) / 2) * 0.05 + 0.013;
  for (std::size_t k = n_distinct; k > 1; --k) // Fisher-Yates with grad's generator (reproducible)
    std::swap(lattice[k - 1], lattice[g.randint(k)]);
  std::size_t next = 0;
  for (std::size_t i = 0; i < shapes.size(); ++i)
    if (i < doms.size() && doms[i].distinct)
      for (auto& x : in[i].v)
        x = lattice[next++];
  return in;
}

template <class T>
std::vector<grad::basic_tensor<T>> to_tensors(const std::vector<array>& in, const std::vector<domain>& doms,
                                              bool requires_grad) {
  std::vector<grad::basic_tensor<T>> r;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const bool constant = i < doms.size() && doms[i].constant;
    std::vector<T> v(in[i].v.begin(), in[i].v.end());
    r.push_back(grad::from<T>(v, in[i].shape, {.requires_grad = requires_grad && !constant}));
  }
  return r;
}

/// Empty when `got` matches `want` within tolerance, else a description of the worst element.
template <class T>
std::string compare(const grad::basic_tensor<T>& got, const array& want, double rtol, double atol) {
  if (got.shape() != want.shape)
    return "shape " + grad::to_string(got.shape()) + ", expected " + grad::to_string(want.shape);
  double worst = 0;
  std::size_t at = 0;
  bool bad = false;
  for (std::size_t i = 0; i < want.v.size(); ++i) {
    const double g = static_cast<double>(got.data()[i]);
    const double w = want.v[i];
    if (std::isnan(w) && std::isnan(g))
      continue;
    const double excess = std::abs(g - w) - (atol + rtol * std::abs(w));
    if (!(excess <= 0) && (!bad || excess > worst || std::isnan(excess))) {
      bad = true;
      worst = excess;
      at = i;
    }
  }
  if (!bad)
    return {};
  std::ostringstream os;
  os.precision(17);
  os << "element " << at << ": got " << static_cast<double>(got.data()[at]) << ", expected " << want.v[at];
  return os.str();
}

/// Gradients of sum(op(inputs) * w) for a fixed random w, by the tape (no finite differences).
template <class T, class Op>
std::vector<array> projected_grads(Op& op, const std::vector<array>& in, const std::vector<domain>& doms) {
  auto xs = to_tensors<T>(in, doms, true);
  const auto out = op(xs);
  grad::generator g(7);
  const auto w = grad::randn<T>(out.shape(), g);
  grad::sum(out * w).backward();
  std::vector<array> r;
  for (auto& x : xs) {
    array a{x.shape(), std::vector<double>(x.numel(), 0.0)};
    if (x.requires_grad())
      for (std::size_t i = 0; i < a.v.size(); ++i)
        a.v[i] = static_cast<double>(x.grad().data()[i]);
    r.push_back(std::move(a));
  }
  return r;
}

} // namespace detail

/// Checks `op` (a generic callable on std::vector<basic_tensor<T>> for T = float and double) against
/// `ref` (array ref(const std::vector<array>&)) for every list of input shapes in `cases`: values in
/// float and double, gradcheck in double, float backward vs double backward. `domains` gives, per
/// input, where its values are drawn from (default normal()).
template <class Op, class Ref>
void check(const std::string& name, Op op, Ref ref, const std::vector<std::vector<shape_type>>& cases,
           const std::vector<domain>& domains = {}, const options& opt = {}) {
  grad::generator gen(opt.seed);
  for (const auto& shapes : cases) {
    INFO(name, " with inputs ", shapes_string(shapes));
    const std::vector<array> in = detail::draw(shapes, domains, gen);

    { // double values; nothing requires grad, so nothing may be recorded
      const std::size_t tape_before = grad::current_tape().size();
      const auto out = op(detail::to_tensors<double>(in, domains, false));
      const std::string err = detail::compare(out, ref(in), opt.double_rtol, opt.double_atol);
      CHECK_MESSAGE(err.empty(), "double values: ", err);
      CHECK_FALSE(out.requires_grad());
      CHECK(grad::current_tape().size() == tape_before);
    }
    { // float values, against the reference on the float-rounded inputs
      std::vector<array> rounded = in;
      for (auto& a : rounded)
        for (auto& x : a.v)
          x = static_cast<double>(static_cast<float>(x));
      const auto out = op(detail::to_tensors<float>(rounded, domains, false));
      const std::string err = detail::compare(out, ref(rounded), opt.float_rtol, opt.float_atol);
      CHECK_MESSAGE(err.empty(), "float values: ", err);
    }
    bool any_grad = false;
    for (std::size_t i = 0; i < in.size(); ++i)
      any_grad = any_grad || !(i < domains.size() && domains[i].constant);
    if (!any_grad)
      continue;
    if (opt.gradcheck) {
      auto xs = detail::to_tensors<double>(in, domains, true);
      const grad::gradcheck_result r = grad::gradcheck(op, xs, opt.gc);
      CHECK_MESSAGE(r.ok, "gradcheck: ", r.message);
      for (std::size_t i = 0; i < in.size(); ++i) { // gradcheck restores the inputs it perturbed
        std::vector<double> now(xs[i].data(), xs[i].data() + xs[i].numel());
        CHECK_MESSAGE(now == in[i].v, "gradcheck left input ", i, " modified");
      }
    }
    { // the float backward agrees with the double backward
      const auto gd = detail::projected_grads<double>(op, in, domains);
      const auto gf = detail::projected_grads<float>(op, in, domains);
      for (std::size_t i = 0; i < in.size(); ++i) {
        const auto t = grad::from<float>(std::vector<float>(gf[i].v.begin(), gf[i].v.end()), gf[i].shape);
        const std::string err = detail::compare(t, gd[i], opt.float_grad_tol, opt.float_grad_tol);
        CHECK_MESSAGE(err.empty(), "float gradient of input ", i, ": ", err);
      }
    }
  }
}

/// Shapes for elementwise unary ops: 0-d, (1,), vector, matrix, size-1 dimensions, 3-d.
inline std::vector<std::vector<shape_type>> unary_shapes() {
  return {{{}}, {{1}}, {{5}}, {{3, 4}}, {{2, 1, 3}}, {{1, 1}}, {{2, 3, 4}}};
}

/// Shape pairs for broadcasting binary ops: equal shapes, (3,1)x(1,4), (2,3,4)x(4,), scalar-shaped
/// (1,) and 0-d operands on either side, size-1 dimensions, and differing ranks.
inline std::vector<std::vector<shape_type>> binary_shapes() {
  return {{{3, 4}, {3, 4}},    {{3, 1}, {1, 4}},       {{2, 3, 4}, {4}}, {{4}, {2, 3, 4}}, {{2, 3}, {1}},
          {{1}, {2, 3}},       {{}, {2, 3}},           {{2, 3}, {}},     {{}, {}},         {{1}, {1}},
          {{2, 1, 4}, {3, 1}}, {{1, 3, 1}, {2, 1, 5}}, {{5}, {5}}};
}

/// Runs f and returns the message of the grad::error it throws ("" and a failed check if none).
template <class E = grad::error, class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL_CHECK("threw the wrong exception type: ", e.what());
    return e.what();
  }
  FAIL_CHECK("did not throw");
  return {};
}

/// True when `message` contains every one of `parts`; prints the message when not.
inline bool mentions(const std::string& message, const std::vector<std::string>& parts) {
  for (const auto& p : parts)
    if (message.find(p) == std::string::npos) {
      MESSAGE("message \"", message, "\" lacks \"", p, "\"");
      return false;
    }
  return true;
}

} // namespace op_check
