// Tests of core/gradcheck.hpp: it passes on correct functions and FAILS on an op with a wrong backward,
// so every gradient check in the suite is able to fail.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <grad/grad.hpp>

namespace {

/// x^3 with a deliberately wrong backward (2x^2 instead of 3x^2).
struct wrong_cube_op {
  static constexpr std::string_view name = "wrong_cube";
  grad::shape_type shape(const grad::shape_type& x) const { return x; }
  std::uint64_t flops(const grad::shape_type& out, const grad::shape_type&) const {
    return 2 * grad::numel(out);
  }
  template <class C>
  void forward(C& c) const {
    for (std::size_t i = 0; i < c.out().size(); ++i)
      c.out().data()[i] = c.in(0).data()[i] * c.in(0).data()[i] * c.in(0).data()[i];
  }
  template <class C>
  void backward(C& c) const {
    for (std::size_t i = 0; i < c.out().size(); ++i) // WRONG on purpose: d(x^3)/dx = 3x^2
      c.din(0).data()[i] += c.dout().data()[i] * 2 * c.in(0).data()[i] * c.in(0).data()[i];
  }
};

/// a * b whose backward forgets the gradient of its second input.
struct half_mul_op {
  static constexpr std::string_view name = "half_mul";
  grad::shape_type shape(const grad::shape_type& a, const grad::shape_type& b) const {
    if (a != b)
      throw grad::shape_error("half_mul: shapes differ");
    return a;
  }
  std::uint64_t flops(const grad::shape_type& o, const grad::shape_type&, const grad::shape_type&) const {
    return grad::numel(o);
  }
  template <class C>
  void forward(C& c) const {
    for (std::size_t i = 0; i < c.out().size(); ++i)
      c.out().data()[i] = c.in(0).data()[i] * c.in(1).data()[i];
  }
  template <class C>
  void backward(C& c) const { // d(ab)/da = b; d(ab)/db is missing on purpose
    for (std::size_t i = 0; i < c.out().size(); ++i)
      c.din(0).data()[i] += c.dout().data()[i] * c.in(1).data()[i];
  }
};

} // namespace

TEST_CASE("gradcheck passes on a correct composed function") {
  grad::generator g(1);
  std::vector<grad::dtensor> in = {grad::randn<double>({3, 4}, g, {.requires_grad = true}),
                                   grad::randn<double>({4}, g, {.requires_grad = true})};
  const auto f = [](const std::vector<grad::dtensor>& x) {
    return grad::sum(grad::tanh(x[0] * x[1]) + grad::exp(x[1] / 4.0), 0);
  };
  const auto r = grad::gradcheck(f, in);
  CHECK_MESSAGE(r.ok, r.message);
  CHECK(static_cast<bool>(r));
  CHECK(r.message.empty());
  CHECK(r.max_abs_error < 1e-7);
}

TEST_CASE("gradcheck FAILS on an op with a wrong backward, and says where") {
  grad::generator g(2);
  std::vector<grad::dtensor> in = {grad::rand<double>({5}, g, {.requires_grad = true}, 0.5, 2.0)};
  const auto r = grad::gradcheck([](const auto& x) { return grad::apply(wrong_cube_op{}, x[0]); }, in);
  CHECK_FALSE(r.ok);
  CHECK_FALSE(static_cast<bool>(r));
  CHECK(r.max_abs_error > 0.1);
  CHECK(r.message.find("input 0 element") != std::string::npos);
  CHECK(r.message.find("analytic") != std::string::npos);
  CHECK(r.message.find("numeric") != std::string::npos);
  // the same op inside a larger expression with a non-scalar output is caught too
  const auto r2 =
      grad::gradcheck([](const auto& x) { return grad::apply(wrong_cube_op{}, x[0]) * 2.0 + x[0]; }, in);
  CHECK_FALSE(r2.ok);
}

TEST_CASE("gradcheck FAILS when one input's gradient is missing, and names that input") {
  grad::generator g(3);
  std::vector<grad::dtensor> in = {grad::randn<double>({2, 2}, g, {.requires_grad = true}),
                                   grad::randn<double>({2, 2}, g, {.requires_grad = true})};
  const auto r = grad::gradcheck([](const auto& x) { return grad::apply(half_mul_op{}, x[0], x[1]); }, in);
  CHECK_FALSE(r.ok);
  CHECK(r.message.find("input 1") != std::string::npos);
  CHECK(r.message.find("input 0") == std::string::npos);
  // with input 1 a constant, only input 0 is checked, and it is right
  in[1] = in[1].detach();
  const auto r2 = grad::gradcheck([](const auto& x) { return grad::apply(half_mul_op{}, x[0], x[1]); }, in);
  CHECK_MESSAGE(r2.ok, r2.message);
}

TEST_CASE("gradcheck: an output that does not require grad fails with a message") {
  std::vector<grad::dtensor> in = {grad::ones<double>({2})}; // no input requires grad
  const auto r = grad::gradcheck([](const auto& x) { return x[0] * 2.0; }, in);
  CHECK_FALSE(r.ok);
  CHECK(r.message.find("does not require grad") != std::string::npos);
}

TEST_CASE("gradcheck restores the inputs and honours its tolerances") {
  std::vector<grad::dtensor> in = {grad::from<double>({0.3, -1.2, 2.0}, {.requires_grad = true})};
  const std::vector<double> before(in[0].data(), in[0].data() + 3);
  const auto f = [](const auto& x) { return grad::sum(grad::exp(x[0])); };
  CHECK(grad::gradcheck(f, in).ok);
  CHECK(std::vector<double>(in[0].data(), in[0].data() + 3) == before);
  // a huge step makes the central difference visibly wrong for exp: strict tolerances must reject it
  grad::gradcheck_options coarse;
  coarse.eps = 0.5;
  coarse.atol = 1e-6;
  coarse.rtol = 1e-6;
  CHECK_FALSE(grad::gradcheck(f, in, coarse).ok);
  coarse.rtol = 0.1; // (e^h - e^-h)/2h - 1 = 4.2% at h = 0.5
  CHECK(grad::gradcheck(f, in, coarse).ok);
}

TEST_CASE("gradcheck leaves no graph behind and works inside no surrounding state") {
  const std::size_t before = grad::current_tape().size();
  std::vector<grad::dtensor> in = {grad::from<double>({1.0, 2.0}, {.requires_grad = true})};
  CHECK(grad::gradcheck([](const auto& x) { return x[0] * x[0]; }, in).ok);
  CHECK(grad::current_tape().size() <= before);
  CHECK(grad::is_grad_enabled());
}
