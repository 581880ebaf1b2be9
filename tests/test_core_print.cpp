// Tests of core/print.hpp: tensors print as PyTorch prints them, plus the shape (and the dtype for
// double). The expected strings are PyTorch's output for the same values, with the suffixes added.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include <grad/grad.hpp>

namespace {

template <class T>
std::string str(const grad::basic_tensor<T>& t) {
  std::ostringstream os;
  os << t;
  return os.str();
}

std::size_t count_of(const std::string& s, const std::string& part) {
  std::size_t n = 0;
  for (auto p = s.find(part); p != std::string::npos; p = s.find(part, p + 1))
    ++n;
  return n;
}

} // namespace

TEST_CASE("a 2-d tensor of integral values") {
  CHECK(str(grad::from<float>({{1.0f, 2.0f}, {3.0f, 4.0f}})) ==
        "tensor([[1., 2.],\n        [3., 4.]], shape=(2, 2))");
}

TEST_CASE("1-d, right-aligned to a common width") {
  CHECK(str(grad::from<float>({1.0f, 10.0f, -100.0f})) == "tensor([   1.,   10., -100.], shape=(3,))");
  CHECK(str(grad::from<float>({0.5f, -2.25f, 10.125f})) == "tensor([ 0.5000, -2.2500, 10.1250], shape=(3,))");
  CHECK(str(grad::zeros<float>({3})) == "tensor([0., 0., 0.], shape=(3,))");
}

TEST_CASE("requires_grad=True suffix") {
  CHECK(str(grad::from<float>({1.5f, -2.25f}, {.requires_grad = true})) ==
        "tensor([ 1.5000, -2.2500], shape=(2,), requires_grad=True)");
  auto x = grad::ones<float>({2}, {.requires_grad = true});
  CHECK(str(x * 3.0f) == "tensor([3., 3.], shape=(2,), requires_grad=True)");
}

TEST_CASE("0-d tensors print the bare value, as PyTorch") {
  CHECK(str(grad::scalar_tensor<float>(3.0f)) == "tensor(3.)");
  CHECK(str(grad::scalar_tensor<float>(0.5f)) == "tensor(0.5000)");
  CHECK(str(grad::scalar_tensor<float>(-2.0f, {.requires_grad = true})) == "tensor(-2., requires_grad=True)");
}

TEST_CASE("double tensors say dtype=float64") {
  CHECK(str(grad::from<double>({1.0, 2.0})) == "tensor([1., 2.], shape=(2,), dtype=float64)");
}

TEST_CASE("3-d: blocks separated by a blank line") {
  const auto t = grad::reshape(grad::arange<float>(8), {2, 2, 2});
  CHECK(str(t) == "tensor([[[0., 1.],\n"
                  "         [2., 3.]],\n"
                  "\n"
                  "        [[4., 5.],\n"
                  "         [6., 7.]]], shape=(2, 2, 2))");
}

TEST_CASE("scientific notation for tiny or huge magnitudes") {
  CHECK(str(grad::from<float>({1e-5f, 1.0f})) == "tensor([1.0000e-05, 1.0000e+00], shape=(2,))");
  CHECK(str(grad::from<float>({1e10f, 1.0f})) == "tensor([1.0000e+10, 1.0000e+00], shape=(2,))");
}

TEST_CASE("nan and inf") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::string s = str(grad::from<float>({nan, inf, -inf, 1.0f}));
  CHECK(s.find("nan") != std::string::npos);
  CHECK(s.find(" inf") != std::string::npos);
  CHECK(s.find("-inf") != std::string::npos);
  CHECK(s.find("1.") != std::string::npos);
}

TEST_CASE("empty tensors and undefined handles") {
  CHECK(str(grad::zeros<float>({0})) == "tensor([], shape=(0,))");
  CHECK(str(grad::zeros<float>({2, 0})) == "tensor([], shape=(2, 0))");
  CHECK(str(grad::tensor()) == "tensor(undefined)");
}

TEST_CASE("more than 1000 elements are summarised with ...") {
  const std::string s = str(grad::arange<float>(2000));
  CHECK(s.find("...") != std::string::npos);
  CHECK(s.find("0.,") != std::string::npos);
  CHECK(s.find("1999.]") != std::string::npos);
  CHECK(s.find("1000.") == std::string::npos); // the middle is left out
  CHECK(s.size() < 200);
  CHECK(s.find("shape=(2000,)") != std::string::npos);

  const std::string m = str(grad::zeros<float>({50, 50}));
  CHECK(count_of(m, "...") == 7); // one per shown row (6) and one for the skipped rows
  CHECK(count_of(m, "\n") == 6);  // 3 + ... + 3 rows
  CHECK(m.size() < 400);

  const std::string small = str(grad::zeros<float>({10, 100})); // exactly 1000: not summarised
  CHECK(small.find("...") == std::string::npos);
}
